"""CloudFront misconfigurations: a distribution that answers its root URL from the origin's root."""

from __future__ import annotations

import uuid

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder

# CloudFront's managed CachingOptimized cache policy: a behaviour needs one (or legacy TTLs).
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"


@seeder("CloudFront.1")
def distribution_without_root_object(
    aws: AwsContext, control_id: str, account: str, region: str, n: int
) -> Seeded:
    """An S3-origin distribution with no default root object: CloudFront.1 checks S3 origins only."""
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
            "Comment": "asr seed: no default root object",
            "Enabled": True,
            "DefaultRootObject": "",
            "Origins": {"Quantity": 1, "Items": [origin]},
            "DefaultCacheBehavior": {
                "TargetOriginId": name,
                "ViewerProtocolPolicy": "redirect-to-https",
                "CachePolicyId": CACHING_OPTIMIZED,
            },
        }
    )["Distribution"]
    return Seeded(control_id, account, region, "AwsCloudFrontDistribution", distribution["ARN"], "HIGH")
