"""CloudFront fixes: a distribution's configuration, replaced whole under its ETag.

CloudFront has no call that changes one setting: UpdateDistribution replaces the whole
configuration, and takes the ETag of the configuration it was built from as ``IfMatch``.
So every change reads the configuration, changes one field of it and sends it back; if
someone else updated the distribution in between, CloudFront answers PreconditionFailed
and nothing was written: the change is built again from a fresh read.

CloudFront's API is global, at one endpoint of each partition (us-east-1 in ``aws``):
botocore sends a client of any Region there, as it does for IAM, so the fix uses the
clients of the finding's Region like the other global playbooks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from asr.actions import Action, ChangedMeanwhile, register

if TYPE_CHECKING:
    from asr.aws import Clients

ROOT_OBJECT = "DefaultRootObject"


class ConcurrentUpdate(RuntimeError):
    """The distribution kept changing between this fix's read and its update."""


@register
class SetDefaultRootObject(Action):
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
    service = "cloudfront"
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
    # Pauses before reading again after each PreconditionFailed; then the fix gives up.
    conflict_pauses: ClassVar[tuple[float, ...]] = (1.0, 2.0, 4.0)

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        config = clients.cloudfront.get_distribution_config(Id=resource_id)["DistributionConfig"]
        return {ROOT_OBJECT: config.get(ROOT_OBJECT) or ""}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state[ROOT_OBJECT] else {ROOT_OBJECT: self.params["root_object"]}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        if not self._update(clients.cloudfront, resource_id, plan[ROOT_OBJECT], done=bool):
            raise ChangedMeanwhile("the distribution got a root object since it was read")

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        previous = before[ROOT_OBJECT] or ""
        self._update(clients.cloudfront, resource_id, previous, done=lambda current: current == previous)

    def _update(self, cloudfront: Any, distribution_id: str, value: str, done: Callable[[str], bool]) -> bool:
        """Send the current configuration back with the root object ``value``, unless it is
        ``done`` already (then False: nothing sent); read again and retry when another update
        came in between."""
        for pause in (*self.conflict_pauses, None):
            answer = cloudfront.get_distribution_config(Id=distribution_id)
            config = answer["DistributionConfig"]
            if done(config.get(ROOT_OBJECT) or ""):
                return False
            try:
                cloudfront.update_distribution(
                    Id=distribution_id,
                    IfMatch=answer["ETag"],
                    DistributionConfig={**config, ROOT_OBJECT: value},
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
