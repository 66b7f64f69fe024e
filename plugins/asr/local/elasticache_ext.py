"""ElastiCache backup and minor-version settings as AWS changes them, which moto 5.2.5 cannot or
does loosely.

- moto has no ``ModifyCacheCluster``. Here it has, for ``SnapshotRetentionLimit`` and
  ``AutoMinorVersionUpgrade``; as in AWS, a cluster that belongs to a replication group is not
  changed by itself (its group is).
- AWS turns on a replication group's backups only with ``SnapshottingClusterId`` (the member to
  back up) when the group has no cluster mode, and refuses that id when it has; moto takes any
  call and drops the id. Here as AWS does, and the group keeps the id.
- ``AutoMinorVersionUpgrade`` is on unless a create call turns it off, as in AWS (moto left it
  unset, and kept a group's as the text sent); ``ModifyReplicationGroup`` changes it (moto
  ignored it) for the group and its member clusters, which carry the group's setting.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.elasticache.exceptions import InvalidParameterCombinationException
from moto.elasticache.models import CacheCluster, ElastiCacheBackend, ReplicationGroup
from moto.elasticache.responses import ElastiCacheResponse

NEEDS_SOURCE = "Must specify both SnapshotRetentionLimit and SnapshottingClusterId to turn on snapshots"
NO_SOURCE = "Cannot set snapshotting cluster for cluster mode enabled replication group"


def modify_cache_cluster(
    self: ElastiCacheBackend,
    cache_cluster_id: str,
    snapshot_retention_limit: int | None,
    auto_minor_version_upgrade: bool | None = None,
) -> CacheCluster:
    cluster = self.describe_cache_clusters(cache_cluster_id)[0]
    group_id = getattr(cluster, "replication_group_id", None)
    if group_id:
        raise InvalidParameterCombinationException(
            f"Cluster {cache_cluster_id} is a member of replication group {group_id}: modify the group"
        )
    if snapshot_retention_limit is not None:
        cluster.snapshot_retention_limit = snapshot_retention_limit
    if auto_minor_version_upgrade is not None:
        cluster.auto_minor_version_upgrade = auto_minor_version_upgrade
    return cluster


def set_auto_minor_version_upgrade(self: ElastiCacheBackend, group_id: str, upgrade: bool | None) -> None:
    """A replication group's flag, and its members' with it: the control reads it per cluster."""
    if upgrade is None:
        return
    self.describe_replication_groups(group_id)[0].auto_minor_version_upgrade = upgrade
    for cluster in self.cache_clusters.values():
        if getattr(cluster, "replication_group_id", None) == group_id:
            cluster.auto_minor_version_upgrade = upgrade


def flag(value: bool | str | None) -> bool:
    """AutoMinorVersionUpgrade as a create call gave it (moto passes a group's on as text): on
    unless turned off, AWS's default."""
    return value if isinstance(value, bool) else str(value).lower() != "false"


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
    create_cache_cluster = ElastiCacheBackend.create_cache_cluster
    create_replication_group = ElastiCacheBackend.create_replication_group

    def create_cache_cluster_on(self: ElastiCacheBackend, **settings: Any) -> CacheCluster:
        group = self.replication_groups.get(settings.get("replication_group_id") or "")
        upgrade = settings.get("auto_minor_version_upgrade")
        settings["auto_minor_version_upgrade"] = group.auto_minor_version_upgrade if group else flag(upgrade)
        return create_cache_cluster(self, **settings)

    def create_replication_group_on(self: ElastiCacheBackend, **settings: Any) -> ReplicationGroup:
        settings["auto_minor_version_upgrade"] = flag(settings.get("auto_minor_version_upgrade"))
        return create_replication_group(self, **settings)

    def modify_cache_cluster_response(self: ElastiCacheResponse) -> ActionResult:
        cluster = self.elasticache_backend.modify_cache_cluster(  # type: ignore[attr-defined]
            self._get_param("CacheClusterId"),
            self._get_int_param("SnapshotRetentionLimit"),
            self._get_bool_param("AutoMinorVersionUpgrade"),
        )
        return ActionResult({"CacheCluster": cluster})

    def modify_replication_group_response(self: ElastiCacheResponse) -> ActionResult:
        group_id = self._get_param("ReplicationGroupId")
        self.elasticache_backend.set_snapshotting_cluster(  # type: ignore[attr-defined]
            group_id, self._get_param("SnapshottingClusterId"), self._get_int_param("SnapshotRetentionLimit")
        )
        self.elasticache_backend.set_auto_minor_version_upgrade(  # type: ignore[attr-defined]
            group_id, self._get_bool_param("AutoMinorVersionUpgrade")
        )
        return modify_replication_group(self)

    ElastiCacheBackend.create_cache_cluster = create_cache_cluster_on  # type: ignore[method-assign,assignment]
    ElastiCacheBackend.create_replication_group = create_replication_group_on  # type: ignore[method-assign,assignment]
    ElastiCacheBackend.modify_cache_cluster = modify_cache_cluster  # type: ignore[attr-defined]
    ElastiCacheBackend.set_auto_minor_version_upgrade = set_auto_minor_version_upgrade  # type: ignore[attr-defined]
    ElastiCacheBackend.set_snapshotting_cluster = set_snapshotting_cluster  # type: ignore[attr-defined]
    ElastiCacheResponse.modify_cache_cluster = modify_cache_cluster_response  # type: ignore[attr-defined]
    ElastiCacheResponse.modify_replication_group = modify_replication_group_response  # type: ignore[method-assign]
