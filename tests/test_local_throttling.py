"""The stand-in's AWS-style throttling, exercised through boto3 as the product meets it."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from asr import local
from asr.aws import RETRY_CONFIG
from asr.local import throttling
from asr.local.throttling_ext import BOTOCORE_THROTTLING_CODES, PATH

NO_RETRIES = Config(retries={"total_max_attempts": 1})
PRODUCT = "arn:aws:securityhub:us-east-1::product/aws/securityhub"


@pytest.fixture
def aws_endpoint(clean_aws: str) -> Iterator[str]:
    """A reset stand-in that has throttling off again after the test, whatever happened."""
    throttling.disable()
    yield clean_aws
    throttling.disable()


def client(
    endpoint: str, service: str, config: Config = NO_RETRIES, region: str = "us-east-1", **kw: Any
) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=region, config=config, **kw)


def refused(call: Callable[..., Any], **params: Any) -> ClientError:
    with pytest.raises(ClientError) as raised:
        call(**params)
    return raised.value


def code_and_status(error: ClientError) -> tuple[str, int]:
    return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]


def bucket(stats: dict[str, Any], **match: str) -> dict[str, Any]:
    found = [entry for entry in stats["counts"] if all(entry[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, stats["counts"])
    return found[0]


def test_off_by_default_a_burst_of_300_reads_passes(aws_endpoint: str) -> None:
    ec2 = client(aws_endpoint, "ec2")
    for _ in range(300):
        ec2.describe_security_groups()
    state = throttling.stats()
    assert state["enabled"] is False
    assert state["counts"] == [] and state["throttled"] == 0


def test_sixth_create_in_a_burst_is_refused_as_ec2_does_then_served_after_refill(aws_endpoint: str) -> None:
    throttling.enable(ec2_write=(5, 0.5))
    ec2 = client(aws_endpoint, "ec2")
    local.served_requests(clear=True)
    for n in range(5):
        ec2.create_security_group(GroupName=f"sg-{n}", Description="burst")
    error = refused(ec2.create_security_group, GroupName="sg-5", Description="burst")
    assert code_and_status(error) == ("RequestLimitExceeded", 503)
    assert error.response["Error"]["Message"] == "Request limit exceeded."
    # A refused call changes nothing and is not in the log of served calls.
    assert not ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["sg-5"]}])[
        "SecurityGroups"
    ]
    assert [call["action"] for call in local.served_requests()].count("CreateSecurityGroup") == 5

    time.sleep(2.2)  # one token back at 0.5 a second
    ec2.create_security_group(GroupName="sg-5", Description="after refill")
    counts = bucket(throttling.stats(), service="ec2", api_class="write")
    assert (counts["served"], counts["throttled"]) == (6, 1)


def test_reads_use_their_own_bucket(aws_endpoint: str) -> None:
    throttling.enable(ec2_write=(1, 0), ec2_read=(3, 0))
    ec2 = client(aws_endpoint, "ec2")
    ec2.create_security_group(GroupName="one", Description="d")
    error = refused(ec2.create_security_group, GroupName="two", Description="d")
    assert code_and_status(error)[0] == "RequestLimitExceeded"
    for _ in range(3):  # the empty write bucket does not stop reads
        ec2.describe_security_groups()
    assert code_and_status(refused(ec2.describe_security_groups)) == ("RequestLimitExceeded", 503)
    state = throttling.stats()
    assert bucket(state, api_class="write")["throttled"] == 1
    assert (bucket(state, api_class="read")["served"], bucket(state, api_class="read")["throttled"]) == (3, 1)


def test_buckets_are_per_account_and_per_region(aws_endpoint: str) -> None:
    throttling.enable(ec2_write=(1, 0))
    creds = client(aws_endpoint, "sts").assume_role(
        RoleArn=f"arn:aws:iam::{local.MEMBER_ACCOUNT}:role/ASRMember", RoleSessionName="throttling-test"
    )["Credentials"]
    member = {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }
    targets = {
        ("123456789012", "us-east-1"): client(aws_endpoint, "ec2"),
        ("123456789012", "eu-west-1"): client(aws_endpoint, "ec2", region="eu-west-1"),
        (local.MEMBER_ACCOUNT, "us-east-1"): client(aws_endpoint, "ec2", **member),
    }
    for ec2 in targets.values():
        ec2.create_security_group(GroupName="first", Description="d")
    for ec2 in targets.values():
        error = refused(ec2.create_security_group, GroupName="2nd", Description="d")
        assert code_and_status(error)[0] == "RequestLimitExceeded"
    state = throttling.stats()
    for account, region in targets:
        counts = bucket(state, account=account, region=region, service="ec2")
        assert (counts["served"], counts["throttled"]) == (1, 1)


def test_a_global_service_has_one_bucket_per_account_whatever_the_region(aws_endpoint: str) -> None:
    throttling.enable(iam_read=(2, 0))
    for region in ("us-east-1", "eu-west-1"):
        client(aws_endpoint, "iam", region=region).list_roles()
    error = refused(client(aws_endpoint, "iam", region="ap-southeast-2").list_roles)
    assert code_and_status(error) == ("Throttling", 400)
    counts = bucket(throttling.stats(), service="iam", api_class="read")
    assert (counts["region"], counts["served"], counts["throttled"]) == ("us-east-1", 2, 1)


def test_security_hub_refuses_with_too_many_requests_per_api(aws_endpoint: str) -> None:
    throttling.enable(securityhub_GetFindings=(2, 0))
    securityhub = client(aws_endpoint, "securityhub")
    securityhub.get_findings()
    securityhub.get_findings()
    error = refused(securityhub.get_findings)
    assert code_and_status(error) == ("TooManyRequestsException", 429)
    assert error.response["Error"]["Message"] == "Too Many Requests"
    # BatchUpdateFindings has its own bucket (30, refill 10/s).
    securityhub.batch_update_findings(
        FindingIdentifiers=[{"Id": "unknown", "ProductArn": PRODUCT}], Workflow={"Status": "NOTIFIED"}
    )
    assert bucket(throttling.stats(), service="securityhub", api_class="BatchUpdateFindings")["served"] == 1


def test_ssm_refuses_with_throttling_exception(aws_endpoint: str) -> None:
    throttling.enable()  # StartAutomationExecution: 1 a second, no more in a burst
    ssm = client(aws_endpoint, "ssm")
    ssm.start_automation_execution(DocumentName="AWS-DisablePublicAccessForSecurityGroup")
    error = refused(ssm.start_automation_execution, DocumentName="AWS-DisablePublicAccessForSecurityGroup")
    assert code_and_status(error) == ("ThrottlingException", 400)
    assert error.response["Error"]["Message"] == "Rate exceeded"
    ssm.describe_automation_executions()  # its own bucket
    state = throttling.stats()
    assert bucket(state, service="ssm", api_class="StartAutomationExecution")["throttled"] == 1
    assert bucket(state, service="ssm", api_class="DescribeAutomationExecutions")["throttled"] == 0


@pytest.mark.parametrize(
    ("service", "rule", "call", "expected"),
    [
        ("ec2", "ec2_read", lambda c: c.describe_security_groups(), ("RequestLimitExceeded", 503)),
        (
            "securityhub",
            "securityhub_GetFindings",
            lambda c: c.get_findings(),
            ("TooManyRequestsException", 429),
        ),
        (
            "ssm",
            "ssm_DescribeAutomationExecutions",
            lambda c: c.describe_automation_executions(),
            ("ThrottlingException", 400),
        ),
        ("iam", "iam_read", lambda c: c.list_roles(), ("Throttling", 400)),
        ("s3", "s3_read", lambda c: c.list_buckets(), ("SlowDown", 503)),
        ("lambda", "lambda_read", lambda c: c.list_functions(), ("TooManyRequestsException", 429)),
        ("kms", "kms_read", lambda c: c.list_keys(), ("ThrottlingException", 400)),
    ],
)
def test_botocore_retries_every_refusal_as_throttling(
    aws_endpoint: str, service: str, rule: str, call: Callable[[Any], Any], expected: tuple[str, int]
) -> None:
    throttling.enable(**{rule: (0, 0)})  # always empty
    error = refused(
        lambda: call(
            client(aws_endpoint, service, Config(retries={"mode": "standard", "total_max_attempts": 2}))
        )
    )
    code, status = code_and_status(error)
    assert code in BOTOCORE_THROTTLING_CODES
    assert (code, status) == expected
    # Standard mode retried it: botocore took it for a retryable (throttling) error.
    assert error.response["ResponseMetadata"]["RetryAttempts"] == 1
    assert bucket(throttling.stats(), service=service)["throttled"] == 2


@pytest.mark.parametrize(
    ("service", "rule", "call", "expected"),
    [
        (
            "organizations",
            "organizations_ListAccounts",
            lambda c: c.list_accounts(),
            ("TooManyRequestsException", 400),
        ),
        ("sqs", "sqs_ListQueues", lambda c: c.list_queues(), ("RequestThrottled", 403)),
    ],
)
def test_botocore_s_legacy_retries_know_the_refusal_too(
    aws_endpoint: str, service: str, rule: str, call: Callable[[Any], Any], expected: tuple[str, int]
) -> None:
    """Legacy mode (botocore's default) retries only the codes and statuses of its _retry.json."""
    throttling.enable(**{rule: (0, 0)})
    legacy = Config(retries={"mode": "legacy", "total_max_attempts": 2})
    error = refused(lambda: call(client(aws_endpoint, service, legacy)))
    assert code_and_status(error) == expected
    assert error.response["ResponseMetadata"]["RetryAttempts"] == 1


@pytest.mark.parametrize("config", [RETRY_CONFIG, Config(retries={"mode": "standard", "max_attempts": 8})])
def test_botocore_retries_absorb_a_burst(aws_endpoint: str, config: Config) -> None:
    throttling.enable(ec2_write=(3, 10))
    ec2 = client(aws_endpoint, "ec2", config)
    for n in range(15):
        ec2.create_security_group(GroupName=f"sg-{n}", Description="burst")
    counts = bucket(throttling.stats(), service="ec2", api_class="write")
    assert counts["served"] == 15
    assert counts["throttled"] > 0


def test_concurrent_calls_take_exactly_the_tokens_there_are(aws_endpoint: str) -> None:
    throttling.enable(ec2_read=(10, 0))
    clients = [client(aws_endpoint, "ec2") for _ in range(8)]

    def describe(n: int) -> bool:
        try:
            clients[n % len(clients)].describe_security_groups()
            return True
        except ClientError:
            return False

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(describe, range(24)))
    assert results.count(True) == 10
    counts = bucket(throttling.stats(), service="ec2", api_class="read")
    assert (counts["served"], counts["throttled"]) == (10, 14)


def test_per_action_buckets_and_unlimited_rules(aws_endpoint: str) -> None:
    throttling.enable(**{"ec2:write": {"burst": 1, "rate": 0, "per": "action"}, "ec2:read": None})
    ec2 = client(aws_endpoint, "ec2")
    group = ec2.create_security_group(GroupName="one", Description="d")["GroupId"]
    refused(ec2.create_security_group, GroupName="two", Description="d")
    ec2.create_tags(Resources=[group], Tags=[{"Key": "k", "Value": "v"}])  # another API, its own bucket
    for _ in range(5):
        ec2.describe_security_groups()  # unlimited: not counted
    state = throttling.stats()
    assert state["buckets"]["ec2:read"] is None
    assert {entry["api_class"] for entry in state["counts"]} == {"CreateSecurityGroup", "CreateTags"}


def test_disable_returns_the_counts_and_restores_the_defaults(aws_endpoint: str) -> None:
    throttling.enable(ec2_read=(0, 0))
    refused(client(aws_endpoint, "ec2").describe_security_groups)
    before = throttling.disable()
    assert before["enabled"] is True and before["throttled"] == 1
    state = throttling.stats()
    assert state["enabled"] is False and state["counts"] == []
    assert state["buckets"]["ec2:read"] == {"burst": 100, "rate": 20, "per": "class"}
    assert state["buckets"]["securityhub:GetFindings"] == {"burst": 6, "rate": 3, "per": "class"}
    client(aws_endpoint, "ec2").describe_security_groups()


def test_bad_configurations_are_refused(aws_endpoint: str) -> None:
    with pytest.raises(ValueError, match="burst"):
        throttling.enable(ec2_write=(-1, 1))
    with pytest.raises(ValueError, match="rule key"):
        throttling.enable(**{"ec2:Describe*": (1, 1)})
    with pytest.raises(ValueError, match="names no API class"):
        throttling.enable(ec2=(1, 1))
    url = f"{local.endpoint_url()}{PATH}"
    assert requests.post(url, data="not json", timeout=10).status_code == 400
    assert requests.post(url, json={"enabled": "yes"}, timeout=10).status_code == 400
    assert throttling.stats()["enabled"] is False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_environment_variable_turns_it_on_at_server_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASR_LOCAL_THROTTLING", '{"buckets": {"ec2:read": {"burst": 1, "rate": 0}}}')
    port = _free_port()
    endpoint = local.up(port)
    try:
        assert throttling.stats(port)["enabled"] is True
        ec2 = client(endpoint, "ec2")
        ec2.describe_security_groups()
        assert code_and_status(refused(ec2.describe_security_groups))[0] == "RequestLimitExceeded"
    finally:
        local.down(port)


def test_environment_values() -> None:
    from asr.local.throttling_ext import STATE, configure_from_environment

    try:
        configure_from_environment("off")
        assert STATE.enabled is False
        configure_from_environment("on")
        assert STATE.enabled is True
        with pytest.raises(ValueError, match="ASR_LOCAL_THROTTLING"):
            configure_from_environment("sometimes")
    finally:
        STATE.configure(False, {})
