"""CloudWatch Logs fixes: log group retention."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients

# The only values PutRetentionPolicy accepts, in days.
RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip


def retention_at_least(days: int) -> int:
    """The shortest retention CloudWatch Logs accepts that keeps events for at least ``days``."""
    return next(allowed for allowed in RETENTION_DAYS if allowed >= days)


def describe_log_group(logs: Any, name: str) -> dict[str, Any]:
    """The log group of exactly this name (a prefix search also returns longer names)."""
    kwargs: dict[str, Any] = {"logGroupNamePrefix": name}
    while True:
        page = logs.describe_log_groups(**kwargs)
        for group in page.get("logGroups", []):
            if group["logGroupName"] == name:
                return group
        if not page.get("nextToken"):
            raise LookupError(f"log group {name!r} not found")
        kwargs["nextToken"] = page["nextToken"]


@register
class SetLogGroupRetention(Action):
    """Keep a log group's events for at least ``min_retention_days``.

    A longer retention, or none at all ("never expire"), already complies and is kept.
    A minimum CloudWatch Logs does not offer is rounded up to the next value it does.

        remediation:
          action: logs.set-log-group-retention
          parameters: {min_retention_days: 365}
    """

    name = "logs.set-log-group-retention"
    service = "logs"
    permissions = ("logs:DescribeLogGroups", "logs:PutRetentionPolicy")
    summary = "set the log group's retention to at least {min_retention_days} days"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "min_retention_days": {"type": "integer", "minimum": 1, "maximum": 3653, "default": 365},
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        # CloudWatch Logs leaves retentionInDays out when events never expire.
        return {"retentionInDays": describe_log_group(clients.logs, resource_id).get("retentionInDays")}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        current, minimum = state["retentionInDays"], self.params["min_retention_days"]
        if current is None or current >= minimum:
            return {}
        return {"retentionInDays": retention_at_least(minimum)}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.logs.put_retention_policy(logGroupName=resource_id, retentionInDays=plan["retentionInDays"])

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """The shorter retention back: events older than it are then deleted, as they were due to be."""
        clients.logs.put_retention_policy(logGroupName=resource_id, retentionInDays=before["retentionInDays"])
