"""The stand-in's SSM service settings (asr.local.ssm_service_ext), exercised through boto3."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from asr.local import MEMBER_ACCOUNT

SHARING = "/ssm/documents/console/public-sharing-permission"
ARN = f"arn:aws:ssm:us-east-1:123456789012:servicesetting{SHARING}"


@pytest.fixture
def ssm(clean_aws: str):  # type: ignore[no-untyped-def]
    return boto3.client("ssm", endpoint_url=clean_aws, region_name="us-east-1")


def test_default_value_is_aws_default(ssm) -> None:
    setting = ssm.get_service_setting(SettingId=SHARING)["ServiceSetting"]
    assert {k: setting[k] for k in ("SettingId", "SettingValue", "Status", "LastModifiedUser", "ARN")} == {
        "SettingId": SHARING,
        "SettingValue": "Enable",
        "Status": "Default",
        "LastModifiedUser": "System",
        "ARN": ARN,
    }
    assert "LastModifiedDate" in setting


def test_update_is_kept_per_account_and_region(ssm, clean_aws: str) -> None:
    ssm.update_service_setting(SettingId=ARN, SettingValue="Disable")
    setting = ssm.get_service_setting(SettingId=SHARING)["ServiceSetting"]
    assert (setting["SettingValue"], setting["Status"]) == ("Disable", "Customized")
    assert setting["LastModifiedUser"].startswith("arn:aws:")

    other_region = boto3.client("ssm", endpoint_url=clean_aws, region_name="eu-west-1")
    assert other_region.get_service_setting(SettingId=SHARING)["ServiceSetting"]["SettingValue"] == "Enable"
    sts = boto3.client("sts", endpoint_url=clean_aws, region_name="us-east-1")
    member = sts.assume_role(
        RoleArn=f"arn:aws:iam::{MEMBER_ACCOUNT}:role/ASRMemberRole", RoleSessionName="test"
    )
    credentials = member["Credentials"]
    other_account = boto3.client(
        "ssm",
        endpoint_url=clean_aws,
        region_name="us-east-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    assert other_account.get_service_setting(SettingId=SHARING)["ServiceSetting"]["SettingValue"] == "Enable"


def test_reset_returns_to_the_default(ssm) -> None:
    ssm.update_service_setting(SettingId=SHARING, SettingValue="Disable")
    reset = ssm.reset_service_setting(SettingId=SHARING)["ServiceSetting"]
    assert (reset["SettingValue"], reset["Status"]) == ("Enable", "Default")
    assert ssm.get_service_setting(SettingId=SHARING)["ServiceSetting"]["SettingValue"] == "Enable"


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (
            lambda ssm: ssm.update_service_setting(SettingId=SHARING, SettingValue="Off"),
            "ValidationException",
        ),
        (lambda ssm: ssm.get_service_setting(SettingId="/ssm/not/a/setting"), "ServiceSettingNotFound"),
        (
            lambda ssm: ssm.get_service_setting(SettingId=ARN.replace("123456789012", "210987654321")),
            "ServiceSettingNotFound",
        ),
    ],
)
def test_invalid_requests_are_refused(ssm, call, code: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as raised:
        call(ssm)
    assert raised.value.response["Error"]["Code"] == code
    assert ssm.get_service_setting(SettingId=SHARING)["ServiceSetting"]["SettingValue"] == "Enable"
