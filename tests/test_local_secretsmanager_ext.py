"""The stand-in's Secrets Manager extension (asr.local.secretsmanager_ext), through boto3."""

from __future__ import annotations

import datetime
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from asr.local.seeders import days_ago
from asr.local.seeders.awslambda import make_function
from asr.local.seeders.secretsmanager import HISTORY_PATH, set_history

ACCOUNT = "123456789012"  # the account moto gives plain credentials
REGION = "eu-west-1"
MANAGED = {"Key": "aws:secretsmanager:owningService", "Value": "rds"}  # how moto marks a managed secret


@pytest.fixture
def sm(clean_aws: str) -> Any:
    return boto3.client("secretsmanager", endpoint_url=clean_aws, region_name=REGION)


@pytest.fixture
def function(aws: Any) -> str:
    return make_function(aws, ACCOUNT, REGION, "rotator")


def refused(call: Any, code: str, message: str) -> None:
    with pytest.raises(ClientError) as error:
        call()
    assert error.value.response["Error"]["Code"] == code
    assert message in error.value.response["Error"]["Message"]


def stages(sm: Any, arn: str) -> dict[str, list[str]]:
    return dict(sm.describe_secret(SecretId=arn)["VersionIdsToStages"])


def midnight(days: int = 0) -> datetime.datetime:
    today = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=days)
    return datetime.datetime(today.year, today.month, today.day, tzinfo=datetime.UTC)


def test_turning_rotation_on_without_rotating_now_keeps_the_value_and_versions(
    sm: Any, function: str
) -> None:
    """moto would run the function in Docker and leave an AWSPENDING version; AWS only schedules."""
    arn = sm.create_secret(Name="db", SecretString="s3cret")["ARN"]
    versions = stages(sm, arn)
    sm.rotate_secret(
        SecretId=arn,
        RotationLambdaARN=function,
        RotationRules={"AutomaticallyAfterDays": 30},
        RotateImmediately=False,
    )
    secret = sm.describe_secret(SecretId=arn)
    assert (secret["RotationEnabled"], secret["RotationLambdaARN"], secret["RotationRules"]) == (
        True,
        function,
        {"AutomaticallyAfterDays": 30},
    )
    assert "LastRotatedDate" not in secret
    assert secret["NextRotationDate"] > datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=29)
    assert stages(sm, arn) == versions
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "s3cret"


def test_rotating_now_makes_a_new_current_value_and_keeps_the_old_as_previous(sm: Any, function: str) -> None:
    arn = sm.create_secret(Name="db", SecretString="s3cret")["ARN"]
    [old] = stages(sm, arn)
    new = sm.rotate_secret(
        SecretId=arn, RotationLambdaARN=function, RotationRules={"AutomaticallyAfterDays": 7}
    )
    assert stages(sm, arn) == {old: ["AWSPREVIOUS"], new["VersionId"]: ["AWSCURRENT"]}
    assert sm.get_secret_value(SecretId=arn)["SecretString"] != "s3cret"
    assert sm.get_secret_value(SecretId=arn, VersionStage="AWSPREVIOUS")["SecretString"] == "s3cret"
    rotated = sm.describe_secret(SecretId=arn)["LastRotatedDate"]
    assert abs((datetime.datetime.now(datetime.UTC) - rotated).total_seconds()) < 60


def test_a_call_without_a_function_keeps_the_secrets_own_and_its_schedule(sm: Any, function: str) -> None:
    arn = sm.create_secret(Name="db", SecretString="s3cret")["ARN"]
    sm.rotate_secret(
        SecretId=arn,
        RotationLambdaARN=function,
        RotationRules={"AutomaticallyAfterDays": 30},
        RotateImmediately=False,
    )
    sm.rotate_secret(SecretId=arn, RotateImmediately=False)
    secret = sm.describe_secret(SecretId=arn)
    assert (secret["RotationLambdaARN"], secret["RotationRules"]) == (
        function,
        {"AutomaticallyAfterDays": 30},
    )


def test_a_schedule_expression_and_window_are_kept_as_sent(sm: Any, function: str) -> None:
    arn = sm.create_secret(Name="db", SecretString="s3cret")["ARN"]
    rules = {"ScheduleExpression": "cron(0 4 ? * SUN *)", "Duration": "3h"}
    sm.rotate_secret(SecretId=arn, RotationLambdaARN=function, RotationRules=rules, RotateImmediately=False)
    assert sm.describe_secret(SecretId=arn)["RotationRules"] == rules
    refused(
        lambda: sm.rotate_secret(
            SecretId=arn, RotationRules={"AutomaticallyAfterDays": 3, "ScheduleExpression": "rate(3 days)"}
        ),
        "InvalidParameterException",
        "both AutomaticallyAfterDays and ScheduleExpression",
    )


def test_rotation_needs_a_function_that_exists_or_a_managing_service(sm: Any) -> None:
    arn = sm.create_secret(Name="db", SecretString="s3cret")["ARN"]
    missing = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:gone"
    refused(
        lambda: sm.rotate_secret(SecretId=arn, RotationLambdaARN=missing, RotateImmediately=False),
        "ResourceNotFoundException",
        missing,
    )
    refused(
        lambda: sm.rotate_secret(SecretId=arn, RotationRules={"AutomaticallyAfterDays": 3}),
        "InvalidRequestException",
        "No Lambda rotation function ARN",
    )
    assert "RotationEnabled" not in sm.describe_secret(SecretId=arn)
    managed = sm.create_secret(Name="rds-db", SecretString="s3cret", Tags=[MANAGED])["ARN"]
    sm.rotate_secret(SecretId=managed, RotationRules={"AutomaticallyAfterDays": 7}, RotateImmediately=False)
    assert sm.describe_secret(SecretId=managed)["RotationEnabled"] is True
    sm.cancel_rotate_secret(SecretId=managed)
    assert sm.describe_secret(SecretId=managed)["RotationEnabled"] is False


def test_cancelling_keeps_the_function_and_rules_and_clears_the_next_date(sm: Any, function: str) -> None:
    arn = sm.create_secret(Name="db", SecretString="s3cret")["ARN"]
    sm.rotate_secret(
        SecretId=arn,
        RotationLambdaARN=function,
        RotationRules={"AutomaticallyAfterDays": 30},
        RotateImmediately=False,
    )
    sm.cancel_rotate_secret(SecretId=arn)
    secret = sm.describe_secret(SecretId=arn)
    assert (secret["RotationEnabled"], secret["RotationLambdaARN"], secret["RotationRules"]) == (
        False,
        function,
        {"AutomaticallyAfterDays": 30},
    )
    assert "NextRotationDate" not in secret
    sm.rotate_secret(SecretId=arn)  # a rotation now, on the secret's own settings: rotation stays off
    assert sm.describe_secret(SecretId=arn)["RotationEnabled"] is False


def test_reading_a_secret_records_the_day_in_its_region(sm: Any, clean_aws: str) -> None:
    arn = sm.create_secret(Name="db", SecretString="s3cret", AddReplicaRegions=[{"Region": "us-west-2"}])[
        "ARN"
    ]
    replica = boto3.client("secretsmanager", endpoint_url=clean_aws, region_name="us-west-2")
    replica_arn = arn.replace(REGION, "us-west-2")
    assert "LastAccessedDate" not in sm.describe_secret(SecretId=arn)
    sm.get_secret_value(SecretId=arn)
    assert sm.describe_secret(SecretId=arn)["LastAccessedDate"] == midnight()
    assert "LastAccessedDate" not in replica.describe_secret(SecretId=replica_arn)
    other = sm.create_secret(Name="other", SecretString="x")["ARN"]
    sm.batch_get_secret_value(SecretIdList=[other])
    assert sm.describe_secret(SecretId=other)["LastAccessedDate"] == midnight()


def test_history_backdates_a_secret(sm: Any, clean_aws: str, function: str) -> None:
    arn = sm.create_secret(Name="db", SecretString="s3cret")["ARN"]
    set_history(clean_aws, ACCOUNT, REGION, arn, days_ago(400), days_ago(200), days_ago(300))
    secret = sm.describe_secret(SecretId=arn)
    assert secret["LastAccessedDate"] == midnight(200)
    assert 399 < (datetime.datetime.now(datetime.UTC) - secret["CreatedDate"]).days <= 400
    assert "LastRotatedDate" not in secret  # rotation is off: AWS does not say
    rules = {"AutomaticallyAfterDays": 30}
    sm.rotate_secret(SecretId=arn, RotationLambdaARN=function, RotationRules=rules, RotateImmediately=False)
    secret = sm.describe_secret(SecretId=arn)
    assert 299 < (datetime.datetime.now(datetime.UTC) - secret["LastRotatedDate"]).days <= 300
    # Counted from the last rotation, 300 days ago: due at once, as in AWS.
    assert secret["NextRotationDate"] < datetime.datetime.now(datetime.UTC)
    set_history(clean_aws, ACCOUNT, REGION, arn, days_ago(400))  # never read nor rotated
    assert {"LastAccessedDate", "LastRotatedDate"} & set(sm.describe_secret(SecretId=arn)) == set()


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"secret_id": "gone"}, 404, "ResourceNotFoundException"),
        ({"created": "yesterday"}, 400, "not an ISO-8601 time"),
        ({"created": "2999-01-01T00:00:00Z"}, 400, "in the future"),
        ({"last_accessed": days_ago(500)}, 400, "cannot be before created"),
        ({"account_id": "12"}, 400, "12-digit"),
        ({"region": None}, 400, "is not a Region"),
    ],
)
def test_history_refuses_what_cannot_be(
    sm: Any, clean_aws: str, change: dict[str, Any], status: int, error: str
) -> None:
    arn = sm.create_secret(Name="db", SecretString="s3cret")["ARN"]
    body = {"account_id": ACCOUNT, "region": REGION, "secret_id": arn, "created": days_ago(400), **change}
    response = requests.post(clean_aws + HISTORY_PATH, json=body, timeout=10)
    assert response.status_code == status
    assert error in response.json()["error"]
