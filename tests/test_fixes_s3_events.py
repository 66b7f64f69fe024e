"""S3.11: the topic configuration a fix adds, what it keeps, when a bucket already complies,
the shared topic and its policy, and the revert."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError
from test_fixes_data import assert_permissions_cover_served_calls, parameters_sent

from asr import actions, local
from asr.actions import s3 as s3_actions
from asr.actions.s3 import (
    NOTIFICATION_ID,
    S3_EVENT_TYPES,
    S3_PUBLISH_SID,
    events_overlap,
    s3_publish_statement,
)
from asr.aws import Clients
from asr.findings import FindingError, parse_finding
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import finding, seed_one
from asr.local.seeders import Seeded
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource

REGION = "us-east-1"
TOPIC = "asr-s3-event-notifications"
DEFAULT_EVENTS = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]


def topic_arn(region: str = REGION, name: str = TOPIC) -> str:
    return f"arn:aws:sns:{region}:{MEMBER_ACCOUNT}:{name}"


def ours(events: list[str] = DEFAULT_EVENTS, region: str = REGION) -> dict[str, Any]:
    return {"Id": NOTIFICATION_ID, "TopicArn": topic_arn(region), "Events": events}


def seeded_bucket(aws: Any, region: str = REGION, n: int = 0) -> tuple[Clients, str]:
    seeded = seed_one(aws, "S3.11", MEMBER_ACCOUNT, region, n)
    return Clients(aws, MEMBER_ACCOUNT, region), seeded.resource_id.removeprefix("arn:aws:s3:::")


def fix(clients: Clients, bucket: str, **params: Any) -> Result:
    action = registry().playbooks["S3.11"].build_action(params)
    return remediate_resource(action, clients, bucket)


def configuration(clients: Clients, bucket: str) -> dict[str, Any]:
    response = clients.s3.get_bucket_notification_configuration(Bucket=bucket)
    response.pop("ResponseMetadata")
    return response


def put_configuration(clients: Clients, bucket: str, **parts: Any) -> None:
    clients.s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=parts)


def topic_policy(clients: Clients, arn: str = topic_arn()) -> dict[str, Any]:
    return json.loads(clients.sns.get_topic_attributes(TopicArn=arn)["Attributes"]["Policy"])


def served(service: str) -> list[str]:
    return [c["action"] for c in local.served_requests() if c["service"] == service]


def other_destinations(clients: Clients) -> dict[str, Any]:
    """A queue, a function and another topic, each notified of events the fix does not add."""
    queue = clients.sqs.create_queue(QueueName="restores")["QueueUrl"]
    queue_arn = clients.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    audit_topic = clients.sns.create_topic(Name="tag-changes")["TopicArn"]
    rules = [{"Name": "prefix", "Value": "archive/"}]
    return {
        "QueueConfigurations": [
            {
                "Id": "restores",
                "QueueArn": queue_arn,
                "Events": ["s3:ObjectRestore:*"],
                "Filter": {"Key": {"FilterRules": rules}},
            }
        ],
        "TopicConfigurations": [{"Id": "tags", "TopicArn": audit_topic, "Events": ["s3:ObjectTagging:Put"]}],
        "LambdaFunctionConfigurations": [
            {
                "Id": "tiering",
                "LambdaFunctionArn": f"arn:aws:lambda:{REGION}:{MEMBER_ACCOUNT}:function:tiering",
                "Events": ["s3:LifecycleTransition"],
            }
        ],
        "EventBridgeConfiguration": {},
    }


# --- The fix


def test_fix_adds_one_topic_configuration_within_its_permissions(aws: Any) -> None:
    clients, bucket = seeded_bucket(aws)
    local.served_requests(clear=True)
    with parameters_sent(clients.s3, "PutBucketNotificationConfiguration") as sent:
        result = fix(clients, bucket)
    assert result.status == Status.REMEDIATED, result.message
    # No SkipDestinationValidation: S3 tests that the topic takes its messages.
    assert sent == [{"Bucket": bucket, "NotificationConfiguration": {"TopicConfigurations": [ours()]}}]
    assert (result.before, result.after) == (
        {"NotificationConfiguration": {}},
        {"NotificationConfiguration": {"TopicConfigurations": [ours()]}},
    )
    assert configuration(clients, bucket) == {"TopicConfigurations": [ours()]}
    assert_permissions_cover_served_calls("S3.11")
    declared = set(registry().playbooks["S3.11"].build_action().permissions)
    assert {f"sns:{name}" for name in served("sns")} <= declared
    assert served("sns") == ["GetTopicAttributes", "CreateTopic"]


def test_the_topic_is_made_with_only_the_statement_letting_s3_publish(aws: Any) -> None:
    clients, bucket = seeded_bucket(aws)
    assert fix(clients, bucket).status == Status.REMEDIATED
    assert topic_policy(clients)["Statement"] == [
        {
            "Sid": S3_PUBLISH_SID,
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic_arn(),
            "Condition": {
                "StringEquals": {"aws:SourceAccount": MEMBER_ACCOUNT},
                "ArnLike": {"aws:SourceArn": "arn:aws:s3:::*"},
            },
        }
    ]


def test_every_other_configuration_is_kept(aws: Any) -> None:
    """The put replaces the whole configuration: queues, functions, other topics and
    EventBridge delivery go back in it as they were, beside the new topic."""
    clients, bucket = seeded_bucket(aws)
    others = other_destinations(clients)
    put_configuration(clients, bucket, **others)
    existing = configuration(clients, bucket)
    assert existing == others

    result = fix(clients, bucket, event_types=DEFAULT_EVENTS)
    assert result.status == Status.REMEDIATED, result.message
    assert configuration(clients, bucket) == {
        **others,
        "TopicConfigurations": [*others["TopicConfigurations"], ours()],
    }
    assert result.before == {"NotificationConfiguration": existing}


def test_eventbridge_delivery_alone_does_not_comply_and_is_kept(aws: Any) -> None:
    """EventBridge gets every event but names no event type, which the control reads."""
    clients, bucket = seeded_bucket(aws)
    put_configuration(clients, bucket, EventBridgeConfiguration={})
    assert fix(clients, bucket).status == Status.REMEDIATED
    assert configuration(clients, bucket) == {
        "TopicConfigurations": [ours()],
        "EventBridgeConfiguration": {},
    }


def test_any_notification_complies_while_event_types_is_empty(aws: Any) -> None:
    clients, bucket = seeded_bucket(aws)
    others = other_destinations(clients)
    put_configuration(clients, bucket, QueueConfigurations=others["QueueConfigurations"])
    local.served_requests(clear=True)
    with parameters_sent(clients.s3, "PutBucketNotificationConfiguration") as sent:
        result = fix(clients, bucket)
    assert result.status == Status.ALREADY_COMPLIANT
    assert sent == []
    assert served("sns") == []


@pytest.mark.parametrize(
    ("notified", "wanted", "complies"),
    [
        ("s3:ObjectCreated:Put", ["s3:ObjectCreated:*"], True),
        ("s3:ObjectCreated:*", ["s3:ObjectCreated:Put"], True),
        ("s3:ObjectRemoved:Delete", ["s3:ObjectCreated:*", "s3:ObjectRemoved:Delete"], True),
        ("s3:ObjectCreated:Put", ["s3:ObjectCreated:Post"], False),
        ("s3:ObjectRestore:*", ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"], False),
        ("s3:LifecycleTransition", ["s3:LifecycleExpiration:*"], False),
    ],
)
def test_a_listed_type_counts_its_family(aws: Any, notified: str, wanted: list[str], complies: bool) -> None:
    clients, bucket = seeded_bucket(aws)
    existing = {"Id": "e", "TopicArn": clients.sns.create_topic(Name="e")["TopicArn"], "Events": [notified]}
    put_configuration(clients, bucket, TopicConfigurations=[existing])
    result = fix(clients, bucket, event_types=wanted)
    assert result.status == (Status.ALREADY_COMPLIANT if complies else Status.REMEDIATED), result.message
    if not complies:  # added beside it: S3 would refuse two configurations sharing an event
        assert configuration(clients, bucket)["TopicConfigurations"] == [existing, ours(wanted)]
        assert not any(events_overlap(notified, event) for event in wanted)


def test_an_earlier_fix_for_other_event_types_is_replaced(aws: Any) -> None:
    clients, bucket = seeded_bucket(aws)
    assert fix(clients, bucket).status == Status.REMEDIATED
    result = fix(clients, bucket, event_types=["s3:ObjectRestore:Completed"])
    assert result.status == Status.REMEDIATED, result.message
    assert configuration(clients, bucket) == {"TopicConfigurations": [ours(["s3:ObjectRestore:Completed"])]}


def test_event_types_come_from_the_control_parameter(aws: Any) -> None:
    clients, bucket = seeded_bucket(aws)
    raw = finding(Seeded("S3.11", MEMBER_ACCOUNT, REGION, "AwsS3Bucket", f"arn:aws:s3:::{bucket}", "MEDIUM"))
    wanted = ["s3:ObjectCreated:Put", "s3:ObjectRemoved:Delete"]
    raw["Compliance"]["SecurityControlParameters"] = [{"Name": "eventTypes", "Value": wanted}]
    record = parse_finding(raw, registry())
    assert (record.resource_id, record.parameters) == (bucket, {"event_types": wanted})

    assert fix(clients, bucket, **record.parameters).status == Status.REMEDIATED
    assert configuration(clients, bucket) == {"TopicConfigurations": [ours(wanted)]}


def test_an_event_type_s3_does_not_know_is_refused() -> None:
    with pytest.raises(actions.ActionError, match=r"event_types\.0: 's3:ObjectCreated' is not one of"):
        actions.build("s3.enable-event-notifications", {"event_types": ["s3:ObjectCreated"]})
    with pytest.raises(actions.ActionError, match="topic_name"):
        actions.build("s3.enable-event-notifications", {"topic_name": "events.fifo"})
    with pytest.raises(actions.ActionError, match="default_event_types"):
        actions.build("s3.enable-event-notifications", {"default_event_types": []})
    raw = finding(Seeded("S3.11", MEMBER_ACCOUNT, REGION, "AwsS3Bucket", "arn:aws:s3:::data", "MEDIUM"))
    raw["Compliance"]["SecurityControlParameters"] = [{"Name": "eventTypes", "Value": ["s3:Everything"]}]
    with pytest.raises(FindingError, match=r"control parameters: .*event_types\.0: 's3:Everything'"):
        parse_finding(raw, registry())


def test_the_event_types_are_the_ones_s3_knows() -> None:
    model = botocore.session.get_session().get_service_model("s3")
    assert sorted(S3_EVENT_TYPES) == sorted(model.shape_for("Event").enum)


def _refused_by_s3(clients: Clients, bucket: str, times: int) -> tuple[Result, list[int]]:
    """The fix, while S3 refuses the first ``times`` puts as it does a destination that does
    not accept its test message; and how many puts were tried."""
    tries: list[int] = []

    def refuse(**_: Any) -> None:
        tries.append(1)
        if len(tries) <= times:
            raise ClientError(
                {"Error": {"Code": "InvalidArgument", "Message": s3_actions.DESTINATION_REFUSED}},
                "PutBucketNotificationConfiguration",
            )

    clients.s3.meta.events.register("before-call.s3.PutBucketNotificationConfiguration", refuse)
    try:
        return fix(clients, bucket), tries
    finally:
        clients.s3.meta.events.unregister("before-call.s3.PutBucketNotificationConfiguration", refuse)


def test_s3_refusing_a_destination_fails_the_fix_with_its_reason(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 tests every destination before it takes a configuration; a queue that no longer
    accepts its messages fails the put, and nothing changes. With the topic there already,
    at once; with a topic made just now, after S3 had time to see it."""
    monkeypatch.setattr(actions, "ROLE_PROPAGATION_DELAYS", (0.0, 0.0))
    clients, bucket = seeded_bucket(aws)
    result, tries = _refused_by_s3(clients, bucket, times=99)
    assert result.status == Status.FAILED
    assert result.message == f"InvalidArgument: {s3_actions.DESTINATION_REFUSED}"
    assert configuration(clients, bucket) == {}
    assert len(tries) == 3, "a topic made just now is waited for"

    monkeypatch.setattr(s3_actions, "_TOPICS_WRITTEN", {})  # the topic made long ago, by another task
    result, tries = _refused_by_s3(clients, bucket, times=99)
    assert result.status == Status.FAILED and len(tries) == 1


def test_a_topic_made_just_now_is_waited_for(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 may not yet see a topic or policy written moments ago: the put is tried again."""
    monkeypatch.setattr(actions, "ROLE_PROPAGATION_DELAYS", (0.0, 0.0))
    clients, bucket = seeded_bucket(aws)
    result, tries = _refused_by_s3(clients, bucket, times=1)
    assert result.status == Status.REMEDIATED, result.message
    assert len(tries) == 2


def test_missing_bucket_fails_with_the_aws_reason(aws: Any) -> None:
    result = fix(Clients(aws, MEMBER_ACCOUNT, REGION), "asr-no-such-bucket")
    assert result.status == Status.FAILED
    assert result.message.startswith("NoSuchBucket")


# --- The shared topic


def test_an_existing_topic_keeps_its_statements_and_is_written_once(aws: Any) -> None:
    clients, first = seeded_bucket(aws)
    _, second = seeded_bucket(aws, n=1)
    arn = clients.sns.create_topic(Name=TOPIC)["TopicArn"]
    default = topic_policy(clients)["Statement"]
    local.served_requests(clear=True)
    assert fix(clients, first).status == Status.REMEDIATED
    assert served("sns") == ["GetTopicAttributes", "SetTopicAttributes"]
    assert topic_policy(clients, arn)["Statement"] == [*default, s3_publish_statement(arn, MEMBER_ACCOUNT)]

    local.served_requests(clear=True)
    assert fix(clients, second).status == Status.REMEDIATED
    assert served("sns") == ["GetTopicAttributes"], "the statement is there: no write"


def test_a_changed_statement_of_asr_is_replaced(aws: Any) -> None:
    clients, bucket = seeded_bucket(aws)
    arn = clients.sns.create_topic(Name=TOPIC)["TopicArn"]
    loose = {**s3_publish_statement(arn, MEMBER_ACCOUNT), "Condition": {}}
    policy = {"Version": "2012-10-17", "Statement": [loose]}
    clients.sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(policy))
    assert fix(clients, bucket).status == Status.REMEDIATED
    assert topic_policy(clients, arn)["Statement"] == [s3_publish_statement(arn, MEMBER_ACCOUNT)]


def test_the_topic_is_made_in_the_bucket_region_by_clients_of_another(aws: Any) -> None:
    """S3 playbooks are global, and S3 notifies only a topic in the bucket's Region."""
    _, bucket = seeded_bucket(aws, region="us-west-2")
    elsewhere = Clients(aws, MEMBER_ACCOUNT, "eu-central-1")
    result = fix(elsewhere, bucket, topic_name="bucket-events")
    assert result.status == Status.REMEDIATED, result.message
    arn = f"arn:aws:sns:us-west-2:{MEMBER_ACCOUNT}:bucket-events"
    assert configuration(elsewhere, bucket)["TopicConfigurations"][0]["TopicArn"] == arn
    assert elsewhere.in_region("us-west-2").sns.get_topic_attributes(TopicArn=arn)
    assert elsewhere.sns.list_topics()["Topics"] == []


def test_fixes_at_once_share_the_topic_they_create(aws: Any) -> None:
    region = "eu-west-1"
    clients = Clients(aws, MEMBER_ACCOUNT, region)
    buckets = [seeded_bucket(aws, region, n)[1] for n in range(4)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda bucket: fix(clients, bucket), buckets))
    assert [r.status for r in results] == [Status.REMEDIATED] * 4, [r.message for r in results]
    assert clients.sns.list_topics()["Topics"] == [{"TopicArn": topic_arn(region)}]
    assert [s["Sid"] for s in topic_policy(clients, topic_arn(region))["Statement"]] == [S3_PUBLISH_SID]


# --- The revert


def test_revert_puts_the_earlier_configuration_back_and_leaves_the_topic(aws: Any) -> None:
    clients, bucket = seeded_bucket(aws)
    others = other_destinations(clients)
    put_configuration(clients, bucket, **others)
    action = registry().playbooks["S3.11"].build_action({"event_types": DEFAULT_EVENTS})
    before = action.read(clients, bucket)
    assert remediate_resource(action, clients, bucket).status == Status.REMEDIATED

    with parameters_sent(clients.s3, "PutBucketNotificationConfiguration") as sent:
        action.revert(clients, bucket, before)
    assert sent == [
        {"Bucket": bucket, "NotificationConfiguration": others, "SkipDestinationValidation": True}
    ]
    assert configuration(clients, bucket) == others
    assert topic_policy(clients)["Statement"] == [s3_publish_statement(topic_arn(), MEMBER_ACCOUNT)]


def test_revert_of_a_bucket_that_notified_nothing_empties_its_configuration(aws: Any) -> None:
    clients, bucket = seeded_bucket(aws)
    action = registry().playbooks["S3.11"].build_action()
    before = action.read(clients, bucket)
    assert remediate_resource(action, clients, bucket).status == Status.REMEDIATED
    action.revert(clients, bucket, before)
    assert configuration(clients, bucket) == {}
    assert action.plan(action.read(clients, bucket)), "non-compliant again"
