"""RDS misconfigurations."""

from __future__ import annotations

import uuid

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder


@seeder("RDS.5")
def single_az_database(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    name = f"asr-seed-db-{n}-{uuid.uuid4().hex[:6]}"
    instance = aws.client("rds", account, region).create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="seed",
        MasterUserPassword="seed-password-1",
        AllocatedStorage=20,
        MultiAZ=False,
    )["DBInstance"]
    return Seeded(control_id, account, region, "AwsRdsDbInstance", instance["DBInstanceArn"])
