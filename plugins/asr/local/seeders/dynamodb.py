"""DynamoDB misconfigurations."""

from __future__ import annotations

import uuid
from typing import Any

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder


def on_demand_table(aws: AwsContext, account: str, region: str, name: str, **settings: Any) -> str:
    """An on-demand table keyed by ``id``, made with these settings; its ARN."""
    table = aws.client("dynamodb", account, region).create_table(
        TableName=f"{name}-{uuid.uuid4().hex[:6]}",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **settings,
    )["TableDescription"]
    return str(table["TableArn"])


@seeder("DynamoDB.6")
def unprotected_table(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    arn = on_demand_table(aws, account, region, f"asr-seed-table-{n}", DeletionProtectionEnabled=False)
    return Seeded(control_id, account, region, "AwsDynamoDbTable", arn)


@seeder("DynamoDB.5")
def untagged_table(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A table with no tag: DynamoDB.5 fails it whatever keys the control requires."""
    arn = on_demand_table(aws, account, region, f"asr-seed-untagged-{n}")
    return Seeded(control_id, account, region, "AwsDynamoDbTable", arn, "LOW")


@seeder("DynamoDB.1")
def fixed_capacity_table(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A provisioned table and index whose capacity stays where it was set, whatever the load."""
    table = aws.client("dynamodb", account, region).create_table(
        TableName=f"asr-seed-capacity-{n}-{uuid.uuid4().hex[:6]}",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "day", "AttributeType": "S"},
        ],
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 10, "WriteCapacityUnits": 5},
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-day",
                "KeySchema": [{"AttributeName": "day", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
                "ProvisionedThroughput": {"ReadCapacityUnits": 4, "WriteCapacityUnits": 2},
            }
        ],
    )["TableDescription"]
    return Seeded(control_id, account, region, "AwsDynamoDbTable", table["TableArn"])
