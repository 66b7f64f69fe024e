"""Triggers that wait for AWS in the triggerer, so no worker slot is held meanwhile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.amazon.aws.triggers.sqs import SqsSensorTrigger
from airflow.triggers.base import BaseTrigger, TriggerEvent

from asr import events


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


class SecurityHubEventsTrigger(SqsSensorTrigger):
    """The amazon provider's SQS trigger, handing on each message cut down by ``events.brief``.

    The messages are deleted from the queue on reception, as the provider does; what the
    asset event keeps of each is its id, the event type and the finding ids.
    """

    async def poke(self, client: Any) -> list[dict[str, Any]]:
        return [events.brief(message) for message in await super().poke(client)]
