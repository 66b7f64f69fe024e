"""EC2 misconfigurations."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import replace
from typing import Any

from asr.aws import AwsContext
from asr.local.seeders import Seeded, account_resource, seeder

# One of moto's default AMIs, present in every region (moto does not validate ImageId by default).
SEED_IMAGE = "ami-03cf127a"


def default_vpc(ec2: Any) -> str:
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    return vpcs[0]["VpcId"]


def _open_group(ec2: Any, purpose: str, n: int, permissions: list[dict[str, Any]]) -> str:
    """A new security group in the default VPC (where EC2 puts a group that names no VPC:
    no DescribeVpcs per group) with the given inbound rules; its id."""
    group_id = ec2.create_security_group(
        GroupName=f"asr-seed-{purpose}-{n}-{uuid.uuid4().hex[:6]}",
        Description=f"seeded: {purpose}",
    )["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=permissions)
    return group_id


def _tcp(port: int, *cidrs: str, to_port: int | None = None) -> dict[str, Any]:
    return {
        "IpProtocol": "tcp",
        "FromPort": port,
        "ToPort": port if to_port is None else to_port,
        "IpRanges": [{"CidrIp": c} for c in cidrs if ":" not in c],
        "Ipv6Ranges": [{"CidrIpv6": c} for c in cidrs if ":" in c],
    }


def _group_resource(control_id: str, account: str, region: str, group_id: str, severity: str) -> Seeded:
    arn = f"arn:aws:ec2:{region}:{account}:security-group/{group_id}"
    return Seeded(control_id, account, region, "AwsEc2SecurityGroup", arn, severity)


@seeder("EC2.13", "EC2.14")
def open_admin_port(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    ec2 = aws.client("ec2", account, region)
    port = 3389 if control_id == "EC2.14" else 22
    group_id = _open_group(ec2, f"open-{port}", n, [_tcp(port, "0.0.0.0/0", "10.0.0.0/8")])
    return _group_resource(control_id, account, region, group_id, "HIGH")


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


def _new_vpc(ec2: Any, purpose: str, n: int) -> str:
    vpc_id = ec2.create_vpc(CidrBlock=f"10.{n % 250}.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": "Name", "Value": f"asr-seed-{purpose}-{n}"}])
    return vpc_id


@seeder("EC2.1")
def public_ebs_snapshot(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    ec2 = aws.client("ec2", account, region)
    volume_id = ec2.create_volume(AvailabilityZone=f"{region}a", Size=1)["VolumeId"]
    snapshot_id = ec2.create_snapshot(VolumeId=volume_id, Description=f"asr-seed-public-{n}")["SnapshotId"]
    ec2.modify_snapshot_attribute(
        SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType="add", GroupNames=["all"]
    )
    return replace(account_resource(control_id, account, region), severity="CRITICAL")


@seeder("EC2.6")
def vpc_without_flow_logs(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    vpc_id = _new_vpc(aws.client("ec2", account, region), "no-flow-logs", n)
    return Seeded(control_id, account, region, "AwsEc2Vpc", f"arn:aws:ec2:{region}:{account}:vpc/{vpc_id}")


def instance_arn(aws: AwsContext, account: str, region: str, name: str, **settings: Any) -> str:
    """The ARN of a new running instance named ``name``, launched with ``settings``."""
    instance_id = aws.client("ec2", account, region).run_instances(
        ImageId=SEED_IMAGE,
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}],
        **settings,
    )["Instances"][0]["InstanceId"]
    return f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"


@seeder("EC2.8")
def instance_allowing_imdsv1(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    metadata = {"HttpTokens": "optional", "HttpPutResponseHopLimit": 2, "HttpEndpoint": "enabled"}
    arn = instance_arn(aws, account, region, f"asr-seed-imdsv1-{n}", MetadataOptions=metadata)
    return Seeded(control_id, account, region, "AwsEc2Instance", arn, "HIGH")


@seeder("EC2.15")
def subnet_with_public_ip(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    ec2 = aws.client("ec2", account, region)
    vpc_id = _new_vpc(ec2, "public-subnet", n)
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.{n % 250}.0.0/24")["Subnet"]["SubnetId"]
    ec2.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})
    arn = f"arn:aws:ec2:{region}:{account}:subnet/{subnet_id}"
    return Seeded(control_id, account, region, "AwsEc2Subnet", arn)


@seeder("EC2.18")
def unauthorized_open_port(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """9000-9100 open to the world (not authorized), 443 open (authorized: stays), 9000 to 10/8 (stays)."""
    ec2 = aws.client("ec2", account, region)
    rules = [
        _tcp(9000, "0.0.0.0/0", "::/0", "10.0.0.0/8", to_port=9100),
        _tcp(443, "0.0.0.0/0", "::/0"),
    ]
    group_id = _open_group(ec2, "unauthorized-port", n, rules)
    return _group_resource(control_id, account, region, group_id, "HIGH")


@seeder("EC2.19")
def open_high_risk_port(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """PostgreSQL open to the world (and to 10/8, which stays); HTTPS open (not high-risk: stays)."""
    ec2 = aws.client("ec2", account, region)
    rules = [_tcp(5432, "0.0.0.0/0", "::/0", "10.0.0.0/8"), _tcp(443, "0.0.0.0/0")]
    group_id = _open_group(ec2, "high-risk-port", n, rules)
    return _group_resource(control_id, account, region, group_id, "CRITICAL")


@seeder("EC2.23")
def transit_gateway_accepting_shares(
    aws: AwsContext, control_id: str, account: str, region: str, n: int
) -> Seeded:
    gateway = aws.client("ec2", account, region).create_transit_gateway(
        Description=f"asr-seed-tgw-{n}",
        Options={"AutoAcceptSharedAttachments": "enable"},
    )["TransitGateway"]
    return Seeded(control_id, account, region, "AwsEc2TransitGateway", gateway["TransitGatewayArn"], "HIGH")


# The stand-in dates an instance's stop by this tag (asr.local.ec2_stopped_ext): moto stops it now.
STOPPED_AT_TAG = "asr-local:stopped-at"


@seeder("EC2.4")
def long_stopped_instance(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """An instance stopped 90 days ago: its root volume goes with it, a data volume is kept."""
    disks = [
        {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8, "DeleteOnTermination": True}},
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1, "DeleteOnTermination": False}},
    ]
    arn = instance_arn(aws, account, region, f"asr-seed-stopped-{n}", BlockDeviceMappings=disks)
    instance_id = arn.rsplit("/", 1)[1]
    ec2 = aws.client("ec2", account, region)
    stopped = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=90)
    ec2.create_tags(Resources=[instance_id], Tags=[{"Key": STOPPED_AT_TAG, "Value": stopped.isoformat()}])
    ec2.stop_instances(InstanceIds=[instance_id])
    return Seeded(control_id, account, region, "AwsEc2Instance", arn)


@seeder("EC2.10")
def vpc_without_ec2_endpoint(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A VPC with DNS hostnames on and a subnet in each of two Availability Zones, with no
    endpoint for the EC2 API."""
    ec2 = aws.client("ec2", account, region)
    vpc_id = _new_vpc(ec2, "no-ec2-endpoint", n)
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    for index, zone in enumerate(("a", "b")):
        ec2.create_subnet(
            VpcId=vpc_id, CidrBlock=f"10.{n % 250}.{index}.0/24", AvailabilityZone=f"{region}{zone}"
        )
    return Seeded(control_id, account, region, "AwsEc2Vpc", f"arn:aws:ec2:{region}:{account}:vpc/{vpc_id}")
