"""The stand-in's S3 Block Public Access: a public bucket policy refused as S3 refuses it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from asr.local import MEMBER_ACCOUNT

BUCKET = "asr-ext-public-policy"
PUBLIC = {"Sid": "Everyone", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}
NO_TLS = {
    "Sid": "Tls",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": f"arn:aws:s3:::{BUCKET}/*",
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
BLOCK_POLICY = {
    "BlockPublicAcls": False,
    "IgnorePublicAcls": False,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": False,
}


@pytest.fixture
def s3(aws: Any) -> Any:
    client = aws.client("s3", MEMBER_ACCOUNT, "us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{**s, "Resource": f"arn:aws:s3:::{BUCKET}/*"} for s in statements],
        }
    )


def refused(s3: Any, document: str) -> bool:
    try:
        s3.put_bucket_policy(Bucket=BUCKET, Policy=document)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "AccessDenied"
        assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        return True
    return False


def test_a_public_policy_stays_but_cannot_be_written_again_once_the_bucket_blocks_it(s3: Any) -> None:
    assert not refused(s3, policy(PUBLIC))
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration=BLOCK_POLICY)
    assert json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"][0]["Sid"] == "Everyone"
    assert refused(s3, policy(PUBLIC, NO_TLS)), "a Deny added does not make it private"
    assert not refused(s3, policy(NO_TLS)), "without the public grant it is written"
    s3.put_public_access_block(
        Bucket=BUCKET, PublicAccessBlockConfiguration={**BLOCK_POLICY, "BlockPublicPolicy": False}
    )
    assert not refused(s3, policy(PUBLIC))


def test_the_account_s_setting_blocks_too(s3: Any, aws: Any) -> None:
    control = aws.client("s3control", MEMBER_ACCOUNT, "us-east-1")
    control.put_public_access_block(AccountId=MEMBER_ACCOUNT, PublicAccessBlockConfiguration=BLOCK_POLICY)
    assert refused(s3, policy(PUBLIC))
    assert not refused(s3, policy({**PUBLIC, "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1"}}}))
    control.delete_public_access_block(AccountId=MEMBER_ACCOUNT)
    assert not refused(s3, policy(PUBLIC))
