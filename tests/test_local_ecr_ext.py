"""The stand-in's ECR extension: each repository's effective scanning, as AWS reports it."""

from __future__ import annotations

from typing import Any

import boto3
import pytest


@pytest.fixture
def ecr(clean_aws: str):  # type: ignore[no-untyped-def]
    client = boto3.client("ecr", endpoint_url=clean_aws, region_name="us-east-1")
    client.create_repository(repositoryName="team/api", imageScanningConfiguration={"scanOnPush": True})
    client.create_repository(repositoryName="team/web")
    return client


def scanning(ecr: Any, *names: str) -> dict[str, tuple[bool, str]]:
    found = ecr.batch_get_repository_scanning_configuration(repositoryNames=list(names))
    return {
        c["repositoryName"]: (c["scanOnPush"], c["scanFrequency"]) for c in found["scanningConfigurations"]
    }


def test_without_registry_rules_the_repository_flag_decides(ecr: Any) -> None:
    assert scanning(ecr, "team/api", "team/web") == {
        "team/api": (True, "SCAN_ON_PUSH"),
        "team/web": (False, "MANUAL"),
    }
    ecr.put_image_scanning_configuration(
        repositoryName="team/web", imageScanningConfiguration={"scanOnPush": True}
    )
    assert scanning(ecr, "team/web") == {"team/web": (True, "SCAN_ON_PUSH")}


def test_registry_rules_decide_for_repositories_made_before_and_after_them(ecr: Any) -> None:
    ecr.put_registry_scanning_configuration(
        scanType="ENHANCED",
        rules=[
            {
                "scanFrequency": "SCAN_ON_PUSH",
                "repositoryFilters": [{"filter": "team/*", "filterType": "WILDCARD"}],
            },
            {
                "scanFrequency": "CONTINUOUS_SCAN",
                "repositoryFilters": [{"filter": "*web", "filterType": "WILDCARD"}],
            },
        ],
    )
    ecr.create_repository(repositoryName="other/db", imageScanningConfiguration={"scanOnPush": True})
    ecr.create_repository(repositoryName="team/new")
    assert scanning(ecr, "team/api", "team/web", "other/db", "team/new") == {
        "team/api": (True, "SCAN_ON_PUSH"),
        "team/web": (False, "CONTINUOUS_SCAN"),  # the most frequent of the rules that match
        "other/db": (True, "MANUAL"),  # its own flag counts for nothing now
        "team/new": (False, "SCAN_ON_PUSH"),
    }


def test_an_unknown_repository_is_a_failure_not_an_error(ecr: Any) -> None:
    found = ecr.batch_get_repository_scanning_configuration(repositoryNames=["team/api", "nope"])
    assert [f["repositoryName"] for f in found["failures"]] == ["nope"]
    assert [c["repositoryName"] for c in found["scanningConfigurations"]] == ["team/api"]
