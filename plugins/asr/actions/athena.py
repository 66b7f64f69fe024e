"""Athena fixes: workgroups whose query metrics reach CloudWatch."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients

# A workgroup name as Athena's API model allows it (botocore checks no patterns itself).
WORK_GROUP_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,128}$")


@register
class PublishWorkGroupMetrics(Action):
    """Have an Athena workgroup publish its query metrics to CloudWatch (Athena.4).

    The finding's resource is the workgroup, named by its ARN; the playbook passes its name.
    Only ``PublishCloudWatchMetricsEnabled`` is sent: UpdateWorkGroup changes just the
    settings a call names, so the results location, encryption, limits and engine are kept.
    The ``primary`` workgroup, which every account and Region has, is fixed like any other.
    A disabled workgroup is fixed too and left disabled: Security Hub evaluates it all the
    same, its settings stay editable, and whoever disabled it decides when it runs queries
    again. A configuration that leaves the setting out reads as off, as Athena then publishes
    nothing. Reverting turns publishing off again. Publishing changes no query and no access.

        remediation:
          action: athena.publish-workgroup-metrics
    """

    name = "athena.publish-workgroup-metrics"
    service = "athena"
    permissions = ("athena:GetWorkGroup", "athena:UpdateWorkGroup")
    summary = "turned on publishing the workgroup's query metrics to CloudWatch"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        if not WORK_GROUP_NAME.match(resource_id):
            raise ValueError(
                f"{resource_id!r} is not an Athena workgroup name (1 to 128 letters, digits, '.', '_' or '-')"
            )
        group = clients.athena.get_work_group(WorkGroup=resource_id)["WorkGroup"]
        configuration = group.get("Configuration") or {}
        return {
            "PublishCloudWatchMetricsEnabled": bool(configuration.get("PublishCloudWatchMetricsEnabled")),
            "State": group.get("State"),
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["PublishCloudWatchMetricsEnabled"] else {"PublishCloudWatchMetricsEnabled": True}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        self._publish(clients, resource_id, plan["PublishCloudWatchMetricsEnabled"])

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        self._publish(clients, resource_id, bool(before["PublishCloudWatchMetricsEnabled"]))

    def _publish(self, clients: Clients, name: str, enabled: bool) -> None:
        clients.athena.update_work_group(
            WorkGroup=name, ConfigurationUpdates={"PublishCloudWatchMetricsEnabled": enabled}
        )
