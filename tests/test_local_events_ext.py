"""The stand-in's Security Hub custom actions and EventBridge matching, through boto3."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"  # moto's account for plain test credentials


@pytest.fixture
def securityhub(clean_aws: str) -> Any:
    return boto3.client("securityhub", endpoint_url=clean_aws, region_name="eu-west-1")


@pytest.fixture
def events(clean_aws: str) -> Any:
    return boto3.client("events", endpoint_url=clean_aws, region_name="us-east-1")


def error_code(raised: pytest.ExceptionInfo[ClientError]) -> str:
    return str(raised.value.response["Error"]["Code"])


# --- Security Hub custom actions ---------------------------------------------------------


def test_action_target_lifecycle(securityhub: Any) -> None:
    arn = securityhub.create_action_target(
        Name="Remediate with ASR", Description="fix it", Id="ASRRemediate"
    )["ActionTargetArn"]
    assert arn == f"arn:aws:securityhub:eu-west-1:{ACCOUNT}:action/custom/ASRRemediate"
    assert securityhub.describe_action_targets()["ActionTargets"] == [
        {"ActionTargetArn": arn, "Name": "Remediate with ASR", "Description": "fix it"}
    ]
    securityhub.update_action_target(ActionTargetArn=arn, Description="fix it now")
    (target,) = securityhub.describe_action_targets(ActionTargetArns=[arn])["ActionTargets"]
    assert (target["Name"], target["Description"]) == ("Remediate with ASR", "fix it now")
    assert securityhub.delete_action_target(ActionTargetArn=arn)["ActionTargetArn"] == arn
    assert securityhub.describe_action_targets()["ActionTargets"] == []


def test_action_targets_are_per_region(securityhub: Any, clean_aws: str) -> None:
    securityhub.create_action_target(Name="n", Description="d", Id="Here")
    elsewhere = boto3.client("securityhub", endpoint_url=clean_aws, region_name="us-east-1")
    assert elsewhere.describe_action_targets()["ActionTargets"] == []


def test_a_second_action_with_the_same_id_conflicts(securityhub: Any) -> None:
    securityhub.create_action_target(Name="n", Description="d", Id="Same")
    with pytest.raises(ClientError) as raised:
        securityhub.create_action_target(Name="other", Description="d", Id="Same")
    assert error_code(raised) == "ResourceConflictException"


@pytest.mark.parametrize(
    ("request_", "problem"),
    [
        ({"Name": "Remediate with ASR now", "Description": "d", "Id": "A"}, "Name"),
        ({"Name": "n", "Description": "d", "Id": "not-alphanumeric"}, "Id"),
        ({"Name": "n", "Description": "d", "Id": "A" * 21}, "Id"),
        ({"Name": "n", "Description": " ", "Id": "A"}, "Description"),
    ],
)
def test_invalid_action_targets_are_refused(securityhub: Any, request_: dict[str, str], problem: str) -> None:
    with pytest.raises(ClientError) as raised:
        securityhub.create_action_target(**request_)
    assert error_code(raised) == "InvalidInputException"
    assert problem in str(raised.value)


def test_unknown_action_targets_are_not_found(securityhub: Any) -> None:
    arn = f"arn:aws:securityhub:eu-west-1:{ACCOUNT}:action/custom/Nope"
    for call in (
        lambda: securityhub.describe_action_targets(ActionTargetArns=[arn]),
        lambda: securityhub.update_action_target(ActionTargetArn=arn, Name="x"),
        lambda: securityhub.delete_action_target(ActionTargetArn=arn),
    ):
        with pytest.raises(ClientError) as raised:
            call()
        assert error_code(raised) == "ResourceNotFoundException"


def test_action_targets_page_and_are_limited_to_fifty(securityhub: Any) -> None:
    for n in range(50):
        securityhub.create_action_target(Name=f"action {n}", Description="d", Id=f"A{n}")
    pages = list(
        securityhub.get_paginator("describe_action_targets").paginate(PaginationConfig={"PageSize": 20})
    )
    assert [len(p["ActionTargets"]) for p in pages] == [20, 20, 10]
    assert len({t["ActionTargetArn"] for p in pages for t in p["ActionTargets"]}) == 50
    with pytest.raises(ClientError) as raised:
        securityhub.create_action_target(Name="one too many", Description="d", Id="A50")
    assert error_code(raised) == "LimitExceededException"


# --- EventBridge patterns ------------------------------------------------------------------


def event(detail: dict[str, Any], resources: list[str] | None = None) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "e1",
        "detail-type": "Security Hub Findings - Imported",
        "source": "aws.securityhub",
        "account": ACCOUNT,
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": resources or [],
        "detail": detail,
    }


def finding(status: str, workflow: str, control: str = "EC2.7") -> dict[str, Any]:
    return {
        "Compliance": {"Status": status, "SecurityControlId": control},
        "Workflow": {"Status": workflow},
        "RecordState": "ACTIVE",
    }


FAILED_NEW = {
    "source": ["aws.securityhub"],
    "detail": {"findings": {"Compliance": {"Status": ["FAILED"]}, "Workflow": {"Status": ["NEW"]}}},
}


def matches(
    events: Any, pattern: dict[str, Any], detail: dict[str, Any], resources: list[str] | None = None
) -> bool:
    response = events.test_event_pattern(
        EventPattern=json.dumps(pattern), Event=json.dumps(event(detail, resources))
    )
    return bool(response["Result"])


@pytest.mark.parametrize(
    ("findings", "expected"),
    [
        ([finding("FAILED", "NEW")], True),
        ([finding("FAILED", "RESOLVED")], False),
        ([finding("PASSED", "NEW")], False),
        ([finding("PASSED", "RESOLVED"), finding("FAILED", "NEW")], True),
        # Status FAILED in one element and NEW in another is no match (array-consistent matching).
        ([finding("FAILED", "RESOLVED"), finding("PASSED", "NEW")], False),
        ([], False),
    ],
)
def test_patterns_match_inside_arrays_of_objects(events: Any, findings: list[dict], expected: bool) -> None:
    assert matches(events, FAILED_NEW, {"findings": findings}) is expected


def test_values_in_arrays_match_any_of_the_pattern(events: Any) -> None:
    pattern = {"detail": {"findings": {"Compliance": {"SecurityControlId": ["IAM.7", "EC2.7"]}}}}
    assert matches(events, pattern, {"findings": [finding("FAILED", "NEW", "EC2.7")]})
    assert not matches(events, pattern, {"findings": [finding("FAILED", "NEW", "EC2.13")]})
    scalars = {"resources": ["arn:b"], "detail": {"tags": ["x"]}}
    assert matches(events, scalars, {"tags": [["y"], ["x"]]}, resources=["arn:a", "arn:b"])
    assert not matches(events, scalars, {"tags": ["y"]}, resources=["arn:a", "arn:b"])


def test_named_filters_and_exists_apply_inside_arrays(events: Any) -> None:
    prefix = {"detail": {"findings": {"Compliance": {"SecurityControlId": [{"prefix": "IAM."}]}}}}
    assert matches(
        events, prefix, {"findings": [finding("FAILED", "NEW", "EC2.7"), finding("FAILED", "NEW", "IAM.7")]}
    )
    no_note = {"detail": {"findings": {"Note": {"Text": [{"exists": False}]}}}}
    assert matches(events, no_note, {"findings": [finding("FAILED", "NEW")]})
    assert not matches(
        events, no_note, {"findings": [{**finding("FAILED", "NEW"), "Note": {"Text": "seen"}}]}
    )
    either = {"detail": {"$or": [{"state": ["on"]}, {"findings": {"Workflow": {"Status": ["NEW"]}}}]}}
    assert matches(events, either, {"findings": [finding("FAILED", "NEW")]})
    assert not matches(events, either, {"state": "off", "findings": [finding("FAILED", "RESOLVED")]})


def test_test_event_pattern_refuses_an_incomplete_event_or_a_bad_pattern(events: Any) -> None:
    with pytest.raises(ClientError) as raised:
        events.test_event_pattern(EventPattern=json.dumps(FAILED_NEW), Event=json.dumps({"source": "x"}))
    assert error_code(raised) == "ValidationException"
    with pytest.raises(ClientError) as raised:
        events.test_event_pattern(EventPattern=json.dumps({"source": "x"}), Event=json.dumps(event({})))
    assert error_code(raised) == "InvalidEventPatternException"


def test_put_events_delivers_the_whole_event_to_sqs_only_when_it_matches(clean_aws: str, events: Any) -> None:
    sqs = boto3.client("sqs", endpoint_url=clean_aws, region_name="us-east-1")
    url = sqs.create_queue(QueueName="matched")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="failed-new", EventPattern=json.dumps(FAILED_NEW))
    events.put_targets(Rule="failed-new", Targets=[{"Id": "q", "Arn": arn}])
    entries = [
        {
            "Source": "aws.securityhub",
            "DetailType": "Security Hub Findings - Imported",
            "Resources": [f"finding-{workflow}"],
            "Detail": json.dumps({"findings": [finding("FAILED", workflow)]}),
        }
        for workflow in ("RESOLVED", "NEW")
    ]
    assert events.put_events(Entries=entries)["FailedEntryCount"] == 0
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    body = json.loads(messages[0]["Body"])
    assert body["resources"] == ["finding-NEW"]
    assert (body["source"], body["account"], body["region"]) == ("aws.securityhub", ACCOUNT, "us-east-1")
    assert body["detail"] == {"findings": [finding("FAILED", "NEW")]}
    assert set(body) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
