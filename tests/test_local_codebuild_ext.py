"""The stand-in's CodeBuild extension: UpdateProject, changing the members it is given."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/service-role/builder"
SOURCE = {"type": "CODECOMMIT", "location": "https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/app"}
ENVIRONMENT = {
    "type": "LINUX_CONTAINER",
    "image": "aws/codebuild/standard:7.0",
    "computeType": "BUILD_GENERAL1_SMALL",
    "privilegedMode": True,
    "imagePullCredentialsType": "SERVICE_ROLE",
    "certificate": "certs-bucket/ca.pem",
    "environmentVariables": [
        {"name": "STAGE", "value": "prod", "type": "PLAINTEXT"},
        {"name": "TOKEN", "value": "/app/token", "type": "PARAMETER_STORE"},
    ],
}


@pytest.fixture
def codebuild(clean_aws: str) -> Any:
    return boto3.client("codebuild", endpoint_url=clean_aws, region_name="eu-west-1")


def project(codebuild: Any, name: str = "images") -> dict[str, Any]:
    return dict(codebuild.batch_get_projects(names=[name])["projects"][0])


def make(codebuild: Any, name: str = "images", **settings: Any) -> None:
    codebuild.create_project(
        name=name,
        source=SOURCE,
        artifacts={"type": "NO_ARTIFACTS"},
        environment=ENVIRONMENT,
        serviceRole=ROLE,
        **settings,
    )


def test_create_keeps_the_environment_given(codebuild: Any) -> None:
    make(codebuild)
    assert project(codebuild)["environment"] == ENVIRONMENT
    arn = f"arn:aws:codebuild:eu-west-1:{ACCOUNT}:project/images"
    assert codebuild.batch_get_projects(names=[arn])["projects"][0]["environment"]["privilegedMode"] is True


def test_the_environment_given_replaces_the_whole_environment(codebuild: Any) -> None:
    make(codebuild, description="builds the images", timeoutInMinutes=30)
    before = project(codebuild)
    changed = {**ENVIRONMENT, "privilegedMode": False, "image": "aws/codebuild/standard:8.0"}
    del changed["environmentVariables"]
    answer = codebuild.update_project(name="images", environment=changed)["project"]
    after = project(codebuild)
    assert answer["environment"] == after["environment"] == changed  # left out: gone, as in AWS
    # What was not sent is kept.
    for member in ("source", "artifacts", "serviceRole", "description", "timeoutInMinutes", "arn"):
        assert after[member] == before[member], member
    assert after["lastModified"] >= before["created"]


def test_other_members_change_alone(codebuild: Any) -> None:
    make(codebuild)
    codebuild.update_project(
        name="images",
        description="nightly",
        timeoutInMinutes=90,
        badgeEnabled=True,
        tags=[{"key": "team", "value": "platform"}],
    )
    after = project(codebuild)
    assert (after["description"], after["timeoutInMinutes"], after["badge"]["badgeEnabled"]) == (
        "nightly",
        90,
        True,
    )
    assert after["tags"] == [{"key": "team", "value": "platform"}]
    assert after["environment"] == ENVIRONMENT


def test_an_unknown_project_is_not_found(codebuild: Any) -> None:
    with pytest.raises(ClientError) as error:
        codebuild.update_project(name="gone", environment=ENVIRONMENT)
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert f"arn:aws:codebuild:eu-west-1:{ACCOUNT}:project/gone" in error.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"environment": {**ENVIRONMENT, "type": "MAINFRAME"}}, "Invalid type provided"),
        ({"serviceRole": "arn:aws:iam::210987654321:role/builder"}, "Service role account ID does not match"),
        (
            {
                "environment": {
                    **ENVIRONMENT,
                    "dockerServer": {"computeType": "BUILD_GENERAL1_SMALL", "status": {}},
                }
            },
            "dockerServer.status cannot be passed in",
        ),
    ],
    ids=["environment-type", "role-of-another-account", "docker-server-status"],
)
def test_a_bad_change_is_refused_and_nothing_changes(
    codebuild: Any, change: dict[str, Any], message: str
) -> None:
    make(codebuild)
    with pytest.raises(ClientError) as error:
        codebuild.update_project(name="images", description="changed", **change)
    assert error.value.response["Error"]["Code"] == "InvalidInputException"
    assert message in error.value.response["Error"]["Message"]
    after = project(codebuild)
    assert (after.get("description"), after["environment"], after["serviceRole"]) == (None, ENVIRONMENT, ROLE)
