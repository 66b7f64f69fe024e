"""DynamoDB misconfigurations."""

from __future__ import annotations

import uuid

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder


@seeder("DynamoDB.6")
def unprotected_table(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    table = aws.client("dynamodb", account, region).create_table(
        TableName=f"asr-seed-table-{n}-{uuid.uuid4().hex[:6]}",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        DeletionProtectionEnabled=False,
    )["TableDescription"]
    return Seeded(control_id, account, region, "AwsDynamoDbTable", table["TableArn"])
