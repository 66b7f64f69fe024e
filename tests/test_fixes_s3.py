"""S3 bucket fixes beyond the generic harness: what they keep, what they refuse, how they read policies."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from asr import actions
from asr.actions.s3 import (
    CROSS_ACCOUNT_SID,
    LIFECYCLE_RULE_ID,
    LOG_DELIVERY_SID,
    TLS_SID,
    cross_account_grants,
)
from asr.aws import Clients
from asr.findings import parse_finding
from asr.local import MEMBER_ACCOUNT, served_requests
from asr.local.request_log_ext import is_write
from asr.local.seed import finding, seed_one
from asr.local.seeders import Seeded
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource

REGION = "us-east-1"
OTHER = "999999999999"
ARNS = ["arn:aws:s3:::data", "arn:aws:s3:::data/*"]


def seeded_bucket(aws: Any, control: str, region: str = REGION) -> tuple[Clients, str]:
    seeded = seed_one(aws, control, MEMBER_ACCOUNT, region)
    return Clients(aws, MEMBER_ACCOUNT, region), seeded.resource_id.removeprefix("arn:aws:s3:::")


def fix(clients: Clients, control: str, bucket: str, **params: Any) -> Result:
    action = registry().playbooks[control].build_action(params)
    return remediate_resource(action, clients, bucket)


def policy_of(clients: Clients, bucket: str) -> dict[str, Any]:
    return json.loads(clients.s3.get_bucket_policy(Bucket=bucket)["Policy"])


def sids(policy: dict[str, Any]) -> list[str]:
    return [s.get("Sid") for s in policy["Statement"]]


# --- S3.2: bucket Block Public Access


def test_bucket_public_access_turns_on_only_missing_flags_and_account_fix_still_works(aws) -> None:
    clients, bucket = seeded_bucket(aws, "S3.8")
    clients.s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": False,
            "BlockPublicPolicy": False,
            "RestrictPublicBuckets": False,
        },
    )
    result = fix(clients, "S3.2", bucket)
    assert result.status == Status.REMEDIATED, result.message
    assert set(result.before or {}) == {"IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"}
    config = clients.s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(config.values()) and len(config) == 4

    seed_one(aws, "S3.1", MEMBER_ACCOUNT, REGION)
    assert fix(clients, "S3.1", MEMBER_ACCOUNT).status == Status.REMEDIATED


def test_missing_bucket_is_reported_failed(aws) -> None:
    result = fix(Clients(aws, MEMBER_ACCOUNT, REGION), "S3.2", "asr-no-such-bucket")
    assert result.status == Status.FAILED
    assert result.message.startswith("NoSuchBucket")


# --- S3.4: default encryption


def test_default_encryption_with_a_kms_key(aws) -> None:
    clients, bucket = seeded_bucket(aws, "S3.4")
    result = fix(clients, "S3.4", bucket, sse_algorithm="aws:kms", kms_key_id="alias/s3-default")
    assert result.status == Status.REMEDIATED, result.message
    assert (result.before, result.after) == ({"SSEAlgorithm": None}, {"SSEAlgorithm": "aws:kms"})
    (rule,) = clients.s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": "alias/s3-default",
    }
    assert rule["BucketKeyEnabled"] is True


def test_existing_kms_encryption_is_not_downgraded(aws) -> None:
    clients, bucket = seeded_bucket(aws, "S3.4")
    config = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]}
    clients.s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=config)
    assert fix(clients, "S3.4", bucket).status == Status.ALREADY_COMPLIANT


def test_a_kms_key_with_sse_s3_is_refused() -> None:
    with pytest.raises(actions.ActionError, match="aws:kms"):
        actions.build("s3.enable-default-encryption", {"sse_algorithm": "AES256", "kms_key_id": "k"})
    with pytest.raises(actions.ActionError, match="sse_algorithm"):
        actions.build("s3.enable-default-encryption", {"kms_key_id": "k"})


# --- S3.5: TLS only


def test_tls_statement_is_added_beside_the_existing_ones(aws) -> None:
    clients, bucket = seeded_bucket(aws, "S3.5")
    before = policy_of(clients, bucket)
    assert fix(clients, "S3.5", bucket).status == Status.REMEDIATED
    after = policy_of(clients, bucket)
    assert after["Statement"][0] == before["Statement"][0]
    assert sids(after) == ["OwnAccountReads", TLS_SID]
    assert after["Statement"][1]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_bucket_without_policy_gets_one_with_only_the_tls_statement(aws) -> None:
    clients, bucket = seeded_bucket(aws, "S3.4")
    assert fix(clients, "S3.5", bucket).status == Status.REMEDIATED
    policy = policy_of(clients, bucket)
    assert policy["Version"] == "2012-10-17" and sids(policy) == [TLS_SID]


def test_tls_deny_limited_to_some_objects_does_not_count(aws) -> None:
    clients, bucket = seeded_bucket(aws, "S3.4")
    partial = {
        "Sid": "OnlyReports",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": f"arn:aws:s3:::{bucket}/reports/*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    clients.s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Statement": [partial]}))
    assert fix(clients, "S3.5", bucket).status == Status.REMEDIATED
    assert sids(policy_of(clients, bucket)) == ["OnlyReports", TLS_SID]


@pytest.mark.parametrize(
    "website",
    [
        {"IndexDocument": {"Suffix": "index.html"}},
        {"RedirectAllRequestsTo": {"HostName": "example.com", "Protocol": "https"}},
    ],
)
def test_a_website_bucket_is_refused_and_left_as_it_is(aws, website: dict[str, Any]) -> None:
    """A website endpoint speaks plain HTTP only: a TLS-only Deny would take the site, or the
    redirect, down."""
    clients, bucket = seeded_bucket(aws, "S3.5")
    clients.s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration=website)
    before = policy_of(clients, bucket)
    result = fix(clients, "S3.5", bucket)
    assert result.status == Status.FAILED
    assert (
        "configured as a static website, which S3's website endpoint serves over plain HTTP" in result.message
    )
    assert policy_of(clients, bucket) == before


@pytest.mark.parametrize("control", ["S3.5", "S3.6"])
def test_a_public_policy_under_block_public_access_fails_saying_why(aws, control: str) -> None:
    """Once Block Public Access blocks public policies (the S3.2 fix of the same bucket may
    have run first), S3 refuses any write of a policy that is public, a Deny added to it
    too: a bare AccessDenied read like a permission asr lacked."""
    clients, bucket = seeded_bucket(aws, control)
    policy = policy_of(clients, bucket)
    everyone = {"Sid": "Everyone", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}
    policy["Statement"].append({**everyone, "Resource": f"arn:aws:s3:::{bucket}/*"})
    clients.s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    flags = dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    clients.s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=flags)

    result = fix(clients, control, bucket)
    assert result.status == Status.FAILED
    assert result.message.startswith(
        f"PublicPolicyBlocked: S3 refused the policy of bucket {bucket} (AccessDenied), and the policy "
        "grants public access: while Block Public Access's BlockPublicPolicy is on"
    ), result.message
    assert policy_of(clients, bucket) == policy


# --- S3.6: no sensitive actions for other accounts


def test_cross_account_deny_keeps_the_grant_and_takes_back_sensitive_actions(aws) -> None:
    clients, bucket = seeded_bucket(aws, "S3.6")
    result = fix(clients, "S3.6", bucket)
    assert result.status == Status.REMEDIATED, result.message
    assert result.before == {
        "CrossAccountSensitiveGrants": [
            {"Principal": OTHER, "Actions": ["s3:PutBucketPolicy", "s3:PutObjectAcl"]}
        ]
    }
    policy = policy_of(clients, bucket)
    assert sids(policy) == ["PartnerAccess", CROSS_ACCOUNT_SID]
    deny = policy["Statement"][1]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {
        "StringNotEquals": {"aws:PrincipalAccount": MEMBER_ACCOUNT},
        "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
    }
    assert fix(clients, "S3.6", bucket).status == Status.ALREADY_COMPLIANT, "its own Deny counts"


def test_bucket_without_policy_has_nothing_to_deny(aws) -> None:
    clients, bucket = seeded_bucket(aws, "S3.4")
    assert fix(clients, "S3.6", bucket).status == Status.ALREADY_COMPLIANT


def allow(principal: Any, action: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": ARNS, **extra}


def deny(principal: Any, action: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Principal": principal, "Action": action, "Resource": ARNS, **extra}


def grants(*statements: dict[str, Any]) -> dict[str, list[str]]:
    policy = {"Statement": list(statements)}
    return {g["Principal"]: g["Actions"] for g in cross_account_grants(policy, MEMBER_ACCOUNT, ARNS)}


def test_grants_to_the_own_account_and_services_are_not_cross_account() -> None:
    assert (
        grants(
            allow({"AWS": f"arn:aws:iam::{MEMBER_ACCOUNT}:role/admin"}, "s3:*"),
            allow({"Service": "logging.s3.amazonaws.com"}, "s3:PutObjectAcl"),
        )
        == {}
    )


def test_wildcards_account_ids_and_anyone_are_read_as_aws_does() -> None:
    assert grants(allow({"AWS": [OTHER, "*"]}, "S3:put*acl")) == {
        OTHER: ["s3:PutBucketAcl", "s3:PutObjectAcl"],
        "*": ["s3:PutBucketAcl", "s3:PutObjectAcl"],
    }
    assert grants(allow("*", "s3:GetObject")) == {}
    not_action = allow({"AWS": f"arn:aws:iam::{OTHER}:root"}, None, NotAction=["s3:PutObjectAcl"])
    del not_action["Action"]
    assert "s3:PutObjectAcl" not in grants(not_action)[OTHER]


def test_only_denies_that_surely_apply_take_a_grant_back() -> None:
    granted = allow({"AWS": OTHER}, ["s3:PutBucketPolicy", "s3:PutObjectAcl"])
    assert grants(granted, deny({"AWS": OTHER}, "s3:Put*")) == {}
    assert grants(granted, deny("*", "s3:PutBucketPolicy")) == {OTHER: ["s3:PutObjectAcl"]}
    other_accounts = {"StringNotEquals": {"aws:PrincipalAccount": MEMBER_ACCOUNT}}
    assert grants(granted, deny("*", "s3:*", Condition=other_accounts)) == {}
    not_services = {**other_accounts, "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}
    assert grants(granted, deny("*", "s3:*", Condition=not_services)) == {}
    # A plain Bool is false on an anonymous request (it carries no such key): such a Deny
    # takes back a grant to another account, but spares anyone unsigned.
    signed_only = {**other_accounts, "Bool": {"aws:PrincipalIsAWSService": "false"}}
    assert grants(granted, deny("*", "s3:*", Condition=signed_only)) == {}
    public = allow("*", "s3:PutObjectAcl")
    assert grants(public, deny("*", "s3:*", Condition=signed_only)) == {"*": ["s3:PutObjectAcl"]}
    assert grants(public, deny("*", "s3:*", Condition=not_services)) == {}
    some_services = {**other_accounts, "Bool": {"aws:PrincipalIsAWSService": "true"}}
    assert grants(granted, deny("*", "s3:*", Condition=some_services))[OTHER]
    unknown = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    assert grants(granted, deny("*", "s3:*", Condition=unknown))[OTHER]
    objects_only = {**deny("*", "s3:*"), "Resource": ARNS[1]}
    assert grants(granted, objects_only)[OTHER]


# --- S3.9 / CloudTrail.7: server access logging


def test_buckets_share_one_hardened_log_bucket(aws) -> None:
    clients, first = seeded_bucket(aws, "S3.9")
    _, second = seeded_bucket(aws, "CloudTrail.7")
    log_bucket = f"asr-access-logs-{MEMBER_ACCOUNT}-{REGION}"
    for bucket in (first, second):
        result = fix(clients, "S3.9", bucket)
        assert result.status == Status.REMEDIATED, result.message
        assert result.after == {"LoggingEnabled": {"TargetBucket": log_bucket, "TargetPrefix": f"{bucket}/"}}

    s3 = clients.s3
    assert all(s3.get_public_access_block(Bucket=log_bucket)["PublicAccessBlockConfiguration"].values())
    rules = s3.get_bucket_encryption(Bucket=log_bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    ownership = s3.get_bucket_ownership_controls(Bucket=log_bucket)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert sids(policy_of(clients, log_bucket)) == [TLS_SID, LOG_DELIVERY_SID]

    refused = fix(clients, "S3.9", log_bucket)
    assert refused.status == Status.FAILED
    assert "is the access-log bucket" in refused.message


def test_a_log_bucket_name_another_account_owns_is_refused_untouched(aws, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Bucket names are global: a predictable log bucket name another account took failed every
    run with an AccessDenied about a bucket the user never named, or, where that bucket's policy
    let the member in, was set up as this account's. (The stand-in keeps no owner apart from
    the name: which account owns it is what bucket_home answers, given here.)"""
    import asr.actions.s3

    clients, bucket = seeded_bucket(aws, "S3.9")
    monkeypatch.setattr(asr.actions.s3, "bucket_home", lambda s3, name: (REGION, False))
    served_requests(clear=True)
    result = fix(clients, "S3.9", bucket)
    assert result.status == Status.FAILED
    assert "belongs to another account (bucket names are global)" in result.message
    assert not [c for c in served_requests() if is_write(c)]


def test_log_bucket_is_made_in_the_bucket_region(aws) -> None:
    clients, bucket = seeded_bucket(aws, "S3.9", region="eu-west-1")
    assert fix(clients, "S3.9", bucket).status == Status.REMEDIATED
    log_bucket = f"asr-access-logs-{MEMBER_ACCOUNT}-eu-west-1"
    assert clients.s3.get_bucket_location(Bucket=log_bucket)["LocationConstraint"] == "eu-west-1"


def test_log_bucket_is_made_in_the_bucket_region_by_clients_of_another(aws) -> None:
    """S3 playbooks are global: a batch's clients are of its first finding's region."""
    _, bucket = seeded_bucket(aws, "S3.9", region="us-west-2")
    elsewhere = Clients(aws, MEMBER_ACCOUNT, "eu-central-1")
    result = fix(elsewhere, "S3.9", bucket)
    assert result.status == Status.REMEDIATED, result.message
    log_bucket = f"asr-access-logs-{MEMBER_ACCOUNT}-us-west-2"
    assert elsewhere.s3.get_bucket_location(Bucket=log_bucket)["LocationConstraint"] == "us-west-2"


def test_fixes_at_once_share_the_log_bucket_they_create(aws) -> None:
    """The threads of a batch all find the log bucket missing; one creates it (made slow here,
    so that the others would try too) and every fix goes through."""
    region = "eu-west-1"
    clients = Clients(aws, MEMBER_ACCOUNT, region)
    buckets = [seed_one(aws, "S3.9", MEMBER_ACCOUNT, region, n).resource_id.split(":")[-1] for n in range(4)]
    clients.s3.meta.events.register("before-call.s3.CreateBucket", lambda **_: time.sleep(0.3))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda bucket: fix(clients, "S3.9", bucket), buckets))
    assert [r.status for r in results] == [Status.REMEDIATED] * 4, [r.message for r in results]
    assert sids(policy_of(clients, f"asr-access-logs-{MEMBER_ACCOUNT}-{region}")) == [
        TLS_SID,
        LOG_DELIVERY_SID,
    ]


def test_a_log_bucket_set_up_half_way_is_completed_by_the_next_fix(aws) -> None:
    """The first fix made the bucket and died before Block Public Access, encryption and the
    TLS statement; the next found the bucket and only added the delivery statement."""

    clients, bucket = seeded_bucket(aws, "S3.9")
    log_bucket = f"asr-access-logs-{MEMBER_ACCOUNT}-{REGION}"
    failures = [
        ClientError({"Error": {"Code": "InternalError", "Message": "try again"}}, "PutPublicAccessBlock")
    ]

    def fails_once(**_: Any) -> None:
        if failures:
            raise failures.pop()

    clients.s3.meta.events.register("before-call.s3.PutPublicAccessBlock", fails_once)
    first = fix(clients, "S3.9", bucket)
    assert first.status == Status.FAILED and "InternalError" in first.message
    assert log_bucket in [b["Name"] for b in clients.s3.list_buckets()["Buckets"]]  # made, half set up

    assert fix(clients, "S3.9", bucket).status == Status.REMEDIATED
    block = clients.s3.get_public_access_block(Bucket=log_bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    rules = clients.s3.get_bucket_encryption(Bucket=log_bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert sids(policy_of(clients, log_bucket)) == [TLS_SID, LOG_DELIVERY_SID]


def test_fix_tasks_setting_up_one_log_bucket_at_once_keep_both_statements(aws, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Tasks are processes: the module's lock does not keep two from editing the policy at
    once. Task b read the policy before task a wrote the TLS statement and wrote the delivery
    statement over it after; a, adding its own delivery statement, found it there."""
    import contextlib
    import threading

    from asr.actions import s3 as module
    from asr.cli import local_context

    monkeypatch.setattr(module, "_LOG_BUCKET_LOCK", contextlib.nullcontext())
    clients, first = seeded_bucket(aws, "S3.9")
    second = seed_one(aws, "S3.9", MEMBER_ACCOUNT, REGION, 1).resource_id.removeprefix("arn:aws:s3:::")
    of = {"a": clients, "b": Clients(local_context(), MEMBER_ACCOUNT, REGION)}  # each task its own clients
    created, b_read, a_wrote, b_wrote = (threading.Event() for _ in range(4))
    a_reads: list[int] = []

    def on(task: str, event: str, call: Any) -> None:
        def hook(**_: Any) -> None:  # returns nothing: a before-call answer would replace the call's
            call()

        of[task].s3.meta.events.register(event, hook)

    def a_reads_again_after_b_wrote() -> None:
        a_reads.append(1)
        if len(a_reads) > 1:
            b_wrote.wait(10)

    on("a", "after-call.s3.CreateBucket", created.set)
    on("b", "after-call.s3.GetBucketPolicy", b_read.set)
    on("a", "before-call.s3.PutBucketPolicy", lambda: b_read.wait(10))
    on("a", "after-call.s3.PutBucketPolicy", a_wrote.set)
    on("b", "before-call.s3.PutBucketPolicy", lambda: a_wrote.wait(10))
    on("b", "after-call.s3.PutBucketPolicy", b_wrote.set)
    on("a", "before-call.s3.GetBucketPolicy", a_reads_again_after_b_wrote)
    results: dict[str, Result] = {}

    def task(name: str, bucket: str, after: threading.Event | None = None) -> threading.Thread:
        def run() -> None:
            if after is not None:
                assert after.wait(10)
            results[name] = fix(of[name], "S3.9", bucket)

        return threading.Thread(target=run, name=name)

    tasks = [task("a", first), task("b", second, after=created)]
    for t in tasks:
        t.start()
    for t in tasks:
        t.join(30)
    assert [results[n].status for n in "ab"] == [Status.REMEDIATED] * 2, [results[n].message for n in "ab"]
    assert sids(policy_of(clients, f"asr-access-logs-{MEMBER_ACCOUNT}-{REGION}")) == [
        TLS_SID,
        LOG_DELIVERY_SID,
    ]


def test_log_bucket_in_another_region_is_refused(aws) -> None:
    clients, bucket = seeded_bucket(aws, "S3.9", region="eu-west-1")
    Clients(aws, MEMBER_ACCOUNT, REGION).s3.create_bucket(Bucket=f"asr-logs-{MEMBER_ACCOUNT}")
    result = fix(clients, "S3.9", bucket, log_bucket="asr-logs-{account}")
    assert result.status == Status.FAILED
    assert "is in us-east-1, not in eu-west-1" in result.message


# --- S3.13: lifecycle


def test_lifecycle_rule_is_added_and_other_rules_kept(aws) -> None:
    clients, bucket = seeded_bucket(aws, "S3.13")
    existing = [
        {"ID": "expire-tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 7}},
        {
            "ID": LIFECYCLE_RULE_ID,
            "Status": "Disabled",
            "Filter": {},
            "Transitions": [{"Days": 30, "StorageClass": "INTELLIGENT_TIERING"}],
        },
        {
            "ID": "archive",
            "Status": "Enabled",
            "Filter": {},
            "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}],
        },
    ]
    clients.s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={"Rules": existing},
        TransitionDefaultMinimumObjectSize="varies_by_storage_class",
    )
    result = fix(clients, "S3.13", bucket)
    assert result.status == Status.REMEDIATED, result.message
    configuration = clients.s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert configuration["TransitionDefaultMinimumObjectSize"] == "varies_by_storage_class", "kept, not reset"
    rules = configuration["Rules"]
    assert [r["ID"] for r in rules] == ["expire-tmp", "archive", LIFECYCLE_RULE_ID]
    assert rules[0]["Expiration"] == {"Days": 7}
    assert rules[2] == {
        "ID": LIFECYCLE_RULE_ID,
        "Status": "Enabled",
        "Filter": {"ObjectSizeGreaterThan": 10 * 1024**3},
        "Transitions": [{"Days": 90, "StorageClass": "INTELLIGENT_TIERING"}],
    }
    assert result.after == {
        "LifecycleRules": rules,
        "TransitionDefaultMinimumObjectSize": "varies_by_storage_class",
    }


def test_a_lifecycle_rule_of_the_old_form_is_kept_in_the_new(aws) -> None:
    """S3 refuses rules with a rule-level Prefix (the old form) beside rules with a Filter: the
    old rule is written with a Filter, as the same rule; a revert puts back the old form."""
    clients, bucket = seeded_bucket(aws, "S3.13")
    old = {"ID": "expire-tmp", "Prefix": "tmp/", "Status": "Enabled", "Expiration": {"Days": 30}}
    clients.s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [old]})
    assert clients.s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == [old]
    result = fix(clients, "S3.13", bucket)
    assert result.status == Status.REMEDIATED, result.message
    rules = clients.s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rules[0] == {
        "ID": "expire-tmp",
        "Filter": {"Prefix": "tmp/"},
        "Status": "Enabled",
        "Expiration": {"Days": 30},
    }
    registry().playbooks["S3.13"].build_action().revert(clients, bucket, result.before or {})
    assert clients.s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == [old]


def test_an_enabled_rule_moving_objects_soon_enough_complies(aws) -> None:
    clients, bucket = seeded_bucket(aws, "S3.13")
    rule = {
        "ID": "tiering",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "Transitions": [{"Days": 30, "StorageClass": "INTELLIGENT_TIERING"}],
    }
    clients.s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [rule]})
    assert fix(clients, "S3.13", bucket).status == Status.ALREADY_COMPLIANT
    assert (
        fix(clients, "S3.13", bucket, transition_days=7, min_object_size_bytes=0).status == Status.REMEDIATED
    )


def test_lifecycle_control_parameters_reach_the_action() -> None:
    seeded = Seeded("S3.13", MEMBER_ACCOUNT, "eu-west-1", "AwsS3Bucket", "arn:aws:s3:::data", "LOW")
    raw = finding(seeded)
    raw["Compliance"]["SecurityControlParameters"] = [
        {"Name": "targetTransitionDays", "Value": ["30"]},
        {"Name": "targetTransitionStorageClass", "Value": ["STANDARD_IA"]},
        {"Name": "targetExpirationDays", "Value": ["365"]},
    ]
    record = parse_finding(raw, registry())
    assert record.resource_id == "data"
    assert record.parameters == {
        "transition_days": 30,
        "storage_class": "STANDARD_IA",
        "expiration_days": 365,
    }


def test_a_control_asking_for_expiration_is_refused_unless_a_rule_expires_objects(aws) -> None:
    """Expiring deletes objects: asr does not decide that, and a transition alone would leave
    the control failing under a RESOLVED finding. A bucket that expires them soon enough, and
    transitions them, complies."""
    clients, bucket = seeded_bucket(aws, "S3.13")
    result = fix(clients, "S3.13", bucket, expiration_days=365)
    assert result.status == Status.FAILED
    assert (
        "asks that objects expire within 365 days (targetExpirationDays): expiring deletes" in result.message
    )
    with pytest.raises(ClientError, match="NoSuchLifecycleConfiguration"):
        clients.s3.get_bucket_lifecycle_configuration(Bucket=bucket)

    rule = {
        "ID": "archive-then-expire",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "Transitions": [{"Days": 30, "StorageClass": "INTELLIGENT_TIERING"}],
        "Expiration": {"Days": 200},
    }
    clients.s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [rule]})
    assert fix(clients, "S3.13", bucket, expiration_days=365).status == Status.ALREADY_COMPLIANT
    assert fix(clients, "S3.13", bucket, expiration_days=100).status == Status.FAILED


def test_a_transition_s3_would_refuse_is_refused_when_the_playbook_loads() -> None:
    """S3 takes no transition to STANDARD_IA or ONEZONE_IA before 30 days."""
    from asr import actions

    with pytest.raises(actions.ActionError, match="transition_days: 10 is less than the minimum of 30"):
        actions.build("s3.add-lifecycle-transition", {"storage_class": "STANDARD_IA", "transition_days": 10})
    assert actions.build("s3.add-lifecycle-transition", {"storage_class": "GLACIER_IR", "transition_days": 0})
