"""Chaos, small: a real sweep through Airflow's scheduler while things go wrong.

The stand-in throttles EC2 writes far below what asr's pacing assumes, one account's
member role cannot be assumed, one control is excluded, and the task process fixing the
big batch is killed with SIGKILL in the middle of it. Every finding must still end
RESOLVED, or NOTIFIED with a reason; no resource may be changed twice; every outcome must
be in the report, and every change in the audit journal.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest
from helpers import free_port

from asr import local
from asr.audit import AuditJournal, Origin, journal_root
from asr.local import ADMIN_ACCOUNT, MEMBER_ACCOUNT, throttling
from asr.local.airflow import LocalAirflow
from asr.local.seed import finding, import_findings, seed_one
from asr.securityhub import iter_findings, queries_by_id

REGION = "us-east-1"
DENIED = "333333333333"
DAG_ID = "asr_sweep"
# The task runner names its process after the task instance's id; LocalExecutor's own
# worker processes carry the same prefix and must live.
TASK_PROCESS = re.compile(
    r"^airflow worker -- [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
)


def intents_in_first_tries(audit: Path) -> int:
    return sum(path.read_text().count('"event": "intent"') for path in audit.rglob("*EC2.19*try1.jsonl"))


def kill_fix_mid_batch(audit: Path, timeout: float = 300) -> list[int]:
    """Once the first try has recorded a few changes, SIGKILL the running task processes
    (the EC2.19 fix; by then every other task has finished or not started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if intents_in_first_tries(audit) >= 4:
            victims = [
                p
                for p in psutil.process_iter(["cmdline"])
                if TASK_PROCESS.match(" ".join(p.info["cmdline"] or []).strip())
            ]
            for process in victims:
                process.send_signal(signal.SIGKILL)
            if victims:
                return [p.pid for p in victims]
        time.sleep(0.1)
    raise TimeoutError("the fix task never recorded a change")


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
            killed = kill_fix_mid_batch(data_dir / "audit")
            run = airflow.wait(DAG_ID, run_id, timeout=600)
        stats = throttling.stats()
    finally:
        throttling.disable()
        local.deny_accounts([])
    assert killed
    assert stats["throttled"] > 0
    assert run["state"] == "success"

    # Every finding RESOLVED, or NOTIFIED with the reason in its note.
    securityhub = aws.admin_client("securityhub", REGION)
    now = {f["Id"]: f for f in iter_findings(securityhub, queries_by_id(finding_ids))}
    workflow = Counter(f["Workflow"]["Status"] for f in now.values())
    assert workflow == {"RESOLVED": 25, "NOTIFIED": 4}
    notes = [f["Note"]["Text"] for f in now.values() if f["Workflow"]["Status"] == "NOTIFIED"]
    assert sum("cannot assume" in note for note in notes) == 3
    assert sum("excluded" in note for note in notes) == 1

    # Nothing changed twice: one revoke per security group, whatever was killed or retried.
    revokes = Counter(
        r["resource"] for r in local.served_requests() if r["action"] == "RevokeSecurityGroupIngress"
    )
    assert len(revokes) == 24 and set(revokes.values()) == {1}

    # No outcome missing from the report, and every change in the audit journal.
    report = json.loads((data_dir / DAG_ID / run_id / "report.json").read_text())
    outcomes = {o["finding_id"]: o for o in report["outcomes"]}
    assert set(outcomes) == set(finding_ids)
    remediated = {o["resource_id"] for o in outcomes.values() if o["status"] == "REMEDIATED"}
    assert len(remediated) == 25
    journal = AuditJournal(
        journal_root(str(data_dir / "audit"), DAG_ID, run_id), Origin(DAG_ID, run_id, "", None, "test")
    )
    settled = {c.intent["resource_id"] for c in journal.changes() if c.status == "REMEDIATED"}
    assert remediated <= settled
    tries = {path.name.rsplit(".", 2)[-2] for path in (data_dir / "audit").rglob("*EC2.19*.jsonl")}
    assert tries >= {"try1", "try2"}
