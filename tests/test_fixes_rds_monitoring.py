"""RDS.6: Enhanced Monitoring on, through the instance's own role or the shared one the
member-role stack made."""

from __future__ import annotations

import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import Refusals, iam_writes
from test_fixes_data import PASSWORD, instance, parameters_sent

import asr.actions
from asr import local
from asr.aws import Clients
from asr.findings import parse_finding
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import Seeded, finding, seed_one
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource

REGION = "us-east-1"
ARN = f"arn:aws:rds:{REGION}:{MEMBER_ACCOUNT}"
ROLE = "asr-service-rds-monitoring"
ROLE_ARN = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/{ROLE}"
POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
OWN_ROLE_ARN = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/dba-monitoring"


def fix(aws: Any, resource_arn: str, **params: Any) -> Result:
    """Run RDS.6's playbook, with these action parameters, on the instance a finding names."""
    playbook = registry().playbooks["RDS.6"]
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    resource_id = playbook.extract_resource_id(resource_arn, MEMBER_ACCOUNT)
    return remediate_resource(playbook.build_action(params), clients, resource_id)


def seeded(aws: Any) -> tuple[str, str]:
    """A new instance with monitoring off: its ARN and name."""
    arn = seed_one(aws, "RDS.6", MEMBER_ACCOUNT, REGION).resource_id
    return arn, arn.rsplit(":", 1)[1]


def monitored(clients: Clients, name: str, interval: int) -> str:
    """An instance already monitored every ``interval`` seconds through its own role; its ARN."""
    clients.rds.create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MonitoringInterval=interval,
        MonitoringRoleArn=OWN_ROLE_ARN,
        **PASSWORD,
    )
    return f"{ARN}:db:{name}"


def served(*services: str) -> list[str]:
    return [
        f"{call['service']}:{call['action']}"
        for call in local.served_requests()
        if call["service"] in services
    ]


def test_monitoring_is_turned_on_through_one_shared_role(aws: Any) -> None:
    """The stack's role, trusted by Enhanced Monitoring for this account only and holding the
    AWS managed policy, serves both instances, and IAM is only read. Only the interval and
    the role are sent, not ApplyImmediately, and every call is one the action declares."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    (first, first_name), (second, second_name) = seeded(aws), seeded(aws)
    local.served_requests(clear=True)

    with parameters_sent(clients.rds, "ModifyDBInstance") as sent:
        results = [fix(aws, first), fix(aws, second)]
    assert [(r.status, r.before, r.after) for r in results] == [
        (Status.REMEDIATED, {"MonitoringInterval": 0}, {"MonitoringInterval": 60})
    ] * 2, results
    assert sent == [
        {
            "DBInstanceIdentifier": name,
            "MonitoringInterval": 60,
            "MonitoringRoleArn": ROLE_ARN,
            "ApplyImmediately": False,
        }
        for name in (first_name, second_name)
    ]
    calls = served("rds", "iam")
    assert "iam:GetRole" in calls and iam_writes(calls) == []
    assert set(calls) <= set(registry().playbooks["RDS.6"].build_action().permissions)

    role = clients.iam.get_role(RoleName=ROLE)["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "monitoring.rds.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": MEMBER_ACCOUNT}},
        }
    ]
    attached = clients.iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [POLICY_ARN]
    assert clients.iam.list_role_policies(RoleName=ROLE)["PolicyNames"] == []


def test_an_instance_keeps_its_own_monitoring_role(aws: Any) -> None:
    """Security Hub's own interval (here 5s) is set; no role is sent (so none is passed) and none is made."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = monitored(clients, "orders", 60)
    with parameters_sent(clients.rds, "ModifyDBInstance") as sent:
        result = fix(aws, arn, required_interval_seconds=5)
    assert (result.status, result.before, result.after) == (
        Status.REMEDIATED,
        {"MonitoringInterval": 60},
        {"MonitoringInterval": 5},
    ), result.message
    assert sent == [{"DBInstanceIdentifier": "orders", "MonitoringInterval": 5, "ApplyImmediately": False}]
    assert instance(clients, "orders")["MonitoringRoleArn"] == OWN_ROLE_ARN
    assert clients.iam.list_roles()["Roles"] == []


@pytest.mark.parametrize("params", [{}, {"interval_seconds": 5}, {"required_interval_seconds": 15}])
def test_monitoring_already_on_is_compliant_and_nothing_is_written(aws: Any, params: dict[str, int]) -> None:
    """Any interval passes, unless Security Hub names one: 15 is it."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = monitored(clients, "orders", 15)
    local.served_requests(clear=True)
    result = fix(aws, arn, **params)
    assert result.status == Status.ALREADY_COMPLIANT, result.message
    assert served("rds", "iam") == ["rds:DescribeDBInstances"]


def test_the_interval_comes_from_the_control_parameter(aws: Any) -> None:
    arn, name = seeded(aws)
    raw = finding(Seeded("RDS.6", MEMBER_ACCOUNT, REGION, "AwsRdsDbInstance", arn))
    raw["Compliance"]["SecurityControlParameters"] = [{"Name": "monitoringInterval", "Value": ["5"]}]
    record = parse_finding(raw, registry())
    assert (record.resource_id, record.parameters) == (name, {"required_interval_seconds": 5})

    result = fix(aws, arn, **record.parameters)
    assert result.status == Status.REMEDIATED, result.message
    assert instance(Clients(aws, MEMBER_ACCOUNT, REGION), name)["MonitoringInterval"] == 5


def _answering(described: dict[str, Any]) -> SimpleNamespace:
    """Clients whose rds describes one instance so. Not botocore's Stubber: it checks answers
    against the RDS model, whose PendingModifiedValues has no MonitoringInterval."""

    def describe_db_instances(**_: Any) -> dict[str, Any]:
        return {"DBInstances": [{"DBInstanceIdentifier": "orders", **described}]}

    return SimpleNamespace(rds=SimpleNamespace(describe_db_instances=describe_db_instances))


@pytest.mark.parametrize(
    ("described", "plan"),
    [
        ({"MonitoringInterval": 0, "PendingModifiedValues": {"MonitoringInterval": 60}}, {}),
        (
            {"MonitoringInterval": 60, "PendingModifiedValues": {"MonitoringInterval": 0}},
            {"MonitoringInterval": 60},
        ),
        (
            {"MonitoringInterval": 0, "PendingModifiedValues": {"DBInstanceClass": "db.m5.large"}},
            {"MonitoringInterval": 60},
        ),
    ],
)
def test_a_pending_interval_is_the_one_the_instance_is_getting(described: dict[str, Any], plan: dict) -> None:
    action = registry().playbooks["RDS.6"].build_action()
    state = action.read(_answering(described), "orders")  # type: ignore[arg-type]
    assert action.plan(state) == plan


def test_a_role_made_lately_is_waited_for_and_an_old_one_is_not(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RDS refuses a role IAM made a moment ago, whichever task made it: that refusal is tried
    again. An old role's refusal, or another invalid combination, stands."""
    monkeypatch.setattr(asr.actions, "ROLE_PROPAGATION_DELAYS", (0.0, 0.0))
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    refusing = Refusals(clients.rds, "ModifyDBInstance")
    # RDS's answer as reported for a role IAM has not propagated yet (InvalidParameterValue), and
    # the other code it gives for a role it cannot use.
    unready = {
        "Code": "InvalidParameterValue",
        "Message": "IAM role ARN value is invalid or does not include the required permissions for: "
        "ENHANCED_MONITORING",
    }

    def fixed(wanted: Status, calls_wanted: int, *refused: dict[str, str]) -> None:
        refusing.next(*refused)
        result = fix(aws, seeded(aws)[0])
        assert (result.status, refusing.calls) == (wanted, calls_wanted), result.message

    fixed(Status.REMEDIATED, 2, unready)  # the stack made the role moments ago: refused once, then set
    fixed(Status.REMEDIATED, 2, {**unready, "Code": "InvalidParameterCombination"})  # made moments ago
    other = {"Code": "InvalidParameterCombination", "Message": "RDS Custom does not support this"}
    fixed(Status.FAILED, 1, other)  # not a propagation delay
    monkeypatch.setattr(asr.actions, "NEW_ROLE_AGE", datetime.timedelta(0))
    fixed(Status.FAILED, 1, unready)  # an old role's refusal stands


def test_revert_turns_monitoring_off_and_leaves_the_shared_role(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn, name = seeded(aws)
    action = registry().playbooks["RDS.6"].build_action()
    before = action.read(clients, name)
    assert fix(aws, arn).status == Status.REMEDIATED

    action.revert(clients, name, before)
    assert instance(clients, name)["MonitoringInterval"] == 0
    assert action.read(clients, name) == before == {"MonitoringInterval": 0, "MonitoringRoleArn": None}
    assert clients.iam.get_role(RoleName=ROLE)["Role"]["Arn"] == ROLE_ARN


# Aurora instances (each has its own interval) and those of a Multi-AZ DB cluster (refused):
# see test_fixes_data.py.


def test_a_missing_instance_fails_with_the_aws_reason_and_makes_no_role(aws: Any) -> None:
    result = fix(aws, f"{ARN}:db:gone")
    assert result.status == Status.FAILED
    assert result.message.startswith("DBInstanceNotFound")
    assert Clients(aws, MEMBER_ACCOUNT, REGION).iam.list_roles()["Roles"] == []
