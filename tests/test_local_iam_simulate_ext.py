"""The stand-in's IAM policy simulator (asr.local.iam_simulate_ext): a role's identity policies
judged as IAM judges them, through boto3."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from asr.local.iam_simulate_ext import decision

ACCOUNT = "123456789012"  # the account moto gives plain credentials
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
PARAMETER = f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter"
READ = "ssm:GetParameters"


@pytest.fixture
def iam(clean_aws: str) -> Any:
    return boto3.client("iam", endpoint_url=clean_aws, region_name="us-east-1")


def role(iam: Any, name: str = "builder", **settings: Any) -> str:
    made = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST), **settings)
    return str(made["Role"]["Arn"])


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def verdicts(iam: Any, arn: str, resources: list[str], actions: tuple[str, ...] = (READ,)) -> list[Any]:
    results = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=list(actions), ResourceArns=resources
    )["EvaluationResults"]
    for result in results:  # the resource's own result agrees
        [own] = result["ResourceSpecificResults"]
        assert (own["EvalResourceName"], own["EvalResourceDecision"]) == (
            result["EvalResourceName"],
            result["EvalDecision"],
        )
    return [(r["EvalActionName"], r["EvalResourceName"], r["EvalDecision"]) for r in results]


def test_inline_and_attached_policies_allow_by_wildcard_and_a_deny_wins(iam: Any) -> None:
    arn = role(iam)
    iam.put_role_policy(
        RoleName="builder",
        PolicyName="read-builds",
        PolicyDocument=policy(
            {"Effect": "Allow", "Action": "ssm:GetParameter*", "Resource": f"{PARAMETER}/asr/*"}
        ),
    )
    managed = iam.create_policy(
        PolicyName="no-prod",
        PolicyDocument=policy({"Effect": "Deny", "Action": "ssm:*", "Resource": f"{PARAMETER}/asr/prod/*"}),
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="builder", PolicyArn=managed)
    resources = [f"{PARAMETER}/asr/app/KEY", f"{PARAMETER}/asr/prod/KEY", f"{PARAMETER}/other/KEY"]
    assert verdicts(iam, arn, resources, (READ, "ssm:PutParameter")) == [
        (READ, resources[0], "allowed"),
        (READ, resources[1], "explicitDeny"),
        (READ, resources[2], "implicitDeny"),
        ("ssm:PutParameter", resources[0], "implicitDeny"),
        ("ssm:PutParameter", resources[1], "explicitDeny"),
        ("ssm:PutParameter", resources[2], "implicitDeny"),
    ]
    results = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=[READ], ResourceArns=resources[1:2]
    )
    assert [s["SourcePolicyId"] for s in results["EvaluationResults"][0]["MatchedStatements"]] == ["no-prod"]


def test_a_role_with_no_policy_and_one_without_resources_asked(iam: Any) -> None:
    arn = role(iam)
    assert verdicts(iam, arn, [f"{PARAMETER}/asr/app/KEY"]) == [
        (READ, f"{PARAMETER}/asr/app/KEY", "implicitDeny")
    ]
    iam.put_role_policy(
        RoleName="builder",
        PolicyName="all",
        PolicyDocument=policy({"Effect": "Allow", "Action": "*", "Resource": "*"}),
    )
    assert verdicts(iam, arn, []) == [(READ, "*", "allowed")]


def bounded(iam: Any, *boundary: dict[str, Any]) -> str:
    """A role allowed everything by its own policy, within a boundary of these statements."""
    arn = iam.create_policy(PolicyName="boundary", PolicyDocument=policy(*boundary))["Policy"]["Arn"]
    made = role(iam, PermissionsBoundary=arn)
    iam.put_role_policy(
        RoleName="builder",
        PolicyName="all",
        PolicyDocument=policy({"Effect": "Allow", "Action": "*", "Resource": "*"}),
    )
    return made


def test_the_permissions_boundary_must_allow_too(iam: Any) -> None:
    arn = bounded(iam, {"Effect": "Allow", "Action": "ssm:*", "Resource": f"{PARAMETER}/asr/*"})
    inside, outside = f"{PARAMETER}/asr/app/KEY", f"{PARAMETER}/other/KEY"
    assert verdicts(iam, arn, [inside, outside]) == [
        (READ, inside, "allowed"),
        (READ, outside, "implicitDeny"),
    ]


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ({"Effect": "Allow", "NotAction": "ssm:Put*", "Resource": "*"}, "allowed"),
        ({"Effect": "Allow", "NotAction": "SSM:GET*", "Resource": "*"}, "implicitDeny"),
        (
            {
                "Effect": "Allow",
                "Action": ["s3:*", "SSM:getparameters"],
                "NotResource": f"{PARAMETER}/other/*",
            },
            "allowed",
        ),
        ({"Effect": "Allow", "Action": READ, "NotResource": [f"{PARAMETER}/asr/*"]}, "implicitDeny"),
        ({"Effect": "Allow", "Action": READ, "Resource": f"{PARAMETER}/asr/ap?/KEY"}, "allowed"),
        ({"Effect": "Allow", "Action": READ, "Resource": f"{PARAMETER}/asr/a?/KEY"}, "implicitDeny"),
        (
            {"Effect": "Allow", "Action": READ, "Resource": f"{PARAMETER}/ASR/*"},
            "implicitDeny",
        ),  # ARNs: case kept
        # Conditions are not evaluated: the statement is left out, whichever its effect.
        (
            {
                "Effect": "Allow",
                "Action": READ,
                "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "true"}},
            },
            "implicitDeny",
        ),
    ],
)
def test_statements_match_as_iam_matches_them(statement: dict[str, Any], expected: str) -> None:
    documents = {"one": {"Statement": statement}}
    assert decision(documents, READ, f"{PARAMETER}/asr/app/KEY")[0] == expected


def test_a_conditional_deny_counts_so_the_stand_in_never_allows_more_than_aws() -> None:
    documents = {
        "allow": policy({"Effect": "Allow", "Action": READ, "Resource": "*"}),
        "deny": policy(
            {
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"Bool": {"aws:ViaAWSService": "false"}},
            }
        ),
    }
    assert decision(documents, READ, f"{PARAMETER}/asr/app/KEY") == ("explicitDeny", ["deny"])


def test_an_unknown_role_and_a_user_are_refused(iam: Any) -> None:
    with pytest.raises(ClientError) as missing:
        iam.simulate_principal_policy(PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:role/gone", ActionNames=[READ])
    assert missing.value.response["Error"]["Code"] == "NoSuchEntity"
    iam.create_user(UserName="alice")
    with pytest.raises(ClientError) as user:
        iam.simulate_principal_policy(
            PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:user/alice", ActionNames=[READ]
        )
    assert user.value.response["Error"]["Code"] == "InvalidInput"


def test_a_role_with_a_path_and_the_paginator(iam: Any) -> None:
    arn = role(iam, Path="/service-role/")
    iam.put_role_policy(
        RoleName="builder",
        PolicyName="read",
        PolicyDocument=policy({"Effect": "Allow", "Action": READ, "Resource": "*"}),
    )
    pages = iam.get_paginator("simulate_principal_policy").paginate(
        PolicySourceArn=arn, ActionNames=[READ], ResourceArns=[f"{PARAMETER}/x"]
    )
    assert [r["EvalDecision"] for page in pages for r in page["EvaluationResults"]] == ["allowed"]


def test_an_inline_deny_is_not_hidden_by_a_managed_policy_of_its_name(iam: Any) -> None:
    arn = role(iam)
    iam.put_role_policy(
        RoleName="builder",
        PolicyName="ssm",
        PolicyDocument=policy({"Effect": "Deny", "Action": READ, "Resource": "*"}),
    )
    managed = iam.create_policy(
        PolicyName="ssm", PolicyDocument=policy({"Effect": "Allow", "Action": READ, "Resource": "*"})
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="builder", PolicyArn=managed)
    key = f"{PARAMETER}/asr/app/KEY"
    assert verdicts(iam, arn, [key]) == [(READ, key, "explicitDeny")]


def test_a_deny_in_the_boundary_is_an_explicit_deny(iam: Any) -> None:
    arn = bounded(
        iam,
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": READ, "Resource": f"{PARAMETER}/asr/*"},
    )
    key = f"{PARAMETER}/asr/app/KEY"
    assert verdicts(iam, arn, [key]) == [(READ, key, "explicitDeny")]
