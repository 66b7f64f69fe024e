"""CloudFront fixes: a distribution's configuration, replaced whole under its ETag.

CloudFront has no call that changes one setting: UpdateDistribution replaces the whole
configuration, and takes the ETag of the configuration it was built from as ``IfMatch``.
So every change reads the configuration, changes what it must of it and sends it back; if
someone else updated the distribution in between, CloudFront answers PreconditionFailed
and nothing was written: the change is built again from a fresh read.

CloudFront's API is global, at one endpoint of each partition (us-east-1 in ``aws``):
botocore sends a client of any Region there, as it does for IAM, so the fix uses the
clients of the finding's Region like the other global playbooks.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from asr.actions import Action, ChangedMeanwhile, NotReversible, register

if TYPE_CHECKING:
    from asr.aws import Clients

log = logging.getLogger(__name__)

ROOT_OBJECT = "DefaultRootObject"


class ConcurrentUpdate(RuntimeError):
    """The distribution kept changing between this fix's read and its update."""


class _DistributionUpdate(Action):
    """A fix that reads a distribution's whole configuration and sends it back changed."""

    service = "cloudfront"
    # Pauses before reading again after each PreconditionFailed; then the fix gives up.
    conflict_pauses: ClassVar[tuple[float, ...]] = (1.0, 2.0, 4.0)

    def _update(
        self, cloudfront: Any, distribution_id: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> bool:
        """Send the current configuration back as ``change`` makes it, unless it makes none
        (None: then False, nothing sent); read again and retry when another update came in
        between, so ``change`` always works on the configuration the ETag names."""
        for pause in (*self.conflict_pauses, None):
            answer = cloudfront.get_distribution_config(Id=distribution_id)
            changed = change(answer["DistributionConfig"])
            if changed is None:
                return False
            try:
                cloudfront.update_distribution(
                    Id=distribution_id, IfMatch=answer["ETag"], DistributionConfig=changed
                )
                return True
            except cloudfront.exceptions.PreconditionFailed:
                if pause is None:
                    break
                time.sleep(pause)
        raise ConcurrentUpdate(
            f"distribution {distribution_id} was updated by someone else between each of "
            f"{len(self.conflict_pauses) + 1} reads and updates (PreconditionFailed): not changed; "
            "run the fix again once those updates are done"
        )


@register
class SetDefaultRootObject(_DistributionUpdate):
    """Have CloudFront answer a distribution's root URL with ``root_object`` (``DefaultRootObject``).

    Without one, a request for ``/`` goes to the origin as ``/``: an S3 origin may then list
    the bucket. With one, CloudFront asks the origin for that object instead, so an origin
    that answers ``/`` itself (an application, an S3 website's index) is asked for
    ``index.html`` from then on, and a missing object answers 403 or 404: hence an approval.
    A distribution that already has a root object complies, whatever it is; one that gets
    one while this fix runs keeps it. Only that field changes: the rest of the configuration
    goes back as read. The change then deploys to the edge locations over some minutes.

        remediation:
          action: cloudfront.set-default-root-object
          parameters: {root_object: index.html}
    """

    name = "cloudfront.set-default-root-object"
    permissions = ("cloudfront:GetDistributionConfig", "cloudfront:UpdateDistribution")
    summary = "set the CloudFront distribution's default root object to {root_object}"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            # An object key as CloudFront takes it: 1 to 255 characters, no leading slash, no
            # white space (the lookahead also refuses the trailing newline "$" lets through).
            "root_object": {"type": "string", "pattern": r"^(?!/)(?!.*\s).{1,255}$", "default": "index.html"},
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        config = clients.cloudfront.get_distribution_config(Id=resource_id)["DistributionConfig"]
        return {ROOT_OBJECT: config.get(ROOT_OBJECT) or ""}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state[ROOT_OBJECT] else {ROOT_OBJECT: self.params["root_object"]}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        if not self._set_root_object(clients.cloudfront, resource_id, plan[ROOT_OBJECT], done=bool):
            raise ChangedMeanwhile("the distribution got a root object since it was read")

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        previous = before[ROOT_OBJECT] or ""
        self._set_root_object(
            clients.cloudfront, resource_id, previous, done=lambda current: current == previous
        )

    def _set_root_object(
        self, cloudfront: Any, distribution_id: str, value: str, done: Callable[[str], bool]
    ) -> bool:
        """Give the distribution the root object ``value``, unless its current one is ``done``
        already (then False: nothing sent)."""
        return self._update(
            cloudfront,
            distribution_id,
            lambda config: None if done(config.get(ROOT_OBJECT) or "") else {**config, ROOT_OBJECT: value},
        )


# The hosts of an S3 bucket's endpoints, by which an origin names the bucket: REST
# (``<bucket>.s3.amazonaws.com``, ``.s3.<region>.``, ``.s3-<region>.``, ``.s3.dualstack.<region>.``)
# and static website (``.s3-website-<region>.``, ``.s3-website.<region>.``), under
# ``amazonaws.com`` or China's ``amazonaws.com.cn``. Access points, Object Lambda and
# Multi-Region Access Points are no bucket's name: their hosts do not match.
S3_ENDPOINT = re.compile(
    r"^(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\.s3(?:-website)?"
    r"(?:[.-](?:dualstack\.)?(?:[a-z]{2}(?:-[a-z]+)+-\d+|external-1))?\.amazonaws\.com(?:\.cn)?$"
)
# What GetBucketLocation tells of a bucket asked for as this account's (``ExpectedBucketOwner``).
FOUND, REFUSED, MISSING = "found", "refused", "missing"
# The parts of an origin that say where it is and how CloudFront reaches it: what the fix swaps.
SWAPPED = ("DomainName", "S3OriginConfig", "CustomOriginConfig", "OriginAccessControlId")
# How CloudFront would reach the placeholder (it never resolves): CloudFront takes an S3 origin
# only with an S3 endpoint's name, so a repointed S3 origin becomes a custom one.
PLACEHOLDER_ORIGIN = {
    "HTTPPort": 80,
    "HTTPSPort": 443,
    "OriginProtocolPolicy": "https-only",
    "OriginSslProtocols": {"Quantity": 1, "Items": ["TLSv1.2"]},
    "OriginReadTimeout": 30,
    "OriginKeepaliveTimeout": 5,
}
# A host name under a top-level domain reserved never to resolve (RFC 2606), lower case, no
# white space (the lookahead refuses the trailing newline "$" lets through).
PLACEHOLDER_DOMAIN = r"^(?!.*\s)(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:example|invalid)$"
MISSING_BUCKETS = "MissingBucketOrigins"
REFUSED_BUCKETS = "RefusedBucketOrigins"


def bucket_of(domain_name: str) -> str | None:
    """The bucket an origin's host names, if it is an S3 endpoint's."""
    found = S3_ENDPOINT.match(domain_name.lower())
    return found["bucket"] if found else None


def bucket_answer(clients: Clients, bucket: str) -> str:
    """Whether the bucket is the account's (FOUND), someone's that refuses the account (REFUSED),
    or nobody's (MISSING). S3 answers NoSuchBucket whoever asks, and 403 for a bucket that
    exists but is another account's (``ExpectedBucketOwner``) or whose policy refuses: that
    one is there, and is never taken for missing. GetBucketLocation rather than HeadBucket:
    HeadBucket needs s3:ListBucket, which would let the member role list every bucket's keys."""
    s3 = clients.s3
    try:
        s3.get_bucket_location(Bucket=bucket, ExpectedBucketOwner=clients.account_id)
    except s3.exceptions.NoSuchBucket:
        return MISSING
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
            return REFUSED
        raise
    return FOUND


def origin_key(origin_id: str) -> str:
    return f"Origin {origin_id}"


def _origins(config: dict[str, Any]) -> list[dict[str, Any]]:
    return list((config.get("Origins") or {}).get("Items") or [])


def _with_origins(config: dict[str, Any], origins: list[dict[str, Any]]) -> dict[str, Any]:
    return {**config, "Origins": {**config["Origins"], "Items": origins}}


def _swapped(origin: dict[str, Any], parts: dict[str, Any]) -> dict[str, Any]:
    """The origin with ``parts`` in place of its own: the rest of it (path, headers, timeouts,
    Origin Shield) stays as it is."""
    return {**{key: value for key, value in origin.items() if key not in SWAPPED}, **parts}


@register
class RepointMissingS3Origins(_DistributionUpdate):
    """Point a distribution's origins whose S3 bucket does not exist at ``placeholder_domain``.

    A bucket name is free again once its bucket is deleted: whoever creates a bucket of that
    name then serves their content through this distribution, under its domain and
    certificate. The origin is pointed at a name under a reserved top-level domain
    (``.example`` or ``.invalid``, RFC 2606), which nobody can register and never resolves: its
    requests fail (502) as they failed before (the missing bucket's 404), and nobody can serve
    them. The schema accepts no other domain: one that can be registered would let its buyer
    take the origin over the same way. An S3 origin becomes a custom one (CloudFront takes an
    S3 origin only with an S3 endpoint's name), losing its origin access identity and origin
    access control, which sign for S3 only; its id, path, headers and the rest stay, so cache
    behaviours and origin groups still name it. Every other origin and setting goes back as
    read; the distribution stays enabled (the reference solution disables it, stopping the
    origins that work too). The change deploys to the edge locations over some minutes.

    Origins whose host is an S3 endpoint's count, whether configured as S3 origins or as
    custom ones, website endpoints too: the control checks S3 origins only, but a website
    endpoint of a missing bucket is taken over the same way (the new owner turns website
    hosting on), and repointing it stops nothing that works. A bucket is missing only when
    S3 answers NoSuchBucket, asked just before the update too: one made again meanwhile
    leaves its origin alone. One that answers 403 exists, another account's or refusing
    this one: never repointed, and named in the result for a person to check who owns it (a
    bucket that took a deleted one's name passes the control); when no origin names a missing
    bucket, such a bucket makes the finding FAILED. Reverting points the origins back only
    while they still point at the placeholder, and refuses to point one back at a bucket that
    answers 403 now.

        remediation:
          action: cloudfront.repoint-missing-s3-origins
          parameters: {placeholder_domain: cloudfront12remediation.example}
    """

    name = "cloudfront.repoint-missing-s3-origins"
    permissions = (
        "cloudfront:GetDistributionConfig",
        "cloudfront:UpdateDistribution",
        "s3:GetBucketLocation",
    )
    summary = (
        "pointed the CloudFront distribution's origins whose S3 bucket is missing at {placeholder_domain}"
    )
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "placeholder_domain": {
                "type": "string",
                "pattern": PLACEHOLDER_DOMAIN,
                "default": "cloudfront12remediation.example",
            },
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        config = clients.cloudfront.get_distribution_config(Id=resource_id)["DistributionConfig"]
        return self._state(clients, config)

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {
            origin_key(origin_id): self._repointed(state[origin_key(origin_id)])
            for origin_id in state[MISSING_BUCKETS]
        }

    def unmet(self, state: dict[str, Any]) -> str | None:
        refused = self.caveat(state)
        return f"no origin names a missing bucket, but {refused}" if refused else None

    def caveat(self, state: dict[str, Any]) -> str | None:
        """Origins whose bucket refuses the account: the control passes them (the bucket
        exists), though one that took a deleted bucket's name would serve through this
        distribution. Said whether or not other origins were repointed."""
        refused = state[REFUSED_BUCKETS]
        if not refused:
            return None
        named = ", ".join(f"{origin_id} (bucket {bucket})" for origin_id, bucket in sorted(refused.items()))
        return (
            f"the buckets of origins {named} refuse this account (403): another account holds them "
            "(perhaps one that took a deleted bucket's name and serves through this distribution "
            "now), or their policy refuses this role; not repointed: check who owns them"
        )

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        def change(config: dict[str, Any]) -> dict[str, Any]:
            now = self._state(clients, config)
            if self.plan(now) != plan or any(now.get(key) != state[key] for key in plan):
                raise ChangedMeanwhile("the origins that name a missing bucket changed since they were read")
            return _with_origins(
                config,
                [
                    _swapped(o, plan[origin_key(o["Id"])]) if origin_key(o["Id"]) in plan else o
                    for o in _origins(config)
                ],
            )

        self._update(clients.cloudfront, resource_id, change)

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> dict[str, Any] | None:
        """Point back the origins the fix repointed that still point at the placeholder; one
        changed or deleted since stays as it is now, and is returned so (what reads back)."""
        left: dict[str, Any] = {}

        def change(config: dict[str, Any]) -> dict[str, Any] | None:
            back = self._pointed_back(clients, config, before)
            now = {origin["Id"]: origin for origin in _origins(config)}
            left.clear()
            left.update(
                {
                    origin_key(origin_id): self._parts(now[origin_id]) if origin_id in now else None
                    for origin_id in before[MISSING_BUCKETS]
                    if origin_id not in back
                }
            )
            if not back:
                return None
            return _with_origins(
                config, [_swapped(o, back[o["Id"]]) if o["Id"] in back else o for o in now.values()]
            )

        self._update(clients.cloudfront, resource_id, change)
        if not left:
            return None
        log.info("Origins %s of %s changed since the fix: left as they are", sorted(left), resource_id)
        return {**before, **left}

    def check_revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        config = clients.cloudfront.get_distribution_config(Id=resource_id)["DistributionConfig"]
        self._pointed_back(clients, config, before)

    def _pointed_back(
        self, clients: Clients, config: dict[str, Any], before: dict[str, Any]
    ) -> dict[str, Any]:
        """What a revert points back, by origin id: the origins the fix repointed (``before``
        read them) that still point at the placeholder. NotReversible when one's bucket exists
        now and refuses this account (403): another account holds it, and would serve its
        content through the distribution."""
        back = {
            origin["Id"]: before[origin_key(origin["Id"])]
            for origin in _origins(config)
            if origin["Id"] in before[MISSING_BUCKETS]
            and origin["DomainName"] == self.params["placeholder_domain"]
        }
        for origin_id, was in back.items():
            bucket = bucket_of(was["DomainName"])
            if bucket is not None and bucket_answer(clients, bucket) == REFUSED:
                raise NotReversible(
                    f"origin {origin_id} would point at bucket {bucket} again, which exists now and "
                    "refuses this account (403): another account holds it, and would serve its content "
                    "through the distribution; left on the placeholder"
                )
        return back

    def _state(self, clients: Clients, config: dict[str, Any]) -> dict[str, Any]:
        """Each origin's swappable parts (by ``origin_key``), and the origins whose bucket is
        missing or refuses the account; one GetBucketLocation per bucket."""
        state: dict[str, Any] = {}
        missing: list[str] = []
        refused: dict[str, str] = {}
        answers: dict[str, str] = {}
        for origin in _origins(config):
            state[origin_key(origin["Id"])] = self._parts(origin)
            bucket = bucket_of(origin["DomainName"])
            if bucket is None:
                continue
            if bucket not in answers:
                answers[bucket] = bucket_answer(clients, bucket)
            if answers[bucket] == MISSING:
                missing.append(origin["Id"])
            elif answers[bucket] == REFUSED:
                refused[origin["Id"]] = bucket
        return {**state, MISSING_BUCKETS: sorted(missing), REFUSED_BUCKETS: refused}

    @staticmethod
    def _parts(origin: dict[str, Any]) -> dict[str, Any]:
        return {key: origin[key] for key in SWAPPED if key in origin}

    def _repointed(self, parts: dict[str, Any]) -> dict[str, Any]:
        """An origin's parts once repointed: a custom origin keeps how it is reached; an S3
        one keeps its read timeout (CloudFront refuses a response completion timeout below it)."""
        timeout = (parts.get("S3OriginConfig") or {}).get("OriginReadTimeout")
        custom = PLACEHOLDER_ORIGIN | ({"OriginReadTimeout": timeout} if timeout else {})
        return {
            "DomainName": self.params["placeholder_domain"],
            "CustomOriginConfig": parts.get("CustomOriginConfig") or custom,
        }
