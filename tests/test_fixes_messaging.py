"""Lambda.1, SNS.1, SQS.1, ECR.1: what each fix keeps, what it refuses, and its parameters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asr.actions import NotReversible
from asr.actions.awslambda import add_permission_args, is_public_statement
from asr.aws import Clients
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import seed_one
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource

REGION = "us-east-1"


def fix(aws: Any, control: str, resource_arn: str, **overrides: Any) -> tuple[Result, Clients]:
    """Run a control's playbook on the resource a finding would name."""
    playbook = registry().playbooks[control]
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    resource_id = playbook.extract_resource_id(resource_arn, MEMBER_ACCOUNT)
    return remediate_resource(playbook.build_action(overrides), clients, resource_id), clients


def seeded_arn(aws: Any, control: str) -> str:
    return seed_one(aws, control, MEMBER_ACCOUNT, REGION).resource_id


# Lambda.1


def anyone_if(operator: str, key: str, value: str) -> dict[str, Any]:
    """An Allow statement to any principal under one condition."""
    return {"Effect": "Allow", "Principal": "*", "Condition": {operator: {key: value}}}


@pytest.mark.parametrize(
    ("statement", "public"),
    [
        ({"Effect": "Allow", "Principal": "*"}, True),
        ({"Effect": "Allow", "Principal": {"AWS": "*"}}, True),
        ({"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::333333333333:root", "*"]}}, True),
        ({"Effect": "Deny", "Principal": "*"}, False),
        ({"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}}, True),
        (
            {
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::b"}},
            },
            True,
        ),
        (
            {
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Condition": {"StringEquals": {"AWS:SourceAccount": "111111111111"}},
            },
            False,
        ),
        ({"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}}, False),
        ({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::*:root"}}, True),
        (anyone_if("ArnLike", "AWS:SourceArn", "arn:aws:s3:::*"), True),
        (anyone_if("StringLike", "aws:SourceAccount", "*"), True),
        (anyone_if("StringEquals", "aws:SourceAccount", "${aws:PrincipalAccount}"), True),
        ({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::333333333333:root"}}, False),
        (anyone_if("ArnLike", "AWS:SourceArn", "arn:aws:s3:::b"), False),
        (anyone_if("StringEquals", "aws:SourceAccount", "1"), False),
        (anyone_if("StringNotEquals", "aws:SourceAccount", "1"), True),
        (anyone_if("ArnLikeIfExists", "aws:SourceArn", "arn:x"), True),
        (anyone_if("StringEquals", "lambda:FunctionUrlAuthType", "NONE"), True),
        # Lambda's documented way to share a function with an organization (add-permission
        # --principal '*' --principal-org-id): fixed values of who calls, so not public.
        (anyone_if("StringEquals", "aws:PrincipalOrgID", "o-a1b2c3"), False),
        (anyone_if("StringEquals", "aws:PrincipalAccount", "1"), False),
        (anyone_if("StringLike", "aws:PrincipalOrgID", "o-*"), True),
    ],
)
def test_public_statement_is_what_aws_config_counts_as_public(
    statement: dict[str, Any], public: bool
) -> None:
    assert is_public_statement(statement) is public


def test_both_statements_of_a_public_function_url_can_be_written_back() -> None:
    """Since October 2025 a public URL takes lambda:InvokeFunctionUrl and, with the
    InvokedViaFunctionUrl condition, lambda:InvokeFunction: a rollback must restore both."""
    url = {
        "Sid": "url",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "lambda:InvokeFunctionUrl",
        "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
    }
    invoke = {
        "Sid": "url-invoke",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "lambda:InvokeFunction",
        "Condition": {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}},
    }
    assert add_permission_args(url)["FunctionUrlAuthType"] == "NONE"
    assert add_permission_args(invoke) == {
        "StatementId": "url-invoke",
        "Action": "lambda:InvokeFunction",
        "Principal": "*",
        "InvokedViaFunctionUrl": True,
    }
    with pytest.raises(NotReversible, match="cannot write the condition Bool"):
        add_permission_args({**invoke, "Condition": {"Bool": {"lambda:InvokedViaFunctionUrl": "false"}}})


def policy_sids(clients: Clients, function_arn: str) -> list[str]:
    policy = json.loads(clients["lambda"].get_policy(FunctionName=function_arn)["Policy"])
    return [statement["Sid"] for statement in policy["Statement"]]


def test_lambda_fix_removes_only_public_statements(aws) -> None:
    arn = seeded_arn(aws, "Lambda.1")
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    clients["lambda"].add_permission(
        FunctionName=arn,
        StatementId="public-url",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
    )

    result, _ = fix(aws, "Lambda.1", arn)

    assert result.status == Status.REMEDIATED, result.message
    assert [s["Sid"] for s in (result.before or {})["PublicStatements"]] == ["public-invoke", "public-url"]
    assert policy_sids(clients, arn) == ["s3-trigger", "any-principal-own-account"]


def test_lambda_fix_removes_an_s3_trigger_any_account_could_use_and_its_revert_adds_it_back(aws) -> None:
    arn = seeded_arn(aws, "Lambda.1")
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    clients["lambda"].add_permission(
        FunctionName=arn,
        StatementId="s3-any-account",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        SourceArn="arn:aws:s3:::uploads",
    )

    def statements() -> dict[str, Any]:
        policy = json.loads(clients["lambda"].get_policy(FunctionName=arn)["Policy"])
        return {s["Sid"]: s for s in policy["Statement"]}

    added = statements()["s3-any-account"]
    result, _ = fix(aws, "Lambda.1", arn)

    assert result.status == Status.REMEDIATED, result.message
    assert [s["Sid"] for s in (result.before or {})["PublicStatements"]] == [
        "public-invoke",
        "s3-any-account",
    ]
    assert list(statements()) == ["s3-trigger", "any-principal-own-account"], "the pinned trigger stays"

    action = registry().playbooks["Lambda.1"].build_action()
    action.revert(
        clients, registry().playbooks["Lambda.1"].extract_resource_id(arn, MEMBER_ACCOUNT), result.before
    )
    assert statements()["s3-any-account"] == added


def test_lambda_function_without_policy_complies(aws) -> None:
    arn = seeded_arn(aws, "Lambda.1")
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    for sid in policy_sids(clients, arn):
        clients["lambda"].remove_permission(FunctionName=arn, StatementId=sid)
    assert fix(aws, "Lambda.1", arn)[0].status == Status.ALREADY_COMPLIANT


def test_lambda_missing_function_fails_with_the_aws_error(aws) -> None:
    arn = f"arn:aws:lambda:{REGION}:{MEMBER_ACCOUNT}:function:no-such-function"
    result, _ = fix(aws, "Lambda.1", arn)
    assert result.status == Status.FAILED
    assert result.message.startswith("ResourceNotFoundException")


# SNS.1


def test_sns_fix_uses_the_named_key_and_keeps_other_attributes(aws) -> None:
    arn = seeded_arn(aws, "SNS.1")
    key = "alias/orders-topics"

    result, clients = fix(aws, "SNS.1", arn, kms_master_key_id=key)

    assert result.status == Status.REMEDIATED, result.message
    assert (result.before, result.after) == ({"KmsMasterKeyId": None}, {"KmsMasterKeyId": key})
    assert key in result.message
    attributes = clients.sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attributes["DisplayName"] == "seeded"


def test_sns_topic_encrypted_with_another_key_is_left_alone(aws) -> None:
    arn = seeded_arn(aws, "SNS.1")
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    clients.sns.set_topic_attributes(TopicArn=arn, AttributeName="KmsMasterKeyId", AttributeValue="alias/own")
    assert fix(aws, "SNS.1", arn)[0].status == Status.ALREADY_COMPLIANT
    assert clients.sns.get_topic_attributes(TopicArn=arn)["Attributes"]["KmsMasterKeyId"] == "alias/own"


def test_sns_missing_topic_fails_with_the_aws_error(aws) -> None:
    result, _ = fix(aws, "SNS.1", f"arn:aws:sns:{REGION}:{MEMBER_ACCOUNT}:no-such-topic")
    assert result.status == Status.FAILED
    assert result.message.startswith("NotFound")


# SQS.1


def queue_attributes(clients: Clients, arn: str) -> dict[str, str]:
    url = clients.sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[1])["QueueUrl"]
    return clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_sqs_fix_defaults_to_sse_sqs_and_keeps_other_attributes(aws) -> None:
    arn = seeded_arn(aws, "SQS.1")
    result, clients = fix(aws, "SQS.1", arn)
    assert result.status == Status.REMEDIATED, result.message
    assert (result.before, result.after) == ({"SqsManagedSseEnabled": False}, {"SqsManagedSseEnabled": True})
    attributes = queue_attributes(clients, arn)
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert "KmsMasterKeyId" not in attributes
    assert attributes["VisibilityTimeout"] == "45"


def test_sqs_fix_uses_a_kms_key_when_one_is_named(aws) -> None:
    arn = seeded_arn(aws, "SQS.1")
    result, clients = fix(aws, "SQS.1", arn, kms_master_key_id="alias/orders-queues")
    assert result.status == Status.REMEDIATED, result.message
    assert result.after == {"KmsMasterKeyId": "alias/orders-queues"}
    assert queue_attributes(clients, arn)["KmsMasterKeyId"] == "alias/orders-queues"


def test_sqs_queue_with_sse_kms_complies_even_when_sse_sqs_is_asked(aws) -> None:
    arn = seeded_arn(aws, "SQS.1")
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    url = clients.sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[1])["QueueUrl"]
    clients.sqs.set_queue_attributes(QueueUrl=url, Attributes={"KmsMasterKeyId": "alias/own"})
    assert fix(aws, "SQS.1", arn)[0].status == Status.ALREADY_COMPLIANT


def test_sqs_missing_queue_fails_with_the_aws_error(aws) -> None:
    result, _ = fix(aws, "SQS.1", f"arn:aws:sqs:{REGION}:{MEMBER_ACCOUNT}:no-such-queue")
    assert result.status == Status.FAILED
    assert "NonExistentQueue" in result.message


# ECR.1


def test_ecr_fix_keeps_tag_mutability(aws) -> None:
    arn = seeded_arn(aws, "ECR.1")
    result, clients = fix(aws, "ECR.1", arn)
    assert result.status == Status.REMEDIATED, result.message
    name = arn.split(":repository/", 1)[1]
    repository = clients.ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository["imageTagMutability"] == "IMMUTABLE"


def test_ecr_fix_refuses_a_repository_the_registry_rules_leave_unscanned(aws) -> None:
    """With registry scanning rules, the repository's own flag counts for nothing: setting it
    would resolve the finding while the control still fails."""
    covered, uncovered = (seeded_arn(aws, "ECR.1") for _ in range(2))
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    covered_name = covered.split(":repository/", 1)[1]
    clients.ecr.put_registry_scanning_configuration(
        scanType="ENHANCED",
        rules=[
            {
                "scanFrequency": "CONTINUOUS_SCAN",
                "repositoryFilters": [{"filter": covered_name, "filterType": "WILDCARD"}],
            }
        ],
    )
    assert fix(aws, "ECR.1", covered)[0].status == Status.ALREADY_COMPLIANT
    result, _ = fix(aws, "ECR.1", uncovered)
    assert result.status == Status.FAILED
    assert "the registry's scanning rules decide this repository's scanning" in result.message
    name = uncovered.split(":repository/", 1)[1]
    repository = clients.ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    assert repository["imageScanningConfiguration"] == {"scanOnPush": False}, "nothing changed"


def test_ecr_reads_many_repositories_in_two_calls(aws) -> None:
    arns = [seeded_arn(aws, "ECR.1") for _ in range(3)]
    action = registry().playbooks["ECR.1"].build_action({})
    calls: list[str] = []
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    clients.ecr.meta.events.register("before-call.ecr", lambda model, **_: calls.append(model.name))
    names = [arn.split(":repository/", 1)[1] for arn in arns]
    states = action.read_many(clients, names)
    assert calls == ["GetRegistryScanningConfiguration", "BatchGetRepositoryScanningConfiguration"]
    assert all(
        states[n] == {"scanOnPush": False, "scanFrequency": "MANUAL", "registryRules": False} for n in names
    )


def test_ecr_missing_repository_fails_naming_it(aws) -> None:
    result, _ = fix(aws, "ECR.1", f"arn:aws:ecr:{REGION}:{MEMBER_ACCOUNT}:repository/team/no-such-repo")
    assert result.status == Status.FAILED
    assert result.message == "LookupError: team/no-such-repo was not found"


@pytest.mark.parametrize("control", ["Lambda.1", "SNS.1", "SQS.1", "ECR.1"])
def test_seeders_make_distinct_resources_in_one_account_region(aws, control: str) -> None:
    arns = {seed_one(aws, control, MEMBER_ACCOUNT, REGION, n).resource_id for n in (0, 1, 1)}
    assert len(arns) == 3
