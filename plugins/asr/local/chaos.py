"""Chaos against a local run: kill a fix task mid-batch, then check what the run left.

Shared by the chaos test (small) and the chaos benchmark (1,000 findings), so both hold
a run to the same account: every finding RESOLVED, or NOTIFIED with a reason; no
resource changed twice; every outcome in the report and every change in the audit.
"""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from asr.audit import AuditJournal, Origin, journal_root
from asr.securityhub import iter_findings, queries_by_id
from asr.store import RunStore

# The task runner names its process after the task instance's id; LocalExecutor's own
# worker processes carry the same prefix and must live.
TASK_PROCESS = re.compile(
    r"^airflow worker -- [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
)
WRITES_BY_RESOURCE = ("RevokeSecurityGroupIngress", "ModifyInstanceMetadataOptions", "ModifySubnetAttribute")


def intents_in_first_tries(audit_dir: Path) -> int:
    return sum(path.read_text().count('"event": "intent"') for path in audit_dir.rglob("*try1.jsonl"))


def kill_fix_mid_batch(
    audit_dir: Path, scheduler_pid: int, after_intents: int = 4, timeout: float = 600
) -> list[int]:
    """Once first tries have recorded ``after_intents`` changes, SIGKILL the running task
    processes under the scheduler ``scheduler_pid`` (fix tasks, by then: ingest and plan are
    done, write-back waits for them). Only those: another Airflow on the machine (a second
    test run, a benchmark) keeps its tasks."""
    scheduler = psutil.Process(scheduler_pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if intents_in_first_tries(audit_dir) >= after_intents:
            victims = [p for p in scheduler.children(recursive=True) if _is_task_process(p)]
            for process in victims:
                process.send_signal(signal.SIGKILL)
            if victims:
                return [p.pid for p in victims]
        time.sleep(0.1)
    raise TimeoutError(f"no fix task recorded {after_intents} changes within {timeout:.0f}s")


def _is_task_process(process: psutil.Process) -> bool:
    try:
        return bool(TASK_PROCESS.match(" ".join(process.cmdline()).strip()))
    except psutil.Error:  # gone meanwhile
        return False


@dataclass(frozen=True)
class Verdict:
    findings: int
    workflow: dict[str, int]
    notified_without_reason: int
    changed_twice: int
    missing_from_report: int
    remediated: int
    remediated_missing_from_audit: int
    tries_seen: list[str]

    @property
    def holds(self) -> bool:
        return (
            set(self.workflow) <= {"RESOLVED", "NOTIFIED"}
            and sum(self.workflow.values()) == self.findings
            and not self.notified_without_reason
            and not self.changed_twice
            and not self.missing_from_report
            and not self.remediated_missing_from_audit
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "holds": self.holds}


def judge(
    aws: Any, data_dir: Path, dag_id: str, run_id: str, finding_ids: list[str], calls: list[dict[str, str]]
) -> Verdict:
    """What the run left, in Security Hub, the stand-in's request log (``calls``, the requests
    served during the run), the report and the audit journal."""
    securityhub = aws.admin_client("securityhub", "us-east-1")
    now = {f["Id"]: f for f in iter_findings(securityhub, queries_by_id(finding_ids))}
    workflow = Counter(f["Workflow"]["Status"] for f in now.values())
    silent = sum(
        1
        for f in now.values()
        if f["Workflow"]["Status"] == "NOTIFIED" and not (f.get("Note") or {}).get("Text")
    )
    writes = Counter(r["resource"] for r in calls if r["action"] in WRITES_BY_RESOURCE and r["resource"])
    report = RunStore.for_run(str(data_dir), dag_id, run_id).read_json("report.json")
    outcomes = {o["finding_id"]: o for o in report["outcomes"]}
    remediated = {o["resource_id"] for o in outcomes.values() if o["status"] == "REMEDIATED"}
    audit = data_dir / "audit"
    journal = AuditJournal(
        journal_root(str(audit), dag_id, run_id), Origin(dag_id, run_id, "", None, "chaos")
    )
    settled = {c.intent["resource_id"] for c in journal.changes() if c.status == "REMEDIATED"}
    tries = sorted({path.name.rsplit(".", 2)[-2] for path in audit.rglob("*.jsonl")})
    return Verdict(
        findings=len(finding_ids),
        workflow=dict(workflow),
        notified_without_reason=silent,
        changed_twice=sum(1 for count in writes.values() if count > 1),
        missing_from_report=len(set(finding_ids) - set(outcomes)),
        remediated=len(remediated),
        remediated_missing_from_audit=len(remediated - settled),
        tries_seen=tries,
    )
