"""CloudFront misconfigurations: a distribution that answers its root URL from the origin's root,
and one whose S3 origin names a bucket that does not exist."""

from __future__ import annotations

import uuid
from typing import Any

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder

# CloudFront's managed CachingOptimized cache policy: a behaviour needs one (or legacy TTLs).
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"


def s3_distribution(
    aws: AwsContext, control_id: str, account: str, region: str, n: int, comment: str, **settings: Any
) -> Seeded:
    """A distribution with one S3 origin, whose bucket (named like the distribution) is not
    made, and ``settings`` over the defaults."""
    cloudfront = aws.client("cloudfront", account, region)
    name = f"asr-seed-site-{n}-{uuid.uuid4().hex[:6]}"
    origin = {
        "Id": name,
        "DomainName": f"{name}.s3.{region}.amazonaws.com",
        "S3OriginConfig": {"OriginAccessIdentity": ""},
    }
    distribution = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": name,
            "Comment": comment,
            "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [origin]},
            "DefaultCacheBehavior": {
                "TargetOriginId": name,
                "ViewerProtocolPolicy": "redirect-to-https",
                "CachePolicyId": CACHING_OPTIMIZED,
            },
            **settings,
        }
    )["Distribution"]
    return Seeded(control_id, account, region, "AwsCloudFrontDistribution", distribution["ARN"], "HIGH")


@seeder("CloudFront.1")
def distribution_without_root_object(
    aws: AwsContext, control_id: str, account: str, region: str, n: int
) -> Seeded:
    """An S3-origin distribution with no default root object: CloudFront.1 checks S3 origins only."""
    return s3_distribution(
        aws, control_id, account, region, n, "asr seed: no default root object", DefaultRootObject=""
    )


@seeder("CloudFront.12")
def distribution_of_a_missing_bucket(
    aws: AwsContext, control_id: str, account: str, region: str, n: int
) -> Seeded:
    """An S3 origin whose bucket nobody made: anyone may make it and serve through the distribution."""
    return s3_distribution(
        aws, control_id, account, region, n, "asr seed: origin bucket missing", DefaultRootObject="index.html"
    )
