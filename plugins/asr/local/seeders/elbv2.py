"""Elastic Load Balancing (v2) misconfigurations."""

from __future__ import annotations

import uuid

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder


@seeder("ELB.1")
def alb_serving_http(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """An ALB in a VPC of its own (two subnets in two zones, as an ALB needs) whose HTTPS:443
    listener has a certificate from ACM, as AWS requires, and whose HTTP:80 listener forwards
    to the same target group instead of redirecting."""
    ec2 = aws.client("ec2", account, region)
    elbv2 = aws.client("elbv2", account, region)
    name = f"asr-seed-alb-{n}-{uuid.uuid4().hex[:6]}"
    network = f"10.{n % 250}"
    vpc_id = ec2.create_vpc(CidrBlock=f"{network}.0.0/16")["Vpc"]["VpcId"]
    zones = [zone["ZoneName"] for zone in ec2.describe_availability_zones()["AvailabilityZones"][:2]]
    subnets = []
    for i, zone in enumerate(zones):
        subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"{network}.{i}.0/24", AvailabilityZone=zone)
        subnets.append(subnet["Subnet"]["SubnetId"])
    balancer = elbv2.create_load_balancer(Name=name, Subnets=subnets, Type="application")["LoadBalancers"][0]
    arn = balancer["LoadBalancerArn"]
    group = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc_id)["TargetGroups"][0]
    forward = [{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}]
    certificate = aws.client("acm", account, region).request_certificate(
        DomainName=f"{name}.example.com", ValidationMethod="DNS"
    )["CertificateArn"]
    elbv2.create_listener(
        LoadBalancerArn=arn,
        Protocol="HTTPS",
        Port=443,
        Certificates=[{"CertificateArn": certificate}],
        SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
        DefaultActions=forward,
    )
    elbv2.create_listener(LoadBalancerArn=arn, Protocol="HTTP", Port=80, DefaultActions=forward)
    return Seeded(control_id, account, region, "AwsElbv2LoadBalancer", arn, "MEDIUM")
