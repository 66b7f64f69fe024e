"""Redshift misconfigurations: a cluster wrong in the one setting its control checks."""

from __future__ import annotations

import uuid
from typing import Any

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder

# Each cluster starts from settings every control accepts, so its finding is its control's alone.
COMPLIANT: dict[str, Any] = {
    "PubliclyAccessible": False,
    "AllowVersionUpgrade": True,
    "AutomatedSnapshotRetentionPeriod": 7,
}
# A new cluster does not log; the clusters of the other controls are made to (Redshift.4).
LOGGING: dict[str, Any] = {"LogDestinationType": "cloudwatch", "LogExports": ["connectionlog", "userlog"]}
# control -> (the setting that breaks it, the control's severity)
SETTINGS: dict[str, tuple[dict[str, Any], str]] = {
    "Redshift.1": ({"PubliclyAccessible": True}, "CRITICAL"),
    # A day is valid for every node type, and below the control's default minimum of 7.
    "Redshift.3": ({"AutomatedSnapshotRetentionPeriod": 1}, "MEDIUM"),
    "Redshift.4": ({}, "MEDIUM"),  # audit logging left off, as a new cluster has it
    "Redshift.6": ({"AllowVersionUpgrade": False}, "MEDIUM"),
}


@seeder(*SETTINGS)
def misconfigured_cluster(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    settings, severity = SETTINGS[control_id]
    redshift = aws.client("redshift", account, region)
    name = f"asr-seed-cluster-{n}-{uuid.uuid4().hex[:6]}"
    redshift.create_cluster(
        ClusterIdentifier=name,
        ClusterType="single-node",
        NodeType="ra3.large",
        MasterUsername="seed",
        MasterUserPassword="Seed-password-1",
        **{**COMPLIANT, **settings},
    )
    if control_id != "Redshift.4":
        redshift.enable_logging(ClusterIdentifier=name, **LOGGING)
    # moto's CreateCluster answers without ClusterNamespaceArn; the finding names the cluster ARN.
    arn = f"arn:{redshift.meta.partition}:redshift:{region}:{account}:cluster:{name}"
    return Seeded(control_id, account, region, "AwsRedshiftCluster", arn, severity)
