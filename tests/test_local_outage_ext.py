"""The stand-in's outage: 503 ServiceUnavailable for a while, state kept, retried by botocore."""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from asr import local
from asr.aws import RETRY_CONFIG


def ec2(endpoint: str, config: Config) -> object:
    return boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1", config=config)


def test_calls_during_an_outage_get_503_and_botocore_retries_through_it(clean_aws: str) -> None:
    client = ec2(clean_aws, RETRY_CONFIG)
    group_id = client.create_security_group(GroupName="kept", Description="d")["GroupId"]
    local.served_requests(clear=True)
    local.outage(2)
    with pytest.raises(ClientError) as refused:
        ec2(clean_aws, Config(retries={"total_max_attempts": 1})).describe_security_groups()
    assert refused.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    started = time.monotonic()
    groups = client.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    assert groups[0]["GroupName"] == "kept"
    assert time.monotonic() - started > 0.5
    assert [c["action"] for c in local.served_requests()] == ["DescribeSecurityGroups"]
