"""The stand-in's S3 notification extension: EventBridge delivery reads back as AWS returns it."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

BUCKET = "asr-ext-notifications"


@pytest.fixture
def clients(clean_aws: str) -> tuple[Any, str]:
    s3 = boto3.client("s3", endpoint_url=clean_aws, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    sns = boto3.client("sns", endpoint_url=clean_aws, region_name="us-east-1")
    return s3, sns.create_topic(Name="events")["TopicArn"]


def put_and_get(s3: Any, **configuration: Any) -> dict[str, Any]:
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration=configuration)
    response = s3.get_bucket_notification_configuration(Bucket=BUCKET)
    response.pop("ResponseMetadata")
    return response


def test_eventbridge_delivery_reads_back_alone_and_beside_a_topic(clients: tuple[Any, str]) -> None:
    s3, topic = clients
    assert put_and_get(s3, EventBridgeConfiguration={}) == {"EventBridgeConfiguration": {}}
    with_topic = {"TopicConfigurations": [{"Id": "t", "TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]}
    assert put_and_get(s3, EventBridgeConfiguration={}, **with_topic) == {
        **with_topic,
        "EventBridgeConfiguration": {},
    }


def test_a_configuration_without_eventbridge_reads_as_moto_gives_it(clients: tuple[Any, str]) -> None:
    s3, topic = clients
    assert s3.get_bucket_notification_configuration(Bucket=BUCKET).keys() == {"ResponseMetadata"}
    with_topic = {"TopicConfigurations": [{"Id": "t", "TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]}
    put_and_get(s3, EventBridgeConfiguration={})
    assert put_and_get(s3, **with_topic) == with_topic, "turned off by the next put"
    assert put_and_get(s3) == {}
