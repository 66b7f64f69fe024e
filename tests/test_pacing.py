"""Pacing at the AWS budget, batched reads, and how a sweep is cut into batches."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import Refusals, routing_record

from asr import local
from asr.aws import Clients
from asr.config import ConfigError, Settings
from asr.findings import RoutingRecord
from asr.local import MEMBER_ACCOUNT, throttling
from asr.local.seed import seed_one
from asr.pacing import (
    AWS_LIMITS,
    HEADROOM,
    THROTTLING,
    RateBudget,
    RateLimitError,
    TokenBucket,
    parse_limits,
)
from asr.pacing import throttled as is_throttling
from asr.playbooks import registry
from asr.remediate import Status, busy, retry_throttled, run_batch
from asr.store import RunStore
from asr.sweep import RECORDS, batch_plan, plan

REGION = "us-east-1"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_bucket_gives_its_burst_at_once_then_the_refill_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(200, 5, clock=clock, sleep=clock.sleep)
    for _ in range(200):
        assert bucket.take() == 0
    for _ in range(800):
        bucket.take()
    assert clock.now == pytest.approx(800 / 5)


def test_a_throttling_answer_empties_the_bucket() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 2, clock=clock, sleep=clock.sleep)
    bucket.take()
    bucket.drain()
    assert bucket.take() == pytest.approx(0.5)


def test_limits_come_from_aws_defaults_off_or_json_overrides() -> None:
    assert parse_limits(None) == AWS_LIMITS
    assert parse_limits("off") is None
    limits = parse_limits('{"ec2:write": [100, 2], "iam:write": [10, 1]}')
    assert limits is not None
    assert limits["ec2:write"] == (100, 2) and limits["iam:write"] == (10, 1)
    assert limits["ec2:read"] == AWS_LIMITS["ec2:read"]
    for bad in (
        "fast",
        '["ec2"]',
        '{"ec2": [1, 1]}',
        '{"ec2:write": [0, 1]}',
        '{"ec2:write": [1]}',
        '{"ec2:write": [true, 1]}',
        '{"ec2:write": [10, 1e-300]}',
    ):
        with pytest.raises(RateLimitError):
            parse_limits(bad)
    # A class or operation no call is made under would pace nothing: refused, named.
    for typo in ("Write", "wirte", "ModifyInstanceAtribute", ""):
        with pytest.raises(RateLimitError, match=f"'{typo}' is neither read, write nor an operation of ec2"):
            parse_limits(f'{{"ec2:{typo}": [10, 1]}}')
    assert parse_limits('{"ec2:ModifyInstanceAttribute": [10, 1]}')["ec2:ModifyInstanceAttribute"] == (10, 1)
    # Keyed by the endpoint prefix (as IAM names the service), it would pace nothing: refused.
    with pytest.raises(
        RateLimitError, match="'elasticloadbalancing' is not a service name as boto3 spells it"
    ):
        parse_limits('{"elasticloadbalancing:write": [5, 1]}')
    with pytest.raises(ConfigError, match="ASR_RATE_LIMITS"):
        Settings(rate_limits="{")


def test_a_limit_named_as_boto3_names_the_service_paces_its_client(aws) -> None:  # type: ignore[no-untyped-def]
    """elbv2's calls go to the endpoint prefix elasticloadbalancing: the limit "elbv2:read" was
    looked up under that prefix, found nothing, and paced nothing."""
    limits = parse_limits('{"elbv2:read": [1, 1]}')
    assert limits is not None
    aws.budget = RateBudget(limits)
    elbv2 = Clients(aws, MEMBER_ACCOUNT, REGION).elbv2
    started = time.monotonic()
    for _ in range(3):
        elbv2.describe_load_balancers()
    assert time.monotonic() - started >= 1.5, "the second and third reads waited for tokens"
    assert elbv2.meta.config.retries["mode"] == "standard", "paced: no second, per-client limiter"


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("RequestLimitExceeded", 503, True),
        ("LimitExceededException", 429, True),  # Security Hub, API Gateway: the rate
        ("LimitExceededException", 400, False),  # KMS, CloudWatch Logs: a quota no retry cures
        ("AccessDenied", 403, False),
    ],
)
def test_what_counts_as_throttling(code: str, status: int, expected: bool) -> None:
    answer = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    assert is_throttling(answer) is expected
    assert_tried_again_only_if(answer, expected)


def assert_tried_again_only_if(answer: dict[str, Any], expected: bool) -> None:
    """``retry_throttled`` calls again, once refused with ``answer``, only if ``expected``."""
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ClientError(answer, "Op")  # type: ignore[arg-type]
        return "done"

    if expected:
        assert retry_throttled(call, sleep=lambda _: None) == "done" and len(calls) == 2
    else:
        with pytest.raises(ClientError):
            retry_throttled(call, sleep=lambda _: None)
        assert len(calls) == 1


def test_budget_share_divides_the_bucket_between_tasks() -> None:
    budget = RateBudget({"ec2:write": (200, 5)}, shares=4)
    bucket = budget.bucket("111111111111", REGION, "ec2", "RevokeSecurityGroupIngress")
    assert bucket is not None and (bucket.size, bucket.rate) == (50, pytest.approx(1.25 * HEADROOM))
    assert budget.bucket("111111111111", REGION, "ec2", "DescribeSecurityGroups") is None
    assert budget.bucket("111111111111", REGION, "s3", "PutBucketPolicy") is None


def test_budget_shares_can_differ_by_account_region() -> None:
    budget = RateBudget({"ec2:write": (200, 5)}, shares={f"111111111111/{REGION}": 2.5})
    busy = budget.bucket("111111111111", REGION, "ec2", "RevokeSecurityGroupIngress")
    quiet = budget.bucket("222222222222", REGION, "ec2", "RevokeSecurityGroupIngress")
    assert busy is not None and (busy.size, busy.rate) == (80, pytest.approx(2 * HEADROOM))
    assert quiet is not None and (quiet.size, quiet.rate) == (200, pytest.approx(5 * HEADROOM))


@pytest.fixture
def throttled(aws):  # type: ignore[no-untyped-def]
    throttling.disable()
    yield aws
    throttling.disable()


def _tag_calls(clients: Clients, vpc_id: str, count: int, threads: int) -> float:
    from concurrent.futures import ThreadPoolExecutor

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(
            pool.map(
                lambda n: clients.ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": f"k{n}", "Value": "v"}]),
                range(count),
            )
        )
    return time.monotonic() - started


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("OperationAborted", "A conflicting conditional operation is currently in progress", True),  # S3
        ("OperationAbortedException", "Multiple concurrent requests to update the same resource", True),
        ("ConcurrentModification", "Rate of concurrent updates exceeded", True),  # IAM
        ("ConflictException", "Unable to complete operation due to concurrent modification.", True),
        ("ResourceConflictException", "An update is in progress for resource", True),  # Lambda
        ("ConflictException", "Another resource with the same parent already has this name", False),
        ("ResourceConflictException", "The statement id provided already exists", False),
        ("AccessDenied", "try again", False),
    ],
)
def test_what_counts_as_busy(code: str, message: str, expected: bool) -> None:
    """Another operation on the same resource, for a moment: retried as throttling is; a
    lasting conflict (a name taken) is not."""
    answer = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 409}}
    assert busy(answer) is expected
    assert_tried_again_only_if(answer, expected)


def test_a_code_busy_by_its_service_s_word_alone() -> None:
    """CloudTrail's ConflictException means only "not ready, try again", whatever its message
    says: the trail fixes name it (``Action.busy_errors``); elsewhere the code needs the words."""
    answer = {"Error": {"Code": "ConflictException", "Message": "Conflict"}}
    assert busy(answer, {"ConflictException"}) and not busy(answer)
    trail_fix = registry().playbooks["CloudTrail.4"].build_action()
    assert busy(answer, trail_fix.busy_errors)


def test_a_bucket_busy_with_another_fix_s_write_is_fixed_on_a_second_try(
    aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 refuses a write while another on the bucket is under way (OperationAborted, 409):
    fixes of S3.4, S3.5 and S3.9 may write one bucket at once."""
    from asr import remediate

    monkeypatch.setattr(remediate.time, "sleep", lambda _: None)
    seeded = seed_one(aws, "S3.4", MEMBER_ACCOUNT, REGION)
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    refusals = Refusals(clients.s3, "PutBucketEncryption")
    refusals.next(
        {
            "Code": "OperationAborted",
            "Message": "A conflicting conditional operation is currently in progress",
        }
    )
    action = registry().playbooks["S3.4"].build_action()
    result = remediate.remediate_resource(action, clients, seeded.resource_id.split(":::", 1)[1])
    assert result.status == Status.REMEDIATED, result.message
    assert refusals.calls == 2


def test_paced_threads_stay_within_the_stand_in_budget(throttled) -> None:  # type: ignore[no-untyped-def]
    aws = throttled
    vpc_id = Clients(aws, MEMBER_ACCOUNT, REGION).ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    throttling.enable(ec2_write=(5, 20))
    aws.budget = RateBudget({"ec2:write": (5, 20)})
    aws._clients.clear()
    elapsed = _tag_calls(Clients(aws, MEMBER_ACCOUNT, REGION), vpc_id, 45, threads=6)
    writes = [c for c in throttling.stats()["counts"] if c["api_class"] == "write" and c["service"] == "ec2"]
    assert sum(c["served"] for c in writes) == 45
    # Requests sent evenly may still arrive bunched on a busy machine: rare, never lost.
    assert sum(c["throttled"] for c in writes) <= 2
    assert elapsed >= (45 - 5) / 20


def test_a_budget_larger_than_the_account_s_backs_off_and_loses_nothing(
    throttled, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """asr's own bucket empties on each throttling answer (botocore's retries alone would also
    lose nothing, but keep sending at the budget's rate): both are proven here."""
    aws = throttled
    vpc_id = Clients(aws, MEMBER_ACCOUNT, REGION).ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    throttling.enable(ec2_write=(5, 20))
    aws.budget = RateBudget({"ec2:write": (100, 100)})
    aws._clients.clear()
    drained: list[TokenBucket] = []
    real_drain = TokenBucket.drain
    monkeypatch.setattr(TokenBucket, "drain", lambda self: (drained.append(self), real_drain(self))[1])
    _tag_calls(Clients(aws, MEMBER_ACCOUNT, REGION), vpc_id, 40, threads=4)
    writes = [c for c in throttling.stats()["counts"] if c["api_class"] == "write" and c["service"] == "ec2"]
    assert sum(c["served"] for c in writes) == 40
    throttled_calls = sum(c["throttled"] for c in writes)
    assert throttled_calls > 0
    assert len(drained) == throttled_calls, "each throttling answer empties the member's ec2:write bucket"


def _records(control: str, seeded: list[Any]) -> list[RoutingRecord]:
    playbook = registry().for_control(control)
    return [
        routing_record(
            control,
            s.resource_id,
            playbook.extract_resource_id(s.resource_id, MEMBER_ACCOUNT),
            MEMBER_ACCOUNT,
        )
        for s in seeded
    ]


def test_a_batch_reads_its_groups_in_one_call_before_and_one_after(aws) -> None:
    seeded = [seed_one(aws, "EC2.19", MEMBER_ACCOUNT, REGION, n) for n in range(30)]
    local.served_requests(clear=True)
    outcomes = run_batch(_records("EC2.19", seeded), registry(), aws)
    assert {o.status for o in outcomes} == {Status.REMEDIATED}
    calls = Counter(r["action"] for r in local.served_requests() if r["service"] == "ec2")
    assert calls["DescribeSecurityGroups"] == 2
    assert calls["RevokeSecurityGroupIngress"] == 30


def test_a_resource_that_cannot_be_read_in_bulk_is_read_alone(aws) -> None:
    """A bulk read naming an id that does not exist fails whole: each resource is then read on
    its own, and only the missing one fails."""
    seeded = [seed_one(aws, "EC2.8", MEMBER_ACCOUNT, REGION, n) for n in range(3)]
    records = _records("EC2.8", seeded)
    records[0] = RoutingRecord(**{**records[0].to_dict(), "resource_id": "i-0123456789abcdef0"})
    local.served_requests(clear=True)
    outcomes = {o.resource_id: o for o in run_batch(records, registry(), aws)}
    assert outcomes["i-0123456789abcdef0"].status == Status.FAILED
    assert "InvalidInstanceID" in outcomes["i-0123456789abcdef0"].message
    assert [outcomes[r.resource_id].status for r in records[1:]] == [Status.REMEDIATED] * 2
    reads = [r for r in local.served_requests() if r["action"] == "DescribeInstances"]
    assert len(reads) == 1 + 3 + 1  # the bulk read refused, each alone, one read-back of the two fixed


def _store_with(tmp_path: Path, rows: list[dict[str, Any]]) -> RunStore:
    store = RunStore(tmp_path)
    store.write_lines(RECORDS, rows)
    return store


def _rows(playbook: str, account: str, region: str, count: int) -> list[dict[str, Any]]:
    return [
        {"playbook": playbook, "account_id": account, "region": region, "resource_id": f"{account}-{n}"}
        for n in range(count)
    ]


def test_small_account_regions_share_a_batch_and_big_ones_are_split(tmp_path: Path) -> None:
    rows = _rows("EC2.19", "111111111111", REGION, 10) + _rows("EC2.19", "222222222222", REGION, 3)
    rows += _rows("EC2.19", "333333333333", "eu-west-1", 3) + _rows("S3.2", "111111111111", REGION, 2)
    store = _store_with(tmp_path, rows)
    batches = plan(store, registry(), Settings(batch_size=8, rate_limits="off"), 4)
    assert [(b["playbook"], b["count"]) for b in batches] == [("EC2.19", 8), ("EC2.19", 8), ("S3.2", 2)]
    assert batch_plan(store, batches[1])["targets"] == [
        "111111111111/us-east-1",
        "222222222222/us-east-1",
        "333333333333/eu-west-1",
    ]


def test_one_resource_s_findings_are_never_split_between_batches(tmp_path: Path) -> None:
    """Two fix tasks of one run must not change one resource at once: an EC2.13 and an EC2.14
    finding on one group go to one batch, and so do a bucket's findings from two regions."""
    rows = [
        {**row, "finding_id": f"{row['resource_id']}/{n}"}
        for row in _rows("EC2.13", "111111111111", REGION, 3)
        for n in range(3)
    ]
    rows += [
        {"playbook": "S3.2", "account_id": "111111111111", "region": region, "resource_id": "bucket"}
        for region in ("us-east-1", "eu-west-1", "us-east-1")
    ]
    store = _store_with(tmp_path, list(reversed(rows)))
    batches = plan(store, registry(), Settings(batch_size=2, rate_limits="off"), 4)
    resources = [
        [r["resource_id"] for r in store.read_lines(f"batches/{b['batch_id']}.jsonl")] for b in batches
    ]
    assert resources == [
        ["111111111111-0"] * 3,
        ["111111111111-1"] * 3,
        ["111111111111-2"] * 3,
        ["bucket"] * 3,
    ]


def test_with_pacing_an_account_region_gets_no_more_batches_than_can_run_at_once(tmp_path: Path) -> None:
    store = _store_with(tmp_path, _rows("EC2.19", "111111111111", REGION, 1000))
    paced = plan(store, registry(), Settings(batch_size=50), 4)
    assert [b["count"] for b in paced] == [250] * 4
    assert [batch_plan(store, b)["rate_shares"] for b in paced] == [{f"111111111111/{REGION}": 4.0}] * 4
    unpaced = plan(store, registry(), Settings(batch_size=50, rate_limits="off"), 4)
    assert len(unpaced) == 20


def test_with_pacing_a_batch_gets_a_part_of_the_budget_as_large_as_its_work(tmp_path: Path) -> None:
    """300 findings in one account-region make a batch of 250 and one of 50: split evenly, the
    big one would pace 250 writes on half the budget while the small one's half lay idle."""
    store = _store_with(tmp_path, _rows("EC2.19", "111111111111", REGION, 300))
    paced = plan(store, registry(), Settings(batch_size=250), 4)
    where = f"111111111111/{REGION}"
    assert [(b["count"], batch_plan(store, b)["rate_shares"]) for b in paced] == [
        (250, {where: 1.2}),
        (50, {where: 6.0}),
    ]


def test_a_paced_plan_of_a_large_fleet_keeps_what_xcom_carries_small(tmp_path: Path) -> None:
    """Paced, a playbook gets a few batches, each over many account-regions: the batch
    references named them all, and a fleet of thousands passed XCom's 256 KB."""
    import json

    rows = [row for n in range(4000) for row in _rows("EC2.19", f"{100000000000 + n}", REGION, 1)]
    store = _store_with(tmp_path, rows)
    batches = plan(store, registry(), Settings(batch_size=250), 4)
    assert len(batches) == 4 and len(json.dumps(batches)) < 1000
    assert sum(len(batch_plan(store, b)["rate_shares"]) for b in batches) == 4000


def test_a_batch_divides_each_of_its_budgets_on_its_own(tmp_path: Path) -> None:
    """251 findings in one account and 249 in another, batches of 250: the second batch holds
    one resource beside 250 in the first account, and 249 alone in the second."""
    rows = _rows("EC2.19", "111111111111", REGION, 251) + _rows("EC2.19", "222222222222", REGION, 249)
    store = _store_with(tmp_path, rows)
    paced = plan(store, registry(), Settings(batch_size=250), 4, running=4)
    assert [batch_plan(store, b)["rate_shares"] for b in paced] == [
        {f"111111111111/{REGION}": 1.004},
        {f"111111111111/{REGION}": 251.0, f"222222222222/{REGION}": 1.0},
    ]


@pytest.mark.parametrize("running", [1, 2, 3, 5, 8])
def test_batches_that_can_run_at_once_never_share_out_more_than_the_budget(running: int) -> None:
    from itertools import combinations

    from asr.sweep import _rate_shares

    here, there = ("1", "us-east-1", "ec2"), ("2", "us-east-1", "ec2")
    places = [Counter({here: n}) for n in (100, 90, 10, 10, 10)] + [Counter({here: 5, there: 50})]
    places.append(Counter({there: 20}))
    shares = _rate_shares(places, running)
    for key in (here, there):
        where = f"{key[0]}/{key[1]}"
        spending = [i for i, place in enumerate(places) if key in place]
        parts = [1 / shares[i][where] for i in spending]
        for size in range(1, min(running, len(spending)) + 1):
            for together in combinations(parts, size):
                assert sum(together) <= 1 + 1e-9, (key, together, shares)
        # and no budget is left idle: the largest that can run together spend all of it
        assert sum(sorted(parts, reverse=True)[:running]) == pytest.approx(1)
    assert shares[5][f"{there[0]}/{there[1]}"] == pytest.approx(70 / 50 if running > 1 else 1)


def test_throttling_that_never_ends_is_raised_after_the_last_attempt() -> None:
    """Retrying for ever would hold a fix task and its slot; the caller records the error."""
    assert "Throttling" in THROTTLING
    calls: list[int] = []
    sleeps: list[float] = []

    def throttled() -> None:
        calls.append(1)
        raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "X")

    with pytest.raises(ClientError, match="Rate exceeded"):
        retry_throttled(throttled, attempts=5, sleep=sleeps.append)
    assert len(calls) == 5
    assert len(sleeps) == 4, "no sleep after the last attempt"
    for attempt, slept in enumerate(sleeps):  # backing off: half to all of 2**attempt seconds
        assert 2**attempt / 2 <= slept <= 2**attempt
