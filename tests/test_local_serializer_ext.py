"""The stand-in's remembered attribute lookups give moto's own answers, byte for byte."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import serialize

from asr.local import serializer_ext

REQUEST_ID = re.compile(rb"(<requestId>|<RequestId>|\"RequestId\": \")[^<\"]*")


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def _raw_bodies(client: Any) -> list[bytes]:
    """Collects each answer's body as moto wrote it, before botocore parses it."""
    bodies: list[bytes] = []

    def keep(response_dict: dict[str, Any], **_: Any) -> None:
        bodies.append(REQUEST_ID.sub(b"", response_dict["body"]))

    client.meta.events.register("before-parse", keep)
    return bodies


def _both_ways(monkeypatch: pytest.MonkeyPatch, calls: list[Callable[[], Any]], bodies: list[bytes]) -> None:
    """Each call answered by moto's stock picker, then by the extension's, twice (the second
    time from what it remembered): all three answers must be the same bytes."""
    for call in calls:
        answers = []
        for picker in (serializer_ext._stock_call, serializer_ext.picked_value, serializer_ext.picked_value):
            monkeypatch.setattr(serialize.AttributePicker, "__call__", picker)
            bodies.clear()
            call()
            answers.append(bodies[-1])
        assert answers[0] == answers[1] == answers[2], call
        assert len(answers[0]) > 200


def test_ec2_describes_are_moto_own(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    bodies = _raw_bodies(ec2)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instances = [
        i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=6, MaxCount=6)["Instances"]
    ]
    # Tags are dropped by a response transformer when empty: half the instances have some.
    ec2.create_tags(Resources=instances[:3], Tags=[{"Key": "team", "Value": "payments"}])
    groups = [ec2.create_security_group(GroupName=f"g{n}", Description="d")["GroupId"] for n in range(5)]
    for group in groups[:3]:
        ec2.authorize_security_group_ingress(
            GroupId=group,
            IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
            ],
        )
    calls: list[Callable[[], Any]] = [
        lambda: ec2.describe_instances(InstanceIds=instances),
        lambda: ec2.describe_security_groups(GroupIds=groups),
        lambda: ec2.describe_subnets(),
        lambda: ec2.describe_vpcs(),
        lambda: ec2.describe_instance_attribute(InstanceId=instances[0], Attribute="instanceType"),
    ]
    _both_ways(monkeypatch, calls, bodies)
    # moto adds a transformer while serving this call; lookups made before must not hide it.
    vpcs = [ec2.create_vpc(CidrBlock=f"10.{n}.0.0/16")["Vpc"]["VpcId"] for n in range(2)]
    monkeypatch.setattr(serialize.AttributePicker, "__call__", serializer_ext.picked_value)
    created = ec2.create_vpc_peering_connection(VpcId=vpcs[0], PeerVpcId=vpcs[1])["VpcPeeringConnection"]
    assert created["Status"]["Code"] == "initiating-request"
    _both_ways(monkeypatch, [*calls, ec2.describe_vpc_peering_connections], bodies)


def test_other_protocols_are_moto_own(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # query (IAM; SNS with its response transformers), rest-json (Security Hub), rest-xml (Route 53)
    iam = boto3.client("iam", region_name="us-east-1")
    sns = boto3.client("sns", region_name="us-east-1")
    securityhub = boto3.client("securityhub", region_name="us-east-1")
    route53 = boto3.client("route53", region_name="us-east-1")
    for name in ("alice", "bob"):
        iam.create_user(UserName=name, Tags=[{"Key": "k", "Value": name}])
    iam.update_account_password_policy(MinimumPasswordLength=14, RequireSymbols=True)
    sns.create_topic(Name="alerts", Attributes={"DisplayName": "alerts"})
    securityhub.enable_security_hub()
    securityhub.batch_import_findings(Findings=[_finding(n) for n in range(3)])
    for zone in ("example.com", "example.org"):
        route53.create_hosted_zone(Name=zone, CallerReference=zone)
    for client, calls in (
        (iam, [iam.list_users, iam.get_account_password_policy, lambda: iam.get_user(UserName="bob")]),
        (sns, [sns.list_topics]),
        (securityhub, [securityhub.get_findings]),
        (route53, [route53.list_hosted_zones]),
    ):
        _both_ways(monkeypatch, calls, _raw_bodies(client))


def _finding(n: int) -> dict[str, Any]:
    return {
        "SchemaVersion": "2018-10-08",
        "Id": f"finding-{n}",
        "ProductArn": "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default",
        "GeneratorId": "security-control/EC2.19",
        "AwsAccountId": "123456789012",
        "Types": ["Software and Configuration Checks"],
        "CreatedAt": "2026-11-29T00:00:00Z",
        "UpdatedAt": "2026-11-29T00:00:00Z",
        "Severity": {"Label": "HIGH"},
        "Title": "open to the world",
        "Description": "a security group allows 0.0.0.0/0 on a high-risk port",
        "Resources": [{"Type": "AwsEc2SecurityGroup", "Id": f"arn:aws:ec2:us-east-1:123456789012:sg-{n}"}],
        "Compliance": {"Status": "FAILED", "SecurityControlId": "EC2.19"},
    }


def test_names_are_asked_for_once(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instances = [
        i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=3, MaxCount=3)["Instances"]
    ]
    monkeypatch.setattr(serialize.AttributePicker, "__call__", serializer_ext.picked_value)
    monkeypatch.setattr(serializer_ext, "_names", {})  # nothing remembered from other tests
    asked: list[str] = []
    stock = serialize.XFormedAttributePicker.get_possible_keys

    def counting(self: Any, context: Any) -> Any:
        asked.append(context.key)
        return stock(self, context)

    monkeypatch.setattr(serialize.XFormedAttributePicker, "get_possible_keys", counting)
    ec2.describe_instances(InstanceIds=instances)
    first = len(asked)
    ec2.describe_instances(InstanceIds=instances)
    assert first > 30 and len(asked) == first


def test_remembered_names_are_the_ones_moto_would_try(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every lookup of a few answers, as moto's stock picker made it, then asked of the
    # memory in the same order: the same names each time, for every class, key and shape.
    ec2 = boto3.client("ec2", region_name="us-east-1")
    iam = boto3.client("iam", region_name="us-east-1")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instances = [
        i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2)["Instances"]
    ]
    iam.create_user(UserName="alice")
    seen: list[tuple[Any, Any, tuple[str, ...]]] = []
    stock = serialize.XFormedAttributePicker.get_possible_keys

    def recording(self: Any, context: Any) -> Any:
        names = tuple(stock(self, context))
        seen.append((self, context, names))
        return iter(names)

    monkeypatch.setattr(serialize.XFormedAttributePicker, "get_possible_keys", recording)
    ec2.describe_instances(InstanceIds=instances)
    ec2.describe_security_groups()
    ec2.describe_subnets()
    iam.list_users()
    iam.get_user(UserName="alice")
    monkeypatch.setattr(serialize.XFormedAttributePicker, "get_possible_keys", stock)
    monkeypatch.setattr(serializer_ext, "_names", {})
    assert len(seen) > 300
    assert [serializer_ext._names_to_try(picker, context) for picker, context, _ in seen] == [
        names for *_, names in seen
    ]
