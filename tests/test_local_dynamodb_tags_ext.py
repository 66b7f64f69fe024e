"""The stand-in's DynamoDB tags: a key tagged again gets the new value, an unknown table is refused."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

REGION = "eu-west-1"


@pytest.fixture
def dynamodb(clean_aws: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=clean_aws, region_name=REGION)


def table(dynamodb: Any, name: str = "orders", **settings: Any) -> str:
    return str(
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            **settings,
        )["TableDescription"]["TableArn"]
    )


def tags(dynamodb: Any, arn: str) -> dict[str, str]:
    pages = dynamodb.get_paginator("list_tags_of_resource").paginate(ResourceArn=arn)
    listed = [(tag["Key"], tag["Value"]) for page in pages for tag in page["Tags"]]
    assert len({key for key, _ in listed}) == len(listed), f"a key listed twice: {listed}"
    return dict(listed)


def test_a_key_tagged_again_gets_the_new_value(dynamodb: Any) -> None:
    arn = table(dynamodb, Tags=[{"Key": "Owner", "Value": "unassigned"}, {"Key": "team", "Value": "web"}])
    dynamodb.tag_resource(
        ResourceArn=arn, Tags=[{"Key": "Owner", "Value": "alice"}, {"Key": "env", "Value": ""}]
    )
    assert tags(dynamodb, arn) == {"Owner": "alice", "team": "web", "env": ""}


def test_untagging_removes_only_the_keys_named(dynamodb: Any) -> None:
    arn = table(dynamodb, Tags=[{"Key": k, "Value": "v"} for k in ("a", "b", "c")])
    dynamodb.untag_resource(ResourceArn=arn, TagKeys=["a", "c", "never-there"])
    assert tags(dynamodb, arn) == {"b": "v"}


def test_a_table_not_there_is_refused(dynamodb: Any) -> None:
    arn = table(dynamodb)
    gone = arn.replace("table/orders", "table/gone")
    for call, kwargs in (
        (dynamodb.tag_resource, {"Tags": [{"Key": "Owner", "Value": "alice"}]}),
        (dynamodb.untag_resource, {"TagKeys": ["Owner"]}),
        (dynamodb.list_tags_of_resource, {}),
    ):
        with pytest.raises(ClientError) as refused:
            call(ResourceArn=gone, **kwargs)
        assert refused.value.response["Error"]["Code"] == "ResourceNotFoundException", call
    assert tags(dynamodb, arn) == {}
