"""RDS fixes: DB instance availability."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients


def _instance(client: Any, identifier: str) -> dict[str, Any]:
    return client.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]


@register
class EnableMultiAz(Action):
    """Turn on Multi-AZ for a DB instance, applied immediately.

    A pending Multi-AZ change already counts as the fix under way: AWS reports
    ``MultiAZ`` only once the standby exists, which can take many minutes.

        remediation:
          action: rds.enable-multi-az
    """

    name = "rds.enable-multi-az"
    service = "rds"
    permissions = ("rds:DescribeDBInstances", "rds:ModifyDBInstance")
    summary = "enabled Multi-AZ (applied immediately)"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        instance = _instance(clients.rds, resource_id)
        pending = instance.get("PendingModifiedValues", {}).get("MultiAZ", False)
        return {"MultiAZ": bool(instance.get("MultiAZ")) or bool(pending)}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["MultiAZ"] else {"MultiAZ": True}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.rds.modify_db_instance(DBInstanceIdentifier=resource_id, MultiAZ=True, ApplyImmediately=True)
