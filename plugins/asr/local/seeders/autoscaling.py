"""EC2 Auto Scaling misconfigurations."""

from __future__ import annotations

import uuid

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
