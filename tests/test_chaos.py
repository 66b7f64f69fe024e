"""Chaos, small: a real sweep through Airflow's scheduler while things go wrong.

The stand-in throttles EC2 writes far below what asr's pacing assumes, one account's
member role cannot be assumed, one control is excluded, and the task process fixing the
big batch is killed with SIGKILL in the middle of it. Every finding must still end
RESOLVED, or NOTIFIED with a reason; no resource may be changed twice; every outcome must
be in the report, and every change in the audit journal.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers import Api, free_port, signed_in_users

from asr import local
from asr.local import ADMIN_ACCOUNT, MEMBER_ACCOUNT, chaos, throttling
from asr.local.airflow import LocalAirflow
from asr.local.seed import finding, import_findings, seed_one
from asr.securityhub import iter_findings, queries_by_id
from asr.store import RunStore

REGION = "us-east-1"
DENIED = "333333333333"
DAG_ID = "asr_sweep"


def seed(aws: Any) -> list[dict[str, Any]]:
    """The fleet and its findings: 24 groups to fix, 3 in the denied account, one account
    setting, and one default group whose control is excluded."""
    seeded = [seed_one(aws, "EC2.19", MEMBER_ACCOUNT, REGION, n) for n in range(24)]
    seeded += [seed_one(aws, "EC2.19", DENIED, REGION, n) for n in range(3)]
    seeded += [seed_one(aws, "EC2.7", ADMIN_ACCOUNT, REGION), seed_one(aws, "EC2.2", MEMBER_ACCOUNT, REGION)]
    findings = [finding(s) for s in seeded]
    import_findings(aws.admin_client("securityhub", REGION), findings)
    return findings


@pytest.mark.airflow
def test_every_finding_ends_with_a_reason_and_nothing_is_changed_twice(aws, tmp_path: Path) -> None:
    finding_ids = [f["Id"] for f in seed(aws)]
    local.deny_accounts([DENIED])
    throttling.enable(ec2_write=(3, 3))
    local.served_requests(clear=True)
    data_dir = tmp_path / "runs"
    environment = {
        "ASR_DATA_DIR": str(data_dir),
        "ASR_EXCLUDE_CONTROLS": "EC2.2",
        "ASR_RETRY_DELAY_SECONDS": "3",
        "ASR_BATCH_SIZE": "100",
    }
    run_id = "chaos"
    try:
        with LocalAirflow(tmp_path / "airflow", free_port(), environment) as airflow:
            airflow.prepare(DAG_ID)
            airflow.start("api-server", "scheduler", "dag-processor")
            airflow.trigger(DAG_ID, run_id)
            killed = chaos.kill_fix_mid_batch(data_dir / "audit", airflow.pids["scheduler"])
            run = airflow.wait(DAG_ID, run_id, timeout=600)
        stats = throttling.stats()
    finally:
        throttling.disable()
        local.deny_accounts([])
    assert killed
    assert stats["throttled"] > 0
    assert run["state"] == "success"

    verdict = chaos.judge(aws, data_dir, DAG_ID, run_id, finding_ids, local.served_requests())
    assert verdict.holds, verdict
    assert verdict.workflow == {"RESOLVED": 25, "NOTIFIED": 4}
    assert verdict.remediated == 25
    assert verdict.tries_seen == ["try1", "try2"]
    securityhub = aws.admin_client("securityhub", REGION)
    notes = [
        f["Note"]["Text"]
        for f in iter_findings(securityhub, queries_by_id(finding_ids))
        if f["Workflow"]["Status"] == "NOTIFIED"
    ]
    assert Counter("cannot assume" in n for n in notes)[True] == 3
    assert Counter("excluded" in n for n in notes)[True] == 1


@pytest.mark.airflow
def test_clearing_only_the_failed_tasks_of_a_run_writes_back_what_they_fixed(aws, tmp_path: Path) -> None:
    """A fix task dies with no retries left, so the run fails; an operator then clears the
    run's failed tasks only (the run's "Clear" with "only failed"). The fix must run again,
    and so must write-back and the report: Security Hub resolves every finding, and the
    second write-back counts the first one's findings as its own, not "left alone"."""
    seeded = [seed_one(aws, "EC2.19", MEMBER_ACCOUNT, REGION, n) for n in range(24)]
    findings = [finding(s) for s in seeded]
    import_findings(aws.admin_client("securityhub", REGION), findings)
    finding_ids = [f["Id"] for f in findings]
    throttling.enable(ec2_write=(3, 3))  # slow enough for the kill to land inside the second batch
    local.served_requests(clear=True)
    data_dir = tmp_path / "runs"
    home = tmp_path / "airflow"
    signed_in, passwords = signed_in_users(home, {"operator": "op"})
    environment = {
        **signed_in,
        "ASR_DATA_DIR": str(data_dir),
        "ASR_BATCH_SIZE": "8",
        "ASR_MAX_ACTIVE_FIXES": "1",  # one batch at a time: the first is done when the second dies
        "ASR_RATE_LIMITS": "off",  # paced, one task at a time would take all 24 in one batch
        "ASR_TASK_RETRIES": "0",
    }
    run_id = "cleared"
    store = RunStore.for_run(str(data_dir), DAG_ID, run_id)
    try:
        with LocalAirflow(home, free_port(), environment) as airflow:
            airflow.prepare(DAG_ID)
            airflow.start("api-server", "scheduler", "dag-processor")
            api = Api(airflow.api_url, "operator", passwords["operator"])
            api.call("POST", f"/dags/{DAG_ID}/dagRuns", {"dag_run_id": run_id, "logical_date": None})
            killed = chaos.kill_fix_mid_batch(data_dir / "audit", airflow.pids["scheduler"], after_intents=12)
            assert api.wait(DAG_ID, run_id) == "failed"
            for task_id in ("write_back", "report", "watcher"):
                ti = api.call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}")
                assert ti["state"] == "failed", task_id
            first = store.read_json("report.json")
            assert first["totals"]["NOT_RUN"] == 8 and first["findings_updated"] == 16

            only_failed = {"dry_run": False, "only_failed": True}
            api.call("POST", f"/dags/{DAG_ID}/dagRuns/{run_id}/clear", only_failed)
            assert api.wait(DAG_ID, run_id) == "success", f"logs: {airflow.logs}"
    finally:
        throttling.disable()
    assert len(killed) == 1
    verdict = chaos.judge(aws, data_dir, DAG_ID, run_id, finding_ids, local.served_requests())
    assert verdict.holds, verdict
    assert verdict.workflow == {"RESOLVED": 24}
    report = store.read_json("report.json")
    assert "NOT_RUN" not in report["totals"] and sum(report["totals"].values()) == 24
    assert (report["findings_updated"], report["writeback_left_alone"]) == (24, [])


def test_the_killer_spares_the_tasks_of_another_airflow(tmp_path: Path) -> None:
    """Two runs on one machine (a test run beside a benchmark): chaos kills its own tasks only."""
    import subprocess

    import psutil

    audit = tmp_path / "audit"
    audit.mkdir()
    (audit / "asr_sweep.chaos.EC2.19-0000.try1.jsonl").write_text('{"event": "intent"}\n' * 4)
    name = "airflow worker -- 01234567-89ab-cdef-0123-456789abcdef"
    # Two "schedulers", each with a task process under it.
    mine, theirs = (subprocess.Popen(["bash", "-c", f'(exec -a "{name}" sleep 60) & wait']) for _ in "ab")

    def task_of(scheduler: subprocess.Popen[bytes]) -> int:
        for _ in range(100):  # until the subshell has become the task process
            children = psutil.Process(scheduler.pid).children()
            if children and children[0].cmdline()[:1] == [name]:
                return children[0].pid
            time.sleep(0.05)
        raise TimeoutError("the fake task process did not start")

    try:
        my_task, their_task = task_of(mine), task_of(theirs)
        assert chaos.kill_fix_mid_batch(audit, mine.pid, timeout=10) == [my_task]
        assert psutil.Process(their_task).is_running()
    finally:
        for scheduler in (mine, theirs):
            for child in psutil.Process(scheduler.pid).children() if scheduler.poll() is None else []:
                # The task the killer took may be gone between the listing and this kill.
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
            scheduler.kill()
            scheduler.wait()
