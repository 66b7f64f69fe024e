"""ElastiCache fixes: Redis OSS and Valkey caches that fail over by themselves and keep backups."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients

# AutomaticFailover as DescribeReplicationGroups reports it, and the statuses on the way there.
ON = ("enabled", "enabling")
# The engines that keep snapshots; Memcached keeps none.
BACKED_UP = ("redis", "valkey")
RESOURCE_ARN = re.compile(
    r"^arn:[a-z-]+:elasticache:[a-z0-9-]+:\d{12}:(cluster|replicationgroup):([A-Za-z0-9-]+)$"
)


def replication_group(elasticache: Any, group_id: str) -> dict[str, Any]:
    """The replication group as DescribeReplicationGroups describes it."""
    return dict(elasticache.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0])


@register
class EnableAutomaticFailover(Action):
    """Let a Redis OSS or Valkey replication group promote a replica when its primary fails.

    A group without a replica has nothing to promote, and AWS refuses the change: it is
    reported so, to have a replica added first. ``ApplyImmediately`` is sent when no other
    change waits for the maintenance window (else a change left for the window could wait
    there until the next failure, when failover was wanted); with changes waiting, it is not,
    as it would apply those at once too, and the failover waiting with them counts as on.

        remediation:
          action: elasticache.enable-automatic-failover
    """

    name = "elasticache.enable-automatic-failover"
    service = "elasticache"
    permissions = ("elasticache:DescribeReplicationGroups", "elasticache:ModifyReplicationGroup")
    summary = "enabled automatic failover on the replication group"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        group = replication_group(clients.elasticache, resource_id)
        pending = (group.get("PendingModifiedValues") or {}).get("AutomaticFailoverStatus")
        status = pending or group.get("AutomaticFailover") or "disabled"
        others = sorted(set(group.get("PendingModifiedValues") or {}) - {"AutomaticFailoverStatus"})
        return {
            "AutomaticFailover": status in ON,
            "Nodes": len(group.get("MemberClusters") or ()),
            "QueuedChanges": others,
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["AutomaticFailover"] else {"AutomaticFailover": True}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        if state["Nodes"] < 2:
            raise ValueError(
                f"replication group {resource_id} has no replica to fail over to: add one, then fix it again"
            )
        clients.elasticache.modify_replication_group(
            ReplicationGroupId=resource_id,
            AutomaticFailoverEnabled=True,
            ApplyImmediately=not state.get("QueuedChanges"),
        )

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        clients.elasticache.modify_replication_group(
            ReplicationGroupId=resource_id, AutomaticFailoverEnabled=before["AutomaticFailover"]
        )


def snapshot_source(group: dict[str, Any]) -> str | None:
    """The member a replication group without cluster mode is (or would be) backed up from:
    the one it names, else a replica (AWS advises backing up a replica, to spare the primary's
    performance), else its only node. None with cluster mode: AWS backs up every shard."""
    if group.get("ClusterEnabled"):
        return None
    if group.get("SnapshottingClusterId"):
        return str(group["SnapshottingClusterId"])
    members = [m for g in group.get("NodeGroups") or () for m in g.get("NodeGroupMembers") or ()]
    replicas = [m["CacheClusterId"] for m in members if m.get("CurrentRole") == "replica"]
    clusters = replicas or list(group.get("MemberClusters") or ())
    return clusters[0] if clusters else None


@register
class EnableAutomaticBackups(Action):
    """Keep a Redis OSS or Valkey cache's daily backups for at least ``min_retention_days``.

    The finding may name a replication group or a cache cluster. The retention of a cluster
    that belongs to a replication group is the group's, changed through ModifyReplicationGroup
    (ModifyCacheCluster refuses members); a cluster on its own is changed through
    ModifyCacheCluster. Turning backups on for a group without cluster mode needs the member
    to back up (``SnapshottingClusterId``): the one the group names, else a replica, else its
    only node. A longer retention already complies and is kept. The retention takes effect at
    once (ElastiCache never queues it among the pending changes), and no snapshot window is
    sent, so AWS keeps or picks one. Memcached keeps no backups and is refused. Reverting
    puts back the earlier retention (0 turns backups off again).

        remediation:
          action: elasticache.enable-automatic-backups
          parameters: {min_retention_days: 1}
    """

    name = "elasticache.enable-automatic-backups"
    service = "elasticache"
    permissions = (
        "elasticache:DescribeCacheClusters",
        "elasticache:DescribeReplicationGroups",
        "elasticache:ModifyCacheCluster",
        "elasticache:ModifyReplicationGroup",
    )
    summary = "enabled automatic backups, kept at least {min_retention_days} day(s)"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "min_retention_days": {"type": "integer", "minimum": 1, "maximum": 35, "default": 1},
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        match = RESOURCE_ARN.match(resource_id)
        if not match:
            raise ValueError(f"{resource_id!r} is not the ARN of an ElastiCache cluster or replication group")
        kind, name = match.groups()
        if kind == "cluster":
            cluster = clients.elasticache.describe_cache_clusters(CacheClusterId=name)["CacheClusters"][0]
            engine = cluster.get("Engine")
            if engine not in BACKED_UP:
                raise ValueError(
                    f"cache cluster {name} runs {engine}, which keeps no backups: "
                    "only Redis OSS and Valkey caches can have automatic backups"
                )
            if not cluster.get("ReplicationGroupId"):
                return {
                    "SnapshotRetentionLimit": cluster.get("SnapshotRetentionLimit") or 0,
                    "CacheClusterId": name,
                }
            name = cluster["ReplicationGroupId"]
        group = replication_group(clients.elasticache, name)
        return {
            "SnapshotRetentionLimit": group.get("SnapshotRetentionLimit") or 0,
            "ReplicationGroupId": name,
            "SnapshotSource": snapshot_source(group),
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        wanted = int(self.params["min_retention_days"])
        return {} if state["SnapshotRetentionLimit"] >= wanted else {"SnapshotRetentionLimit": wanted}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        self._set(clients, state, plan["SnapshotRetentionLimit"])

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        # Read again: turning backups back on (someone turned them off since) needs the source.
        self._set(clients, self.read(clients, resource_id), before["SnapshotRetentionLimit"])

    def _set(self, clients: Clients, state: dict[str, Any], days: int) -> None:
        if "CacheClusterId" in state:
            clients.elasticache.modify_cache_cluster(
                CacheClusterId=state["CacheClusterId"], SnapshotRetentionLimit=days
            )
            return
        source: dict[str, str] = {}
        if days and not state["SnapshotRetentionLimit"] and state["SnapshotSource"]:
            source = {"SnapshottingClusterId": state["SnapshotSource"]}
        clients.elasticache.modify_replication_group(
            ReplicationGroupId=state["ReplicationGroupId"], SnapshotRetentionLimit=days, **source
        )
