"""Logging and detection fixes (CloudTrail, CloudWatch Logs retention, Config, GuardDuty) in detail.

The generic harness (test_actions.py) proves each fixes its seeded resource; these prove
what each leaves alone, what it reuses, and what it refuses with a reason.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import Refusals, hooked

from asr import local
from asr.aws import Clients
from asr.findings import parse_finding
from asr.local import MEMBER_ACCOUNT
from asr.local.request_log_ext import is_write
from asr.local.seed import Seeded, finding, seed_one
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource

REGION = "us-east-1"
ACCOUNT_TRAIL = "asr-multi-region-trail"
CLOUDTRAIL_BUCKET = f"asr-cloudtrail-logs-{MEMBER_ACCOUNT}-{REGION}"
CONFIG_BUCKET = f"asr-config-{MEMBER_ACCOUNT}-{REGION}"
ALIAS = "alias/asr-cloudtrail"


@pytest.fixture
def clients(aws) -> Clients:  # type: ignore[no-untyped-def]
    return Clients(aws, MEMBER_ACCOUNT, REGION)


def fix(clients: Clients, control: str, resource_id: str, **params: Any) -> Result:
    action = registry().playbooks[control].build_action(params)
    return remediate_resource(action, clients, resource_id)


def writes_during(call: Any) -> list[str]:
    """The write calls the stand-in served while ``call`` ran."""
    local.served_requests(clear=True)
    call()
    return [f"{c['service']}.{c['action']}" for c in local.served_requests() if is_write(c)]


def trail(clients: Clients, name: str) -> dict[str, Any]:
    return dict(clients.cloudtrail.get_trail(Name=name)["Trail"])


def make_trail(clients: Clients, name: str, **settings: Any) -> str:
    clients.s3.create_bucket(Bucket=f"{name}-logs")
    return str(
        clients.cloudtrail.create_trail(Name=name, S3BucketName=f"{name}-logs", **settings)["TrailARN"]
    )


def policy_sids(clients: Clients, bucket: str) -> set[str]:
    policy = json.loads(clients.s3.get_bucket_policy(Bucket=bucket)["Policy"])
    return {s["Sid"] for s in policy["Statement"]}


# --- CloudTrail.1 ------------------------------------------------------------------------------


def test_multi_region_trail_is_created_encrypted_validated_and_logging(aws, clients: Clients) -> None:
    seed_one(aws, "CloudTrail.1", MEMBER_ACCOUNT, REGION)
    regional = clients.cloudtrail.describe_trails()["trailList"]

    result = fix(clients, "CloudTrail.1", MEMBER_ACCOUNT)

    assert result.status == Status.REMEDIATED, result.message
    assert result.after == {"MultiRegionLoggingTrails": [ACCOUNT_TRAIL]}
    created = trail(clients, ACCOUNT_TRAIL)
    assert created["IsMultiRegionTrail"] and created["LogFileValidationEnabled"]
    assert created["S3BucketName"] == CLOUDTRAIL_BUCKET
    key = clients.kms.describe_key(KeyId=ALIAS)["KeyMetadata"]
    assert created["KmsKeyId"] == key["Arn"]
    assert clients.kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]
    key_policy = json.loads(clients.kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    assert {"Service": "cloudtrail.amazonaws.com"} in [s["Principal"] for s in key_policy["Statement"]]
    # KMS's lockout check finds kms:PutKeyPolicy for the member role in the key's own policy.
    [put] = [s for s in key_policy["Statement"] if s["Action"] == "kms:PutKeyPolicy"]
    assert put["Principal"] == {"AWS": f"arn:aws:iam::{MEMBER_ACCOUNT}:role/ASRMemberRole"}
    assert clients.cloudtrail.get_trail_status(Name=ACCOUNT_TRAIL)["IsLogging"]
    assert {"ASRCloudTrailAclCheck", "ASRCloudTrailWrite", "ASRDenyInsecureTransport"} <= policy_sids(
        clients, CLOUDTRAIL_BUCKET
    )
    block = clients.s3.get_public_access_block(Bucket=CLOUDTRAIL_BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    # The account's own single-Region trail is untouched: still there, still logging.
    for before in regional:
        after = trail(clients, before["Name"])
        assert not after["IsMultiRegionTrail"]
        assert clients.cloudtrail.get_trail_status(Name=before["Name"])["IsLogging"]


NOT_FOUND = {"Code": "NotFoundException", "Message": "Key 'arn:aws:kms:us-east-1:1:key/x' does not exist"}


def test_a_key_and_bucket_policy_made_moments_ago_are_waited_for(aws, clients: Clients, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """KMS and CloudTrail are eventually consistent: the calls right after CreateKey may not
    find the key (the fix failed and left a key without its alias: the next run made another),
    and CloudTrail may not see yet the bucket policy just written. Each is asked again."""
    import asr.actions

    monkeypatch.setattr(asr.actions, "ROLE_PROPAGATION_DELAYS", (0.0, 0.0))
    seed_one(aws, "CloudTrail.1", MEMBER_ACCOUNT, REGION)
    rotation = Refusals(clients.kms, "EnableKeyRotation")
    rotation.next(NOT_FOUND)
    alias = Refusals(clients.kms, "CreateAlias")
    alias.next({"Code": "KMSInvalidStateException", "Message": "arn:aws:kms:... is pending creation."})
    create = Refusals(clients.cloudtrail, "CreateTrail")
    create.next({"Code": "InsufficientS3BucketPolicyException", "Message": "Incorrect S3 bucket policy"})

    result = fix(clients, "CloudTrail.1", MEMBER_ACCOUNT)

    assert result.status == Status.REMEDIATED, result.message
    assert (rotation.calls, alias.calls, create.calls) == (2, 2, 2)
    [key] = clients.kms.list_keys()["Keys"]
    assert (
        trail(clients, ACCOUNT_TRAIL)["KmsKeyId"]
        == clients.kms.describe_key(KeyId=ALIAS)["KeyMetadata"]["Arn"]
    )
    assert clients.kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]


def test_a_trail_bucket_a_dead_fix_made_is_made_private_and_encrypted(clients: Clients) -> None:
    """Made, then the fix died: the next found the bucket and put only its policy."""
    clients.s3.create_bucket(Bucket=CLOUDTRAIL_BUCKET)
    assert fix(clients, "CloudTrail.1", MEMBER_ACCOUNT).status == Status.REMEDIATED
    block = clients.s3.get_public_access_block(Bucket=CLOUDTRAIL_BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    encryption = clients.s3.get_bucket_encryption(Bucket=CLOUDTRAIL_BUCKET)[
        "ServerSideEncryptionConfiguration"
    ]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_any_multi_region_trail_logging_all_management_events_counts(clients: Clients) -> None:
    make_trail(clients, "company-trail", IsMultiRegionTrail=True)
    clients.cloudtrail.start_logging(Name="company-trail")
    assert fix(clients, "CloudTrail.1", MEMBER_ACCOUNT).status == Status.ALREADY_COMPLIANT

    # Write-only management events do not satisfy the control: the fix adds its own trail.
    clients.cloudtrail.put_event_selectors(
        TrailName="company-trail",
        EventSelectors=[{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}],
    )
    assert fix(clients, "CloudTrail.1", MEMBER_ACCOUNT).status == Status.REMEDIATED
    assert trail(clients, "company-trail")["IsMultiRegionTrail"]
    names = {t["Name"] for t in clients.cloudtrail.describe_trails()["trailList"]}
    assert names == {"company-trail", ACCOUNT_TRAIL}


def test_a_region_with_five_trails_is_refused_before_a_bucket_or_key_is_made(clients: Clients) -> None:
    for n in range(5):
        make_trail(clients, f"team-{n}")  # single-Region, and not the configured name
    result = fix(clients, "CloudTrail.1", MEMBER_ACCOUNT)
    assert result.status == Status.FAILED
    assert "has 5 trails already (team-0, team-1, team-2, team-3, team-4)" in result.message
    assert CLOUDTRAIL_BUCKET not in [b["Name"] for b in clients.s3.list_buckets()["Buckets"]]
    assert ALIAS not in [a["AliasName"] for a in clients.kms.list_aliases()["Aliases"]]


def test_the_organization_s_trail_does_not_count_toward_a_member_s_five() -> None:
    import boto3
    from botocore.stub import Stubber

    from asr.actions.cloudtrail import _refuse_a_trail_too_many, own_trails

    cloudtrail = boto3.client(
        "cloudtrail", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(cloudtrail)
    owners = [OTHER_ACCOUNT] + [MEMBER_ACCOUNT] * 4  # the management account's organization trail
    trails = [
        {"Name": f"t{n}", "TrailARN": f"arn:aws:cloudtrail:{REGION}:{owner}:trail/t{n}"}
        for n, owner in enumerate(owners)
    ]
    stubber.add_response("describe_trails", {"trailList": trails}, {"includeShadowTrails": True})
    stubber.activate()
    own = own_trails(cloudtrail, MEMBER_ACCOUNT)
    assert [t["Name"] for t in own] == ["t1", "t2", "t3", "t4"]
    _refuse_a_trail_too_many(own, REGION)  # four of its own: room for one
    with pytest.raises(ValueError, match="has 5 trails already"):
        _refuse_a_trail_too_many([*own, {"Name": "t5"}], REGION)


def test_a_trail_homed_elsewhere_is_read_in_its_home(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    """A multi-Region trail's selectors are asked of its home Region: CloudTrail does not
    document serving them from the copies elsewhere (and has answered TrailNotFound there)."""
    home = Clients(aws, MEMBER_ACCOUNT, "eu-west-1")
    home.s3.create_bucket(
        Bucket="company-logs", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    home.cloudtrail.create_trail(Name="company-trail", S3BucketName="company-logs", IsMultiRegionTrail=True)
    home.cloudtrail.start_logging(Name="company-trail")

    def not_here(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "TrailNotFoundException", "Message": "Unknown trail"}}, "GetEventSelectors"
        )

    clients.cloudtrail.meta.events.register("before-call.cloudtrail.GetEventSelectors", not_here)
    assert fix(clients, "CloudTrail.1", MEMBER_ACCOUNT).status == Status.ALREADY_COMPLIANT


def test_a_stopped_trail_of_the_configured_name_is_repaired_not_duplicated(clients: Clients) -> None:
    make_trail(clients, ACCOUNT_TRAIL)
    result = fix(clients, "CloudTrail.1", MEMBER_ACCOUNT)
    assert result.status == Status.REMEDIATED, result.message
    assert [t["Name"] for t in clients.cloudtrail.describe_trails()["trailList"]] == [ACCOUNT_TRAIL]
    repaired = trail(clients, ACCOUNT_TRAIL)
    assert repaired["IsMultiRegionTrail"] and repaired["S3BucketName"] == CLOUDTRAIL_BUCKET


def test_a_stopped_trail_homed_in_another_region_is_repaired_in_its_home(aws, clients: Clients) -> None:
    """Each Region's CloudTrail.1 finding fails once the trail stops: the fix run from another
    Region repairs the trail where it lives, and makes no bucket, key or trail of its own."""
    assert fix(clients, "CloudTrail.1", MEMBER_ACCOUNT).status == Status.REMEDIATED
    clients.cloudtrail.stop_logging(Name=ACCOUNT_TRAIL)
    elsewhere = Clients(aws, MEMBER_ACCOUNT, "eu-west-1")

    result = fix(elsewhere, "CloudTrail.1", MEMBER_ACCOUNT)
    assert result.status == Status.REMEDIATED, result.message
    assert clients.cloudtrail.get_trail_status(Name=ACCOUNT_TRAIL)["IsLogging"]
    assert elsewhere.cloudtrail.describe_trails(includeShadowTrails=False)["trailList"] == []
    assert ALIAS not in {a["AliasName"] for a in elsewhere.kms.list_aliases()["Aliases"]}
    buckets = {b["Name"] for b in clients.s3.list_buckets()["Buckets"]}
    assert f"asr-cloudtrail-logs-{MEMBER_ACCOUNT}-eu-west-1" not in buckets


S3_DATA_EVENTS = {
    "EventSelectors": [
        {
            "ReadWriteType": "WriteOnly",
            "IncludeManagementEvents": False,
            "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::payroll/"]}],
        }
    ]
}
S3_DATA_EVENTS_ADVANCED = {
    "AdvancedEventSelectors": [
        {
            "Name": "payroll objects",
            "FieldSelectors": [
                {"Field": "eventCategory", "Equals": ["Data"]},
                {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
            ],
        }
    ]
}


@pytest.mark.parametrize("selectors", [S3_DATA_EVENTS, S3_DATA_EVENTS_ADVANCED], ids=["basic", "advanced"])
def test_a_repaired_trail_keeps_the_data_events_it_records(
    clients: Clients, selectors: dict[str, Any]
) -> None:
    make_trail(clients, ACCOUNT_TRAIL, IsMultiRegionTrail=True)
    clients.cloudtrail.put_event_selectors(TrailName=ACCOUNT_TRAIL, **selectors)
    clients.cloudtrail.start_logging(Name=ACCOUNT_TRAIL)

    assert fix(clients, "CloudTrail.1", MEMBER_ACCOUNT).status == Status.REMEDIATED

    now = clients.cloudtrail.get_event_selectors(TrailName=ACCOUNT_TRAIL)
    [(kind, kept)] = selectors.items()
    assert now[kind][0] == kept[0], "the data events are still recorded"
    assert len(now[kind]) == 2
    assert fix(clients, "CloudTrail.1", MEMBER_ACCOUNT).status == Status.ALREADY_COMPLIANT


def test_an_existing_log_bucket_keeps_its_other_policy_statements(clients: Clients) -> None:
    clients.s3.create_bucket(Bucket=CLOUDTRAIL_BUCKET)
    keep = {
        "Sid": "AuditorsRead",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{MEMBER_ACCOUNT}:root"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{CLOUDTRAIL_BUCKET}/*",
    }
    # The console's statement under its usual Sid, letting an organization trail deliver here.
    org_trail = {
        "Sid": "AWSCloudTrailWrite",
        "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{CLOUDTRAIL_BUCKET}/AWSLogs/o-example/*",
        "Condition": {
            "StringEquals": {"aws:SourceArn": "arn:aws:cloudtrail:us-east-1:111111111111:trail/org"}
        },
    }
    clients.s3.put_bucket_policy(
        Bucket=CLOUDTRAIL_BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [keep, org_trail]})
    )
    assert fix(clients, "CloudTrail.1", MEMBER_ACCOUNT).status == Status.REMEDIATED
    policy = json.loads(clients.s3.get_bucket_policy(Bucket=CLOUDTRAIL_BUCKET)["Policy"])
    assert keep in policy["Statement"] and org_trail in policy["Statement"]
    assert "ASRCloudTrailWrite" in policy_sids(clients, CLOUDTRAIL_BUCKET)


# --- CloudTrail.2 / .4 / .5 --------------------------------------------------------------------


def test_trail_encryption_reuses_the_key_behind_the_alias(clients: Clients) -> None:
    arn = make_trail(clients, "payments")
    key = clients.kms.create_key(Description="existing")["KeyMetadata"]
    clients.kms.create_alias(AliasName=ALIAS, TargetKeyId=key["KeyId"])

    assert fix(clients, "CloudTrail.2", arn).status == Status.REMEDIATED
    assert trail(clients, arn)["KmsKeyId"] == key["Arn"]
    assert len(clients.kms.list_keys()["Keys"]) == 1


def test_a_new_key_kms_keeps_not_finding_fails_as_such_not_as_an_archive_s(
    clients: Clients, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The trail's bucket is the account's own: KMS's NotFoundException is its own error, not
    the 'another account's bucket' refusal."""
    import asr.actions

    monkeypatch.setattr(asr.actions, "ROLE_PROPAGATION_DELAYS", (0.0, 0.0))
    arn = make_trail(clients, "payments")
    Refusals(clients.kms, "EnableKeyRotation").next(*[NOT_FOUND] * 3)

    result = fix(clients, "CloudTrail.2", arn)
    assert result.status == Status.FAILED
    assert result.message.startswith("NotFoundException: Key"), result.message
    assert not trail(clients, arn).get("KmsKeyId")


def test_a_key_long_in_place_that_cloudtrail_refuses_fails_at_once(clients: Clients, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Only a key or bucket policy made moments ago is waited for: CloudTrail's refusal of
    an existing key (its policy does not let CloudTrail encrypt) stands at the first answer."""
    import datetime

    import asr.actions
    from asr.actions import cloudtrail

    monkeypatch.setattr(asr.actions, "ROLE_PROPAGATION_DELAYS", (0.0, 0.0))
    monkeypatch.setattr(cloudtrail, "KEY_NEW_FOR", datetime.timedelta(0))  # made long before
    arn = make_trail(clients, "payments")
    key = clients.kms.create_key(Description="existing")["KeyMetadata"]
    clients.kms.create_alias(AliasName=ALIAS, TargetKeyId=key["KeyId"])
    refusing = Refusals(clients.cloudtrail, "UpdateTrail")
    refused = {"Code": "InsufficientEncryptionPolicyException", "Message": "Insufficient permissions"}
    refusing.next(refused, refused, refused)

    result = fix(clients, "CloudTrail.2", arn)
    assert result.status == Status.FAILED
    assert result.message.startswith("InsufficientEncryptionPolicyException"), result.message
    assert refusing.calls == 1


def test_a_key_made_minutes_ago_is_waited_for_too(clients: Clients, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A fix tried again (CloudTrail said the trail was busy) finds the key its first attempt
    made moments ago: CloudTrail may not see that one yet either."""
    import asr.actions

    monkeypatch.setattr(asr.actions, "ROLE_PROPAGATION_DELAYS", (0.0, 0.0))
    arn = make_trail(clients, "payments")
    key = clients.kms.create_key(Description="made by an earlier try")["KeyMetadata"]
    clients.kms.create_alias(AliasName=ALIAS, TargetKeyId=key["KeyId"])
    refusing = Refusals(clients.cloudtrail, "UpdateTrail")
    refusing.next({"Code": "InsufficientEncryptionPolicyException", "Message": "Insufficient permissions"})

    result = fix(clients, "CloudTrail.2", arn)
    assert result.status == Status.REMEDIATED, result.message
    assert trail(clients, arn)["KmsKeyId"] == key["Arn"] and refusing.calls == 2


def test_trail_encryption_refuses_a_disabled_key(clients: Clients) -> None:
    arn = make_trail(clients, "payments")
    key = clients.kms.create_key(Description="retired")["KeyMetadata"]
    clients.kms.create_alias(AliasName=ALIAS, TargetKeyId=key["KeyId"])
    clients.kms.disable_key(KeyId=key["KeyId"])

    result = fix(clients, "CloudTrail.2", arn)
    assert result.status == Status.FAILED
    assert "not Enabled" in result.message
    assert not trail(clients, arn).get("KmsKeyId")


def test_trail_encryption_refuses_a_bucket_in_another_region(aws, clients: Clients) -> None:
    far = Clients(aws, MEMBER_ACCOUNT, "eu-west-1")
    far.s3.create_bucket(
        Bucket="logs-in-ireland", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    arn = str(clients.cloudtrail.create_trail(Name="payments", S3BucketName="logs-in-ireland")["TrailARN"])

    result = fix(clients, "CloudTrail.2", arn)

    assert result.status == Status.FAILED
    assert "eu-west-1" in result.message and "bucket's Region" in result.message
    assert not trail(clients, arn).get("KmsKeyId")
    assert clients.kms.list_keys()["Keys"] == []


def test_trails_encrypted_at_once_share_one_new_key(aws, clients: Clients) -> None:
    """A batch's threads fix several trails of an account at once: each used to make a key,
    and all but one failed on the alias, leaving billed keys behind."""
    from asr.remediate import run_batch

    arns = [make_trail(clients, f"team-{n}") for n in range(6)]
    records = [
        parse_finding(
            finding(Seeded("CloudTrail.2", MEMBER_ACCOUNT, REGION, "AwsCloudTrailTrail", arn)), registry()
        )
        for arn in arns
    ]
    outcomes = run_batch(records, registry(), aws, threads=6)
    assert [o.status for o in outcomes] == ["REMEDIATED"] * 6, [o.message for o in outcomes]
    [key] = clients.kms.list_keys()["Keys"]
    assert {trail(clients, arn)["KmsKeyId"] for arn in arns} == {key["KeyArn"]}


@pytest.mark.parametrize("operation", ["EnableKeyRotation", "CreateAlias"])
def test_a_throttled_call_after_the_key_is_made_makes_no_second_key(
    clients: Clients, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    """Throttled past botocore's retries there, the fix's own retry started over: the alias that
    finds the new key was not made yet, so it made a second, billed key."""
    from asr import remediate

    monkeypatch.setattr(remediate.time, "sleep", lambda _: None)
    arn = make_trail(clients, "payments")
    refusals = Refusals(clients.kms, operation)
    refusals.next(*[{"Code": "ThrottlingException", "Message": "Rate exceeded"}] * 2)
    assert fix(clients, "CloudTrail.2", arn).status == Status.REMEDIATED
    [key] = clients.kms.list_keys()["Keys"]
    assert trail(clients, arn)["KmsKeyId"] == key["KeyArn"]
    assert clients.kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]
    assert refusals.calls == 3


def test_a_key_another_process_made_first_is_the_one_used(clients: Clients) -> None:
    arn = make_trail(clients, "payments")
    theirs = {}

    def first(**_: Any) -> None:  # another task names its key between our look and our alias
        if not theirs:
            theirs.update(clients.kms.create_key(Description="theirs")["KeyMetadata"])
            clients.kms.create_alias(AliasName=ALIAS, TargetKeyId=theirs["KeyId"])

    clients.kms.meta.events.register("before-call.kms.EnableKeyRotation", first)
    assert fix(clients, "CloudTrail.2", arn).status == Status.REMEDIATED
    assert trail(clients, arn)["KmsKeyId"] == theirs["Arn"]


def test_a_resent_alias_kms_had_taken_is_not_called_another_s(
    clients: Clients, caplog: pytest.LogCaptureFixture
) -> None:
    """botocore sends a call again when its answer is lost: KMS then says the alias exists, made
    by the first attempt for this very key, which the log must not call unused (to delete)."""
    arn = make_trail(clients, "payments")

    def first_attempt_taken(params: dict[str, Any], **_: Any) -> None:
        if not taken:
            taken.append(params["TargetKeyId"])
            clients.kms.create_alias(AliasName=params["AliasName"], TargetKeyId=params["TargetKeyId"])

    taken: list[str] = []

    with (
        caplog.at_level("WARNING"),
        hooked(clients.kms, "provide-client-params.kms.CreateAlias", first_attempt_taken),
    ):
        result = fix(clients, "CloudTrail.2", arn)
    assert result.status == Status.REMEDIATED, result.message
    [key] = clients.kms.list_keys()["Keys"]
    assert trail(clients, arn)["KmsKeyId"] == key["KeyArn"]
    assert not [r.getMessage() for r in caplog.records if "unused" in r.getMessage()]


@pytest.mark.parametrize("where", ["us-east-1", "eu-west-1"])
def test_trail_encryption_finds_the_region_of_another_account_s_bucket(
    aws, clients: Clients, where: str
) -> None:
    """A central log archive's bucket refuses GetBucketLocation to a member account (its
    policy does not apply outside its Region): HeadBucket's answer, even a refusal, names it."""
    Clients(aws, MEMBER_ACCOUNT, where).s3.create_bucket(
        Bucket="org-log-archive",
        **({"CreateBucketConfiguration": {"LocationConstraint": where}} if where != REGION else {}),
    )
    arn = str(clients.cloudtrail.create_trail(Name="payments", S3BucketName="org-log-archive")["TrailARN"])

    def refused(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetBucketLocation"
        )

    clients.s3.meta.events.register("before-call.s3.GetBucketLocation", refused)
    key = clients.kms.create_key(Description="the archive's readers may decrypt")["KeyMetadata"]
    clients.kms.create_alias(AliasName=ALIAS, TargetKeyId=key["KeyId"])
    result = fix(clients, "CloudTrail.2", arn)
    if where == REGION:
        assert result.status == Status.REMEDIATED, result.message
        assert trail(clients, arn)["KmsKeyId"] == key["Arn"]
    else:
        assert result.status == Status.FAILED and "bucket org-log-archive in eu-west-1" in result.message


def test_trail_encryption_makes_no_key_for_another_account_s_bucket(clients: Clients) -> None:
    """A key made here lets only this account decrypt: the central archive's readers would
    lose the new logs. Refused, and nothing made, while no key has the alias."""
    clients.s3.create_bucket(Bucket="org-log-archive")
    arn = str(clients.cloudtrail.create_trail(Name="payments", S3BucketName="org-log-archive")["TrailARN"])

    def refused(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetBucketLocation"
        )

    clients.s3.meta.events.register("before-call.s3.GetBucketLocation", refused)
    result = fix(clients, "CloudTrail.2", arn)
    assert result.status == Status.FAILED
    assert (
        "bucket org-log-archive of another account (a central log archive): a key made here" in result.message
    )
    assert not trail(clients, arn).get("KmsKeyId")
    assert clients.kms.list_keys()["Keys"] == []


def test_a_trail_another_fix_is_updating_is_updated_on_a_second_try(
    clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CloudTrail.2, .4 and .5 may update one trail at once: CloudTrail answers the later
    ConflictException ("not ready ... try again"), and the fix tries again from a new read."""
    from asr import remediate

    monkeypatch.setattr(remediate.time, "sleep", lambda _: None)
    arn = make_trail(clients, "payments")
    refusals = Refusals(clients.cloudtrail, "UpdateTrail")
    refusals.next({"Code": "ConflictException", "Message": "Conflict"})
    result = fix(clients, "CloudTrail.4", arn)
    assert result.status == Status.REMEDIATED, result.message
    assert trail(clients, arn)["LogFileValidationEnabled"] and refusals.calls == 2


def test_log_file_validation_keeps_the_trails_other_settings(clients: Clients) -> None:
    arn = make_trail(
        clients, "payments", S3KeyPrefix="audit", KmsKeyId="alias/custom", IsMultiRegionTrail=True
    )
    before = trail(clients, arn)
    assert fix(clients, "CloudTrail.4", arn).status == Status.REMEDIATED
    assert trail(clients, arn) == {**before, "LogFileValidationEnabled": True}


@pytest.mark.usefixtures("member_stack")
def test_cloudwatch_logs_delivery_creates_the_group_and_uses_the_stacks_role(clients: Clients) -> None:
    arn = make_trail(clients, "payments")

    outcome: list[Result] = []
    writes = writes_during(lambda: outcome.append(fix(clients, "CloudTrail.5", arn)))

    [result] = outcome
    assert result.status == Status.REMEDIATED, result.message
    assert [w for w in writes if w.startswith("iam.")] == []
    group_arn = f"arn:aws:logs:{REGION}:{MEMBER_ACCOUNT}:log-group:CloudTrail/payments:*"
    assert result.after == {"CloudWatchLogsLogGroupArn": group_arn}
    updated = trail(clients, arn)
    role = clients.iam.get_role(RoleName="asr-service-cloudtrail-logs")["Role"]
    assert updated["CloudWatchLogsRoleArn"] == role["Arn"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "cloudtrail.amazonaws.com"
    }
    [policy_name] = clients.iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
    document = clients.iam.get_role_policy(RoleName=role["RoleName"], PolicyName=policy_name)[
        "PolicyDocument"
    ]
    # Every trail's group the playbook's name makes, in any Region.
    assert document["Statement"][0]["Resource"] == (
        f"arn:aws:logs:*:{MEMBER_ACCOUNT}:log-group:CloudTrail/*:log-stream:*"
    )
    [group] = clients.logs.describe_log_groups(logGroupNamePrefix="CloudTrail/payments")["logGroups"]
    assert group["retentionInDays"] == 365
    tags = clients.logs.list_tags_for_resource(resourceArn=group["arn"].removesuffix(":*"))["tags"]
    assert tags == {"asr:made-for": "CloudTrail.5"}


@pytest.mark.usefixtures("member_stack")
@pytest.mark.parametrize(
    ("retention", "tags", "kept"),
    [
        (3653, {}, 3653),  # someone's group, its own retention
        (None, {}, None),  # someone's group that keeps its logs for ever, on purpose maybe
        (None, {"asr:made-for": "CloudTrail.5"}, 365),  # ours, left without one by a fix that died
        (3653, {"asr:made-for": "CloudTrail.5"}, 3653),  # ours, given one since
    ],
    ids=["theirs", "theirs-never-expires", "ours-unfinished", "ours-changed-since"],
)
def test_cloudwatch_logs_delivery_reuses_a_group_with_its_retention(
    clients: Clients, retention: int | None, tags: dict[str, str], kept: int | None
) -> None:
    """An existing group keeps its retention, or its having none, unless it is the group a
    fix made and died before giving it the playbook's."""
    arn = make_trail(clients, "payments")
    clients.logs.create_log_group(logGroupName="CloudTrail/payments", tags=tags)
    # Another group its name is a prefix of, with none: the fix reads its own.
    clients.logs.create_log_group(logGroupName="CloudTrail/payments-old", tags=tags)
    if retention:
        clients.logs.put_retention_policy(logGroupName="CloudTrail/payments", retentionInDays=retention)

    result = fix(clients, "CloudTrail.5", arn)

    assert result.status == Status.REMEDIATED, result.message
    groups = clients.logs.describe_log_groups(logGroupNamePrefix="CloudTrail/payments")["logGroups"]
    assert [g.get("retentionInDays") for g in groups] == [kept, None]


def test_cloudwatch_logs_delivery_without_the_stacks_role_makes_nothing(clients: Clients) -> None:
    arn = make_trail(clients, "payments")
    result = fix(clients, "CloudTrail.5", arn)
    assert result.status == Status.FAILED
    assert "asr-service-cloudtrail-logs is missing: the member-role stack makes it" in result.message
    assert clients.logs.describe_log_groups(logGroupNamePrefix="CloudTrail")["logGroups"] == []
    assert not trail(clients, arn).get("CloudWatchLogsLogGroupArn")


def created_first_by_another_fix(aws: Any, clients: Clients, operation: str, create: Any) -> None:
    """Just before ``clients`` call ``operation``, another region's fix (its own clients)
    creates the same thing: the race of fix tasks running at once in one account."""
    other = Clients(aws, MEMBER_ACCOUNT, "us-west-2")
    done: list[bool] = []

    def first(**_: Any) -> None:
        if not done:
            done.append(True)
            create(other)

    clients.iam.meta.events.register(f"before-call.iam.{operation}", first)


@pytest.mark.usefixtures("member_stack")
def test_cloudwatch_logs_delivery_waits_for_a_role_made_lately(aws, clients: Clients, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """CloudTrail answers "Access denied." while a role IAM made moments ago has not reached
    it (as a wrong role or log group): asked again. Another refusal, or one with the role
    long in place, stands."""
    import datetime

    import asr.actions

    monkeypatch.setattr(asr.actions, "ROLE_PROPAGATION_DELAYS", (0.0, 0.0))
    refusing = Refusals(clients.cloudtrail, "UpdateTrail")
    role = {"Code": "InvalidCloudWatchLogsRoleArnException", "Message": "Access denied. Verify in IAM."}
    group = {"Code": "InvalidCloudWatchLogsLogGroupArnException", "Message": "Access denied. Check the role."}

    def fixed(name: str, wanted: Status, calls_wanted: int, *refused: dict[str, str]) -> None:
        refusing.next(*refused)
        # Each fix a batch of its own: a batch reads the role once (``Action.ready_role``).
        result = fix(Clients(aws, MEMBER_ACCOUNT, REGION), "CloudTrail.5", make_trail(clients, name))
        assert (result.status, refusing.calls) == (wanted, calls_wanted), result.message

    fixed("made", Status.REMEDIATED, 2, role)  # the stack made the role moments ago: refused once
    fixed("found", Status.REMEDIATED, 3, role, group)
    bad = {"Code": "InvalidCloudWatchLogsLogGroupArnException", "Message": "Log group does not exist"}
    fixed("bad", Status.FAILED, 1, bad)  # not a propagation delay
    monkeypatch.setattr(asr.actions, "NEW_ROLE_AGE", datetime.timedelta(0))
    fixed("old", Status.FAILED, 1, role)  # the role long in place: the refusal stands


def test_trail_fixes_report_a_missing_trail(clients: Clients) -> None:
    missing = f"arn:aws:cloudtrail:{REGION}:{MEMBER_ACCOUNT}:trail/gone"
    for control in ("CloudTrail.2", "CloudTrail.4", "CloudTrail.5"):
        result = fix(clients, control, missing)
        assert result.status == Status.FAILED and result.message.startswith("TrailNotFoundException")


# --- CloudWatch.16 -----------------------------------------------------------------------------


@pytest.mark.parametrize("retention", [None, 365, 3653], ids=["never-expires", "exactly", "longer"])
def test_retention_that_is_long_enough_is_kept(clients: Clients, retention: int | None) -> None:
    clients.logs.create_log_group(logGroupName="/app/audit")
    if retention:
        clients.logs.put_retention_policy(logGroupName="/app/audit", retentionInDays=retention)
    outcome: list[Result] = []
    assert writes_during(lambda: outcome.append(fix(clients, "CloudWatch.16", "/app/audit"))) == []
    assert outcome[0].status == Status.ALREADY_COMPLIANT


def test_a_minimum_logs_does_not_offer_is_rounded_up(clients: Clients) -> None:
    clients.logs.create_log_group(logGroupName="/app/audit")
    clients.logs.create_log_group(logGroupName="/app/audit-archive")  # a longer name with the same prefix
    clients.logs.put_retention_policy(logGroupName="/app/audit", retentionInDays=400)
    result = fix(clients, "CloudWatch.16", "/app/audit", min_retention_days=500)
    assert (result.status, result.before, result.after) == (
        Status.REMEDIATED,
        {"retentionInDays": 400},
        {"retentionInDays": 545},
    )
    [archive] = clients.logs.describe_log_groups(logGroupNamePrefix="/app/audit-archive")["logGroups"]
    assert "retentionInDays" not in archive


def test_missing_log_group_is_reported(clients: Clients) -> None:
    result = fix(clients, "CloudWatch.16", "/app/gone")
    assert result.status == Status.FAILED
    assert "log group '/app/gone' not found" in result.message


def test_retention_minimum_comes_from_the_control_parameter() -> None:
    arn = f"arn:aws:logs:{REGION}:{MEMBER_ACCOUNT}:log-group:/app/audit:*"
    raw = finding(Seeded("CloudWatch.16", MEMBER_ACCOUNT, REGION, "AwsLogsLogGroup", arn))
    raw["Compliance"]["SecurityControlParameters"] = [{"Name": "minRetentionTime", "Value": ["731"]}]
    record = parse_finding(raw, registry())
    assert (record.resource_id, record.parameters) == ("/app/audit", {"min_retention_days": 731})


# --- Config.1 ----------------------------------------------------------------------------------


def recorder(clients: Clients) -> tuple[dict[str, Any], dict[str, Any]]:
    [found] = clients.config.describe_configuration_recorders()["ConfigurationRecorders"]
    [status] = clients.config.describe_configuration_recorder_status()["ConfigurationRecordersStatus"]
    return found, status


def test_config_recorder_keeps_its_name_and_records_everything(aws, clients: Clients) -> None:
    seed_one(aws, "Config.1", MEMBER_ACCOUNT, REGION)

    result = fix(clients, "Config.1", MEMBER_ACCOUNT)

    assert result.status == Status.REMEDIATED, result.message
    found, status = recorder(clients)
    assert found["name"] == "asr-seed-recorder" and status["recording"]
    assert found["recordingGroup"]["allSupported"] and found["recordingGroup"]["includeGlobalResourceTypes"]
    assert "/aws-service-role/config.amazonaws.com/" in found["roleARN"]
    [channel] = clients.config.describe_delivery_channels()["DeliveryChannels"]
    assert (channel["name"], channel["s3BucketName"]) == ("default", CONFIG_BUCKET)
    assert {"ASRConfigBucketPermissionsCheck", "ASRConfigBucketDelivery"} <= policy_sids(
        clients, CONFIG_BUCKET
    )


def test_config_keeps_an_existing_delivery_channel_and_role_when_asked(clients: Clients) -> None:
    role = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/config-recorder"
    clients.config.put_configuration_recorder(
        ConfigurationRecorder={"name": "main", "roleARN": role, "recordingGroup": {"allSupported": True}}
    )
    clients.s3.create_bucket(Bucket="central-config")
    clients.config.put_delivery_channel(DeliveryChannel={"name": "central", "s3BucketName": "central-config"})

    result = fix(clients, "Config.1", MEMBER_ACCOUNT, use_service_linked_role=False)

    assert result.status == Status.REMEDIATED, result.message
    assert result.before == {"Recording": False}
    found, status = recorder(clients)
    assert (found["roleARN"], status["recording"]) == (role, True)
    assert [c["name"] for c in clients.config.describe_delivery_channels()["DeliveryChannels"]] == ["central"]
    assert CONFIG_BUCKET not in {b["Name"] for b in clients.s3.list_buckets()["Buckets"]}


def test_config_recorder_keeps_its_recording_mode(clients: Clients) -> None:
    """A recorder set to record daily stays daily: a put that left the mode out would make
    it continuous (and dearer)."""
    daily = {"recordingFrequency": "DAILY", "recordingModeOverrides": []}
    clients.config.put_configuration_recorder(
        ConfigurationRecorder={
            "name": "main",
            "roleARN": f"arn:aws:iam::{MEMBER_ACCOUNT}:role/config-recorder",
            "recordingGroup": {"allSupported": False, "resourceTypes": ["AWS::EC2::Instance"]},
            "recordingMode": daily,
        }
    )

    assert fix(clients, "Config.1", MEMBER_ACCOUNT).status == Status.REMEDIATED

    found, _ = recorder(clients)
    assert found["recordingGroup"]["allSupported"] and found["recordingMode"] == daily


def test_config_recorder_created_where_there_is_none(clients: Clients) -> None:
    assert fix(clients, "Config.1", MEMBER_ACCOUNT).status == Status.REMEDIATED
    found, status = recorder(clients)
    assert found["name"] == "default" and status["recording"]


def test_config_takes_the_service_linked_role_another_region_just_created(aws, clients: Clients) -> None:
    created_first_by_another_fix(
        aws,
        clients,
        "CreateServiceLinkedRole",
        lambda other: other.iam.create_service_linked_role(AWSServiceName="config.amazonaws.com"),
    )
    assert fix(clients, "Config.1", MEMBER_ACCOUNT).status == Status.REMEDIATED
    found, _ = recorder(clients)
    [role] = clients.iam.list_roles(PathPrefix="/aws-service-role/config.amazonaws.com/")["Roles"]
    assert found["roleARN"] == role["Arn"]


def test_config_waits_for_the_bucket_policy_it_just_wrote(clients: Clients, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """PutDeliveryChannel checks the bucket's policy, written moments before: refused while
    the policy has not reached Config, asked again."""
    import asr.actions

    monkeypatch.setattr(asr.actions, "ROLE_PROPAGATION_DELAYS", (0.0, 0.0))
    refusing = Refusals(clients.config, "PutDeliveryChannel")
    refusing.next({"Code": "InsufficientDeliveryPolicyException", "Message": "Insufficient delivery policy"})
    result = fix(clients, "Config.1", MEMBER_ACCOUNT)
    assert result.status == Status.REMEDIATED, result.message
    assert refusing.calls == 2
    [channel] = clients.config.describe_delivery_channels()["DeliveryChannels"]
    assert channel["s3BucketName"] == CONFIG_BUCKET


def test_config_waits_for_a_service_linked_role_made_lately(clients: Clients, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A service-linked role IAM made moments ago may not be usable by Config yet: its
    refusal (InvalidRoleException) is met by asking again; once the role is old, it stands."""
    import datetime

    import asr.actions

    monkeypatch.setattr(asr.actions, "ROLE_PROPAGATION_DELAYS", (0.0, 0.0))
    refusing = Refusals(clients.config, "PutConfigurationRecorder")
    unusable = {"Code": "InvalidRoleException", "Message": "The role cannot be assumed"}
    refusing.next(unusable)
    assert fix(clients, "Config.1", MEMBER_ACCOUNT).status == Status.REMEDIATED
    assert refusing.calls == 2

    clients.config.stop_configuration_recorder(ConfigurationRecorderName=recorder(clients)[0]["name"])
    clients.config.put_configuration_recorder(
        ConfigurationRecorder={
            **recorder(clients)[0],
            "recordingGroup": {"allSupported": False, "resourceTypes": ["AWS::EC2::Instance"]},
        }
    )
    monkeypatch.setattr(asr.actions, "NEW_ROLE_AGE", datetime.timedelta(0))
    refusing.next(unusable)
    assert fix(clients, "Config.1", MEMBER_ACCOUNT).status == Status.FAILED
    assert refusing.calls == 1


# --- GuardDuty.1 -------------------------------------------------------------------------------


def test_suspended_detector_is_re_enabled_not_replaced(aws, clients: Clients) -> None:
    seed_one(aws, "GuardDuty.1", MEMBER_ACCOUNT, REGION)
    [detector] = clients.guardduty.list_detectors()["DetectorIds"]
    assert fix(clients, "GuardDuty.1", MEMBER_ACCOUNT).status == Status.REMEDIATED
    assert clients.guardduty.list_detectors()["DetectorIds"] == [detector]
    assert clients.guardduty.get_detector(DetectorId=detector)["Status"] == "ENABLED"


def test_detector_created_where_there_is_none(clients: Clients) -> None:
    result = fix(clients, "GuardDuty.1", MEMBER_ACCOUNT)
    assert (result.status, result.before, result.after) == (
        Status.REMEDIATED,
        {"Status": None},
        {"Status": "ENABLED"},
    )
    assert len(clients.guardduty.list_detectors()["DetectorIds"]) == 1


def test_a_detector_the_fix_created_is_not_deleted_by_a_rollback_a_suspended_one_is_paused_again(
    aws, clients: Clients
) -> None:
    """Deleting a detector deletes its findings, filters, lists and member links: as for Macie,
    a rollback leaves one the fix created (a dry run says so too)."""
    action = registry().playbooks["GuardDuty.1"].build_action()
    created = action.read(clients, MEMBER_ACCOUNT)
    assert created == {"DetectorId": None, "Status": None}
    assert "deleting the one the fix created deletes its findings" in action.irreversible_from(created)

    seed_one(aws, "GuardDuty.1", MEMBER_ACCOUNT, "eu-west-1")
    elsewhere = Clients(aws, MEMBER_ACCOUNT, "eu-west-1")
    suspended = action.read(elsewhere, MEMBER_ACCOUNT)
    assert suspended["Status"] == "DISABLED" and action.irreversible_from(suspended) is None
    assert remediate_resource(action, elsewhere, MEMBER_ACCOUNT).status == Status.REMEDIATED
    action.revert(elsewhere, MEMBER_ACCOUNT, suspended)
    assert action.read(elsewhere, MEMBER_ACCOUNT) == suspended


# --- Macie.1 ---


def test_macie_off_is_enabled_and_says_why_no_rollback_may_turn_it_off(clients: Clients) -> None:
    action = registry().playbooks["Macie.1"].build_action()
    before = action.read(clients, MEMBER_ACCOUNT)
    assert before == {"Status": None}
    assert writes_during(lambda: remediate_resource(action, clients, MEMBER_ACCOUNT)) == [
        "macie2.EnableMacie"
    ]
    assert clients.macie2.get_macie_session()["status"] == "ENABLED"
    assert "disabling it deletes its findings" in action.irreversible_from(before)


def test_macie_access_denied_for_want_of_permission_is_not_read_as_off(clients: Clients) -> None:
    import boto3
    from botocore.stub import Stubber

    macie = boto3.client("macie2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(macie)
    stubber.add_client_error(
        "get_macie_session",
        "AccessDeniedException",
        "User is not authorized to perform: macie2:GetMacieSession",
        http_status_code=403,
    )
    stubber.activate()
    action = registry().playbooks["Macie.1"].build_action()
    with pytest.raises(ClientError, match="not authorized"):
        action.read(SimpleNamespace(macie2=macie), MEMBER_ACCOUNT)  # type: ignore[arg-type]


# --- CloudWatch.1 to .14: the CIS Benchmark's alarms on CloudTrail events -------------------------


SECOPS = {"protocol": "email", "endpoint": "secops@example.com"}
OTHER_TEAM = {"protocol": "email", "endpoint": "platform@example.com"}
OTHER_ACCOUNT = "999999999999"


def events_trail(aws: Any, home: str, name: str = "org-events") -> str:
    """A multi-Region trail homed in ``home`` that sends to a new log group; returns the group's name."""
    at_home = Clients(aws, MEMBER_ACCOUNT, home)
    group = f"/trail/{name}"
    at_home.logs.create_log_group(logGroupName=group)
    bucket = f"{name}-{home}-logs"
    kwargs = {"CreateBucketConfiguration": {"LocationConstraint": home}} if home != "us-east-1" else {}
    at_home.s3.create_bucket(Bucket=bucket, **kwargs)
    at_home.cloudtrail.create_trail(
        Name=name,
        S3BucketName=bucket,
        IsMultiRegionTrail=True,
        CloudWatchLogsLogGroupArn=f"arn:aws:logs:{home}:{MEMBER_ACCOUNT}:log-group:{group}:*",
        CloudWatchLogsRoleArn=f"arn:aws:iam::{MEMBER_ACCOUNT}:role/trail-to-logs",
    )
    at_home.cloudtrail.start_logging(Name=name)
    return group


def alarms_and_filters(clients: Clients, group: str) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Each alarm's actions, and each metric filter's metric, on ``group`` in the clients' Region."""
    alarms = {a["AlarmName"]: a["AlarmActions"] for a in clients.cloudwatch.describe_alarms()["MetricAlarms"]}
    filters = clients.logs.describe_metric_filters(logGroupName=group)["metricFilters"]
    return alarms, {f["filterName"]: f["metricTransformations"][0]["metricName"] for f in filters}


def test_cis_alarm_is_made_in_the_trail_s_home_region_with_its_topic(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    group = events_trail(aws, "eu-west-1")
    result = fix(clients, "CloudWatch.1", MEMBER_ACCOUNT, subscribers=[SECOPS])
    assert result.status == Status.REMEDIATED, result.message
    home = Clients(aws, MEMBER_ACCOUNT, "eu-west-1")
    topic = f"arn:aws:sns:eu-west-1:{MEMBER_ACCOUNT}:asr-security-alarms"
    assert alarms_and_filters(home, group) == (
        {"asr-root-user-usage": [topic]},
        {"asr-root-user-usage": "asr-root-user-usage"},
    )
    assert alarms_and_filters(clients, group)[0] == {}, "nothing in the finding's own Region"
    subscriptions = home.sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", "secops@example.com")]

    writes = writes_during(lambda: fix(clients, "CloudWatch.10", MEMBER_ACCOUNT, subscribers=[SECOPS]))
    assert "sns.Subscribe" not in writes, "subscribed already: not asked (and mailed) again"
    assert "cloudwatch.PutMetricAlarm" in writes
    assert len(home.sns.list_topics()["Topics"]) == 1, "one topic for every control"
    assert len(home.sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]) == 1


def test_a_cis_filter_written_another_way_with_an_alarm_complies(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    group = events_trail(aws, REGION)
    clients.logs.put_metric_filter(
        logGroupName=group,
        filterName="RootUse",
        filterPattern=(
            '{$.userIdentity.type="Root" && $.userIdentity.invokedBy NOT EXISTS '
            '&& $.eventType!="AwsServiceEvent"}'
        ),
        metricTransformations=[{"metricName": "RootUse", "metricNamespace": "Security", "metricValue": "1"}],
    )
    topic = clients.sns.create_topic(Name="pager")["TopicArn"]
    clients.sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
    clients.cloudwatch.put_metric_alarm(
        AlarmName="root-used",
        MetricName="RootUse",
        Namespace="Security",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        AlarmActions=[topic],
    )
    assert writes_during(lambda: fix(clients, "CloudWatch.1", MEMBER_ACCOUNT)) == []
    assert fix(clients, "CloudWatch.1", MEMBER_ACCOUNT).status == Status.ALREADY_COMPLIANT


def test_a_cis_filter_without_an_alarm_is_reused_and_a_rollback_keeps_it(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    from asr.actions.cloudwatch import CIS_FILTERS

    group = events_trail(aws, REGION)
    clients.logs.put_metric_filter(
        logGroupName=group,
        filterName="SgChanges",
        filterPattern=CIS_FILTERS["security-group-changes"],
        metricTransformations=[
            {"metricName": "SgChanges", "metricNamespace": "Security", "metricValue": "1"}
        ],
    )
    action = registry().playbooks["CloudWatch.10"].build_action({"subscribers": [SECOPS]})
    before = action.read(clients, MEMBER_ACCOUNT)
    result = remediate_resource(action, clients, MEMBER_ACCOUNT)
    assert result.status == Status.REMEDIATED, result.message
    assert list(alarms_and_filters(clients, group)[1]) == ["SgChanges"]
    alarm = clients.cloudwatch.describe_alarms(AlarmNames=["asr-security-group-changes"])["MetricAlarms"][0]
    assert (alarm["MetricName"], alarm["Namespace"]) == ("SgChanges", "Security")

    action.revert(clients, MEMBER_ACCOUNT, before)
    assert alarms_and_filters(clients, group) == ({}, {"SgChanges": "SgChanges"})


def test_a_cis_alarm_there_before_is_put_again_and_a_rollback_keeps_it(
    aws, clients: Clients, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """An earlier fix's alarm whose topic lost its subscribers: the fix puts it again under its
    name, and a rollback of that fix (dry or not) deletes neither it nor its filter."""
    from asr.audit import AuditJournal, Origin, journal_root
    from asr.remediate import Target, fix_targets
    from asr.rollback import Rollback, RollbackStatus

    group = events_trail(aws, REGION)
    assert fix(clients, "CloudWatch.10", MEMBER_ACCOUNT, subscribers=[SECOPS]).status == Status.REMEDIATED
    topic = f"arn:aws:sns:{REGION}:{MEMBER_ACCOUNT}:asr-security-alarms"
    for subscription in clients.sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]:
        clients.sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])

    action = registry().playbooks["CloudWatch.10"].build_action({"subscribers": [OTHER_TEAM]})
    before = action.read(clients, MEMBER_ACCOUNT)
    assert (before["Alarm"], before["NamedAlarmExisted"]) == (None, True)
    record = parse_finding(
        finding(
            Seeded("CloudWatch.10", MEMBER_ACCOUNT, REGION, "AwsAccount", f"AWS::::Account:{MEMBER_ACCOUNT}")
        ),
        registry(),
    )
    root = journal_root(str(tmp_path), "asr_sweep", "run-1")
    fixing = AuditJournal(root, Origin("asr_sweep", "run-1", "b", 1, "scheduler"))
    [result] = fix_targets([Target(clients, MEMBER_ACCOUNT, (record,), action)], journal=fixing, threads=1)
    assert result.status == Status.REMEDIATED, result.message
    made = alarms_and_filters(clients, group)
    assert made[0] and made[1], "the fix put an alarm and its filter"

    for dry in (True, False):
        rolling_back = AuditJournal(root, Origin("asr_rollback", "rollback-1", "rollback", 1, "bob"))
        [reversal] = Rollback(rolling_back, aws, dry=dry).run()
        assert reversal.status == RollbackStatus.NOT_REVERSIBLE, reversal.reason
        assert "were there before the fix" in reversal.reason
    assert alarms_and_filters(clients, group) == made
    # A record an older asr made says nothing of the alarm: it is kept as well.
    older = {key: value for key, value in before.items() if key != "NamedAlarmExisted"}
    assert "made by an older asr" in action.irreversible_from(older)


def test_cis_alarms_need_a_multi_region_trail_of_the_account_that_sends_to_its_logs(clients: Clients) -> None:
    make_trail(clients, "regional-only")
    make_trail(
        clients,
        "to-the-management-account",
        IsMultiRegionTrail=True,
        CloudWatchLogsLogGroupArn=f"arn:aws:logs:{REGION}:{OTHER_ACCOUNT}:log-group:/org/trail:*",
        CloudWatchLogsRoleArn=f"arn:aws:iam::{MEMBER_ACCOUNT}:role/trail-to-logs",
    )
    result = fix(clients, "CloudWatch.5", MEMBER_ACCOUNT, subscribers=[SECOPS])
    assert result.status == Status.FAILED
    assert "the account has no multi-Region trail of its own that sends its events to its" in result.message
    assert clients.cloudwatch.describe_alarms()["MetricAlarms"] == []


@pytest.mark.parametrize("broken", ["stopped", "write-only"])
def test_cis_alarms_need_the_trail_to_log_every_management_event(aws, clients: Clients, broken: str) -> None:  # type: ignore[no-untyped-def]
    """Security Hub's check (the CIS audit) counts an alarm only on a trail that is logging and
    takes every read and write management event: on another it would be "fixed" and still FAIL."""
    events_trail(aws, REGION, "stopped-trail")
    trail = f"arn:aws:cloudtrail:{REGION}:{MEMBER_ACCOUNT}:trail/stopped-trail"
    if broken == "stopped":
        clients.cloudtrail.stop_logging(Name=trail)
    else:
        clients.cloudtrail.put_event_selectors(
            TrailName=trail, EventSelectors=[{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}]
        )
    result = fix(clients, "CloudWatch.4", MEMBER_ACCOUNT, subscribers=[SECOPS])
    assert result.status == Status.FAILED
    assert (
        "(stopped-trail) are stopped or do not take every read and write management event" in result.message
    )
    assert clients.cloudwatch.describe_alarms()["MetricAlarms"] == []

    group = events_trail(aws, REGION, "z-logging-trail")  # another trail that logs everything: its group
    assert fix(clients, "CloudWatch.4", MEMBER_ACCOUNT, subscribers=[SECOPS]).status == Status.REMEDIATED
    assert alarms_and_filters(clients, group)[1] == {"asr-iam-policy-changes": "asr-iam-policy-changes"}


def test_a_cis_alarm_nobody_would_hear_is_not_made_and_the_failure_says_what_to_do(
    aws, clients: Clients
) -> None:  # type: ignore[no-untyped-def]
    group = events_trail(aws, REGION)
    result = fix(clients, "CloudWatch.4", MEMBER_ACCOUNT)
    assert result.status == Status.FAILED
    topic = f"arn:aws:sns:{REGION}:{MEMBER_ACCOUNT}:asr-security-alarms"
    assert (
        f"the alarm would notify SNS topic {topic}, which has no confirmed subscriber, and" in result.message
    )
    assert alarms_and_filters(clients, group) == ({}, {})

    # Someone subscribes to the topic the fix made; the next sweep makes the filter and alarm.
    clients.sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
    assert fix(clients, "CloudWatch.4", MEMBER_ACCOUNT).status == Status.REMEDIATED
    assert alarms_and_filters(clients, group)[0] == {"asr-iam-policy-changes": [topic]}


def test_an_email_awaiting_confirmation_is_named_and_not_subscribed_again(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    """SNS answers an email subscription "pending confirmation": the fix fails naming the
    address, and once its owner confirms, the next sweep makes the alarm without mailing again."""
    group = events_trail(aws, REGION)

    def pending(parsed: dict[str, Any], **_: Any) -> None:
        parsed["SubscriptionArn"] = "pending confirmation"

    clients.sns.meta.events.register("after-call.sns.Subscribe", pending)
    result = fix(clients, "CloudWatch.4", MEMBER_ACCOUNT, subscribers=[SECOPS])
    assert result.status == Status.FAILED
    assert "no confirmed subscriber (secops@example.com not confirmed yet)" in result.message
    assert alarms_and_filters(clients, group) == ({}, {})
    # Someone else's pending subscriptions are counted, not named: the reason is widely read.
    topic = f"arn:aws:sns:{REGION}:{MEMBER_ACCOUNT}:asr-security-alarms"
    phones = ("+15550100", "+15550101")
    for phone in phones:
        clients.sns.subscribe(TopicArn=topic, Protocol="sms", Endpoint=phone)

    def unconfirmed(parsed: dict[str, Any], **_: Any) -> None:
        for subscription in parsed["Subscriptions"]:
            if subscription["Endpoint"] in (*phones, SECOPS["endpoint"]):
                subscription["SubscriptionArn"] = "PendingConfirmation"

    clients.sns.meta.events.register("after-call.sns.ListSubscriptionsByTopic", unconfirmed)
    result = fix(clients, "CloudWatch.4", MEMBER_ACCOUNT, subscribers=[SECOPS])
    assert "(secops@example.com, 2 other subscriptions not confirmed yet)" in result.message
    clients.sns.meta.events.unregister("after-call.sns.ListSubscriptionsByTopic", unconfirmed)

    # Confirmed meanwhile (the stand-in lists the subscription with its ARN).
    results: list[Result] = []
    writes = writes_during(
        lambda: results.append(fix(clients, "CloudWatch.4", MEMBER_ACCOUNT, subscribers=[SECOPS]))
    )
    assert results[0].status == Status.REMEDIATED, results[0].message
    assert "sns.Subscribe" not in writes
    assert alarms_and_filters(clients, group)[0] == {"asr-iam-policy-changes": [topic]}


def test_an_unconfirmed_subscriber_or_a_topic_we_may_not_list_does_not_count() -> None:
    import boto3
    from botocore.stub import Stubber

    from asr.actions.cloudwatch import subscriptions

    sns = boto3.client("sns", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(sns)
    topic = f"arn:aws:sns:{REGION}:{MEMBER_ACCOUNT}:asr-security-alarms"
    pending = {"SubscriptionArn": "PendingConfirmation", "Protocol": "email", "TopicArn": topic}
    stubber.add_response(
        "list_subscriptions_by_topic",
        {"Subscriptions": [{**pending, "Endpoint": "secops@example.com", "Owner": MEMBER_ACCOUNT}]},
    )
    theirs = f"arn:aws:sns:{REGION}:{OTHER_ACCOUNT}:central-alarms"
    for _ in range(2):
        stubber.add_client_error("list_subscriptions_by_topic", "AuthorizationError", http_status_code=403)
    stubber.activate()
    assert subscriptions(sns, topic, MEMBER_ACCOUNT) == {"secops@example.com": False}
    assert subscriptions(sns, theirs, MEMBER_ACCOUNT) == {}, "another account's topic we may not list"
    with pytest.raises(ClientError, match="AuthorizationError"):  # our own: a permission missing
        subscriptions(sns, topic, MEMBER_ACCOUNT)


def test_cis_filters_are_the_benchmark_s() -> None:
    """Three of the patterns the filters are built from, as the Benchmark prints them."""
    from asr.actions.cloudwatch import CIS_FILTERS, same_pattern

    printed = {
        "customer-managed-key-deletion": (
            "{($.eventSource = kms.amazonaws.com) && "
            "(($.eventName=DisableKey)||($.eventName=ScheduleKeyDeletion))}"
        ),
        "cloudtrail-configuration-changes": (
            "{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) || "
            "($.eventName = StartLogging) || ($.eventName = StopLogging) }"
        ),
        "network-gateway-changes": (
            "{ ($.eventName = CreateCustomerGateway) || ($.eventName = DeleteCustomerGateway) || "
            "($.eventName = AttachInternetGateway) || ($.eventName = CreateInternetGateway) || "
            "($.eventName = DeleteInternetGateway) || ($.eventName = DetachInternetGateway) }"
        ),
    }
    for event, pattern in printed.items():
        assert same_pattern(CIS_FILTERS[event], pattern), event
    assert not same_pattern(CIS_FILTERS["vpc-changes"], CIS_FILTERS["route-table-changes"])


# --- Seeders -----------------------------------------------------------------------------------

CONTROLS = ["CloudTrail.1", "CloudTrail.3", "CloudTrail.2", "CloudTrail.4", "CloudTrail.5"]
CONTROLS += ["CloudWatch.1", "CloudWatch.14", "CloudWatch.16", "Config.1", "GuardDuty.1"]


@pytest.mark.parametrize("control", CONTROLS)
def test_seeding_after_a_fix_breaks_it_again(aws, control: str) -> None:
    """Seeders work for n = 0, 1, ... in one account and Region, also where a fix already ran."""
    playbook = registry().for_control(control)
    action = playbook.build_action()
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    for n in (0, 1):
        seeded = seed_one(aws, control, MEMBER_ACCOUNT, REGION, n)
        resource_id = playbook.extract_resource_id(seeded.resource_id, MEMBER_ACCOUNT)
        assert action.plan(action.read(clients, resource_id)), f"{control} seed {n} is compliant"
        assert remediate_resource(action, clients, resource_id).status == Status.REMEDIATED
