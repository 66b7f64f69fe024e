"""CodeBuild misconfigurations."""

from __future__ import annotations

import json
import secrets
import string
import uuid

from asr.actions.codebuild import DEFAULT_PREFIX
from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder, service_role

ROLE_NAME = "asr-seed-codebuild-service"
CREDENTIALS_ROLE_NAME = "asr-seed-codebuild-credentials"


def _project(
    aws: AwsContext,
    account: str,
    region: str,
    name: str,
    role: str,
    *variables: dict[str, str],
    **more: object,
) -> str:
    """A project (its ARN) with a variable the fixes must keep, these ``variables`` after it, and
    ``more`` of the environment."""
    return str(
        aws.client("codebuild", account, region).create_project(
            name=f"{name}-{uuid.uuid4().hex[:6]}",
            source={
                "type": "CODECOMMIT",
                "location": f"https://git-codecommit.{region}.amazonaws.com/v1/repos/asr-seed-images",
            },
            artifacts={"type": "NO_ARTIFACTS"},
            environment={
                "type": "LINUX_CONTAINER",
                "image": "aws/codebuild/amazonlinux2-x86_64-standard:5.0",
                "computeType": "BUILD_GENERAL1_SMALL",
                **more,
                "environmentVariables": [
                    {"name": "STAGE", "value": "seeded", "type": "PLAINTEXT"},
                    *variables,
                ],
            },
            serviceRole=role,
        )["project"]["arn"]
    )


@seeder("CodeBuild.5")
def privileged_project(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A project whose builds run privileged, with settings beside it the fix must keep."""
    role = service_role(aws.client("iam", account, region), ROLE_NAME, "codebuild.amazonaws.com")
    arn = _project(
        aws,
        account,
        region,
        f"asr-seed-privileged-{n}",
        role,
        privilegedMode=True,
        imagePullCredentialsType="CODEBUILD",
    )
    return Seeded(control_id, account, region, "AwsCodeBuildProject", arn, "HIGH")


@seeder("CodeBuild.2")
def clear_text_credentials(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A project with an access key in clear-text variables, beside a variable the fix must keep,
    whose service role may read the parameters the fix makes (the fix checks it)."""
    iam = aws.client("iam", account, region)
    role = service_role(iam, CREDENTIALS_ROLE_NAME, "codebuild.amazonaws.com")
    partition = role.split(":")[1]
    readable = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ssm:GetParameters",
                "Resource": f"arn:{partition}:ssm:*:{account}:parameter{DEFAULT_PREFIX}/*",
            }
        ],
    }
    iam.put_role_policy(
        RoleName=CREDENTIALS_ROLE_NAME,
        PolicyName="read-moved-credentials",
        PolicyDocument=json.dumps(readable),
    )
    key = "AKIA" + "".join(secrets.choice(string.ascii_uppercase + "234567") for _ in range(16))
    secret = secrets.token_urlsafe(30)[:40]
    arn = _project(
        aws,
        account,
        region,
        f"asr-seed-credentials-{n}",
        role,
        {"name": "AWS_ACCESS_KEY_ID", "value": key, "type": "PLAINTEXT"},
        {"name": "AWS_SECRET_ACCESS_KEY", "value": secret, "type": "PLAINTEXT"},
    )
    return Seeded(control_id, account, region, "AwsCodeBuildProject", arn, "CRITICAL")
