"""CodeBuild misconfigurations."""

from __future__ import annotations

import uuid

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder, service_role

ROLE_NAME = "asr-seed-codebuild-service"


@seeder("CodeBuild.5")
def privileged_project(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A project whose builds run privileged, with settings beside it the fix must keep."""
    project = aws.client("codebuild", account, region).create_project(
        name=f"asr-seed-privileged-{n}-{uuid.uuid4().hex[:6]}",
        source={
            "type": "CODECOMMIT",
            "location": f"https://git-codecommit.{region}.amazonaws.com/v1/repos/asr-seed-images",
        },
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/amazonlinux2-x86_64-standard:5.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "privilegedMode": True,
            "imagePullCredentialsType": "CODEBUILD",
            "environmentVariables": [{"name": "STAGE", "value": "seeded", "type": "PLAINTEXT"}],
        },
        serviceRole=service_role(aws.client("iam", account, region), ROLE_NAME, "codebuild.amazonaws.com"),
    )["project"]
    return Seeded(control_id, account, region, "AwsCodeBuildProject", project["arn"], "HIGH")
