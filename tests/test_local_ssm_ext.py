"""The stand-in's SSM Automation idempotency (asr.local.ssm_ext), exercised through boto3."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

TOKEN = "5b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


@pytest.fixture
def ssm(clean_aws: str):  # type: ignore[no-untyped-def]
    return boto3.client("ssm", endpoint_url=clean_aws, region_name="us-east-1")


def start(ssm: Any, group: str = "sg-1", **extra: Any) -> str:
    """Start Doc-Under-Test on ``group``; the execution's id."""
    parameters = {"GroupId": [group]}
    return ssm.start_automation_execution(DocumentName="Doc-Under-Test", Parameters=parameters, **extra)[
        "AutomationExecutionId"
    ]


def refused(call: Any) -> dict[str, Any]:
    """The error SSM answers the call with."""
    with pytest.raises(ClientError) as refusal:
        call()
    return refusal.value.response["Error"]


def executions(ssm: Any) -> list[str]:
    return [
        e["AutomationExecutionId"]
        for e in ssm.describe_automation_executions()["AutomationExecutionMetadataList"]
    ]


def test_a_start_sent_again_with_its_token_answers_the_first_execution(ssm) -> None:
    first = start(ssm, ClientToken=TOKEN)
    assert start(ssm, ClientToken=TOKEN) == first
    assert start(ssm, ClientToken=TOKEN.upper()) == first, "SSM compares tokens without case"
    assert executions(ssm) == [first]

    ssm.get_automation_execution(AutomationExecutionId=first)  # it ends (Success on the first poll)
    assert start(ssm, ClientToken=TOKEN) == first, "whatever its status now"
    assert executions(ssm) == [first]


def test_a_token_sent_with_other_parameters_is_a_mismatch(ssm) -> None:
    first = start(ssm, ClientToken=TOKEN)
    for other in (
        lambda: start(ssm, "sg-2", ClientToken=TOKEN),  # another resource
        lambda: start(ssm, ClientToken=TOKEN, DocumentVersion="2"),
        lambda: ssm.start_automation_execution(DocumentName="Other-Doc", ClientToken=TOKEN),
    ):
        assert refused(other)["Code"] == "IdempotentParameterMismatch"
    assert executions(ssm) == [first]


def test_tokens_are_kept_per_region_and_starts_without_one_are_new(ssm, clean_aws: str) -> None:
    first = start(ssm, ClientToken=TOKEN)
    elsewhere = boto3.client("ssm", endpoint_url=clean_aws, region_name="eu-west-1")
    assert start(elsewhere, ClientToken=TOKEN) != first
    assert start(ssm) != start(ssm)
    assert len(executions(ssm)) == 3


def test_a_token_that_is_not_a_uuid_is_refused(ssm) -> None:
    assert refused(lambda: start(ssm, ClientToken="x" * 36))["Code"] == "ValidationException"
    assert executions(ssm) == []
