"""CloudWatch misconfigurations: short log retention, CloudTrail events nobody is alarmed about."""

from __future__ import annotations

import uuid

from asr.actions.cloudwatch import EnsureCisAlarm
from asr.actions.s3 import create_bucket
from asr.aws import AwsContext
from asr.local.seeders import Seeded, account_resource, seeder

CIS_TRAIL = "asr-seed-cis-trail"


@seeder("CloudWatch.16")
def short_log_retention(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    logs = aws.client("logs", account, region)
    name = f"/asr/seed/short-retention-{n}-{uuid.uuid4().hex[:6]}"
    logs.create_log_group(logGroupName=name)
    logs.put_retention_policy(logGroupName=name, retentionInDays=30)
    arn = f"arn:aws:logs:{region}:{account}:log-group:{name}"
    return Seeded(control_id, account, region, "AwsLogsLogGroup", arn, "MEDIUM")


@seeder(*(f"CloudWatch.{n}" for n in range(1, 15)))
def trail_events_without_alarms(
    aws: AwsContext, control_id: str, account: str, region: str, n: int
) -> Seeded:
    """The account's multi-Region trail sends its events to a new CloudWatch Logs group, with no
    metric filter or alarm on it. The trail is made once, logging every management event, as
    Security Hub's check wants of the alarm's trail (so it is not CloudTrail.1's finding too:
    seed that in another account). The security team has subscribed a queue to the alarm
    topic, as Security Hub wants."""
    cloudtrail = aws.client("cloudtrail", account, region)
    trails = cloudtrail.describe_trails(includeShadowTrails=True)["trailList"]
    made = next((trail for trail in trails if trail["Name"] == CIS_TRAIL), None)
    home = made["HomeRegion"] if made else region
    group = f"/asr/seed/cloudtrail-events-{n}-{uuid.uuid4().hex[:6]}"
    aws.client("logs", account, home).create_log_group(logGroupName=group)
    delivery = {
        "CloudWatchLogsLogGroupArn": f"arn:aws:logs:{home}:{account}:log-group:{group}:*",
        "CloudWatchLogsRoleArn": f"arn:aws:iam::{account}:role/asr-seed-cloudtrail-to-logs",
    }
    if made:
        aws.client("cloudtrail", account, home).update_trail(Name=CIS_TRAIL, **delivery)
    else:
        bucket = f"{CIS_TRAIL}-{account}-{region}"
        create_bucket(aws.client("s3", account, region), bucket, region)
        cloudtrail.create_trail(Name=CIS_TRAIL, S3BucketName=bucket, IsMultiRegionTrail=True, **delivery)
        cloudtrail.start_logging(Name=CIS_TRAIL)
    sqs = aws.client("sqs", account, home)
    inbox = sqs.get_queue_attributes(
        QueueUrl=sqs.create_queue(QueueName="asr-seed-security-alarms")["QueueUrl"],
        AttributeNames=["QueueArn"],
    )["Attributes"]["QueueArn"]
    sns = aws.client("sns", account, home)
    topic = sns.create_topic(Name=EnsureCisAlarm.schema["properties"]["topic_name"]["default"])["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox)
    return account_resource(control_id, account, region)
