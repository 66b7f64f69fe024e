"""The stand-in's SSM DescribeInstanceInformation (asr.local.ssm_instances_ext): an instance is
listed while it runs with a role that allows the agent, unless its agent is marked stopped."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from asr.actions import service_trust

CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
TRUST = service_trust("ec2.amazonaws.com")


@pytest.fixture
def make(clean_aws: str):  # type: ignore[no-untyped-def]
    ec2 = boto3.client("ec2", endpoint_url=clean_aws, region_name="us-east-1")
    iam = boto3.client("iam", endpoint_url=clean_aws, region_name="us-east-1")
    ssm = boto3.client("ssm", endpoint_url=clean_aws, region_name="us-east-1")
    image = ec2.describe_images()["Images"][0]["ImageId"]

    def instance(*, policy: bool = True, profile: bool = True, agent: str | None = None) -> str:
        tags = [{"ResourceType": "instance", "Tags": [{"Key": "asr-local:ssm-agent", "Value": agent}]}]
        made = ec2.run_instances(
            ImageId=image, MinCount=1, MaxCount=1, **({"TagSpecifications": tags} if agent else {})
        )["Instances"][0]["InstanceId"]
        if profile:
            name = f"role-{made}"
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))
            if policy:
                iam.attach_role_policy(RoleName=name, PolicyArn=CORE)
            arn = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Arn"]
            iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
            ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": arn}, InstanceId=made)
        return made

    return ec2, ssm, instance


def listed(ssm, *ids: str) -> list[str]:  # type: ignore[no-untyped-def]
    pages = ssm.get_paginator("describe_instance_information").paginate(
        Filters=[{"Key": "InstanceIds", "Values": list(ids)}], PaginationConfig={"PageSize": 5}
    )
    return [i["InstanceId"] for page in pages for i in page["InstanceInformationList"]]


def test_only_running_instances_whose_role_allows_the_agent_are_listed(make) -> None:
    ec2, ssm, instance = make
    managed = instance()
    without_policy = instance(policy=False)
    without_profile = instance(profile=False)
    agent_stopped = instance(agent="stopped")
    stopped = instance()
    ec2.stop_instances(InstanceIds=[stopped])
    assert listed(ssm, managed, without_policy, without_profile, agent_stopped, stopped) == [managed]
    info = ssm.describe_instance_information()["InstanceInformationList"]
    assert [(i["InstanceId"], i["PingStatus"], i["ResourceType"]) for i in info] == [
        (managed, "Online", "EC2Instance")
    ]


def test_the_list_pages(make) -> None:
    _, ssm, instance = make
    made = sorted(instance() for _ in range(7))
    first = ssm.describe_instance_information(MaxResults=5)
    assert len(first["InstanceInformationList"]) == 5 and first["NextToken"]
    assert listed(ssm, *made) == made
    old_form = ssm.describe_instance_information(
        InstanceInformationFilterList=[{"key": "InstanceIds", "valueSet": made[:2]}]
    )
    assert [i["InstanceId"] for i in old_form["InstanceInformationList"]] == made[:2]


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"Filters": [{"Key": "InstanceIds", "Values": ["i-0123456789abcdef0"]}]}, "InvalidInstanceId"),
        ({"Filters": [{"Key": "PlatformTypes", "Values": ["Linux"]}]}, "InvalidFilterKey"),
        ({"MaxResults": 51}, "ValidationException"),
    ],
)
def test_bad_requests_are_refused_as_aws_refuses_them(make, arguments: dict, code: str) -> None:
    _, ssm, _ = make
    with pytest.raises(ClientError) as caught:
        ssm.describe_instance_information(**arguments)
    assert caught.value.response["Error"]["Code"] == code
