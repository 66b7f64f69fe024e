"""RDS.1/2/5/7/8/13/16, DynamoDB.6 and ElastiCache.3: what each fix sends, keeps and refuses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from asr import local
from asr.aws import Clients
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import seed_one
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource

REGION = "us-east-1"
ARN = f"arn:aws:rds:{REGION}:{MEMBER_ACCOUNT}"
OTHER_ACCOUNT = "333333333333"
PASSWORD = {"MasterUsername": "admin", "MasterUserPassword": "test-password-1"}


def fix(aws: Any, control: str, resource_arn: str) -> tuple[Result, Clients]:
    """Run a control's playbook on the resource its finding names."""
    playbook = registry().playbooks[control]
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    resource_id = playbook.extract_resource_id(resource_arn, MEMBER_ACCOUNT)
    return remediate_resource(playbook.build_action(), clients, resource_id), clients


@contextmanager
def parameters_sent(client: Any, operation: str) -> Iterator[list[dict[str, Any]]]:
    """The parameters of every ``operation`` call the client makes inside the block. (Events
    are named by the hyphenated service id, ``elastic-load-balancing-v2`` for elbv2.)"""
    sent: list[dict[str, Any]] = []
    event = f"provide-client-params.{client.meta.service_model.service_id.hyphenize()}.{operation}"

    def capture(params: dict[str, Any], **_: Any) -> None:
        sent.append(dict(params))

    client.meta.events.register(event, capture)
    try:
        yield sent
    finally:
        client.meta.events.unregister(event, capture)


def assert_permissions_cover_served_calls(control: str) -> None:
    """The calls the stand-in served since the log was cleared are within the IAM actions declared."""
    action = registry().playbooks[control].build_action()
    served = {
        f"{call['service']}:{call['action']}"
        for call in local.served_requests()
        if call["service"] == action.service
    }
    assert served and served <= set(action.permissions)


def instance(clients: Clients, name: str) -> dict[str, Any]:
    return clients.rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]


# The boolean settings of instances and clusters


@pytest.mark.parametrize(
    ("control", "operation", "identifier", "setting", "apply_immediately"),
    [
        ("RDS.2", "ModifyDBInstance", "DBInstanceIdentifier", {"PubliclyAccessible": False}, False),
        ("RDS.5", "ModifyDBInstance", "DBInstanceIdentifier", {"MultiAZ": True}, True),
        ("RDS.8", "ModifyDBInstance", "DBInstanceIdentifier", {"DeletionProtection": True}, False),
        ("RDS.13", "ModifyDBInstance", "DBInstanceIdentifier", {"AutoMinorVersionUpgrade": True}, False),
        ("RDS.7", "ModifyDBCluster", "DBClusterIdentifier", {"DeletionProtection": True}, False),
        ("RDS.16", "ModifyDBCluster", "DBClusterIdentifier", {"CopyTagsToSnapshot": True}, False),
    ],
)
def test_boolean_fix_sends_only_its_setting(
    aws: Any, control: str, operation: str, identifier: str, setting: dict[str, bool], apply_immediately: bool
) -> None:
    """Nothing else is sent, and changes queued for the maintenance window stay queued (except Multi-AZ)."""
    arn = seed_one(aws, control, MEMBER_ACCOUNT, REGION).resource_id
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    local.served_requests(clear=True)
    with parameters_sent(clients.rds, operation) as sent:
        result, _ = fix(aws, control, arn)
    assert result.status == Status.REMEDIATED, result.message
    name = arn.rsplit(":", 1)[1]
    assert sent == [{identifier: name, **setting, "ApplyImmediately": apply_immediately}]
    assert_permissions_cover_served_calls(control)


def test_instance_fix_keeps_the_other_settings(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    settings = {"PubliclyAccessible": True, "AutoMinorVersionUpgrade": False, "MultiAZ": False}
    clients.rds.create_db_instance(
        DBInstanceIdentifier="orders",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        DeletionProtection=False,
        **settings,
        **PASSWORD,
    )
    result, _ = fix(aws, "RDS.8", f"{ARN}:db:orders")
    assert result.status == Status.REMEDIATED, result.message
    assert (result.before, result.after) == ({"DeletionProtection": False}, {"DeletionProtection": True})
    after = instance(clients, "orders")
    assert {key: after[key] for key in settings} == settings


@pytest.mark.usefixtures("member_stack")
def test_cluster_member_settings_are_refused_but_instance_settings_fixed(aws: Any) -> None:
    """Deletion protection and Multi-AZ of an Aurora instance belong to its cluster; minor upgrades and
    Enhanced Monitoring do not."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    clients.rds.create_db_cluster(DBClusterIdentifier="ledger", Engine="aurora-postgresql", **PASSWORD)
    clients.rds.create_db_instance(
        DBInstanceIdentifier="ledger-1",
        DBClusterIdentifier="ledger",
        Engine="aurora-postgresql",
        DBInstanceClass="db.r6g.large",
        AutoMinorVersionUpgrade=False,
    )
    member = f"{ARN}:db:ledger-1"
    for control in ("RDS.8", "RDS.5"):
        result, _ = fix(aws, control, member)
        assert result.status == Status.FAILED
        assert "belongs to DB cluster ledger" in result.message
    assert instance(clients, "ledger-1")["DeletionProtection"] is False
    assert fix(aws, "RDS.13", member)[0].status == Status.REMEDIATED
    assert fix(aws, "RDS.6", member)[0].status == Status.REMEDIATED  # Aurora: set per instance
    assert fix(aws, "RDS.7", f"{ARN}:cluster:ledger")[0].status == Status.REMEDIATED


def test_instances_of_a_multi_az_db_cluster_are_refused(aws: Any) -> None:
    """Not Aurora: RDS refuses to modify the instances of a Multi-AZ DB cluster at all."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    clients.rds.create_db_cluster(
        DBClusterIdentifier="billing",
        Engine="postgres",
        DBClusterInstanceClass="db.m6gd.large",
        AllocatedStorage=100,
        StorageType="io1",
        Iops=1000,
        **PASSWORD,
    )
    clients.rds.create_db_instance(
        DBInstanceIdentifier="billing-1",
        DBClusterIdentifier="billing",
        Engine="postgres",
        DBInstanceClass="db.m6gd.large",
        AutoMinorVersionUpgrade=False,
        PubliclyAccessible=True,
    )
    for control in ("RDS.2", "RDS.13", "RDS.6"):
        result, _ = fix(aws, control, f"{ARN}:db:billing-1")
        assert result.status == Status.FAILED and "belongs to DB cluster billing" in result.message
    assert instance(clients, "billing-1")["PubliclyAccessible"] is True
    assert instance(clients, "billing-1")["MonitoringInterval"] == 0


def _stubbed_instance(instance_fields: dict[str, Any]) -> SimpleNamespace:
    """Clients whose rds answers one DescribeDBInstances with the given fields (no stand-in needed)."""
    client = boto3.client(
        "rds", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    stubber = Stubber(client)
    stubber.add_response(
        "describe_db_instances", {"DBInstances": [{"DBInstanceIdentifier": "orders", **instance_fields}]}
    )
    stubber.activate()
    return SimpleNamespace(rds=client)


@pytest.mark.parametrize(
    ("fields", "plan"),
    [
        ({"MultiAZ": False, "PendingModifiedValues": {"MultiAZ": True}}, {}),
        ({"MultiAZ": True, "PendingModifiedValues": {"MultiAZ": False}}, {"MultiAZ": True}),
        ({"MultiAZ": False}, {"MultiAZ": True}),
    ],
)
def test_pending_value_is_the_value_the_instance_is_getting(fields: dict[str, Any], plan: dict) -> None:
    action = registry().playbooks["RDS.5"].build_action()
    state = action.read(_stubbed_instance(fields), "orders")  # type: ignore[arg-type]
    assert action.plan(state) == plan


@pytest.mark.parametrize(
    ("fields", "waits"),
    [
        ({"MultiAZ": False, "PendingModifiedValues": {"MultiAZ": True}}, True),
        ({"MultiAZ": True, "PendingModifiedValues": {}}, False),
        ({"MultiAZ": True, "PendingModifiedValues": {"MultiAZ": True}}, False),
    ],
)
def test_a_conversion_rds_is_still_making_awaits_security_hub_s_check(
    fields: dict[str, Any], waits: bool
) -> None:
    """A Multi-AZ change RDS lists as pending is the fix made (the plan is empty), but the
    control reads MultiAZ, which turns true only once the standby exists: the finding is left
    for Security Hub to resolve, not RESOLVED, in case the conversion never finishes."""
    action = registry().playbooks["RDS.5"].build_action()
    state = action.read(_stubbed_instance(fields), "orders")  # type: ignore[arg-type]
    assert action.plan(state) == {}
    assert bool(action.awaits(state)) is waits


# RDS.1


def restore_values(clients: Clients, kind: str, name: str) -> list[str]:
    if kind == "snapshot":
        result = clients.rds.describe_db_snapshot_attributes(DBSnapshotIdentifier=name)
        attributes = result["DBSnapshotAttributesResult"]["DBSnapshotAttributes"]
    else:
        result = clients.rds.describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier=name)
        attributes = result["DBClusterSnapshotAttributesResult"]["DBClusterSnapshotAttributes"]
    return [v for a in attributes if a["AttributeName"] == "restore" for v in a["AttributeValues"]]


def test_snapshot_fix_keeps_sharing_with_named_accounts(aws: Any) -> None:
    arn = seed_one(aws, "RDS.1", MEMBER_ACCOUNT, REGION).resource_id
    name = arn.rsplit(":", 1)[1]
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    clients.rds.modify_db_snapshot_attribute(
        DBSnapshotIdentifier=name, AttributeName="restore", ValuesToAdd=[OTHER_ACCOUNT]
    )
    result, _ = fix(aws, "RDS.1", arn)
    assert result.status == Status.REMEDIATED, result.message
    assert result.before == {"restore": ["all", OTHER_ACCOUNT]}
    assert result.after == {"restore": [OTHER_ACCOUNT]}
    assert restore_values(clients, "snapshot", name) == [OTHER_ACCOUNT]


def test_cluster_snapshot_is_made_private(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    clients.rds.create_db_cluster(DBClusterIdentifier="ledger", Engine="aurora-postgresql", **PASSWORD)
    clients.rds.create_db_cluster_snapshot(
        DBClusterIdentifier="ledger", DBClusterSnapshotIdentifier="ledger-snap"
    )
    clients.rds.modify_db_cluster_snapshot_attribute(
        DBClusterSnapshotIdentifier="ledger-snap", AttributeName="restore", ValuesToAdd=["all"]
    )
    result, _ = fix(aws, "RDS.1", f"{ARN}:cluster-snapshot:ledger-snap")
    assert result.status == Status.REMEDIATED, result.message
    assert restore_values(clients, "cluster-snapshot", "ledger-snap") == []


def test_snapshot_fix_refuses_what_is_not_a_snapshot(aws: Any) -> None:
    action = registry().playbooks["RDS.1"].build_action()
    result = remediate_resource(action, Clients(aws, MEMBER_ACCOUNT, REGION), f"{ARN}:db:orders")
    assert result.status == Status.FAILED
    assert "is not the ARN of an RDS DB snapshot or DB cluster snapshot" in result.message


# DynamoDB.6


def test_table_fix_keeps_capacity_and_stream(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    throughput = {"ReadCapacityUnits": 7, "WriteCapacityUnits": 3}
    stream = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    table = clients.dynamodb.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        ProvisionedThroughput=throughput,
        StreamSpecification=stream,
    )["TableDescription"]
    result, _ = fix(aws, "DynamoDB.6", table["TableArn"])
    assert result.status == Status.REMEDIATED, result.message
    after = clients.dynamodb.describe_table(TableName="orders")["Table"]
    assert after["DeletionProtectionEnabled"] is True
    assert {key: after["ProvisionedThroughput"][key] for key in throughput} == throughput
    assert after["StreamSpecification"] == stream


# ElastiCache.3


def replication_group(clients: Clients, name: str, replicas: int) -> str:
    group = clients.elasticache.create_replication_group(
        ReplicationGroupId=name,
        ReplicationGroupDescription="test",
        Engine="redis",
        CacheNodeType="cache.t3.micro",
        ReplicasPerNodeGroup=replicas,
        AutomaticFailoverEnabled=False,
    )["ReplicationGroup"]
    return str(group["ARN"])


def test_failover_is_enabled_at_once_when_nothing_waits_for_the_window(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = replication_group(clients, "sessions", replicas=1)
    with parameters_sent(clients.elasticache, "ModifyReplicationGroup") as sent:
        result, _ = fix(aws, "ElastiCache.3", arn)
    assert result.status == Status.REMEDIATED, result.message
    assert sent == [
        {"ReplicationGroupId": "sessions", "AutomaticFailoverEnabled": True, "ApplyImmediately": True}
    ]


def test_failover_does_not_rush_changes_waiting_for_the_maintenance_window() -> None:
    client = boto3.client(
        "elasticache", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    stubber = Stubber(client)
    waiting = {"PendingModifiedValues": {"PrimaryClusterId": "sessions-002"}}
    group = {"ReplicationGroupId": "sessions", "MemberClusters": ["sessions-001", "sessions-002"], **waiting}
    stubber.add_response("describe_replication_groups", {"ReplicationGroups": [group]})
    expected = {"ReplicationGroupId": "sessions", "AutomaticFailoverEnabled": True, "ApplyImmediately": False}
    stubber.add_response("modify_replication_group", {}, expected)
    stubber.activate()
    action = registry().playbooks["ElastiCache.3"].build_action()
    clients = SimpleNamespace(elasticache=client)
    state = action.read(clients, "sessions")  # type: ignore[arg-type]
    action.apply(clients, "sessions", state, action.plan(state))  # type: ignore[arg-type]
    stubber.assert_no_pending_responses()


def test_a_group_without_a_replica_is_refused_and_left_alone(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = replication_group(clients, "lonely", replicas=0)
    with parameters_sent(clients.elasticache, "ModifyReplicationGroup") as sent:
        result, _ = fix(aws, "ElastiCache.3", arn)
    assert result.status == Status.FAILED
    assert "replication group lonely has no replica to fail over to" in result.message
    assert sent == []


ENABLE = {"AutomaticFailover": True}


@pytest.mark.parametrize(
    ("fields", "plan", "waits"),
    [
        ({"AutomaticFailover": "enabled"}, {}, False),
        ({"AutomaticFailover": "enabling"}, {}, True),
        (
            {
                "AutomaticFailover": "disabled",
                "PendingModifiedValues": {"AutomaticFailoverStatus": "enabled"},
            },
            {},
            True,
        ),
        (
            {
                "AutomaticFailover": "enabled",
                "PendingModifiedValues": {"AutomaticFailoverStatus": "disabled"},
            },
            ENABLE,
            False,
        ),
        ({"AutomaticFailover": "disabling"}, ENABLE, False),
    ],
)
def test_failover_on_its_way_counts_and_on_its_way_out_does_not(
    fields: dict[str, Any], plan: dict, waits: bool
) -> None:
    """On its way (enabling, or left for the maintenance window) is the fix made, but
    ElastiCache.3 passes only "enabled": such a group is left for Security Hub to resolve."""
    client = boto3.client(
        "elasticache", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    stubber = Stubber(client)
    group = {"ReplicationGroupId": "sessions", "MemberClusters": ["sessions-001", "sessions-002"], **fields}
    stubber.add_response("describe_replication_groups", {"ReplicationGroups": [group]})
    stubber.activate()
    action = registry().playbooks["ElastiCache.3"].build_action()
    state = action.read(SimpleNamespace(elasticache=client), "sessions")  # type: ignore[arg-type]
    assert action.plan(state) == plan
    assert bool(plan == {} and action.awaits(state)) is waits
    if waits:
        assert str(action.awaits(state)).startswith(f"automatic failover reads {fields['AutomaticFailover']}")


# All of them


@pytest.mark.parametrize(
    ("control", "resource_arn", "code"),
    [
        ("RDS.1", f"{ARN}:snapshot:gone", "DBSnapshotNotFound"),
        ("RDS.1", f"{ARN}:cluster-snapshot:gone", "DBClusterSnapshotNotFoundFault"),
        ("RDS.2", f"{ARN}:db:gone", "DBInstanceNotFound"),
        ("RDS.7", f"{ARN}:cluster:gone", "DBClusterNotFoundFault"),
        ("DynamoDB.6", f"arn:aws:dynamodb:{REGION}:{MEMBER_ACCOUNT}:table/gone", "ResourceNotFoundException"),
        (
            "ElastiCache.3",
            f"arn:aws:elasticache:{REGION}:{MEMBER_ACCOUNT}:replicationgroup:gone",
            "ReplicationGroupNotFoundFault",
        ),
    ],
)
def test_missing_resource_fails_with_the_aws_reason(
    aws: Any, control: str, resource_arn: str, code: str
) -> None:
    result, _ = fix(aws, control, resource_arn)
    assert result.status == Status.FAILED
    assert result.message.startswith(code)


@pytest.mark.parametrize(
    "control", ["RDS.1", "DynamoDB.6", "ElastiCache.3"]
)  # the boolean RDS fixes: checked above
def test_declared_permissions_cover_every_call(aws: Any, control: str) -> None:
    arn = seed_one(aws, control, MEMBER_ACCOUNT, REGION).resource_id
    local.served_requests(clear=True)
    assert fix(aws, control, arn)[0].status == Status.REMEDIATED
    assert_permissions_cover_served_calls(control)


def test_multi_az_is_refused_while_other_changes_wait_for_the_window(aws: Any) -> None:
    """ApplyImmediately would restart the database with its new class now: nobody approved that."""
    arn = seed_one(aws, "RDS.5", MEMBER_ACCOUNT, REGION).resource_id
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    name = arn.rsplit(":", 1)[1]
    clients.rds.modify_db_instance(
        DBInstanceIdentifier=name, DBInstanceClass="db.m5.large", ApplyImmediately=False
    )

    result, _ = fix(aws, "RDS.5", arn)
    assert result.status == Status.FAILED
    assert "changes queued for its maintenance window (DBInstanceClass)" in result.message
    now = instance(clients, name)
    assert now["MultiAZ"] is False and now["PendingModifiedValues"] == {"DBInstanceClass": "db.m5.large"}
