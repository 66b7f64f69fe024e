"""SQS misconfigurations."""

from __future__ import annotations

import uuid

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder


@seeder("SQS.1")
def unencrypted_queue(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A queue with SSE-SQS turned off (new queues get it by default)."""
    sqs = aws.client("sqs", account, region)
    url = sqs.create_queue(
        QueueName=f"asr-seed-plain-{n}-{uuid.uuid4().hex[:6]}",
        Attributes={"SqsManagedSseEnabled": "false", "VisibilityTimeout": "45"},
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Seeded(control_id, account, region, "AwsSqsQueue", arn, "MEDIUM")
