"""CloudTrail misconfigurations."""

from __future__ import annotations

import uuid

from asr.actions.s3 import BLOCK_FLAGS, create_bucket
from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder

SEVERITY = {"CloudTrail.1": "HIGH", "CloudTrail.2": "MEDIUM", "CloudTrail.3": "HIGH"}


def plain_trail(aws: AwsContext, account: str, region: str, n: int) -> str:
    """A single-Region trail with every optional protection off; returns its ARN."""
    name = f"asr-seed-trail-{n}-{uuid.uuid4().hex[:6]}"
    create_bucket(aws.client("s3", account, region), name, region)
    return str(
        aws.client("cloudtrail", account, region).create_trail(Name=name, S3BucketName=name)["TrailARN"]
    )


@seeder("CloudTrail.1", "CloudTrail.3")
def no_multi_region_logging_trail(
    aws: AwsContext, control_id: str, account: str, region: str, n: int
) -> Seeded:
    """Logging only in this Region (CloudTrail.1), or not at all (CloudTrail.3)."""
    cloudtrail = aws.client("cloudtrail", account, region)
    for trail in cloudtrail.describe_trails(includeShadowTrails=True)["trailList"]:
        if trail.get("IsMultiRegionTrail") or control_id == "CloudTrail.3":
            home = aws.client("cloudtrail", account, trail.get("HomeRegion", region))
            home.stop_logging(Name=trail["TrailARN"])
    regional = plain_trail(aws, account, region, n)
    if control_id == "CloudTrail.1":
        cloudtrail.start_logging(Name=regional)
    return Seeded(
        control_id, account, region, "AwsAccount", f"AWS::::Account:{account}", SEVERITY[control_id]
    )


@seeder("CloudTrail.2", "CloudTrail.4", "CloudTrail.5")
def unprotected_trail(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """No SSE-KMS (CloudTrail.2), no log file validation (.4), no CloudWatch Logs (.5)."""
    arn = plain_trail(aws, account, region, n)
    return Seeded(control_id, account, region, "AwsCloudTrailTrail", arn, SEVERITY.get(control_id, "LOW"))


@seeder("CloudTrail.6")
def trail_bucket_public_access_open(
    aws: AwsContext, control_id: str, account: str, region: str, n: int
) -> Seeded:
    """A trail's log bucket with all four Block Public Access settings off."""
    cloudtrail = aws.client("cloudtrail", account, region)
    bucket = cloudtrail.get_trail(Name=plain_trail(aws, account, region, n))["Trail"]["S3BucketName"]
    aws.client("s3", account, region).put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration=dict.fromkeys(BLOCK_FLAGS, False)
    )
    return Seeded(control_id, account, region, "AwsS3Bucket", f"arn:aws:s3:::{bucket}", "CRITICAL")
