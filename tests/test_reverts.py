"""Every fix's revert against the stand-in: the state ``read`` saw before the fix comes back."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from helpers import hooked
from test_iam_policy import IAM_NAME, Call, api_calls, names  # noqa: F401 (api_calls is a fixture)

from asr.actions import NotReversible
from asr.actions.iam import SETTABLE
from asr.audit import canonical
from asr.aws import Clients
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import seed_one
from asr.playbooks import registry
from asr.remediate import Status, remediate_resource

REGION = "us-east-1"
# IAM.8 and IAM.22 delete a console password, which no revert can bring back: tested below.
PARTLY = {"IAM.8", "IAM.22"}
CONTROLS = [playbook.control_id for playbook in registry() if playbook.control_id not in PARTLY]
# S3 has no IAM actions of its own for these deletions: they need the permission to put.
DELETES = {
    ("s3", "DeletePublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("s3control", "DeletePublicAccessBlock"): "s3:PutAccountPublicAccessBlock",
    ("s3", "DeleteBucketEncryption"): "s3:PutEncryptionConfiguration",
    ("s3", "DeleteBucketLifecycle"): "s3:PutLifecycleConfiguration",
}


def fixed(aws, control: str):  # type: ignore[no-untyped-def]
    """A seeded resource, its state before the fix, and the fix applied."""
    seeded = seed_one(aws, control, MEMBER_ACCOUNT, REGION)
    playbook = registry().for_control(control)
    action = playbook.build_action()
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    resource_id = playbook.extract_resource_id(seeded.resource_id, MEMBER_ACCOUNT)
    before = action.read(clients, resource_id)
    assert remediate_resource(action, clients, resource_id).status == Status.REMEDIATED
    return action, clients, resource_id, before


@pytest.mark.parametrize("control", CONTROLS)
def test_revert_puts_the_before_state_back_calling_only_what_it_declares(
    aws,
    control: str,
    api_calls: list[Call],  # noqa: F811 (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for call, permission in DELETES.items():
        monkeypatch.setitem(IAM_NAME, call, permission)
    action, clients, resource_id, before = fixed(aws, control)
    if action.irreversible:
        with pytest.raises(NotReversible, match=re.escape(action.irreversible)):
            action.revert(clients, resource_id, before)
        return
    assert action.irreversible_from(before) is None, "a rollback would refuse what this test reverts"
    api_calls.clear()
    action.revert(clients, resource_id, before)
    assert names(api_calls) - {*action.permissions, *action.revert_permissions} == set()
    assert canonical(action.read(clients, resource_id)) == canonical(before)
    assert action.plan(action.read(clients, resource_id)), "reverted: non-compliant again"


def test_revert_of_a_deleted_password_reactivates_keys_and_says_why(aws) -> None:
    action, clients, user, before = fixed(aws, "IAM.22")
    assert before["unused_console_password"], "the seed has an unused console password"
    assert "console password was deleted" in action.lost_on_revert["unused_console_password"]
    assert action.revert(clients, user, before) is None  # every key was there to reactivate
    keys = clients.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    wanted = {k["AccessKeyId"] for k in before["unused_active_access_keys"]}
    assert wanted and all(k["Status"] == "Active" for k in keys if k["AccessKeyId"] in wanted)


def test_a_lambda_statement_addpermission_cannot_write_is_not_reversible() -> None:
    from asr.actions.awslambda import add_permission_args

    statement = {"Sid": "s", "Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunction"}
    assert add_permission_args(statement) == {
        "StatementId": "s",
        "Action": "lambda:InvokeFunction",
        "Principal": "*",
    }
    with pytest.raises(NotReversible, match="cannot write the condition"):
        add_permission_args({**statement, "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}})
    with pytest.raises(NotReversible, match="one action"):
        add_permission_args({**statement, "Action": ["lambda:InvokeFunction", "lambda:GetFunction"]})


def test_password_policy_revert_keeps_a_setting_changed_since(aws) -> None:
    """An update replaces the whole policy: putting back every setting as it was would undo
    what an administrator set after the fix (a hard expiry here)."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    clients.iam.update_account_password_policy(MinimumPasswordLength=8, RequireNumbers=True)
    action = registry().for_control("IAM.7").build_action()
    before = action.read(clients, MEMBER_ACCOUNT)
    assert remediate_resource(action, clients, MEMBER_ACCOUNT).status == Status.REMEDIATED
    fixed = clients.iam.get_account_password_policy()["PasswordPolicy"]
    clients.iam.update_account_password_policy(
        **{k: v for k, v in fixed.items() if k in SETTABLE} | {"HardExpiry": True}
    )
    action.revert(clients, MEMBER_ACCOUNT, before)
    now = clients.iam.get_account_password_policy()["PasswordPolicy"]
    assert (now["MinimumPasswordLength"], now["RequireNumbers"], now["RequireSymbols"]) == (8, True, False)
    assert now["HardExpiry"] is True, "set after the fix: kept"


def test_password_policy_revert_to_none_deletes_the_policy(aws) -> None:
    """The policy reads HardExpiry false once set: the revert took that for a setting made
    since and left a 6-character policy, weaker than none (and a failed rollback)."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    action = registry().for_control("IAM.7").build_action()
    before = action.read(clients, MEMBER_ACCOUNT)
    assert before == {}
    assert remediate_resource(action, clients, MEMBER_ACCOUNT).status == Status.REMEDIATED
    assert clients.iam.get_account_password_policy()["PasswordPolicy"]["HardExpiry"] is False
    action.revert(clients, MEMBER_ACCOUNT, before)
    with pytest.raises(clients.iam.exceptions.NoSuchEntityException):
        clients.iam.get_account_password_policy()


def test_config_recorder_revert_keeps_a_recording_mode_set_since(aws) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    own = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/config-recorder"
    partial = {"allSupported": False, "resourceTypes": ["AWS::EC2::Instance"]}
    clients.config.put_configuration_recorder(
        ConfigurationRecorder={"name": "main", "roleARN": own, "recordingGroup": partial}
    )
    action = registry().for_control("Config.1").build_action()
    before = action.read(clients, MEMBER_ACCOUNT)
    assert remediate_resource(action, clients, MEMBER_ACCOUNT).status == Status.REMEDIATED
    [fixed] = clients.config.describe_configuration_recorders()["ConfigurationRecorders"]
    daily = {"recordingFrequency": "DAILY", "recordingModeOverrides": []}
    clients.config.put_configuration_recorder(ConfigurationRecorder={**fixed, "recordingMode": daily})

    action.revert(clients, MEMBER_ACCOUNT, before)
    [now] = clients.config.describe_configuration_recorders()["ConfigurationRecorders"]
    assert (now["roleARN"], now["recordingGroup"]["allSupported"]) == (own, False)
    assert now["recordingGroup"]["resourceTypes"] == ["AWS::EC2::Instance"]
    assert now["recordingMode"]["recordingFrequency"] == "DAILY", "set after the fix: kept"


# --- a revert puts back only what its fix changed: a setting changed since, outside the fix, stays


def test_block_public_access_revert_keeps_a_flag_the_fix_did_not_turn_on(aws) -> None:  # type: ignore[no-untyped-def]
    seeded = seed_one(aws, "S3.2", MEMBER_ACCOUNT, REGION)
    playbook = registry().for_control("S3.2")
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    bucket = playbook.extract_resource_id(seeded.resource_id, MEMBER_ACCOUNT)

    def put(**flags: bool) -> None:
        clients.s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=flags)

    put(BlockPublicAcls=True, IgnorePublicAcls=True, BlockPublicPolicy=False, RestrictPublicBuckets=False)
    action = playbook.build_action()
    before = action.read(clients, bucket)
    assert remediate_resource(action, clients, bucket).status == Status.REMEDIATED
    # The owner turns one flag off on purpose, one the fix did not turn on.
    put(BlockPublicAcls=True, IgnorePublicAcls=False, BlockPublicPolicy=True, RestrictPublicBuckets=True)
    action.revert(clients, bucket, before)
    assert action.read(clients, bucket) == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": False,
        "BlockPublicPolicy": False,
        "RestrictPublicBuckets": False,
    }


def test_health_check_revert_keeps_a_grace_period_the_fix_did_not_set(aws) -> None:  # type: ignore[no-untyped-def]
    seeded = seed_one(aws, "AutoScaling.1", MEMBER_ACCOUNT, REGION)
    playbook = registry().for_control("AutoScaling.1")
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    group = playbook.extract_resource_id(seeded.resource_id, MEMBER_ACCOUNT)
    clients.autoscaling.update_auto_scaling_group(AutoScalingGroupName=group, HealthCheckGracePeriod=300)
    action = playbook.build_action()
    before = action.read(clients, group)
    assert remediate_resource(action, clients, group).status == Status.REMEDIATED
    clients.autoscaling.update_auto_scaling_group(AutoScalingGroupName=group, HealthCheckGracePeriod=900)
    action.revert(clients, group, before)
    now = action.read(clients, group)
    assert (now["HealthCheckType"], now["HealthCheckGracePeriod"]) == ("EC2", 900)


def test_flow_logs_revert_deletes_the_fix_s_flow_log_and_not_one_made_after(aws, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The network team logs ALL traffic to the same group after the fix logged REJECT. The
    stand-in refuses a second flow log of a VPC to one group whatever its traffic type, so the
    team's is added to what the revert reads."""
    action, clients, vpc, before = fixed(aws, "EC2.6")
    [made] = [log for log in action.read(clients, vpc)["FlowLogs"] if log not in before["FlowLogs"]]
    assert made["TrafficType"] == "REJECT"
    team = made | {"FlowLogId": "fl-0team", "TrafficType": "ALL"}
    real_read = type(action).read

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        state = real_read(self, clients, resource_id)
        return state | {"FlowLogs": [*state["FlowLogs"], team]}

    def delete(params: dict[str, Any], **_: Any) -> None:
        deleted.append(params["FlowLogIds"])

    monkeypatch.setattr(type(action), "read", read)
    deleted: list[list[str]] = []
    with hooked(clients.ec2, "provide-client-params.ec2.DeleteFlowLogs", delete):
        action.revert(clients, vpc, before)
    assert deleted == [[made["FlowLogId"]]]


def test_cache_encryption_revert_does_not_make_again_an_override_deleted_since(aws) -> None:  # type: ignore[no-untyped-def]
    """Patching a method override that is gone would make it anew with default settings
    (logging off, say): only the methods still there are decrypted again."""
    import asr.actions.apigateway as apigateway

    action, clients, stage, _ = fixed(aws, "APIGateway.5")
    before = {"UnencryptedCaches": ["*/*", "~1pets/GET"]}  # an override the owner deleted since
    sent: list[list[dict[str, str]]] = []

    def update(params: dict[str, Any], **_: Any) -> None:
        sent.append(params["patchOperations"])

    with hooked(clients.apigateway, "provide-client-params.apigateway.UpdateStage", update):
        action.revert(clients, stage, before)
    assert sent == [[{"op": "replace", "path": "/*/*/caching/dataEncrypted", "value": "false"}]]
    assert "~1pets/GET" not in apigateway.method_settings(clients, stage)


def test_cache_encryption_check_finds_nothing_to_put_back_once_every_override_is_gone(aws) -> None:  # type: ignore[no-untyped-def]
    """The check a rollback's approval shows must not promise to decrypt methods the stage no
    longer has: the revert would put back nothing (``Action.check_revert``)."""
    action, clients, stage, _ = fixed(aws, "APIGateway.5")
    action.check_revert(clients, stage, {"UnencryptedCaches": ["*/*"]})  # still there: no refusal
    with pytest.raises(LookupError, match="~1pets/GET"):
        action.check_revert(clients, stage, {"UnencryptedCaches": ["~1pets/GET"]})


# --- what a revert must leave as it was: the resource as AWS describes it, not as read sums it up


def _bucket_statements(clients: Clients, bucket: str) -> list[dict[str, Any]]:
    return json.loads(clients.s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]


def _key_statuses(clients: Clients, user: str) -> dict[str, str]:
    keys = clients.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in keys}


def _inactive_key(clients: Clients, user: str) -> None:
    key = clients.iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    clients.iam.update_access_key(UserName=user, AccessKeyId=key, Status="Inactive")


def _ingress(clients: Clients, group: str) -> list[str]:
    [found] = clients.ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"]
    rules = [
        {k: sorted(v, key=json.dumps) if isinstance(v, list) else v for k, v in rule.items()}
        for rule in found["IpPermissions"]
    ]
    return sorted(json.dumps(rule, sort_keys=True) for rule in rules)


def _public_https(clients: Clients, group: str) -> None:
    clients.ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        ],
    )


# control -> (what the seed or the test adds beside what the fix changes, how AWS describes it)
NEIGHBOURS = {
    "S3.5": (None, _bucket_statements),  # the seed's own statement
    "IAM.3": (_inactive_key, _key_statuses),
    "EC2.13": (_public_https, _ingress),
}


@pytest.mark.parametrize("control", sorted(NEIGHBOURS))
def test_a_revert_puts_back_what_the_fix_changed_and_nothing_else(aws, control: str) -> None:
    """Comparing ``read`` alone let through reverts that wiped a whole bucket policy, turned on
    every key of a user, or opened more ports: read sums up only what the control checks."""
    add, describe = NEIGHBOURS[control]
    seeded = seed_one(aws, control, MEMBER_ACCOUNT, REGION)
    playbook = registry().for_control(control)
    action = playbook.build_action()
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    resource_id = playbook.extract_resource_id(seeded.resource_id, MEMBER_ACCOUNT)
    if add:
        add(clients, resource_id)
    described, before = describe(clients, resource_id), action.read(clients, resource_id)
    assert remediate_resource(action, clients, resource_id).status == Status.REMEDIATED
    assert describe(clients, resource_id) != described
    action.revert(clients, resource_id, before)
    assert describe(clients, resource_id) == described
