"""S3 misconfigurations."""

from __future__ import annotations

from asr.aws import AwsContext
from asr.local.seeders import Seeded, account_resource, seeder


@seeder("S3.1")
def account_public_access_open(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    aws.client("s3control", account, region).put_public_access_block(
        AccountId=account,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": False,
            "IgnorePublicAcls": False,
            "BlockPublicPolicy": False,
            "RestrictPublicBuckets": False,
        },
    )
    return account_resource(control_id, account, region)
