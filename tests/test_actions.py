"""Each fix against the stand-in: fixes what is wrong, leaves what is right alone, reports errors."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import routing_record

from asr import local
from asr.aws import Clients
from asr.findings import RoutingRecord
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import seed_one
from asr.local.seeders import SEEDERS
from asr.playbooks import registry
from asr.remediate import Result, Status, Target, fix_targets, remediate_resource, run_batch

REGION = "us-east-1"
READ_PREFIXES = ("describe_", "get_", "list_", "batch_get_")
# Every playbook's own control: each must have a seeder that breaks it in the stand-in.
CONTROLS = [playbook.control_id for playbook in registry()]


class Recording:
    """Clients that record the API calls made through them, and can refuse every write."""

    def __init__(self, clients: Clients, deny_writes: bool = False) -> None:
        self._clients = clients
        self._deny_writes = deny_writes
        self.calls: list[str] = []
        self.account_id, self.region = clients.account_id, clients.region

    def __getitem__(self, service: str) -> Any:
        return _RecordingClient(self, self._clients[service])

    def __getattr__(self, service: str) -> Any:
        return self[service]

    @property
    def role_arn(self) -> str:
        return self._clients.role_arn

    def once(self, key: tuple[Any, ...], make: Any) -> Any:
        return self._clients.once(key, make)

    def in_region(self, region: str) -> Recording:
        """Clients of another region, recorded in the same list."""
        other = Recording(self._clients.in_region(region), self._deny_writes)
        other.calls = self.calls
        return other

    @property
    def writes(self) -> list[str]:
        return [c for c in self.calls if not c.split(".")[1].startswith(READ_PREFIXES)]


class _RecordingClient:
    def __init__(self, recording: Recording, client: Any) -> None:
        self._recording = recording
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith("_") or name in ("exceptions", "meta"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._recording.calls.append(f"{self._client.meta.service_model.service_name}.{name}")
            if self._recording._deny_writes and not name.startswith(READ_PREFIXES):
                raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, name)
            return attribute(*args, **kwargs)

        return call


def test_every_playbook_can_be_seeded() -> None:
    assert set(CONTROLS) <= set(SEEDERS)


def seeded_target(aws, control: str):  # type: ignore[no-untyped-def]
    seeded = seed_one(aws, control, MEMBER_ACCOUNT, REGION)
    playbook = registry().for_control(control)
    action = playbook.build_action()
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    return seeded, playbook, action, clients, playbook.extract_resource_id(seeded.resource_id, MEMBER_ACCOUNT)


@pytest.mark.parametrize("control", CONTROLS)
def test_fix_remediates_verifies_and_records_before_state(aws, control: str) -> None:
    _, _, action, client, resource_id = seeded_target(aws, control)
    assert action.plan(action.read(client, resource_id)), "the seed must leave the resource non-compliant"

    recording = Recording(client)
    result = remediate_resource(action, recording, resource_id)

    assert result.status == Status.REMEDIATED, result.message
    assert recording.writes, "a fix must have written something"
    assert result.before and set(result.before) == set(result.after or {})
    assert result.before != result.after
    assert not action.plan(action.read(client, resource_id)), "read back independently: still non-compliant"


@pytest.mark.parametrize("control", CONTROLS)
def test_second_run_changes_nothing(aws, control: str) -> None:
    _, _, action, client, resource_id = seeded_target(aws, control)
    assert remediate_resource(action, client, resource_id).status == Status.REMEDIATED

    recording = Recording(client)
    result = remediate_resource(action, recording, resource_id)

    assert result.status == Status.ALREADY_COMPLIANT
    assert recording.writes == []
    assert result.before is None


@pytest.mark.parametrize("control", CONTROLS)
def test_api_error_is_reported_not_raised(aws, control: str) -> None:
    _, _, action, client, resource_id = seeded_target(aws, control)
    result = remediate_resource(action, Recording(client, deny_writes=True), resource_id)
    assert result.status == Status.FAILED
    assert result.message.startswith("AccessDenied")
    assert result.before, "the before-state is kept even when the write fails"
    assert action.plan(action.read(client, resource_id)), "nothing may have changed"


def test_password_policy_keeps_stricter_settings(aws) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    iam = clients.iam
    iam.update_account_password_policy(MinimumPasswordLength=30, RequireNumbers=False, MaxPasswordAge=30)
    action = registry().playbooks["IAM.7"].build_action()
    assert remediate_resource(action, clients, MEMBER_ACCOUNT).status == Status.REMEDIATED
    policy = iam.get_account_password_policy()["PasswordPolicy"]
    assert policy["MinimumPasswordLength"] == 30
    assert policy["MaxPasswordAge"] == 30
    assert policy["RequireNumbers"] is True
    assert policy["PasswordReusePrevention"] == 24


@pytest.mark.parametrize("age", [None, 180])
def test_password_policy_under_hard_expiry_never_shortens_the_age(aws, age: int | None) -> None:
    """Under hard expiry an expired password waits for an administrator: a new or shorter
    maximum age would lock out everyone with an older password at once. Refused, unchanged;
    a policy whose age is short enough already is raised as usual."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    iam = clients.iam
    iam.update_account_password_policy(
        MinimumPasswordLength=8, HardExpiry=True, **({"MaxPasswordAge": age} if age else {})
    )
    before = iam.get_account_password_policy()["PasswordPolicy"]
    action = registry().playbooks["IAM.7"].build_action()
    result = remediate_resource(action, clients, MEMBER_ACCOUNT)
    assert result.status == Status.FAILED
    now = f"{age} days" if age else "none"
    assert (
        f"hard expiry on: a maximum password age of 90 days (now {now}) would at once lock" in result.message
    )
    assert iam.get_account_password_policy()["PasswordPolicy"] == before

    iam.update_account_password_policy(MinimumPasswordLength=8, HardExpiry=True, MaxPasswordAge=60)
    assert remediate_resource(action, clients, MEMBER_ACCOUNT).status == Status.REMEDIATED
    policy = iam.get_account_password_policy()["PasswordPolicy"]
    assert (policy["MinimumPasswordLength"], policy["MaxPasswordAge"], policy["HardExpiry"]) == (14, 60, True)


def test_public_admin_ingress_keeps_narrow_ranges(aws) -> None:
    _, _, action, client, group_id = seeded_target(aws, "EC2.13")
    remediate_resource(action, client, group_id)
    rules = client.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]["IpPermissions"]
    assert [r["CidrIp"] for rule in rules for r in rule["IpRanges"]] == ["10.0.0.0/8"]


def test_default_group_fix_refuses_a_group_that_is_not_default(aws) -> None:
    _, _, _, client, group_id = seeded_target(aws, "EC2.13")
    action = registry().playbooks["EC2.2"].build_action()
    result = remediate_resource(action, client, group_id)
    assert result.status == Status.FAILED
    assert "not a default security group" in result.message
    assert client.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]["IpPermissions"]


def record(
    seeded_control: str, resource_arn: str, resource_id: str, account: str = MEMBER_ACCOUNT
) -> RoutingRecord:
    return routing_record(seeded_control, resource_arn, resource_id, account, REGION)


def test_one_failure_does_not_fail_the_batch(aws) -> None:
    good = seed_one(aws, "EC2.13", MEMBER_ACCOUNT, REGION)
    good_id = good.resource_id.rsplit("/", 1)[1]
    missing_id = "sg-00000000000000000"
    records = [
        record("EC2.13", good.resource_id.replace(good_id, missing_id), missing_id),
        record("EC2.13", good.resource_id, good_id),
    ]
    outcomes = {o.resource_id: o for o in run_batch(records, registry(), aws)}
    assert outcomes[missing_id].status == Status.FAILED
    assert "InvalidGroup.NotFound" in outcomes[missing_id].message
    assert outcomes[good_id].status == Status.REMEDIATED


def test_a_read_back_that_refuses_fails_that_resource_alone(aws) -> None:
    """A plan may raise to refuse a resource (EC2.8 in use over IMDSv1, AutoScaling.1 with
    failing instances); the read-back after a change judges by it too, and must not take the
    batch's other results down with it."""
    playbook = registry().for_control("EC2.13")
    action = playbook.build_action()

    class RefusedOnReadBack(type(action)):  # type: ignore[misc]
        applied = False

        def apply(self, *args: Any) -> None:
            self.applied = True
            super().apply(*args)

        def plan(self, state: dict[str, Any]) -> dict[str, Any]:
            if self.applied:
                raise ValueError("it reads as refused now")
            return super().plan(state)

    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    ids = [seed_one(aws, "EC2.13", MEMBER_ACCOUNT, REGION).resource_id.rsplit("/", 1)[1] for _ in range(2)]
    targets = [
        Target(clients, ids[0], (), RefusedOnReadBack(action.params)),
        Target(clients, ids[1], (), action),
    ]
    refused, fixed = fix_targets(targets, threads=2)
    assert (refused.status, refused.message) == (
        Status.FAILED,
        "verification failed: ValueError: it reads as refused now",
    )
    assert refused.before and fixed.status == Status.REMEDIATED


def test_account_level_fix_runs_once_for_many_findings(aws) -> None:
    """Three findings name one account: the stand-in must serve one policy update, not three
    (three fixes at once could each read the weak policy and all report REMEDIATED)."""
    seed_one(aws, "IAM.14", MEMBER_ACCOUNT, REGION)
    arn = f"AWS::::Account:{MEMBER_ACCOUNT}"
    records = [record(control, arn, MEMBER_ACCOUNT) for control in ("IAM.7", "IAM.14", "IAM.17")]
    local.served_requests(clear=True)
    outcomes = run_batch(records, registry(), aws)
    assert [o.status for o in outcomes] == [Status.REMEDIATED] * 3
    assert len({o.message for o in outcomes}) == 1
    updates = [c for c in local.served_requests() if c["action"] == "UpdateAccountPasswordPolicy"]
    assert [c["account"] for c in updates] == [MEMBER_ACCOUNT]


def test_findings_of_one_account_with_different_parameters_get_the_strictest_policy(aws) -> None:
    """IAM.7 tuned in Security Hub to 16 characters, no symbols, 120 days, and IAM.15 (CIS:
    14 characters) on one account: each finding's fix alone would leave the other's clause
    weaker than asked. Whichever finding comes first, the fix meets both."""
    import dataclasses

    seed_one(aws, "IAM.15", MEMBER_ACCOUNT, REGION)
    arn = f"AWS::::Account:{MEMBER_ACCOUNT}"
    tuned = {"minimum_password_length": 16, "require_symbols": False, "max_password_age": 120}
    iam7 = dataclasses.replace(record("IAM.7", arn, MEMBER_ACCOUNT), parameters=tuned)
    outcomes = run_batch([iam7, record("IAM.15", arn, MEMBER_ACCOUNT)], registry(), aws)
    assert [o.status for o in outcomes] == [Status.REMEDIATED] * 2, [o.message for o in outcomes]
    policy = Clients(aws, MEMBER_ACCOUNT, REGION).iam.get_account_password_policy()["PasswordPolicy"]
    strictest = (policy["MinimumPasswordLength"], policy["RequireSymbols"], policy["MaxPasswordAge"])
    assert strictest == (16, True, 90)


def test_security_hub_s_default_parameters_do_not_lower_the_password_baseline(aws) -> None:
    """A real IAM.7 finding carries Security Hub's defaults, a minimum of 8 characters among
    them: the playbook's 14 stands (the seeded finding carries those defaults too)."""
    from asr.findings import parse_finding
    from asr.local.seed import finding

    raw = finding(seed_one(aws, "IAM.7", MEMBER_ACCOUNT, REGION))
    assert {"Name": "MinimumPasswordLength", "Value": ["8"]} in raw["Compliance"]["SecurityControlParameters"]
    parsed = parse_finding(raw, registry())
    assert parsed.parameters["minimum_password_length"] == 8
    [outcome] = run_batch([parsed], registry(), aws)
    assert outcome.status == Status.REMEDIATED, outcome.message
    policy = Clients(aws, MEMBER_ACCOUNT, REGION).iam.get_account_password_policy()["PasswordPolicy"]
    assert (policy["MinimumPasswordLength"], policy["PasswordReusePrevention"]) == (14, 24)


def test_findings_of_one_resource_with_parameters_no_fix_can_join_are_not_acted_on(aws) -> None:
    import dataclasses

    seeded = seed_one(aws, "EC2.18", MEMBER_ACCOUNT, REGION)
    group_id = seeded.resource_id.rsplit("/", 1)[1]
    one, two = (record("EC2.18", seeded.resource_id, group_id) for _ in range(2))
    # The playbook's own values spelled out are the same parameters: one fix for both.
    spelled = dataclasses.replace(two, finding_id="spelled", parameters={"authorized_tcp_ports": [80, 443]})
    assert [o.status for o in run_batch([one, spelled], registry(), aws, dry=True)] == [Status.DRY_RUN] * 2
    two = dataclasses.replace(two, finding_id="other", parameters={"authorized_tcp_ports": [443, 8443]})
    local.served_requests(clear=True)
    outcomes = run_batch([one, two], registry(), aws)
    assert [o.status for o in outcomes] == [Status.FAILED] * 2
    assert "not touched: its findings carry different parameters for ec2." in outcomes[0].message
    assert not [c for c in local.served_requests() if c["service"] == "ec2" and "Revoke" in c["action"]]


def test_role_that_cannot_be_assumed_fails_only_its_account(aws, monkeypatch: pytest.MonkeyPatch) -> None:
    good = seed_one(aws, "EC2.13", MEMBER_ACCOUNT, REGION)
    good_id = good.resource_id.rsplit("/", 1)[1]
    denied_account = "333333333333"
    real_credentials = aws.credentials

    def credentials(account_id: str):  # type: ignore[no-untyped-def]
        if account_id == denied_account:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not trusted"}}, "AssumeRole")
        return real_credentials(account_id)

    monkeypatch.setattr(aws, "credentials", credentials)
    denied_arn = f"arn:aws:ec2:{REGION}:{denied_account}:security-group/sg-11111111111111111"
    records = [
        record("EC2.13", denied_arn, "sg-11111111111111111", denied_account),
        record("EC2.13", good.resource_id, good_id),
    ]
    outcomes = {o.account_id: o for o in run_batch(records, registry(), aws)}
    assert outcomes[denied_account].status == Status.FAILED
    assert "cannot assume arn:aws:iam::333333333333:role/ASRMemberRole" in outcomes[denied_account].message
    assert outcomes[MEMBER_ACCOUNT].status == Status.REMEDIATED


def fix_read_back_stale(
    aws: Any, monkeypatch: pytest.MonkeyPatch, control: str, propagation: float | None = None
) -> tuple[Result, int, list[float]]:
    """Fix the control's seeded resource while its first two read-backs still show it as it
    was: the result, how many times it was read back, and the pauses between."""
    import time

    _, _, action, clients, resource_id = seeded_target(aws, control)
    stale = action.read(clients, resource_id)
    answers = [stale, stale]
    real_read = type(action).read

    def read(self: Any, clients: Clients, resource_id: str) -> dict[str, Any]:
        reads.append(resource_id)
        return answers.pop(0) if answers and len(reads) > 1 else real_read(self, clients, resource_id)

    reads: list[str] = []
    slept: list[float] = []
    monkeypatch.setattr(type(action), "read", read)
    if propagation is not None:
        monkeypatch.setattr(type(action), "propagation_seconds", propagation)
    monkeypatch.setattr(time, "sleep", slept.append)
    return remediate_resource(action, clients, resource_id), len(reads) - 1, slept


@pytest.mark.parametrize(("propagation", "reads", "expected"), [(60.0, 3, "REMEDIATED"), (0.0, 1, "FAILED")])
def test_a_change_slow_to_show_is_read_again_until_it_may_have_propagated(
    aws, monkeypatch: pytest.MonkeyPatch, propagation: float, reads: int, expected: str
) -> None:
    """SQS takes up to a minute to show a changed attribute: a read-back too soon would call a
    change that was made FAILED (and a rollback would think it never happened)."""
    result, read_backs, slept = fix_read_back_stale(aws, monkeypatch, "SQS.1", propagation)
    assert result.status == expected, result.message
    assert read_backs == reads and slept == [1.0, 2.0][: reads - 1]


EVENTUALLY_CONSISTENT = [
    *("S3.1", "S3.2", "S3.4", "S3.5", "S3.6", "S3.9", "S3.11", "S3.13", "KMS.4"),
    *("EC2.1", "EC2.2", "EC2.6", "EC2.7", "EC2.8", "EC2.10", "EC2.13", "EC2.15", "EC2.18", "EC2.19"),
    "EC2.23",
    *("IAM.3", "IAM.7", "IAM.8", "IAM.18"),
    *("ECS.5", "DynamoDB.5"),
    *("RDS.2", "RDS.6", "RDS.13", "Redshift.6"),
]


@pytest.mark.parametrize("control", EVENTUALLY_CONSISTENT)
def test_settings_aws_calls_eventually_consistent_are_read_again(aws, monkeypatch, control: str) -> None:  # type: ignore[no-untyped-def]
    """S3's bucket and account settings, KMS keys, EC2, IAM, ECS and DynamoDB's tags are
    eventually consistent by AWS's docs, and RDS and Redshift apply some settings while the
    instance is modifying without listing them as pending: a fix whose read-backs still show
    the old setting for a few seconds is REMEDIATED."""
    result, read_backs, _ = fix_read_back_stale(aws, monkeypatch, control)
    assert (result.status, read_backs) == (Status.REMEDIATED, 3), result.message


def test_answered_knows_a_service_s_refusal_by_code_and_words() -> None:
    """How each fix recognises "I cannot use that role (yet)": the code, and words of the
    message in any case; anything else is not it, so it fails at once instead of waiting."""
    from asr.actions import answered

    def error(code: str, message: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": message}}, "SetTopicAttributes")

    sns = answered("InvalidParameter", saying="is not a valid role to allow SNS")
    assert sns(error("InvalidParameter", "Role x IS NOT A VALID ROLE TO ALLOW SNS to write"))
    assert not sns(error("InvalidParameter", "Invalid parameter: Attributes Reason: bad rate"))
    assert not sns(error("AuthorizationError", "x is not a valid role to allow SNS"))
    assert not sns(ValueError("is not a valid role to allow SNS"))
    either = answered(("InvalidParameterValue", "InvalidParameterCombination"))
    assert either(error("InvalidParameterCombination", "")) and not either(error("Throttling", ""))
