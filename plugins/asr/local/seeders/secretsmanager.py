"""Secrets Manager misconfigurations."""

from __future__ import annotations

import uuid
from typing import Any

from asr.aws import AwsContext
from asr.local.seeders import Seeded, backdate, days_ago, seeder
from asr.local.seeders.awslambda import make_function

# Secrets age only as time passes; the stand-in backdates them (asr.local.secretsmanager_ext).
HISTORY_PATH = "/moto-api/asr/secretsmanager/history"


def set_history(
    endpoint: str | None,
    account: str,
    region: str,
    secret_id: str,
    created: str,
    last_accessed: str | None = None,
    last_rotated: str | None = None,
) -> None:
    """Make a secret look created, last read and last rotated (None: never) at the given ISO times."""
    body = {
        "account_id": account,
        "region": region,
        "secret_id": secret_id,
        "created": created,
        "last_accessed": last_accessed,
        "last_rotated": last_rotated,
    }
    backdate(endpoint, HISTORY_PATH, body, f"secret {secret_id}")


def _secret(client: Any, control_id: str, n: int) -> dict[str, Any]:
    name = f"asr-seed/{control_id.lower().replace('.', '')}-{n}-{uuid.uuid4().hex[:6]}"
    return dict(client.create_secret(Name=name, SecretString=uuid.uuid4().hex))


def _rotate_every_30_days(aws: AwsContext, client: Any, account: str, region: str, arn: str, n: int) -> None:
    """Give the secret a rotation function and a 30-day schedule, without rotating it now."""
    function = make_function(aws, account, region, f"asr-seed-rotation-{n}-{uuid.uuid4().hex[:6]}")
    client.rotate_secret(
        SecretId=arn,
        RotationLambdaARN=function,
        RotationRules={"AutomaticallyAfterDays": 30},
        RotateImmediately=False,
    )


@seeder("SecretsManager.1")
def rotation_turned_off(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A secret with a rotation function and a 30-day schedule, whose rotation was turned off."""
    client = aws.client("secretsmanager", account, region)
    secret = _secret(client, control_id, n)
    _rotate_every_30_days(aws, client, account, region, secret["ARN"], n)
    client.cancel_rotate_secret(SecretId=secret["ARN"])
    return Seeded(control_id, account, region, "AwsSecretsManagerSecret", secret["ARN"], "MEDIUM")


@seeder("SecretsManager.3")
def unused_secret(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A secret made 400 days ago and last read 200 days ago."""
    client = aws.client("secretsmanager", account, region)
    secret = _secret(client, control_id, n)
    set_history(
        aws.endpoint_for("secretsmanager"), account, region, secret["ARN"], days_ago(400), days_ago(200)
    )
    return Seeded(control_id, account, region, "AwsSecretsManagerSecret", secret["ARN"], "MEDIUM")


@seeder("SecretsManager.4")
def rotation_overdue(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A secret rotating every 30 days by its function, whose last rotation was 200 days ago."""
    client = aws.client("secretsmanager", account, region)
    secret = _secret(client, control_id, n)
    _rotate_every_30_days(aws, client, account, region, secret["ARN"], n)
    set_history(
        aws.endpoint_for("secretsmanager"), account, region, secret["ARN"], days_ago(400), None, days_ago(200)
    )
    return Seeded(control_id, account, region, "AwsSecretsManagerSecret", secret["ARN"], "MEDIUM")
