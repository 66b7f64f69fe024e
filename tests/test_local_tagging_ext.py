"""The stand-in's tagging API lists a bucket only from the Region the bucket is in, as AWS does."""

from __future__ import annotations

import boto3


def test_get_resources_lists_a_bucket_only_in_its_own_region(clean_aws: str) -> None:
    def client(service: str, region: str):  # type: ignore[no-untyped-def]
        return boto3.client(service, endpoint_url=clean_aws, region_name=region)

    s3 = client("s3", "us-east-1")
    s3.create_bucket(Bucket="home-east")
    s3.create_bucket(Bucket="home-west", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for bucket in ("home-east", "home-west"):
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "web"}]})
    arns = [f"arn:aws:s3:::{b}" for b in ("home-east", "home-west")]

    def listed(region: str) -> list[str]:
        found = client("resourcegroupstaggingapi", region).get_resources(ResourceARNList=arns)
        return [m["ResourceARN"] for m in found["ResourceTagMappingList"]]

    assert listed("us-east-1") == [arns[0]]
    assert listed("eu-west-1") == [arns[1]]
    assert listed("ap-south-1") == []
