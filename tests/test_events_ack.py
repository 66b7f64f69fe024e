"""The events queue's trigger in Airflow's ack mode: a message is deleted only once Airflow
has stored the asset event that carries it, and a message that comes back is acted on once.

The triggerer itself, killed between receiving and storing, is in test_events_e2e.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from asr.claims import Claims
from asr.events import (
    CUSTOM_ACTION,
    IMPORTED,
    LEFT_OUT_CLAIM_TTL,
    brief,
    findings_asked,
    message_claim,
    prune_message_claims,
    take,
)
from asr.triggers import QueueProducer, SecurityHubEventsTrigger

REGION = "us-east-1"
URL = f"https://sqs.{REGION}.amazonaws.com/111111111111/asr-events"


def body(kind: str, *finding_ids: str) -> str:
    detail = {"findings": [{"Id": i} for i in finding_ids]}
    return json.dumps({"detail-type": kind, "source": "aws.securityhub", "detail": detail})


def trigger(url: str = URL, **kwargs: Any) -> SecurityHubEventsTrigger:
    """As asr_events makes it."""
    arguments = {"max_messages": 10, "wait_time_seconds": 1, "waiter_delay": 0, **kwargs}
    return SecurityHubEventsTrigger(sqs_queue=url, region_name=REGION, aws_conn_id="aws_default", **arguments)


class FakeSqs:
    """An SQS client that answers ``receive_message`` from ``answers`` (then nothing), and
    ``delete_message_batch`` with ``failed`` entries for the receipt handles named there."""

    def __init__(self, answers: list[Any], failed: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.answers, self.failed = list(answers), failed
        self.received: list[dict[str, Any]] = []
        self.deleted: list[str] = []

    async def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.received.append(kwargs)
        answer = self.answers.pop(0) if self.answers else []
        if isinstance(answer, Exception):
            raise answer
        return {"Messages": answer} if answer else {}

    async def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        failed = [e for e in Entries if e["ReceiptHandle"] in self.failed]
        self.deleted += [e["ReceiptHandle"] for e in Entries if e not in failed]
        done = {"Successful": [{"Id": e["Id"]} for e in Entries if e not in failed]}
        return done | (
            {
                "Failed": [
                    {"Id": e["Id"], "Code": "ReceiptHandleIsInvalid", "Message": "gone", "SenderFault": True}
                    for e in failed
                ]
            }
            if failed
            else {}
        )


def connected(producer: QueueProducer, sqs: FakeSqs) -> QueueProducer:
    class Connection:
        async def __aenter__(self) -> FakeSqs:
            return sqs

        async def __aexit__(self, *exc: object) -> None:
            return None

    async def client() -> Connection:
        return Connection()

    producer._client = client  # type: ignore[method-assign]
    return producer


def message(n: int, kind: str = CUSTOM_ACTION) -> dict[str, str]:
    return {"MessageId": f"m{n}", "ReceiptHandle": f"r{n}", "Body": body(kind, f"f{n}")}


def first(stream: Any) -> Any:
    async def take_one() -> Any:
        return await stream.__anext__()

    return asyncio.run(take_one())


def test_the_trigger_opts_into_ack_mode_with_the_dag_s_keywords() -> None:
    made = trigger(waiter_delay=1, wait_time_seconds=20)
    classpath, kwargs = made.serialize()
    assert classpath == "asr.triggers.SecurityHubEventsTrigger"
    rebuilt = SecurityHubEventsTrigger(**kwargs)
    assert (
        rebuilt.shared_stream_key()
        == made.shared_stream_key()
        == (
            "asr-security-hub-events",
            URL,
            "aws_default",
            REGION,
        )
    )
    assert isinstance(SecurityHubEventsTrigger.create_shared_stream_producer(kwargs), QueueProducer)
    # A trigger row stored by the provider's trigger (before this one) still loads.
    SecurityHubEventsTrigger(**kwargs, num_batches=1, delete_message_on_reception=True, verify=None)


def test_received_messages_are_hidden_past_the_ack_timeout_and_not_deleted() -> None:
    sqs = FakeSqs([[message(1), message(2)]])
    producer = connected(
        SecurityHubEventsTrigger.create_shared_stream_producer(trigger().serialize()[1]), sqs
    )
    briefs, receipts = first(producer.open_stream())
    assert [b["MessageId"] for b in briefs] == ["m1", "m2"]
    assert json.loads(briefs[0]["Body"])["detail"]["findings"] == [{"Id": "f1"}]
    assert "ReceiptHandle" not in json.dumps(briefs)
    assert [r["ReceiptHandle"] for r in receipts] == ["r1", "r2"]
    assert sqs.deleted == []  # until Airflow says the event is stored
    from airflow.configuration import conf

    ack_timeout = conf.getfloat("triggerer", "shared_stream_ack_timeout")
    # Airflow gives an event up as late as 1.1 times its ack timeout; the message waited in a drain before.
    given_up = ack_timeout * 1.1 + producer.trigger.drain_seconds + producer.trigger.wait_time_seconds
    assert all(call["VisibilityTimeout"] > given_up for call in sqs.received)
    assert sqs.received[0]["WaitTimeSeconds"] == 1 and sqs.received[0]["MaxNumberOfMessages"] == 10


def test_a_burst_makes_one_event_up_to_the_drain_s_cap() -> None:
    """60 Imported events over 30 s made 15 runs: messages that keep coming are one event."""
    burst = [[message(n, IMPORTED) for n in range(start, start + 10)] for start in range(0, 130, 10)]
    sqs = FakeSqs(burst)
    producer = connected(QueueProducer(trigger(drain_seconds=60)), sqs)
    briefs, _ = first(producer.open_stream())
    assert len(briefs) == 100 and len(sqs.received) == 10
    sqs = FakeSqs([[message(1)], [message(2)], [], [message(3)]])
    producer = connected(QueueProducer(trigger()), sqs)
    briefs, _ = first(producer.open_stream())
    assert [b["MessageId"] for b in briefs] == ["m1", "m2"]  # the drain ends when the queue is quiet


def item(receipts: list[dict[str, str]], acked: int = 1, failed: int = 0, rejected: int = 0) -> Any:
    from airflow.triggers.shared_stream import AdvanceItem, AdvanceOutcome

    return AdvanceItem(receipts, AdvanceOutcome(acked=acked, failed=failed, rejected=rejected))


def receipts(*ns: int) -> list[dict[str, str]]:
    return [{"MessageId": f"m{n}", "ReceiptHandle": f"r{n}"} for n in ns]


def test_advance_deletes_exactly_the_messages_of_stored_events_and_logs_failed_deletes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sqs = FakeSqs([], failed={"r12"})
    producer = connected(QueueProducer(trigger()), sqs)
    stored = item(receipts(*range(1, 13)))  # two DeleteMessageBatch calls: ten at most each
    timed_out, nobody, refused = item(receipts(20), 0, 1), item(receipts(21), 0), item(receipts(22), 0, 0, 1)
    with caplog.at_level(logging.INFO, logger="asr.triggers"):
        asyncio.run(producer.advance([stored, timed_out, nobody, refused]))
    assert sqs.deleted == [f"r{n}" for n in range(1, 12)]
    assert f"Deleting message m12 from {URL} failed: ReceiptHandleIsInvalid gone" in caplog.text
    assert caplog.text.count("Not deleting 1 messages") == 3


def test_a_delete_that_raises_does_not_end_the_stream(caplog: pytest.LogCaptureFixture) -> None:
    """Airflow ends the stream for every watcher when advance raises: the message comes back."""

    class Down(FakeSqs):
        async def delete_message_batch(self, **kwargs: Any) -> dict[str, Any]:
            raise ConnectionError("endpoint down")

    producer = connected(QueueProducer(trigger()), Down([]))
    asyncio.run(producer.advance([item(receipts(1))]))
    assert f"Deleting 1 messages from {URL} failed: ConnectionError: endpoint down" in caplog.text


def test_a_queue_that_cannot_be_read_is_tried_again_later_and_later(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    gone = ClientError(
        {"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue", "Message": "no such queue"}},
        "ReceiveMessage",
    )
    sqs = FakeSqs([gone] * 9 + [[message(1)]])
    producer = connected(QueueProducer(trigger()), sqs)
    pauses: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr("asr.triggers.asyncio.sleep", sleep)
    briefs, _ = first(producer.open_stream())
    assert [b["MessageId"] for b in briefs] == ["m1"]
    assert pauses == [5, 10, 20, 40, 80, 160, 300, 300, 300]
    assert f"Cannot read the events queue {URL} (failure 1): ClientError" in caplog.text
    assert "NonExistentQueue" in caplog.text


@pytest.fixture
def queue(stand_in: str) -> Iterator[tuple[Any, str]]:
    from airflow.providers.amazon.aws.hooks.sqs import SqsHook

    sqs = SqsHook(region_name=REGION).get_conn()  # the trigger's connection: the stand-in
    url = sqs.create_queue(QueueName="asr-events-ack")["QueueUrl"]
    sqs.purge_queue(QueueUrl=url)
    yield sqs, url
    sqs.delete_queue(QueueUrl=url)


def counts(sqs: Any, url: str) -> tuple[int, int]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return int(got[names[0]]), int(got[names[1]])


def test_through_airflow_s_shared_stream_a_message_is_deleted_once_its_event_is_stored(
    queue: tuple[Any, str],
) -> None:
    """Airflow's own manager drives the producer, as the triggerer does: the message stays in
    flight until the event's persist is confirmed, then goes."""
    from airflow.triggers.shared_stream import SharedStreamManager

    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody=body(CUSTOM_ACTION, "clicked"))
    watcher = trigger(url)
    key = watcher.shared_stream_key()

    async def scenario() -> list[tuple[int, int]]:
        manager = SharedStreamManager(ack_timeout=60)
        events = watcher.filter_shared_stream(manager.subscribe(trigger_id=1, trigger=watcher, key=key))
        event = await asyncio.wait_for(events.__anext__(), 30)
        assert [m["MessageId"] for m in event.payload["message_batch"]]
        seq = manager.bind_pending_event(trigger_id=1, key=key)
        assert seq is not None, "not in ack mode"
        following = asyncio.ensure_future(events.__anext__())  # the watcher moves on
        await asyncio.sleep(2)
        seen = [await asyncio.to_thread(counts, sqs, url)]  # received, event not stored yet
        manager.confirm_persisted([seq])
        for _ in range(50):
            await asyncio.sleep(0.2)
            if await asyncio.to_thread(counts, sqs, url) == (0, 0):
                break
        seen.append(await asyncio.to_thread(counts, sqs, url))
        following.cancel()
        await manager.unsubscribe(1, key)
        return seen

    assert asyncio.run(scenario()) == [(0, 1), (0, 0)]


def test_a_message_whose_event_was_not_stored_comes_back(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    sqs.send_message(QueueUrl=url, MessageBody=body(CUSTOM_ACTION, "clicked"))
    producer = QueueProducer(trigger(url, visibility_timeout=2))

    async def receive_twice() -> tuple[Any, Any]:
        stream = producer.open_stream()
        try:
            first_time = await stream.__anext__()
            await producer.advance([item(first_time[1], 0, 1)])  # the ack timed out
            return first_time, await asyncio.wait_for(stream.__anext__(), 30)
        finally:
            await stream.aclose()
            await producer.aclose()

    (once, _), (again, receipts_again) = asyncio.run(receive_twice())
    assert [m["MessageId"] for m in again] == [m["MessageId"] for m in once]
    asyncio.run(producer.advance([item(receipts_again)]))
    asyncio.run(producer.aclose())
    assert counts(sqs, url) == (0, 0)


START = datetime.datetime(2026, 3, 1, 12, tzinfo=datetime.UTC)


def asset_event(minutes: int, *messages: tuple[str, str]) -> SimpleNamespace:
    """An asset event as the trigger makes it: (MessageId, finding) per message."""
    sent = str(int(START.timestamp() * 1000))  # SQS took each in at START: the same on every delivery
    batch = [{"MessageId": m, "SentTimestamp": sent, "Body": body(CUSTOM_ACTION, f)} for m, f in messages]
    return SimpleNamespace(
        timestamp=START + datetime.timedelta(minutes=minutes),
        extra={"from_trigger": True, "payload": {"status": "success", "message_batch": batch}},
        created_dagruns=[],
        source_dag_id=None,
    )


def test_a_message_that_comes_back_is_not_acted_on_again(tmp_path: Path) -> None:
    """A failed delete, or a triggerer that died between Airflow storing the event and the
    delete: SQS delivers the message again, in another event at another time, which makes
    another run. That run must not route the finding again and ask a person to approve
    again; what came with it is its own."""
    r1, r2 = (Claims(tmp_path, f"asr_events/{run}", LEFT_OUT_CLAIM_TTL) for run in ("R1", "R2"))
    first_event = asset_event(0, ("m1", "f1"))
    assert findings_asked(take([first_event], [], r1)).finding_ids == ["f1"]
    redelivered = asset_event(7, ("m1", "f1"), ("m2", "f2"))
    assert findings_asked(take([redelivered], [], r2)).finding_ids == ["f2"]
    assert findings_asked(take([asset_event(8, ("m1", "f1"))], [], r2)).finding_ids == []
    assert findings_asked(take([first_event], [], r1)).finding_ids == ["f1"], "R1's retry takes it again"


def test_a_message_s_claim_is_filed_under_the_day_sqs_took_it_in_on_every_delivery() -> None:
    """Delivered again after midnight, in an event of the next day, it keeps its claim's name."""
    taken_in = datetime.datetime(2026, 12, 6, 23, 59, tzinfo=datetime.UTC)
    sent = {"MessageId": "m1", "SentTimestamp": str(int(taken_in.timestamp() * 1000))}
    names = {message_claim(sent, taken_in + datetime.timedelta(minutes=m)) for m in (0, 2, 600)}
    [name] = names
    assert name.startswith("messages/2026-12-06/message-")
    # One stored before briefs kept SentTimestamp: the day of its event, the same digest.
    assert message_claim({"MessageId": "m1"}, taken_in) == name


def test_the_trigger_keeps_when_sqs_took_each_message_in() -> None:
    assert brief({**message(1), "Attributes": {"SentTimestamp": "1765065600000"}})["SentTimestamp"] == (
        "1765065600000"
    )
    assert "SentTimestamp" not in brief(message(1))


def claim_sent(claims: Claims, sent: datetime.datetime) -> None:
    """Claim a message SQS took in at ``sent``, as a run taking it does."""
    message = {"MessageId": f"m-{sent.isoformat()}", "SentTimestamp": str(int(sent.timestamp() * 1000))}
    assert claims.acquire(message_claim(message, sent), {}) is None


def test_days_of_message_claims_past_their_ttl_are_deleted(tmp_path: Path) -> None:
    """One claim per message would pile up for good: whole days go once they lapse, past the
    queue's retention too: a message SQS kept 13 days (a triggerer down) is claimed only when
    it is taken, and its claim must hold for the ttl from then."""
    claims = Claims(tmp_path / "claims", "asr_events/R1", LEFT_OUT_CLAIM_TTL)
    now = datetime.datetime(2026, 12, 7, 9, 0, tzinfo=datetime.UTC)
    for days_ago in (0, 13, 21, 22, 23, 40):
        claim_sent(claims, now - datetime.timedelta(days=days_ago))
    (tmp_path / "claims" / "messages" / "notes").mkdir()  # not a day: not ours to delete
    prune_message_claims(claims, now)
    left = sorted(p.name for p in (tmp_path / "claims" / "messages").iterdir())
    # 14 days in the queue, a week's ttl and a day kept.
    assert left == ["2026-11-15", "2026-11-16", "2026-11-24", "2026-12-07", "notes"]
    prune_message_claims(Claims(tmp_path / "nothing-yet", "asr_events/R2"), now)  # no folder: nothing to do


def test_days_of_message_claims_past_their_ttl_are_deleted_in_s3(aws: Any) -> None:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from asr.claims import for_run

    s3 = S3Hook(aws_conn_id="aws_default")
    s3.create_bucket("asr-event-claims")
    claims = for_run("s3://asr-event-claims/audit", "asr_events", "R1", "aws_default", ttl=LEFT_OUT_CLAIM_TTL)
    assert claims is not None
    now = datetime.datetime(2026, 12, 7, 9, 0, tzinfo=datetime.UTC)
    for days_ago in (1, 30):
        claim_sent(claims, now - datetime.timedelta(days=days_ago))
    prune_message_claims(claims, now)
    keys = s3.list_keys("asr-event-claims", prefix="audit/claims/")
    assert len(keys) == 1 and keys[0].startswith("audit/claims/messages/2026-12-06/message-"), keys


def test_a_receive_that_fails_mid_drain_keeps_what_was_received() -> None:
    """Dropped, the messages received would come back only after their visibility timeout."""
    sqs = FakeSqs([[message(1)], ConnectionError("endpoint down"), [message(2)]])
    stream = connected(QueueProducer(trigger()), sqs).open_stream()
    briefs, _ = first(stream)
    assert [b["MessageId"] for b in briefs] == ["m1"]
