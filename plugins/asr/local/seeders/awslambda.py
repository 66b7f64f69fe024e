"""Lambda misconfigurations."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from typing import Any

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder

ROLE_NAME = "asr-seed-lambda-execution"
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def execution_role(iam: Any) -> str:
    """The seeded functions' role, made once per account (moto checks that it exists)."""
    try:
        return iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY))
        return role["Role"]["Arn"]


def function_code() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("index.py", "def handler(event, context):\n    return None\n")
    return archive.getvalue()


@seeder("Lambda.1")
def public_function(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A function anyone may invoke, beside an S3 trigger and a source-restricted ``*`` that must stay."""
    client = aws.client("lambda", account, region)
    name = f"asr-seed-public-{n}-{uuid.uuid4().hex[:6]}"
    arn = client.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=execution_role(aws.client("iam", account, region)),
        Handler="index.handler",
        Code={"ZipFile": function_code()},
    )["FunctionArn"]
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
