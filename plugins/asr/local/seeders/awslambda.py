"""Lambda misconfigurations."""

from __future__ import annotations

import io
import uuid
import zipfile

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder, service_role

ROLE_NAME = "asr-seed-lambda-execution"


def function_code() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("index.py", "def handler(event, context):\n    return None\n")
    return archive.getvalue()


def make_function(aws: AwsContext, account: str, region: str, name: str) -> str:
    """A function that does nothing (the stand-in never runs it), with its execution role: its ARN."""
    return str(
        aws.client("lambda", account, region).create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=service_role(aws.client("iam", account, region), ROLE_NAME, "lambda.amazonaws.com"),
            Handler="index.handler",
            Code={"ZipFile": function_code()},
        )["FunctionArn"]
    )


@seeder("Lambda.1")
def public_function(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A function anyone may invoke, beside an S3 trigger and a source-restricted ``*`` that must stay."""
    client = aws.client("lambda", account, region)
    name = f"asr-seed-public-{n}-{uuid.uuid4().hex[:6]}"
    arn = make_function(aws, account, region, name)
    client.add_permission(
        FunctionName=name, StatementId="public-invoke", Action="lambda:InvokeFunction", Principal="*"
    )
    client.add_permission(
        FunctionName=name,
        StatementId="s3-trigger",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        SourceAccount=account,
        SourceArn=f"arn:aws:s3:::asr-seed-uploads-{account}",
    )
    client.add_permission(
        FunctionName=name,
        StatementId="any-principal-own-account",
        Action="lambda:InvokeFunction",
        Principal="*",
        SourceAccount=account,
    )
    return Seeded(control_id, account, region, "AwsLambdaFunction", arn, "CRITICAL")
