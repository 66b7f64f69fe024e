"""SNS misconfigurations."""

from __future__ import annotations

import uuid

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder


@seeder("SNS.1")
def unencrypted_topic(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    arn = aws.client("sns", account, region).create_topic(
        Name=f"asr-seed-plain-{n}-{uuid.uuid4().hex[:6]}", Attributes={"DisplayName": "seeded"}
    )["TopicArn"]
    return Seeded(control_id, account, region, "AwsSnsTopic", arn, "MEDIUM")


@seeder("SNS.2")
def unlogged_topic(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A topic that logs no delivery status, as a new topic does. Encrypted, so that its finding
    is SNS.2's alone."""
    arn = aws.client("sns", account, region).create_topic(
        Name=f"asr-seed-unlogged-{n}-{uuid.uuid4().hex[:6]}", Attributes={"KmsMasterKeyId": "alias/aws/sns"}
    )["TopicArn"]
    return Seeded(control_id, account, region, "AwsSnsTopic", arn, "MEDIUM")
