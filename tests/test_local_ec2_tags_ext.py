"""The stand-in reads an EC2 resource's tags from moto's tag dict: moto's own answer, without
searching every tag in the region."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.ec2.models import ec2_backends
from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.models.tags import TagBackend

from asr.local import ec2_tags_ext

ACCOUNT = "123456789012"
REGION = "eu-west-1"


@pytest.fixture
def ec2() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def _resources() -> list[TaggedEC2Resource]:
    backend = ec2_backends[ACCOUNT][REGION]
    groups = [group for by_vpc in backend.groups.values() for group in by_vpc.values()]
    instances = [i for reservation in backend.reservations.values() for i in reservation.instances]
    subnets = [subnet for by_zone in backend.subnets.values() for subnet in by_zone.values()]
    return [*groups, *instances, *backend.vpcs.values(), *subnets]


def test_each_resource_gets_moto_own_tags(ec2: Any) -> None:
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    launched = ec2.run_instances(ImageId=image, MinCount=4, MaxCount=4)["Instances"]
    instances = [i["InstanceId"] for i in launched]
    groups = [ec2.create_security_group(GroupName=f"g{n}", Description="d")["GroupId"] for n in range(4)]
    ec2.create_tags(Resources=instances[:2] + groups[:2], Tags=[{"Key": "team", "Value": "payments"}])
    more = [{"Key": "Name", "Value": "web"}, {"Key": "tier", "Value": ""}]
    ec2.create_tags(Resources=[groups[0]], Tags=more)
    # A resource whose tags were all deleted keeps an empty entry in moto's dict.
    ec2.delete_tags(Resources=[instances[1]], Tags=[{"Key": "team"}])
    resources = _resources()
    assert len(resources) > 10
    tagged = 0
    for resource in resources:
        expected = ec2_tags_ext._search(resource)
        assert ec2_tags_ext.get_tags(resource) == expected, resource.id
        tagged += bool(expected)
    assert tagged == 3
    group = next(r for r in resources if r.id == groups[0])
    assert ec2_tags_ext.get_tags(group) == [
        {"resource_id": groups[0], "key": "team", "value": "payments", "resource_type": "security-group"},
        {"resource_id": groups[0], "key": "Name", "value": "web", "resource_type": "security-group"},
        {"resource_id": groups[0], "key": "tier", "value": "", "resource_type": "security-group"},
    ]


def test_describes_read_tags_without_searching(ec2: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    groups = [ec2.create_security_group(GroupName=f"g{n}", Description="d")["GroupId"] for n in range(30)]
    for group in groups:
        ec2.create_tags(Resources=[group], Tags=[{"Key": "Name", "Value": group}])
    searches: list[Any] = []
    search = TagBackend.describe_tags

    def counting(self: TagBackend, filters: Any = None) -> Any:
        searches.append(filters)
        return search(self, filters)

    monkeypatch.setattr(TagBackend, "describe_tags", counting)
    monkeypatch.setattr(TaggedEC2Resource, "get_tags", ec2_tags_ext.get_tags)
    described = ec2.describe_security_groups(GroupIds=groups)["SecurityGroups"]
    assert {g["GroupId"]: g["Tags"] for g in described} == {
        group: [{"Key": "Name", "Value": group}] for group in groups
    }
    assert searches == []
    # The same call the way moto answers it searches once per group.
    monkeypatch.setattr(TaggedEC2Resource, "get_tags", ec2_tags_ext._search)
    assert ec2.describe_security_groups(GroupIds=groups)["SecurityGroups"] == described
    assert len(searches) == len(groups)


def test_an_id_with_a_wildcard_goes_through_moto_search(ec2: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    group = next(r for r in _resources() if r.id.startswith("sg-"))
    searched: list[str] = []
    monkeypatch.setattr(ec2_tags_ext, "_search", lambda resource: searched.append(resource.id) or [])
    monkeypatch.setattr(group, "id", "sg-*")
    assert ec2_tags_ext.get_tags(group) == []
    assert searched == ["sg-*"]
