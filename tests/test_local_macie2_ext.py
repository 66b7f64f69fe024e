"""The stand-in's Macie extension: off until enabled, as in AWS, and UpdateMacieSession."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def macie(clean_aws: str) -> Any:
    return boto3.client("macie2", endpoint_url=clean_aws, region_name="eu-west-1")


def test_macie_is_off_until_enabled_and_says_so_as_aws_does(macie: Any) -> None:
    for call in (macie.get_macie_session, lambda: macie.update_macie_session(status="ENABLED")):
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
        assert "Macie is not enabled" in refused.value.response["Error"]["Message"]
    macie.enable_macie()
    assert macie.get_macie_session()["status"] == "ENABLED"


def test_a_session_is_paused_and_resumed_keeping_its_other_settings(macie: Any) -> None:
    macie.enable_macie(findingPublishingFrequency="ONE_HOUR")
    created = macie.get_macie_session()["createdAt"]
    macie.update_macie_session(status="PAUSED")
    paused = macie.get_macie_session()
    assert (paused["status"], paused["findingPublishingFrequency"]) == ("PAUSED", "ONE_HOUR")
    macie.update_macie_session(status="ENABLED", findingPublishingFrequency="SIX_HOURS")
    resumed = macie.get_macie_session()
    assert (resumed["status"], resumed["findingPublishingFrequency"]) == ("ENABLED", "SIX_HOURS")
    assert resumed["createdAt"] == created
