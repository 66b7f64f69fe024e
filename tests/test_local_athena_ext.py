"""The stand-in's Athena extension: UpdateWorkGroup, and a missing workgroup refused as AWS does."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def athena(clean_aws: str) -> Any:
    return boto3.client("athena", endpoint_url=clean_aws, region_name="eu-west-1")


def work_group(athena: Any, name: str) -> dict[str, Any]:
    return dict(athena.get_work_group(WorkGroup=name)["WorkGroup"])


def refused(call: Any, message: str) -> None:
    with pytest.raises(ClientError) as error:
        call()
    assert error.value.response["Error"]["Code"] == "InvalidRequestException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert message in error.value.response["Error"]["Message"]


def test_metrics_are_turned_on_and_off_keeping_the_rest(athena: Any) -> None:
    athena.create_work_group(
        Name="reports",
        Description="monthly reports",
        Configuration={
            "ResultConfiguration": {"OutputLocation": "s3://reports-results/"},
            "EnforceWorkGroupConfiguration": True,
            "RequesterPaysEnabled": True,
            "BytesScannedCutoffPerQuery": 10_000_000_000,
        },
    )
    before = work_group(athena, "reports")
    assert before["Configuration"]["PublishCloudWatchMetricsEnabled"] is False

    athena.update_work_group(
        WorkGroup="reports", ConfigurationUpdates={"PublishCloudWatchMetricsEnabled": True}
    )
    after = work_group(athena, "reports")
    assert after["Configuration"] == {**before["Configuration"], "PublishCloudWatchMetricsEnabled": True}
    assert (after["State"], after["Description"]) == ("ENABLED", "monthly reports")

    athena.update_work_group(
        WorkGroup="reports", ConfigurationUpdates={"PublishCloudWatchMetricsEnabled": False}
    )
    assert work_group(athena, "reports")["Configuration"] == before["Configuration"]


def test_the_primary_workgroup_can_be_changed(athena: Any) -> None:
    """It exists in every account and Region, with metrics off in the stand-in."""
    assert work_group(athena, "primary")["Configuration"]["PublishCloudWatchMetricsEnabled"] is False
    athena.update_work_group(
        WorkGroup="primary", ConfigurationUpdates={"PublishCloudWatchMetricsEnabled": True}
    )
    assert work_group(athena, "primary")["Configuration"]["PublishCloudWatchMetricsEnabled"] is True


def test_a_disabled_workgroup_is_changed_and_stays_disabled(athena: Any) -> None:
    athena.create_work_group(Name="archive", Configuration={})
    athena.update_work_group(WorkGroup="archive", State="DISABLED", Description="kept for audits")
    listed = {group["Name"]: group["State"] for group in athena.list_work_groups()["WorkGroups"]}
    assert listed["archive"] == "DISABLED"

    athena.update_work_group(
        WorkGroup="archive", ConfigurationUpdates={"PublishCloudWatchMetricsEnabled": True}
    )
    group = work_group(athena, "archive")
    assert (group["State"], group["Description"]) == ("DISABLED", "kept for audits")
    assert group["Configuration"]["PublishCloudWatchMetricsEnabled"] is True
    athena.update_work_group(WorkGroup="archive", State="ENABLED")
    assert work_group(athena, "archive")["State"] == "ENABLED"


def test_a_missing_workgroup_is_not_found(athena: Any) -> None:
    refused(lambda: athena.get_work_group(WorkGroup="gone"), "WorkGroup gone is not found.")
    refused(
        lambda: athena.update_work_group(
            WorkGroup="gone", ConfigurationUpdates={"PublishCloudWatchMetricsEnabled": True}
        ),
        "WorkGroup gone is not found.",
    )


def test_a_setting_the_stand_in_does_not_model_is_refused_and_nothing_changes(athena: Any) -> None:
    athena.create_work_group(Name="reports", Configuration={})
    before = work_group(athena, "reports")
    refused(
        lambda: athena.update_work_group(
            WorkGroup="reports",
            ConfigurationUpdates={
                "PublishCloudWatchMetricsEnabled": True,
                "ResultConfigurationUpdates": {"OutputLocation": "s3://elsewhere/"},
            },
        ),
        "does not model ConfigurationUpdates.ResultConfigurationUpdates",
    )
    assert work_group(athena, "reports")["Configuration"] == before["Configuration"]
