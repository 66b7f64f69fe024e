"""EC2 Auto Scaling misconfigurations."""

from __future__ import annotations

import uuid
from typing import Any

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder
from asr.local.seeders.ec2 import SEED_IMAGE


@seeder("AutoScaling.1")
def load_balanced_group_on_ec2_checks(
    aws: AwsContext, control_id: str, account: str, region: str, n: int
) -> Seeded:
    """A group behind a Classic Load Balancer that judges its instances by EC2's status alone,
    made as the API makes one by default (no grace period). It runs no instances."""
    name = f"asr-seed-asg-{n}-{uuid.uuid4().hex[:6]}"
    zone = f"{region}a"
    aws.client("elb", account, region).create_load_balancer(
        LoadBalancerName=name[:32],
        Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 8080}],
        AvailabilityZones=[zone],
    )
    aws.client("ec2", account, region).create_launch_template(
        LaunchTemplateName=name, LaunchTemplateData={"ImageId": SEED_IMAGE, "InstanceType": "t3.micro"}
    )
    autoscaling = aws.client("autoscaling", account, region)
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": name},
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=0,
        AvailabilityZones=[zone],
        LoadBalancerNames=[name[:32]],
    )
    # moto makes a grace period of 0 at creation 300 (AWS keeps 0): an update sets it.
    autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=name, HealthCheckType="EC2", HealthCheckGracePeriod=0
    )
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return Seeded(
        control_id, account, region, "AwsAutoScalingAutoScalingGroup", group["AutoScalingGroupARN"], "LOW"
    )


# What a launch configuration's instances run at boot: the copy a fix makes must keep it.
SEED_USER_DATA = "#!/bin/sh\ncurl -s http://169.254.169.254/latest/meta-data/instance-id > /etc/instance\n"
# What AutoScaling.3 and Autoscaling.5 find wrong: IMDSv1 allowed; a public IP address for every instance.
LAUNCH_FLAWS: dict[str, dict[str, Any]] = {
    "AutoScaling.3": {
        "MetadataOptions": {"HttpTokens": "optional", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled"}
    },
    "Autoscaling.5": {"AssociatePublicIpAddress": True},
}


@seeder(*LAUNCH_FLAWS)
def launch_configuration_in_use(
    aws: AwsContext, control_id: str, account: str, region: str, n: int
) -> Seeded:
    """A launch configuration with the control's flaw, named by a group (in a default subnet: a
    configuration that sets AssociatePublicIpAddress needs one). The group runs no instances."""
    name = f"asr-seed-lc-{n}-{uuid.uuid4().hex[:6]}"
    zone = f"{region}a"
    subnets = aws.client("ec2", account, region).describe_subnets(
        Filters=[
            {"Name": "availability-zone", "Values": [zone]},
            {"Name": "default-for-az", "Values": ["true"]},
        ]
    )["Subnets"]
    autoscaling = aws.client("autoscaling", account, region)
    autoscaling.create_launch_configuration(
        LaunchConfigurationName=name,
        ImageId=SEED_IMAGE,
        InstanceType="t3.micro",
        UserData=SEED_USER_DATA,
        InstanceMonitoring={"Enabled": True},
        **LAUNCH_FLAWS[control_id],
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=f"{name}-asg",
        LaunchConfigurationName=name,
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=0,
        VPCZoneIdentifier=subnets[0]["SubnetId"],
    )
    [made] = autoscaling.describe_launch_configurations(LaunchConfigurationNames=[name])[
        "LaunchConfigurations"
    ]
    return Seeded(
        control_id,
        account,
        region,
        "AwsAutoScalingLaunchConfiguration",
        made["LaunchConfigurationARN"],
        "HIGH",
    )
