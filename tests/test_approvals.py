"""Approvals for disruptive playbooks: the request a person sees, the settings, and runs
that are approved automatically, approved or rejected by a person, or left to time out."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import Api, free_port, signed_in_users, world_open

from asr import approvals
from asr.aws import Clients
from asr.config import ConfigError, Settings
from asr.findings import RoutingRecord
from asr.local import MEMBER_ACCOUNT
from asr.local.airflow import LocalAirflow
from asr.local.seed import Seeded, finding, import_findings, seed_one
from asr.playbooks import registry
from asr.remediate import Outcome, Result, Status
from asr.securityhub import actionable_plan
from asr.store import RunStore
from asr.sweep import ingest, load_outcomes, save_outcomes
from asr.writeback import WORKFLOW_FOR, note_for

DAGS = Path(__file__).resolve().parents[1] / "dags"
REGION = "us-east-1"
PARKED = 10  # seconds
OUTCOMES = "outcomes/EC2.13-0000.jsonl"


def records(n: int, playbook: str = "EC2.13", **changes: Any) -> list[dict[str, Any]]:
    return [
        {
            "finding_id": f"arn:aws:securityhub:{REGION}:{MEMBER_ACCOUNT}:finding/{i}",
            "product_arn": f"arn:aws:securityhub:{REGION}::product/aws/securityhub",
            "control_id": playbook,
            "standard": "security-control",
            "standard_control_id": playbook,
            "playbook": playbook,
            "account_id": MEMBER_ACCOUNT,
            "region": REGION,
            "resource_type": "AwsEc2SecurityGroup",
            "resource_arn": f"arn:aws:ec2:{REGION}:{MEMBER_ACCOUNT}:security-group/sg-{i:017x}",
            "resource_id": f"sg-{i:017x}",
            "parameters": {},
        }
        | changes
        for i in range(n)
    ]


# --- The request a person sees --------------------------------------------------------------


def test_body_shows_the_resources_and_what_the_fix_changes() -> None:
    rows = records(3) + records(1)  # two findings on the first resource
    text = approvals.body(registry().playbooks["EC2.13"], rows)
    assert "4 findings on 3 resources in 1 accounts" in text
    assert "removed ingress from 0.0.0.0/0 and ::/0 to ports [22, 3389]" in text
    assert '"ports": [22, 3389]' in text
    assert "**What it may break:** People and tools reaching SSH (22) or RDP (3389)" in text
    assert f"| {MEMBER_ACCOUNT} | {REGION} | `sg-00000000000000000` | 2 |" in text
    assert "more resources" not in text
    subject = approvals.subject(registry().playbooks["EC2.13"], rows)
    assert subject == "Approve the EC2.13 fix: 3 resources, 4 findings"


def test_body_stays_bounded_for_thousands_of_resources() -> None:
    text = approvals.body(registry().playbooks["EC2.13"], records(5000))
    assert "5000 findings on 5000 resources" in text
    assert f"...and {5000 - approvals.SHOWN_RESOURCES} more resources" in text
    assert text.count("| `sg-") == approvals.SHOWN_RESOURCES
    assert len(text) < 6000


def test_body_shows_each_parameter_set_a_finding_brings() -> None:
    rows = records(2) + records(3, parameters={"ports": [22]})
    text = approvals.body(registry().playbooks["EC2.13"], rows)
    assert "to ports [22, 3389] (parameters" in text and ", for 2 findings" in text
    assert "to ports [22] (parameters" in text and ", for 3 findings" in text


def test_body_text_from_findings_cannot_break_the_table() -> None:
    hostile = records(1, resource_id="sg-1|x`y\n| injected |")
    text = approvals.body(registry().playbooks["EC2.13"], hostile)
    [row] = [line for line in text.splitlines() if line.startswith(f"| {MEMBER_ACCOUNT}")]
    assert row == f"| {MEMBER_ACCOUNT} | {REGION} | `sg-1/x'y / injected /` | 1 |"
    # An escape sequence, a right-to-left override: shown to nobody as what they would do.
    hostile = records(1, resource_id="web\x1b[2Kapp\u202eelif")
    text = approvals.body(registry().playbooks["EC2.13"], hostile)
    [row] = [line for line in text.splitlines() if line.startswith(f"| {MEMBER_ACCOUNT}")]
    assert row == f"| {MEMBER_ACCOUNT} | {REGION} | `web [2Kapp elif` | 1 |"


def test_refusal_says_who_rejected_or_that_it_timed_out() -> None:
    at = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
    person = {"responded_by_user": {"id": "7", "name": "secops"}, "responded_at": at}
    assert approvals.refusal(person, timed_out=False) == "rejected by secops at 2026-05-04 09:30 UTC"
    nobody = {"responded_by_user": None, "responded_at": at}
    assert "timed out at 2026-05-04 09:30 UTC (ASR_APPROVAL_TIMEOUT)" in approvals.refusal(nobody, True)
    assert approvals.refusal(nobody, True, before_next_sweep=True) == (
        "no one approved it before the approval request expired at 2026-05-04 09:30 UTC, ahead of "
        "the next scheduled sweep (ASR_SWEEP_SCHEDULE), which asks again"
    )


def test_a_person_s_rejection_holds_for_the_rejection_hold_and_a_timeout_holds_nothing() -> None:
    at = datetime(2026, 5, 4, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    person = {"responded_by_user": {"id": "7", "name": "secops"}, "responded_at": at}
    week = timedelta(days=7)
    assert approvals.hold_until(person, False, week) == "2026-05-11T07:30:00+00:00"
    assert approvals.hold_until(person, True, week) == ""
    assert approvals.hold_until({**person, "responded_by_user": None}, False, week) == ""
    assert approvals.hold_until(person, False, timedelta(0)) == ""


def test_not_approved_findings_are_recorded_and_become_notified(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    batches = [{"batch_id": "EC2.13-a-0000"}, {"batch_id": "EC2.13-b-0001"}]
    store.write_lines("batches/EC2.13-a-0000.jsonl", records(3))
    store.write_lines("batches/EC2.13-b-0001.jsonl", records(2))
    assert approvals.record_not_approved(store, batches, "rejected by secops") == 5
    outcomes = load_outcomes(store)
    assert {(o.status, o.message) for o in outcomes} == {("NOT_APPROVED", "rejected by secops")}
    assert WORKFLOW_FOR[Status.NOT_APPROVED] == "NOTIFIED"
    assert note_for(Outcome(**outcomes[0].to_dict()), "r1") == (
        "ASR EC2.13: fix not approved, nothing changed: rejected by secops [run r1]"
    )


def test_a_decision_taken_again_replaces_the_earlier_one_but_never_what_a_fix_did(tmp_path: Path) -> None:
    """A person cleared the approval step and decided again."""
    store = RunStore(tmp_path)
    refused, fixed = {"batch_id": "EC2.13-a-0000"}, {"batch_id": "EC2.13-b-0001"}
    store.write_lines("batches/EC2.13-a-0000.jsonl", records(2))
    store.write_lines("batches/EC2.13-b-0001.jsonl", records(1))
    approvals.record_not_approved(store, [refused], "rejected by secops")
    done = Outcome.of(RoutingRecord.from_dict(records(1)[0]), Result(Status.REMEDIATED, "fixed"))
    save_outcomes(store, fixed, [done])

    approvals.forget_decision(store, [refused, fixed])  # asked again: the rejection no longer holds
    assert [o.status for o in load_outcomes(store)] == ["REMEDIATED"]
    assert approvals.record_not_approved(store, [refused, fixed], "rejected by bob") == 2
    assert sorted(o.status for o in load_outcomes(store)) == ["NOT_APPROVED", "NOT_APPROVED", "REMEDIATED"]


def test_a_rerun_of_failures_asks_again_where_nobody_decided_not_where_a_person_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request that timed out holds nothing, nobody decided: a rerun of the run's failures
    takes its findings up again. A person's Reject is left out, with ASR_REJECTION_HOLD=0 too
    (no hold either), and so is a NOT_APPROVED outcome written before ``undecided`` was."""
    from asr.selection import SelectionError, failed_in_run

    monkeypatch.setenv("ASR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ASR_REJECTION_HOLD", "0")
    at = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
    answer = {"chosen_options": ["Reject"], "params_input": {}, "responded_at": at}
    events = {
        "timed-out": answer | {"responded_by_user": None, "timedout": True},
        "rejected": answer | {"responded_by_user": {"id": "7", "name": "secops"}, "timedout": False},
    }
    batch = {"batch_id": "EC2.13-0000", "playbook": "EC2.13"}
    for run_id, event in events.items():
        store = RunStore.for_run(str(tmp_path), "asr_remediate", run_id)
        store.write_lines("batches/EC2.13-0000.jsonl", records(2))
        context = {
            "params": {},
            "run_id": run_id,
            "dag": SimpleNamespace(dag_id="asr_remediate"),
            "ti": SimpleNamespace(xcom_pull=lambda task_ids, key: [batch]),
        }
        step = approvals.ControlApproval(task_id="approve", playbook="EC2.13", plan_task_id="plan")
        step.execute_complete(context, event)
        store.write_json("report.json", {})
        assert {(o.status, o.held_until) for o in load_outcomes(store)} == {("NOT_APPROVED", "")}

    timed_out = RunStore.for_run(str(tmp_path), "asr_remediate", "timed-out")
    assert [o.undecided for o in load_outcomes(timed_out)] == [True, True]
    settings = Settings.from_env()
    assert failed_in_run(settings, "asr_remediate/timed-out") == sorted(r["finding_id"] for r in records(2))
    decided = (
        "run asr_remediate/rejected has no failed findings to rerun: 2 findings were not approved by a person"
    )
    with pytest.raises(
        SelectionError, match=f"^{decided}; pick them by id \\(finding_ids\\) to fix them now$"
    ):
        failed_in_run(settings, "asr_remediate/rejected")
    # Written by older code, a timed-out outcome has no ``undecided``: taken as decided, as then.
    older = [{k: v for k, v in row.items() if k != "undecided"} for row in timed_out.read_lines(OUTCOMES)]
    timed_out.write_lines(OUTCOMES, older)
    with pytest.raises(SelectionError, match="2 findings were not approved by a person"):
        failed_in_run(settings, "asr_remediate/timed-out")


# --- Settings --------------------------------------------------------------------------------


def test_auto_approve_names_playbooks_or_all() -> None:
    assert Settings().auto_approve == () and not Settings().auto_approves("EC2.13")
    named = Settings.from_env({"ASR_AUTO_APPROVE": "EC2.13, RDS.5"})
    assert named.auto_approve == ("EC2.13", "RDS.5")
    assert named.auto_approves("RDS.5") and not named.auto_approves("EC2.2")
    assert Settings.from_env({"ASR_AUTO_APPROVE": "*"}).auto_approves("IAM.8")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("EC2.13,ec2-13", "ASR_AUTO_APPROVE: 'ec2-13' is not a control id"),
        ("Foo.1", "ASR_AUTO_APPROVE: 'Foo.1' names no playbook"),
        ("EC2.14", "ASR_AUTO_APPROVE: 'EC2.14' names no playbook; it is fixed by the EC2.13 playbook"),
        ("**", "ASR_AUTO_APPROVE: '**' is not a control id"),
    ],
)
def test_a_wrong_auto_approve_is_refused_naming_it(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("*", r"\*")):
        Settings.from_env({"ASR_AUTO_APPROVE": value})


def test_approvers_are_user_ids_and_the_request_names_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow refuses an answer from anyone not assigned (the scheduler test below shows the
    403); the request says who may answer."""
    from test_notify import approval_step

    assert Settings.from_env({"ASR_APPROVERS": " secops, 7 ,"}).approvers == ("secops", "7")
    with pytest.raises(ConfigError, match="ASR_APPROVERS: 'sec ops' is not an Airflow user id"):
        Settings.from_env({"ASR_APPROVERS": "sec ops"})
    monkeypatch.setenv("ASR_APPROVERS", "secops,7")
    operator, context = approval_step(tmp_path, monkeypatch, "")
    operator.execute(context)
    assert operator.assigned_users == [{"id": "secops", "name": "secops"}, {"id": "7", "name": "7"}]
    assert operator.body.endswith("Only these Airflow users may answer (ASR_APPROVERS): secops, 7.")


def test_approval_timeout_is_hours() -> None:
    assert Settings().approval_timeout.total_seconds() == 24 * 3600
    assert Settings.from_env({"ASR_APPROVAL_TIMEOUT": "0.5"}).approval_timeout.total_seconds() == 1800
    for wrong in ("soon", "0", "-1", "nan", "inf", "87601"):
        with pytest.raises(ConfigError, match="ASR_APPROVAL_TIMEOUT"):
            Settings.from_env({"ASR_APPROVAL_TIMEOUT": wrong})


def test_rejection_hold_is_hours_and_zero_turns_it_off() -> None:
    assert Settings().rejection_hold == timedelta(days=7)
    assert Settings.from_env({"ASR_REJECTION_HOLD": "0"}).rejection_hold == timedelta(0)
    assert Settings.from_env({"ASR_REJECTION_HOLD": ""}).rejection_hold == timedelta(days=7)
    for wrong in ("a week", "-1", "nan", "inf", "1e8"):
        with pytest.raises(ConfigError, match="ASR_REJECTION_HOLD"):
            Settings.from_env({"ASR_REJECTION_HOLD": wrong})


class _Clock(type):
    """Real datetimes stay instances of the stand-in class: approvals checks
    ``isinstance(x, datetime)`` on the times Airflow hands it."""

    def __instancecheck__(cls, instance: object) -> bool:
        return isinstance(instance, datetime)


def frozen_at(now: datetime) -> type[datetime]:
    """``datetime`` with ``now()`` pinned to one instant."""

    class Frozen(datetime, metaclass=_Clock):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return now.astimezone(tz) if tz else now.replace(tzinfo=None)

    return Frozen


def test_a_sweep_waits_for_a_decision_only_until_the_next_sweep_is_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One unanswered request must not hold back every other control's fixes for a day:
    sweeps run one at a time. The clock is pinned (asr's, and the one the timetable reads
    when catchup is off), so each wait is exact whatever the time the test runs."""
    import pendulum
    from airflow.sdk import DAG
    from airflow.timetables import trigger

    def at(now: datetime) -> None:
        monkeypatch.setattr(approvals, "datetime", frozen_at(now))
        monkeypatch.setattr(trigger, "utcnow", lambda: pendulum.instance(now))

    def wait(timeout: timedelta, dag: Any, run_after: datetime) -> timedelta:
        run = SimpleNamespace(run_after=run_after)
        return approvals.wait_for_decision(timeout, {"dag": dag, "dag_run": run})

    day, start = timedelta(hours=24), pendulum.datetime(2026, 1, 1, tz="UTC")
    hourly = DAG("hourly", schedule="@hourly", start_date=start)
    daily = DAG("daily", schedule="@daily", start_date=start)
    assert approvals.NEXT_RUN_MARGIN == approvals.SHORTEST_WAIT == timedelta(minutes=5)

    two_pm = datetime(2026, 3, 10, 14, tzinfo=UTC)  # the hourly run's; the next is due at 15:00
    at(two_pm + timedelta(minutes=20))
    assert wait(day, hourly, two_pm) == timedelta(minutes=35)  # until 5 minutes before 15:00
    assert wait(timedelta(minutes=10), hourly, two_pm) == timedelta(minutes=10)  # the timeout is shorter
    assert wait(timedelta(minutes=1), hourly, two_pm) == timedelta(minutes=1)  # even than the shortest wait
    # A sweep started by hand at 14:20 would hold back the 15:00 one (one run at a time).
    assert wait(day, hourly, two_pm + timedelta(minutes=20)) == timedelta(minutes=35)
    unscheduled = DAG("by_hand", schedule=None, start_date=start)
    assert wait(day, unscheduled, two_pm) == day  # asr_remediate: nothing to hold back
    at(two_pm + timedelta(minutes=58))
    assert wait(day, hourly, two_pm) == approvals.SHORTEST_WAIT  # 15:00 is too near: the shortest wait

    midnight = datetime(2026, 3, 10, tzinfo=UTC)  # the daily run's; the next is due the next midnight
    at(midnight + timedelta(hours=14, minutes=20))
    assert wait(day, daily, midnight) == timedelta(hours=9, minutes=35)
    assert wait(timedelta(hours=2), daily, midnight) == timedelta(hours=2)
    at(midnight + timedelta(hours=23, minutes=57))
    assert wait(day, daily, midnight) == approvals.SHORTEST_WAIT


# --- The DAGs --------------------------------------------------------------------------------


def dag(dag_id: str):  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS)).dags[dag_id]


def test_only_disruptive_playbooks_wait_and_before_their_fix(airflow_db: None) -> None:
    sweep = dag("asr_sweep")
    for playbook in registry():
        group = f"remediate_{playbook.group_id}"
        if playbook.disruptive:
            approval = sweep.get_task(f"{group}.approve")
            # It hands the fix its batches: the group has no task of its own to pick them.
            assert approval.upstream_task_ids == {"plan"}
            assert approval.downstream_task_ids == {f"{group}.fix"}
            assert f"{group}.select_batches" not in sweep.task_ids
            assert approval.defaults == ["Reject"], "an unanswered request must not approve"
        else:
            assert f"{group}.approve" not in sweep.task_ids


def compliant(aws: Any, seeded: Seeded) -> bool:
    playbook = registry().for_control(seeded.control_id)
    action = playbook.build_action()
    resource_id = playbook.extract_resource_id(seeded.resource_id, seeded.account_id)
    return not action.plan(action.read(Clients(aws, seeded.account_id, REGION), resource_id))


def seed(aws: Any, *controls: str) -> tuple[list[Seeded], list[dict[str, Any]]]:
    seeded = [seed_one(aws, control, MEMBER_ACCOUNT, REGION) for control in controls]
    findings = [finding(s) for s in seeded]
    import_findings(aws.admin_client("securityhub", REGION), findings)
    return seeded, findings


def findings_now(aws: Any) -> dict[str, dict[str, Any]]:
    return {f["Id"]: f for f in aws.admin_client("securityhub", REGION).get_findings()["Findings"]}


def report_of(dag_id: str, run_id: str, data_dir: str | None = None) -> dict[str, Any]:
    return RunStore.for_run(data_dir or Settings.from_env().data_dir, dag_id, run_id).read_json("report.json")


@contextmanager
def deadline(seconds: int = 300) -> Iterator[None]:
    """Fail, not hang, when a run is still going after ``seconds``: one waiting for an
    approval nobody will give never ends. (``dag.test()`` must run in the main thread.)"""

    def expired(*_: Any) -> None:
        raise TimeoutError(f"still running after {seconds}s: waiting for an approval?")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.airflow
def test_auto_approved_controls_and_dry_runs_do_not_wait(
    aws: Any, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASR_AUTO_APPROVE", "")
    sweep = dag("asr_sweep")  # parsed with nothing auto-approved
    seeded, findings = seed(aws, "EC2.13")

    with deadline():
        dry = sweep.test(run_conf={"dry_run": True})
    assert dry.state == "success"
    assert report_of("asr_sweep", dry.run_id)["totals"] == {"DRY_RUN": 1}
    assert world_open(aws, seeded[0])

    # Decided when the run gets there, not when the DAG was parsed.
    monkeypatch.setenv("ASR_AUTO_APPROVE", "EC2.13")
    with deadline():
        run = sweep.test(run_conf={"dry_run": False})
    assert run.state == "success"
    assert not world_open(aws, seeded[0])
    assert report_of("asr_sweep", run.run_id)["totals"] == {"REMEDIATED": 1}
    assert findings_now(aws)[findings[0]["Id"]]["Workflow"]["Status"] == "RESOLVED"


def waiting_approvals(api: Api, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's approval requests nobody has answered yet, by task id."""
    found = api.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/hitlDetails?response_received=false")
    return {d["task_instance"]["task_id"]: d for d in found["hitl_details"]}


@pytest.mark.airflow
def test_a_person_approves_rejects_or_lets_the_request_time_out(aws: Any, tmp_path: Path) -> None:
    """One run, three disruptive controls and one that is not: EC2.2 approved by a person,
    EC2.13 rejected by a person, RDS.5 left unanswered until the timeout, EC2.7 never asks."""
    seeded, findings = seed(aws, "EC2.2", "EC2.13", "RDS.5", "EC2.7")
    approved, rejected, unanswered, plain = seeded

    home = tmp_path / "airflow"
    # Both may use the DAG; only secops may answer its approvals (ASR_APPROVERS).
    signed_in, passwords = signed_in_users(home, {"secops": "user", "intruder": "user"})
    password = passwords["secops"]
    environment = {
        **signed_in,
        "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "3",
        "ASR_AUTO_APPROVE": "",
        "ASR_APPROVERS": "secops",
        "ASR_APPROVAL_TIMEOUT": str(75 / 3600),  # 75 seconds
        "ASR_DATA_DIR": str(tmp_path / "runs"),
    }
    run_id = "approvals__1"
    with LocalAirflow(home, free_port(), environment) as airflow:
        airflow.prepare("asr_sweep")
        airflow.start("api-server", "scheduler", "dag-processor")
        api = Api(airflow.api_url, "secops", password)
        intruder = Api(airflow.api_url, "intruder", passwords["intruder"])
        api.call("POST", "/dags/asr_sweep/dagRuns", {"dag_run_id": run_id, "logical_date": None})

        answers = {"remediate_EC2_2.approve": "Approve", "remediate_EC2_13.approve": "Reject"}
        asked: set[str] = set()
        deadline = time.monotonic() + 300
        while (answers or len(asked) < 3) and time.monotonic() < deadline:
            for task_id, detail in waiting_approvals(api, "asr_sweep", run_id).items():
                asked.add(task_id)
                assert detail["options"] == ["Approve", "Reject"]
                assert detail["defaults"] == ["Reject"]
                assert "1 findings on 1 resources" in detail["body"]
                assert detail["assigned_users"] == [{"id": "secops", "name": "secops"}]
                # Answer after a few seconds, as a person would: Airflow 3.3.2 fails a task
                # resumed before the scheduler has seen the executor finish parking it.
                waited = datetime.now(UTC) - datetime.fromisoformat(detail["created_at"])
                if task_id in answers and waited.total_seconds() > PARKED:
                    path = f"/dags/asr_sweep/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"
                    api.answer(path, answers.pop(task_id), refused_to=intruder)
            time.sleep(1)
        assert asked == {"remediate_EC2_2.approve", "remediate_EC2_13.approve", "remediate_RDS_5.approve"}, (
            f"approval requests: {sorted(asked)} (logs: {airflow.logs})"
        )

        run = airflow.wait("asr_sweep", run_id, timeout=420)
        assert run["state"] == "success", f"see {airflow.logs} and the task logs under {home}"

    assert compliant(aws, approved) and compliant(aws, plain)
    assert world_open(aws, rejected) and not compliant(aws, rejected)
    assert not compliant(aws, unanswered)

    now = findings_now(aws)
    status = [now[f["Id"]]["Workflow"]["Status"] for f in findings]
    assert status == ["RESOLVED", "NOTIFIED", "NOTIFIED", "RESOLVED"]
    rejected_note = now[findings[1]["Id"]]["Note"]["Text"]
    assert rejected_note.startswith("ASR EC2.13: fix not approved, nothing changed: rejected by secops at ")
    timed_out_note = now[findings[2]["Id"]]["Note"]["Text"]
    assert "no one approved it before the approval request timed out" in timed_out_note

    # The person's rejection holds for ASR_REJECTION_HOLD (a week); the timeout holds nothing.
    held = now[findings[1]["Id"]]["UserDefinedFields"]["asr:rejected-until"]
    assert timedelta(days=6, hours=23) < datetime.fromisoformat(held) - datetime.now(UTC) <= timedelta(days=7)
    assert "; sweeps leave these findings alone until " in rejected_note
    assert not now[findings[2]["Id"]].get("UserDefinedFields")
    after = RunStore(tmp_path / "next-sweep")
    ingest(Settings.from_env(), aws, registry(), after, actionable_plan())
    assert [o["finding_id"] for o in after.read_lines("outcomes/not-acted.jsonl")] == [findings[1]["Id"]]
    assert [r["finding_id"] for r in after.read_lines("records.jsonl")] == [findings[2]["Id"]]

    report = report_of("asr_sweep", run_id, str(tmp_path / "runs"))
    assert report["totals"] == {"REMEDIATED": 2, "NOT_APPROVED": 2}
    assert report["findings_updated"] == 4


def _asked(api: Api, run_id: str, task_id: str, try_number: int) -> dict[str, Any]:
    """The request of that try, once the scheduler has seen the task parked."""
    path = f"/dags/asr_sweep/dagRuns/{run_id}/taskInstances/{task_id}"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        ti = api.call("GET", path)
        if ti["try_number"] >= try_number and ti["state"] == "awaiting_input":
            time.sleep(PARKED)
            return api.call("GET", f"{path}/-1/hitlDetails")
        time.sleep(1)
    raise TimeoutError(f"{task_id} of {run_id} asked nothing on try {try_number}")


@pytest.mark.airflow
def test_a_run_cleared_after_its_findings_changed_does_not_fix_what_its_request_never_showed(
    aws: Any, tmp_path: Path
) -> None:
    """Airflow 3.3 shows a cleared step the first try's request: Approve would fix this
    try's batches, which that request never listed. The step fails instead."""
    task_id = "remediate_EC2_13.approve"
    (first,), _ = seed(aws, "EC2.13")
    home = tmp_path / "airflow"
    signed_in, passwords = signed_in_users(home, {"secops": "admin"})
    environment = {**signed_in, "ASR_AUTO_APPROVE": "", "ASR_DATA_DIR": str(tmp_path / "runs")}
    with LocalAirflow(home, free_port(), environment) as airflow:
        airflow.prepare("asr_sweep")
        airflow.start("api-server", "scheduler", "dag-processor")
        api = Api(airflow.api_url, "secops", passwords["secops"])
        api.call("POST", "/dags/asr_sweep/dagRuns", {"dag_run_id": "cleared__1", "logical_date": None})
        request = f"/dags/asr_sweep/dagRuns/cleared__1/taskInstances/{task_id}/-1/hitlDetails"
        assert "1 resources" in _asked(api, "cleared__1", task_id, 1)["subject"]
        api.call("PATCH", request, {"chosen_options": ["Reject"]})
        assert api.wait("asr_sweep", "cleared__1") == "success"

        later = [seed_one(aws, "EC2.13", MEMBER_ACCOUNT, REGION, n) for n in (1, 2)]
        import_findings(aws.admin_client("securityhub", REGION), [finding(s) for s in later])
        api.call("POST", "/dags/asr_sweep/dagRuns/cleared__1/clear", {"dry_run": False})
        time.sleep(5)
        assert api.wait("asr_sweep", "cleared__1") == "failed", f"logs: {airflow.logs}"
        ti = api.call("GET", f"/dags/asr_sweep/dagRuns/cleared__1/taskInstances/{task_id}")
        assert ti["state"] == "failed"
    assert world_open(aws, first) and all(world_open(aws, s) for s in later)


def test_a_request_asked_again_must_be_the_one_airflow_shows(tmp_path: Path) -> None:
    """Airflow keeps the first try's request, and its assignees, when a step is cleared: a try
    whose resources or approvers differ is stopped, saying which."""
    from airflow.sdk.exceptions import AirflowFailException

    from asr.approvals import same_request
    from asr.store import RunStore

    store = RunStore(tmp_path)
    rows = records(2)
    same_request(store, "approve", "Approve", "body", rows)
    same_request(store, "approve", "Approve", "body", rows)  # the same: fine
    with pytest.raises(AirflowFailException, match="with approvers \\(ASR_APPROVERS\\) or words other"):
        same_request(store, "approve", "Approve", "body\n\nOnly these Airflow users may answer", rows)
    with pytest.raises(AirflowFailException, match="for resources other than this try's batches"):
        same_request(store, "approve", "Approve", "body", records(3))
