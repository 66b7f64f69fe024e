"""The stand-in's interface endpoints: one subnet per offered zone, private DNS only with the VPC's
DNS attributes, client tokens, states that take time, and groups in use kept."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from helpers import vpc_with_subnets

from asr import local

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's, for a client that assumes no role
SERVICE = f"com.amazonaws.{REGION}.ec2"
STATE_TAG = "asr-local:endpoint-state"


@pytest.fixture
def ec2(clean_aws: str) -> Any:
    return boto3.client("ec2", endpoint_url=clean_aws, region_name=REGION)


def vpc(ec2: Any, *zones: str, **dns: bool) -> tuple[str, list[str]]:
    return vpc_with_subnets(ec2, REGION, *zones, **dns)


def endpoint(ec2: Any, vpc_id: str, subnets: list[str], **more: Any) -> dict[str, Any]:
    return dict(
        ec2.create_vpc_endpoint(
            VpcEndpointType="Interface", VpcId=vpc_id, ServiceName=SERVICE, SubnetIds=subnets, **more
        )["VpcEndpoint"]
    )


def error(call: Any, **params: Any) -> dict[str, str]:
    with pytest.raises(ClientError) as raised:
        call(**params)
    return dict(raised.value.response["Error"])


def refused(ec2: Any, vpc_id: str, subnets: list[str], **more: Any) -> dict[str, str]:
    """The error of an interface endpoint for EC2 the stand-in refuses to make."""
    return error(
        ec2.create_vpc_endpoint,
        VpcEndpointType="Interface",
        VpcId=vpc_id,
        ServiceName=SERVICE,
        SubnetIds=subnets,
        **more,
    )


def offer_in(stand_in: str, *zones: str) -> None:
    response = requests.post(
        f"{stand_in}/moto-api/asr/ec2/endpoint-service-zones",
        json={"account_id": ACCOUNT, "region": REGION, "service_name": SERVICE, "zones": list(zones)},
        timeout=10,
    )
    response.raise_for_status()


def zones_of(ec2: Any, service: str) -> list[str]:
    [found] = ec2.describe_vpc_endpoint_services(ServiceNames=[service])["ServiceDetails"]
    return list(found["AvailabilityZones"])


def test_an_interface_endpoint_takes_one_subnet_per_zone(ec2: Any) -> None:
    vpc_id, (a1, a2, b) = vpc(ec2, "a", "a", "b")
    answer = refused(ec2, vpc_id, [a1, a2])
    assert answer == {
        "Code": "DuplicateSubnetsInSameZone",
        "Message": f"Found another VPC endpoint subnet in the availability zone of {a2}. VPC endpoint "
        "subnets should be in different availability zones supported by the VPC endpoint service.",
    }
    assert ec2.describe_vpc_endpoints()["VpcEndpoints"] == [], "nothing is made"
    assert endpoint(ec2, vpc_id, [a1, b])["SubnetIds"] == [a1, b]


def test_a_service_is_offered_in_the_zones_it_is_told_and_nowhere_else(clean_aws: str, ec2: Any) -> None:
    everywhere = zones_of(ec2, SERVICE)
    assert {f"{REGION}a", f"{REGION}b"} <= set(everywhere)
    offer_in(clean_aws, f"{REGION}a")
    assert zones_of(ec2, SERVICE) == [f"{REGION}a"]
    assert zones_of(ec2, f"com.amazonaws.{REGION}.ssm") == everywhere, "other services keep theirs"
    assert zones_of(
        boto3.client("ec2", endpoint_url=clean_aws, region_name="us-east-1"), "com.amazonaws.us-east-1.ec2"
    )

    vpc_id, (a, b) = vpc(ec2, "a", "b")
    answer = refused(ec2, vpc_id, [a, b])
    assert answer == {
        "Code": "InvalidParameter",
        "Message": f"The VPC endpoint service {SERVICE} does not support the availability zone of the "
        f"subnet: {b}.",
    }
    assert endpoint(ec2, vpc_id, [a])["State"] == "available"

    local.reset()
    assert zones_of(ec2, SERVICE) == everywhere, "a reset forgets what it was told"


def test_services_are_found_by_a_filter_on_their_names(ec2: Any) -> None:
    """A name no service has is no error in a filter (ServiceNames would refuse it)."""
    names = [SERVICE, f"cn.com.amazonaws.{REGION}.ec2"]
    found = ec2.describe_vpc_endpoint_services(Filters=[{"Name": "service-name", "Values": names}])
    assert [s["ServiceName"] for s in found["ServiceDetails"]] == [SERVICE]
    assert error(ec2.describe_vpc_endpoint_services, ServiceNames=names)["Code"] == "InvalidServiceName"


def test_the_zones_it_is_told_must_be_a_list(clean_aws: str) -> None:
    response = requests.post(
        f"{clean_aws}/moto-api/asr/ec2/endpoint-service-zones",
        json={"account_id": ACCOUNT, "region": REGION, "service_name": SERVICE, "zones": f"{REGION}a"},
        timeout=10,
    )
    assert response.status_code == 400


def test_private_dns_needs_both_dns_attributes(ec2: Any) -> None:
    vpc_id, (a,) = vpc(ec2, "a", hostnames=False)
    answer = refused(ec2, vpc_id, [a], PrivateDnsEnabled=True)
    assert answer["Code"] == "InvalidParameter"
    assert "enableDnsSupport and enableDnsHostnames" in answer["Message"]
    assert endpoint(ec2, vpc_id, [a], PrivateDnsEnabled=False)["PrivateDnsEnabled"] is False

    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": False})
    assert refused(ec2, vpc_id, [a], PrivateDnsEnabled=True)["Code"] == "InvalidParameter"
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
    assert endpoint(ec2, vpc_id, [a], PrivateDnsEnabled=True)["PrivateDnsEnabled"] is True


def test_a_request_sent_again_with_its_token_makes_nothing_more(ec2: Any) -> None:
    vpc_id, (a, b) = vpc(ec2, "a", "b")
    first = endpoint(ec2, vpc_id, [a, b], ClientToken="once")
    assert endpoint(ec2, vpc_id, [a, b], ClientToken="once")["VpcEndpointId"] == first["VpcEndpointId"]
    assert len(ec2.describe_vpc_endpoints()["VpcEndpoints"]) == 1
    assert refused(ec2, vpc_id, [a], ClientToken="once")["Code"] == "IdempotentParameterMismatch"

    ec2.delete_vpc_endpoints(VpcEndpointIds=[first["VpcEndpointId"]])
    again = endpoint(ec2, vpc_id, [a, b], ClientToken="once")
    assert (again["VpcEndpointId"], again["State"]) == (first["VpcEndpointId"], "deleted"), "as it is now"
    assert endpoint(ec2, vpc_id, [a, b], ClientToken="other")["VpcEndpointId"] != first["VpcEndpointId"]
    assert endpoint(ec2, vpc_id, [a, b])["VpcEndpointId"] != endpoint(ec2, vpc_id, [a, b])["VpcEndpointId"]


def test_a_group_in_use_is_not_deleted(ec2: Any) -> None:
    vpc_id, (a, b) = vpc(ec2, "a", "b")
    group = ec2.create_security_group(GroupName="endpoint", Description="endpoint", VpcId=vpc_id)["GroupId"]
    made = endpoint(ec2, vpc_id, [a, b], SecurityGroupIds=[group])
    interfaces = ec2.describe_network_interfaces(NetworkInterfaceIds=made["NetworkInterfaceIds"])
    assert [[g["GroupId"] for g in i["Groups"]] for i in interfaces["NetworkInterfaces"]] == [
        [group],
        [group],
    ]
    assert error(ec2.delete_security_group, GroupId=group) == {
        "Code": "DependencyViolation",
        "Message": f"resource {group} has a dependent object",
    }
    ec2.delete_vpc_endpoints(VpcEndpointIds=[made["VpcEndpointId"]])
    ec2.delete_security_group(GroupId=group)
    assert not ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [group]}])[
        "SecurityGroups"
    ]

    default = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]
    unnamed = endpoint(ec2, vpc_id, [a])
    [interface] = ec2.describe_network_interfaces(NetworkInterfaceIds=unnamed["NetworkInterfaceIds"])[
        "NetworkInterfaces"
    ]
    assert [g["GroupId"] for g in interface["Groups"]] == [default], "none named: the VPC's default group"

    instance_group = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc_id)["GroupId"]
    ec2.run_instances(
        ImageId="ami-03cf127a", MinCount=1, MaxCount=1, SubnetId=b, SecurityGroupIds=[instance_group]
    )
    assert error(ec2.delete_security_group, GroupId=instance_group)["Code"] == "DependencyViolation"


def test_an_endpoint_reads_in_the_state_its_vpc_s_tag_names(ec2: Any) -> None:
    (slow, (a,)), (broken, (b,)) = vpc(ec2, "a"), vpc(ec2, "b")
    for vpc_id, value in ((slow, "pending"), (broken, "failed")):
        ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": STATE_TAG, "Value": value}])
    made = [endpoint(ec2, slow, [a]), endpoint(ec2, broken, [b])]
    assert [e["State"] for e in made] == ["pending", "pending"], "as CreateVpcEndpoint answers"
    pending, failed = (e["VpcEndpointId"] for e in made)

    def states() -> tuple[str, str]:
        found = {e["VpcEndpointId"]: e["State"] for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]}
        return found[pending], found[failed]

    assert states() == ("pending", "failed")
    ec2.delete_tags(Resources=[slow, broken], Tags=[{"Key": STATE_TAG}])
    assert states() == ("available", "failed"), "made at last; a failure stays"
    filtered = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-endpoint-state", "Values": ["failed"]}])
    assert [e["VpcEndpointId"] for e in filtered["VpcEndpoints"]] == [failed]


def test_an_endpoint_deleted_in_a_vpc_tagged_deleting_holds_its_group_until_the_tag_goes(ec2: Any) -> None:
    vpc_id, (a,) = vpc(ec2, "a")
    group = ec2.create_security_group(GroupName="g", Description="g", VpcId=vpc_id)["GroupId"]
    made = endpoint(ec2, vpc_id, [a], SecurityGroupIds=[group])["VpcEndpointId"]
    ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": STATE_TAG, "Value": "deleting"}])
    assert ec2.delete_vpc_endpoints(VpcEndpointIds=[made])["Unsuccessful"] == []

    def state() -> str:
        return str(ec2.describe_vpc_endpoints(VpcEndpointIds=[made])["VpcEndpoints"][0]["State"])

    assert state() == "deleting"
    assert error(ec2.delete_security_group, GroupId=group)["Code"] == "DependencyViolation"
    ec2.delete_tags(Resources=[vpc_id], Tags=[{"Key": STATE_TAG}])
    assert state() == "deleted"
    ec2.delete_security_group(GroupId=group)
