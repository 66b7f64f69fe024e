"""Behaviour specific to the IAM credential, AWS Support role, KMS rotation and SSM sharing fixes."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from asr.aws import Clients
from asr.local import MEMBER_ACCOUNT, served_requests
from asr.local.request_log_ext import is_write
from asr.local.seed import seed_one
from asr.local.seeders import days_ago
from asr.local.seeders.iam import PASSWORD, set_credential_history
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource

REGION = "us-east-1"
SUPPORT = "arn:aws:iam::aws:policy/AWSSupportAccess"
ROLE = "asr-aws-support"


def stubbed(service: str) -> Stubber:
    """A client whose answers a test gives: pages the stand-in never answers with."""
    client = boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    return Stubber(client)


@pytest.fixture
def clients(aws) -> Clients:  # type: ignore[no-untyped-def]
    return Clients(aws, MEMBER_ACCOUNT, REGION)


def fix(control: str, clients: Clients, resource_id: str, **params: Any) -> tuple[Result, list[str]]:
    """Run a playbook's action on one resource; return the result and the write calls it made."""
    served_requests(clear=True)
    result = remediate_resource(registry().playbooks[control].build_action(params), clients, resource_id)
    return result, [c["action"] for c in served_requests() if is_write(c)]


class Users:
    """IAM users in the member account whose credentials have a given age and last use."""

    def __init__(self, aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
        self.endpoint = aws.endpoint_for("iam")
        self.iam = clients.iam
        self.count = 0

    def make(
        self, *keys: tuple[float, float | None], password: tuple[float, float | None] | None = None
    ) -> tuple[str, list[str]]:
        """keys/password: (days since created, days since last used or None for never)."""
        self.count += 1
        name = f"user{self.count}"
        self.iam.create_user(UserName=name)
        ids = []
        for created, used in keys:
            key_id = self.iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
            self.history(name, key_id, created, used)
            ids.append(key_id)
        if password:
            self.iam.create_login_profile(UserName=name, Password="Correct-Horse-Battery-1")
            self.history(name, PASSWORD, *password)
        return name, ids

    def history(self, name: str, credential: str, created: float, used: float | None) -> None:
        last_used = None if used is None else days_ago(used)
        set_credential_history(self.endpoint, MEMBER_ACCOUNT, name, credential, days_ago(created), last_used)

    def statuses(self, name: str) -> dict[str, str]:
        return {
            k["AccessKeyId"]: k["Status"]
            for k in self.iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
        }

    def has_password(self, name: str) -> bool:
        try:
            self.iam.get_login_profile(UserName=name)
        except self.iam.exceptions.NoSuchEntityException:
            return False
        return True


@pytest.fixture
def users(aws, clients: Clients) -> Users:  # type: ignore[no-untyped-def]
    return Users(aws, clients)


# --- IAM.3: access keys older than the limit ---


def test_old_key_fix_deactivates_only_old_keys(users: Users, clients: Clients) -> None:
    name, (old, new) = users.make((400, 1), (10, 1))
    result, writes = fix("IAM.3", clients, name)
    assert result.status == Status.REMEDIATED, result.message
    assert users.statuses(name) == {old: "Inactive", new: "Active"}
    assert [k["AccessKeyId"] for k in result.before["old_active_access_keys"]] == [old]
    assert writes == ["UpdateAccessKey"]


def test_a_key_deleted_since_the_fix_leaves_the_revert_the_others(users: Users, clients: Clients) -> None:
    """The revert stopped at the first key gone, and the other stayed off."""
    name, (first, second) = users.make((400, 1), (500, 1))
    action = registry().for_control("IAM.3").build_action()
    before = action.read(clients, name)
    assert remediate_resource(action, clients, name).status == Status.REMEDIATED
    clients.iam.delete_access_key(UserName=name, AccessKeyId=first)
    action.revert(clients, name, before)
    assert users.statuses(name) == {second: "Active"}
    clients.iam.delete_access_key(UserName=name, AccessKeyId=second)
    clients.iam.delete_user(UserName=name)
    with pytest.raises(clients.iam.exceptions.NoSuchEntityException):  # a user gone is not a key gone
        action.revert(clients, name, before)


def test_key_age_limit_is_the_parameter(users: Users, clients: Clients) -> None:
    name, (key,) = users.make((60, 1))
    assert fix("IAM.3", clients, name)[0].status == Status.ALREADY_COMPLIANT
    assert fix("IAM.3", clients, name, max_key_age_days=30)[0].status == Status.REMEDIATED
    assert users.statuses(name) == {key: "Inactive"}


# --- IAM.8 / IAM.22: credentials unused for the limit ---


def test_unused_fix_keeps_credentials_in_use(users: Users, clients: Clients) -> None:
    name, (used, unused) = users.make((400, 2), (400, None), password=(400, 3))
    result, writes = fix("IAM.8", clients, name)
    assert result.status == Status.REMEDIATED, result.message
    assert users.statuses(name) == {used: "Active", unused: "Inactive"}
    assert users.has_password(name)
    assert writes == ["UpdateAccessKey"]


def test_unused_password_is_deleted_and_keys_kept(users: Users, clients: Clients) -> None:
    name, (key,) = users.make((5, None), password=(300, 200))
    result, writes = fix("IAM.8", clients, name)
    assert result.status == Status.REMEDIATED, result.message
    assert not users.has_password(name)
    assert users.statuses(name) == {key: "Active"}
    assert result.after == {"unused_console_password": None}
    assert writes == ["DeleteLoginProfile"]


def test_iam22_acts_on_what_iam8_still_allows(users: Users, clients: Clients) -> None:
    name, (key,) = users.make((60, None), password=(50, 46))
    assert fix("IAM.8", clients, name)[0].status == Status.ALREADY_COMPLIANT
    result, _ = fix("IAM.22", clients, name)
    assert result.status == Status.REMEDIATED, result.message
    assert users.statuses(name) == {key: "Inactive"}
    assert not users.has_password(name)


def test_password_set_again_recently_is_not_unused(users: Users, clients: Clients) -> None:
    """An old PasswordLastUsed from a previous password does not make a new one unused."""
    name, _ = users.make(password=(300, 200))
    users.iam.delete_login_profile(UserName=name)
    users.iam.create_login_profile(UserName=name, Password="Correct-Horse-Battery-2")
    assert fix("IAM.8", clients, name)[0].status == Status.ALREADY_COMPLIANT


@pytest.mark.parametrize("control", ["IAM.3", "IAM.8"])
def test_missing_user_is_reported(clients: Clients, control: str) -> None:
    result, writes = fix(control, clients, "nobody")
    assert result.status == Status.FAILED
    assert result.message.startswith("NoSuchEntity")
    assert writes == []


def test_seeded_user_with_a_path_is_routed_by_name(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    seeded = seed_one(aws, "IAM.22", MEMBER_ACCOUNT, REGION)
    assert ":user/asr-seed/" in seeded.resource_id
    name = registry().for_control("IAM.22").extract_resource_id(seeded.resource_id, MEMBER_ACCOUNT)
    assert fix("IAM.22", clients, name)[0].status == Status.REMEDIATED


# --- IAM.18: a role for AWS Support ---


def test_support_access_held_by_a_group_counts_once_someone_is_in_it(clients: Clients) -> None:
    """AWS Config's iam-policy-in-use counts a group only with members: the finding of an
    account whose one holder was an empty group never resolved."""
    clients.iam.create_group(GroupName="support-team")
    clients.iam.attach_group_policy(GroupName="support-team", PolicyArn=SUPPORT)
    action = registry().for_control("IAM.18").build_action()
    assert action.read(clients, MEMBER_ACCOUNT)["support_access_principals"] == []

    clients.iam.create_user(UserName="alice")
    clients.iam.add_user_to_group(GroupName="support-team", UserName="alice")
    result, writes = fix("IAM.18", clients, MEMBER_ACCOUNT)
    assert result.status == Status.ALREADY_COMPLIANT
    assert writes == []


def test_a_group_whose_first_page_of_users_is_empty_but_truncated_has_members() -> None:
    """IAM may answer fewer users than MaxItems while more follow (its documented caveat)."""
    iam = stubbed("iam")
    entities = {"PolicyGroups": [{"GroupName": "support-team", "GroupId": "AGPA0000000000000000X"}]}
    iam.add_response(
        "list_entities_for_policy", entities, {"PolicyArn": SUPPORT, "PolicyUsageFilter": "PermissionsPolicy"}
    )
    group = {
        "Path": "/",
        "GroupName": "support-team",
        "GroupId": "AGPA0000000000000000X",
        "Arn": f"arn:aws:iam::{MEMBER_ACCOUNT}:group/support-team",
        "CreateDate": "2026-01-01T00:00:00Z",
    }
    answer = {"Group": group, "Users": [], "IsTruncated": True, "Marker": "m"}
    iam.add_response("get_group", answer, {"GroupName": "support-team", "MaxItems": 1})
    with iam:
        state = registry().for_control("IAM.18").build_action().read(SimpleNamespace(iam=iam.client), "x")
    assert state == {"support_access_principals": ["Group/support-team"]}
    iam.assert_no_pending_responses()


@pytest.mark.usefixtures("member_stack")
def test_the_stacks_support_role_gets_the_policy_and_trusts_the_account(clients: Clients) -> None:
    result, writes = fix("IAM.18", clients, MEMBER_ACCOUNT)
    assert result.status == Status.REMEDIATED, result.message
    assert result.after == {"support_access_principals": [f"Role/{ROLE}"]}
    assert writes == ["AttachRolePolicy"]
    trust = clients.iam.get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{MEMBER_ACCOUNT}:root"}


def test_without_the_stacks_support_role_nothing_is_made(clients: Clients) -> None:
    result, writes = fix("IAM.18", clients, MEMBER_ACCOUNT)
    assert result.status == Status.FAILED
    assert f"the IAM role {ROLE} is missing: the member-role stack makes it" in result.message
    assert writes == []


def test_a_support_role_of_that_name_trusting_another_account_gets_nothing(clients: Clients) -> None:
    """Not the stack's role: AWSSupportAccess would go to whoever it trusts."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::333333333333:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    clients.iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))
    result, writes = fix("IAM.18", clients, MEMBER_ACCOUNT)
    assert result.status == Status.FAILED
    assert "lacks the trust policy the stack gives it" in result.message
    assert writes == []


# --- KMS.4: key rotation ---


@pytest.mark.parametrize(
    ("create", "change", "reason"),
    [
        ({"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"}, None, "only symmetric encryption keys"),
        ({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}, None, "only symmetric encryption keys"),
        ({"Origin": "EXTERNAL"}, None, "key material comes from EXTERNAL"),
        ({}, "disable_key", "the key is Disabled"),
    ],
)
def test_key_kms_cannot_rotate_is_reported_not_attempted(
    clients: Clients, create: dict, change: str | None, reason: str
) -> None:
    key_id = clients.kms.create_key(**create)["KeyMetadata"]["KeyId"]
    if change:
        getattr(clients.kms, change)(KeyId=key_id)
    result, writes = fix("KMS.4", clients, key_id)
    assert result.status == Status.FAILED
    assert "cannot be rotated automatically" in result.message and reason in result.message
    assert writes == []


def test_missing_key_is_reported(clients: Clients) -> None:
    result, _ = fix("KMS.4", clients, "11111111-2222-3333-4444-555555555555")
    assert result.status == Status.FAILED
    assert result.message.startswith("NotFoundException")


# --- SSM.7: block public sharing of documents ---


def test_sharing_block_is_per_region(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    seed_one(aws, "SSM.7", MEMBER_ACCOUNT, REGION)
    seed_one(aws, "SSM.7", MEMBER_ACCOUNT, "eu-west-1")
    assert fix("SSM.7", clients, MEMBER_ACCOUNT)[0].status == Status.REMEDIATED
    other = Clients(aws, MEMBER_ACCOUNT, "eu-west-1").ssm
    setting = "/ssm/documents/console/public-sharing-permission"
    assert other.get_service_setting(SettingId=setting)["ServiceSetting"]["SettingValue"] == "Enable"


def test_a_rollback_puts_back_what_iam8_and_iam22_each_deactivated(aws, users: Users, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Both controls fix with one action: the journal kept only the later one's change, so a
    rollback reactivated IAM.22's keys and left IAM.8's off, reporting nothing."""
    from asr.audit import AuditJournal, Origin, journal_root
    from asr.findings import parse_finding
    from asr.local.seed import finding
    from asr.local.seeders import Seeded
    from asr.remediate import run_batch
    from asr.rollback import Rollback, RollbackStatus

    name, (over_90, over_45) = users.make((400, None), (60, None))
    arn = f"arn:aws:iam::{MEMBER_ACCOUNT}:user/{name}"
    root = journal_root(str(tmp_path), "asr_sweep", "run-1")
    for control in ("IAM.8", "IAM.22"):
        record = parse_finding(
            finding(Seeded(control, MEMBER_ACCOUNT, REGION, "AwsIamUser", arn)), registry()
        )
        journal = AuditJournal(root, Origin("asr_sweep", "run-1", control, 1, "s"))
        [outcome] = run_batch([record], registry(), aws, journal=journal)
        assert outcome.status == "REMEDIATED", outcome.message
    assert users.statuses(name) == {over_90: "Inactive", over_45: "Inactive"}

    reversals = Rollback(AuditJournal(root, Origin("asr_rollback", "r-1", "rollback", 1, "bob")), aws).run()
    assert sorted(r.status for r in reversals) == [RollbackStatus.REVERTED] * 2
    assert users.statuses(name) == {over_90: "Active", over_45: "Active"}


# --- SSM.4: documents shared with everyone ---


def own_document(clients: Clients, name: str, *shared_with: str, version: str = "$DEFAULT") -> str:
    from asr.local.seeders.ssm import ECHO_DOCUMENT

    clients.ssm.create_document(Name=name, Content=json.dumps(ECHO_DOCUMENT), DocumentType="Command")
    if shared_with:
        clients.ssm.modify_document_permission(
            Name=name,
            PermissionType="Share",
            AccountIdsToAdd=list(shared_with),
            SharedDocumentVersion=version,
        )
    return name


def shares(clients: Clients, name: str) -> list[dict[str, str]]:
    return clients.ssm.describe_document_permission(Name=name, PermissionType="Share")[
        "AccountSharingInfoList"
    ]


def test_a_document_shared_by_name_or_not_at_all_is_left_alone(clients: Clients) -> None:
    for name in (own_document(clients, "named-shares", "444455556666"), own_document(clients, "unshared")):
        result, writes = fix("SSM.4", clients, name)
        assert (result.status, writes) == (Status.ALREADY_COMPLIANT, []), name
    assert shares(clients, "named-shares") == [
        {"AccountId": "444455556666", "SharedDocumentVersion": "$DEFAULT"}
    ]


def test_a_public_document_is_made_private_and_a_rollback_shares_the_same_version(clients: Clients) -> None:
    name = own_document(clients, "runbook", "all", version="$LATEST")
    action = registry().playbooks["SSM.4"].build_action()
    before = action.read(clients, name)  # what the journal keeps for a rollback
    result, writes = fix("SSM.4", clients, name)
    assert result.status == Status.REMEDIATED, result.message
    assert writes == ["ModifyDocumentPermission"]
    assert shares(clients, name) == []

    action.revert(clients, name, before)
    assert shares(clients, name) == [{"AccountId": "all", "SharedDocumentVersion": "$LATEST"}]


def test_a_public_share_listed_on_a_later_page_is_seen() -> None:
    """SSM pages the shares (NextToken, no botocore paginator); the stand-in never does."""
    ssm = stubbed("ssm")
    asked = {"Name": "runbook", "PermissionType": "Share"}
    named = {"AccountId": "444455556666", "SharedDocumentVersion": "$DEFAULT"}
    public = {"AccountId": "all", "SharedDocumentVersion": "3"}
    ssm.add_response(
        "describe_document_permission",
        {"AccountIds": ["444455556666"], "AccountSharingInfoList": [named], "NextToken": "p2"},
        asked,
    )
    ssm.add_response(
        "describe_document_permission",
        {"AccountIds": ["all"], "AccountSharingInfoList": [public]},
        {**asked, "NextToken": "p2"},
    )
    with ssm:
        state = registry().playbooks["SSM.4"].build_action().read(SimpleNamespace(ssm=ssm.client), "runbook")
    assert state == {"SharedWithEveryone": True, "SharedVersion": "3"}
    ssm.assert_no_pending_responses()


def test_a_missing_document_fails_with_the_aws_reason(clients: Clients) -> None:
    result, writes = fix("SSM.4", clients, "no-such-document")
    assert (result.status, writes) == (Status.FAILED, [])
    assert result.message.startswith("InvalidDocument")


@pytest.mark.parametrize("resource_type", ["AwsSsmDocument", "Other"])
def test_a_document_finding_routes_by_either_resource_type(resource_type: str) -> None:
    from asr.findings import parse_finding
    from asr.local.seed import finding
    from asr.local.seeders import Seeded

    arn = f"arn:aws:ssm:{REGION}:{MEMBER_ACCOUNT}:document/runbook"
    seeded = Seeded("SSM.4", MEMBER_ACCOUNT, REGION, resource_type, arn)
    record = parse_finding(finding(seeded), registry())
    assert (record.playbook, record.resource_id) == ("SSM.4", "runbook")
