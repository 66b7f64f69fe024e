"""The stand-in's ElastiCache extension: ModifyCacheCluster, turning on a group's backups as AWS does,
and automatic minor version upgrades (on by default, a group's shared by its members)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def elasticache(clean_aws: str) -> Any:
    return boto3.client("elasticache", endpoint_url=clean_aws, region_name="eu-west-1")


def group(elasticache: Any, name: str, **settings: Any) -> dict[str, Any]:
    elasticache.create_replication_group(
        ReplicationGroupId=name,
        ReplicationGroupDescription="test",
        Engine="redis",
        CacheNodeType="cache.t3.micro",
        **settings,
    )
    return dict(elasticache.describe_replication_groups(ReplicationGroupId=name)["ReplicationGroups"][0])


def refused(call: Any, code: str, message: str) -> None:
    with pytest.raises(ClientError) as error:
        call()
    assert error.value.response["Error"]["Code"] == code
    assert message in error.value.response["Error"]["Message"]


def test_a_cluster_on_its_own_changes_its_retention(elasticache: Any) -> None:
    elasticache.create_cache_cluster(CacheClusterId="orders", Engine="redis", CacheNodeType="cache.t3.micro")
    answer = elasticache.modify_cache_cluster(CacheClusterId="orders", SnapshotRetentionLimit=3)
    assert answer["CacheCluster"]["SnapshotRetentionLimit"] == 3
    cluster = elasticache.describe_cache_clusters(CacheClusterId="orders")["CacheClusters"][0]
    assert cluster["SnapshotRetentionLimit"] == 3
    elasticache.modify_cache_cluster(CacheClusterId="orders")  # nothing asked, nothing changed
    cluster = elasticache.describe_cache_clusters(CacheClusterId="orders")["CacheClusters"][0]
    assert cluster["SnapshotRetentionLimit"] == 3


def test_a_member_of_a_group_and_a_missing_cluster_are_refused(elasticache: Any) -> None:
    group(elasticache, "orders")
    elasticache.create_cache_cluster(
        CacheClusterId="orders-003",
        Engine="redis",
        CacheNodeType="cache.t3.micro",
        ReplicationGroupId="orders",
    )
    refused(
        lambda: elasticache.modify_cache_cluster(CacheClusterId="orders-003", SnapshotRetentionLimit=1),
        "InvalidParameterCombination",
        "member of replication group orders",
    )
    refused(
        lambda: elasticache.modify_cache_cluster(CacheClusterId="gone", SnapshotRetentionLimit=1),
        "CacheClusterNotFound",
        "gone",
    )


def test_a_group_without_cluster_mode_turns_backups_on_only_naming_the_member(elasticache: Any) -> None:
    group(elasticache, "orders", ReplicasPerNodeGroup=1)
    refused(
        lambda: elasticache.modify_replication_group(ReplicationGroupId="orders", SnapshotRetentionLimit=1),
        "InvalidParameterCombination",
        "Must specify both SnapshotRetentionLimit and SnapshottingClusterId",
    )
    elasticache.modify_replication_group(
        ReplicationGroupId="orders", SnapshotRetentionLimit=1, SnapshottingClusterId="orders-002"
    )
    described = elasticache.describe_replication_groups(ReplicationGroupId="orders")["ReplicationGroups"][0]
    assert (described["SnapshotRetentionLimit"], described["SnapshottingClusterId"]) == (1, "orders-002")
    # Already on: a longer retention, or off again, needs no member.
    elasticache.modify_replication_group(ReplicationGroupId="orders", SnapshotRetentionLimit=5)
    elasticache.modify_replication_group(ReplicationGroupId="orders", SnapshotRetentionLimit=0)
    described = elasticache.describe_replication_groups(ReplicationGroupId="orders")["ReplicationGroups"][0]
    assert described["SnapshotRetentionLimit"] == 0


def test_a_group_with_cluster_mode_refuses_a_member_to_back_up(elasticache: Any) -> None:
    group(elasticache, "orders", ClusterMode="enabled", NumNodeGroups=2, ReplicasPerNodeGroup=1)
    refused(
        lambda: elasticache.modify_replication_group(
            ReplicationGroupId="orders", SnapshotRetentionLimit=1, SnapshottingClusterId="orders-0001-002"
        ),
        "InvalidParameterCombination",
        "Cannot set snapshotting cluster for cluster mode enabled replication group",
    )
    elasticache.modify_replication_group(ReplicationGroupId="orders", SnapshotRetentionLimit=1)
    described = elasticache.describe_replication_groups(ReplicationGroupId="orders")["ReplicationGroups"][0]
    assert described["SnapshotRetentionLimit"] == 1


def test_other_changes_to_a_group_pass_through(elasticache: Any) -> None:
    group(elasticache, "orders", ReplicasPerNodeGroup=1)
    elasticache.modify_replication_group(ReplicationGroupId="orders", AutomaticFailoverEnabled=True)
    described = elasticache.describe_replication_groups(ReplicationGroupId="orders")["ReplicationGroups"][0]
    assert described["AutomaticFailover"] == "enabled"


def cluster(elasticache: Any, name: str) -> dict[str, Any]:
    return dict(elasticache.describe_cache_clusters(CacheClusterId=name)["CacheClusters"][0])


def test_minor_version_upgrades_are_on_unless_turned_off_at_creation(elasticache: Any) -> None:
    for name, settings in (("plain", {}), ("off", {"AutoMinorVersionUpgrade": False})):
        elasticache.create_cache_cluster(
            CacheClusterId=name, Engine="redis", CacheNodeType="cache.t3.micro", **settings
        )
    assert cluster(elasticache, "plain")["AutoMinorVersionUpgrade"] is True
    assert cluster(elasticache, "off")["AutoMinorVersionUpgrade"] is False
    assert group(elasticache, "orders")["AutoMinorVersionUpgrade"] is True
    assert group(elasticache, "legacy", AutoMinorVersionUpgrade=False)["AutoMinorVersionUpgrade"] is False


def test_a_cluster_on_its_own_changes_its_minor_version_upgrades(elasticache: Any) -> None:
    elasticache.create_cache_cluster(
        CacheClusterId="orders", Engine="redis", CacheNodeType="cache.t3.micro", AutoMinorVersionUpgrade=False
    )
    answer = elasticache.modify_cache_cluster(CacheClusterId="orders", AutoMinorVersionUpgrade=True)
    assert answer["CacheCluster"]["AutoMinorVersionUpgrade"] is True
    assert cluster(elasticache, "orders")["AutoMinorVersionUpgrade"] is True
    elasticache.modify_cache_cluster(CacheClusterId="orders", SnapshotRetentionLimit=2)  # flag not sent
    assert cluster(elasticache, "orders")["AutoMinorVersionUpgrade"] is True
    elasticache.modify_cache_cluster(CacheClusterId="orders", AutoMinorVersionUpgrade=False)
    assert cluster(elasticache, "orders")["AutoMinorVersionUpgrade"] is False


def test_a_group_changes_minor_version_upgrades_for_its_members_too(elasticache: Any) -> None:
    group(elasticache, "orders", ReplicasPerNodeGroup=1, AutoMinorVersionUpgrade=False)
    elasticache.create_cache_cluster(
        CacheClusterId="orders-003",
        Engine="redis",
        CacheNodeType="cache.t3.micro",
        ReplicationGroupId="orders",
        AutoMinorVersionUpgrade=True,  # a member carries its group's setting, not its own
    )
    elasticache.create_cache_cluster(
        CacheClusterId="other", Engine="redis", CacheNodeType="cache.t3.micro", AutoMinorVersionUpgrade=False
    )
    assert cluster(elasticache, "orders-003")["AutoMinorVersionUpgrade"] is False
    refused(
        lambda: elasticache.modify_cache_cluster(CacheClusterId="orders-003", AutoMinorVersionUpgrade=True),
        "InvalidParameterCombination",
        "member of replication group orders",
    )
    answer = elasticache.modify_replication_group(ReplicationGroupId="orders", AutoMinorVersionUpgrade=True)
    assert answer["ReplicationGroup"]["AutoMinorVersionUpgrade"] is True
    described = elasticache.describe_replication_groups(ReplicationGroupId="orders")["ReplicationGroups"][0]
    assert described["AutoMinorVersionUpgrade"] is True
    assert cluster(elasticache, "orders-003")["AutoMinorVersionUpgrade"] is True
    assert cluster(elasticache, "other")["AutoMinorVersionUpgrade"] is False  # not the group's
    elasticache.modify_replication_group(
        ReplicationGroupId="orders", SnapshotRetentionLimit=0
    )  # flag not sent
    assert cluster(elasticache, "orders-003")["AutoMinorVersionUpgrade"] is True
    refused(
        lambda: elasticache.modify_replication_group(ReplicationGroupId="gone", AutoMinorVersionUpgrade=True),
        "ReplicationGroupNotFoundFault",
        "gone",
    )
