"""ElastiCache fixes: replication groups that do not fail over to a replica by themselves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients

# AutomaticFailover as DescribeReplicationGroups reports it, and the statuses on the way there.
ON = ("enabled", "enabling")


@register
class EnableAutomaticFailover(Action):
    """Let a Redis OSS or Valkey replication group promote a replica when its primary fails.

    A group without a replica has nothing to promote, and AWS refuses the change: it is
    reported so, to have a replica added first. ``ApplyImmediately`` is not sent, so other
    changes waiting for the maintenance window keep waiting.

        remediation:
          action: elasticache.enable-automatic-failover
    """

    name = "elasticache.enable-automatic-failover"
    service = "elasticache"
    permissions = ("elasticache:DescribeReplicationGroups", "elasticache:ModifyReplicationGroup")
    summary = "enabled automatic failover on the replication group"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        group = clients.elasticache.describe_replication_groups(ReplicationGroupId=resource_id)[
            "ReplicationGroups"
        ][0]
        pending = (group.get("PendingModifiedValues") or {}).get("AutomaticFailoverStatus")
        status = pending or group.get("AutomaticFailover") or "disabled"
        return {"AutomaticFailover": status in ON, "Nodes": len(group.get("MemberClusters") or ())}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["AutomaticFailover"] else {"AutomaticFailover": True}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        if state["Nodes"] < 2:
            raise ValueError(
                f"replication group {resource_id} has no replica to fail over to: add one, then fix it again"
            )
        clients.elasticache.modify_replication_group(
            ReplicationGroupId=resource_id, AutomaticFailoverEnabled=True
        )

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        clients.elasticache.modify_replication_group(
            ReplicationGroupId=resource_id, AutomaticFailoverEnabled=before["AutomaticFailover"]
        )
