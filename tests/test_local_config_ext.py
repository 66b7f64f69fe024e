"""The stand-in's AWS Config extension: a recorder's recording mode reads back as put."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

ROLE = "arn:aws:iam::123456789012:role/config-recorder"
DAILY = {
    "recordingFrequency": "DAILY",
    "recordingModeOverrides": [
        {"resourceTypes": ["AWS::EC2::Instance"], "recordingFrequency": "CONTINUOUS", "description": "hosts"}
    ],
}


@pytest.fixture
def config(clean_aws: str):  # type: ignore[no-untyped-def]
    return boto3.client("config", endpoint_url=clean_aws, region_name="us-east-1")


def put_and_describe(config: Any, **mode: Any) -> dict[str, Any]:
    recorder = {"name": "main", "roleARN": ROLE, "recordingGroup": {"allSupported": True}, **mode}
    config.put_configuration_recorder(ConfigurationRecorder=recorder)
    [found] = config.describe_configuration_recorders()["ConfigurationRecorders"]
    return dict(found)


def test_a_recording_mode_reads_back_as_put_and_a_put_without_one_records_continuously(config) -> None:
    assert put_and_describe(config, recordingMode=DAILY)["recordingMode"] == DAILY
    continuous = {"recordingFrequency": "CONTINUOUS", "recordingModeOverrides": []}
    assert put_and_describe(config)["recordingMode"] == continuous
