"""The stand-in's launch configurations: names not reused, none deleted in use, kept as given."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from asr.local.seeders.ec2 import SEED_IMAGE

ZONE = "us-east-1a"


@pytest.fixture
def autoscaling(clean_aws: str) -> Any:
    return boto3.client("autoscaling", endpoint_url=clean_aws, region_name="us-east-1")


def create(autoscaling: Any, name: str, **more: Any) -> dict[str, Any]:
    autoscaling.create_launch_configuration(
        LaunchConfigurationName=name, ImageId=SEED_IMAGE, InstanceType="t3.micro", **more
    )
    return described(autoscaling, name)


def described(autoscaling: Any, name: str) -> dict[str, Any]:
    [found] = autoscaling.describe_launch_configurations(LaunchConfigurationNames=[name])[
        "LaunchConfigurations"
    ]
    return dict(found)


def refusal(call: Any, **params: Any) -> dict[str, str]:
    with pytest.raises(ClientError) as refused:
        call(**params)
    error = refused.value.response["Error"]
    return {"Code": error["Code"], "Message": error["Message"]}


def test_a_name_in_use_is_refused_and_the_configuration_kept(autoscaling: Any) -> None:
    create(autoscaling, "web", KeyName="ops")
    error = refusal(
        autoscaling.create_launch_configuration,
        LaunchConfigurationName="web",
        ImageId="ami-other",
        InstanceType="m5.large",
    )
    assert error["Code"] == "AlreadyExists"
    assert error["Message"].endswith("A launch configuration already exists with the name web")
    kept = described(autoscaling, "web")
    assert (kept["ImageId"], kept["InstanceType"], kept["KeyName"]) == (SEED_IMAGE, "t3.micro", "ops")


def test_a_configuration_in_use_is_not_deleted(autoscaling: Any) -> None:
    create(autoscaling, "web")
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web-asg",
        LaunchConfigurationName="web",
        MinSize=0,
        MaxSize=1,
        AvailabilityZones=[ZONE],
    )
    error = refusal(autoscaling.delete_launch_configuration, LaunchConfigurationName="web")
    assert error == {
        "Code": "ResourceInUse",
        "Message": "Cannot delete launch configuration web because it is attached to "
        "AutoScalingGroup web-asg",
    }
    assert described(autoscaling, "web")["LaunchConfigurationName"] == "web"
    create(autoscaling, "web-2")
    autoscaling.update_auto_scaling_group(AutoScalingGroupName="web-asg", LaunchConfigurationName="web-2")
    autoscaling.delete_launch_configuration(LaunchConfigurationName="web")
    names = [
        c["LaunchConfigurationName"]
        for c in autoscaling.describe_launch_configurations()["LaunchConfigurations"]
    ]
    assert names == ["web-2"]


def test_at_most_fifty_names_a_describe(autoscaling: Any) -> None:
    names = [f"web-{n}" for n in range(51)]
    assert (
        autoscaling.describe_launch_configurations(LaunchConfigurationNames=names[:50])[
            "LaunchConfigurations"
        ]
        == []
    )
    error = refusal(autoscaling.describe_launch_configurations, LaunchConfigurationNames=names)
    assert error["Code"] == "ValidationError" and "limited to 50" in error["Message"]


def test_a_configuration_reads_as_it_was_given(autoscaling: Any) -> None:
    devices = [
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {
                "VolumeSize": 20,
                "VolumeType": "gp3",
                "Iops": 3000,
                "Throughput": 125,
                "Encrypted": True,
            },
        },
        {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
        {"DeviceName": "/dev/sdc", "NoDevice": True},
    ]
    given = create(autoscaling, "dedicated", PlacementTenancy="dedicated", BlockDeviceMappings=devices)
    assert (given["PlacementTenancy"], given["BlockDeviceMappings"]) == ("dedicated", devices)
    assert "AssociatePublicIpAddress" not in given, "not given: the subnet's setting applies"
    for public in (True, False):
        assert (
            create(autoscaling, f"public-{public}", AssociatePublicIpAddress=public)[
                "AssociatePublicIpAddress"
            ]
            is public
        )


def test_an_instance_keeps_the_configuration_it_was_launched_from(autoscaling: Any) -> None:
    create(autoscaling, "web")
    create(autoscaling, "web-2")
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web-asg",
        LaunchConfigurationName="web",
        MinSize=1,
        MaxSize=2,
        DesiredCapacity=1,
        AvailabilityZones=[ZONE],
    )
    autoscaling.update_auto_scaling_group(AutoScalingGroupName="web-asg", LaunchConfigurationName="web-2")
    autoscaling.set_desired_capacity(AutoScalingGroupName="web-asg", DesiredCapacity=2)
    [group] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web-asg"])["AutoScalingGroups"]
    assert group["LaunchConfigurationName"] == "web-2"
    assert sorted(i["LaunchConfigurationName"] for i in group["Instances"]) == ["web", "web-2"]
