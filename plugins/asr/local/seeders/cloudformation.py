"""CloudFormation misconfigurations: a stack that sends its events to no SNS topic."""

from __future__ import annotations

import json
import uuid

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder

# One parameter left to its default and one given, so a fix must keep both values.
TEMPLATE = json.dumps(
    {
        "Parameters": {
            "Stage": {"Type": "String", "Default": "dev"},
            "Owner": {"Type": "String"},
        },
        "Resources": {
            "Setting": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {
                    "Name": {"Fn::Sub": "/asr-seed/${AWS::StackName}"},
                    "Type": "String",
                    "Value": {"Fn::Sub": "${Stage}:${Owner}"},
                },
            }
        },
    }
)


@seeder("CloudFormation.1")
def silent_stack(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    stack_id = aws.client("cloudformation", account, region).create_stack(
        StackName=f"asr-seed-stack-{n}-{uuid.uuid4().hex[:6]}",
        TemplateBody=TEMPLATE,
        Parameters=[{"ParameterKey": "Owner", "ParameterValue": "platform"}],
        Tags=[{"Key": "team", "Value": "platform"}],
    )["StackId"]
    return Seeded(control_id, account, region, "AwsCloudFormationStack", stack_id, "LOW")
