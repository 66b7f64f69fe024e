"""The stand-in's RDS extension: changes that need a restart wait for the maintenance window."""

from __future__ import annotations

from typing import Any

import boto3
import pytest


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
