"""ElastiCache misconfigurations."""

from __future__ import annotations

import uuid

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder


def _name(n: int) -> str:
    """A cluster or replication group id: at most 40 characters, no two hyphens in a row."""
    return f"asr-seed-{n}-{uuid.uuid4().hex[:6]}"


def _redis_cluster(
    aws: AwsContext, control_id: str, account: str, region: str, n: int, **settings: object
) -> Seeded:
    """A Redis OSS cluster on its own (no replication group), with ``settings``."""
    cluster = aws.client("elasticache", account, region).create_cache_cluster(
        CacheClusterId=_name(n), Engine="redis", CacheNodeType="cache.t3.micro", NumCacheNodes=1, **settings
    )["CacheCluster"]
    return Seeded(control_id, account, region, "AwsElastiCacheCacheCluster", cluster["ARN"], "HIGH")


@seeder("ElastiCache.1")
def redis_cluster_without_backups(
    aws: AwsContext, control_id: str, account: str, region: str, n: int
) -> Seeded:
    """A Redis OSS cluster that keeps no automatic backups."""
    return _redis_cluster(aws, control_id, account, region, n, SnapshotRetentionLimit=0)


@seeder("ElastiCache.2")
def redis_cluster_without_minor_upgrades(
    aws: AwsContext, control_id: str, account: str, region: str, n: int
) -> Seeded:
    """A Redis OSS 7.1 cluster that ElastiCache may not bring to new minor versions."""
    return _redis_cluster(
        aws, control_id, account, region, n, EngineVersion="7.1", AutoMinorVersionUpgrade=False
    )


@seeder("ElastiCache.3")
def replication_group_without_failover(
    aws: AwsContext, control_id: str, account: str, region: str, n: int
) -> Seeded:
    """A primary and one replica, with automatic failover off."""
    group = aws.client("elasticache", account, region).create_replication_group(
        ReplicationGroupId=_name(n),
        ReplicationGroupDescription="seeded: no automatic failover",
        Engine="redis",
        CacheNodeType="cache.t3.micro",
        ReplicasPerNodeGroup=1,
        AutomaticFailoverEnabled=False,
    )["ReplicationGroup"]
    return Seeded(control_id, account, region, "AwsElastiCacheReplicationGroup", group["ARN"], "MEDIUM")
