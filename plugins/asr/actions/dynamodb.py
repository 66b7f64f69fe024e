"""DynamoDB fixes: table deletion protection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients


@register
class EnableTableDeletionProtection(Action):
    """Turn on deletion protection for a DynamoDB table, so that deleting it needs a deliberate change first.

    Only ``DeletionProtectionEnabled`` is sent; capacity, streams and indexes stay as
    they are. A table that is being updated refuses the call, and is reported with
    AWS's reason.

        remediation:
          action: dynamodb.enable-deletion-protection
    """

    name = "dynamodb.enable-deletion-protection"
    service = "dynamodb"
    permissions = ("dynamodb:DescribeTable", "dynamodb:UpdateTable")
    summary = "enabled deletion protection on the table"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        table = clients.dynamodb.describe_table(TableName=resource_id)["Table"]
        return {"DeletionProtectionEnabled": bool(table.get("DeletionProtectionEnabled"))}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["DeletionProtectionEnabled"] else {"DeletionProtectionEnabled": True}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.dynamodb.update_table(TableName=resource_id, DeletionProtectionEnabled=True)

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        clients.dynamodb.update_table(
            TableName=resource_id, DeletionProtectionEnabled=before["DeletionProtectionEnabled"]
        )
