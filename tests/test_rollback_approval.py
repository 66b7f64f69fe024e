"""asr_rollback's approval: undoing a fix re-opens what it closed, so a person decides, and
only what the check before the request found is put back."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import Api, free_port, signed_in_users, world_open
from test_approvals import PARKED, dag, deadline, findings_now, seed
from test_rollback import RUN_ID, _ended_run_context, _fixed

from asr.approvals import SHOWN_RESOURCES, rollback_body, rollback_subject
from asr.aws import Clients
from asr.config import ConfigError, Settings
from asr.local import MEMBER_ACCOUNT
from asr.local.airflow import LocalAirflow
from asr.rollback import (
    CHECK,
    NOT_ASKED,
    RollbackError,
    check_chosen_run,
    decide,
    record_not_approved,
    revert_chosen_run,
)
from asr.store import RunStore

REGION = "us-east-1"


def test_a_rollback_asks_by_default_and_a_misspelt_setting_is_refused() -> None:
    assert Settings().rollback_approval and Settings.from_env({}).rollback_approval
    assert not Settings.from_env({"ASR_ROLLBACK_APPROVAL": "off"}).rollback_approval
    with pytest.raises(ConfigError, match="ASR_ROLLBACK_APPROVAL='of' is neither on"):
        Settings.from_env({"ASR_ROLLBACK_APPROVAL": "of"})


def test_the_approval_sits_between_the_check_and_the_revert(airflow_db: None) -> None:
    rollback = dag("asr_rollback")
    approval = rollback.get_task("approve")
    assert approval.upstream_task_ids == {"check_rollback"}
    assert approval.downstream_task_ids == {"revert_run"}
    assert approval.defaults == ["Reject"], "an unanswered request must not put anything back"


def _changes(
    n: int, status: str = "WOULD_REVERT", reason: str = "would put back {'on': False}"
) -> list[dict]:
    return [
        {
            "account_id": MEMBER_ACCOUNT,
            "region": REGION,
            "resource_id": f"sg-{i:017x}",
            "control_ids": ["EC2.13"],
            "status": status,
            "reason": reason,
        }
        for i in range(n)
    ]


def test_the_request_lists_what_would_be_put_back_and_counts_the_rest() -> None:
    back = _changes(SHOWN_RESOURCES + 5)
    left = _changes(2, "CHANGED_SINCE", "changed since") + _changes(1, "NOT_REVERSIBLE", "no")
    assert rollback_subject("asr_sweep/run|1", back) == (
        f"Approve rolling back asr_sweep/run/1: {len(back)} changes on {len(back)} resources"
    )
    text = rollback_body("asr_sweep/run-1", back + left, approvers=("secops",))
    assert f"{len(back)} changes in 1 accounts would be put back" in text
    rows = [line for line in text.splitlines() if line.startswith(f"| {MEMBER_ACCOUNT} |")]
    assert len(rows) == SHOWN_RESOURCES, "bounded: thousands of rows would make it unreadable"
    assert (
        rows[0]
        == f"| {MEMBER_ACCOUNT} | {REGION} | `sg-{0:017x}` | EC2.13 | would put back {{'on': False}} |"
    )
    assert "...and 5 more changes" in text
    assert (
        "Not put back, whatever the answer (the report says why): 2 CHANGED_SINCE, 1 NOT_REVERSIBLE." in text
    )
    assert text.endswith("Only these Airflow users may answer (ASR_APPROVERS): secops.")


def _encrypted(aws: Any) -> bool:
    return Clients(aws, MEMBER_ACCOUNT, REGION).ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"]


def test_only_what_the_check_found_to_put_back_is_put_back(aws, tmp_path: Path, rollback_env: None) -> None:
    """Approve applies to what the request listed: a change the check found changed since,
    which reads as the fix left it again by the time of the revert, is not put back unasked."""
    _fixed(aws, tmp_path, "EC2.7")  # EBS encryption by default turned on
    ec2 = Clients(aws, MEMBER_ACCOUNT, REGION).ec2
    context = _ended_run_context(tmp_path, run=f"asr_sweep/{RUN_ID}")
    store = RunStore.for_run(str(tmp_path / "runs"), "asr_rollback", "rollback-9")

    ec2.disable_ebs_encryption_by_default()  # its owner turns it off after the fix
    assert check_chosen_run(context) == {"CHANGED_SINCE": 1}
    decide(store, NOT_ASKED)  # nothing to put back: the approval step does not ask
    ec2.enable_ebs_encryption_by_default()  # and on again, before the revert
    assert revert_chosen_run(context) == {"CHANGED_SINCE": 1}
    assert _encrypted(aws)
    [change] = store.read_json("rollback.json")["changes"]
    assert change["reason"].endswith("changed since, left alone (when checked before the approval)")

    store.write_json(CHECK, {"run": f"asr_sweep/{RUN_ID}", "changes": []})  # listed nowhere
    decide(store, NOT_ASKED)
    assert revert_chosen_run(context) == {"NOT_APPROVED": 1}
    assert _encrypted(aws)

    assert check_chosen_run(context) == {"WOULD_REVERT": 1}
    decide(store, NOT_ASKED)
    assert revert_chosen_run(context) == {"REVERTED": 1}
    assert not _encrypted(aws)


ANSWERED = {"params_input": {}, "responded_at": datetime(2026, 12, 6, 9, 30, tzinfo=UTC)}
SECOPS = {"id": "secops", "name": "secops"}
EVENTS = {
    "approved": {**ANSWERED, "chosen_options": ["Approve"], "responded_by_user": SECOPS},
    "rejected": {**ANSWERED, "chosen_options": ["Reject"], "responded_by_user": SECOPS},
    "timed out": {**ANSWERED, "chosen_options": ["Reject"], "responded_by_user": None, "timedout": True},
    "error": {"error": "the trigger died", "error_type": "unknown"},
}


@pytest.fixture
def asked(aws, tmp_path: Path, rollback_env: None, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """EC2.7's fix undone by asr_rollback: its check made, and its approval step's request
    made (Airflow's wait left out); the step, its context and the run's store."""
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    from asr.approvals import RollbackApproval

    monkeypatch.setattr(ApprovalOperator, "execute", lambda self, context: "waiting")
    monkeypatch.setenv("ASR_ROLLBACK_APPROVAL", "on")
    _fixed(aws, tmp_path, "EC2.7")
    context = _ended_run_context(tmp_path, run=f"asr_sweep/{RUN_ID}")
    assert check_chosen_run(context) == {"WOULD_REVERT": 1}
    step = RollbackApproval(task_id="approve")
    assert step.execute(context) == "waiting"
    assert step.subject == f"Approve rolling back asr_sweep/{RUN_ID}: 1 changes on 1 resources"
    with pytest.raises(RollbackError, match=r"not approved \(asked\)"):  # no answer yet
        revert_chosen_run(context)
    return step, context, RunStore.for_run(str(tmp_path / "runs"), "asr_rollback", "rollback-9")


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("rejected", "rejected by secops at 2026-12-06 09:30 UTC"),
        (
            "timed out",
            "no one approved it before the approval request timed out at 2026-12-06 09:30 UTC "
            "(ASR_APPROVAL_TIMEOUT)",
        ),
        ("error", "no decision: the trigger died"),
    ],
)
def test_a_rollback_not_approved_puts_nothing_back_and_reports_why(aws, asked, answer: str, why: str) -> None:  # type: ignore[no-untyped-def]
    step, context, store = asked
    if answer == "error":  # Airflow fails the step: the revert does not run
        with pytest.raises(Exception, match="the trigger died"):
            step.execute_complete(context, EVENTS[answer])
    else:  # the ApprovalOperator skips the revert (a lone step has nothing to skip)
        step.execute_complete(context, EVENTS[answer])
    report = store.read_json("rollback.json")
    assert report["totals"] == {"NOT_APPROVED": 1} and report["dry_run"] is False
    assert report["run"] == f"asr_sweep/{RUN_ID}"
    assert report["changes"][0]["reason"] == f"not put back: {why}"
    assert "NOT_APPROVED" in store.path("rollback.md").read_text()
    with pytest.raises(RollbackError, match="not approved"):  # a revert cleared and run all the same
        revert_chosen_run(context)
    assert _encrypted(aws)


def test_an_approval_lets_the_revert_put_back_only_the_check_it_was_about(aws, asked) -> None:  # type: ignore[no-untyped-def]
    """Airflow lets a person clear the check alone after the approval: a check made again,
    finding other things, was shown to nobody, and the revert refuses it."""
    step, context, store = asked
    step.execute_complete(context, EVENTS["approved"])
    assert store.read_json("approvals/rollback-decision.json")["by"] == "secops"
    ec2 = Clients(aws, MEMBER_ACCOUNT, REGION).ec2
    ec2.disable_ebs_encryption_by_default()
    assert check_chosen_run(context) == {"CHANGED_SINCE": 1}
    with pytest.raises(RollbackError, match="the check was made again after the approval step decided"):
        revert_chosen_run(context)
    ec2.enable_ebs_encryption_by_default()
    assert check_chosen_run(context) == {"WOULD_REVERT": 1}  # what the request showed: the same check
    assert revert_chosen_run(context) == {"REVERTED": 1}
    assert not _encrypted(aws)
    # Its approval step cleared alone and rejected: the report of what was put back stays true.
    assert record_not_approved(store, "rejected by secops") == {"REVERTED": 1}
    assert store.read_json("rollback.json")["totals"] == {"REVERTED": 1}


def test_a_rollback_whose_check_could_not_read_a_change_asks_nothing(
    aws, tmp_path: Path, rollback_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Tried again before anyone is asked (a throttled read, a role not assumable for now);
    a dry run fails too."""
    from asr.actions.ec2 import EnableEbsEncryptionByDefault

    _fixed(aws, tmp_path, "EC2.7")

    def unreadable(*_: Any) -> dict[str, Any]:
        raise RuntimeError("the account's role cannot be assumed now")

    monkeypatch.setattr(EnableEbsEncryptionByDefault, "read", unreadable)
    for dry in (False, True):
        context = _ended_run_context(tmp_path, run=f"asr_sweep/{RUN_ID}", dry_run=dry)
        with pytest.raises(RuntimeError, match=r"1 change\(s\) could not be checked"):
            check_chosen_run(context)


def test_a_run_that_started_again_after_the_check_is_not_rolled_back(
    aws, tmp_path: Path, rollback_env: None
) -> None:  # type: ignore[no-untyped-def]
    """An approval may take a day: the revert asks again whether the run has ended."""
    _fixed(aws, tmp_path, "EC2.7")
    context = _ended_run_context(tmp_path, run=f"asr_sweep/{RUN_ID}")
    check_chosen_run(context)
    decide(RunStore.for_run(str(tmp_path / "runs"), "asr_rollback", "rollback-9"), NOT_ASKED)
    RunStore.for_run(str(tmp_path / "runs"), "asr_sweep", RUN_ID).remove("report.json")  # cleared, running
    with pytest.raises(RollbackError, match="has not finished"):
        revert_chosen_run(context)
    assert _encrypted(aws)


@pytest.mark.airflow
def test_dry_runs_and_rollbacks_with_nothing_to_put_back_do_not_wait(
    aws: Any, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    [seeded], _ = seed(aws, "EC2.13")
    sweep = dag("asr_sweep").test()  # every fix auto-approved (the tests' ASR_AUTO_APPROVE)
    assert sweep.state == "success" and not world_open(aws, seeded)

    monkeypatch.setenv("ASR_ROLLBACK_APPROVAL", "on")
    rollback = dag("asr_rollback")
    # dag.test() keeps a run's params for the next: each run names its dry run.
    conf = {"run": f"asr_sweep/{sweep.run_id}", "dry_run": False}
    with deadline():
        dry = rollback.test(run_conf=conf | {"dry_run": True})
    assert dry.state == "success" and not world_open(aws, seeded)
    report = RunStore.for_run(Settings.from_env().data_dir, "asr_rollback", dry.run_id).read_json(
        "rollback.json"
    )
    assert report["totals"] == {"WOULD_REVERT": 1} and report["dry_run"] is True

    monkeypatch.setenv("ASR_ROLLBACK_APPROVAL", "off")
    with deadline():
        assert rollback.test(run_conf=conf).state == "success"
    assert world_open(aws, seeded), "put back without asking"

    monkeypatch.setenv("ASR_ROLLBACK_APPROVAL", "on")
    with deadline():
        again = rollback.test(run_conf=conf)
    assert again.state == "success"
    totals = RunStore.for_run(Settings.from_env().data_dir, "asr_rollback", again.run_id).read_json(
        "rollback.json"
    )
    assert totals["totals"] == {"ALREADY_REVERTED": 1}


def _asked(api: Api, run_id: str) -> dict[str, Any]:
    """The rollback's request, once the scheduler has seen the approval step parked."""
    path = f"/dags/asr_rollback/dagRuns/{run_id}/taskInstances/approve"
    limit = time.monotonic() + 240
    while time.monotonic() < limit:
        if api.call("GET", path)["state"] == "awaiting_input":
            detail = api.call("GET", f"{path}/-1/hitlDetails")
            parked = datetime.now(UTC) - datetime.fromisoformat(detail["created_at"])
            time.sleep(max(0.0, PARKED - parked.total_seconds()))
            return detail
        time.sleep(1)
    raise TimeoutError(f"the rollback {run_id} asked nothing")


@pytest.mark.airflow
def test_a_person_rejects_then_approves_a_rollback(aws: Any, tmp_path: Path) -> None:
    """Through the scheduler: the rollback waits; an approver's Reject puts nothing back and
    the run succeeds; someone else's answer is refused; Approve puts the fix back. Fixes
    auto-approved (ASR_AUTO_APPROVE=*) do not make rollbacks so."""
    [seeded], [raw] = seed(aws, "EC2.13")
    home = tmp_path / "airflow"
    signed_in, passwords = signed_in_users(home, {"secops": "user", "intruder": "user"})
    environment = {
        **signed_in,
        "ASR_AUTO_APPROVE": "*",
        "ASR_ROLLBACK_APPROVAL": "on",
        "ASR_APPROVERS": "secops",
        "ASR_DATA_DIR": str(tmp_path / "runs"),
    }
    with LocalAirflow(home, free_port(), environment) as airflow:
        airflow.prepare("asr_sweep", "asr_rollback")
        airflow.start("api-server", "scheduler", "dag-processor")
        api = Api(airflow.api_url, "secops", passwords["secops"])
        intruder = Api(airflow.api_url, "intruder", passwords["intruder"])
        api.call("POST", "/dags/asr_sweep/dagRuns", {"dag_run_id": "sweep__1", "logical_date": None})
        assert api.wait("asr_sweep", "sweep__1") == "success", f"logs: {airflow.logs}"
        assert not world_open(aws, seeded)

        outcomes = {}
        for run_id, answer in (("rollback__1", "Reject"), ("rollback__2", "Approve")):
            conf = {"run": "asr_sweep/sweep__1"}
            api.call(
                "POST",
                "/dags/asr_rollback/dagRuns",
                {"dag_run_id": run_id, "logical_date": None, "conf": conf},
            )
            detail = _asked(api, run_id)
            assert detail["subject"].startswith(
                "Approve rolling back asr_sweep/sweep__1: 1 changes on 1 resources"
            )
            assert "| EC2.13 | would put back" in detail["body"]
            assert world_open(aws, seeded) is False, "nothing is put back while the request waits"
            path = f"/dags/asr_rollback/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails"
            api.answer(path, answer, refused_to=intruder)
            assert api.wait("asr_rollback", run_id) == "success", f"logs: {airflow.logs}"
            outcomes[answer] = (world_open(aws, seeded), findings_now(aws)[raw["Id"]]["Workflow"]["Status"])
            report = RunStore.for_run(str(tmp_path / "runs"), "asr_rollback", run_id).read_json(
                "rollback.json"
            )
            outcomes[answer] += (report["totals"], report["changes"][0]["reason"])

    assert outcomes["Reject"][:3] == (False, "RESOLVED", {"NOT_APPROVED": 1})
    assert outcomes["Reject"][3].startswith("not put back: rejected by secops at ")
    assert outcomes["Approve"][:3] == (True, "NOTIFIED", {"REVERTED": 1})
