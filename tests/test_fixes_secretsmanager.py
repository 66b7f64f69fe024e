"""SecretsManager.1 (rotation on, not now), .3 (unused secrets deleted, restorably), .4 (rotated now)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from test_fixes_data import assert_permissions_cover_served_calls, parameters_sent

from asr import local
from asr.actions import ChangedMeanwhile, NotReversible
from asr.actions.secretsmanager import days_apart
from asr.aws import Clients
from asr.findings import parse_finding
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import Seeded, finding, seed_one
from asr.local.seeders import days_ago
from asr.local.seeders.awslambda import make_function
from asr.local.seeders.secretsmanager import set_history
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource

REGION = "us-east-1"
ROTATION, UNUSED, OVERDUE = "SecretsManager.1", "SecretsManager.3", "SecretsManager.4"
MANAGED = {"Key": "aws:secretsmanager:owningService", "Value": "rds"}  # how moto marks a managed secret


def clients_of(aws: Any, region: str = REGION) -> Clients:
    return Clients(aws, MEMBER_ACCOUNT, region)


def fix(aws: Any, control: str, arn: str, region: str = REGION, **params: Any) -> Result:
    playbook = registry().playbooks[control]
    resource_id = playbook.extract_resource_id(arn, MEMBER_ACCOUNT)
    return remediate_resource(playbook.build_action(params), clients_of(aws, region), resource_id)


def sent(
    aws: Any, control: str, arn: str, operation: str, region: str = REGION, **params: Any
) -> tuple[Result, list[Any]]:
    """The fix's result and the parameters of each ``operation`` call it made."""
    with parameters_sent(clients_of(aws, region).secretsmanager, operation) as calls:
        result = fix(aws, control, arn, region, **params)
    return result, calls


def secret(aws: Any, name: str = "orders/db", region: str = REGION, **settings: Any) -> str:
    return str(
        clients_of(aws, region).secretsmanager.create_secret(Name=name, SecretString="s3cret", **settings)[
            "ARN"
        ]
    )


def with_rotation(
    aws: Any, rules: dict[str, Any], enabled: bool = True, name: str = "orders/db"
) -> tuple[str, str]:
    """A secret with a rotation function and these rules, rotation on or (cancelled) off."""
    sm = clients_of(aws).secretsmanager
    arn = secret(aws, name)
    function = make_function(aws, MEMBER_ACCOUNT, REGION, f"rotate-{name.replace('/', '-')}")
    sm.rotate_secret(SecretId=arn, RotationLambdaARN=function, RotationRules=rules, RotateImmediately=False)
    if not enabled:
        sm.cancel_rotate_secret(SecretId=arn)
    return arn, function


def described(aws: Any, arn: str, region: str = REGION) -> dict[str, Any]:
    return dict(clients_of(aws, region).secretsmanager.describe_secret(SecretId=arn))


# --- SecretsManager.1 ------------------------------------------------------------------------


def test_rotation_is_turned_on_with_the_secrets_function_without_rotating_now(aws: Any) -> None:
    arn = seed_one(aws, ROTATION, MEMBER_ACCOUNT, REGION).resource_id
    function = described(aws, arn)["RotationLambdaARN"]
    value = clients_of(aws).secretsmanager.get_secret_value(SecretId=arn)
    local.served_requests(clear=True)
    result, calls = sent(aws, ROTATION, arn, "RotateSecret")
    assert (result.status, result.before, result.after) == (
        Status.REMEDIATED,
        {"RotationEnabled": False, "RotationDays": None},
        {"RotationEnabled": True, "RotationDays": 30},  # its own 30-day rules, shorter than 90: kept
    ), result.message
    assert calls == [
        {
            "SecretId": arn,
            "RotationLambdaARN": function,
            "RotationRules": {"AutomaticallyAfterDays": 30},
            "RotateImmediately": False,
        }
    ]
    assert_permissions_cover_served_calls(ROTATION)
    after = clients_of(aws).secretsmanager.get_secret_value(SecretId=arn)
    assert (after["VersionId"], after["SecretString"]) == (value["VersionId"], value["SecretString"])
    assert "LastRotatedDate" not in described(aws, arn)


def test_a_secret_without_a_rotation_function_is_refused_and_left_alone(aws: Any) -> None:
    arn = secret(aws)
    result, calls = sent(aws, ROTATION, arn, "RotateSecret")
    assert result.status == Status.FAILED
    assert f"secret {arn} has no rotation function and no service manages it" in result.message
    assert calls == []


def test_a_managed_secret_is_rotated_by_its_service_without_naming_a_function(aws: Any) -> None:
    arn = secret(aws, Tags=[MANAGED])
    result, calls = sent(aws, ROTATION, arn, "RotateSecret")
    assert result.status == Status.REMEDIATED, result.message
    assert calls == [
        {"SecretId": arn, "RotationRules": {"AutomaticallyAfterDays": 90}, "RotateImmediately": False}
    ]


@pytest.mark.parametrize(
    ("rules", "params", "status", "days"),
    [
        ({"AutomaticallyAfterDays": 180}, {}, Status.ALREADY_COMPLIANT, 180),
        ({"ScheduleExpression": "cron(0 4 1 * ? *)"}, {}, Status.ALREADY_COMPLIANT, None),
        ({"AutomaticallyAfterDays": 30}, {"max_rotation_days": 30}, Status.ALREADY_COMPLIANT, 30),
        ({"AutomaticallyAfterDays": 180}, {"max_rotation_days": 120}, Status.REMEDIATED, 90),
        ({"AutomaticallyAfterDays": 180}, {"max_rotation_days": 45}, Status.REMEDIATED, 45),
        ({"ScheduleExpression": "rate(12 hours)"}, {"max_rotation_days": 1}, Status.ALREADY_COMPLIANT, 1),
    ],
    ids=[
        "any-without-a-limit",
        "cron-without-a-limit",
        "within-the-limit",
        "longer-shortened",
        "limit-lower",
        "hours",
    ],
)
def test_a_rotating_secret_is_judged_against_the_limit_only_when_one_is_given(
    aws: Any, rules: dict[str, Any], params: dict[str, Any], status: Status, days: int | None
) -> None:
    arn, _ = with_rotation(aws, rules)
    result, calls = sent(aws, ROTATION, arn, "RotateSecret", **params)
    assert result.status == status, result.message
    assert bool(calls) == (status == Status.REMEDIATED)
    assert days_apart(described(aws, arn)["RotationRules"]) == days


def test_the_limit_comes_from_the_control_parameter(aws: Any) -> None:
    arn, _ = with_rotation(aws, {"AutomaticallyAfterDays": 180})
    raw = finding(Seeded(ROTATION, MEMBER_ACCOUNT, REGION, "AwsSecretsManagerSecret", arn))
    raw["Compliance"]["SecurityControlParameters"] = [
        {"Name": "maximumAllowedRotationFrequency", "Value": ["60"]}
    ]
    record = parse_finding(raw, registry())
    assert (record.resource_id, record.parameters) == (arn, {"max_rotation_days": 60})
    assert fix(aws, ROTATION, arn, **record.parameters).status == Status.REMEDIATED
    assert described(aws, arn)["RotationRules"] == {"AutomaticallyAfterDays": 60}


def test_rules_left_from_before_that_rotate_too_seldom_are_replaced(aws: Any) -> None:
    arn, _ = with_rotation(aws, {"AutomaticallyAfterDays": 365}, enabled=False)
    result, calls = sent(aws, ROTATION, arn, "RotateSecret")
    assert result.after == {"RotationEnabled": True, "RotationDays": 90}, result.message
    assert calls[0]["RotationRules"] == {"AutomaticallyAfterDays": 90}


def test_a_cron_schedule_under_a_limit_is_refused_saying_so(aws: Any) -> None:
    arn, _ = with_rotation(aws, {"ScheduleExpression": "cron(0 4 1 * ? *)"})
    result, calls = sent(aws, ROTATION, arn, "RotateSecret", max_rotation_days=30)
    assert result.status == Status.FAILED
    assert "whose gaps ASR does not work out: make it rotate at least every 30 days" in result.message
    assert calls == []


def test_a_replica_is_refused_and_its_primary_named(aws: Any) -> None:
    arn = secret(aws, AddReplicaRegions=[{"Region": "eu-west-1"}])
    replica = arn.replace(REGION, "eu-west-1")
    result, calls = sent(aws, ROTATION, replica, "RotateSecret", region="eu-west-1")
    assert result.status == Status.FAILED
    assert f"is a replica: its rotation is its primary's, in {REGION}" in result.message
    assert calls == []


def test_a_secret_scheduled_for_deletion_is_refused(aws: Any) -> None:
    arn, _ = with_rotation(aws, {"AutomaticallyAfterDays": 30}, enabled=False)
    clients_of(aws).secretsmanager.delete_secret(SecretId=arn, RecoveryWindowInDays=7)
    result = fix(aws, ROTATION, arn)
    assert result.status == Status.FAILED
    assert "is scheduled for deletion" in result.message


@pytest.mark.parametrize("enabled", [False, True], ids=["was-off", "was-longer"])
def test_revert_turns_rotation_off_again_or_puts_the_schedule_back(aws: Any, enabled: bool) -> None:
    arn, _ = with_rotation(aws, {"AutomaticallyAfterDays": 180}, enabled=enabled)
    action = registry().playbooks[ROTATION].build_action({"max_rotation_days": 60})
    clients = clients_of(aws)
    before = action.read(clients, arn)
    assert fix(aws, ROTATION, arn, max_rotation_days=60).status == Status.REMEDIATED
    assert action.read(clients, arn)["RotationDays"] == 60
    version = clients.secretsmanager.get_secret_value(SecretId=arn)["VersionId"]
    action.revert(clients, arn, before)
    now = action.read(clients, arn)
    # Off again, the rules the fix set stay (CancelRotateSecret keeps them): they do nothing then.
    rules = {"AutomaticallyAfterDays": 180 if enabled else 60}
    assert now.pop("RotationRules") == rules
    assert now == {key: value for key, value in before.items() if key != "RotationRules"}
    assert clients.secretsmanager.get_secret_value(SecretId=arn)["VersionId"] == version  # not rotated


@pytest.mark.parametrize(
    ("rules", "days"),
    [
        ({"AutomaticallyAfterDays": 30}, 30),
        ({"AutomaticallyAfterDays": 30, "ScheduleExpression": "rate(30 days)"}, 30),
        ({"ScheduleExpression": "rate(10 days)", "Duration": "3h"}, 10),
        ({"ScheduleExpression": "rate(1 day)"}, 1),
        ({"ScheduleExpression": "rate(4 hours)"}, 1),
        ({"ScheduleExpression": "rate(36 hours)"}, 2),
        ({"ScheduleExpression": "cron(0 16 1,15 * ? *)"}, None),
        (None, None),
    ],
)
def test_days_between_rotations(rules: dict[str, Any] | None, days: int | None) -> None:
    assert days_apart(rules) == days


# --- SecretsManager.3 ------------------------------------------------------------------------


def test_an_unused_secret_is_scheduled_for_deletion_with_a_recovery_window_and_restored(aws: Any) -> None:
    arn = seed_one(aws, UNUSED, MEMBER_ACCOUNT, REGION).resource_id
    local.served_requests(clear=True)
    result, calls = sent(aws, UNUSED, arn, "DeleteSecret")
    assert (result.status, result.before, result.after) == (
        Status.REMEDIATED,
        {"ScheduledForDeletion": False},
        {"ScheduledForDeletion": True},
    ), result.message
    assert calls == [{"SecretId": arn, "RecoveryWindowInDays": 30}]
    assert "DeletedDate" in described(aws, arn)
    assert_permissions_cover_served_calls(UNUSED)
    assert fix(aws, UNUSED, arn).status == Status.ALREADY_COMPLIANT  # scheduled already: no second call

    action = registry().playbooks[UNUSED].build_action()
    before = {**action.read(clients_of(aws), arn), "ScheduledForDeletion": False}
    assert action.irreversible_from(before) is None
    action.revert(clients_of(aws), arn, before)
    assert clients_of(aws).secretsmanager.get_secret_value(SecretId=arn)["SecretString"]


@pytest.mark.parametrize(
    ("created", "accessed", "params", "deleted"),
    [
        (400, 1, {}, False),
        (400, None, {}, True),
        (30, None, {}, False),
        (400, 89, {}, False),
        (400, 90, {}, False),  # AWS keeps the day of the read: counted as its end, the secret is kept
        (400, 91, {}, True),
        (400, 45, {"unused_days": 30}, True),
        (400, 45, {"unused_days": 60}, False),
    ],
    ids=[
        "read-yesterday",
        "never-read",
        "made-lately",
        "read-89-days-ago",
        "read-90-days-ago-that-day",
        "read-91-days-ago",
        "limit-30",
        "limit-60",
    ],
)
def test_only_a_secret_neither_made_nor_read_within_the_limit_is_deleted(
    aws: Any, created: int, accessed: int | None, params: dict[str, Any], deleted: bool
) -> None:
    arn = secret(aws)
    set_history(
        aws.endpoint_for("secretsmanager"),
        MEMBER_ACCOUNT,
        REGION,
        arn,
        days_ago(created),
        None if accessed is None else days_ago(accessed),
    )
    result, calls = sent(aws, UNUSED, arn, "DeleteSecret", **params)
    assert result.status == (Status.REMEDIATED if deleted else Status.ALREADY_COMPLIANT), result.message
    assert bool(calls) == deleted


def test_a_dry_run_refuses_what_the_fix_refuses(aws: Any) -> None:
    arn = secret(aws, Tags=[MANAGED])
    set_history(aws.endpoint_for("secretsmanager"), MEMBER_ACCOUNT, REGION, arn, days_ago(400))
    action = registry().playbooks[UNUSED].build_action()
    result = remediate_resource(action, clients_of(aws), arn, dry=True)
    assert (result.status, "delete it through that service" in result.message) == (Status.FAILED, True)


def test_a_secret_read_now_is_compliant_whatever_the_finding_said(aws: Any) -> None:
    arn = seed_one(aws, UNUSED, MEMBER_ACCOUNT, REGION).resource_id
    clients_of(aws).secretsmanager.get_secret_value(SecretId=arn)
    result, calls = sent(aws, UNUSED, arn, "DeleteSecret")
    assert (result.status, calls) == (Status.ALREADY_COMPLIANT, [])


def test_a_secret_read_between_the_fixs_read_and_its_deletion_is_kept(aws: Any) -> None:
    arn = seed_one(aws, UNUSED, MEMBER_ACCOUNT, REGION).resource_id
    action, clients = registry().playbooks[UNUSED].build_action(), clients_of(aws)
    state = action.read(clients, arn)
    plan = action.plan(state)
    clients.secretsmanager.get_secret_value(SecretId=arn)  # an application reads it meanwhile
    with parameters_sent(clients.secretsmanager, "DeleteSecret") as calls, pytest.raises(ChangedMeanwhile):
        action.apply(clients, arn, state, plan)
    assert calls == []
    assert "DeletedDate" not in described(aws, arn)


def test_the_control_parameter_sets_the_limit(aws: Any) -> None:
    raw = finding(Seeded(UNUSED, MEMBER_ACCOUNT, REGION, "AwsSecretsManagerSecret", secret(aws)))
    raw["Compliance"]["SecurityControlParameters"] = [{"Name": "unusedForDays", "Value": ["30"]}]
    assert parse_finding(raw, registry()).parameters == {"unused_days": 30}


def unused(aws: Any, arn: str, region: str = REGION) -> str:
    set_history(aws.endpoint_for("secretsmanager"), MEMBER_ACCOUNT, region, arn, days_ago(400), days_ago(200))
    return arn


@pytest.mark.parametrize("kind", ["primary", "replica", "managed"])
def test_replicated_and_managed_secrets_are_refused_saying_why(aws: Any, kind: str) -> None:
    region = REGION
    if kind == "managed":
        arn = unused(aws, secret(aws, Tags=[MANAGED]))
        why = f"secret {arn} is managed by rds: delete it through that service"
    else:
        arn = unused(aws, secret(aws, AddReplicaRegions=[{"Region": "eu-west-1"}]))
        why = f"secret {arn} is replicated to eu-west-1: AWS deletes it only once the replicas are removed"
        if kind == "replica":
            region, arn = "eu-west-1", arn.replace(REGION, "eu-west-1")
            why = f"secret {arn} is a replica of the secret in {REGION}: AWS deletes a replica at once"
    result, calls = sent(aws, UNUSED, arn, "DeleteSecret", region=region)
    assert result.status == Status.FAILED
    assert why in result.message
    assert calls == []


def test_the_fix_cannot_be_undone_once_the_recovery_window_has_passed() -> None:
    action = registry().playbooks[UNUSED].build_action({"recovery_window_days": 7})
    today = datetime.datetime.now(datetime.UTC).date()
    before = {"ScheduledForDeletion": False, "ReadOn": (today - datetime.timedelta(days=6)).isoformat()}
    assert action.irreversible_from(before) is None
    before["ReadOn"] = (today - datetime.timedelta(days=7)).isoformat()
    why = action.irreversible_from(before)
    assert why and why.startswith(f"the secret's recovery window of 7 days ended by {today}")


# --- SecretsManager.4 ------------------------------------------------------------------------


def test_an_overdue_secret_is_rotated_now_by_its_function_and_cannot_be_undone(aws: Any) -> None:
    arn = seed_one(aws, OVERDUE, MEMBER_ACCOUNT, REGION).resource_id
    sm = clients_of(aws).secretsmanager
    function, old = described(aws, arn)["RotationLambdaARN"], sm.get_secret_value(SecretId=arn)
    local.served_requests(clear=True)
    result, calls = sent(aws, OVERDUE, arn, "RotateSecret")
    assert (result.status, result.before, result.after) == (
        Status.REMEDIATED,
        {"RotatedInTime": False},
        {"RotatedInTime": True},
    ), result.message
    assert calls == [{"SecretId": arn, "RotationLambdaARN": function}]
    assert_permissions_cover_served_calls(OVERDUE)
    assert sm.get_secret_value(SecretId=arn)["SecretString"] != old["SecretString"]
    previous = sm.get_secret_value(SecretId=arn, VersionStage="AWSPREVIOUS")
    assert (previous["VersionId"], previous["SecretString"]) == (old["VersionId"], old["SecretString"])
    assert described(aws, arn)["RotationRules"] == {"AutomaticallyAfterDays": 30}  # its schedule, unchanged
    assert fix(aws, OVERDUE, arn).status == Status.ALREADY_COMPLIANT

    action = registry().playbooks[OVERDUE].build_action()
    with pytest.raises(NotReversible, match="AWSPREVIOUS"):
        action.revert(clients_of(aws), arn, {})


@pytest.mark.parametrize(
    ("created", "rotated", "params", "rotates"),
    [
        (400, 10, {}, False),
        (400, 91, {}, True),
        (30, None, {}, False),
        (400, None, {}, True),
        (400, 45, {"max_days_since_rotation": 30}, True),
    ],
    ids=["rotated-lately", "rotated-long-ago", "new-never-rotated", "old-never-rotated", "limit-30"],
)
def test_only_a_secret_not_rotated_within_the_limit_is_rotated(
    aws: Any, created: int, rotated: int | None, params: dict[str, Any], rotates: bool
) -> None:
    arn, _ = with_rotation(aws, {"AutomaticallyAfterDays": 180})
    last = None if rotated is None else days_ago(rotated)
    set_history(
        aws.endpoint_for("secretsmanager"), MEMBER_ACCOUNT, REGION, arn, days_ago(created), None, last
    )
    result, calls = sent(aws, OVERDUE, arn, "RotateSecret", **params)
    assert result.status == (Status.REMEDIATED if rotates else Status.ALREADY_COMPLIANT), result.message
    assert bool(calls) == rotates
    assert described(aws, arn)["RotationRules"] == {"AutomaticallyAfterDays": 180}  # its schedule, kept


def test_an_overdue_secret_whose_rotation_is_off_is_refused_and_not_rotated(aws: Any) -> None:
    """AWS reports no last rotation while rotation is off (the secret reads as never rotated),
    and RotateSecret would turn rotation on again: SecretsManager.1's approval comes first."""
    arn, _ = with_rotation(aws, {"AutomaticallyAfterDays": 30}, enabled=False)
    set_history(
        aws.endpoint_for("secretsmanager"), MEMBER_ACCOUNT, REGION, arn, days_ago(400), None, days_ago(1)
    )
    result, calls = sent(aws, OVERDUE, arn, "RotateSecret")
    assert result.status == Status.FAILED
    assert "has its rotation turned off" in result.message and calls == []
    dry = remediate_resource(registry().playbooks[OVERDUE].build_action(), clients_of(aws), arn, dry=True)
    assert dry.status == Status.FAILED, "a dry run must not promise what the fix refuses"
    assert described(aws, arn)["RotationEnabled"] is False


def test_an_owners_cron_schedule_is_kept_where_no_limit_judges_it(aws: Any) -> None:
    rules = {"ScheduleExpression": "cron(0 4 ? * SUN *)"}
    arn, _ = with_rotation(aws, rules, enabled=False)
    result, calls = sent(aws, ROTATION, arn, "RotateSecret")
    assert result.status == Status.REMEDIATED, result.message
    assert [call["RotationRules"] for call in calls] == [rules]


def test_a_rotation_running_stops_the_revert_of_turning_rotation_on(aws: Any) -> None:
    arn, _ = with_rotation(aws, {"AutomaticallyAfterDays": 30}, enabled=False)
    action = registry().playbooks[ROTATION].build_action()
    before = action.read(clients_of(aws), arn)
    assert fix(aws, ROTATION, arn).status == Status.REMEDIATED
    sm = clients_of(aws).secretsmanager
    sm.put_secret_value(SecretId=arn, SecretString="next", VersionStages=["AWSPENDING"])
    with pytest.raises(ValueError, match="is running: roll back again once it ends"):
        action.revert(clients_of(aws), arn, before)
    assert described(aws, arn)["RotationEnabled"] is True


def test_an_overdue_secret_without_a_rotation_function_is_refused(aws: Any) -> None:
    arn = secret(aws)
    set_history(aws.endpoint_for("secretsmanager"), MEMBER_ACCOUNT, REGION, arn, days_ago(400))
    result, calls = sent(aws, OVERDUE, arn, "RotateSecret")
    assert result.status == Status.FAILED
    assert "has no rotation function and no service manages it" in result.message
    assert calls == []


def test_the_days_since_rotation_come_from_the_control_parameter(aws: Any) -> None:
    raw = finding(Seeded(OVERDUE, MEMBER_ACCOUNT, REGION, "AwsSecretsManagerSecret", secret(aws)))
    raw["Compliance"]["SecurityControlParameters"] = [{"Name": "maxDaysSinceRotation", "Value": ["30"]}]
    assert parse_finding(raw, registry()).parameters == {"max_days_since_rotation": 30}
