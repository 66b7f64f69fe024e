"""AWS clients across accounts: one per (account, region, service), and member credentials
assumed again before they expire."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from asr import local
from asr.aws import AwsContext
from asr.config import Settings
from asr.local import MEMBER_ACCOUNT

REGION = "us-east-1"


def assume_role_calls() -> int:
    return sum(
        1 for call in local.served_requests() if (call["service"], call["action"]) == ("sts", "AssumeRole")
    )


def test_threads_asking_at_once_share_one_client_and_one_assumed_role(aws: Any) -> None:
    local.served_requests(clear=True)
    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(lambda _: aws.client("ec2", MEMBER_ACCOUNT, REGION), range(16)))
    assert len({id(client) for client in made}) == 1
    assert assume_role_calls() == 1
    assert aws.client("ec2", MEMBER_ACCOUNT, "eu-west-1") is not made[0], "one client per region"
    assert assume_role_calls() == 1, "one role session per account"


def test_member_credentials_are_assumed_again_shortly_before_they_expire(aws: Any) -> None:
    first = aws.client("ec2", MEMBER_ACCOUNT, REGION)
    first_keys = aws.credentials(MEMBER_ACCOUNT)
    assert aws._expires[MEMBER_ACCOUNT] > time.time() + 1800, "the stand-in's sessions last an hour"
    local.served_requests(clear=True)
    assert aws.client("ec2", MEMBER_ACCOUNT, REGION) is first

    aws._expires[MEMBER_ACCOUNT] = time.time() + 60  # an hour later: about to expire
    again = aws.client("ec2", MEMBER_ACCOUNT, REGION)
    assert again is not first
    assert aws.credentials(MEMBER_ACCOUNT) != first_keys
    assert assume_role_calls() == 1
    again.describe_security_groups()
    assert aws.client("ec2", MEMBER_ACCOUNT, REGION) is again, "fresh credentials are kept"


def test_the_airflow_connection_session_shares_this_process_botocore_data(
    clean_aws: str, monkeypatch: Any
) -> None:
    # The connection's session, and the one its hook assumes the administrator role with,
    # read service models through the member session's loader: parsed once per process
    # (and inherited warm by forked tasks) instead of once per task.
    from airflow.providers.amazon.aws.hooks import base_aws

    from asr import aws as aws_module
    from asr.config import Settings

    loader = aws_module._member()._session.get_component("data_loader")
    basic_sessions: list[Any] = []

    class Configured(base_aws.BaseSessionFactory):  # what ``[aws] session_factory`` would name
        def _create_basic_session(self, session_kwargs: dict[str, Any]) -> Any:
            basic_sessions.append(super()._create_basic_session(session_kwargs))
            return basic_sessions[-1]

    monkeypatch.setattr(base_aws, "SessionFactory", Configured)
    aws_module._shared_data_session_factory.cache_clear()
    try:
        context = aws_module.AwsContext.from_airflow("aws_default", Settings().member_role_name)
    finally:
        aws_module._shared_data_session_factory.cache_clear()
    assert context.base_session._session.get_component("data_loader") is loader
    [basic] = basic_sessions
    assert basic._session.get_component("data_loader") is loader
    local.served_requests(clear=True)
    assert context.admin_client("securityhub", REGION).get_findings(MaxResults=1)["Findings"] == []
    assert context.client("ec2", MEMBER_ACCOUNT, REGION).describe_security_groups()["SecurityGroups"]
    assert assume_role_calls() == 1, "the member role, assumed with the administrator's credentials"


@pytest.mark.parametrize(
    ("region", "arn"),
    [
        ("us-east-1", "arn:aws:iam::111111111111:role/ASRMemberRole"),
        ("us-gov-west-1", "arn:aws-us-gov:iam::111111111111:role/ASRMemberRole"),
        ("cn-north-1", "arn:aws-cn:iam::111111111111:role/ASRMemberRole"),
        (None, "arn:aws:iam::111111111111:role/ASRMemberRole"),
    ],
)
def test_member_roles_are_named_in_the_administrator_s_partition(region: str | None, arn: str) -> None:
    """GovCloud and China have their own partitions: an arn:aws: role cannot be assumed there."""
    session = boto3.Session(region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
    assert AwsContext(session, "ASRMemberRole").role_arn("111111111111") == arn


def test_a_session_without_a_region_is_where_security_hub_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """Instance credentials name no region: GovCloud's administrator must not assume arn:aws: roles."""
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    assert session.region_name is None
    gov = AwsContext(session, "ASRMemberRole", home_region="us-gov-west-1")
    assert gov.role_arn("111111111111") == "arn:aws-us-gov:iam::111111111111:role/ASRMemberRole"
    assert gov.home_region == "us-gov-west-1"


def test_the_member_role_is_assumed_with_the_connection_s_external_id(
    clean_aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An Airflow connection's ``member_role_external_id`` extra reaches AssumeRole, where the
    member roles' trust policy may require it (sts:ExternalId); without it none is sent."""
    connection = json.loads(local.airflow_connection())
    connection["extra"]["member_role_external_id"] = "asr-external-7"
    monkeypatch.setenv("AIRFLOW_CONN_ASR_EXTERNAL", json.dumps(connection))
    role = Settings().member_role_name
    sent: dict[str, list[dict[str, Any]]] = {}
    for conn_id in ("asr_external", "aws_default"):
        context = AwsContext.from_airflow(conn_id, role)
        calls = sent.setdefault(conn_id, [])
        context.base_session.events.register(
            "provide-client-params.sts.AssumeRole", lambda params, calls=calls, **_: calls.append(params)
        )
        local.served_requests(clear=True)
        context.client("ec2", MEMBER_ACCOUNT, REGION).describe_security_groups()
        assert [c["action"] for c in local.served_requests() if c["service"] == "sts"] == ["AssumeRole"]
    assert AwsContext.from_airflow("asr_external", role).external_id == "asr-external-7"
    member_role = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/{role}"
    [with_id] = sent["asr_external"]
    assert (with_id["RoleArn"], with_id.get("ExternalId")) == (member_role, "asr-external-7")
    [without] = sent["aws_default"]
    assert without["RoleArn"] == member_role and "ExternalId" not in without


def test_every_client_keeps_the_connection_s_botocore_settings_and_asr_s_retries(
    clean_aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy or a timeout set in the connection's ``config_kwargs`` reached only the
    administrator's own AssumeRole: Security Hub and member clients went without it."""
    connection = json.loads(local.airflow_connection())
    connection["extra"]["config_kwargs"] = {"connect_timeout": 7, "proxies": {"https": "http://proxy:3128"}}
    monkeypatch.setenv("AIRFLOW_CONN_ASR_PROXIED", json.dumps(connection))
    context = AwsContext.from_airflow("asr_proxied", Settings().member_role_name)
    for client in (
        context.admin_client("securityhub", REGION),
        context.client("ec2", MEMBER_ACCOUNT, REGION),
    ):
        assert client.meta.config.connect_timeout == 7
        assert client.meta.config.proxies == {"https": "http://proxy:3128"}
        assert client.meta.config.retries["mode"] == "adaptive"


def test_the_connection_is_looked_up_once_so_a_later_failed_lookup_cannot_swap_credentials(
    clean_aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lookup that succeeded, then a second one that failed for a moment (which the task SDK
    reports as not found), left the session on the host's credentials with only the provider's
    warning: the connection's role, endpoint and external id silently gone."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    connection = json.loads(local.airflow_connection())
    connection["extra"]["member_role_external_id"] = "asr-external-9"
    monkeypatch.setenv("AIRFLOW_CONN_ASR_FLAKY", json.dumps(connection))
    lookups: list[str] = []
    found = AwsBaseHook.get_connection

    def once_then_missing(conn_id: str) -> Any:
        lookups.append(conn_id)
        if len(lookups) > 1:
            raise AirflowNotFoundException(f"The conn_id `{conn_id}` isn't defined")
        return found(conn_id)

    monkeypatch.setattr(AwsBaseHook, "get_connection", staticmethod(once_then_missing))
    context = AwsContext.from_airflow("asr_flaky", Settings().member_role_name)
    assert lookups == ["asr_flaky"]
    assert context.external_id == "asr-external-9"
    assert context.endpoint_for("sts") == local.endpoint_url()


def test_the_member_session_is_named_after_the_run_and_a_throttled_assume_is_tried_again(
    clean_aws: str,
) -> None:
    """CloudTrail shows the session name with every change: it leads back to the run. STS
    throttles too: a refused AssumeRole does not fail the account's findings."""
    from botocore.exceptions import ClientError

    from asr.aws import session_name
    from asr.remediate import retry_throttled

    name = session_name("asr_sweep", "scheduled__2026-12-05T10:00:00+00:00")
    assert name == "asr.asr_sweep.scheduled__2026-12-05T10.00.00+00.00"
    assert len(session_name("asr_sweep", "x" * 250)) == 64
    context = AwsContext.from_airflow("aws_default", Settings().member_role_name, role_session_name=name)
    sent: list[dict[str, Any]] = []
    throttled = [ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "AssumeRole")]

    def assume(params: dict[str, Any], **_: Any) -> None:
        sent.append(params)
        if throttled:
            raise throttled.pop()

    context.base_session.events.register("provide-client-params.sts.AssumeRole", assume)
    retry_throttled(lambda: context.credentials(MEMBER_ACCOUNT), sleep=lambda _: None)
    assert [p["RoleSessionName"] for p in sent] == [name, name]


def test_member_s3_calls_name_the_account_as_the_bucket_s_expected_owner(aws: Any) -> None:
    """Bucket names carry no account: a bucket deleted since and re-made by another account, or
    a log bucket name another account took, must be refused (AccessDenied), not acted on."""
    s3 = aws.client("s3", MEMBER_ACCOUNT, "us-east-1")
    sent: list[tuple[str, str | None]] = []
    s3.meta.events.register(
        "before-send.s3",
        lambda request, **_: sent.append(
            (request.method, request.headers.get("x-amz-expected-bucket-owner"))
        ),
    )
    s3.create_bucket(Bucket="asr-owner-check")  # CreateBucket takes no expected owner
    s3.put_bucket_versioning(Bucket="asr-owner-check", VersioningConfiguration={"Status": "Enabled"})
    s3.get_bucket_versioning(Bucket="asr-owner-check", ExpectedBucketOwner=MEMBER_ACCOUNT)
    owner = MEMBER_ACCOUNT.encode()  # botocore sends header values as bytes
    assert sent == [("PUT", None), ("PUT", owner), ("GET", owner)]  # a read only when asked
    s3.get_bucket_versioning(Bucket="asr-owner-check")
    assert sent[-1] == ("GET", None)
    assert aws.admin_client("s3", "us-east-1") is not s3
