"""SNS.2: every protocol's delivery status logged through one shared role: set, kept, refused, undone."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from helpers import Refusals, iam_writes
from test_fixes_data import assert_permissions_cover_served_calls, parameters_sent

import asr.actions
from asr import local
from asr.actions.sns import PROTOCOLS, ROLE_REFUSAL
from asr.aws import Clients
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import seed_one
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource

REGION = "us-east-1"
ROLE = "asr-service-sns-delivery-status"
ROLE_ARN = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/{ROLE}"
POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonSNSRole"
SNS_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
ROLES = [f"{p}{outcome}FeedbackRoleArn" for p in PROTOCOLS for outcome in ("Success", "Failure")]


def fix(aws: Any, topic_arn: str, **params: Any) -> Result:
    """Run SNS.2's playbook, with these action parameters, on the topic a finding names."""
    playbook = registry().playbooks["SNS.2"]
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    resource_id = playbook.extract_resource_id(topic_arn, MEMBER_ACCOUNT)
    return remediate_resource(playbook.build_action(params), clients, resource_id)


def seeded(aws: Any) -> str:
    return seed_one(aws, "SNS.2", MEMBER_ACCOUNT, REGION).resource_id


def attributes(clients: Clients, topic_arn: str) -> dict[str, str]:
    return clients.sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]


def own_role(clients: Clients, name: str, trust: dict[str, Any] = SNS_TRUST) -> str:
    """A role the account made itself, holding AmazonSNSRole as the stack's does."""
    arn = clients.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    clients.iam.attach_role_policy(RoleName=name, PolicyArn=POLICY_ARN)
    return arn


def served(*services: str) -> list[str]:
    return [f"{c['service']}:{c['action']}" for c in local.served_requests() if c["service"] in services]


def test_every_protocol_logs_through_one_shared_role(aws: Any) -> None:
    """Each protocol gets a success and a failure role, the same one, which the member-role
    stack made for the account (IAM is only read): trusted by SNS, holding AmazonSNSRole. No
    sample rate is sent (successes are not sampled by default), and every call is one the
    action declares."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    first, second = seeded(aws), seeded(aws)
    local.served_requests(clear=True)

    with parameters_sent(clients.sns, "SetTopicAttributes") as sent:
        results = [fix(aws, first), fix(aws, second)]

    assert [(r.status, r.before, r.after) for r in results] == [
        (Status.REMEDIATED, dict.fromkeys(ROLES), dict.fromkeys(ROLES, ROLE_ARN))
    ] * 2, results
    assert sent == [
        {"TopicArn": topic, "AttributeName": name, "AttributeValue": ROLE_ARN}
        for topic in (first, second)
        for name in ROLES
    ]
    assert all(attributes(clients, first)[name] == ROLE_ARN for name in ROLES)
    calls = served("sns", "iam")
    assert "iam:GetRole" in calls and iam_writes(calls) == []
    assert set(calls) <= set(registry().playbooks["SNS.2"].build_action().permissions)
    assert_permissions_cover_served_calls("SNS.2")

    role = clients.iam.get_role(RoleName=ROLE)["Role"]
    assert role["AssumeRolePolicyDocument"] == SNS_TRUST
    attached = clients.iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [POLICY_ARN]
    assert clients.iam.list_role_policies(RoleName=ROLE)["PolicyNames"] == []


def test_roles_and_rates_already_set_are_kept(aws: Any) -> None:
    """Lambda's own success role and rate and SQS's own failure role stay; what each lacks is
    added, with the asked success rate where the success role is added."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    topic = seeded(aws)
    theirs = own_role(clients, "ops-sns-logging")
    for name, value in (
        ("LambdaSuccessFeedbackRoleArn", theirs),
        ("LambdaSuccessFeedbackSampleRate", "50"),
        ("SQSFailureFeedbackRoleArn", theirs),
    ):
        clients.sns.set_topic_attributes(TopicArn=topic, AttributeName=name, AttributeValue=value)

    result = fix(aws, topic, success_sample_rate=10)

    assert result.status == Status.REMEDIATED, result.message
    assert (
        "LambdaSuccessFeedbackRoleArn" not in result.before
        and "SQSFailureFeedbackRoleArn" not in result.before
    )
    assert result.before["SQSSuccessFeedbackSampleRate"] == 0
    now = attributes(clients, topic)
    assert now["LambdaSuccessFeedbackRoleArn"] == now["SQSFailureFeedbackRoleArn"] == theirs
    assert now["LambdaFailureFeedbackRoleArn"] == now["SQSSuccessFeedbackRoleArn"] == ROLE_ARN
    assert now["LambdaSuccessFeedbackSampleRate"] == "50"
    assert {p: now[f"{p}SuccessFeedbackSampleRate"] for p in PROTOCOLS if p != "Lambda"} == dict.fromkeys(
        ("HTTP", "Firehose", "Application", "SQS"), "10"
    )


def test_a_topic_logging_every_protocol_is_compliant_and_nothing_is_written(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    topic = seeded(aws)
    theirs = own_role(clients, "ops-sns-logging")
    for name in ROLES:
        clients.sns.set_topic_attributes(TopicArn=topic, AttributeName=name, AttributeValue=theirs)
    local.served_requests(clear=True)

    result = fix(aws, topic, success_sample_rate=100)  # a rate alone does not make a topic non-compliant

    assert result.status == Status.ALREADY_COMPLIANT, result.message
    assert served("sns", "iam") == ["sns:GetTopicAttributes"]


@pytest.mark.parametrize(
    ("topic", "role"),
    [
        (
            "arn:aws:sns:us-east-1:111122223333:orders",
            "arn:aws:iam::111122223333:role/asr-service-sns-delivery-status",
        ),
        (
            "arn:aws-cn:sns:cn-north-1:111122223333:o.fifo",
            "arn:aws-cn:iam::111122223333:role/asr-service-sns-delivery-status",
        ),
    ],
)
def test_the_planned_role_is_of_the_topics_account_and_partition(topic: str, role: str) -> None:
    action = registry().playbooks["SNS.2"].build_action()
    state = {
        "TopicArn": topic,
        **dict.fromkeys(ROLES),
        **{f"{p}SuccessFeedbackSampleRate": 0 for p in PROTOCOLS},
    }
    assert action.plan(state) == dict.fromkeys(ROLES, role)


def test_a_role_whose_trust_changed_since_the_stack_made_it_is_not_handed_to_sns(aws: Any) -> None:
    """Someone made the role trust another principal: it is not passed (SNS is not asked), and
    its trust policy is not ASR's to put back."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    ec2_trust = {
        **SNS_TRUST,
        "Statement": [{**SNS_TRUST["Statement"][0], "Principal": {"Service": "ec2.amazonaws.com"}}],
    }
    topic = seeded(aws)
    clients.iam.update_assume_role_policy(RoleName=ROLE, PolicyDocument=json.dumps(ec2_trust))
    local.served_requests(clear=True)
    result = fix(aws, topic)
    assert result.status == Status.FAILED
    assert f"the IAM role {ROLE} lacks the trust policy the stack gives it" in result.message
    assert served("sns").count("sns:SetTopicAttributes") == 0
    assert iam_writes(served("iam")) == []
    assert clients.iam.get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"] == ec2_trust


def test_a_role_sns_refuses_is_tried_again_while_new_then_stands(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the role is new (the stack was just deployed), SNS's refusal may be IAM
    propagating and is tried again; once it is not, it stands at once. The topic is left as
    it was."""
    monkeypatch.setattr(asr.actions, "ROLE_PROPAGATION_DELAYS", (0.0, 0.0))
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    topic = seeded(aws)
    refusing = Refusals(clients.sns, "SetTopicAttributes")
    refusal = {"Code": "InvalidParameter", "Message": f"Invalid parameter: {ROLE_ARN} {ROLE_REFUSAL}"}
    for wanted_tries in (3, 1):
        refusing.next(*[refusal] * wanted_tries)
        result = fix(aws, topic)
        assert result.status == Status.FAILED
        assert result.message.startswith("InvalidParameter") and ROLE_REFUSAL in result.message
        assert refusing.calls == wanted_tries
        assert not any(name in attributes(clients, topic) for name in ROLES)
        monkeypatch.setattr(asr.actions, "NEW_ROLE_AGE", datetime.timedelta(0))


def test_a_missing_topic_fails_with_the_aws_reason_and_makes_no_role(aws: Any) -> None:
    result = fix(aws, f"arn:aws:sns:{REGION}:{MEMBER_ACCOUNT}:gone")
    assert result.status == Status.FAILED
    assert result.message.startswith("NotFound")
    assert Clients(aws, MEMBER_ACCOUNT, REGION).iam.list_roles()["Roles"] == []


def test_revert_puts_back_what_the_fix_set_and_leaves_the_rest_and_the_role(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    topic = seeded(aws)
    theirs = own_role(clients, "ops-sns-logging")
    clients.sns.set_topic_attributes(
        TopicArn=topic, AttributeName="HTTPFailureFeedbackRoleArn", AttributeValue=theirs
    )
    action = registry().playbooks["SNS.2"].build_action({"success_sample_rate": 25})
    before = action.read(clients, topic)
    assert remediate_resource(action, clients, topic).status == Status.REMEDIATED

    with parameters_sent(clients.sns, "SetTopicAttributes") as sent:
        action.revert(clients, topic, before)

    assert {s["AttributeName"]: s["AttributeValue"] for s in sent} == {
        **{name: "" for name in ROLES if name != "HTTPFailureFeedbackRoleArn"},
        **{f"{p}SuccessFeedbackSampleRate": "0" for p in PROTOCOLS},
    }
    assert action.read(clients, topic) == before
    assert attributes(clients, topic)["HTTPFailureFeedbackRoleArn"] == theirs
    assert clients.iam.get_role(RoleName=ROLE)["Role"]["Arn"] == ROLE_ARN
