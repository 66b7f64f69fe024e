"""ElastiCache fixes: Redis OSS and Valkey caches that fail over by themselves, keep backups and
take minor engine versions."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients

# AutomaticFailover as DescribeReplicationGroups reports it, and the statuses on the way there.
ON = ("enabled", "enabling")
# The engines that keep snapshots and take minor versions by themselves; Memcached does neither.
BACKED_UP = ("redis", "valkey")
RESOURCE_ARN = re.compile(
    r"^arn:[a-z-]+:elasticache:[a-z0-9-]+:\d{12}:(cluster|replicationgroup):([A-Za-z0-9-]+)$"
)
# What a fix of a setting kept on the cluster on its own, or else on its replication group, calls.
READ_AND_MODIFY = (
    "elasticache:DescribeCacheClusters",
    "elasticache:DescribeReplicationGroups",
    "elasticache:ModifyCacheCluster",
    "elasticache:ModifyReplicationGroup",
)
# The first Redis OSS version that takes AutoMinorVersionUpgrade (every Valkey version does).
UPGRADED_FROM = (6, 0)


def named(elasticache: Any, resource_id: str, refusal: str) -> tuple[str, dict[str, Any] | None]:
    """What the ARN names: a replication group's id and None, or a cache cluster's id and its
    description. A cluster running another engine than Redis OSS or Valkey is refused, with
    ``refusal`` saying why (after "runs <engine>, ")."""
    match = RESOURCE_ARN.match(resource_id)
    if not match:
        raise ValueError(f"{resource_id!r} is not the ARN of an ElastiCache cluster or replication group")
    kind, name = match.groups()
    if kind != "cluster":
        return name, None
    cluster = dict(elasticache.describe_cache_clusters(CacheClusterId=name)["CacheClusters"][0])
    engine = cluster.get("Engine")
    if engine not in BACKED_UP:
        raise ValueError(f"cache cluster {name} runs {engine}, {refusal}")
    return name, cluster


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
    as it would apply those at once too, and the failover waiting with them counts as the fix
    made, left for Security Hub to resolve once it reads "enabled" (``awaits``).

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
        state: dict[str, Any] = {
            "AutomaticFailover": status in ON,
            "Nodes": len(group.get("MemberClusters") or ()),
            "QueuedChanges": others,
        }
        if status in ON and group.get("AutomaticFailover") != "enabled":
            # On its way, or waiting for the window: what the control reads is not "enabled" yet.
            state["Applying"] = group.get("AutomaticFailover") or "disabled"
        return state

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["AutomaticFailover"] else {"AutomaticFailover": True}

    def awaits(self, state: dict[str, Any]) -> str | None:
        """ElastiCache.3 passes a group only once AutomaticFailover reads "enabled"; one left for
        the maintenance window (other changes wait there) may take a week to get there."""
        now = state.get("Applying")
        if not now:
            return None
        when = (
            "" if now == "enabling" else " until the maintenance window, where the change waits with others"
        )
        return (
            f"automatic failover reads {now}{when}; Security Hub resolves the finding when its check passes"
        )

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
    permissions = READ_AND_MODIFY
    summary = "enabled automatic backups, kept at least {min_retention_days} day(s)"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "min_retention_days": {"type": "integer", "minimum": 1, "maximum": 35, "default": 1},
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        name, cluster = named(
            clients.elasticache,
            resource_id,
            "which keeps no backups: only Redis OSS and Valkey caches can have automatic backups",
        )
        if cluster is not None:
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
        source: dict[str, str] = {}
        if days and not state["SnapshotRetentionLimit"] and state.get("SnapshotSource"):
            source = {"SnapshottingClusterId": state["SnapshotSource"]}
        modify(clients.elasticache, state, SnapshotRetentionLimit=days, **source)


def modify(elasticache: Any, state: dict[str, Any], **settings: Any) -> None:
    """Change ``settings`` where they live: on the cluster on its own that ``state`` names
    (``CacheClusterId``), else on its replication group (``ReplicationGroupId``)."""
    if "CacheClusterId" in state:
        elasticache.modify_cache_cluster(CacheClusterId=state["CacheClusterId"], **settings)
    else:
        elasticache.modify_replication_group(ReplicationGroupId=state["ReplicationGroupId"], **settings)


def version(text: str | None) -> tuple[int, int] | None:
    """An engine version's major and minor numbers ("6.2.6" -> (6, 2), "6.x" -> (6, 0)); None
    when it has none."""
    numbers = [int(n) for n in re.findall(r"\d+", text or "")[:2]]
    return (numbers[0], (numbers[1:] or [0])[0]) if numbers else None


@register
class EnableAutoMinorVersionUpgrade(Action):
    """Let ElastiCache apply new minor engine versions (security fixes) to a Redis OSS or Valkey
    cache in its maintenance window.

    A cluster that belongs to a replication group takes the group's setting, changed through
    ModifyReplicationGroup (ModifyCacheCluster refuses members); a cluster on its own is changed
    through ModifyCacheCluster. ElastiCache takes the flag at once and never queues it among the
    pending changes, so no ``ApplyImmediately`` is sent: it would only bring forward, to now,
    whatever other change waits for the maintenance window. Redis OSS before 6.0 does
    not take the setting (upgrade the engine first) and Memcached is not what the control
    checks: both are refused, unchanged. Reverting puts the earlier flag back.

        remediation:
          action: elasticache.enable-auto-minor-version-upgrade
    """

    name = "elasticache.enable-auto-minor-version-upgrade"
    service = "elasticache"
    permissions = READ_AND_MODIFY
    summary = "enabled automatic minor version upgrades"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        name, cluster = named(
            clients.elasticache,
            resource_id,
            "which ElastiCache.2 does not check: automatic minor version upgrades are for Redis OSS "
            "and Valkey caches",
        )
        if cluster is None:  # a group: no version to read, its members carry it
            group = replication_group(clients.elasticache, name)
            return {
                "AutoMinorVersionUpgrade": bool(group.get("AutoMinorVersionUpgrade")),
                "ReplicationGroupId": name,
            }
        # The cluster's own flag is what the control judges, also for a group's member.
        where = (
            {"ReplicationGroupId": cluster["ReplicationGroupId"]}
            if cluster.get("ReplicationGroupId")
            else {"CacheClusterId": name}
        )
        return {
            "AutoMinorVersionUpgrade": bool(cluster.get("AutoMinorVersionUpgrade")),
            "Engine": cluster["Engine"],
            "EngineVersion": cluster.get("EngineVersion"),
            **where,
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        if state["AutoMinorVersionUpgrade"]:
            return {}
        running = version(state.get("EngineVersion"))
        if state.get("Engine") == "redis" and running and running < UPGRADED_FROM:  # a dry run says so too
            raise ValueError(
                f"the cluster runs Redis OSS {state['EngineVersion']}, which takes no automatic minor "
                "version upgrades (from 6.0 on): upgrade its engine, then fix it again"
            )
        return {"AutoMinorVersionUpgrade": True}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        modify(clients.elasticache, state, AutoMinorVersionUpgrade=True)

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        # Read again: where the flag lives now (a cluster on its own may have become a group's primary).
        state = self.read(clients, resource_id)
        modify(clients.elasticache, state, AutoMinorVersionUpgrade=before["AutoMinorVersionUpgrade"])
