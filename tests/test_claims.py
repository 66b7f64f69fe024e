"""Overlapping runs: a resource is fixed by one run only."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

from test_pacing import _records

from asr import local
from asr.claims import Claims, claim_name
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import seed_one
from asr.pacing import RateBudget
from asr.playbooks import registry
from asr.remediate import Status, run_batch

REGION = "us-east-1"


def test_a_claim_is_exclusive_until_released(tmp_path: Path) -> None:
    sweep, rerun = Claims(tmp_path, "asr_sweep/a"), Claims(tmp_path, "asr_remediate/b")
    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "ec2.revoke-public-admin-ingress")
    assert sweep.acquire(name, {}) is None
    assert rerun.acquire(name, {}) == "asr_sweep/a"
    sweep.release_all()
    assert rerun.acquire(name, {}) is None


def test_a_retry_of_the_same_run_takes_over_its_claims(tmp_path: Path) -> None:
    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x")
    assert Claims(tmp_path, "asr_sweep/a").acquire(name, {}) is None  # the try that died
    retry = Claims(tmp_path, "asr_sweep/a")
    assert retry.acquire(name, {}) is None
    retry.release_all()
    assert not list(tmp_path.iterdir())


def test_a_claim_its_writer_has_not_filled_in_yet_is_held(tmp_path: Path) -> None:
    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x")
    (tmp_path / name).write_text("")  # created with O_EXCL a moment ago, JSON not written yet
    assert Claims(tmp_path, "asr_sweep/b").acquire(name, {}) == "another run"
    assert (tmp_path / name).exists()


def test_a_stale_claim_is_broken(tmp_path: Path) -> None:
    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x")
    Claims(tmp_path, "asr_sweep/dead").acquire(name, {})
    (tmp_path / name).write_text("{")  # and half-written
    old = time.time() - 7200
    os.utime(tmp_path / name, (old, old))
    assert Claims(tmp_path, "asr_sweep/b", ttl=3600).acquire(name, {}) is None


def test_a_resource_another_run_holds_is_left_to_it(aws, tmp_path: Path) -> None:
    seeded = [seed_one(aws, "EC2.13", MEMBER_ACCOUNT, REGION, n) for n in range(2)]
    records = _records("EC2.13", seeded)
    other = Claims(tmp_path, "asr_sweep/other")
    action = registry().playbooks["EC2.13"].build_action().name
    other.acquire(claim_name(MEMBER_ACCOUNT, REGION, records[0].resource_id, action), {})
    outcomes = run_batch(records, registry(), aws, claims=Claims(tmp_path, "asr_remediate/mine"))
    assert [o.status for o in outcomes] == [Status.IGNORED, Status.REMEDIATED]
    assert "asr_sweep/other" in outcomes[0].message
    assert [p.name for p in tmp_path.iterdir()] == [
        claim_name(MEMBER_ACCOUNT, REGION, records[0].resource_id, action)
    ]


def test_two_overlapping_runs_fix_each_resource_once(aws, tmp_path: Path) -> None:
    seeded = [seed_one(aws, "EC2.13", MEMBER_ACCOUNT, REGION, n) for n in range(12)]
    records = _records("EC2.13", seeded)
    aws.budget = RateBudget({"ec2:write": (1, 20)})  # slow enough for the runs to overlap
    aws._clients.clear()
    local.served_requests(clear=True)
    statuses: dict[str, list[str]] = {}

    def run(owner: str) -> None:
        outcomes = run_batch(records, registry(), aws, claims=Claims(tmp_path, owner))
        statuses[owner] = [o.status for o in outcomes]

    runs = [threading.Thread(target=run, args=(owner,)) for owner in ("asr_sweep/a", "asr_events/b")]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join()
    revokes = [r for r in local.served_requests() if r["action"] == "RevokeSecurityGroupIngress"]
    assert len(revokes) == 12
    both = Counter(s for run_statuses in statuses.values() for s in run_statuses)
    assert both[Status.REMEDIATED] == 12
    assert both[Status.FAILED] == 0
