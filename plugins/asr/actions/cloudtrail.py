"""CloudTrail fixes: a multi-Region trail, trail encryption, log file validation, CloudWatch Logs.

Also the pieces other logging fixes share: a private, encrypted log bucket whose policy
lets an AWS service deliver to it, created on first use and reused after.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from asr.actions import (
    Action,
    ServiceRole,
    answered,
    grant_name,
    register,
    role_name_parameter,
    service_trust,
    with_new_role,
)
from asr.actions.cloudwatch import RETENTION_DAYS
from asr.actions.s3 import bucket_home, ensure_log_bucket

if TYPE_CHECKING:
    from asr.aws import Clients

TRAIL_ARN = re.compile(r"^arn:(aws[a-z-]*):cloudtrail:([a-z0-9-]+):(\d{12}):trail/([A-Za-z0-9._-]{3,128})$")
TRAIL_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{1,126}[A-Za-z0-9]$"
KMS_ALIAS = r"^alias/(?!aws/)[A-Za-z0-9/_-]{1,250}$"
# A bucket name that may hold {account_id} and {region}, filled in for the account and Region fixed.
BUCKET_TEMPLATE = {
    "type": "string",
    "pattern": r"^(?:[a-z0-9.-]|\{account_id\}|\{region\})+$",
    "minLength": 3,
    "maxLength": 63,
}
ALL_MANAGEMENT_EVENTS = {"ReadWriteType": "All", "IncludeManagementEvents": True}
MANAGEMENT_CATEGORY = {"Field": "eventCategory", "Equals": ["Management"]}
MAX_EVENT_SELECTORS = 5  # basic event selectors per trail
TRAILS_PER_REGION = 5  # CloudTrail's quota, a multi-Region trail counting in every Region
# CloudTrail's "Access denied." while a new role, or a grant just put on one, reaches it.
NOT_USABLE_YET = ("InvalidCloudWatchLogsRoleArnException", "InvalidCloudWatchLogsLogGroupArnException")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def parse_trail_arn(arn: str) -> tuple[str, str, str, str]:
    """(partition, region, account, trail name) of a trail ARN."""
    match = TRAIL_ARN.match(arn)
    if not match:
        raise ValueError(f"{arn!r} is not a CloudTrail trail ARN")
    partition, region, account, name = match.groups()
    return partition, region, account, name


# --- Log buckets -------------------------------------------------------------------------------


def log_bucket_name(template: str, account: str, region: str) -> str:
    return template.format(account_id=account, region=region)


def _cloudtrail_bucket_statements(partition: str, bucket: str, account: str, trail_arn: str) -> list[Any]:
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    service = {"Service": "cloudtrail.amazonaws.com"}
    return [
        {
            "Sid": "ASRCloudTrailAclCheck",
            "Effect": "Allow",
            "Principal": service,
            "Action": "s3:GetBucketAcl",
            "Resource": bucket_arn,
            "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}},
        },
        {
            "Sid": "ASRCloudTrailWrite",
            "Effect": "Allow",
            "Principal": service,
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/AWSLogs/{account}/*",
            "Condition": {
                "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail_arn}
            },
        },
    ]


# --- The trail's KMS key -----------------------------------------------------------------------


def _cloudtrail_key_policy(partition: str, account: str, maker: str) -> dict[str, Any]:
    """The account administers the key; CloudTrail encrypts this account's trails; the account
    decrypts. ``maker``, the role creating the key, may put its policy: KMS's lockout check on
    CreateKey asks that, and granting it here spares the role kms:PutKeyPolicy on every key."""
    trails = f"arn:{partition}:cloudtrail:*:{account}:trail/*"
    service = {"Service": "cloudtrail.amazonaws.com"}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EnableAccountAdministration",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "AllowASRToPutThisKeyPolicy",
                "Effect": "Allow",
                "Principal": {"AWS": maker},
                "Action": "kms:PutKeyPolicy",
                "Resource": "*",
            },
            {
                "Sid": "AllowCloudTrailToEncryptLogs",
                "Effect": "Allow",
                "Principal": service,
                "Action": "kms:GenerateDataKey*",
                "Resource": "*",
                "Condition": {"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": trails}},
            },
            {
                "Sid": "AllowCloudTrailToDescribeKey",
                "Effect": "Allow",
                "Principal": service,
                "Action": "kms:DescribeKey",
                "Resource": "*",
            },
            {
                "Sid": "AllowAccountToDecryptLogs",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Decrypt", "kms:ReEncryptFrom"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"kms:CallerAccount": account},
                    "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": trails},
                },
            },
        ],
    }


log = logging.getLogger(__name__)
# How KMS answers calls about a key made moments ago, and CloudTrail a bucket policy or key
# written moments ago (``with_new_role``): asked again after a while.
KEY_NOT_READY = answered(("NotFoundException", "KMSInvalidStateException"))
TRAIL_TARGETS_NOT_READY = answered(
    (
        "InsufficientS3BucketPolicyException",
        "InsufficientEncryptionPolicyException",
        "KmsKeyNotFoundException",
    )
)
# CloudTrail's ConflictException means only "the resource is not ready for an operation ...
# another operation is modifying the resource ... try the operation again" (its API reference),
# whatever the message: the fixes of CloudTrail.1, .2, .4 and .5 may update one trail at once.
NOT_READY = frozenset({"ConflictException"})
# How long a key counts as new: a fix tried again after CloudTrail said the trail was busy
# finds the key its first attempt made moments ago, which CloudTrail may not see yet either.
KEY_NEW_FOR = timedelta(minutes=10)
_KEY_LOCKS: defaultdict[tuple[str, str, str], threading.Lock] = defaultdict(threading.Lock)


def ensure_cloudtrail_key(clients: Clients, alias: str, create: bool = True) -> tuple[str, bool]:
    """The ARN of the key behind ``alias`` and whether it is new (made now, or minutes ago by
    another task or an earlier try of this fix: CloudTrail may not see it yet), creating it
    (rotated, CloudTrail allowed) if the alias is free; when not ``create``, a free alias
    raises KMS's NotFoundException.

    An existing key is used as it is: its policy is its owner's, and CloudTrail itself
    refuses a key whose policy does not let it encrypt. The threads of a task make it one
    at a time; another process that made it first wins, and the key made here is logged as unused.
    """
    kms, account = clients.kms, clients.account_id
    with _KEY_LOCKS[(account, kms.meta.region_name, alias)]:
        try:
            key = kms.describe_key(KeyId=alias)["KeyMetadata"]
        except kms.exceptions.NotFoundException:
            if not create:
                raise
            policy = _cloudtrail_key_policy(kms.meta.partition, account, clients.role_arn)
            key = kms.create_key(
                Description="CloudTrail log encryption (created by ASR)", Policy=json.dumps(policy)
            )["KeyMetadata"]
            # Throttled here, the fix's own retry would start over and make a second key (the
            # alias that finds this one is not there yet): the two calls are retried on their own.
            from asr.remediate import retry_throttled  # not at import: it imports the actions

            # KMS is eventually consistent: a key moments old may be "not found" or in an
            # invalid state to the next calls, which would fail the fix and leave the key
            # without its alias (the next run would make another).
            def new_key_call(call: Callable[[], Any]) -> Any:
                return with_new_role(lambda: retry_throttled(call), True, KEY_NOT_READY)

            new_key_call(lambda: kms.enable_key_rotation(KeyId=key["KeyId"]))
            try:
                new_key_call(lambda: kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"]))
                return str(key["Arn"]), True
            except kms.exceptions.AlreadyExistsException:
                made = key
                key = kms.describe_key(KeyId=alias)["KeyMetadata"]
                if key["KeyId"] == made["KeyId"]:  # a resent CreateAlias KMS had already taken
                    return str(made["Arn"]), True
                log.warning(
                    "%s was made meanwhile by another task; KMS key %s, made here, is unused: "
                    "schedule its deletion",
                    alias,
                    made["Arn"],
                )
    if key.get("KeyState") != "Enabled":
        raise ValueError(f"KMS key {alias} is {key.get('KeyState')}, not Enabled: CloudTrail cannot use it")
    created = key.get("CreationDate")
    return str(key["Arn"]), bool(created and datetime.now(UTC) - created < KEY_NEW_FOR)


# No kms:PutKeyPolicy: the lockout check of CreateKey finds it in the new key's own policy.
KMS_KEY_PERMISSIONS = (
    "kms:DescribeKey",
    "kms:CreateKey",
    "kms:EnableKeyRotation",
    "kms:CreateAlias",
)
LOG_BUCKET_PERMISSIONS = (
    "s3:GetBucketLocation",
    "s3:CreateBucket",
    "s3:PutBucketOwnershipControls",
    "s3:GetBucketPublicAccessBlock",
    "s3:PutBucketPublicAccessBlock",
    "s3:GetEncryptionConfiguration",
    "s3:PutEncryptionConfiguration",
    "s3:GetBucketPolicy",
    "s3:PutBucketPolicy",
    "s3:GetBucketPolicyStatus",  # only to explain a refusal (``put_statements``)
)


# --- Reading trails ----------------------------------------------------------------------------


def _trail(cloudtrail: Any, name_or_arn: str) -> dict[str, Any]:
    return dict(cloudtrail.get_trail(Name=name_or_arn)["Trail"])


def _trail_exists(cloudtrail: Any, name: str) -> bool:
    try:
        _trail(cloudtrail, name)
    except ClientError as exc:
        if _code(exc) == "TrailNotFoundException":
            return False
        raise
    return True


def own_trails(cloudtrail: Any, account: str) -> list[dict[str, Any]]:
    """The account's own trails this Region sees: its own, and its multi-Region ones homed
    elsewhere (not an organization's, which the management account owns). Not asked by name:
    CloudTrail then answers only for trails homed in the Region asked."""
    trails = cloudtrail.describe_trails(includeShadowTrails=True)["trailList"]
    return [t for t in trails if t.get("TrailARN", "").split(":")[4:5] == [account]]


def _refuse_a_trail_too_many(trails: list[dict[str, Any]], region: str) -> None:
    """CloudTrail keeps at most five trails of an account per Region, a multi-Region trail
    counting in each: refused before a bucket and a KMS key are made for a trail that cannot
    be (``trails``: the account's own, as this Region sees them)."""
    if len(trails) >= TRAILS_PER_REGION:
        names = ", ".join(sorted(t["Name"] for t in trails))
        raise ValueError(
            f"{region} has {len(trails)} trails already ({names}), CloudTrail's most: make one of "
            "them multi-Region and logging every management event, or delete one, and fix it again"
        )


def _home_region(trails: list[dict[str, Any]], name: str) -> str | None:
    """The home Region of the trail of that name among ``trails``, wherever they are seen from."""
    for trail in trails:
        if trail.get("Name") == name:
            return str(trail.get("HomeRegion") or "") or None
    return None


def _records_all_management_events(cloudtrail: Any, trail_arn: str) -> bool:
    """Whether the trail's selectors take every read and write management event."""
    selectors = cloudtrail.get_event_selectors(TrailName=trail_arn)
    for basic in selectors.get("EventSelectors") or []:
        if (
            basic.get("IncludeManagementEvents", True)
            and basic.get("ReadWriteType", "All") == "All"
            and not basic.get("ExcludeManagementEventSources")
        ):
            return True
    for advanced in selectors.get("AdvancedEventSelectors") or []:
        fields = {f["Field"]: f for f in advanced.get("FieldSelectors", [])}
        category = fields.pop("eventCategory", {})
        if category.get("Equals") == ["Management"] and not fields:
            return True
    return False


def _add_management_events(cloudtrail: Any, trail_arn: str) -> None:
    """Make the trail take every management event, keeping the data events it records:
    a selector for management events is added to its advanced selectors, or to its basic
    selectors that name data resources (those that name none only took management events)."""
    selectors = cloudtrail.get_event_selectors(TrailName=trail_arn)
    advanced = selectors.get("AdvancedEventSelectors") or []
    if advanced:
        management = {"Name": "All management events", "FieldSelectors": [MANAGEMENT_CATEGORY]}
        cloudtrail.put_event_selectors(TrailName=trail_arn, AdvancedEventSelectors=[*advanced, management])
        return
    data = [s for s in selectors.get("EventSelectors") or [] if s.get("DataResources")]
    if len(data) >= MAX_EVENT_SELECTORS:
        raise ValueError(
            f"trail {trail_arn} has {len(data)} data event selectors, CloudTrail's most: "
            "add management events to one of them by hand"
        )
    cloudtrail.put_event_selectors(TrailName=trail_arn, EventSelectors=[*data, ALL_MANAGEMENT_EVENTS])


def logs_all_management_events(cloudtrail: Any, trail_arn: str) -> bool:
    """Whether the trail is logging and takes every read and write management event (ask its
    home Region: CloudTrail documents reading a copy's status elsewhere, not its selectors)."""
    logging = cloudtrail.get_trail_status(Name=trail_arn).get("IsLogging", False)
    return bool(logging) and _records_all_management_events(cloudtrail, trail_arn)


# --- Actions -----------------------------------------------------------------------------------


@register
class EnsureMultiRegionTrail(Action):
    """Make sure the account has a multi-Region trail logging every management event.

    An account that already has one (any name) is left alone. Otherwise the trail named
    ``trail_name`` is created, or repaired if it exists: multi-Region, log file
    validation on, SSE-KMS with the key behind ``kms_key_alias`` (created if the alias
    is free), delivering to ``bucket_name`` (created private and encrypted, with a
    policy CloudTrail can write through), and logging. Other trails are not touched.

        remediation:
          action: cloudtrail.ensure-multi-region-trail
          parameters: {trail_name: asr-multi-region-trail, kms_key_alias: alias/asr-cloudtrail}
    """

    name = "cloudtrail.ensure-multi-region-trail"
    service = "cloudtrail"
    busy_errors = NOT_READY
    permissions = (
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetTrailStatus",
        "cloudtrail:GetEventSelectors",
        "cloudtrail:GetTrail",
        "cloudtrail:CreateTrail",
        "cloudtrail:UpdateTrail",
        "cloudtrail:PutEventSelectors",
        "cloudtrail:StartLogging",
        *LOG_BUCKET_PERMISSIONS,
        *KMS_KEY_PERMISSIONS,
    )
    summary = "ensured multi-Region trail {trail_name} is logging all management events, encrypted with KMS"
    irreversible = (
        "it creates a trail, its log bucket and a KMS key, or repairs an existing trail whose earlier "
        "settings it does not record; a KMS key can only be scheduled for deletion, and removing the "
        "trail would discard the account's record of API activity"
    )
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "trail_name": {"type": "string", "pattern": TRAIL_NAME, "default": "asr-multi-region-trail"},
            "bucket_name": {**BUCKET_TEMPLATE, "default": "asr-cloudtrail-logs-{account_id}-{region}"},
            "kms_key_alias": {"type": "string", "pattern": KMS_ALIAS, "default": "alias/asr-cloudtrail"},
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        trails = clients.cloudtrail.describe_trails(includeShadowTrails=True)["trailList"]
        # A trail's status and selectors are asked of its home Region: CloudTrail documents
        # reading the status of a multi-Region trail's copy elsewhere, not its selectors.
        compliant = [
            trail["Name"]
            for trail in trails
            if trail.get("IsMultiRegionTrail")
            and logs_all_management_events(
                clients.in_region(trail.get("HomeRegion") or clients.region).cloudtrail, trail["TrailARN"]
            )
        ]
        return {"MultiRegionLoggingTrails": sorted(compliant)}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return (
            {}
            if state["MultiRegionLoggingTrails"]
            else {"MultiRegionLoggingTrails": [self.params["trail_name"]]}
        )

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        account, name = resource_id, self.params["trail_name"]
        # A trail of that name homed in another Region (the fix of another Region's finding
        # made it) is repaired there: only its home Region may change it, and creating it here
        # would clash with its name, after making a second bucket and KMS key for nothing.
        trails = own_trails(clients.cloudtrail, account)
        home = _home_region(trails, name)
        if home and home != clients.region:
            clients = clients.in_region(home)
        cloudtrail = clients.cloudtrail
        region, partition = cloudtrail.meta.region_name, cloudtrail.meta.partition
        trail_arn = f"arn:{partition}:cloudtrail:{region}:{account}:trail/{name}"
        exists = _trail_exists(cloudtrail, name)
        if not exists:  # then the trails are this Region's: a trail homed elsewhere exists
            _refuse_a_trail_too_many(trails, region)
        bucket = log_bucket_name(self.params["bucket_name"], account, region)
        wrote = ensure_log_bucket(
            clients.s3, bucket, _cloudtrail_bucket_statements(partition, bucket, account, trail_arn)
        )
        key_arn, made = ensure_cloudtrail_key(clients, self.params["kms_key_alias"])
        settings = {
            "S3BucketName": bucket,
            "IsMultiRegionTrail": True,
            "IncludeGlobalServiceEvents": True,
            "EnableLogFileValidation": True,
            "KmsKeyId": key_arn,
        }
        # CloudTrail checks the bucket policy and the key as they are now: written moments ago,
        # they may not have reached it yet (a refusal of older ones stands at once).
        write = cloudtrail.update_trail if exists else cloudtrail.create_trail
        with_new_role(lambda: write(Name=name, **settings), wrote or made, TRAIL_TARGETS_NOT_READY)
        if not _records_all_management_events(cloudtrail, trail_arn):
            _add_management_events(cloudtrail, trail_arn)
        cloudtrail.start_logging(Name=name)


@register
class EnableTrailEncryption(Action):
    """Encrypt a trail's log files with SSE-KMS.

    Uses the key behind ``kms_key_alias`` in the trail's Region, creating it (rotation on,
    a key policy that lets CloudTrail encrypt this account's trails) if the alias is free.
    CloudTrail needs the key in its bucket's Region: a trail delivering to a bucket in
    another Region is reported, not changed. So is one delivering to another account's
    bucket (a central log archive) while the alias is free: a key made here would let only
    this account decrypt, and the archive's readers would lose the new logs. A key of that
    alias, made for them, is used as it is.

        remediation:
          action: cloudtrail.enable-kms-encryption
          parameters: {kms_key_alias: alias/asr-cloudtrail}
    """

    name = "cloudtrail.enable-kms-encryption"
    service = "cloudtrail"
    busy_errors = NOT_READY
    permissions = (
        "cloudtrail:GetTrail",
        "cloudtrail:UpdateTrail",
        "s3:GetBucketLocation",
        *KMS_KEY_PERMISSIONS,
    )
    summary = "encrypted the trail's log files with the KMS key {kms_key_alias}"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "kms_key_alias": {"type": "string", "pattern": KMS_ALIAS, "default": "alias/asr-cloudtrail"},
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        trail = _trail(clients.cloudtrail, resource_id)
        return {"KmsKeyId": trail.get("KmsKeyId") or None, "S3BucketName": trail.get("S3BucketName")}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["KmsKeyId"] else {"KmsKeyId": self.params["kms_key_alias"]}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        _, region, _, _ = parse_trail_arn(resource_id)
        bucket, alias = state["S3BucketName"], self.params["kms_key_alias"]
        where, own = bucket_home(clients.s3, bucket)
        if where != region:
            raise ValueError(
                f"the trail delivers to bucket {bucket} in {where}; CloudTrail needs the KMS key in the "
                f"bucket's Region, not the trail's ({region})"
            )
        try:
            key_arn, made = ensure_cloudtrail_key(clients, alias, create=own)
        except clients.kms.exceptions.NotFoundException:
            if own:  # a new key KMS still said it did not know: not the archive's case
                raise
            raise ValueError(
                f"the trail delivers to bucket {bucket} of another account (a central log archive): a "
                f"key made here would let only this account decrypt the logs, and the archive's "
                f"readers would lose the new ones; make {alias} in this account a key they may use "
                "(or name one in kms_key_alias), and it is used as it is"
            ) from None
        with_new_role(
            lambda: clients.cloudtrail.update_trail(Name=resource_id, KmsKeyId=key_arn),
            made,
            TRAIL_TARGETS_NOT_READY,
        )

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """SSE-S3 again (an empty key id); the key stays, for the logs it encrypted meanwhile."""
        clients.cloudtrail.update_trail(Name=resource_id, KmsKeyId="")


@register
class EnableLogFileValidation(Action):
    """Turn on log file integrity validation, so tampering with delivered logs can be detected.

    remediation:
      action: cloudtrail.enable-log-file-validation
    """

    name = "cloudtrail.enable-log-file-validation"
    service = "cloudtrail"
    busy_errors = NOT_READY
    permissions = ("cloudtrail:GetTrail", "cloudtrail:UpdateTrail")
    summary = "enabled log file validation on the trail"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        trail = _trail(clients.cloudtrail, resource_id)
        return {"LogFileValidationEnabled": bool(trail.get("LogFileValidationEnabled"))}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["LogFileValidationEnabled"] else {"LogFileValidationEnabled": True}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.cloudtrail.update_trail(Name=resource_id, EnableLogFileValidation=True)

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        clients.cloudtrail.update_trail(Name=resource_id, EnableLogFileValidation=False)


def _delivery_grants(params: Mapping[str, Any], partition: str, account: str) -> dict[str, dict[str, Any]]:
    """Write streams of the log groups the playbook names, in any Region (``{trail_name}``
    becomes ``*``): the member-role stack writes this grant once, so it cannot name each trail."""
    groups = params["log_group_name"].replace("{trail_name}", "*")
    grant = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"arn:{partition}:logs:*:{account}:log-group:{groups}:log-stream:*",
            }
        ],
    }
    return {grant_name("cloudtrail-to", groups): grant}


# The log group CloudTrail.5 makes is tagged so, as the call makes it: a fix that died between
# making it and giving it its retention left a group that keeps its logs for ever, which the
# next fix can then tell from a group someone made without a retention on purpose.
LOG_GROUP_MADE_FOR = {"asr:made-for": "CloudTrail.5"}


def _ensure_log_group(logs: Any, name: str, retention_days: int) -> None:
    """Create the log group with this retention; an existing one keeps its own, unless it is
    one asr made that has none (the fix that made it died before giving it one)."""
    try:
        logs.create_log_group(logGroupName=name, tags=LOG_GROUP_MADE_FOR)
    except logs.exceptions.ResourceAlreadyExistsException:
        pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name)
        group = next((g for page in pages for g in page["logGroups"] if g["logGroupName"] == name), None)
        if group is None or group.get("retentionInDays"):
            return
        tags = logs.list_tags_for_resource(resourceArn=group["arn"].removesuffix(":*"))["tags"]
        if not LOG_GROUP_MADE_FOR.items() <= tags.items():
            return
    logs.put_retention_policy(logGroupName=name, retentionInDays=retention_days)


@register
class SendTrailToCloudWatchLogs(Action):
    """Deliver a trail's events to CloudWatch Logs, where metric filters and alarms can watch them.

    Creates (or reuses) the log group ``log_group_name`` (``{trail_name}`` is filled in)
    with ``log_group_retention_days`` when created (tagged ``asr:made-for`` = ``CloudTrail.5``).
    CloudTrail writes to it through the IAM
    role ``role_name``, trusted by CloudTrail for this account only, with an inline policy to
    write to the log groups that name makes: the member-role stack makes it.

        remediation:
          action: cloudtrail.send-to-cloudwatch-logs
          parameters: {log_group_name: "CloudTrail/{trail_name}", role_name: asr-service-cloudtrail-logs}
    """

    name = "cloudtrail.send-to-cloudwatch-logs"
    service = "cloudtrail"
    busy_errors = NOT_READY
    permissions = (
        "cloudtrail:GetTrail",
        "cloudtrail:UpdateTrail",
        "logs:CreateLogGroup",
        "logs:TagResource",
        "logs:DescribeLogGroups",
        "logs:ListTagsForResource",
        "logs:PutRetentionPolicy",
        "iam:GetRole",
        "iam:GetRolePolicy",
        "iam:PassRole",
    )
    service_role = ServiceRole(
        service_trust("cloudtrail.amazonaws.com", source_account=True),
        "Lets CloudTrail deliver trail events to CloudWatch Logs (ASR, for CloudTrail.5)",
        grants=_delivery_grants,
    )
    summary = "sent the trail's events to CloudWatch Logs, delivered through role {role_name}"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "log_group_name": {
                "type": "string",
                "pattern": r"^(?:[A-Za-z0-9._/#-]|\{trail_name\})+$",
                "maxLength": 512,
                "default": "CloudTrail/{trail_name}",
            },
            "log_group_retention_days": {"enum": list(RETENTION_DAYS), "default": 365},
            "role_name": role_name_parameter("asr-service-cloudtrail-logs"),
        },
    }

    def _log_group(self, trail_arn: str) -> tuple[str, str]:
        """The log group's name and the ARN CloudTrail takes for it (with the ``:*`` suffix)."""
        partition, region, account, trail_name = parse_trail_arn(trail_arn)
        group = self.params["log_group_name"].format(trail_name=trail_name)
        return group, f"arn:{partition}:logs:{region}:{account}:log-group:{group}:*"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        trail = _trail(clients.cloudtrail, resource_id)
        return {
            "CloudWatchLogsLogGroupArn": trail.get("CloudWatchLogsLogGroupArn") or None,
            "TrailARN": trail.get("TrailARN", resource_id),
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        if state["CloudWatchLogsLogGroupArn"]:
            return {}
        return {"CloudWatchLogsLogGroupArn": self._log_group(state["TrailARN"])[1]}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        role, fresh = self.ready_role(clients)  # first: a fix that cannot deliver makes no group
        group, group_arn = self._log_group(resource_id)
        _ensure_log_group(clients.logs, group, self.params["log_group_retention_days"])
        with_new_role(
            lambda: clients.cloudtrail.update_trail(
                Name=resource_id, CloudWatchLogsLogGroupArn=group_arn, CloudWatchLogsRoleArn=role["Arn"]
            ),
            fresh,
            answered(NOT_USABLE_YET, saying="access denied"),
        )

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Stop the delivery (empty group and role); the log group and the role stay, with what was
        delivered meanwhile."""
        clients.cloudtrail.update_trail(
            Name=resource_id, CloudWatchLogsLogGroupArn="", CloudWatchLogsRoleArn=""
        )
