"""The stand-in's IAM extension (asr.local.iam_ext), exercised through boto3 and the seeders' client."""

from __future__ import annotations

import datetime
import json

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from asr.local.seeders import days_ago
from asr.local.seeders.iam import CREDENTIAL_HISTORY_PATH, PASSWORD, set_credential_history

ACCOUNT = "123456789012"  # the account moto gives plain credentials
SUPPORT = "arn:aws:iam::aws:policy/AWSSupportAccess"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}],
    }
)


@pytest.fixture
def iam(clean_aws: str):  # type: ignore[no-untyped-def]
    return boto3.client("iam", endpoint_url=clean_aws, region_name="us-east-1")


def age_days(when: datetime.datetime) -> float:
    return (datetime.datetime.now(datetime.UTC) - when).total_seconds() / 86400


def test_aws_managed_policy_can_be_attached_and_found(iam) -> None:
    iam.create_role(RoleName="support", AssumeRolePolicyDocument=TRUST)
    iam.attach_role_policy(RoleName="support", PolicyArn=SUPPORT)

    assert iam.get_policy(PolicyArn=SUPPORT)["Policy"]["Arn"] == SUPPORT
    entities = iam.list_entities_for_policy(PolicyArn=SUPPORT)
    assert [r["RoleName"] for r in entities["PolicyRoles"]] == ["support"]
    assert iam.list_attached_role_policies(RoleName="support")["AttachedPolicies"] == [
        {"PolicyName": "AWSSupportAccess", "PolicyArn": SUPPORT}
    ]
    iam.detach_role_policy(RoleName="support", PolicyArn=SUPPORT)
    assert iam.list_entities_for_policy(PolicyArn=SUPPORT)["PolicyRoles"] == []


def test_a_role_a_stack_makes_holds_its_managed_and_inline_policies(iam, clean_aws: str) -> None:
    """As CloudFormation makes it: ManagedPolicyArns attached, Policies readable as documents."""
    grant = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}],
    }
    template = {
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": "made-by-stack",
                    "AssumeRolePolicyDocument": json.loads(TRUST),
                    "ManagedPolicyArns": [
                        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSSupportAccess"}
                    ],
                    "Policies": [{"PolicyName": "logs", "PolicyDocument": grant}],
                },
            }
        }
    }
    cloudformation = boto3.client("cloudformation", endpoint_url=clean_aws, region_name="us-east-1")
    cloudformation.create_stack(
        StackName="roles", TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_NAMED_IAM"]
    )

    assert iam.list_attached_role_policies(RoleName="made-by-stack")["AttachedPolicies"] == [
        {"PolicyName": "AWSSupportAccess", "PolicyArn": SUPPORT}
    ]
    assert iam.get_role_policy(RoleName="made-by-stack", PolicyName="logs")["PolicyDocument"] == grant


@pytest.mark.parametrize(
    "arn",
    ["arn:aws:iam::aws:policy/NoSuchPolicyAnywhere", "arn:aws:iam::aws:policy/service-role/AWSSupportAccess"],
)
def test_unknown_aws_managed_policy_is_not_attachable(iam, arn: str) -> None:
    iam.create_role(RoleName="support", AssumeRolePolicyDocument=TRUST)
    with pytest.raises(ClientError) as raised:
        iam.attach_role_policy(RoleName="support", PolicyArn=arn)
    assert raised.value.response["Error"]["Code"] == "NoSuchEntity"


def test_login_profile_has_its_own_create_date(iam, clean_aws: str) -> None:
    iam.create_user(UserName="alice")
    iam.create_login_profile(UserName="alice", Password="Correct-Horse-1")
    set_credential_history(clean_aws, ACCOUNT, "alice", PASSWORD, days_ago(30))
    assert 29.9 < age_days(iam.get_login_profile(UserName="alice")["LoginProfile"]["CreateDate"]) < 30.1

    iam.delete_login_profile(UserName="alice")
    iam.create_login_profile(UserName="alice", Password="Correct-Horse-2")

    assert age_days(iam.get_login_profile(UserName="alice")["LoginProfile"]["CreateDate"]) < 0.01
    assert age_days(iam.get_user(UserName="alice")["User"]["CreateDate"]) > 29.9


def test_access_key_history_is_reported_as_aws_reports_it(iam, clean_aws: str) -> None:
    iam.create_user(UserName="bob")
    old = iam.create_access_key(UserName="bob")["AccessKey"]["AccessKeyId"]
    never = iam.create_access_key(UserName="bob")["AccessKey"]["AccessKeyId"]
    set_credential_history(clean_aws, ACCOUNT, "bob", old, days_ago(120), days_ago(100))
    set_credential_history(clean_aws, ACCOUNT, "bob", never, days_ago(50), None)

    keys = {k["AccessKeyId"]: k for k in iam.list_access_keys(UserName="bob")["AccessKeyMetadata"]}
    assert 119.9 < age_days(keys[old]["CreateDate"]) < 120.1
    assert 49.9 < age_days(keys[never]["CreateDate"]) < 50.1
    used = iam.get_access_key_last_used(AccessKeyId=old)["AccessKeyLastUsed"]
    assert 99.9 < age_days(used["LastUsedDate"]) < 100.1
    assert (used["ServiceName"], used["Region"]) == ("iam", "us-east-1")
    assert "LastUsedDate" not in iam.get_access_key_last_used(AccessKeyId=never)["AccessKeyLastUsed"]
    assert age_days(iam.get_user(UserName="bob")["User"]["CreateDate"]) > 119.9


def test_password_last_use_shows_in_get_user(iam, clean_aws: str) -> None:
    iam.create_user(UserName="carol")
    iam.create_login_profile(UserName="carol", Password="Correct-Horse-1")
    assert "PasswordLastUsed" not in iam.get_user(UserName="carol")["User"]
    set_credential_history(clean_aws, ACCOUNT, "carol", PASSWORD, days_ago(80), days_ago(70))
    assert 69.9 < age_days(iam.get_user(UserName="carol")["User"]["PasswordLastUsed"]) < 70.1


@pytest.mark.parametrize(
    ("change", "status", "problem"),
    [
        ({"user_name": "nobody"}, 404, "NoSuchEntity"),
        ({"credential": "AKIA0000000000000000"}, 404, "cannot be found"),
        ({"credential": PASSWORD}, 404, "Login profile"),
        ({"created": "2999-01-01T00:00:00Z"}, 400, "in the future"),
        ({"created": "last tuesday"}, 400, "not an ISO-8601 time"),
        ({"last_used": "2001-01-01T00:00:00Z"}, 400, "before created"),
        ({"account_id": "12"}, 400, "12-digit"),
    ],
)
def test_credential_history_refuses_what_cannot_be(
    iam, clean_aws: str, change: dict, status: int, problem: str
) -> None:
    iam.create_user(UserName="dave")
    key = iam.create_access_key(UserName="dave")["AccessKey"]["AccessKeyId"]
    body = {"account_id": ACCOUNT, "user_name": "dave", "credential": key, "created": days_ago(10)} | change
    response = requests.post(clean_aws + CREDENTIAL_HISTORY_PATH, json=body, timeout=10)
    assert response.status_code == status
    assert problem in response.json()["error"]
    assert age_days(iam.list_access_keys(UserName="dave")["AccessKeyMetadata"][0]["CreateDate"]) < 0.01


def test_credential_history_takes_only_post(clean_aws: str) -> None:
    assert requests.get(clean_aws + CREDENTIAL_HISTORY_PATH, timeout=10).status_code == 405


@pytest.mark.parametrize(
    ("service", "name"),
    [
        ("config.amazonaws.com", "AWSServiceRoleForConfig"),
        ("guardduty.amazonaws.com", "AWSServiceRoleForAmazonGuardDuty"),
        ("macie.amazonaws.com", "AWSServiceRoleForAmazonMacie"),
    ],
)
def test_a_service_linked_role_has_the_name_aws_gives_it(iam, service: str, name: str) -> None:
    role = iam.create_service_linked_role(AWSServiceName=service)["Role"]
    assert role["RoleName"] == name
    assert iam.get_role(RoleName=name)["Role"]["Path"] == f"/aws-service-role/{service}/"
