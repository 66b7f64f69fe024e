"""The stand-in's GuardDuty tags: TagResource, UntagResource and ListTagsForResource on
detectors and filters, as AWS answers them."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"
REGION = "eu-west-1"
CRITERIA = {"Criterion": {"severity": {"Gte": 4}}}


@pytest.fixture
def guardduty(clean_aws: str) -> Any:
    return boto3.client("guardduty", endpoint_url=clean_aws, region_name=REGION)


def detector_arn(detector_id: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:guardduty:{region}:{account}:detector/{detector_id}"


def refusal(call: Any, **kwargs: Any) -> dict[str, str]:
    with pytest.raises(ClientError) as refused:
        call(**kwargs)
    return dict(refused.value.response["Error"])


def test_a_detector_keeps_the_tags_it_was_made_with_and_takes_more(guardduty: Any) -> None:
    made = {"team": "security", "env": "prod"}
    detector = guardduty.create_detector(Enable=True, Tags=made)["DetectorId"]
    arn = detector_arn(detector)
    assert guardduty.list_tags_for_resource(ResourceArn=arn)["Tags"] == made
    guardduty.tag_resource(ResourceArn=arn, Tags={"Owner": "unassigned", "team": "detection"})
    tags = {"team": "detection", "env": "prod", "Owner": "unassigned"}
    assert guardduty.list_tags_for_resource(ResourceArn=arn)["Tags"] == tags
    assert guardduty.get_detector(DetectorId=detector)["Tags"] == tags


def test_a_filter_has_tags_of_its_own(guardduty: Any) -> None:
    detector = guardduty.create_detector(Enable=True, Tags={"team": "security"})["DetectorId"]
    guardduty.create_filter(DetectorId=detector, Name="noisy", FindingCriteria=CRITERIA, Tags={"a": "1"})
    guardduty.create_filter(DetectorId=detector, Name="quiet", FindingCriteria=CRITERIA)
    noisy, quiet = (f"{detector_arn(detector)}/filter/{name}" for name in ("noisy", "quiet"))
    assert guardduty.list_tags_for_resource(ResourceArn=noisy)["Tags"] == {"a": "1"}
    assert guardduty.list_tags_for_resource(ResourceArn=quiet)["Tags"] == {}
    guardduty.tag_resource(ResourceArn=quiet, Tags={"Owner": "ops"})
    assert guardduty.get_filter(DetectorId=detector, FilterName="quiet")["Tags"] == {"Owner": "ops"}
    assert guardduty.get_filter(DetectorId=detector, FilterName="noisy")["Tags"] == {"a": "1"}
    assert guardduty.list_tags_for_resource(ResourceArn=detector_arn(detector))["Tags"] == {
        "team": "security"
    }


def test_untagging_removes_the_keys_named_and_ignores_others(guardduty: Any) -> None:
    detector = guardduty.create_detector(Enable=True, Tags={"a": "1", "b": "2", "c": "3"})["DetectorId"]
    arn = detector_arn(detector)
    guardduty.untag_resource(ResourceArn=arn, TagKeys=["a", "c", "never-there"])
    assert guardduty.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"b": "2"}


def test_a_resource_not_there_is_a_bad_request(guardduty: Any) -> None:
    detector = guardduty.create_detector(Enable=True)["DetectorId"]
    unknown = [
        detector_arn("0" * 32),
        f"{detector_arn(detector)}/filter/gone",
        detector_arn(detector, region="us-east-1"),
        detector_arn(detector, account="999999999999"),
        f"arn:aws:guardduty:{REGION}:{ACCOUNT}:publishing/{detector}",
    ]
    for arn in unknown:
        for call, kwargs in (
            (guardduty.list_tags_for_resource, {}),
            (guardduty.tag_resource, {"Tags": {"Owner": "ops"}}),
            (guardduty.untag_resource, {"TagKeys": ["Owner"]}),
        ):
            assert refusal(call, ResourceArn=arn, **kwargs)["Code"] == "BadRequestException", (arn, call)


def test_reserved_keys_and_more_than_fifty_tags_are_refused_and_nothing_changes(guardduty: Any) -> None:
    """AWS's own tags (a stack's, made with the detector) can be neither set nor removed, and do
    not count toward the 50."""
    stack = "aws:cloudformation:stack-name"
    made = {stack: "gd", **{f"k{n}": "v" for n in range(49)}}
    arn = detector_arn(guardduty.create_detector(Enable=True, Tags=made)["DetectorId"])
    refused = [
        refusal(guardduty.untag_resource, ResourceArn=arn, TagKeys=["k0", stack]),
        refusal(guardduty.tag_resource, ResourceArn=arn, Tags={"aws:owner": "x", "a": "1"}),
        refusal(guardduty.tag_resource, ResourceArn=arn, Tags={"a": "1", "b": "2"}),
    ]
    assert [error["Code"] for error in refused] == ["BadRequestException"] * 3
    assert stack in refused[0]["Message"] and "aws:owner" in refused[1]["Message"]
    assert "at most 50 tags; this would make 51" in refused[2]["Message"]
    assert guardduty.list_tags_for_resource(ResourceArn=arn)["Tags"] == made
    guardduty.tag_resource(ResourceArn=arn, Tags={"k0": "w", "a": "1"})  # one replaced, one more: 50
    assert guardduty.list_tags_for_resource(ResourceArn=arn)["Tags"] == {**made, "k0": "w", "a": "1"}
