"""RDS misconfigurations."""

from __future__ import annotations

import uuid
from typing import Any

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder


def _name(kind: str, n: int) -> str:
    return f"asr-seed-{kind}-{n}-{uuid.uuid4().hex[:6]}"


def _instance(aws: AwsContext, account: str, region: str, n: int, **settings: Any) -> dict[str, Any]:
    """A small PostgreSQL DB instance with the given settings."""
    return aws.client("rds", account, region).create_db_instance(
        DBInstanceIdentifier=_name("db", n),
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="seed",
        MasterUserPassword="seed-password-1",
        AllocatedStorage=20,
        **settings,
    )["DBInstance"]


def _cluster(aws: AwsContext, account: str, region: str, n: int, **settings: Any) -> dict[str, Any]:
    """An Aurora PostgreSQL DB cluster with the given settings."""
    return aws.client("rds", account, region).create_db_cluster(
        DBClusterIdentifier=_name("cluster", n),
        Engine="aurora-postgresql",
        MasterUsername="seed",
        MasterUserPassword="seed-password-1",
        **settings,
    )["DBCluster"]


# control -> (the setting that breaks it, the control's severity)
INSTANCE_SETTINGS: dict[str, tuple[dict[str, Any], str]] = {
    "RDS.5": ({"MultiAZ": False}, "MEDIUM"),
    "RDS.2": ({"PubliclyAccessible": True}, "CRITICAL"),
    "RDS.8": ({"DeletionProtection": False}, "LOW"),
    "RDS.13": ({"AutoMinorVersionUpgrade": False}, "HIGH"),
}
CLUSTER_SETTINGS: dict[str, tuple[dict[str, Any], str]] = {
    "RDS.7": ({"DeletionProtection": False}, "LOW"),
    "RDS.16": ({"CopyTagsToSnapshot": False}, "LOW"),
}


@seeder(*INSTANCE_SETTINGS)
def misconfigured_instance(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    settings, severity = INSTANCE_SETTINGS[control_id]
    instance = _instance(aws, account, region, n, **settings)
    return Seeded(control_id, account, region, "AwsRdsDbInstance", instance["DBInstanceArn"], severity)


@seeder(*CLUSTER_SETTINGS)
def misconfigured_cluster(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    settings, severity = CLUSTER_SETTINGS[control_id]
    cluster = _cluster(aws, account, region, n, **settings)
    return Seeded(control_id, account, region, "AwsRdsDbCluster", cluster["DBClusterArn"], severity)


def _manual_snapshot(aws: AwsContext, account: str, region: str, n: int) -> dict[str, Any]:
    """A manual snapshot of a new, unencrypted instance, with a tag of its own."""
    instance = _instance(aws, account, region, n)
    return aws.client("rds", account, region).create_db_snapshot(
        DBInstanceIdentifier=instance["DBInstanceIdentifier"],
        DBSnapshotIdentifier=_name("snapshot", n),
        Tags=[{"Key": "owner", "Value": "asr-seed"}],
    )["DBSnapshot"]


@seeder("RDS.1")
def public_snapshot(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    snapshot = _manual_snapshot(aws, account, region, n)
    aws.client("rds", account, region).modify_db_snapshot_attribute(
        DBSnapshotIdentifier=snapshot["DBSnapshotIdentifier"], AttributeName="restore", ValuesToAdd=["all"]
    )
    return Seeded(control_id, account, region, "AwsRdsDbSnapshot", snapshot["DBSnapshotArn"], "CRITICAL")


@seeder("RDS.4")
def unencrypted_snapshot(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """An unencrypted manual DB snapshot, private: the kind the fix copies and deletes. (No DB
    cluster snapshot: RDS cannot encrypt a copy of an unencrypted one, and the fix refuses it.)"""
    snapshot = _manual_snapshot(aws, account, region, n)
    return Seeded(control_id, account, region, "AwsRdsDbSnapshot", snapshot["DBSnapshotArn"], "MEDIUM")


@seeder("RDS.6")
def unmonitored_instance(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    instance = _instance(aws, account, region, n, MonitoringInterval=0)
    return Seeded(control_id, account, region, "AwsRdsDbInstance", instance["DBInstanceArn"], "LOW")
