"""Client-side pacing: a rate budget per (account, region, API class), shared by a task's threads.

AWS limits API calls per account and region with token buckets (EC2 mutating calls: a
bucket of 200 refilled at 5 a second). A sweep that exceeds them gets throttled and
spends its time in back-off; one that stays far below them idles. Every boto3 client
``asr.aws`` hands out takes a token before each call from the bucket of its account,
region and API class, so the threads of a fix task together run at the budget and
not beyond it. When several fix tasks act in the same account-region at once, the plan
gives each a part of that account-region's budget (``shares``). A throttling answer anyway (another
caller spent the account's budget) empties the bucket, so this task backs off to the
refill rate instead of retrying at full speed.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

THROTTLING = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "SlowDown",
    }
)
# Security Hub and API Gateway also refuse a call for its rate with LimitExceededException and
# HTTP 429; other services (KMS, CloudWatch Logs) answer the same code with 400 for a quota
# reached (keys, filters), which no retry cures.
RATE_LIMIT_EXCEEDED = "LimitExceededException"
READ_PREFIXES = ("Describe", "Get", "List", "Head")


def throttled(response: Mapping[str, Any]) -> bool:
    """Whether an AWS error answer (a ClientError's ``response``) refuses the call for its rate."""
    code = (response.get("Error") or {}).get("Code")
    if code in THROTTLING:
        return True
    return (
        code == RATE_LIMIT_EXCEEDED and (response.get("ResponseMetadata") or {}).get("HTTPStatusCode") == 429
    )


# Published defaults per account and region: (bucket size, refill per second). A key is
# "service:Operation" or "service:read" / "service:write"; the operation wins.
AWS_LIMITS: dict[str, tuple[float, float]] = {
    "ec2:write": (200, 5),
    "ec2:read": (100, 20),
    "securityhub:GetFindings": (6, 3),
    "securityhub:BatchUpdateFindings": (30, 10),
    "securityhub:BatchImportFindings": (30, 10),
    "ssm:StartAutomationExecution": (1, 1),
    "ssm:GetAutomationExecution": (3, 3),
    "ssm:DescribeAutomationExecutions": (3, 3),
}


class RateLimitError(ValueError):
    """ASR_RATE_LIMITS cannot be read."""


def parse_limits(text: str | None) -> dict[str, tuple[float, float]] | None:
    """``aws`` (or empty): the published defaults; ``off``: no pacing; or a JSON object
    of overrides on top of the defaults, e.g. ``{"ec2:write": [100, 2]}``."""
    text = (text or "aws").strip()
    if text.lower() == "off":
        return None
    if text.lower() == "aws":
        return dict(AWS_LIMITS)
    try:
        given = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RateLimitError(f"ASR_RATE_LIMITS is neither aws, off nor JSON: {exc}") from None
    if not isinstance(given, dict):
        raise RateLimitError("ASR_RATE_LIMITS must be a JSON object of 'service:class': [bucket, per_second]")
    limits = dict(AWS_LIMITS)
    for key, value in given.items():
        ok = (
            isinstance(key, str)
            and ":" in key
            and isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            and value[0] >= 1  # a bucket holds one call at least
            and value[1] >= MIN_RATE
        )
        if not ok:
            raise RateLimitError(
                f"ASR_RATE_LIMITS entry {key!r}: {value!r} is not 'service:class': [bucket, rate] "
                f"(a bucket of 1 or more, a rate of {MIN_RATE} a second or more)"
            )
        _check_key(key)
        limits[key] = (float(value[0]), float(value[1]))
    return limits


MIN_RATE = 0.01  # calls a second: below, one call waits minutes, a batch for days


def _check_key(key: str) -> None:
    """A limit whose service or class no call is made under would pace nothing, silently: the
    service as boto3 spells it, then read, write or one of its operations, as botocore names it."""
    service, _, kind = key.partition(":")
    if service not in _service_names():
        raise RateLimitError(
            f"ASR_RATE_LIMITS entry {key!r}: {service!r} is not a service name as "
            "boto3 spells it (ec2, elbv2, cloudwatch, securityhub, ...)"
        )
    if kind not in ("read", "write") and kind not in _operation_names(service):
        raise RateLimitError(
            f"ASR_RATE_LIMITS entry {key!r}: {kind!r} is neither read, write nor an operation of "
            f"{service} as botocore names it (DescribeSecurityGroups, ...)"
        )


@functools.cache
def _service_names() -> frozenset[str]:
    from botocore.session import get_session

    return frozenset(get_session().get_available_services())


@functools.cache
def _operation_names(service: str) -> frozenset[str]:
    from botocore.session import get_session

    return frozenset(get_session().get_service_model(service).operation_names)


def api_class(operation: str) -> str:
    return "read" if operation.startswith(READ_PREFIXES) else "write"


@dataclass
class TokenBucket:
    """Holds at most ``size`` tokens, refilled at ``rate`` a second; a call takes one."""

    size: float
    rate: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    tokens: float = field(init=False)
    stamp: float = field(init=False)
    lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.tokens = self.size
        self.stamp = self.clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.size, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self) -> float:
        """Wait for a token; return the seconds waited."""
        waited = 0.0
        while True:
            with self.lock:
                self._refill()
                if self.tokens >= 1 - 1e-9:  # refills in floating point may stop just short of 1
                    self.tokens -= 1
                    return waited
                pause = max((1 - self.tokens) / self.rate, 1e-3)
            self.sleep(pause)
            waited += pause

    def drain(self) -> None:
        """The service said we are over its budget: start again from an empty bucket."""
        with self.lock:
            self._refill()
            self.tokens = min(self.tokens, 0.0)


HEADROOM = 0.95


class RateBudget:
    """The buckets of one task, by (account, region, limit key). ``shares`` divide the budget
    between tasks that act in the same account-region at the same time: one number for
    every account-region, or a number per ``"account/region"`` (1 where none is given).
    The refill keeps ``HEADROOM`` of the rate: the service's clock is not ours, and
    requests sent evenly arrive bunched."""

    def __init__(
        self, limits: dict[str, tuple[float, float]], shares: float | Mapping[str, float] = 1
    ) -> None:
        self.limits = limits
        self.shares = shares
        self._buckets: dict[tuple[str, str, str], TokenBucket | None] = {}
        self._lock = threading.Lock()

    def share(self, account: str, region: str) -> float:
        """What this task divides the budget of an account-region by."""
        share = self.shares.get(f"{account}/{region}", 1) if isinstance(self.shares, Mapping) else self.shares
        return max(1.0, float(share))

    def bucket(self, account: str, region: str, service: str, operation: str) -> TokenBucket | None:
        for key in (f"{service}:{operation}", f"{service}:{api_class(operation)}"):
            if key in self.limits:
                break
        else:
            return None
        with self._lock:
            if (account, region, key) not in self._buckets:
                size, rate = self.limits[key]
                share = self.share(account, region)
                self._buckets[(account, region, key)] = TokenBucket(
                    max(1.0, size / share), rate * HEADROOM / share
                )
            return self._buckets[(account, region, key)]

    def attach(self, client: Any, account: str, region: str) -> None:
        """Pace every call the client makes, and back off when the service throttles it. Limits
        name a service as boto3 does (elbv2, cloudwatch), not by its endpoint prefix."""
        service = client.meta.service_model.service_name

        def before_call(model: Any, **_: Any) -> None:
            bucket = self.bucket(account, region, service, model.name)
            if bucket:
                bucket.take()

        def needs_retry(response: Any = None, operation: Any = None, **_: Any) -> None:
            if not response or operation is None:
                return
            if throttled(response[1] or {}):
                bucket = self.bucket(account, region, service, operation.name)
                if bucket:
                    bucket.drain()

        client.meta.events.register("before-call", before_call)
        client.meta.events.register("needs-retry", needs_retry)
