"""The stand-in's Redshift extension: audit logging to S3 only to a bucket Redshift may write to."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from asr.local.redshift_ext import allowed

REGION = "eu-west-1"


def redshift_policy(*actions: str, principal: Any = None) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": principal or {"Service": "redshift.amazonaws.com"},
                    "Action": list(actions),
                    "Resource": ["arn:aws:s3:::logs", "arn:aws:s3:::logs/*"],
                }
            ],
        }
    )


@pytest.fixture
def clients(clean_aws: str) -> tuple[Any, Any]:
    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=clean_aws, region_name=REGION)

    redshift = client("redshift")
    redshift.create_cluster(
        ClusterIdentifier="orders",
        ClusterType="single-node",
        NodeType="ra3.large",
        MasterUsername="admin",
        MasterUserPassword="Test-password-1",
    )
    return redshift, client("s3")


def refused(call: Any, code: str, message: str) -> None:
    with pytest.raises(ClientError) as error:
        call()
    assert error.value.response["Error"]["Code"] == code
    assert message in error.value.response["Error"]["Message"]


def logging_status(redshift: Any) -> dict[str, Any]:
    status = redshift.describe_logging_status(ClusterIdentifier="orders")
    return {key: status.get(key) for key in ("LoggingEnabled", "LogDestinationType", "BucketName")}


def test_a_missing_bucket_is_refused_and_nothing_changes(clients: tuple[Any, Any]) -> None:
    redshift, _ = clients
    for destination in ({"LogDestinationType": "s3"}, {}):
        refused(
            lambda d=destination: redshift.enable_logging(ClusterIdentifier="orders", BucketName="gone", **d),
            "BucketNotFoundFault",
            "gone",
        )
    assert logging_status(redshift)["LoggingEnabled"] is False


@pytest.mark.parametrize(
    "policy",
    [
        None,
        redshift_policy("s3:PutObject"),
        redshift_policy("s3:*", principal={"AWS": "arn:aws:iam::1:root"}),
    ],
    ids=["no-policy", "no-acl-read", "not-redshift"],
)
def test_a_bucket_redshift_may_not_write_to_is_refused(clients: tuple[Any, Any], policy: str | None) -> None:
    redshift, s3 = clients
    s3.create_bucket(Bucket="logs", CreateBucketConfiguration={"LocationConstraint": REGION})
    if policy:
        s3.put_bucket_policy(Bucket="logs", Policy=policy)
    refused(
        lambda: redshift.enable_logging(
            ClusterIdentifier="orders", LogDestinationType="s3", BucketName="logs"
        ),
        "InsufficientS3BucketPolicyFault",
        "logs",
    )
    assert logging_status(redshift)["LoggingEnabled"] is False


def test_a_bucket_redshift_may_write_to_takes_the_logs(clients: tuple[Any, Any]) -> None:
    redshift, s3 = clients
    s3.create_bucket(Bucket="logs", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_policy(Bucket="logs", Policy=redshift_policy("s3:PutObject", "s3:GetBucketAcl"))
    redshift.enable_logging(ClusterIdentifier="orders", LogDestinationType="s3", BucketName="logs")
    assert logging_status(redshift) == {
        "LoggingEnabled": True,
        "LogDestinationType": "s3",
        "BucketName": "logs",
    }


def test_cloudwatch_logs_and_a_missing_cluster_are_as_moto_has_them(clients: tuple[Any, Any]) -> None:
    redshift, _ = clients
    redshift.enable_logging(
        ClusterIdentifier="orders", LogDestinationType="cloudwatch", LogExports=["userlog"]
    )
    assert logging_status(redshift) == {
        "LoggingEnabled": True,
        "LogDestinationType": "cloudwatch",
        "BucketName": None,
    }
    refused(
        lambda: redshift.enable_logging(ClusterIdentifier="gone", BucketName="logs"),
        "ClusterNotFound",
        "gone",
    )


@pytest.mark.parametrize(
    ("actions", "principal", "granted"),
    [
        (["s3:PutObject", "s3:GetBucketAcl"], None, {"s3:PutObject", "s3:GetBucketAcl"}),
        (["s3:Put*"], None, {"s3:PutObject"}),
        (["S3:*"], None, {"s3:PutObject", "s3:GetBucketAcl"}),
        (["s3:*"], "*", {"s3:PutObject", "s3:GetBucketAcl"}),
        (
            ["s3:*"],
            {"Service": ["logging.s3.amazonaws.com", "redshift.amazonaws.com"]},
            {"s3:PutObject", "s3:GetBucketAcl"},
        ),
        (["s3:*"], {"Service": "logging.s3.amazonaws.com"}, set()),
    ],
)
def test_which_writes_a_policy_gives_redshift(actions: list[str], principal: Any, granted: set[str]) -> None:
    assert allowed(redshift_policy(*actions, principal=principal)) == granted


def test_a_deny_grants_nothing() -> None:
    policy = json.loads(redshift_policy("s3:*"))
    policy["Statement"][0]["Effect"] = "Deny"
    assert allowed(json.dumps(policy)) == set()
