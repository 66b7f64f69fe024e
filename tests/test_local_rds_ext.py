"""The stand-in's RDS extension: changes that need a restart wait for the maintenance window;
snapshot copies take time, snapshots of other makers, cluster snapshot copies refuse a key."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from asr.local.rds_ext import COPY_STATUS_TAG, DELETING_TAG, SNAPSHOT_TYPE_TAG


@pytest.fixture
def rds(clean_aws: str):  # type: ignore[no-untyped-def]
    client = boto3.client("rds", endpoint_url=clean_aws, region_name="us-east-1")
    client.create_db_instance(
        DBInstanceIdentifier="orders",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="admin",
        MasterUserPassword="test-password-1",
    )
    return client


def described(rds: Any) -> dict[str, Any]:
    return dict(rds.describe_db_instances(DBInstanceIdentifier="orders")["DBInstances"][0])


def test_a_change_for_the_window_is_pending_until_a_call_applies_immediately(rds: Any) -> None:
    rds.modify_db_instance(
        DBInstanceIdentifier="orders", DBInstanceClass="db.m5.large", ApplyImmediately=False
    )
    rds.modify_db_instance(DBInstanceIdentifier="orders", PubliclyAccessible=False)  # not a window setting
    now = described(rds)
    assert now["DBInstanceClass"] == "db.t3.micro"
    assert now["PendingModifiedValues"] == {"DBInstanceClass": "db.m5.large"}
    assert now["PubliclyAccessible"] is False

    rds.modify_db_instance(DBInstanceIdentifier="orders", MultiAZ=True, ApplyImmediately=True)
    now = described(rds)
    assert (now["DBInstanceClass"], now["MultiAZ"]) == ("db.m5.large", True), "the queued change went too"
    assert not now.get("PendingModifiedValues")


def snapshot_of_orders(rds: Any, name: str, **tags: str) -> dict[str, Any]:
    return dict(
        rds.create_db_snapshot(
            DBInstanceIdentifier="orders",
            DBSnapshotIdentifier=name,
            Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
        )["DBSnapshot"]
    )


def status(rds: Any, name: str) -> str:
    return str(rds.describe_db_snapshots(DBSnapshotIdentifier=name)["DBSnapshots"][0]["Status"])


def test_a_copy_reads_in_the_status_its_tag_names_until_the_tag_goes(rds: Any) -> None:
    source = snapshot_of_orders(rds, "nightly", **{COPY_STATUS_TAG: "creating"})
    assert source["Status"] == "available", "no copy: the tag does not count"
    copy = rds.copy_db_snapshot(
        SourceDBSnapshotIdentifier="nightly", TargetDBSnapshotIdentifier="nightly-copy", CopyTags=True
    )["DBSnapshot"]
    assert (copy["Status"], status(rds, "nightly-copy"), status(rds, "nightly")) == (
        "creating",
        "creating",
        "available",
    )
    rds.remove_tags_from_resource(ResourceName=copy["DBSnapshotArn"], TagKeys=[COPY_STATUS_TAG])
    assert status(rds, "nightly-copy") == "available"


def test_a_snapshot_tagged_so_stays_listed_deleting_once_deleted(rds: Any) -> None:
    """AWS lists a snapshot it deletes for a while; moto dropped it at once."""
    snapshot_of_orders(rds, "lingering", **{DELETING_TAG: "yes"})
    snapshot_of_orders(rds, "plain")
    for name in ("lingering", "plain"):
        rds.delete_db_snapshot(DBSnapshotIdentifier=name)
    assert status(rds, "lingering") == "deleting"
    with pytest.raises(rds.exceptions.DBSnapshotNotFoundFault):
        status(rds, "plain")


def test_a_snapshot_reads_as_of_the_type_its_tag_names(rds: Any) -> None:
    """moto lists only automated and manual snapshots unless asked for another type, by name too."""
    snapshot_of_orders(rds, "backup-point", **{SNAPSHOT_TYPE_TAG: "awsbackup"})
    with pytest.raises(rds.exceptions.DBSnapshotNotFoundFault):
        rds.describe_db_snapshots(DBSnapshotIdentifier="backup-point")
    [found] = rds.describe_db_snapshots(DBSnapshotIdentifier="backup-point", SnapshotType="awsbackup")[
        "DBSnapshots"
    ]
    assert found["SnapshotType"] == "awsbackup"


def test_an_unencrypted_cluster_snapshot_is_not_copied_encrypted(clean_aws: str) -> None:
    """AWS: "If you copy an unencrypted DB cluster snapshot and specify a value for the KmsKeyId
    parameter, an error is returned." moto made an encrypted copy."""
    rds = boto3.client("rds", endpoint_url=clean_aws, region_name="us-east-1")
    for name, encrypted in (("ledger", False), ("vault", True)):
        rds.create_db_cluster(
            DBClusterIdentifier=name,
            Engine="aurora-postgresql",
            MasterUsername="admin",
            MasterUserPassword="test-password-1",
            StorageEncrypted=encrypted,
        )
        rds.create_db_cluster_snapshot(
            DBClusterIdentifier=name, DBClusterSnapshotIdentifier=f"{name}-nightly"
        )
    with pytest.raises(ClientError, match="InvalidParameterCombination"):
        rds.copy_db_cluster_snapshot(
            SourceDBClusterSnapshotIdentifier="ledger-nightly",
            TargetDBClusterSnapshotIdentifier="ledger-encrypted",
            KmsKeyId="alias/aws/rds",
        )
    plain = rds.copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier="ledger-nightly", TargetDBClusterSnapshotIdentifier="ledger-copy"
    )["DBClusterSnapshot"]
    assert plain["StorageEncrypted"] is False
    rekeyed = rds.copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier="vault-nightly",
        TargetDBClusterSnapshotIdentifier="vault-rekeyed",
        KmsKeyId="alias/aws/rds",
    )["DBClusterSnapshot"]
    assert rekeyed["StorageEncrypted"] is True
