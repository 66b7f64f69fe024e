"""ElastiCache misconfigurations."""

from __future__ import annotations

import uuid

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder


@seeder("ElastiCache.3")
def replication_group_without_failover(
    aws: AwsContext, control_id: str, account: str, region: str, n: int
) -> Seeded:
    """A primary and one replica, with automatic failover off."""
    group = aws.client("elasticache", account, region).create_replication_group(
        ReplicationGroupId=f"asr-seed-{n}-{uuid.uuid4().hex[:6]}",
        ReplicationGroupDescription="seeded: no automatic failover",
        Engine="redis",
        CacheNodeType="cache.t3.micro",
        ReplicasPerNodeGroup=1,
        AutomaticFailoverEnabled=False,
    )["ReplicationGroup"]
    return Seeded(control_id, account, region, "AwsElastiCacheReplicationGroup", group["ARN"], "MEDIUM")
