"""ECR misconfigurations."""

from __future__ import annotations

import uuid

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder


@seeder("ECR.1")
def repository_without_scan_on_push(
    aws: AwsContext, control_id: str, account: str, region: str, n: int
) -> Seeded:
    arn = aws.client("ecr", account, region).create_repository(
        repositoryName=f"asr-seed/unscanned-{n}-{uuid.uuid4().hex[:6]}",
        imageScanningConfiguration={"scanOnPush": False},
        imageTagMutability="IMMUTABLE",
    )["repository"]["repositoryArn"]
    return Seeded(control_id, account, region, "AwsEcrRepository", arn, "HIGH")
