"""S3 fixes: Block Public Access (account and bucket), default encryption, bucket-policy
guards (TLS only, no sensitive actions for other accounts), server access logging, lifecycle,
event notifications."""

from __future__ import annotations

import json
import re
import threading
import time
import weakref
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from asr.actions import NEW_ROLE_AGE, Action, answered, register, topic_name_parameter, with_new_role

if TYPE_CHECKING:
    from asr.aws import Clients

BLOCK_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
POLICY_VERSION = "2012-10-17"
# What S3.6 must not let another account do (the control's default blocklist).
SENSITIVE_ACTIONS = (
    "s3:DeleteBucketPolicy",
    "s3:PutBucketAcl",
    "s3:PutBucketPolicy",
    "s3:PutEncryptionConfiguration",
    "s3:PutObjectAcl",
)
TLS_SID = "ASRDenyInsecureTransport"
CROSS_ACCOUNT_SID = "ASRDenyCrossAccountSensitiveActions"
# The data-perimeter clause that spares AWS services. IfExists: anonymous requests carry no
# aws:PrincipalIsAWSService, and a plain Bool on a missing key is false, which would spare
# them too. So a plain Bool still takes back a grant to another account (always signed),
# but not one to anyone.
NOT_A_SERVICE = ("BoolIfExists", "aws:principalisawsservice", ["false"])
SIGNED_NOT_A_SERVICE = ("Bool", "aws:principalisawsservice", ["false"])
LOG_DELIVERY_SID = "ASRAllowServerAccessLogDelivery"
TRANSITION_DEFAULT = "TransitionDefaultMinimumObjectSize"
BUCKET_POLICY_CLAIM = "s3:bucket-policy"  # the fixes that edit a bucket's policy take turns
# The fix threads of a batch share log buckets: one sets a bucket up at a time, once a task
# (by the task's S3 client of that account and Region).
_LOG_BUCKET_LOCK = threading.Lock()
_LOG_BUCKETS_READY: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
LIFECYCLE_RULE_ID = "asr-transition-to-storage-class"
EVERYONE = "*"
# {"AWS": "*"} rather than "*": the same to AWS, and the shape moto's log-delivery check can read.
ANYONE = {"AWS": EVERYONE}
TEN_GIB = 10 * 1024**3


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _unless_missing(call: Any, missing: str, **kwargs: Any) -> dict[str, Any] | None:
    """The call's response, or None when S3 answers with the error code that means "not configured"."""
    try:
        return call(**kwargs)
    except ClientError as exc:
        if _error_code(exc) == missing:
            return None
        raise


def _caller(clients: Clients) -> tuple[str, str]:
    """(account id, partition) of the member role, which is the bucket owner's account."""
    arn = clients.sts.get_caller_identity()["Arn"]
    _, partition, _, _, account, _ = arn.split(":", 5)
    return account, partition


class _BucketSetting(Action):
    """An S3 fix. S3 documents bucket (and account) settings as eventually consistent: a
    read-back right after a put may still show the old setting, so it is read again for a while."""

    propagation_seconds = 15.0


# --- Block Public Access, shared by the account-level (S3.1) and bucket-level (S3.2) fixes


class _BlockPublicAccess(_BucketSetting):
    """The same four flags, all turned on; subclasses say where they live."""

    def _current(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def _put(self, clients: Clients, resource_id: str, config: dict[str, bool]) -> None:
        raise NotImplementedError

    def _delete(self, clients: Clients, resource_id: str) -> None:
        raise NotImplementedError

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        config = self._current(clients, resource_id)
        return {flag: bool(config.get(flag)) for flag in BLOCK_FLAGS}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {flag: True for flag in BLOCK_FLAGS if not state[flag]}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        self._put(clients, resource_id, dict.fromkeys(BLOCK_FLAGS, True))

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """The flags the fix turned on back off, on top of the flags as they are now: one that
        was on already and changed since stays as changed. All off reads the same as no
        configuration, which is what an account or bucket that never set one has."""
        flags = self.read(clients, resource_id) | {flag: before[flag] for flag in self.plan(before)}
        if any(flags.values()):
            self._put(clients, resource_id, flags)
        else:
            self._delete(clients, resource_id)


@register
class BlockAccountPublicAccess(_BlockPublicAccess):
    """Turn on all four account-level S3 Block Public Access settings.

    The resource id is the account id (S3 Control addresses the account, not a bucket).

        remediation:
          action: s3.block-account-public-access
    """

    name = "s3.block-account-public-access"
    service = "s3control"
    permissions = ("s3:GetAccountPublicAccessBlock", "s3:PutAccountPublicAccessBlock")
    summary = "enabled all four account-level S3 Block Public Access settings"

    def _current(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        try:
            return clients.s3control.get_public_access_block(AccountId=resource_id)[
                "PublicAccessBlockConfiguration"
            ]
        except clients.s3control.exceptions.NoSuchPublicAccessBlockConfiguration:
            return {}

    def _put(self, clients: Clients, resource_id: str, config: dict[str, bool]) -> None:
        clients.s3control.put_public_access_block(
            AccountId=resource_id, PublicAccessBlockConfiguration=config
        )

    def _delete(self, clients: Clients, resource_id: str) -> None:
        clients.s3control.delete_public_access_block(AccountId=resource_id)


@register
class BlockBucketPublicAccess(_BlockPublicAccess):
    """Turn on all four Block Public Access settings of one bucket.

    One fix for S3.2 (public read), S3.3 (public write) and S3.8 (bucket-level block):
    with all four flags on, public ACLs and public policies are refused and ignored.

        remediation:
          action: s3.block-bucket-public-access
    """

    name = "s3.block-bucket-public-access"
    service = "s3"
    permissions = ("s3:GetBucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock")
    summary = "enabled all four S3 Block Public Access settings of the bucket"

    def _current(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        response = _unless_missing(
            clients.s3.get_public_access_block, "NoSuchPublicAccessBlockConfiguration", Bucket=resource_id
        )
        return response["PublicAccessBlockConfiguration"] if response else {}

    def _put(self, clients: Clients, resource_id: str, config: dict[str, bool]) -> None:
        clients.s3.put_public_access_block(Bucket=resource_id, PublicAccessBlockConfiguration=config)

    def _delete(self, clients: Clients, resource_id: str) -> None:
        clients.s3.delete_public_access_block(Bucket=resource_id)


# --- Default encryption (S3.4)


@register
class EnableDefaultEncryption(_BucketSetting):
    """Give a bucket default encryption: SSE-S3 (AES256), or SSE-KMS with a key when asked.

    A bucket that already has any default encryption is left alone (never downgraded).

        remediation:
          action: s3.enable-default-encryption
          parameters: {sse_algorithm: "aws:kms", kms_key_id: alias/s3-default}
    """

    name = "s3.enable-default-encryption"
    service = "s3"
    permissions = ("s3:GetEncryptionConfiguration", "s3:PutEncryptionConfiguration")
    summary = "enabled default encryption ({sse_algorithm}) on the bucket"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "sse_algorithm": {"type": "string", "enum": ["AES256", "aws:kms"], "default": "AES256"},
            "kms_key_id": {
                "type": "string",
                "default": "",
                "description": "with aws:kms: key id, ARN or alias; empty for the AWS managed key aws/s3",
            },
        },
        # A KMS key only makes sense with SSE-KMS: refuse it with SSE-S3 instead of ignoring it.
        "if": {"properties": {"kms_key_id": {"minLength": 1}}, "required": ["kms_key_id"]},
        "then": {"properties": {"sse_algorithm": {"const": "aws:kms"}}, "required": ["sse_algorithm"]},
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        response = _unless_missing(
            clients.s3.get_bucket_encryption,
            "ServerSideEncryptionConfigurationNotFoundError",
            Bucket=resource_id,
        )
        rules = response["ServerSideEncryptionConfiguration"]["Rules"] if response else []
        defaults = [
            r["ApplyServerSideEncryptionByDefault"]
            for r in rules
            if "ApplyServerSideEncryptionByDefault" in r
        ]
        return {"SSEAlgorithm": defaults[0]["SSEAlgorithm"] if defaults else None}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["SSEAlgorithm"] else {"SSEAlgorithm": self.params["sse_algorithm"]}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        default: dict[str, Any] = {"SSEAlgorithm": plan["SSEAlgorithm"]}
        rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": default}
        if plan["SSEAlgorithm"] == "aws:kms":
            if self.params["kms_key_id"]:
                default["KMSMasterKeyID"] = self.params["kms_key_id"]
            rule["BucketKeyEnabled"] = True  # fewer KMS requests, same protection
        clients.s3.put_bucket_encryption(
            Bucket=resource_id, ServerSideEncryptionConfiguration={"Rules": [rule]}
        )

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        # Where S3 encrypts every bucket (AWS since 2023) this resets to SSE-S3, which the fix
        # never replaced: it acts only on a bucket without default encryption.
        clients.s3.delete_bucket_encryption(Bucket=resource_id)


# --- Bucket policies (S3.5, S3.6, and the log bucket of S3.9)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """An IAM pattern (``*`` any run, ``?`` one character) as a regex."""
    body = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(f"^{body}$", re.IGNORECASE if ignore_case else 0)


def _listed(patterns: list[Any], value: str, ignore_case: bool) -> bool:
    return any(_wildcard(str(p), ignore_case).match(value) for p in patterns)


def _applies_to_action(statement: dict[str, Any], action: str) -> bool:
    """Action names are case-insensitive; ``NotAction`` applies to every action it does not list."""
    if "NotAction" in statement:
        return not _listed(_as_list(statement["NotAction"]), action, ignore_case=True)
    return _listed(_as_list(statement.get("Action")), action, ignore_case=True)


def _bucket_arns(partition: str, bucket: str) -> list[str]:
    return [f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"]


def _covers_bucket(statement: dict[str, Any], arns: list[str]) -> bool:
    """Whether the statement applies to the bucket and to every object in it."""
    if "NotResource" in statement:
        return not any(_listed(_as_list(statement["NotResource"]), arn, ignore_case=False) for arn in arns)
    return all(_listed(_as_list(statement.get("Resource")), arn, ignore_case=False) for arn in arns)


def _principal_accounts(statement: dict[str, Any]) -> set[str]:
    """Accounts an ``AWS`` principal names (``*`` for anyone); service and federated principals are none."""
    if "NotPrincipal" in statement:
        return {EVERYONE}
    principal = statement.get("Principal")
    if principal == EVERYONE:
        values = [EVERYONE]
    else:
        values = _as_list(principal.get("AWS")) if isinstance(principal, dict) else []
    accounts = set()
    for value in map(str, values):
        if value == EVERYONE:
            accounts.add(EVERYONE)
        elif re.fullmatch(r"\d{12}", value):
            accounts.add(value)
        elif match := re.match(r"^arn:[^:]+:(?:iam|sts)::(\d{12}):", value):
            accounts.add(match.group(1))
    return accounts


def _clauses(statement: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(operator, lower-case key, lower-case values) of each clause of the condition."""
    return [
        (operator, key.lower(), [str(v).lower() for v in _as_list(values)])
        for operator, keys in (statement.get("Condition") or {}).items()
        for key, values in keys.items()
    ]


def _single_condition(statement: dict[str, Any]) -> tuple[str, str, list[str]] | None:
    """The one clause of a condition; None for none or several."""
    clauses = _clauses(statement)
    return clauses[0] if len(clauses) == 1 else None


def _is_everyone(statement: dict[str, Any]) -> bool:
    return "NotPrincipal" not in statement and EVERYONE in _principal_accounts(statement)


def _denies_insecure_transport(statement: dict[str, Any], arns: list[str]) -> bool:
    """A statement that denies every S3 action on the bucket and its objects to anyone not using TLS."""
    return (
        statement.get("Effect") == "Deny"
        and _is_everyone(statement)
        and _applies_to_action(statement, "s3:*")
        and _covers_bucket(statement, arns)
        and _single_condition(statement) == ("Bool", "aws:securetransport", ["false"])
    )


def _deny_covers(statement: dict[str, Any], account: str, action: str, owner: str, arns: list[str]) -> bool:
    """Whether a Deny statement surely refuses ``action`` to ``account`` (``*``: anyone) on the bucket.

    Conditions are understood only in the shape that denies every other account (the caller's
    account is not the owner's, and it is not an AWS service); a Deny with any other condition
    is not counted, so the fix may add its own statement beside it.
    """
    if statement.get("Effect") != "Deny" or "NotPrincipal" in statement:
        return False
    if not (_applies_to_action(statement, action) and _covers_bucket(statement, arns)):
        return False
    denied = _principal_accounts(statement)
    if EVERYONE not in denied and account not in denied:
        return False
    other_account = ("StringNotEquals", "aws:principalaccount", [owner])
    spared = (other_account, NOT_A_SERVICE) + (() if account == EVERYONE else (SIGNED_NOT_A_SERVICE,))
    return all(clause in spared for clause in _clauses(statement))


def cross_account_grants(policy: dict[str, Any] | None, owner: str, arns: list[str]) -> list[dict[str, Any]]:
    """The sensitive actions the policy allows to other accounts (``*``: anyone) and no Deny takes back.

    Conditions on Allow statements are not evaluated: a conditional grant still counts.
    """
    statements = _statements(policy)
    denies = [s for s in statements if s.get("Effect") == "Deny"]
    granted: dict[str, set[str]] = {}
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        for account in _principal_accounts(statement) - {owner}:
            for action in SENSITIVE_ACTIONS:
                if _applies_to_action(statement, action) and not any(
                    _deny_covers(d, account, action, owner, arns) for d in denies
                ):
                    granted.setdefault(account, set()).add(action)
    return [
        {"Principal": account, "Actions": sorted(actions)} for account, actions in sorted(granted.items())
    ]


def _statements(policy: dict[str, Any] | None) -> list[dict[str, Any]]:
    return _as_list((policy or {}).get("Statement"))


def _read_policy(s3: Any, bucket: str) -> dict[str, Any] | None:
    response = _unless_missing(s3.get_bucket_policy, "NoSuchBucketPolicy", Bucket=bucket)
    return json.loads(response["Policy"]) if response else None


class PublicPolicyBlocked(ValueError):
    """S3 refused a bucket policy for being public, under Block Public Access."""


def _put_policy(s3: Any, bucket: str, document: dict[str, Any]) -> None:
    """Write a bucket policy whole. With Block Public Access's ``BlockPublicPolicy`` on (the
    bucket's or the account's, as an S3.1/S3.2 fix leaves it), S3 refuses any write of a
    policy that grants public access, with a bare AccessDenied that reads like a missing
    permission: asked of S3's own judgement of the bucket's policy, the failure says so."""
    try:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
    except ClientError as exc:
        if _error_code(exc) != "AccessDenied" or not _policy_is_public(s3, bucket):
            raise
        raise PublicPolicyBlocked(
            f"S3 refused the policy of bucket {bucket} (AccessDenied), and the policy grants public "
            "access: while Block Public Access's BlockPublicPolicy is on, for the bucket or the account, "
            "S3 refuses any write of a public policy, asr's added statement included; remove the public "
            "grants from the policy (or exclude the bucket), then run the fix again (with BlockPublicPolicy "
            "off, the denial is IAM's or an SCP's)"
        ) from exc


def _policy_is_public(s3: Any, bucket: str) -> bool:
    """S3's judgement of the bucket's current policy (GetBucketPolicyStatus); False when it
    cannot be read, so the original error stands."""
    try:
        return bool(s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"])
    except ClientError:
        return False


def put_statements(s3: Any, bucket: str, *added: dict[str, Any]) -> bool:
    """Add statements (each replacing one of the same Sid) in one write, keeping every other
    statement as it is: asr's Sids are its own (``ASR...``), so an existing bucket keeps the
    statements that let other trails, recorders or tools use it. Whether it wrote."""
    policy = _read_policy(s3, bucket)
    statements = _statements(policy)
    if all(statement in statements for statement in added):
        return False
    sids = {statement["Sid"] for statement in added}
    kept = [s for s in statements if s.get("Sid") not in sids]
    _put_policy(s3, bucket, {**(policy or {"Version": POLICY_VERSION}), "Statement": [*kept, *added]})
    return True


def _drop_statement(s3: Any, bucket: str, sid: str) -> None:
    """Take out the statement of this Sid, keeping every other; with none left, delete the policy."""
    policy = _read_policy(s3, bucket)
    if policy is None:
        return
    kept = [s for s in _statements(policy) if s.get("Sid") != sid]
    if kept:
        _put_policy(s3, bucket, {**policy, "Statement": kept})
    else:
        s3.delete_bucket_policy(Bucket=bucket)


def tls_only_statement(arns: list[str]) -> dict[str, Any]:
    """Deny every request to these ARNs that does not use TLS (S3.5; every log bucket asr makes)."""
    return {
        "Sid": TLS_SID,
        "Effect": "Deny",
        "Principal": ANYONE,
        "Action": "s3:*",
        "Resource": arns,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


@register
class DenyInsecureTransport(_BucketSetting):
    """Add a bucket-policy statement that refuses every request not made over TLS.

    The bucket's other statements stay as they are; a bucket without a policy gets one with
    only this statement. A bucket with a website configuration is refused: S3's website
    endpoints answer plain HTTP only, so the Deny would take the site (or its redirect) down.

        remediation:
          action: s3.deny-insecure-transport
    """

    claims_as = BUCKET_POLICY_CLAIM

    name = "s3.deny-insecure-transport"
    service = "s3"
    permissions = (
        "s3:GetBucketPolicy",
        "s3:PutBucketPolicy",
        "s3:GetBucketPolicyStatus",
        "s3:GetBucketWebsite",
    )
    summary = "added a bucket-policy statement denying requests without TLS (aws:SecureTransport false)"
    revert_permissions = ("s3:DeleteBucketPolicy",)

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        arns = _bucket_arns(clients.s3.meta.partition, resource_id)
        policy = _read_policy(clients.s3, resource_id)
        denies = any(_denies_insecure_transport(s, arns) for s in _statements(policy))
        state = {"DeniesInsecureTransport": denies, "Resources": arns}
        if not denies:  # only a bucket about to be fixed needs the extra read
            website = _unless_missing(
                clients.s3.get_bucket_website, "NoSuchWebsiteConfiguration", Bucket=resource_id
            )
            state["Website"] = website is not None
        return state

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        if state["DeniesInsecureTransport"]:
            return {}
        if state.get("Website"):
            raise ValueError(
                "the bucket is configured as a static website, which S3's website endpoint serves over "
                "plain HTTP only: denying requests without TLS would take the site (or its redirect) "
                "down; serve it through CloudFront from the bucket's REST endpoint and remove the "
                "website configuration, or exclude the bucket"
            )
        return {"DeniesInsecureTransport": True}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        put_statements(clients.s3, resource_id, tls_only_statement(state["Resources"]))

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        _drop_statement(clients.s3, resource_id, TLS_SID)


@register
class DenyCrossAccountSensitiveActions(_BucketSetting):
    """Add an explicit Deny of the sensitive S3 actions to every principal outside the bucket's account.

    S3.6 fails when the bucket policy lets another account change the bucket's policy, ACLs or
    encryption. One Deny (``aws:PrincipalAccount`` not the owner, and not an AWS service,
    whose requests carry no account) takes those actions back from every other account, those
    the policy names now and any it names later; the Allow statements stay, so other accounts
    keep the rest of their access, and AWS services their log delivery.

        remediation:
          action: s3.deny-cross-account-sensitive-actions
    """

    claims_as = BUCKET_POLICY_CLAIM

    name = "s3.deny-cross-account-sensitive-actions"
    service = "s3"
    permissions = (
        "s3:GetBucketPolicy",
        "s3:PutBucketPolicy",
        "s3:GetBucketPolicyStatus",
        "sts:GetCallerIdentity",
    )
    summary = "added a bucket-policy Deny of " + ", ".join(SENSITIVE_ACTIONS) + " to other accounts"
    revert_permissions = ("s3:DeleteBucketPolicy",)

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        owner, partition = _caller(clients)
        arns = _bucket_arns(partition, resource_id)
        policy = _read_policy(clients.s3, resource_id)
        return {
            "CrossAccountSensitiveGrants": cross_account_grants(policy, owner, arns),
            "Owner": owner,
            "Resources": arns,
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"CrossAccountSensitiveGrants": []} if state["CrossAccountSensitiveGrants"] else {}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        statement = {
            "Sid": CROSS_ACCOUNT_SID,
            "Effect": "Deny",
            "Principal": ANYONE,
            "Action": list(SENSITIVE_ACTIONS),
            "Resource": state["Resources"],
            "Condition": {
                "StringNotEquals": {"aws:PrincipalAccount": state["Owner"]},
                # AWS services (log delivery with bucket-owner-full-control, say) carry no account;
                # IfExists keeps the Deny on anonymous requests, which carry neither key.
                "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
            },
        }
        put_statements(clients.s3, resource_id, statement)

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        _drop_statement(clients.s3, resource_id, CROSS_ACCOUNT_SID)


def secure_log_bucket(s3: Any, bucket: str) -> None:
    """Block Public Access and SSE-S3 default encryption (the one log delivery supports),
    each where the log bucket has none. Checked every time, not only when the bucket is
    made: a fix that died between making it and these calls left it without them."""
    if not _unless_missing(s3.get_public_access_block, "NoSuchPublicAccessBlockConfiguration", Bucket=bucket):
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=dict.fromkeys(BLOCK_FLAGS, True)
        )
    if not _unless_missing(
        s3.get_bucket_encryption, "ServerSideEncryptionConfigurationNotFoundError", Bucket=bucket
    ):
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )


# --- Server access logging (S3.9, CloudTrail.7)


def bucket_home(s3: Any, bucket: str) -> tuple[str, bool]:
    """The bucket's Region, and whether it is this account's. Another account's bucket (a
    central log archive) refuses GetBucketLocation, as its policy does not apply outside its
    own Region; HeadBucket then tells the Region even in its refusal, by its
    ``x-amz-bucket-region`` header."""
    try:
        location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    except ClientError as exc:
        if _error_code(exc) != "AccessDenied":
            raise
        try:
            answer = s3.head_bucket(Bucket=bucket)
        except ClientError as refused:
            answer = refused.response
        region = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-bucket-region")
        if not region:
            raise
        return str(region), False
    # us-east-1 answers with no constraint; "EU" is the legacy name of eu-west-1.
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location), True


def create_bucket(s3: Any, bucket: str, region: str, **settings: Any) -> None:
    """us-east-1 refuses a location constraint naming itself; every other Region needs one."""
    if region != "us-east-1":
        settings["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(Bucket=bucket, **settings)


def ensure_log_bucket(
    s3: Any, bucket: str, statements: list[dict[str, Any]], region: str | None = None
) -> bool:
    """Set up a bucket that a service delivers logs to (S3 access logs, CloudTrail, Config).

    Created unless it exists (ACLs off, in the client's Region; another fix task may create
    it at the same moment), made private and encrypted where it is not (``secure_log_bucket``),
    and given ``statements`` and TLS required in one policy write (``put_statements``): fix
    tasks in other processes may set it up at once, and neither's write drops the other's.
    An existing bucket keeps its settings and the statements of other Sids. With ``region``,
    an existing bucket must be in it (S3 delivers access logs only within a Region). Whether
    it wrote the policy (a service may not see it yet).
    """
    try:
        found, own = bucket_home(s3, bucket)
    except ClientError as exc:
        if _error_code(exc) != "NoSuchBucket":
            raise
        try:
            create_bucket(s3, bucket, s3.meta.region_name, ObjectOwnership="BucketOwnerEnforced")
        except ClientError as exc:
            if _error_code(exc) != "BucketAlreadyOwnedByYou":
                raise
    else:
        if not own:  # names are global: one another account took is not this account's to set up
            raise ValueError(
                f"log bucket {bucket} belongs to another account (bucket names are global): name one "
                "this account owns in the playbook"
            )
        if region and found != region:
            raise ValueError(f"log bucket {bucket} is in {found}, not in {region} with the bucket")
    secure_log_bucket(s3, bucket)
    return put_statements(
        s3, bucket, tls_only_statement(_bucket_arns(s3.meta.partition, bucket)), *statements
    )


@register
class EnableServerAccessLogging(_BucketSetting):
    """Send a bucket's server access logs to the account's log bucket in the bucket's region.

    The log bucket (name from ``log_bucket``, with ``{account}`` and ``{region}``) is created
    when missing: all Block Public Access flags on, ACLs disabled, SSE-S3 (the only encryption
    log delivery supports), TLS required, and a policy that lets only S3 log delivery for this
    account write to it. An existing one is reused, and given what it lacks of that: Block
    Public Access and default encryption where it has none, the two policy statements (so a
    fix that died half-way through setting the bucket up is completed by the next). The log
    bucket itself is refused: logging it into itself would log its own log deliveries.

        remediation:
          action: s3.enable-server-access-logging
          parameters: {log_bucket: "asr-access-logs-{account}-{region}", target_prefix: "{bucket}/"}
    """

    name = "s3.enable-server-access-logging"
    service = "s3"
    permissions = (
        "s3:GetBucketLogging",
        "s3:PutBucketLogging",
        "s3:GetBucketLocation",
        "s3:CreateBucket",
        "s3:PutBucketOwnershipControls",
        "s3:GetBucketPublicAccessBlock",
        "s3:PutBucketPublicAccessBlock",
        "s3:GetEncryptionConfiguration",
        "s3:PutEncryptionConfiguration",
        "s3:GetBucketPolicy",
        "s3:PutBucketPolicy",
        "s3:GetBucketPolicyStatus",
        "sts:GetCallerIdentity",
    )
    summary = "enabled server access logging into the log bucket {log_bucket} (prefix {target_prefix})"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "log_bucket": {
                "type": "string",
                "pattern": r"^([a-z0-9.-]|\{account\}|\{region\})+$",
                "default": "asr-access-logs-{account}-{region}",
            },
            "target_prefix": {
                "type": "string",
                "pattern": r"^([^{}]|\{bucket\})*$",
                "maxLength": 200,
                "default": "{bucket}/",
            },
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        logging = clients.s3.get_bucket_logging(Bucket=resource_id).get("LoggingEnabled")
        if logging:
            return {"LoggingEnabled": logging}
        account, partition = _caller(clients)
        region, _ = bucket_home(clients.s3, resource_id)
        log_bucket = self.params["log_bucket"].format(account=account, region=region)
        if log_bucket == resource_id:
            raise ValueError(
                f"{resource_id} is the access-log bucket: it cannot log into itself "
                "(suppress its finding, or log it to another bucket by hand)"
            )
        target = {
            "TargetBucket": log_bucket,
            "TargetPrefix": self.params["target_prefix"].format(bucket=resource_id),
        }
        return {
            "LoggingEnabled": None,
            "Target": target,
            "Account": account,
            "Partition": partition,
            "Region": region,
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["LoggingEnabled"] else {"LoggingEnabled": state["Target"]}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        # S3 playbooks are global: the batch's clients may be of another region than the bucket,
        # and S3 creates a bucket only in its own region's endpoint (or us-east-1's).
        with _LOG_BUCKET_LOCK:
            self._ensure_log_bucket(clients.in_region(state["Region"]).s3, state)
        clients.s3.put_bucket_logging(
            Bucket=resource_id, BucketLoggingStatus={"LoggingEnabled": plan["LoggingEnabled"]}
        )

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Logging off again; the log bucket stays, with the logs delivered meanwhile."""
        clients.s3.put_bucket_logging(Bucket=resource_id, BucketLoggingStatus={})

    @staticmethod
    def _ensure_log_bucket(s3: Any, state: dict[str, Any]) -> None:
        """The log bucket, set up once a task (``_LOG_BUCKETS_READY``), in the bucket's Region."""
        name = state["Target"]["TargetBucket"]
        ready = _LOG_BUCKETS_READY.setdefault(s3, set())
        if name in ready:
            return
        delivery = {
            "Sid": LOG_DELIVERY_SID,
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": _bucket_arns(state["Partition"], name)[1],
            "Condition": {"StringEquals": {"aws:SourceAccount": state["Account"]}},
        }
        ensure_log_bucket(s3, name, [delivery], region=state["Region"])
        ready.add(name)


# --- Lifecycle (S3.13)


def _with_filter(rule: dict[str, Any]) -> dict[str, Any]:
    """A lifecycle rule of the old form (a rule-level ``Prefix``) written with a ``Filter``, the
    same rule: S3 refuses a configuration that mixes the two forms, and ours has a Filter."""
    if "Prefix" not in rule or "Filter" in rule:
        return rule
    rest = {key: value for key, value in rule.items() if key != "Prefix"}
    return {**rest, "Filter": {"Prefix": rule["Prefix"]}}


@register
class AddLifecycleTransition(_BucketSetting):
    """Add a lifecycle rule that moves objects to a cheaper storage class after some days.

    The bucket complies when an enabled rule already moves objects to ``storage_class``
    within ``transition_days``. Otherwise this rule is added (replacing an earlier one of
    the same ID) and every other rule is kept. ``min_object_size_bytes`` limits the rule to
    larger objects (0: every object); the default, 10 GiB, is the reference catalogue's.
    When the control also asks objects to expire (``expiration_days``, Security Hub's
    ``targetExpirationDays``), a bucket without such a rule is refused, not fixed: expiring
    deletes objects, which no unattended fix should decide, and a transition alone would
    leave the control failing under a RESOLVED finding.

        remediation:
          action: s3.add-lifecycle-transition
          parameters: {transition_days: 90, storage_class: INTELLIGENT_TIERING}
    """

    name = "s3.add-lifecycle-transition"
    service = "s3"
    permissions = ("s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration")
    summary = "added a lifecycle rule moving objects to {storage_class} after {transition_days} days"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "transition_days": {"type": "integer", "minimum": 0, "maximum": 36500, "default": 90},
            "storage_class": {
                "enum": [
                    "INTELLIGENT_TIERING",
                    "STANDARD_IA",
                    "ONEZONE_IA",
                    "GLACIER_IR",
                    "GLACIER",
                    "DEEP_ARCHIVE",
                ],
                "default": "INTELLIGENT_TIERING",
            },
            "min_object_size_bytes": {"type": "integer", "minimum": 0, "default": TEN_GIB},
            "expiration_days": {"type": "integer", "minimum": 1, "maximum": 36500},
        },
        # S3 refuses a transition to an infrequent-access class before 30 days: say so at load.
        "if": {
            "properties": {"storage_class": {"enum": ["STANDARD_IA", "ONEZONE_IA"]}},
            "required": ["storage_class"],
        },
        "then": {"properties": {"transition_days": {"minimum": 30}}},
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        response = _unless_missing(
            clients.s3.get_bucket_lifecycle_configuration, "NoSuchLifecycleConfiguration", Bucket=resource_id
        )
        return {
            "LifecycleRules": response["Rules"] if response else [],
            # The configuration's own setting, which a put without it resets to AWS's default.
            TRANSITION_DEFAULT: (response or {}).get(TRANSITION_DEFAULT),
        }

    def _satisfies(self, rule: dict[str, Any]) -> bool:
        return rule.get("Status") == "Enabled" and any(
            t.get("StorageClass") == self.params["storage_class"]
            and ("Date" in t or t.get("Days", 0) <= self.params["transition_days"])
            for t in rule.get("Transitions", [])
        )

    def _expires(self, rule: dict[str, Any]) -> bool:
        expiration = rule.get("Expiration") or {}
        return rule.get("Status") == "Enabled" and (
            "Date" in expiration or 0 < expiration.get("Days", 0) <= self.params["expiration_days"]
        )

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        rules = state["LifecycleRules"]
        if self.params.get("expiration_days") and not any(map(self._expires, rules)):
            raise ValueError(
                f"the control asks that objects expire within {self.params['expiration_days']} days "
                "(targetExpirationDays): expiring deletes them, which asr does not decide; add an "
                "expiration rule by hand, or take the parameter off the control"
            )
        if any(map(self._satisfies, rules)):
            return {}
        size = self.params["min_object_size_bytes"]
        rule = {
            "ID": LIFECYCLE_RULE_ID,
            "Status": "Enabled",
            "Filter": {"ObjectSizeGreaterThan": size} if size else {},
            "Transitions": [
                {"Days": self.params["transition_days"], "StorageClass": self.params["storage_class"]}
            ],
        }
        kept = [_with_filter(r) for r in rules if r.get("ID") != LIFECYCLE_RULE_ID]
        return {
            "LifecycleRules": [*kept, rule],
            TRANSITION_DEFAULT: state.get(TRANSITION_DEFAULT),  # kept as it is
        }

    @staticmethod
    def _put(clients: Clients, bucket: str, configuration: dict[str, Any]) -> None:
        default = configuration.get(TRANSITION_DEFAULT)
        clients.s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={"Rules": configuration["LifecycleRules"]},
            **({TRANSITION_DEFAULT: default} if default else {}),
        )

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        self._put(clients, resource_id, plan)

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        if before["LifecycleRules"]:
            self._put(clients, resource_id, before)
        else:
            clients.s3.delete_bucket_lifecycle(Bucket=resource_id)


# --- Event notifications (S3.11)

# Every event type S3 notifies of (botocore's ``Event`` enum; a test keeps them equal).
S3_EVENT_TYPES = (
    "s3:ReducedRedundancyLostObject",
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectRestore:*",
    "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed",
    "s3:ObjectRestore:Delete",
    "s3:Replication:*",
    "s3:Replication:OperationFailedReplication",
    "s3:Replication:OperationNotTracked",
    "s3:Replication:OperationMissedThreshold",
    "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:LifecycleTransition",
    "s3:IntelligentTiering",
    "s3:ObjectAcl:Put",
    "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:ObjectTagging:*",
    "s3:ObjectTagging:Put",
    "s3:ObjectTagging:Delete",
    "s3:ObjectAnnotation:*",
    "s3:ObjectAnnotation:Put",
    "s3:ObjectAnnotation:Delete",
    "s3:ObjectRetention:Put",
)
# The destinations that name event types; EventBridge gets every event and names none.
TYPED_DESTINATIONS = ("TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations")
NOTIFICATION_PARTS = (*TYPED_DESTINATIONS, "EventBridgeConfiguration")
NOTIFICATION_ID = "asr-event-notifications"
S3_PUBLISH_SID = "ASRAllowS3EventNotifications"


def _family(event: str) -> str:
    """The wildcard of an event's family (``s3:ObjectCreated:Put`` -> ``s3:ObjectCreated:*``);
    an event without one (``s3:LifecycleTransition``) is its own."""
    head = event.rpartition(":")[0]
    return f"{head}:*" if head.count(":") == 1 else event


def events_overlap(a: str, b: str) -> bool:
    """Whether two event types share an event: the same, or one the wildcard of the other's family."""
    return a == b or _family(a) == b or _family(b) == a


def _notified_events(configuration: dict[str, Any]) -> list[str]:
    return [
        event
        for part in TYPED_DESTINATIONS
        for destination in configuration.get(part, [])
        for event in destination.get("Events", [])
    ]


def s3_publish_statement(topic_arn: str, account: str) -> dict[str, Any]:
    """Let S3 publish to the shared topic the events of this account's buckets, and nobody
    else's: bucket ARNs carry no account, so ``aws:SourceAccount`` is what ties the source
    to the account; ``aws:SourceArn`` takes any bucket of the partition, as one topic serves
    them all (a statement per bucket would rewrite the policy on every fix, concurrently,
    and outgrow its 30 KB with a few hundred buckets)."""
    partition = topic_arn.split(":")[1]
    return {
        "Sid": S3_PUBLISH_SID,
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "sns:Publish",
        "Resource": topic_arn,
        "Condition": {
            "StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {"aws:SourceArn": f"arn:{partition}:s3:::*"},
        },
    }


# When this process last made or changed each notification topic (monotonic seconds): S3
# may not see a topic or policy written moments ago, by this thread or another.
_TOPICS_WRITTEN: dict[str, float] = {}
# S3's answer when a destination does not (yet) accept its test message.
DESTINATION_REFUSED = "Unable to validate the following destination configurations"


def ensure_notification_topic(sns: Any, topic_arn: str, account: str) -> bool:
    """The topic, made when missing with only the statement that lets S3 publish; an
    existing one gets that statement (replacing one of the same Sid) beside its others.
    Every step converges, so fix threads and tasks doing it at once end with the same topic.
    Whether this process made or changed it lately, so that S3 may not see it yet."""
    statement = s3_publish_statement(topic_arn, account)
    try:
        policy_text = sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"].get("Policy")
    except ClientError as exc:
        if _error_code(exc) != "NotFound":
            raise
        policy = {"Version": POLICY_VERSION, "Statement": [statement]}
        sns.create_topic(Name=topic_arn.rsplit(":", 1)[1], Attributes={"Policy": json.dumps(policy)})
        _TOPICS_WRITTEN[topic_arn] = time.monotonic()
        return True
    policy = json.loads(policy_text) if policy_text else {"Version": POLICY_VERSION}
    statements = _statements(policy)
    if statement not in statements:
        kept = [s for s in statements if s.get("Sid") != S3_PUBLISH_SID]
        document = json.dumps({**policy, "Statement": [*kept, statement]})
        sns.set_topic_attributes(TopicArn=topic_arn, AttributeName="Policy", AttributeValue=document)
        _TOPICS_WRITTEN[topic_arn] = time.monotonic()
    written = _TOPICS_WRITTEN.get(topic_arn)
    return written is not None and time.monotonic() - written < NEW_ROLE_AGE.total_seconds()


@register
class EnableEventNotifications(_BucketSetting):
    """Send a bucket's events to the account's SNS topic for S3 events in the bucket's Region.

    The bucket complies when a topic, queue or function is already notified of any of
    ``event_types`` (a type counts its family's wildcard and members: ``s3:ObjectCreated:*``
    and ``s3:ObjectCreated:Put``), or of any event when ``event_types`` is empty, as the
    control's ``eventTypes`` parameter reads. EventBridge delivery alone does not count: it
    names no event types. Otherwise a topic configuration (Id ``asr-event-notifications``)
    for ``event_types`` (empty: ``default_event_types``) is added, and every other
    configuration kept: the put replaces the whole. It cannot overlap one of them, which S3
    would refuse, as none notifies of those types. S3 first sends every destination a test
    message, so a destination that no longer accepts them fails the fix with S3's reason.

    The topic (``topic_name``; one per account and Region, as S3 notifies only a topic in
    the bucket's Region) is created when missing, and its policy lets S3 publish for this
    account's buckets only. The revert puts the earlier configuration back exactly; the topic
    stays, as other buckets may notify it.

        remediation:
          action: s3.enable-event-notifications
          parameters: {topic_name: asr-s3-event-notifications, event_types: []}
    """

    name = "s3.enable-event-notifications"
    service = "s3"
    permissions = (
        "s3:GetBucketNotification",
        "s3:PutBucketNotification",
        "s3:GetBucketLocation",
        "sns:GetTopicAttributes",
        "sns:CreateTopic",
        "sns:SetTopicAttributes",
        "sts:GetCallerIdentity",
    )
    summary = "sent the bucket's event notifications to the SNS topic {topic_name}"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "topic_name": topic_name_parameter("asr-s3-event-notifications"),
            "event_types": {
                "type": "array",
                "items": {"enum": list(S3_EVENT_TYPES)},
                "uniqueItems": True,
                "default": [],
            },
            "default_event_types": {
                "type": "array",
                "items": {"enum": list(S3_EVENT_TYPES)},
                "uniqueItems": True,
                "minItems": 1,
                "default": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
            },
        },
    }

    def _complies(self, configuration: dict[str, Any]) -> bool:
        notified = _notified_events(configuration)
        wanted = self.params["event_types"]
        if not wanted:
            return bool(notified)
        return any(events_overlap(event, type_) for event in notified for type_ in wanted)

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        response = clients.s3.get_bucket_notification_configuration(Bucket=resource_id)
        configuration = {part: response[part] for part in NOTIFICATION_PARTS if part in response}
        if self._complies(configuration):
            return {"NotificationConfiguration": configuration}
        account, partition = _caller(clients)
        region, _ = bucket_home(clients.s3, resource_id)
        return {
            "NotificationConfiguration": configuration,
            "TopicArn": f"arn:{partition}:sns:{region}:{account}:{self.params['topic_name']}",
            "Account": account,
            "Region": region,
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        configuration = state["NotificationConfiguration"]
        if self._complies(configuration):
            return {}
        ours = {
            "Id": NOTIFICATION_ID,
            "TopicArn": state["TopicArn"],
            "Events": list(self.params["event_types"] or self.params["default_event_types"]),
        }
        # An earlier fix's configuration for other event types: replaced, as S3.13 replaces its rule.
        topics = [t for t in configuration.get("TopicConfigurations", []) if t.get("Id") != NOTIFICATION_ID]
        return {"NotificationConfiguration": {**configuration, "TopicConfigurations": [*topics, ours]}}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        # S3 playbooks are global: the batch's clients may be of another Region than the bucket.
        sns = clients.in_region(state["Region"]).sns
        fresh = ensure_notification_topic(sns, state["TopicArn"], state["Account"])
        # S3 sends each destination a test message first: one made lately may refuse it for a
        # while, and is asked again as a new role is; any other refusal fails the fix at once.
        with_new_role(
            partial(
                clients.s3.put_bucket_notification_configuration,
                Bucket=resource_id,
                NotificationConfiguration=plan["NotificationConfiguration"],
            ),
            fresh,
            answered("InvalidArgument", saying=DESTINATION_REFUSED),
        )

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """The earlier configuration back, as it was. S3 does not test its destinations again:
        they were tested when it was set, and one that stopped accepting messages since must
        not keep the others from coming back."""
        clients.s3.put_bucket_notification_configuration(
            Bucket=resource_id,
            NotificationConfiguration=before["NotificationConfiguration"],
            SkipDestinationValidation=True,
        )
