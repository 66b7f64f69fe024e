"""The stand-in's CloudFormation extension: an update may change the stack's topics alone."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::123456789012:role/deployer"
TEMPLATE = json.dumps(
    {
        "Parameters": {"Stage": {"Type": "String", "Default": "dev"}},
        "Resources": {
            "Setting": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": "/orders/stage", "Type": "String", "Value": {"Ref": "Stage"}},
            }
        },
    }
)
# The previous template, and the previous value of the parameter that took its default.
AS_IT_IS = {"UsePreviousTemplate": True, "Parameters": [{"ParameterKey": "Stage", "UsePreviousValue": True}]}


@pytest.fixture
def cloudformation(clean_aws: str) -> Any:
    client = boto3.client("cloudformation", endpoint_url=clean_aws, region_name="us-east-1")
    client.create_stack(
        StackName="orders", TemplateBody=TEMPLATE, RoleARN=ROLE, Capabilities=["CAPABILITY_IAM"]
    )
    return client


@pytest.fixture
def topics(clean_aws: str) -> list[str]:
    sns = boto3.client("sns", endpoint_url=clean_aws, region_name="us-east-1")
    return [sns.create_topic(Name=name)["TopicArn"] for name in ("ops", "audit")]


def described(cloudformation: Any) -> dict[str, Any]:
    return dict(cloudformation.describe_stacks(StackName="orders")["Stacks"][0])


def test_a_change_of_topics_alone_is_an_update(cloudformation: Any, topics: list[str]) -> None:
    cloudformation.update_stack(StackName="orders", NotificationARNs=topics, **AS_IT_IS)
    stack = described(cloudformation)
    assert (stack["StackStatus"], stack["NotificationARNs"]) == ("UPDATE_COMPLETE", topics)
    assert stack["Parameters"] == [{"ParameterKey": "Stage", "ParameterValue": "dev"}]

    with pytest.raises(ClientError, match="No updates are to be performed"):
        cloudformation.update_stack(StackName="orders", NotificationARNs=topics, **AS_IT_IS)


def test_topics_left_out_are_kept_and_an_empty_list_removes_them(
    cloudformation: Any, topics: list[str]
) -> None:
    cloudformation.update_stack(StackName="orders", NotificationARNs=topics, **AS_IT_IS)
    cloudformation.update_stack(
        StackName="orders",
        UsePreviousTemplate=True,
        Parameters=[{"ParameterKey": "Stage", "ParameterValue": "prod"}],
    )
    assert described(cloudformation)["NotificationARNs"] == topics

    cloudformation.update_stack(StackName="orders", NotificationARNs=[], **AS_IT_IS)
    assert described(cloudformation)["NotificationARNs"] == []


def test_the_role_is_kept_and_the_capabilities_are_the_last_operations(
    cloudformation: Any, topics: list[str]
) -> None:
    assert (described(cloudformation)["RoleARN"], described(cloudformation)["Capabilities"]) == (
        ROLE,
        ["CAPABILITY_IAM"],
    )
    cloudformation.update_stack(
        StackName="orders", NotificationARNs=topics[:1], Capabilities=["CAPABILITY_NAMED_IAM"], **AS_IT_IS
    )
    stack = described(cloudformation)
    assert (stack["RoleARN"], stack["Capabilities"]) == (ROLE, ["CAPABILITY_NAMED_IAM"])

    cloudformation.update_stack(StackName="orders", NotificationARNs=[], **AS_IT_IS)
    assert described(cloudformation).get("Capabilities", []) == []
