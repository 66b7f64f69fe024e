"""Athena misconfigurations."""

from __future__ import annotations

import uuid

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder


@seeder("Athena.4")
def work_group_without_metrics(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A workgroup that keeps its query metrics from CloudWatch."""
    athena = aws.client("athena", account, region)
    name = f"asr-seed-{n}-{uuid.uuid4().hex[:6]}"
    athena.create_work_group(
        Name=name,
        Description="seeded: no CloudWatch metrics",
        Configuration={"PublishCloudWatchMetricsEnabled": False},
    )
    arn = f"arn:{athena.meta.partition}:athena:{region}:{account}:workgroup/{name}"
    return Seeded(control_id, account, region, "AwsAthenaWorkGroup", arn, "MEDIUM")
