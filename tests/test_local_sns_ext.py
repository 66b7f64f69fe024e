"""The stand-in's SNS extension: delivery-status logging attributes read back and checked as AWS does."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"  # moto's default account, the one these clients act in
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


@pytest.fixture
def sns(clean_aws: str) -> Any:
    return boto3.client("sns", endpoint_url=clean_aws, region_name="eu-west-1")


@pytest.fixture
def iam(clean_aws: str) -> Any:
    return boto3.client("iam", endpoint_url=clean_aws, region_name="eu-west-1")


def role(iam: Any, name: str, trust: dict[str, Any] = TRUST) -> str:
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def put(sns: Any, topic: str, name: str, value: str) -> None:
    sns.set_topic_attributes(TopicArn=topic, AttributeName=name, AttributeValue=value)


def refused(call: Any, code: str, message: str) -> None:
    with pytest.raises(ClientError) as error:
        call()
    assert error.value.response["Error"]["Code"] == code
    assert message in error.value.response["Error"]["Message"]


def test_logging_attributes_read_back_and_an_empty_role_removes_one(sns: Any, iam: Any) -> None:
    topic = sns.create_topic(Name="orders")["TopicArn"]
    arn = role(iam, "sns-logging")
    put(sns, topic, "SQSSuccessFeedbackRoleArn", arn)
    put(sns, topic, "SQSFailureFeedbackRoleArn", arn)
    put(sns, topic, "SQSSuccessFeedbackSampleRate", "25")
    put(sns, topic, "HTTPFailureFeedbackRoleArn", arn)
    put(sns, topic, "HTTPFailureFeedbackRoleArn", "")
    attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert {k: v for k, v in attributes.items() if "Feedback" in k} == {
        "SQSSuccessFeedbackRoleArn": arn,
        "SQSFailureFeedbackRoleArn": arn,
        "SQSSuccessFeedbackSampleRate": "25",
    }


@pytest.mark.parametrize("value", ["", "101", "-1", "ten", "5.5"])
def test_a_sample_rate_must_be_a_whole_percentage(sns: Any, value: str) -> None:
    topic = sns.create_topic(Name="orders")["TopicArn"]
    refused(
        lambda: put(sns, topic, "LambdaSuccessFeedbackSampleRate", value), "InvalidParameter", "percentage"
    )


def test_a_role_must_be_one_sns_can_assume_in_the_topics_account(sns: Any, iam: Any) -> None:
    topic = sns.create_topic(Name="orders")["TopicArn"]
    ec2_only = role(
        iam,
        "ec2-only",
        {**TRUST, "Statement": [{**TRUST["Statement"][0], "Principal": {"Service": "ec2.amazonaws.com"}}]},
    )
    role(iam, "sns-logging")
    for arn in (
        ec2_only,
        f"arn:aws:iam::{ACCOUNT}:role/missing",
        "arn:aws:iam::111122223333:role/sns-logging",  # that name, in another account
        "not-an-arn",
    ):
        refused(
            lambda arn=arn: put(sns, topic, "FirehoseFailureFeedbackRoleArn", arn),
            "InvalidParameter",
            f"{arn} is not a valid role to allow SNS to write to Cloudwatch Logs",
        )
    assert not any("Feedback" in k for k in sns.get_topic_attributes(TopicArn=topic)["Attributes"])


def test_an_unknown_topic_is_not_found_before_its_attribute_is_checked(sns: Any) -> None:
    topic = f"arn:aws:sns:eu-west-1:{ACCOUNT}:gone"
    refused(lambda: put(sns, topic, "SQSSuccessFeedbackSampleRate", "x"), "NotFound", "Topic does not exist")


def test_other_attributes_are_as_moto_keeps_them(sns: Any) -> None:
    topic = sns.create_topic(Name="orders")["TopicArn"]
    put(sns, topic, "DisplayName", "Orders")
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["DisplayName"] == "Orders"
