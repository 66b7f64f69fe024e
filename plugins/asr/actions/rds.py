"""RDS fixes: boolean settings of DB instances and clusters, public snapshots, Enhanced Monitoring."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from asr.actions import (
    Action,
    ServiceRole,
    answered,
    register,
    role_name_parameter,
    service_trust,
    with_new_role,
)

if TYPE_CHECKING:
    from asr.aws import Clients


@dataclass(frozen=True)
class _Kind:
    """How one kind of RDS resource is described and modified, and the permissions that takes."""

    noun: str
    id_param: str
    describe: str
    listed_as: str
    modify: str
    permissions: tuple[str, str]

    def read(self, client: Any, identifier: str) -> dict[str, Any]:
        return getattr(client, self.describe)(**{self.id_param: identifier})[self.listed_as][0]

    def change(self, client: Any, identifier: str, **settings: Any) -> None:
        getattr(client, self.modify)(**{self.id_param: identifier}, **settings)


INSTANCE = _Kind(
    "DB instance",
    "DBInstanceIdentifier",
    "describe_db_instances",
    "DBInstances",
    "modify_db_instance",
    ("rds:DescribeDBInstances", "rds:ModifyDBInstance"),
)
CLUSTER = _Kind(
    "DB cluster",
    "DBClusterIdentifier",
    "describe_db_clusters",
    "DBClusters",
    "modify_db_cluster",
    ("rds:DescribeDBClusters", "rds:ModifyDBCluster"),
)


def _describe(
    kind: _Kind, clients: Clients, resource_id: str, attribute: str, set_on_cluster: bool = False
) -> dict[str, Any]:
    """The resource as its Describe call lists it. An instance whose cluster holds ``attribute``
    (``set_on_cluster``), or that belongs to a Multi-AZ DB cluster, is refused."""
    found = kind.read(clients.rds, resource_id)
    cluster = found.get("DBClusterIdentifier")
    # The instances of a Multi-AZ DB cluster (not Aurora) cannot be modified at all.
    aurora = str(found.get("Engine", "aurora")).startswith("aurora")
    if kind is INSTANCE and cluster and (set_on_cluster or not aurora):
        raise ValueError(
            f"{kind.noun} {resource_id} belongs to DB cluster {cluster}, "
            f"whose own {attribute} setting applies: fix the cluster instead"
        )
    return found


def _getting(found: dict[str, Any], attribute: str) -> Any:
    """The value a change waiting in ``PendingModifiedValues`` gives the attribute, else its value."""
    pending = found.get("PendingModifiedValues") or {}
    return pending[attribute] if attribute in pending else found.get(attribute)


class _BooleanSetting(Action):
    """Set one boolean attribute of a DB instance or cluster through its Modify call.

    Subclasses name the resource kind and the attribute. A value waiting in
    ``PendingModifiedValues`` counts as the value the resource is getting. Only the
    attribute is sent, and ``ApplyImmediately`` stays false unless the subclass needs
    it: true would also rush every change someone queued for the maintenance window.
    """

    service = "rds"
    kind: ClassVar[_Kind]
    attribute: ClassVar[str]
    wanted: ClassVar[bool] = True
    apply_immediately: ClassVar[bool] = False
    # For instance settings that AWS manages on the cluster when the instance belongs to one.
    set_on_cluster: ClassVar[bool] = False

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        found = _describe(self.kind, clients, resource_id, self.attribute, self.set_on_cluster)
        state: dict[str, Any] = {self.attribute: bool(_getting(found, self.attribute))}
        if self.apply_immediately:
            pending = found.get("PendingModifiedValues") or {}
            state["QueuedChanges"] = sorted(set(pending) - {self.attribute})
        return state

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state[self.attribute] == self.wanted else {self.attribute: self.wanted}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        self._refuse_to_rush(resource_id, state)
        self.kind.change(clients.rds, resource_id, **plan, ApplyImmediately=self.apply_immediately)

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        self._refuse_to_rush(resource_id, self.read(clients, resource_id))
        setting = {self.attribute: before[self.attribute]}
        self.kind.change(clients.rds, resource_id, **setting, ApplyImmediately=self.apply_immediately)

    def _refuse_to_rush(self, resource_id: str, state: dict[str, Any]) -> None:
        """ApplyImmediately also applies every change queued for the maintenance window: a new
        instance class or engine version would restart the database now, which nobody approved."""
        if state.get("QueuedChanges"):
            raise ValueError(
                f"{self.kind.noun} {resource_id} has changes queued for its maintenance window "
                f"({', '.join(state['QueuedChanges'])}), which applying {self.attribute} now would "
                "apply at once too: apply or cancel them first"
            )


@register
class EnableMultiAz(_BooleanSetting):
    """Turn on Multi-AZ for a DB instance, applied immediately.

    A pending Multi-AZ change already counts as the fix under way: AWS reports
    ``MultiAZ`` only once the standby exists, which can take many minutes. An instance
    of a cluster is refused: the cluster places its instances.

        remediation:
          action: rds.enable-multi-az
    """

    name = "rds.enable-multi-az"
    kind = INSTANCE
    attribute = "MultiAZ"
    apply_immediately = True
    set_on_cluster = True
    permissions = INSTANCE.permissions
    summary = "enabled Multi-AZ (applied immediately)"


@register
class DisableInstancePublicAccess(_BooleanSetting):
    """Make a DB instance reachable only from inside its VPC (``PubliclyAccessible`` false).

    AWS applies this at once whatever ``ApplyImmediately`` says; the instance keeps its
    endpoint, which then resolves to the private address only.

        remediation:
          action: rds.disable-instance-public-access
    """

    name = "rds.disable-instance-public-access"
    kind = INSTANCE
    attribute = "PubliclyAccessible"
    wanted = False
    permissions = INSTANCE.permissions
    summary = "made the DB instance not publicly accessible"


@register
class EnableInstanceDeletionProtection(_BooleanSetting):
    """Turn on deletion protection for a DB instance, so that deleting it needs a deliberate change first.

    An Aurora instance is refused: its deletion protection is the cluster's (RDS.7).

        remediation:
          action: rds.enable-instance-deletion-protection
    """

    name = "rds.enable-instance-deletion-protection"
    kind = INSTANCE
    attribute = "DeletionProtection"
    set_on_cluster = True
    permissions = INSTANCE.permissions
    summary = "enabled deletion protection on the DB instance"


@register
class EnableAutoMinorVersionUpgrade(_BooleanSetting):
    """Let RDS apply minor engine versions (security patches) in the maintenance window.

    The setting itself causes no outage; upgrades then happen in the instance's
    maintenance window.

        remediation:
          action: rds.enable-auto-minor-version-upgrade
    """

    name = "rds.enable-auto-minor-version-upgrade"
    kind = INSTANCE
    attribute = "AutoMinorVersionUpgrade"
    permissions = INSTANCE.permissions
    summary = "enabled automatic minor version upgrades on the DB instance"


@register
class EnableClusterDeletionProtection(_BooleanSetting):
    """Turn on deletion protection for a DB cluster, so that deleting it needs a deliberate change first.

    remediation:
      action: rds.enable-cluster-deletion-protection
    """

    name = "rds.enable-cluster-deletion-protection"
    kind = CLUSTER
    attribute = "DeletionProtection"
    permissions = CLUSTER.permissions
    summary = "enabled deletion protection on the DB cluster"


@register
class EnableClusterCopyTagsToSnapshot(_BooleanSetting):
    """Copy a DB cluster's tags to its snapshots, so tag-based access and ownership follow the data.

    Snapshots taken before the change keep the tags they have.

        remediation:
          action: rds.enable-cluster-copy-tags-to-snapshot
    """

    name = "rds.enable-cluster-copy-tags-to-snapshot"
    kind = CLUSTER
    attribute = "CopyTagsToSnapshot"
    permissions = CLUSTER.permissions
    summary = "enabled copying tags to snapshots on the DB cluster"


@dataclass(frozen=True)
class _SnapshotKind:
    """The attribute calls of one kind of manual snapshot."""

    id_param: str
    describe: str
    modify: str
    result: str
    attributes: str


_SNAPSHOT_KINDS = {
    "snapshot": _SnapshotKind(
        "DBSnapshotIdentifier",
        "describe_db_snapshot_attributes",
        "modify_db_snapshot_attribute",
        "DBSnapshotAttributesResult",
        "DBSnapshotAttributes",
    ),
    "cluster-snapshot": _SnapshotKind(
        "DBClusterSnapshotIdentifier",
        "describe_db_cluster_snapshot_attributes",
        "modify_db_cluster_snapshot_attribute",
        "DBClusterSnapshotAttributesResult",
        "DBClusterSnapshotAttributes",
    ),
}
PUBLIC = "all"


def _snapshot(arn: str) -> tuple[_SnapshotKind, str]:
    """The kind and name of a snapshot from its ARN (``arn:aws:rds:<region>:<acct>:<kind>:<name>``)."""
    parts = arn.split(":", 6)
    if len(parts) != 7 or parts[2] != "rds" or parts[5] not in _SNAPSHOT_KINDS:
        raise ValueError(f"{arn!r} is not the ARN of an RDS DB snapshot or DB cluster snapshot")
    return _SNAPSHOT_KINDS[parts[5]], parts[6]


@register
class MakeSnapshotPrivate(Action):
    """Stop sharing a manual DB snapshot or DB cluster snapshot with every AWS account.

    Only ``all`` is removed from the snapshot's ``restore`` attribute: sharing with
    named accounts stays. Takes the snapshot's ARN, which says which kind it is.

        remediation:
          action: rds.make-snapshot-private
    """

    name = "rds.make-snapshot-private"
    service = "rds"
    permissions = (
        "rds:DescribeDBSnapshotAttributes",
        "rds:ModifyDBSnapshotAttribute",
        "rds:DescribeDBClusterSnapshotAttributes",
        "rds:ModifyDBClusterSnapshotAttribute",
    )
    summary = "made the snapshot private (no longer restorable by all accounts; named accounts kept)"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        kind, name = _snapshot(resource_id)
        result = getattr(clients.rds, kind.describe)(**{kind.id_param: name})[kind.result]
        restore = [
            value
            for attribute in result.get(kind.attributes, [])
            if attribute.get("AttributeName") == "restore"
            for value in attribute.get("AttributeValues", [])
        ]
        return {"restore": restore}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        if PUBLIC not in state["restore"]:
            return {}
        return {"restore": [value for value in state["restore"] if value != PUBLIC]}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        kind, name = _snapshot(resource_id)
        getattr(clients.rds, kind.modify)(
            **{kind.id_param: name}, AttributeName="restore", ValuesToRemove=[PUBLIC]
        )

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        kind, name = _snapshot(resource_id)
        getattr(clients.rds, kind.modify)(
            **{kind.id_param: name}, AttributeName="restore", ValuesToAdd=[PUBLIC]
        )


# The service that assumes the monitoring role. The same in every partition: IAM in the China
# regions refuses monitoring.rds.amazonaws.com.cn as a principal.
MONITORING_PRINCIPAL = "monitoring.rds.amazonaws.com"
MONITORING_POLICY = "service-role/AmazonRDSEnhancedMonitoringRole"
INTERVALS = [1, 5, 10, 15, 30, 60]


# The codes RDS answers a monitoring role it cannot use (yet) with.
ROLE_REFUSALS = ("InvalidParameterValue", "InvalidParameterCombination")


@register
class EnableEnhancedMonitoring(Action):
    """Turn on Enhanced Monitoring of a DB instance: its OS metrics go to CloudWatch Logs.

    Security Hub passes any interval unless the control is given ``monitoringInterval``; then
    only that one passes. The playbook maps it to ``required_interval_seconds``; without it an
    instance with monitoring off gets ``interval_seconds``. RDS applies the change at once,
    without a restart and without ``ApplyImmediately`` (which would rush what is queued for the
    maintenance window); a pending interval would count, as for the settings above.

    The instance's own monitoring role is kept (none is sent). Otherwise the role ``role_name``,
    trusted by Enhanced Monitoring for this account only and holding the AWS managed policy
    AmazonRDSEnhancedMonitoringRole, is passed: the member-role stack makes it, and the
    account's instances share it. Aurora instances are set one by one; those of a Multi-AZ
    DB cluster are refused.

        remediation:
          action: rds.enable-enhanced-monitoring
          parameters: {interval_seconds: 60}
    """

    name = "rds.enable-enhanced-monitoring"
    service = "rds"
    permissions = (
        *INSTANCE.permissions,
        "iam:GetRole",
        "iam:ListAttachedRolePolicies",
        "iam:PassRole",
    )
    service_role = ServiceRole(
        service_trust(MONITORING_PRINCIPAL, source_account=True),
        "Lets RDS Enhanced Monitoring send OS metrics to CloudWatch Logs (ASR, for RDS.6)",
        (MONITORING_POLICY,),
    )
    summary = "turned on Enhanced Monitoring of the DB instance (OS metrics to CloudWatch Logs)"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "interval_seconds": {"type": "integer", "enum": INTERVALS, "default": 60},
            "required_interval_seconds": {"type": "integer", "enum": INTERVALS},
            "role_name": role_name_parameter("asr-service-rds-monitoring"),
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        found = _describe(INSTANCE, clients, resource_id, "MonitoringInterval")
        interval = int(_getting(found, "MonitoringInterval") or 0)
        # The role in use: with monitoring off, RDS may still name the last one, which carries nothing.
        return {
            "MonitoringInterval": interval,
            "MonitoringRoleArn": found.get("MonitoringRoleArn") if interval else None,
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        interval, required = state["MonitoringInterval"], self.params.get("required_interval_seconds")
        if required is None:  # any interval passes
            return {} if interval else {"MonitoringInterval": self.params["interval_seconds"]}
        return {} if interval == required else {"MonitoringInterval": required}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        if state["MonitoringRoleArn"]:  # sending no role keeps it, and passes none
            INSTANCE.change(clients.rds, resource_id, **plan, ApplyImmediately=False)
            return
        role, fresh = self.ready_role(clients)
        with_new_role(
            lambda: INSTANCE.change(
                clients.rds, resource_id, **plan, MonitoringRoleArn=role["Arn"], ApplyImmediately=False
            ),
            fresh,
            answered(ROLE_REFUSALS, saying="ENHANCED_MONITORING"),
        )

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Put the interval back (0 turns monitoring off). The role stays: other instances share it."""
        INSTANCE.change(
            clients.rds, resource_id, MonitoringInterval=before["MonitoringInterval"], ApplyImmediately=False
        )
