"""Triggers that wait for AWS in the triggerer, so no worker slot is held meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Hashable, Sequence
from typing import Any

from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent
from airflow.triggers.shared_stream import AdvanceItem, SharedStreamProducer

from asr import events

log = logging.getLogger(__name__)
SQS_LONGEST_VISIBILITY = 12 * 3600  # seconds: SQS's maximum VisibilityTimeout
VISIBILITY_MARGIN = 60.0  # seconds, at most, for the delete after Airflow gave an event up


class AutomationExecutionTrigger(BaseTrigger):
    """Poll SSM Automation executions across accounts until all end or the deadline passes.

    Fires one event with the final status of every execution that ended; executions
    missing from it were still running at ``deadline`` (epoch seconds, so a restarted
    triggerer keeps the original deadline), and those the last poll could not read are in
    it as ``UNREADABLE`` with the error. An execution that cannot be read is waited for
    like one running: a failing role or endpoint may mend. The polls spend the batch's part
    of the rate budget (``rate_shares``), as its fix task did: other batches work beside it.
    """

    def __init__(
        self,
        executions: list[dict[str, str]],
        aws_conn_id: str,
        member_role_name: str,
        poll_seconds: float,
        deadline: float,
        rate_limits: str = "",
        rate_shares: float | dict[str, float] = 1,
        home_region: str = "us-east-1",
        session_name: str = "",
    ) -> None:
        super().__init__()
        self.executions = executions
        self.aws_conn_id = aws_conn_id
        self.member_role_name = member_role_name
        self.poll_seconds = poll_seconds
        self.deadline = deadline
        self.rate_limits = rate_limits  # ASR_RATE_LIMITS: the polls are paced like the fixes' calls
        self.rate_shares = rate_shares
        # As the task that started them assumes the member roles (``AwsContext``): the same
        # partition (a session with no region: Security Hub's), the same CloudTrail name.
        self.home_region = home_region
        self.session_name = session_name

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "executions": self.executions,
                "aws_conn_id": self.aws_conn_id,
                "member_role_name": self.member_role_name,
                "poll_seconds": self.poll_seconds,
                "deadline": self.deadline,
                "rate_limits": self.rate_limits,
                "rate_shares": self.rate_shares,
                "home_region": self.home_region,
                "session_name": self.session_name,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from asr import automation
        from asr.aws import SESSION_NAME, AwsContext
        from asr.pacing import RateBudget, parse_limits

        aws = await asyncio.to_thread(
            AwsContext.from_airflow,
            self.aws_conn_id,
            self.member_role_name,
            self.home_region,
            self.session_name or SESSION_NAME,
        )
        limits = parse_limits(self.rate_limits)
        if limits:
            aws.budget = RateBudget(limits, self.rate_shares)
        ended: dict[str, dict[str, str]] = {}
        while True:
            waiting = [e for e in self.executions if e["execution_id"] not in ended]
            statuses = await asyncio.to_thread(automation.poll, waiting, aws)
            ended |= {i: s for i, s in statuses.items() if s["status"] in automation.ENDED}
            if len(ended) == len(self.executions) or time.time() >= self.deadline:
                unread = {i: s for i, s in statuses.items() if s["status"] == automation.UNREADABLE}
                yield TriggerEvent({"statuses": ended | unread})
                return
            await asyncio.sleep(self.poll_seconds)


class SecurityHubEventsTrigger(BaseEventTrigger):
    """Hand the Security Hub events on the SQS queue to Airflow, deleting each message only
    once Airflow has stored the asset event that carries it.

    The amazon provider's ``SqsSensorTrigger`` deletes a message as it receives it: a
    triggerer killed or restarted before Airflow stored the asset event lost the message (a
    person's click) without trace. This trigger runs in Airflow's ack mode instead
    (``airflow.triggers.shared_stream``): its producer (``QueueProducer``) receives messages
    without deleting them, hidden from other receivers for longer than Airflow's
    ``[triggerer] shared_stream_ack_timeout``, and deletes those whose asset event Airflow
    confirmed stored (``advance``). A message whose event was not stored, or whose delete
    failed, comes back once its visibility timeout ends and makes another event: the runs
    take each message once (``events.take`` claims it by its MessageId). What the asset event
    keeps of each message is ``events.brief``: its id, the event type and the finding ids.

    The keywords are the provider trigger's that ``asr_events`` passes (``max_messages`` is
    one receive's, at most 10); ``drain_messages`` and ``drain_seconds`` bound how many
    messages that keep coming one asset event gathers, so that a burst makes few runs.
    """

    def __init__(
        self,
        sqs_queue: str,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        max_messages: int = 10,
        wait_time_seconds: int = 20,
        waiter_delay: int = 1,
        visibility_timeout: int | None = None,
        drain_messages: int = 100,
        drain_seconds: float = 5,
        **_earlier: Any,  # keywords of the provider's trigger a trigger row stored before this one
    ) -> None:
        super().__init__()
        if _earlier:  # said, so that a keyword mistyped where the trigger is made does not pass unseen
            log.info("SecurityHubEventsTrigger ignores %s", ", ".join(sorted(_earlier)))
        self.sqs_queue = sqs_queue
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.max_messages = max_messages
        self.wait_time_seconds = wait_time_seconds
        self.waiter_delay = waiter_delay
        self.visibility_timeout = visibility_timeout
        self.drain_messages = drain_messages
        self.drain_seconds = drain_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "sqs_queue": self.sqs_queue,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "max_messages": self.max_messages,
                "wait_time_seconds": self.wait_time_seconds,
                "waiter_delay": self.waiter_delay,
                "visibility_timeout": self.visibility_timeout,
                "drain_messages": self.drain_messages,
                "drain_seconds": self.drain_seconds,
            },
        )

    def hook(self) -> Any:
        from airflow.providers.amazon.aws.hooks.sqs import SqsHook

        return SqsHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    def shared_stream_key(self) -> Hashable:
        return ("asr-security-hub-events", self.sqs_queue, self.aws_conn_id or "", self.region_name or "")

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> QueueProducer:
        return QueueProducer(cls(**kwargs))

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        async for batch in shared_stream:
            yield TriggerEvent({"status": "success", "message_batch": batch})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Outside ack mode (only when driven by hand: the triggerer always shares the stream)
        nothing confirms a stored event, so a message is deleted on receipt, as the provider's
        trigger does."""
        producer = QueueProducer(self)
        try:
            async for batch, handles in producer.open_stream():
                await producer.delete(handles)
                yield TriggerEvent({"status": "success", "message_batch": batch})
        finally:
            await producer.aclose()


class QueueProducer(SharedStreamProducer):
    """The events queue's side of ``SecurityHubEventsTrigger`` in ack mode: receives messages
    without deleting them, and deletes (``advance``) those whose asset event Airflow stored."""

    FIRST_BACKOFF = 5.0  # seconds after the first failed read of the queue; doubled each time
    LONGEST_BACKOFF = 300.0

    def __init__(self, trigger: SecurityHubEventsTrigger) -> None:
        self.trigger = trigger
        self.queue_url = trigger.sqs_queue
        self._deleter: Any = None  # a client of its own: advance runs in another task
        self._stack = contextlib.AsyncExitStack()

    def visibility_timeout(self) -> int:
        """How long a received message stays hidden: past the moment Airflow gives up an event
        not confirmed stored (its ack timeout, checked every tenth of it: up to 1.1 times it
        after the event went out), plus the drain the message waited in before that (up to
        ``drain_seconds`` and one more receive), plus a margin for the delete. Shorter, a
        message could come back while its first event was still on its way."""
        trigger = self.trigger
        if trigger.visibility_timeout is not None:
            return int(trigger.visibility_timeout)
        from airflow.configuration import conf

        ack = conf.getfloat("triggerer", "shared_stream_ack_timeout", fallback=300.0)
        drained = trigger.drain_seconds + trigger.wait_time_seconds
        return min(SQS_LONGEST_VISIBILITY, math.ceil(ack * 1.1 + drained + min(ack, VISIBILITY_MARGIN)))

    def backoff(self, failures: int) -> float:
        return min(self.LONGEST_BACKOFF, self.FIRST_BACKOFF * 2 ** (failures - 1))

    async def _client(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return await self.trigger.hook().get_async_conn()

    async def open_stream(self) -> AsyncIterator[tuple[list[dict[str, Any]], list[dict[str, str]]]]:
        """Yield forever ``(briefs, receipts)``: the messages that kept coming, cut by
        ``events.brief``, and what deleting them takes. A queue that cannot be read (gone,
        access denied, no credentials) is logged and tried again ever later, up to
        ``LONGEST_BACKOFF``."""
        failures = 0
        visibility = self.visibility_timeout()
        log.info("Watching the events queue %s (visibility timeout %d s)", self.queue_url, visibility)
        while True:
            try:
                async with await self._client() as client:
                    while True:
                        messages = await self._drain(client, visibility)
                        if failures:
                            log.info("The events queue %s can be read again", self.queue_url)
                            failures = 0
                        if messages:
                            receipts = [
                                {"MessageId": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]}
                                for m in messages
                            ]
                            log.info("Received %d messages from %s", len(messages), self.queue_url)
                            for m in messages:
                                count = int((m.get("Attributes") or {}).get("ApproximateReceiveCount", 1))
                                if count > 1:
                                    log.warning(
                                        "Message %s came back (received %d times)", m["MessageId"], count
                                    )
                            yield [events.brief(m) for m in messages], receipts
                        else:
                            await asyncio.sleep(self.trigger.waiter_delay)
            except Exception as exc:  # any failure: tried again, later and later
                failures += 1
                delay = self.backoff(failures)
                log.error(
                    "Cannot read the events queue %s (failure %d): %s: %s; trying again in %.0f s",
                    self.queue_url,
                    failures,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _drain(self, client: Any, visibility: int) -> list[dict[str, Any]]:
        """One long poll, then further receives while messages keep coming, up to
        ``drain_messages`` or ``drain_seconds``."""
        trigger = self.trigger
        batch: list[dict[str, Any]] = []
        seen: set[str] = set()
        wait = trigger.wait_time_seconds
        started = time.monotonic()
        while True:
            room = trigger.drain_messages - len(batch)
            try:
                response = await client.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=max(1, min(10, trigger.max_messages, room)),
                    WaitTimeSeconds=wait,
                    VisibilityTimeout=visibility,
                    # SentTimestamp: the day the message's claim is filed under (``events.brief``).
                    AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                )
            except Exception:
                if not batch:
                    raise
                return batch  # those received go on; the next receive fails again, or not
            got = [m for m in response.get("Messages") or [] if m["MessageId"] not in seen]
            seen.update(m["MessageId"] for m in got)
            batch += got
            if not got or len(batch) >= trigger.drain_messages:
                return batch
            if time.monotonic() - started >= trigger.drain_seconds:
                return batch
            wait = min(1, trigger.wait_time_seconds)

    async def advance(self, batch: Sequence[AdvanceItem]) -> None:
        """Delete the messages of the events every watcher took and Airflow stored. The
        others come back when their visibility timeout ends. Never raises: Airflow would end
        the stream for every watcher, and a message not deleted only comes back."""
        receipts = [r for item in batch if item.outcome.is_clean for r in item.broker_payload]
        kept = [item for item in batch if not item.outcome.is_clean]
        for item in kept:
            log.warning(
                "Not deleting %d messages from %s: their event was not stored (%s); they come back",
                len(item.broker_payload),
                self.queue_url,
                item.outcome,
            )
        await self.delete(receipts)

    async def delete(self, receipts: Sequence[dict[str, str]]) -> None:
        """DeleteMessageBatch, ten at a time; failed entries are logged (those messages come
        back, and the runs take each message once)."""
        for start in range(0, len(receipts), 10):
            chunk = receipts[start : start + 10]
            entries = [{"Id": str(n), "ReceiptHandle": r["ReceiptHandle"]} for n, r in enumerate(chunk)]
            try:
                if self._deleter is None:
                    self._deleter = await self._stack.enter_async_context(await self._client())
                response = await self._deleter.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except Exception as exc:
                log.error(
                    "Deleting %d messages from %s failed: %s: %s; they come back",
                    len(chunk),
                    self.queue_url,
                    type(exc).__name__,
                    exc,
                )
                await self._close_deleter()
                continue
            for failed in response.get("Failed") or []:
                message = chunk[int(failed["Id"])]["MessageId"]
                log.error(
                    "Deleting message %s from %s failed: %s %s; it comes back",
                    message,
                    self.queue_url,
                    failed.get("Code"),
                    failed.get("Message"),
                )

    async def _close_deleter(self) -> None:
        stack, self._stack, self._deleter = self._stack, contextlib.AsyncExitStack(), None
        with contextlib.suppress(Exception):
            await stack.aclose()

    async def aclose(self) -> None:
        await self._close_deleter()
