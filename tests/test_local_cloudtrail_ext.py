"""The stand-in's CloudTrail event selectors, through boto3 as the product calls them."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from asr.local.cloudtrail_ext import DEFAULT_EVENT_SELECTOR


def client(endpoint: str, service: str, region: str = "us-east-1"):  # type: ignore[no-untyped-def]
    return boto3.client(service, endpoint_url=endpoint, region_name=region)


def make_trail(endpoint: str, name: str, multi_region: bool = False) -> str:
    client(endpoint, "s3").create_bucket(Bucket=f"{name}-logs")
    trail = client(endpoint, "cloudtrail").create_trail(
        Name=name, S3BucketName=f"{name}-logs", IsMultiRegionTrail=multi_region
    )
    return str(trail["TrailARN"])


def test_new_trail_logs_all_management_events_by_default(clean_aws: str) -> None:
    make_trail(clean_aws, "plain")
    selectors = client(clean_aws, "cloudtrail").get_event_selectors(TrailName="plain")
    assert selectors["EventSelectors"] == [DEFAULT_EVENT_SELECTOR]
    assert selectors.get("AdvancedEventSelectors", []) == []


def test_multi_region_trail_selectors_by_arn_from_another_region(clean_aws: str) -> None:
    arn = make_trail(clean_aws, "everywhere", multi_region=True)
    single = make_trail(clean_aws, "here-only")
    elsewhere = client(clean_aws, "cloudtrail", "eu-west-1")
    assert elsewhere.get_event_selectors(TrailName=arn)["TrailARN"] == arn
    with pytest.raises(ClientError) as raised:
        elsewhere.get_event_selectors(TrailName=single)
    assert raised.value.response["Error"]["Code"] == "TrailNotFoundException"
    with pytest.raises(ClientError):
        elsewhere.get_event_selectors(TrailName="everywhere")  # by name only in its home Region


def test_basic_selectors_replace_advanced_ones(clean_aws: str) -> None:
    make_trail(clean_aws, "switching")
    cloudtrail = client(clean_aws, "cloudtrail")
    advanced = [{"Name": "mgmt", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}]
    cloudtrail.put_event_selectors(TrailName="switching", AdvancedEventSelectors=advanced)
    assert cloudtrail.get_event_selectors(TrailName="switching")["EventSelectors"] == []
    basic = [{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}]
    cloudtrail.put_event_selectors(TrailName="switching", EventSelectors=basic)
    selectors = cloudtrail.get_event_selectors(TrailName="switching")
    assert [s["ReadWriteType"] for s in selectors["EventSelectors"]] == ["WriteOnly"]
    assert selectors.get("AdvancedEventSelectors", []) == []


def test_trails_asked_by_name_are_those_homed_in_the_region_asked(clean_aws: str) -> None:
    arn = make_trail(clean_aws, "everywhere", multi_region=True)
    make_trail(clean_aws, "here-only")
    home, elsewhere = client(clean_aws, "cloudtrail"), client(clean_aws, "cloudtrail", "eu-west-1")

    def names(cloudtrail, asked: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
        return [t["Name"] for t in cloudtrail.describe_trails(trailNameList=asked)["trailList"]]

    assert names(home, ["everywhere", "here-only"]) == ["everywhere", "here-only"]
    assert names(elsewhere, ["everywhere"]) == [], "by name only in its home Region"
    assert names(elsewhere, [arn]) == ["everywhere"]
    assert sorted(names(elsewhere, [])) == ["everywhere"]  # every trail the Region sees
