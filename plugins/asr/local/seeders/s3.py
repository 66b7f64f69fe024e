"""S3 misconfigurations."""

from __future__ import annotations

import json
import uuid
from typing import Any

from asr.actions.s3 import BLOCK_FLAGS
from asr.aws import AwsContext
from asr.local.seeders import Seeded, account_resource, seeder


@seeder("S3.1")
def account_public_access_open(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    aws.client("s3control", account, region).put_public_access_block(
        AccountId=account,
        PublicAccessBlockConfiguration=dict.fromkeys(BLOCK_FLAGS, False),
    )
    return account_resource(control_id, account, region)


# Severity Security Hub gives each bucket control.
BUCKET_SEVERITY = {
    "S3.2": "CRITICAL",
    "S3.3": "CRITICAL",
    "S3.8": "HIGH",
    "S3.4": "MEDIUM",
    "S3.5": "MEDIUM",
    "S3.6": "HIGH",
    "S3.9": "MEDIUM",
    "CloudTrail.7": "LOW",
    "S3.11": "MEDIUM",
    "S3.13": "LOW",
}
OTHER_ACCOUNT = "999999999999"


def new_bucket(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> tuple[Any, str]:
    """A fresh bucket with a unique name; moto, unlike AWS today, creates it without default
    encryption and without Block Public Access, which the seeders below rely on."""
    s3 = aws.client("s3", account, region)
    name = f"asr-seed-{control_id.lower().replace('.', '-')}-{n}-{uuid.uuid4().hex[:8]}"
    create: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**create)
    return s3, name


def bucket_resource(control_id: str, account: str, region: str, name: str) -> Seeded:
    return Seeded(
        control_id, account, region, "AwsS3Bucket", f"arn:aws:s3:::{name}", BUCKET_SEVERITY[control_id]
    )


def put_policy(s3: Any, name: str, *statements: dict[str, Any]) -> None:
    s3.put_bucket_policy(
        Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    )


@seeder("S3.2", "S3.3", "S3.8")
def bucket_public_access_open(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    s3, name = new_bucket(aws, control_id, account, region, n)
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=dict.fromkeys(BLOCK_FLAGS, False))
    return bucket_resource(control_id, account, region, name)


@seeder("S3.4", "S3.9", "CloudTrail.7", "S3.11", "S3.13")
def plain_bucket(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """No default encryption, no access logging, no event notifications, no lifecycle: moto's
    new bucket as it comes."""
    _, name = new_bucket(aws, control_id, account, region, n)
    return bucket_resource(control_id, account, region, name)


@seeder("S3.5")
def bucket_allowing_plain_http(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A policy with a statement of its own (that the fix must keep) but no TLS requirement."""
    s3, name = new_bucket(aws, control_id, account, region, n)
    put_policy(
        s3,
        name,
        {
            "Sid": "OwnAccountReads",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{name}/*",
        },
    )
    return bucket_resource(control_id, account, region, name)


@seeder("S3.6")
def bucket_open_to_other_account(
    aws: AwsContext, control_id: str, account: str, region: str, n: int
) -> Seeded:
    """Another account may read objects and also rewrite their ACLs and the bucket's policy."""
    s3, name = new_bucket(aws, control_id, account, region, n)
    put_policy(
        s3,
        name,
        {
            "Sid": "PartnerAccess",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
            "Action": ["s3:GetObject", "s3:PutObjectAcl", "s3:PutBucketPolicy"],
            "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
        },
    )
    return bucket_resource(control_id, account, region, name)
