"""The stand-in's denied accounts: AssumeRole refused as AWS refuses it."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from asr import local


def assume(endpoint: str, account: str) -> dict:
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1")
    return sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/ASRMemberRole", RoleSessionName="test")


def test_assume_role_into_a_denied_account_is_access_denied(clean_aws: str) -> None:
    local.deny_accounts(["333333333333"])
    with pytest.raises(ClientError) as refused:
        assume(clean_aws, "333333333333")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert assume(clean_aws, "222222222222")["Credentials"]["AccessKeyId"]
    local.reset()
    assert assume(clean_aws, "333333333333")["Credentials"]["AccessKeyId"]
