"""ElastiCache backup settings as AWS changes them, which moto 5.2.5 cannot or does loosely.

- moto has no ``ModifyCacheCluster``. Here it has, for ``SnapshotRetentionLimit``; as in AWS, a
  cluster that belongs to a replication group is not changed by itself (its group is).
- AWS turns on a replication group's backups only with ``SnapshottingClusterId`` (the member to
  back up) when the group has no cluster mode, and refuses that id when it has; moto takes any
  call and drops the id. Here as AWS does, and the group keeps the id.
"""

from __future__ import annotations

from moto.core.responses import ActionResult
from moto.elasticache.exceptions import InvalidParameterCombinationException
from moto.elasticache.models import CacheCluster, ElastiCacheBackend
from moto.elasticache.responses import ElastiCacheResponse

NEEDS_SOURCE = "Must specify both SnapshotRetentionLimit and SnapshottingClusterId to turn on snapshots"
NO_SOURCE = "Cannot set snapshotting cluster for cluster mode enabled replication group"


def modify_cache_cluster(
    self: ElastiCacheBackend, cache_cluster_id: str, snapshot_retention_limit: int | None
) -> CacheCluster:
    cluster = self.describe_cache_clusters(cache_cluster_id)[0]
    group_id = getattr(cluster, "replication_group_id", None)
    if group_id:
        raise InvalidParameterCombinationException(
            f"Cluster {cache_cluster_id} is a member of replication group {group_id}: modify the group"
        )
    if snapshot_retention_limit is not None:
        cluster.snapshot_retention_limit = snapshot_retention_limit
    return cluster


def set_snapshotting_cluster(
    self: ElastiCacheBackend, group_id: str, source: str | None, snapshot_retention_limit: int | None
) -> None:
    group = self.describe_replication_groups(group_id)[0]
    if source is not None and group.cluster_enabled:
        raise InvalidParameterCombinationException(NO_SOURCE)
    turning_on = bool(snapshot_retention_limit) and not group.snapshot_retention_limit
    if source is None and turning_on and not group.cluster_enabled:
        raise InvalidParameterCombinationException(NEEDS_SOURCE)
    if source is not None:
        group.snapshotting_cluster_id = source


def install() -> None:
    modify_replication_group = ElastiCacheResponse.modify_replication_group

    def modify_cache_cluster_response(self: ElastiCacheResponse) -> ActionResult:
        cluster = self.elasticache_backend.modify_cache_cluster(  # type: ignore[attr-defined]
            self._get_param("CacheClusterId"), self._get_int_param("SnapshotRetentionLimit")
        )
        return ActionResult({"CacheCluster": cluster})

    def modify_replication_group_response(self: ElastiCacheResponse) -> ActionResult:
        self.elasticache_backend.set_snapshotting_cluster(  # type: ignore[attr-defined]
            self._get_param("ReplicationGroupId"),
            self._get_param("SnapshottingClusterId"),
            self._get_int_param("SnapshotRetentionLimit"),
        )
        return modify_replication_group(self)

    ElastiCacheBackend.modify_cache_cluster = modify_cache_cluster  # type: ignore[attr-defined]
    ElastiCacheBackend.set_snapshotting_cluster = set_snapshotting_cluster  # type: ignore[attr-defined]
    ElastiCacheResponse.modify_cache_cluster = modify_cache_cluster_response  # type: ignore[attr-defined]
    ElastiCacheResponse.modify_replication_group = modify_replication_group_response  # type: ignore[method-assign]
