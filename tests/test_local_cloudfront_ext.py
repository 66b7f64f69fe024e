"""The stand-in's CloudFront extension: updates guarded by the ETag, origins answered as sent."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

ORIGINS = {
    "Quantity": 2,
    "Items": [
        {
            "Id": "site",
            "DomainName": "site.s3.us-east-1.amazonaws.com",
            "S3OriginConfig": {"OriginAccessIdentity": ""},
            "OriginAccessControlId": "E1OACEXAMPLE",
        },
        {
            "Id": "app",
            "DomainName": "app.example.com",
            "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"},
        },
    ],
}


@pytest.fixture
def cloudfront(clean_aws: str) -> Any:
    return boto3.client("cloudfront", endpoint_url=clean_aws, region_name="us-east-1")


@pytest.fixture
def distribution_id(cloudfront: Any) -> str:
    config = {
        "CallerReference": "shop",
        "Comment": "shop",
        "Enabled": True,
        "Origins": ORIGINS,
        "DefaultCacheBehavior": {
            "TargetOriginId": "site",
            "ViewerProtocolPolicy": "redirect-to-https",
            "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
        },
    }
    return str(cloudfront.create_distribution(DistributionConfig=config)["Distribution"]["Id"])


def test_an_update_needs_the_current_etag_and_gives_a_new_one(cloudfront: Any, distribution_id: str) -> None:
    answer = cloudfront.get_distribution_config(Id=distribution_id)
    config, first = answer["DistributionConfig"], answer["ETag"]
    assert cloudfront.get_distribution(Id=distribution_id)["ETag"] == first

    updated = cloudfront.update_distribution(
        Id=distribution_id, IfMatch=first, DistributionConfig={**config, "Comment": "one"}
    )
    second = updated["ETag"]
    assert second != first
    assert cloudfront.get_distribution_config(Id=distribution_id)["ETag"] == second
    assert cloudfront.get_distribution(Id=distribution_id)["ETag"] == second

    with pytest.raises(cloudfront.exceptions.PreconditionFailed) as refused:
        cloudfront.update_distribution(
            Id=distribution_id, IfMatch=first, DistributionConfig={**config, "Comment": "stale"}
        )
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    answer = cloudfront.get_distribution_config(Id=distribution_id)
    assert (answer["DistributionConfig"]["Comment"], answer["ETag"]) == ("one", second), "nothing changed"


def test_an_update_without_an_etag_is_still_refused(cloudfront: Any, distribution_id: str) -> None:
    config = cloudfront.get_distribution_config(Id=distribution_id)["DistributionConfig"]
    with pytest.raises(cloudfront.exceptions.InvalidIfMatchVersion):
        cloudfront.update_distribution(Id=distribution_id, IfMatch="", DistributionConfig=config)


def test_origins_are_answered_as_sent_and_kept_by_an_update(cloudfront: Any, distribution_id: str) -> None:
    answer = cloudfront.get_distribution_config(Id=distribution_id)
    site, app = answer["DistributionConfig"]["Origins"]["Items"]
    assert site["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert site["OriginAccessControlId"] == "E1OACEXAMPLE"
    assert "S3OriginConfig" not in app and "OriginAccessControlId" not in app
    cloudfront.update_distribution(
        Id=distribution_id, IfMatch=answer["ETag"], DistributionConfig=answer["DistributionConfig"]
    )
    again = cloudfront.get_distribution_config(Id=distribution_id)["DistributionConfig"]
    assert again == answer["DistributionConfig"]
