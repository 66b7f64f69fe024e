"""A run rolled back, then its failed tasks cleared: its fix and write-back must not undo the rollback.

A failed run counts as finished, so a person may roll it back; its failure message says to
clear its failed tasks. Cleared, the fix read each resource non-compliant (rolled back) and
fixed it again, on the run's old approval, and write-back marked RESOLVED the findings the
rollback had marked reverted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import test_automation
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred
from test_automation import DOCUMENT, group_rules, where
from test_rollback import REGION, RUN_ID, _ended_run_context, _roll_back, resource_state

from asr import automation, claims, sweep, tasks
from asr.audit import BEGIN, FIX, INTENT, REVERT, AuditJournal, Origin, journal_root
from asr.aws import Clients
from asr.config import Settings
from asr.findings import parse_finding
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import finding, import_findings, seed_one
from asr.operators import AutomationFixOperator
from asr.playbooks import registry
from asr.store import RunStore

# The playbooks with EC2.13 applied through SSM Automation (test_automation's fixtures).
ssm_playbooks, ssm_registry = test_automation.ssm_playbooks, test_automation.ssm_registry
ROLLED_BACK = re.escape(
    f"run asr_sweep/{RUN_ID} was rolled back by asr_rollback/rollback-9: its fixes are not applied again"
)


def _sweep_task(task_id: str, try_number: int = 1) -> dict[str, Any]:
    """The context of a task of the asr_sweep run RUN_ID (as ``_ended_run_context`` names it)."""
    return {
        "params": {"dry_run": False},
        "run_id": RUN_ID,
        "dag": SimpleNamespace(dag_id="asr_sweep"),
        "dag_run": SimpleNamespace(run_type="manual", triggering_user_name="alice"),
        "ti": SimpleNamespace(try_number=try_number, task_id=task_id),
    }


def _journal() -> AuditJournal:
    """The run's journal, as its fix tasks open it."""
    settings = Settings.from_env()
    return AuditJournal(
        journal_root(settings.audit_root, "asr_sweep", RUN_ID), Origin("asr_sweep", RUN_ID, "b", 1, "alice")
    )


def _in_task(monkeypatch: pytest.MonkeyPatch, context: dict[str, Any]) -> None:
    """Call the TaskFlow tasks' functions as if Airflow ran them in ``context``."""
    monkeypatch.setattr(tasks, "get_current_context", lambda: context)


def _finding(aws: Any, finding_id: str) -> dict[str, Any]:
    """The finding as Security Hub holds it now."""
    securityhub = aws.admin_client("securityhub", REGION)
    [one] = securityhub.get_findings(Filters={"Id": [{"Value": finding_id, "Comparison": "EQUALS"}]})[
        "Findings"
    ]
    return dict(one)


def _planned(aws: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """An EC2.7 resource and its finding, ingested and planned by the sweep run RUN_ID: the
    resource, the finding and the run's one batch."""
    seeded = seed_one(aws, "EC2.7", MEMBER_ACCOUNT, REGION)
    raw = finding(seeded)
    import_findings(aws.admin_client("securityhub", REGION), [raw])
    _in_task(monkeypatch, _sweep_task("ingest"))
    tasks.ingest.function()
    store = RunStore.for_run(Settings.from_env().data_dir, "asr_sweep", RUN_ID)
    [batch] = sweep.plan(store, registry(), Settings.from_env())
    return seeded, raw, batch


def _rollback_begins() -> None:
    """asr_rollback's run rollback-9 marks the run RUN_ID, as it does before its first revert."""
    root = journal_root(Settings.from_env().audit_root, "asr_sweep", RUN_ID)
    AuditJournal(root, Origin("asr_rollback", "rollback-9", "rollback", 1, "bob")).record(
        {"event": BEGIN, "kind": REVERT}
    )


def _on_first_claim(monkeypatch: pytest.MonkeyPatch, hook: Callable[[], None]) -> list[claims.Claims]:
    """Call ``hook`` just before a task's first claim is taken; the claims made, to look at."""
    made: list[claims.Claims] = []
    real = claims.for_run

    def for_run(*args: Any, **kwargs: Any) -> claims.Claims | None:
        held = real(*args, **kwargs)
        assert held is not None
        acquire = held.acquire

        def first(name: str, about: dict[str, Any]) -> str | None:
            hook()
            held.acquire = acquire  # type: ignore[method-assign]
            return acquire(name, about)

        held.acquire = first  # type: ignore[method-assign]
        made.append(held)
        return held

    monkeypatch.setattr(claims, "for_run", for_run)
    return made


def test_a_rolled_back_run_cleared_fixes_nothing_again_nor_writes_back(
    aws, tmp_path: Path, rollback_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded, raw, batch = _planned(aws, monkeypatch)
    as_seeded = resource_state(aws, "EC2.7", MEMBER_ACCOUNT, seeded.resource_id)

    # The sweep run's fix and write-back.
    _in_task(monkeypatch, _sweep_task("fix"))
    assert tasks.fix.function(batch) == {"REMEDIATED": 1}
    _in_task(monkeypatch, _sweep_task("write_back"))
    tasks.write_back.function()
    assert _finding(aws, raw["Id"])["Workflow"]["Status"] == "RESOLVED"

    # It ended (failed, say); a person rolls it back.
    assert _roll_back(_ended_run_context(tmp_path, run=f"asr_sweep/{RUN_ID}")) == {"REVERTED": 1}
    assert resource_state(aws, "EC2.7", MEMBER_ACCOUNT, seeded.resource_id) == as_seeded
    marked = {"asr:reverted": "asr_rollback/rollback-9"}
    assert _finding(aws, raw["Id"])["UserDefinedFields"] == marked
    fixes = len(_journal().changes(FIX))

    # Its tasks cleared: the fix and the write-back run again, and refuse.
    _in_task(monkeypatch, _sweep_task("fix", try_number=2))
    with pytest.raises(AirflowFailException, match=ROLLED_BACK):
        tasks.fix.function(batch)
    assert resource_state(aws, "EC2.7", MEMBER_ACCOUNT, seeded.resource_id) == as_seeded
    assert len(_journal().changes(FIX)) == fixes, "nothing was even planned"
    _in_task(monkeypatch, _sweep_task("write_back", try_number=2))
    with pytest.raises(AirflowFailException, match=ROLLED_BACK):
        tasks.write_back.function()
    now = _finding(aws, raw["Id"])
    assert now["Workflow"]["Status"] == "NOTIFIED" and now["UserDefinedFields"] == marked


def test_a_rollback_marks_the_run_before_it_claims_anything_and_a_check_does_not(
    aws, tmp_path: Path, rollback_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fix task cleared meanwhile then sees the mark once it holds its claims (below)."""
    from asr.rollback import NOT_ASKED, check_chosen_run, decide, revert_chosen_run

    _, _, batch = _planned(aws, monkeypatch)
    _in_task(monkeypatch, _sweep_task("fix"))
    assert tasks.fix.function(batch) == {"REMEDIATED": 1}
    context = _ended_run_context(tmp_path, run=f"asr_sweep/{RUN_ID}")
    assert check_chosen_run(context) == {"WOULD_REVERT": 1}
    assert _journal().rolled_back_by() == [], "a check changes nothing"
    decide(tasks.run_context(context)[1], NOT_ASKED)

    marked_then: list[list[str]] = []
    _on_first_claim(monkeypatch, lambda: marked_then.append(_journal().rolled_back_by()))
    assert revert_chosen_run(context) == {"REVERTED": 1}
    assert marked_then == [["asr_rollback/rollback-9"]]


def test_a_fix_cleared_as_a_rollback_begins_changes_nothing_and_lets_go_of_its_claims(
    aws, tmp_path: Path, rollback_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fix task's first check passes; the rollback marks the run before the task claims
    the resource: the task must not fix it after the rollback has put things back."""
    seeded, _, batch = _planned(aws, monkeypatch)
    as_seeded = resource_state(aws, "EC2.7", MEMBER_ACCOUNT, seeded.resource_id)
    made = _on_first_claim(monkeypatch, _rollback_begins)
    _in_task(monkeypatch, _sweep_task("fix"))
    with pytest.raises(AirflowFailException, match=ROLLED_BACK):
        tasks.fix.function(batch)
    assert resource_state(aws, "EC2.7", MEMBER_ACCOUNT, seeded.resource_id) == as_seeded
    assert _journal().changes(FIX) == []
    [held] = made
    assert not [p for p in held.root.iterdir() if not p.name.startswith(".")], "the claim is let go"


def test_a_rollback_that_puts_nothing_back_leaves_the_run_s_tasks_free(
    aws, tmp_path: Path, rollback_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing to put back (a person undid the fix by hand): the run is not marked, and its
    tasks, cleared once the cause is mended, may fix again."""
    _, _, batch = _planned(aws, monkeypatch)
    _in_task(monkeypatch, _sweep_task("fix"))
    assert tasks.fix.function(batch) == {"REMEDIATED": 1}
    Clients(aws, MEMBER_ACCOUNT, REGION).ec2.disable_ebs_encryption_by_default()
    assert _roll_back(_ended_run_context(tmp_path, run=f"asr_sweep/{RUN_ID}")) == {"CHANGED_SINCE": 1}
    assert _journal().rolled_back_by() == []
    _in_task(monkeypatch, _sweep_task("fix", try_number=2))
    assert tasks.fix.function(batch) == {"REMEDIATED": 1}


def test_a_rollback_whose_run_was_cleared_meanwhile_puts_nothing_back_until_it_ends(
    aws, tmp_path: Path, rollback_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After its check the run ended; a person then cleared a task of it (write-back, say,
    which takes no claim): the rollback, once it has marked the run, sees it running and
    waits for a retry, when whatever that task did is in the journal."""
    from asr import selection

    seeded, _, batch = _planned(aws, monkeypatch)
    _in_task(monkeypatch, _sweep_task("fix"))
    assert tasks.fix.function(batch) == {"REMEDIATED": 1}
    fixed = resource_state(aws, "EC2.7", MEMBER_ACCOUNT, seeded.resource_id)
    context = _ended_run_context(tmp_path, run=f"asr_sweep/{RUN_ID}")
    # Airflow's answer: the run is running again once the rollback has marked it (it was cleared).
    monkeypatch.setattr(selection, "run_state", lambda *_: "running" if _journal().rolled_back_by() else None)
    with pytest.raises(RuntimeError, match=re.escape(f"run asr_sweep/{RUN_ID} is running again")):
        _roll_back(context)
    assert resource_state(aws, "EC2.7", MEMBER_ACCOUNT, seeded.resource_id) == fixed, "nothing put back"
    _in_task(monkeypatch, _sweep_task("write_back", try_number=2))
    with pytest.raises(AirflowFailException, match=ROLLED_BACK):
        tasks.write_back.function()

    monkeypatch.setattr(selection, "run_state", lambda *_: "failed")  # it refused, and ended
    from asr.rollback import revert_chosen_run

    assert revert_chosen_run(context) == {"REVERTED": 1}


def test_a_fix_task_sees_a_rollback_another_process_began_in_object_storage(aws) -> None:
    """s3fs keeps a folder's listing: the second ask, once the claims are held, must list
    the journal afresh, or a rollback's mark written meanwhile by another worker stays unseen."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hook = S3Hook(aws_conn_id="aws_default")
    hook.create_bucket("asr-audit")
    root = journal_root("s3://asr-audit/audit", "asr_sweep", RUN_ID, "aws_default")
    own = AuditJournal(root, Origin("asr_sweep", RUN_ID, "b", 1, "alice"))
    own.record({"event": INTENT, "kind": FIX})
    assert own.rolled_back_by() == []  # listed, and kept
    # The rollback's worker writes its mark: another process, so not through this one's s3fs.
    origin = Origin("asr_rollback", "rollback-9", "rollback", 1, "bob")
    when = "2030-01-01T00:00:00.000000Z"
    key = f"{root.path.partition('/')[2]}/{when}-asr_rollback.rollback-9.rollback-000001-begin-a.json"
    event = {"event": BEGIN, "kind": REVERT, "time": when, "seq": 1, **origin.to_dict()}
    hook.get_conn().put_object(Bucket="asr-audit", Key=key, Body=json.dumps(event).encode())
    assert own.rolled_back_by() == ["asr_rollback/rollback-9"]


def test_a_rolled_back_run_s_ssm_fix_cleared_starts_no_document_again(
    aws, ssm_registry: Any, rollback_env: None, tmp_path: Path
) -> None:
    seeded = seed_one(aws, "EC2.13", MEMBER_ACCOUNT, REGION)
    as_seeded = group_rules(aws, seeded)
    records = [parse_finding(finding(seeded), ssm_registry)]
    ssm = Clients(aws, MEMBER_ACCOUNT, REGION).ssm
    ssm.put_parameter(Name=f"/asr-local/automation/{DOCUMENT}", Value="Success:1", Type="String")
    store = RunStore.for_run(Settings.from_env().data_dir, "asr_sweep", RUN_ID)
    batch = {"batch_id": "EC2.13-0000", "playbook": "EC2.13", "count": 1}
    store.write_lines("batches/EC2.13-0000.jsonl", [r.to_dict() for r in records])
    operator, context = AutomationFixOperator(task_id="fix", batch=batch), _sweep_task("fix")

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    pending = [
        {"execution_id": e["execution_id"], **where(records)} for e in deferred.value.trigger.executions
    ]
    statuses: dict[str, Any] = {}
    while not statuses:
        statuses = {i: s for i, s in automation.poll(pending, aws).items() if s["status"] in automation.ENDED}
    assert operator.execute_complete(context, {"statuses": statuses}) == {"REMEDIATED": 1}
    assert group_rules(aws, seeded) != as_seeded

    assert _roll_back(_ended_run_context(tmp_path, run=f"asr_sweep/{RUN_ID}")) == {"REVERTED": 1}
    assert group_rules(aws, seeded) == as_seeded

    with pytest.raises(AirflowFailException, match=ROLLED_BACK):
        operator.execute(_sweep_task("fix", try_number=2))
    assert group_rules(aws, seeded) == as_seeded
    assert len(ssm.describe_automation_executions()["AutomationExecutionMetadataList"]) == 1


def test_an_ssm_fix_cleared_as_a_rollback_begins_starts_no_document(
    aws, ssm_registry: Any, rollback_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed_one(aws, "EC2.13", MEMBER_ACCOUNT, REGION)
    as_seeded = group_rules(aws, seeded)
    records = [parse_finding(finding(seeded), ssm_registry)]
    store = RunStore.for_run(Settings.from_env().data_dir, "asr_sweep", RUN_ID)
    batch = {"batch_id": "EC2.13-0000", "playbook": "EC2.13", "count": 1}
    store.write_lines("batches/EC2.13-0000.jsonl", [r.to_dict() for r in records])
    made = _on_first_claim(monkeypatch, _rollback_begins)

    with pytest.raises(AirflowFailException, match=ROLLED_BACK):
        AutomationFixOperator(task_id="fix", batch=batch).execute(_sweep_task("fix"))
    assert group_rules(aws, seeded) == as_seeded
    ssm = Clients(aws, MEMBER_ACCOUNT, REGION).ssm
    assert ssm.describe_automation_executions()["AutomationExecutionMetadataList"] == []
    [held] = made
    assert not [p for p in held.root.iterdir() if not p.name.startswith(".")], "the claim is let go"


@pytest.mark.parametrize("audit_dir", ["local", "s3://asr-audit/audit"])
def test_only_what_other_runs_wrote_is_read_to_know_a_run_was_rolled_back(
    aws, tmp_path: Path, audit_dir: str
) -> None:
    """Each fix task of every run asks: a run never rolled back pays a listing of its journal's
    files, not a read of each (in object storage, one object a change)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    S3Hook(aws_conn_id="aws_default").create_bucket("asr-audit")
    root = journal_root(
        str(tmp_path) if audit_dir == "local" else audit_dir, "asr_sweep", RUN_ID, "aws_default"
    )
    own = AuditJournal(root, Origin("asr_sweep", RUN_ID, "b", 1, "alice"))
    own.record({"event": INTENT, "kind": FIX})
    assert own.rolled_back_by() == [] and own.events(by_others=True) == []

    for run in ("rollback-1", "rollback-2", "rollback-1"):
        AuditJournal(root, Origin("asr_rollback", run, "rollback", 1, "bob")).record(
            {"event": INTENT, "kind": REVERT}
        )
    assert own.rolled_back_by() == ["asr_rollback/rollback-1", "asr_rollback/rollback-2"]
    assert {e["run_id"] for e in own.events(by_others=True)} == {"rollback-1", "rollback-2"}
