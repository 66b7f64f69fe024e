"""ElastiCache.1: automatic backups, changed where the retention lives (group or cluster)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from helpers import assert_extracted_id
from test_fixes_data import assert_permissions_cover_served_calls, parameters_sent

from asr import local
from asr.actions.elasticache import snapshot_source
from asr.aws import Clients
from asr.findings import parse_finding
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import Seeded, finding, seed_one
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource

REGION = "us-east-1"
ARN = f"arn:aws:elasticache:{REGION}:{MEMBER_ACCOUNT}"
CONTROL = "ElastiCache.1"
WRITES = ("ModifyCacheCluster", "ModifyReplicationGroup")


def fix(aws: Any, resource_arn: str, **params: Any) -> Result:
    """Run the playbook (with ``params`` over its own) on the resource its finding names."""
    playbook = registry().playbooks[CONTROL]
    resource_id = playbook.extract_resource_id(resource_arn, MEMBER_ACCOUNT)
    return remediate_resource(
        playbook.build_action(params), Clients(aws, MEMBER_ACCOUNT, REGION), resource_id
    )


def sent_writes(aws: Any, resource_arn: str, **params: Any) -> tuple[Result, dict[str, list[dict[str, Any]]]]:
    """The fix's result, and the parameters of each write call it made, by operation."""
    elasticache = Clients(aws, MEMBER_ACCOUNT, REGION).elasticache
    with (
        parameters_sent(elasticache, WRITES[0]) as cluster_calls,
        parameters_sent(elasticache, WRITES[1]) as group_calls,
    ):
        result = fix(aws, resource_arn, **params)
    return result, {WRITES[0]: cluster_calls, WRITES[1]: group_calls}


def make_cluster(clients: Clients, name: str, engine: str = "redis", **settings: Any) -> str:
    return str(
        clients.elasticache.create_cache_cluster(
            CacheClusterId=name, Engine=engine, CacheNodeType="cache.t3.micro", NumCacheNodes=1, **settings
        )["CacheCluster"]["ARN"]
    )


def make_group(clients: Clients, name: str, **settings: Any) -> str:
    clients.elasticache.create_replication_group(
        ReplicationGroupId=name,
        ReplicationGroupDescription="test",
        Engine="redis",
        CacheNodeType="cache.t3.micro",
        **settings,
    )
    return f"{ARN}:replicationgroup:{name}"


def group_of(clients: Clients, name: str) -> dict[str, Any]:
    return dict(
        clients.elasticache.describe_replication_groups(ReplicationGroupId=name)["ReplicationGroups"][0]
    )


def test_a_cluster_on_its_own_is_changed_by_itself_within_the_permissions(aws: Any) -> None:
    arn = seed_one(aws, CONTROL, MEMBER_ACCOUNT, REGION).resource_id
    name = arn.rsplit(":", 1)[1]
    local.served_requests(clear=True)
    result, sent = sent_writes(aws, arn)
    assert (result.status, result.before, result.after) == (
        Status.REMEDIATED,
        {"SnapshotRetentionLimit": 0},
        {"SnapshotRetentionLimit": 1},
    ), result.message
    assert result.message == "enabled automatic backups, kept at least 1 day(s)"
    assert sent == {
        "ModifyCacheCluster": [{"CacheClusterId": name, "SnapshotRetentionLimit": 1}],
        "ModifyReplicationGroup": [],
    }
    assert_permissions_cover_served_calls(CONTROL)


@pytest.mark.parametrize("named", ["group", "member"])
def test_a_group_is_changed_through_the_group_and_backed_up_from_a_replica(aws: Any, named: str) -> None:
    """A finding may name the group or one of its clusters: either way the group is changed,
    its snapshot window left to AWS."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_group(clients, "orders", ReplicasPerNodeGroup=1)
    if named == "member":
        arn = make_cluster(clients, "orders-003", ReplicationGroupId="orders")
    window = group_of(clients, "orders")["SnapshotWindow"]
    result, sent = sent_writes(aws, arn)
    assert result.status == Status.REMEDIATED, result.message
    assert sent == {
        "ModifyCacheCluster": [],
        "ModifyReplicationGroup": [
            {
                "ReplicationGroupId": "orders",
                "SnapshotRetentionLimit": 1,
                "SnapshottingClusterId": "orders-002",
            }
        ],
    }
    after = group_of(clients, "orders")
    assert (after["SnapshotRetentionLimit"], after["SnapshotWindow"]) == (1, window)


def test_a_group_with_cluster_mode_is_sent_no_member_to_back_up(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_group(clients, "orders", ClusterMode="enabled", NumNodeGroups=2, ReplicasPerNodeGroup=1)
    result, sent = sent_writes(aws, arn)
    assert result.status == Status.REMEDIATED, result.message
    assert sent["ModifyReplicationGroup"] == [{"ReplicationGroupId": "orders", "SnapshotRetentionLimit": 1}]


@pytest.mark.parametrize(
    ("group", "source"),
    [
        (
            {"SnapshottingClusterId": "orders-003", "MemberClusters": ["orders-001", "orders-002"]},
            "orders-003",
        ),
        (
            {
                "MemberClusters": ["orders-001", "orders-002"],
                "NodeGroups": [
                    {
                        "NodeGroupMembers": [
                            {"CacheClusterId": "orders-001", "CurrentRole": "replica"},
                            {"CacheClusterId": "orders-002", "CurrentRole": "primary"},
                        ]
                    }
                ],
            },
            "orders-001",
        ),
        ({"MemberClusters": ["orders-001"]}, "orders-001"),
        ({"ClusterEnabled": True, "MemberClusters": ["orders-0001-001"]}, None),
        ({"MemberClusters": []}, None),
    ],
    ids=["the-one-it-names", "a-replica-after-failover", "its-only-node", "cluster-mode", "no-member"],
)
def test_the_member_backed_up(group: dict[str, Any], source: str | None) -> None:
    assert snapshot_source(group) == source


@pytest.mark.parametrize("retention", [7, 35], ids=["exactly", "longer"])
@pytest.mark.parametrize("kind", ["cluster", "group"])
def test_retention_that_is_long_enough_is_kept(aws: Any, kind: str, retention: int) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    make = make_cluster if kind == "cluster" else make_group
    arn = make(clients, "orders", SnapshotRetentionLimit=retention)
    result, sent = sent_writes(aws, arn, min_retention_days=7)
    assert result.status == Status.ALREADY_COMPLIANT
    assert sent == {"ModifyCacheCluster": [], "ModifyReplicationGroup": []}


def test_shorter_retention_is_raised_without_naming_the_member_again(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_group(clients, "orders", ReplicasPerNodeGroup=1, SnapshotRetentionLimit=3)
    result, sent = sent_writes(aws, arn, min_retention_days=7)
    assert (result.status, result.before, result.after) == (
        Status.REMEDIATED,
        {"SnapshotRetentionLimit": 3},
        {"SnapshotRetentionLimit": 7},
    )
    assert "at least 7 day(s)" in result.message
    assert sent["ModifyReplicationGroup"] == [{"ReplicationGroupId": "orders", "SnapshotRetentionLimit": 7}]


def test_retention_minimum_comes_from_the_control_parameter(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_cluster(clients, "orders", SnapshotRetentionLimit=1)
    raw = finding(Seeded(CONTROL, MEMBER_ACCOUNT, REGION, "AwsElastiCacheCacheCluster", arn))
    raw["Compliance"]["SecurityControlParameters"] = [{"Name": "snapshotRetentionPeriod", "Value": ["7"]}]
    record = parse_finding(raw, registry())
    assert (record.resource_id, record.parameters) == (arn, {"min_retention_days": 7})

    result = fix(aws, arn, **record.parameters)
    assert result.status == Status.REMEDIATED, result.message
    cluster = clients.elasticache.describe_cache_clusters(CacheClusterId="orders")["CacheClusters"][0]
    assert cluster["SnapshotRetentionLimit"] == 7


def test_memcached_is_refused_and_left_alone(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_cluster(clients, "sessions", engine="memcached")
    result, sent = sent_writes(aws, arn)
    assert result.status == Status.FAILED
    assert "cache cluster sessions runs memcached, which keeps no backups" in result.message
    assert sent == {"ModifyCacheCluster": [], "ModifyReplicationGroup": []}


@pytest.mark.parametrize(
    ("resource", "code"),
    [("cluster:gone", "CacheClusterNotFound"), ("replicationgroup:gone", "ReplicationGroupNotFoundFault")],
)
def test_missing_resource_fails_with_the_aws_reason(aws: Any, resource: str, code: str) -> None:
    result = fix(aws, f"{ARN}:{resource}")
    assert result.status == Status.FAILED
    assert result.message.startswith(f"{code}:")


def test_a_cluster_that_cannot_be_modified_now_fails_with_the_aws_reason() -> None:
    """A cluster being modified or snapshotted refuses the change; the stand-in changes it anyway."""
    client = boto3.client(
        "elasticache", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    stubber = Stubber(client)
    cluster = {"CacheClusterId": "orders", "Engine": "redis", "CacheClusterStatus": "snapshotting"}
    stubber.add_response("describe_cache_clusters", {"CacheClusters": [cluster]})
    stubber.add_client_error(
        "modify_cache_cluster", service_error_code="InvalidCacheClusterState", service_message="nope"
    )
    stubber.add_response("describe_cache_clusters", {"CacheClusters": [cluster]})  # the read-back
    stubber.activate()
    clients = SimpleNamespace(elasticache=client, account_id=MEMBER_ACCOUNT, region=REGION)
    action = registry().playbooks[CONTROL].build_action()
    result = remediate_resource(action, clients, f"{ARN}:cluster:orders")  # type: ignore[arg-type]
    assert (result.status, result.message) == (Status.FAILED, "InvalidCacheClusterState: nope")
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("earlier", [0, 3], ids=["off", "shorter"])
def test_revert_puts_the_group_retention_back(aws: Any, earlier: int) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_group(clients, "orders", ReplicasPerNodeGroup=1, SnapshotRetentionLimit=earlier)
    action = registry().playbooks[CONTROL].build_action({"min_retention_days": 7})
    before = action.read(clients, arn)
    assert fix(aws, arn, min_retention_days=7).status == Status.REMEDIATED
    action.revert(clients, arn, before)
    assert action.read(clients, arn) == before
    assert group_of(clients, "orders")["SnapshotRetentionLimit"] == earlier


def test_revert_turning_backups_back_on_names_the_member(aws: Any) -> None:
    """Backups turned off since the fix: putting back the earlier retention turns them on again."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_group(clients, "orders", ReplicasPerNodeGroup=1, SnapshotRetentionLimit=3)
    action = registry().playbooks[CONTROL].build_action({"min_retention_days": 7})
    before = action.read(clients, arn)
    assert fix(aws, arn, min_retention_days=7).status == Status.REMEDIATED
    clients.elasticache.modify_replication_group(ReplicationGroupId="orders", SnapshotRetentionLimit=0)
    with parameters_sent(clients.elasticache, "ModifyReplicationGroup") as sent:
        action.revert(clients, arn, before)
    assert sent == [
        {"ReplicationGroupId": "orders", "SnapshotRetentionLimit": 3, "SnapshottingClusterId": "orders-002"}
    ]
    assert group_of(clients, "orders")["SnapshotRetentionLimit"] == 3


@pytest.mark.parametrize(
    ("resource_arn", "matches"),
    [
        (f"{ARN}:cluster:orders-001", True),
        (f"{ARN}:replicationgroup:orders", True),
        (f"arn:aws-us-gov:elasticache:us-gov-west-1:{MEMBER_ACCOUNT}:cluster:orders", True),
        (f"{ARN}:cluster:{'o' * 50}", True),
        (f"{ARN}:cluster:{'o' * 51}", False),
        (f"{ARN}:replicationgroup:{'o' * 41}", False),
        (f"{ARN}:cluster:2orders", False),
        (f"{ARN}:snapshot:orders-backup", False),
        (f"{ARN}:serverlesscache:orders", False),
    ],
)
def test_the_whole_arn_is_the_resource_id(resource_arn: str, matches: bool) -> None:
    assert_extracted_id(CONTROL, resource_arn, resource_arn if matches else None)
