"""EC2 misconfigurations."""

from __future__ import annotations

import uuid
from typing import Any

from asr.aws import AwsContext
from asr.local.seeders import Seeded, account_resource, seeder


def default_vpc(ec2: Any) -> str:
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    return vpcs[0]["VpcId"]


@seeder("EC2.13", "EC2.14")
def open_admin_port(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    ec2 = aws.client("ec2", account, region)
    port = 3389 if control_id == "EC2.14" else 22
    group_id = ec2.create_security_group(
        GroupName=f"asr-seed-open-{port}-{n}-{uuid.uuid4().hex[:6]}",
        Description="seeded: admin port open to the world",
        VpcId=default_vpc(ec2),
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": port,
                "ToPort": port,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}, {"CidrIp": "10.0.0.0/8"}],
            }
        ],
    )
    arn = f"arn:aws:ec2:{region}:{account}:security-group/{group_id}"
    return Seeded(control_id, account, region, "AwsEc2SecurityGroup", arn, "HIGH")


@seeder("EC2.2")
def default_group_with_rules(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    ec2 = aws.client("ec2", account, region)
    vpc_id = default_vpc(ec2) if n == 0 else ec2.create_vpc(CidrBlock=f"10.{n % 250}.0.0/16")["Vpc"]["VpcId"]
    group = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]
    if not group["IpPermissions"]:
        ec2.authorize_security_group_ingress(
            GroupId=group["GroupId"],
            IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group["GroupId"]}]}],
        )
    arn = f"arn:aws:ec2:{region}:{account}:security-group/{group['GroupId']}"
    return Seeded(control_id, account, region, "AwsEc2SecurityGroup", arn, "HIGH")


@seeder("EC2.7")
def ebs_default_encryption_off(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    aws.client("ec2", account, region).disable_ebs_encryption_by_default()
    return account_resource(control_id, account, region)
