"""CloudWatch Logs misconfigurations."""

from __future__ import annotations

import uuid

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder


@seeder("CloudWatch.16")
def short_log_retention(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    logs = aws.client("logs", account, region)
    name = f"/asr/seed/short-retention-{n}-{uuid.uuid4().hex[:6]}"
    logs.create_log_group(logGroupName=name)
    logs.put_retention_policy(logGroupName=name, retentionInDays=30)
    arn = f"arn:aws:logs:{region}:{account}:log-group:{name}"
    return Seeded(control_id, account, region, "AwsLogsLogGroup", arn, "MEDIUM")
