"""CloudFormation.1: what the stack fix sends, keeps, waits for, and refuses."""

from __future__ import annotations

import datetime
import json
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from helpers import assert_extracted_id
from test_fixes_data import assert_permissions_cover_served_calls, parameters_sent

from asr import local
from asr.actions.cloudformation import NotifyStackEvents
from asr.aws import Clients
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import seed_one
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource

REGION = "us-east-1"
STACK_ARN = f"arn:aws:cloudformation:{REGION}:{MEMBER_ACCOUNT}:stack"
TOPIC = f"arn:aws:sns:{REGION}:{MEMBER_ACCOUNT}:asr-cloudformation-events"
ROLE = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/deployer"
TEMPLATE = json.dumps(
    {
        "Parameters": {"Stage": {"Type": "String", "Default": "dev"}},
        "Resources": {
            "Setting": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {
                    "Name": {"Fn::Sub": "/orders/${AWS::StackName}"},
                    "Type": "String",
                    "Value": {"Ref": "Stage"},
                },
            }
        },
    }
)


def fix(aws: Any, resource_arn: str, **params: Any) -> Result:
    """Run the playbook (with ``params`` over its own) on the stack its finding names."""
    playbook = registry().playbooks["CloudFormation.1"]
    resource_id = playbook.extract_resource_id(resource_arn, MEMBER_ACCOUNT)
    return remediate_resource(
        playbook.build_action(params), Clients(aws, MEMBER_ACCOUNT, REGION), resource_id
    )


def make_stack(clients: Clients, name: str, **settings: Any) -> str:
    return str(
        clients.cloudformation.create_stack(StackName=name, TemplateBody=TEMPLATE, **settings)["StackId"]
    )


def described(clients: Clients, stack_id: str) -> dict[str, Any]:
    return dict(clients.cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0])


def topic_names(clients: Clients) -> list[str]:
    return sorted(t["TopicArn"].rsplit(":", 1)[1] for t in clients.sns.list_topics()["Topics"])


# Against the stand-in


def test_fix_sends_the_stack_back_as_it_is_with_the_topic(aws: Any) -> None:
    stack_id = seed_one(aws, "CloudFormation.1", MEMBER_ACCOUNT, REGION).resource_id
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    before = described(clients, stack_id)
    local.served_requests(clear=True)
    with parameters_sent(clients.cloudformation, "UpdateStack") as sent:
        result = fix(aws, stack_id)
    assert (result.status, result.before, result.after) == (
        Status.REMEDIATED,
        {"NotificationARNs": []},
        {"NotificationARNs": [TOPIC]},
    ), result.message
    assert result.message == NotifyStackEvents.summary.format(topic_name="asr-cloudformation-events")
    assert sent == [
        {
            "StackName": stack_id,
            "UsePreviousTemplate": True,
            "Parameters": [
                {"ParameterKey": "Stage", "UsePreviousValue": True},
                {"ParameterKey": "Owner", "UsePreviousValue": True},
            ],
            "NotificationARNs": [TOPIC],
        }
    ]
    after = described(clients, stack_id)
    assert after["NotificationARNs"] == [TOPIC]
    for kept in ("Parameters", "Tags", "DisableRollback"):
        assert after[kept] == before[kept], kept
    assert topic_names(clients) == ["asr-cloudformation-events"]
    assert_permissions_cover_served_calls("CloudFormation.1")


def test_role_and_capabilities_are_kept(aws: Any) -> None:
    """The role is left out (UpdateStack keeps it: no iam:PassRole), the capabilities go back."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    capabilities = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
    stack_id = make_stack(clients, "orders", RoleARN=ROLE, Capabilities=capabilities)
    with parameters_sent(clients.cloudformation, "UpdateStack") as sent:
        assert fix(aws, stack_id).status == Status.REMEDIATED
    [call] = sent
    assert call["Capabilities"] == capabilities
    assert "RoleARN" not in call
    after = described(clients, stack_id)
    assert (after["RoleARN"], after["Capabilities"], after["NotificationARNs"]) == (
        ROLE,
        capabilities,
        [TOPIC],
    )


def test_a_template_with_a_transform_is_updated_with_expansion_acknowledged(aws: Any) -> None:
    """A stack SAM deployed (through a change set) has no CAPABILITY_AUTO_EXPAND recorded, and
    a direct update of its template must acknowledge it."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    template = {**json.loads(TEMPLATE), "Transform": "AWS::Serverless-2016-10-31"}
    stack_id = str(
        clients.cloudformation.create_stack(StackName="sam-app", TemplateBody=json.dumps(template))["StackId"]
    )
    with parameters_sent(clients.cloudformation, "UpdateStack") as sent:
        assert fix(aws, stack_id).status == Status.REMEDIATED
    assert [call["Capabilities"] for call in sent] == [["CAPABILITY_AUTO_EXPAND"]]


def test_a_stack_that_notifies_any_topic_is_left_alone(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    theirs = clients.sns.create_topic(Name="deployments")["TopicArn"]
    stack_id = make_stack(clients, "orders", NotificationARNs=[theirs])
    local.served_requests(clear=True)
    result = fix(aws, stack_id)
    assert result.status == Status.ALREADY_COMPLIANT
    assert {call["action"] for call in local.served_requests()} == {"DescribeStacks"}
    assert described(clients, stack_id)["NotificationARNs"] == [theirs]


def test_the_topic_is_shared_by_the_stacks_of_a_region(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    stacks = [make_stack(clients, name) for name in ("orders", "billing")]
    for stack_id in stacks:
        assert fix(aws, stack_id, topic_name="stack-events").status == Status.REMEDIATED
    topic = TOPIC.replace("asr-cloudformation-events", "stack-events")
    assert [described(clients, s)["NotificationARNs"] for s in stacks] == [[topic], [topic]]
    assert topic_names(clients) == ["stack-events"]


def test_revert_removes_only_its_topic_and_keeps_the_topic(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    stack_id = make_stack(clients, "orders")
    action = registry().playbooks["CloudFormation.1"].build_action()
    before = action.read(clients, stack_id)
    assert fix(aws, stack_id).status == Status.REMEDIATED
    theirs = clients.sns.create_topic(Name="deployments")["TopicArn"]
    clients.cloudformation.update_stack(
        StackName=stack_id,
        UsePreviousTemplate=True,
        Parameters=[{"ParameterKey": "Stage", "UsePreviousValue": True}],
        NotificationARNs=[TOPIC, theirs],
    )

    with parameters_sent(clients.cloudformation, "UpdateStack") as sent:
        action.revert(clients, stack_id, before)
    assert [call["NotificationARNs"] for call in sent] == [[theirs]]
    assert described(clients, stack_id)["NotificationARNs"] == [theirs]
    assert "asr-cloudformation-events" in topic_names(clients)


def test_missing_stack_fails_with_the_aws_reason(aws: Any) -> None:
    result = fix(aws, f"{STACK_ARN}/gone/8f0e5b90-1c2d-11ef-9f1a-0a1b2c3d4e5f")
    assert result.status == Status.FAILED
    assert result.message.startswith("ValidationError:")


# What the stand-in cannot show: stacks in other states, updates that take time or fail

STACK_ID = f"{STACK_ARN}/orders/8f0e5b90-1c2d-11ef-9f1a-0a1b2c3d4e5f"


def stack(**fields: Any) -> dict[str, Any]:
    """DescribeStacks' answer for one stack: a stable one with no topics, unless ``fields`` say."""
    return {
        "Stacks": [
            {
                "StackId": STACK_ID,
                "StackName": "orders",
                "CreationTime": datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
                "StackStatus": "UPDATE_COMPLETE",
                "NotificationARNs": [],
                **fields,
            }
        ]
    }


def stubbed() -> tuple[SimpleNamespace, Stubber, Stubber]:
    def client(service: str) -> Any:
        return boto3.client(
            service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
        )

    clients = SimpleNamespace(
        cloudformation=client("cloudformation"), sns=client("sns"), account_id=MEMBER_ACCOUNT, region=REGION
    )
    cloudformation, sns = Stubber(clients.cloudformation), Stubber(clients.sns)
    cloudformation.activate()
    sns.activate()
    return clients, cloudformation, sns


def run(clients: SimpleNamespace, **params: Any) -> Result:
    action = registry().playbooks["CloudFormation.1"].build_action(params)
    return remediate_resource(action, clients, STACK_ID)  # type: ignore[arg-type]


def expect_update(
    cloudformation: Stubber, sns: Stubber, update: dict[str, Any] | None = None, error: str | None = None
) -> None:
    """The apply's own read, the topic made, and UpdateStack sent the stack as it is (``update``)."""
    cloudformation.add_response("describe_stacks", stack(), {"StackName": STACK_ID})
    sns.add_response("create_topic", {"TopicArn": TOPIC}, {"Name": "asr-cloudformation-events"})
    cloudformation.add_response("get_template_summary", {"DeclaredTransforms": []}, {"StackName": STACK_ID})
    sent = update or {"StackName": STACK_ID, "UsePreviousTemplate": True}
    if error:
        cloudformation.add_client_error(
            "update_stack", "ValidationError", error, expected_params={**sent, "NotificationARNs": [TOPIC]}
        )
    else:
        cloudformation.add_response(
            "update_stack", {"StackId": STACK_ID}, {**sent, "NotificationARNs": [TOPIC]}
        )


def test_every_parameter_goes_back_as_read_and_a_failed_update_rolls_back() -> None:
    """Parameters and capabilities as the stack has them, plus expanding its transforms; the
    stack's DisableRollback (its creation's choice) does not stop this update rolling back."""
    clients, cloudformation, sns = stubbed()
    fields = {
        "Parameters": [
            {"ParameterKey": "Stage", "ParameterValue": "prod"},
            {"ParameterKey": "AmiId", "ParameterValue": "/aws/ami/latest", "ResolvedValue": "ami-1"},
        ],
        "Capabilities": ["CAPABILITY_NAMED_IAM"],
        "DisableRollback": True,
        "RetainExceptOnCreate": True,
        "RoleARN": ROLE,
    }
    cloudformation.add_response("describe_stacks", stack(**fields))
    cloudformation.add_response("describe_stacks", stack(**fields))
    sns.add_response("create_topic", {"TopicArn": TOPIC})
    cloudformation.add_response(
        "get_template_summary", {"DeclaredTransforms": ["AWS::Serverless-2016-10-31"]}
    )
    cloudformation.add_response(
        "update_stack",
        {"StackId": STACK_ID},
        {
            "StackName": STACK_ID,
            "UsePreviousTemplate": True,
            "Parameters": [
                {"ParameterKey": "Stage", "UsePreviousValue": True},
                {"ParameterKey": "AmiId", "UsePreviousValue": True},
            ],
            "Capabilities": ["CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
            "RetainExceptOnCreate": True,
            "NotificationARNs": [TOPIC],
        },
    )
    cloudformation.add_response("describe_stacks", stack(**fields, NotificationARNs=[TOPIC]))
    cloudformation.add_response("describe_stacks", stack(**fields, NotificationARNs=[TOPIC]))
    assert run(clients).status == Status.REMEDIATED
    cloudformation.assert_no_pending_responses()


def test_the_fix_waits_for_the_update_to_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NotifyStackEvents, "poll_seconds", 0.0)
    clients, cloudformation, sns = stubbed()
    cloudformation.add_response("describe_stacks", stack())
    expect_update(cloudformation, sns)
    for status in ("UPDATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "UPDATE_COMPLETE", "UPDATE_COMPLETE"):
        cloudformation.add_response("describe_stacks", stack(StackStatus=status, NotificationARNs=[TOPIC]))
    result = run(clients)
    assert (result.status, result.after) == (Status.REMEDIATED, {"NotificationARNs": [TOPIC]}), result.message
    cloudformation.assert_no_pending_responses()


def test_an_update_still_under_way_when_the_wait_is_up_is_not_counted_made() -> None:
    """It may still roll back: listing the topic meanwhile proves nothing."""
    clients, cloudformation, sns = stubbed()
    cloudformation.add_response("describe_stacks", stack())
    expect_update(cloudformation, sns)
    for _ in range(2):
        cloudformation.add_response(
            "describe_stacks", stack(StackStatus="UPDATE_IN_PROGRESS", NotificationARNs=[TOPIC])
        )
    result = run(clients, wait_seconds=0)
    assert result.status == Status.FAILED
    assert "was still under way after 0 s (wait_seconds): not counted as made" in result.message
    cloudformation.assert_no_pending_responses()


@pytest.mark.parametrize("status", ["UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS"])
def test_topics_an_update_under_way_lists_are_not_counted_until_it_ends(status: str) -> None:
    """A fix task that died waiting for its update, retried (or the next run), reads the stack
    mid-update: the topic it lists may yet roll back, so it neither complies nor is updated."""
    clients, cloudformation, _ = stubbed()
    cloudformation.add_response("describe_stacks", stack(StackStatus=status, NotificationARNs=[TOPIC]))
    result = run(clients)
    assert result.status == Status.FAILED
    assert f"stack orders is {status}: the topics it lists count once the operation ends" in result.message
    cloudformation.assert_no_pending_responses()


@pytest.mark.parametrize(
    "status", ["UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"]
)
def test_topics_a_cleanup_lists_are_final(status: str) -> None:
    """Once the update (or its rollback) is done, cleaning up old resources changes no topic."""
    clients, cloudformation, _ = stubbed()
    cloudformation.add_response("describe_stacks", stack(StackStatus=status, NotificationARNs=[TOPIC]))
    assert run(clients).status == Status.ALREADY_COMPLIANT
    cloudformation.assert_no_pending_responses()


def test_an_update_that_rolls_back_fails_with_cloudformations_reason() -> None:
    clients, cloudformation, sns = stubbed()
    cloudformation.add_response("describe_stacks", stack())
    expect_update(cloudformation, sns)
    reason = "The following resource(s) failed to update: [Setting]."
    cloudformation.add_response(
        "describe_stacks", stack(StackStatus="UPDATE_ROLLBACK_IN_PROGRESS", StackStatusReason=reason)
    )
    # Rolling back, the stack may still list the topic its update added: not the fix made.
    rolling_back = stack(StackStatus="UPDATE_ROLLBACK_IN_PROGRESS", NotificationARNs=[TOPIC])
    cloudformation.add_response("describe_stacks", rolling_back)
    result = run(clients)
    assert result.status == Status.FAILED
    assert result.message == (
        "UpdateFailed: CloudFormation could not update stack orders: it is UPDATE_ROLLBACK_IN_PROGRESS "
        f"({reason}); see the stack's events for each resource's reason"
    )
    assert result.before == {"NotificationARNs": []}
    cloudformation.assert_no_pending_responses()


@pytest.mark.parametrize(("listed", "status"), [([TOPIC], Status.REMEDIATED), ([], Status.FAILED)])
def test_no_updates_to_perform_is_done_only_if_the_topic_is_listed(listed: list[str], status: Status) -> None:
    """Someone changed the stack between the fix's read and its update."""
    clients, cloudformation, sns = stubbed()
    cloudformation.add_response("describe_stacks", stack())
    expect_update(cloudformation, sns, error="No updates are to be performed.")
    cloudformation.add_response("describe_stacks", stack(NotificationARNs=listed))
    cloudformation.add_response("describe_stacks", stack(NotificationARNs=listed))
    result = run(clients)
    assert result.status == status
    if status == Status.FAILED:
        assert result.message == "ValidationError: No updates are to be performed."
    cloudformation.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"ParentId": f"{STACK_ARN}/shop/1", "RootId": f"{STACK_ARN}/shop/1"}, "is nested in"),
        ({"StackName": "StackSet-baseline-0a1b2c3d"}, "is a StackSet's instance"),
    ],
    ids=["nested", "stackset"],
)
def test_a_stack_another_owns_is_refused_unless_it_complies(fields: dict[str, Any], reason: str) -> None:
    clients, cloudformation, _ = stubbed()
    cloudformation.add_response("describe_stacks", stack(**fields))
    result = run(clients)
    assert result.status == Status.FAILED
    assert reason in result.message and result.message.endswith("Not changed")

    cloudformation.add_response("describe_stacks", stack(**fields, NotificationARNs=[TOPIC]))
    assert run(clients).status == Status.ALREADY_COMPLIANT
    cloudformation.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        ("UPDATE_IN_PROGRESS", "an operation is under way"),
        ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "an operation is under way"),
        ("UPDATE_ROLLBACK_FAILED", "an update's rollback failed: continue the rollback"),
        ("ROLLBACK_COMPLETE", "its creation failed and was rolled back: CloudFormation can only delete it"),
        ("DELETE_COMPLETE", "it was deleted"),
        ("CREATE_FAILED", "it must be in one of CREATE_COMPLETE"),
    ],
)
def test_a_stack_that_takes_no_update_now_is_refused(status: str, hint: str) -> None:
    clients, cloudformation, _ = stubbed()
    cloudformation.add_response("describe_stacks", stack(StackStatus=status))
    cloudformation.add_response("describe_stacks", stack(StackStatus=status))
    cloudformation.add_response("describe_stacks", stack(StackStatus=status))
    result = run(clients)
    assert result.status == Status.FAILED
    assert result.message.startswith(f"ValueError: stack orders is {status}, which takes no update: {hint}")
    assert result.message.endswith(". Not changed")
    cloudformation.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("resource_arn", "stack_id"),
    [
        (STACK_ID, STACK_ID),
        (
            f"arn:aws-us-gov:cloudformation:us-gov-west-1:{MEMBER_ACCOUNT}:stack/a-1/8f0e5b90",
            f"arn:aws-us-gov:cloudformation:us-gov-west-1:{MEMBER_ACCOUNT}:stack/a-1/8f0e5b90",
        ),
        (f"{STACK_ARN}/1orders/8f0e5b90", None),
        (f"{STACK_ARN}/orders", None),
        (f"{STACK_ARN}/{'o' * 129}/8f0e5b90", None),
        (f"arn:aws:cloudformation:{REGION}:{MEMBER_ACCOUNT}:stackset/orders:8f0e5b90", None),
    ],
)
def test_the_stack_id_is_the_finding_resource_arn(resource_arn: str, stack_id: str | None) -> None:
    assert_extracted_id("CloudFormation.1", resource_arn, stack_id)
