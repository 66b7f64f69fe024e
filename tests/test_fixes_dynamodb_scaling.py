"""DynamoDB.1: what the auto scaling fix registers, keeps, refuses and takes back."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from helpers import assert_extracted_id
from test_fixes_data import parameters_sent

import asr.actions
from asr import local
from asr.audit import canonical
from asr.aws import Clients
from asr.findings import parse_finding
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import Seeded, finding, seed_one
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource

REGION = "us-east-1"
ARN = f"arn:aws:dynamodb:{REGION}:{MEMBER_ACCOUNT}:table"
NAMESPACE = {"ServiceNamespace": "dynamodb"}
TABLE_READ = ("table/orders", "dynamodb:table:ReadCapacityUnits")
TABLE_WRITE = ("table/orders", "dynamodb:table:WriteCapacityUnits")
INDEX_READ = ("table/orders/index/by-day", "dynamodb:index:ReadCapacityUnits")
INDEX_WRITE = ("table/orders/index/by-day", "dynamodb:index:WriteCapacityUnits")


def action(**params: Any) -> asr.actions.Action:
    return registry().playbooks["DynamoDB.1"].build_action(params)


def fix(aws: Any, resource_arn: str, **params: Any) -> Result:
    """Run the playbook (with ``params`` over its own) on the table its finding names."""
    resource_id = registry().playbooks["DynamoDB.1"].extract_resource_id(resource_arn, MEMBER_ACCOUNT)
    return remediate_resource(action(**params), Clients(aws, MEMBER_ACCOUNT, REGION), resource_id)


def make_table(clients: Clients, name: str = "orders", read: int = 10, write: int = 5, **more: Any) -> str:
    """A provisioned table with the index ``by-day`` (4 read, 2 write units)."""
    clients.dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "day", "AttributeType": "S"},
        ],
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": read, "WriteCapacityUnits": write},
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-day",
                "KeySchema": [{"AttributeName": "day", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
                "ProvisionedThroughput": {"ReadCapacityUnits": 4, "WriteCapacityUnits": 2},
            }
        ],
        **more,
    )
    return f"{ARN}/{name}"


def targets(clients: Clients) -> dict[tuple[str, str], tuple[int, int]]:
    """Every DynamoDB scalable target: (resource, dimension) -> (min, max)."""
    found = clients["application-autoscaling"].describe_scalable_targets(**NAMESPACE)["ScalableTargets"]
    return {(t["ResourceId"], t["ScalableDimension"]): (t["MinCapacity"], t["MaxCapacity"]) for t in found}


def policies(clients: Clients) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Every DynamoDB scaling policy: (resource, dimension, name) -> its target tracking."""
    found = clients["application-autoscaling"].describe_scaling_policies(**NAMESPACE)["ScalingPolicies"]
    return {
        (p["ResourceId"], p["ScalableDimension"], p["PolicyName"]): p[
            "TargetTrackingScalingPolicyConfiguration"
        ]
        for p in found
    }


def scale(clients: Clients, where: tuple[str, str], low: int, high: int, target: float | None = None) -> None:
    """Scaling its owner set up: a target, and a policy when ``target`` is given."""
    resource, dimension = where
    autoscaling = clients["application-autoscaling"]
    autoscaling.register_scalable_target(
        **NAMESPACE, ResourceId=resource, ScalableDimension=dimension, MinCapacity=low, MaxCapacity=high
    )
    if target is not None:
        metric = (
            "DynamoDBReadCapacityUtilization" if "Read" in dimension else "DynamoDBWriteCapacityUtilization"
        )
        autoscaling.put_scaling_policy(
            **NAMESPACE,
            PolicyName="owners-policy",
            ResourceId=resource,
            ScalableDimension=dimension,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": target,
                "PredefinedMetricSpecification": {"PredefinedMetricType": metric},
            },
        )


def asr_policy(target: float, metric: str) -> dict[str, Any]:
    return {"TargetValue": target, "PredefinedMetricSpecification": {"PredefinedMetricType": metric}}


READ, WRITE = "DynamoDBReadCapacityUtilization", "DynamoDBWriteCapacityUtilization"


def served() -> list[str]:
    """The DynamoDB and Application Auto Scaling calls the stand-in served since the log was cleared."""
    return [
        f"{c['service']}:{c['action']}"
        for c in local.served_requests()
        if c["service"] in ("dynamodb", "application-autoscaling")
    ]


def test_table_and_index_scale_from_their_capacity_within_the_permissions(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_table(clients)
    local.served_requests(clear=True)
    with parameters_sent(clients["application-autoscaling"], "RegisterScalableTarget") as registered:
        result = fix(aws, arn)
    assert result.status == Status.REMEDIATED, result.message
    assert result.before == {
        "table/orders:ReadCapacityUnits": None,
        "table/orders:WriteCapacityUnits": None,
        "table/orders/index/by-day:ReadCapacityUnits": None,
        "table/orders/index/by-day:WriteCapacityUnits": None,
    }
    assert sorted(registered, key=lambda p: (p["ResourceId"], p["ScalableDimension"])) == [
        {**NAMESPACE, "ResourceId": r, "ScalableDimension": d, "MinCapacity": low, "MaxCapacity": high}
        for (r, d), (low, high) in sorted(
            {TABLE_READ: (10, 40), TABLE_WRITE: (5, 20), INDEX_READ: (4, 16), INDEX_WRITE: (2, 8)}.items()
        )
    ]
    assert targets(clients) == {
        TABLE_READ: (10, 40),
        TABLE_WRITE: (5, 20),
        INDEX_READ: (4, 16),
        INDEX_WRITE: (2, 8),
    }
    assert policies(clients) == {
        (*TABLE_READ, f"asr-{READ}"): asr_policy(70.0, READ),
        (*TABLE_WRITE, f"asr-{WRITE}"): asr_policy(70.0, WRITE),
        (*INDEX_READ, f"asr-{READ}"): asr_policy(70.0, READ),
        (*INDEX_WRITE, f"asr-{WRITE}"): asr_policy(70.0, WRITE),
    }
    assert "up to 4x its capacity and 10000 units" in result.message
    # Both services the fix calls, against what it declares.
    calls = set(served())
    assert calls == {
        "dynamodb:DescribeTable",
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:DescribeScalingPolicies",
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:PutScalingPolicy",
    }
    assert calls <= set(action().permissions)


def test_a_second_run_writes_nothing(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_table(clients)
    assert fix(aws, arn).status == Status.REMEDIATED
    local.served_requests(clear=True)
    assert fix(aws, arn).status == Status.ALREADY_COMPLIANT
    assert set(served()) == {
        "dynamodb:DescribeTable",
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:DescribeScalingPolicies",
    }


def test_an_on_demand_table_complies_as_it_is(aws: Any) -> None:
    arn = seed_one(aws, "DynamoDB.6", MEMBER_ACCOUNT, REGION).resource_id  # a PAY_PER_REQUEST table
    local.served_requests(clear=True)
    result = fix(aws, arn)
    assert result.status == Status.ALREADY_COMPLIANT
    assert served() == ["dynamodb:DescribeTable"]
    assert targets(Clients(aws, MEMBER_ACCOUNT, REGION)) == {}


def test_scaling_the_owner_set_up_is_kept(aws: Any) -> None:
    """A scaled dimension complies; a target without a policy gets only the policy."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_table(clients)
    scale(clients, TABLE_READ, 1, 100, target=50.0)
    scale(clients, INDEX_WRITE, 1, 3)
    with parameters_sent(clients["application-autoscaling"], "RegisterScalableTarget") as registered:
        result = fix(aws, arn)
    assert result.status == Status.REMEDIATED, result.message
    assert set(result.before or {}) == {
        "table/orders:WriteCapacityUnits",
        "table/orders/index/by-day:ReadCapacityUnits",
        "table/orders/index/by-day:WriteCapacityUnits",
    }
    assert {(p["ResourceId"], p["ScalableDimension"]) for p in registered} == {TABLE_WRITE, INDEX_READ}
    assert targets(clients) == {
        TABLE_READ: (1, 100),
        TABLE_WRITE: (5, 20),
        INDEX_READ: (4, 16),
        INDEX_WRITE: (1, 3),
    }
    assert policies(clients) == {
        (*TABLE_READ, "owners-policy"): asr_policy(50.0, READ),
        (*TABLE_WRITE, f"asr-{WRITE}"): asr_policy(70.0, WRITE),
        (*INDEX_READ, f"asr-{READ}"): asr_policy(70.0, READ),
        (*INDEX_WRITE, f"asr-{WRITE}"): asr_policy(70.0, WRITE),
    }


def test_revert_takes_back_only_what_the_fix_made(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_table(clients)
    scale(clients, TABLE_READ, 1, 100, target=50.0)
    scale(clients, INDEX_WRITE, 1, 3)
    fixer = action()
    before = fixer.read(clients, "orders")
    assert remediate_resource(fixer, clients, "orders").status == Status.REMEDIATED
    fixer.revert(clients, "orders", before)
    assert canonical(fixer.read(clients, "orders")) == canonical(before)
    assert targets(clients) == {TABLE_READ: (1, 100), INDEX_WRITE: (1, 3)}
    assert policies(clients) == {(*TABLE_READ, "owners-policy"): asr_policy(50.0, READ)}
    assert fix(aws, arn).status == Status.REMEDIATED, "non-compliant again"


def test_a_revert_cut_short_is_finished_by_the_next(aws: Any) -> None:
    """A throttled revert is retried from the start: what it already removed is not asked again."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    make_table(clients)
    fixer = action()
    before = fixer.read(clients, "orders")
    assert remediate_resource(fixer, clients, "orders").status == Status.REMEDIATED
    clients["application-autoscaling"].delete_scaling_policy(
        **NAMESPACE, PolicyName=f"asr-{READ}", ResourceId=TABLE_READ[0], ScalableDimension=TABLE_READ[1]
    )
    clients["application-autoscaling"].deregister_scalable_target(
        **NAMESPACE, ResourceId=TABLE_READ[0], ScalableDimension=TABLE_READ[1]
    )
    fixer.revert(clients, "orders", before)
    assert targets(clients) == {} and policies(clients) == {}


def test_the_ceiling_caps_the_range_and_a_dimension_at_it_is_refused(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_table(clients, read=3000, write=20)
    assert fix(aws, arn, max_capacity=10000).status == Status.REMEDIATED
    assert targets(clients)[TABLE_READ] == (3000, 10000)
    assert targets(clients)[TABLE_WRITE] == (20, 80)

    big = make_table(clients, "big", read=10000, write=5)
    local.served_requests(clear=True)
    result = fix(aws, big)
    assert result.status == Status.FAILED
    assert result.message == (
        "ValueError: the read capacity of table big would scale from 10000 units, "
        "not below max_capacity 10000: raise max_capacity to give it room to grow"
    )
    assert not [call for call in served() if not call.split(":")[1].startswith("Describe")]
    assert fix(aws, big, max_capacity=20000).status == Status.REMEDIATED
    assert targets(clients)[("table/big", TABLE_READ[1])] == (10000, 20000)


def test_control_parameters_set_the_minimum_and_the_target(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_table(clients)
    raw = finding(Seeded("DynamoDB.1", MEMBER_ACCOUNT, REGION, "AwsDynamoDbTable", arn))
    raw["Compliance"]["SecurityControlParameters"] = [
        {"Name": "minProvisionedReadCapacity", "Value": ["8"]},
        {"Name": "minProvisionedWriteCapacity", "Value": ["3"]},
        {"Name": "targetReadUtilization", "Value": ["60"]},
        {"Name": "targetWriteUtilization", "Value": ["80"]},
    ]
    record = parse_finding(raw, registry())
    assert (record.resource_id, record.parameters) == (
        "orders",
        {
            "min_read_capacity": 8,
            "min_write_capacity": 3,
            "read_target_utilization": 60,
            "write_target_utilization": 80,
        },
    )
    result = fix(aws, arn, **record.parameters)
    assert result.status == Status.REMEDIATED, result.message
    # The table's own capacity where it is higher, the control's minimum where it is not.
    assert targets(clients) == {
        TABLE_READ: (10, 40),
        TABLE_WRITE: (5, 20),
        INDEX_READ: (8, 32),
        INDEX_WRITE: (3, 12),
    }
    assert {key[:2]: p["TargetValue"] for key, p in policies(clients).items()} == {
        TABLE_READ: 60.0,
        TABLE_WRITE: 80.0,
        INDEX_READ: 60.0,
        INDEX_WRITE: 80.0,
    }


def test_scaling_short_of_the_control_parameters_is_refused_not_changed(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_table(clients)
    scale(clients, TABLE_READ, 1, 100, target=50.0)
    scale(clients, INDEX_WRITE, 1, 3, target=70.0)
    local.served_requests(clear=True)
    result = fix(aws, arn, min_write_capacity=2, read_target_utilization=60)
    assert result.status == Status.FAILED
    assert result.message == (
        "ValueError: the read capacity of table orders already tracks 50% utilization, "
        "not read_target_utilization 60%: "
        "asr keeps the auto scaling a table has, change it in Application Auto Scaling; "
        "the write capacity of index by-day already scales with MinCapacity 1, below min_write_capacity 2: "
        "asr keeps the auto scaling a table has, change it in Application Auto Scaling"
    )
    assert not [call for call in served() if not call.split(":")[1].startswith("Describe")]


def test_a_global_table_is_refused(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    make_table(clients)
    state = action().read(clients, "orders")
    with pytest.raises(ValueError, match=r"global table \(replicas in eu-west-1, us-east-1\)"):
        action().plan({**state, "Replicas": ["eu-west-1", "us-east-1"]})
    assert action().plan(state), "the same table, not global, is fixed"


def test_a_target_just_registered_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """RegisterScalableTarget is eventually consistent: the policy is put again until the target is found."""
    monkeypatch.setattr(asr.actions, "ROLE_PROPAGATION_DELAYS", (0.0, 0.0))
    client = boto3.client(
        "application-autoscaling",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stubber = Stubber(client)
    stubber.add_response("register_scalable_target", {})
    stubber.add_client_error("put_scaling_policy", service_error_code="ObjectNotFoundException")
    stubber.add_response("put_scaling_policy", {"PolicyARN": "arn:aws:autoscaling:policy", "Alarms": []})
    stubber.activate()
    key = "table/orders:ReadCapacityUnits"
    fixer = action()
    state = {"BillingMode": "PROVISIONED", "Replicas": [], "ProvisionedCapacity": {key: 5}, key: None}
    fixer.apply({"application-autoscaling": client}, "orders", state, fixer.plan(state))  # type: ignore[arg-type]
    stubber.assert_no_pending_responses()


def test_a_missing_table_fails_with_the_aws_reason(aws: Any) -> None:
    result = fix(aws, f"{ARN}/gone")
    assert result.status == Status.FAILED
    assert result.message.startswith("ResourceNotFoundException:")


def test_the_seeded_table_is_fixed_with_the_playbook_defaults(aws: Any) -> None:
    arn = seed_one(aws, "DynamoDB.1", MEMBER_ACCOUNT, REGION).resource_id
    result = fix(aws, arn)
    assert result.status == Status.REMEDIATED, result.message
    assert len(result.after or {}) == 4


@pytest.mark.parametrize(
    ("resource_arn", "name"),
    [
        (f"{ARN}/orders.v2_eu-1", "orders.v2_eu-1"),
        (f"arn:aws-cn:dynamodb:cn-north-1:{MEMBER_ACCOUNT}:table/orders", "orders"),
        (f"{ARN}/or", None),
        (f"{ARN}/orders/index/by-day", None),
        (f"{ARN}/orders/stream/2024-01-01T00:00:00.000", None),
    ],
)
def test_the_table_name_is_taken_from_its_arn(resource_arn: str, name: str | None) -> None:
    assert_extracted_id("DynamoDB.1", resource_arn, name)
