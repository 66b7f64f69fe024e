"""The stand-in's EC2 revokes in a default VPC: rules not there answered as unknown, not refused."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from asr.local import MEMBER_ACCOUNT

WORLD = [{"CidrIp": "0.0.0.0/0"}]


def rule(port: int, **sources: Any) -> dict[str, Any]:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, **(sources or {"IpRanges": WORLD})}


def group(ec2: Any, vpc_id: str, *ports: int) -> str:
    group_id = ec2.create_security_group(GroupName=f"g-{vpc_id}", Description="t", VpcId=vpc_id)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[rule(p) for p in ports])
    return str(group_id)


def ports(ec2: Any, group_id: str) -> list[int]:
    [found] = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    return sorted(p["FromPort"] for p in found["IpPermissions"])


@pytest.fixture
def ec2(aws: Any) -> Any:
    return aws.client("ec2", MEMBER_ACCOUNT, "us-east-1")


def test_in_a_default_vpc_what_is_there_goes_and_the_rest_comes_back_unknown(ec2: Any) -> None:
    [default] = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    group_id = group(ec2, default["VpcId"], 22, 3306)
    both = [{**rule(22), "IpRanges": [*WORLD, {"CidrIp": "10.0.0.0/8"}]}, rule(3389)]
    answer = ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=both)
    assert answer["Return"] is True
    unknown = [(p["FromPort"], p.get("IpRanges")) for p in answer["UnknownIpPermissions"]]
    assert unknown == [(22, [{"CidrIp": "10.0.0.0/8"}]), (3389, WORLD)]
    assert ports(ec2, group_id) == [3306]
    assert "UnknownIpPermissions" not in ec2.revoke_security_group_ingress(
        GroupId=group_id, IpPermissions=[rule(3306)]
    )
    assert ports(ec2, group_id) == []

    everything = {"IpProtocol": "-1", "IpRanges": WORLD}  # every new group's outbound rule
    answer = ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=[everything, rule(443)])
    assert [p.get("FromPort") for p in answer["UnknownIpPermissions"]] == [443]
    [found] = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    assert found["IpPermissionsEgress"] == []


def test_in_any_other_vpc_the_request_is_refused(ec2: Any) -> None:
    vpc_id = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    group_id = group(ec2, vpc_id, 22)
    with pytest.raises(ClientError, match=r"InvalidPermission\.NotFound"):
        ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=[rule(3389)])
    assert ports(ec2, group_id) == [22]
