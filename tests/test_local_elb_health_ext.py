"""The stand-in's load balancer health: an instance tagged ``asr-local:health`` fails the checks."""

from __future__ import annotations

import boto3

REGION = "us-east-1"


def test_a_tagged_instance_fails_its_target_groups_and_classic_load_balancers_checks(clean_aws: str) -> None:
    def client(service: str):  # type: ignore[no-untyped-def]
        return boto3.client(service, endpoint_url=clean_aws, region_name=REGION)

    ec2, elbv2, elb = client("ec2"), client("elbv2"), client("elb")
    vpc_id = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    target_group = elbv2.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=vpc_id)[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    elb.create_load_balancer(
        LoadBalancerName="web",
        Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}],
        AvailabilityZones=[f"{REGION}a"],
    )
    instances = [
        i["InstanceId"]
        for i in ec2.run_instances(ImageId="ami-03cf127a", MinCount=3, MaxCount=3)["Instances"]
    ]
    elbv2.register_targets(TargetGroupArn=target_group, Targets=[{"Id": i} for i in instances])
    elb.register_instances_with_load_balancer(
        LoadBalancerName="web", Instances=[{"InstanceId": i} for i in instances]
    )
    timeout, failed, healthy = instances
    ec2.create_tags(
        Resources=[timeout], Tags=[{"Key": "asr-local:health", "Value": "unhealthy:Target.Timeout"}]
    )
    ec2.create_tags(Resources=[failed], Tags=[{"Key": "asr-local:health", "Value": "unhealthy"}])

    def target_health() -> dict[str, dict[str, str]]:
        found = elbv2.describe_target_health(TargetGroupArn=target_group)["TargetHealthDescriptions"]
        return {item["Target"]["Id"]: item["TargetHealth"] for item in found}

    def classic_states() -> dict[str, str]:
        found = elb.describe_instance_health(LoadBalancerName="web")["InstanceStates"]
        return {item["InstanceId"]: item["State"] for item in found}

    assert target_health() == {
        timeout: {"State": "unhealthy", "Reason": "Target.Timeout", "Description": "Request timed out"},
        failed: {
            "State": "unhealthy",
            "Reason": "Target.FailedHealthChecks",
            "Description": "Health checks failed",
        },
        healthy: {"State": "healthy"},
    }
    assert classic_states() == {timeout: "OutOfService", failed: "OutOfService", healthy: "InService"}

    ec2.delete_tags(Resources=[timeout, failed], Tags=[{"Key": "asr-local:health"}])
    assert {i: h["State"] for i, h in target_health().items()} == dict.fromkeys(instances, "healthy")
    assert classic_states() == dict.fromkeys(instances, "InService")
