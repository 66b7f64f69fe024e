"""Redshift fixes: one setting of a provisioned cluster each, changed through ModifyCluster."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients


class _ClusterSetting(Action):
    """Give one attribute of a Redshift cluster a compliant value through ModifyCluster.

    Subclasses name the attribute and the value it gets; ``complies`` says which values
    are good enough as they are. ModifyCluster gets that attribute alone: the same call
    resizes, upgrades and re-encrypts a cluster, so sending anything else could start one
    of those. A value in ``PendingModifiedValues`` is the one the cluster is getting and
    counts as the cluster's. A cluster that is not ``available`` (paused, resizing,
    modifying) answers InvalidClusterState, which is reported as AWS says it.
    """

    service = "redshift"
    permissions = ("redshift:DescribeClusters", "redshift:ModifyCluster")
    attribute: ClassVar[str]
    wanted: ClassVar[Any] = None

    def target(self) -> Any:
        """The value the fix sets."""
        return self.wanted

    def complies(self, value: Any) -> bool:
        return bool(value == self.target())

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        cluster = clients.redshift.describe_clusters(ClusterIdentifier=resource_id)["Clusters"][0]
        pending = cluster.get("PendingModifiedValues") or {}
        return {self.attribute: pending.get(self.attribute, cluster.get(self.attribute))}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if self.complies(state[self.attribute]) else {self.attribute: self.target()}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        self._set(clients, resource_id, plan[self.attribute])

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        self._set(clients, resource_id, before[self.attribute])

    def _set(self, clients: Clients, resource_id: str, value: Any) -> None:
        clients.redshift.modify_cluster(ClusterIdentifier=resource_id, **{self.attribute: value})


@register
class DisableClusterPublicAccess(_ClusterSetting):
    """Make a Redshift cluster reachable only from inside its VPC (``PubliclyAccessible`` false).

    The cluster keeps its endpoint name, which then resolves to the private address only;
    clients outside the VPC lose their connection.

        remediation:
          action: redshift.disable-public-access
    """

    name = "redshift.disable-public-access"
    attribute = "PubliclyAccessible"
    wanted = False
    summary = "made the Redshift cluster not publicly accessible"


@register
class EnableVersionUpgrade(_ClusterSetting):
    """Let Redshift apply major versions to a cluster in its maintenance window.

    The setting itself changes nothing at once; upgrades then happen in the window.

        remediation:
          action: redshift.enable-version-upgrade
    """

    name = "redshift.enable-version-upgrade"
    attribute = "AllowVersionUpgrade"
    wanted = True
    summary = "enabled automatic major version upgrades on the Redshift cluster"


@register
class SetSnapshotRetention(_ClusterSetting):
    """Keep a cluster's automated snapshots for at least ``min_retention_days`` (0 turns them off).

    A longer retention already complies and is kept. Reverting to a shorter one makes
    Redshift delete at once the automated snapshots older than it, as they were due to be.

        remediation:
          action: redshift.set-snapshot-retention
          parameters: {min_retention_days: 7}
    """

    name = "redshift.set-snapshot-retention"
    attribute = "AutomatedSnapshotRetentionPeriod"
    summary = "set the Redshift cluster's automated snapshot retention to at least {min_retention_days} days"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "min_retention_days": {"type": "integer", "minimum": 1, "maximum": 35, "default": 7},
        },
    }

    def target(self) -> int:
        return int(self.params["min_retention_days"])

    def complies(self, value: Any) -> bool:
        return (value or 0) >= self.target()
