"""Redshift fixes: one setting of a provisioned cluster each, changed through ModifyCluster,
and the cluster's audit logging, which has calls of its own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from asr.actions import Action, register
from asr.actions.cloudtrail import BUCKET_TEMPLATE, log_bucket_name

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
    # Not a setting Redshift lists as pending: the cluster may read the old value while it is
    # ``modifying`` (AWS's own runbook waits for ``available`` before it checks).
    propagation_seconds = 300.0
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


LOG_TYPES = ("connectionlog", "userlog", "useractivitylog")
# Where DescribeLoggingStatus says a cluster logs to.
DESTINATION = ("LogDestinationType", "BucketName", "S3KeyPrefix", "LogExports")
# Redshift's refusals of an S3 bucket, and what the bucket lacks.
BUCKET_REFUSALS = {
    "BucketNotFoundFault": "it does not exist (this fix makes no bucket: create it in the cluster's Region)",
    "InsufficientS3BucketPolicyFault": (
        "its bucket policy does not let the service principal redshift.amazonaws.com "
        "s3:PutObject and s3:GetBucketAcl (this fix does not edit bucket policies)"
    ),
}


@register
class EnableAuditLogging(Action):
    """Turn on a Redshift cluster's audit logging, to CloudWatch Logs (by default) or to S3.

    Security Hub asks only that logging be on: a cluster that logs, to either destination
    and of any log types, is left alone. To CloudWatch Logs, Redshift's service-linked role
    makes the log groups (``/aws/redshift/cluster/<cluster>/<log type>``), so there is no
    bucket or bucket policy to make. To S3 (``destination: s3``), ``bucket_name``
    (``{account_id}`` and ``{region}`` filled in) must already exist in the cluster's Region
    with a policy that lets ``redshift.amazonaws.com`` PutObject and GetBucketAcl: the fix
    makes no bucket and edits no policy, and reports Redshift's refusal naming the bucket.

    ``useractivitylog`` is not exported by default: it records nothing until the cluster's
    parameter group turns on ``enable_user_activity_logging``, a static parameter that
    takes a reboot, which this fix does not do.

        remediation:
          action: redshift.enable-audit-logging
          parameters: {destination: s3, bucket_name: "audit-logs-{account_id}-{region}", prefix: redshift/}
    """

    name = "redshift.enable-audit-logging"
    service = "redshift"
    permissions = ("redshift:DescribeLoggingStatus", "redshift:EnableLogging")
    revert_permissions = ("redshift:DisableLogging",)
    summary = "enabled audit logging on the Redshift cluster, to {destination}"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "destination": {"enum": ["cloudwatch", "s3"], "default": "cloudwatch"},
            "bucket_name": {
                **BUCKET_TEMPLATE,
                "description": "with s3: an existing bucket Redshift may write to",
            },
            "prefix": {"type": "string", "pattern": r"^[A-Za-z0-9_.:/=+@-]{1,512}$"},
            "log_exports": {
                "type": "array",
                "items": {"enum": list(LOG_TYPES)},
                "minItems": 1,
                "uniqueItems": True,
                "default": ["connectionlog", "userlog"],
            },
        },
        "allOf": [
            # A bucket only makes sense with S3: refuse it with CloudWatch Logs instead of ignoring it.
            {
                "if": {"anyOf": [{"required": ["bucket_name"]}, {"required": ["prefix"]}]},
                "then": {"properties": {"destination": {"const": "s3"}}, "required": ["destination"]},
            },
            {
                "if": {"properties": {"destination": {"const": "s3"}}, "required": ["destination"]},
                "then": {"required": ["bucket_name"]},
            },
        ],
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        status = clients.redshift.describe_logging_status(ClusterIdentifier=resource_id)
        on = bool(status.get("LoggingEnabled"))
        # After logging stops, Redshift may still name where it went: that is not where it goes.
        return {
            "LoggingEnabled": on,
            **{key: (status.get(key) or None) if on else None for key in DESTINATION},
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        if state["LoggingEnabled"]:
            return {}
        return {"LoggingEnabled": True, "LogDestinationType": self.params["destination"]}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        exports = list(self.params["log_exports"])
        if self.params["destination"] == "cloudwatch":
            clients.redshift.enable_logging(
                ClusterIdentifier=resource_id, LogDestinationType="cloudwatch", LogExports=exports
            )
            return
        bucket = log_bucket_name(self.params["bucket_name"], clients.account_id, clients.region)
        prefix = {"S3KeyPrefix": self.params["prefix"]} if self.params.get("prefix") else {}
        try:
            clients.redshift.enable_logging(
                ClusterIdentifier=resource_id,
                LogDestinationType="s3",
                BucketName=bucket,
                LogExports=exports,
                **prefix,
            )
        except ClientError as exc:
            lacking = BUCKET_REFUSALS.get(exc.response.get("Error", {}).get("Code", ""))
            if lacking is None:
                raise
            raise ValueError(
                f"Redshift cannot write cluster {resource_id}'s audit logs to S3 bucket {bucket}: {lacking}. "
                "Not changed"
            ) from exc

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Stop the logging the fix started (it only starts it where there was none). The logs
        delivered meanwhile stay, in their log groups or bucket."""
        clients.redshift.disable_logging(ClusterIdentifier=resource_id)
