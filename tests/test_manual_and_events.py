"""The ways a person starts a remediation: the asr_remediate form, and Security Hub events."""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import routing_record, world_open

from asr import claims, local
from asr.aws import Clients
from asr.claims import Claims, claim_name
from asr.config import ConfigError, Settings
from asr.events import (
    CUSTOM_ACTION,
    IMPORTED,
    LEFT_OUT_CLAIM_TTL,
    brief,
    findings_asked,
    queue_polling,
    queue_region,
    run_events,
    take,
    window_end,
)
from asr.findings import parse_finding
from asr.local import ADMIN_ACCOUNT, MEMBER_ACCOUNT
from asr.local.events import custom_action_event, imported_event
from asr.local.request_log_ext import is_write
from asr.local.seed import Seeded, finding, import_findings, seed_one
from asr.playbooks import registry
from asr.securityhub import HELD_FIELD
from asr.store import RunStore

DAGS = Path(__file__).resolve().parents[1] / "dags"
REGION = "us-east-1"
DB_ARN = f"arn:aws:rds:{REGION}:{MEMBER_ACCOUNT}:db"


def dag(dag_id: str):  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS)).dags[dag_id]


def report_of(run) -> dict:  # type: ignore[no-untyped-def]
    return RunStore.for_run(Settings.from_env().data_dir, run.dag_id, run.run_id).read_json("report.json")


def open_groups(aws, n: int) -> tuple[list[Seeded], list[dict]]:  # type: ignore[no-untyped-def]
    seeded = [seed_one(aws, "EC2.13", MEMBER_ACCOUNT, REGION, i) for i in range(n)]
    findings = [finding(s) for s in seeded]
    import_findings(aws.admin_client("securityhub", REGION), findings)
    return seeded, findings


def workflow(aws) -> dict[str, str]:  # type: ignore[no-untyped-def]
    found = aws.admin_client("securityhub", REGION).get_findings()["Findings"]
    return {f["Id"]: f["Workflow"]["Status"] for f in found}


@pytest.mark.airflow
def test_one_finding_id_fixes_exactly_that_resource(aws, airflow_db: None) -> None:
    seeded, findings = open_groups(aws, 3)
    run = dag("asr_remediate").test(run_conf={"finding_ids": [findings[1]["Id"]]})
    assert run.state == "success"
    assert [world_open(aws, s) for s in seeded] == [True, False, True]
    assert [workflow(aws)[f["Id"]] for f in findings] == ["NEW", "RESOLVED", "NEW"]


@pytest.mark.airflow
def test_with_its_data_in_s3_a_run_claims_resources_there(aws, airflow_db: None, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    s3 = S3Hook(aws_conn_id="aws_default")
    s3.create_bucket("asr-runs")
    monkeypatch.setenv("ASR_DATA_DIR", "s3://asr-runs/asr")
    seeded, findings = open_groups(aws, 2)
    action = registry().playbooks["EC2.13"].build_action().name
    held = claim_name(MEMBER_ACCOUNT, REGION, parse_finding(findings[0], registry()).resource_id, action)
    other = claims.for_run("s3://asr-runs/asr/audit", "asr_sweep", "other", "aws_default")
    assert other is not None and other.acquire(held, {}) is None
    holders: list[str] = []
    real_acquire = claims.Claims.acquire

    def acquire(self: claims.Claims, name: str, about: dict[str, Any]) -> str | None:
        holders.append(self.owner)
        return real_acquire(self, name, about)

    monkeypatch.setattr(claims.Claims, "acquire", acquire)
    run = dag("asr_remediate").test(run_conf={"finding_ids": [f["Id"] for f in findings]})
    assert run.state == "success"
    # The holder is the fix task: another playbook's task of the run claims in turn.
    assert set(holders) == {f"asr_remediate/{run.run_id}/remediate_EC2_13.fix"}, holders
    assert [world_open(aws, s) for s in seeded] == [True, False], "the held resource is left to its run"
    assert [workflow(aws)[f["Id"]] for f in findings] == ["NEW", "RESOLVED"]
    assert s3.list_keys("asr-runs", prefix="asr/audit/claims/") == [f"asr/audit/claims/{held}"]
    report = RunStore.for_run("s3://asr-runs/asr", run.dag_id, run.run_id, "aws_default").read_json(
        "report.json"
    )
    assert report["totals"]["IGNORED"] == 1


@pytest.mark.airflow
def test_selection_by_resource_and_dry_run(aws, airflow_db: None) -> None:
    seeded, findings = open_groups(aws, 2)
    conf = {"controls": ["EC2.13"], "accounts": [MEMBER_ACCOUNT], "resources": [seeded[0].resource_id]}
    local.served_requests(clear=True)
    dry = dag("asr_remediate").test(run_conf={**conf, "dry_run": True})
    assert dry.state == "success"
    assert [c for c in local.served_requests() if is_write(c)] == []
    assert report_of(dry)["totals"] == {"DRY_RUN": 1}  # the ARN asks for that resource's findings only

    run = dag("asr_remediate").test(run_conf=conf)
    assert [world_open(aws, s) for s in seeded] == [False, True]
    assert report_of(run)["totals"] == {"REMEDIATED": 1}
    assert [workflow(aws)[f["Id"]] for f in findings] == ["RESOLVED", "NEW"]


@pytest.mark.airflow
def test_a_named_finding_asr_may_not_act_on_is_reported_with_the_reason(aws, airflow_db: None) -> None:
    _, findings = open_groups(aws, 1)
    aws.admin_client("securityhub", REGION).batch_update_findings(
        FindingIdentifiers=[{"Id": findings[0]["Id"], "ProductArn": findings[0]["ProductArn"]}],
        Workflow={"Status": "SUPPRESSED"},
    )
    typo = findings[0]["Id"][:-1]

    run = dag("asr_remediate").test(run_conf={"finding_ids": [findings[0]["Id"], typo]})

    assert run.state == "success"
    report = report_of(run)
    rejected = report["rejected"]
    assert sorted(r["finding_id"] for r in rejected) == sorted([findings[0]["Id"], typo])
    assert (report["totals"], report["picks_not_found"]) == ({}, 2)  # neither is a finding of the run
    assert all(r["error"].startswith("not found as a finding asr may act on") for r in rejected)
    assert workflow(aws) == {findings[0]["Id"]: "SUPPRESSED"}


def unfixable_finding() -> dict:
    account = f"AWS::::Account:{MEMBER_ACCOUNT}"
    return finding(Seeded("EC2.9", MEMBER_ACCOUNT, REGION, "AwsAccount", account))


@pytest.mark.airflow
@pytest.mark.parametrize("named_by", ["arn", "id"])
def test_a_pick_by_resource_leaves_every_other_finding_alone(aws, airflow_db: None, named_by: str) -> None:
    """A resource named by its ARN is asked for by it: the run reads its findings only, not
    every finding in scope (a 10,000-finding estate reported 9,999 IGNORED). Named by its bare
    id, every failed finding in scope is read: one no playbook fixes is counted as such, never
    marked NOTIFIED in Security Hub."""
    seeded, findings = open_groups(aws, 2)
    unfixable = unfixable_finding()
    import_findings(aws.admin_client("securityhub", REGION), [unfixable])
    arn = seeded[0].resource_id

    run = dag("asr_remediate").test(
        run_conf={"resources": [arn if named_by == "arn" else arn.rsplit("/", 1)[1]]}
    )

    assert run.state == "success"
    assert [world_open(aws, s) for s in seeded] == [False, True]
    assert workflow(aws) == {findings[0]["Id"]: "RESOLVED", findings[1]["Id"]: "NEW", unfixable["Id"]: "NEW"}
    others = {} if named_by == "arn" else {"IGNORED": 1}  # the unfixable one: counted as unsupported
    assert report_of(run)["totals"] == {"REMEDIATED": 1, **others}


@pytest.mark.airflow
@pytest.mark.parametrize("others", [False, True])
def test_a_chosen_resource_no_finding_names_is_reported(aws, airflow_db: None, others: bool) -> None:
    """A mistyped resource gave a successful run that said "nothing to do"; it is reported, as a
    finding id not found is. Alone (an ARN: only its findings are asked for), or beside a
    resource that is fixed and a bare id (every finding in scope is read)."""
    from asr.sweep import NO_SUCH_RESOURCE, PICK

    seeded, _ = open_groups(aws, 1)
    arn = seeded[0].resource_id
    typos = [f"{arn}x", *(["sg-0000000000000000x"] if others else [])]

    run = dag("asr_remediate").test(run_conf={"resources": [*typos, *([arn] if others else [])]})

    assert run.state == "success"
    report = report_of(run)
    expected = [
        {
            "finding_id": "",
            "resource": r,
            "error": f"resource {r}: {NO_SUCH_RESOURCE}",
            PICK: True,
            "named": f"resource {r}",
        }
        for r in typos
    ]
    assert sorted(report["rejected"], key=lambda r: r["resource"]) == sorted(
        expected, key=lambda r: r["resource"]
    )
    # Not findings: counted apart from them, and said in the headline ("nothing to do" it is not).
    assert (report["totals"], report["picks_not_found"]) == ({"REMEDIATED": 1} if others else {}, len(typos))
    assert [world_open(aws, s) for s in seeded] == [not others]


@pytest.mark.airflow
def test_rerun_of_failures_and_a_picked_finding_no_playbook_fixes(aws, airflow_db: None) -> None:
    """A rerun redoes the failures, but not one a person rejected since: that holds."""
    missing, held = (
        finding(Seeded("RDS.5", MEMBER_ACCOUNT, REGION, "AwsRdsDbInstance", f"{DB_ARN}:{name}"))
        for name in ("not-yet-there", "rejected-since")
    )
    unfixable = unfixable_finding()
    securityhub = aws.admin_client("securityhub", REGION)
    import_findings(securityhub, [missing, held, unfixable])

    first = dag("asr_remediate").test(run_conf={"finding_ids": [missing["Id"], held["Id"], unfixable["Id"]]})
    assert report_of(first)["totals"] == {"FAILED": 2, "REJECTED": 1}
    assert set(workflow(aws).values()) == {"NOTIFIED"}

    for name in ("not-yet-there", "rejected-since"):
        Clients(aws, MEMBER_ACCOUNT, REGION).rds.create_db_instance(
            DBInstanceIdentifier=name,
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            MasterUsername="u",
            MasterUserPassword="password-1",
            AllocatedStorage=20,
            MultiAZ=False,
        )
    until = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)).isoformat()
    securityhub.batch_update_findings(
        FindingIdentifiers=[{"Id": held["Id"], "ProductArn": held["ProductArn"]}],
        UserDefinedFields={HELD_FIELD: until},
    )
    rerun = dag("asr_remediate").test(run_conf={"rerun_failures_of": f"asr_remediate/{first.run_id}"})
    assert rerun.state == "success"
    assert report_of(rerun)["totals"] == {"REMEDIATED": 1, "IGNORED": 1}
    assert workflow(aws)[missing["Id"]] == "RESOLVED"
    assert workflow(aws)[held["Id"]] == "NOTIFIED"


@pytest.mark.airflow
def test_a_form_that_picks_nothing_fails_with_the_reason(aws, airflow_db: None) -> None:
    run = dag("asr_remediate").test(run_conf={})
    assert run.state == "failed"
    [ingest] = [ti for ti in run.get_task_instances() if ti.task_id == "ingest_selected"]
    assert ingest.state == "failed" and ingest.try_number == 1, "a form asking wrongly is not retried"


@pytest.mark.parametrize(
    ("dag_id", "task_id"),
    [("asr_sweep", "ingest"), ("asr_remediate", "ingest_selected"), ("asr_events", "ingest_events")],
)
def test_ingest_is_retried_like_the_fixes(dag_id: str, task_id: str) -> None:
    """An events run's messages are deleted from the queue: one failed read must not lose them."""
    from asr.tasks import RETRIES

    assert dag(dag_id).get_task(task_id).retries == RETRIES > 0


def test_the_form_offers_only_accounts_and_regions_asr_may_act_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run naming an account or region outside the allow-lists is refused when triggered,
    not failed in every task; the UI shows the allowed values as a pick list."""
    from airflow.sdk.definitions.param import ParamValidationError

    from asr import pipeline

    monkeypatch.setenv("ASR_ACCOUNTS", "111111111111,222222222222,333333333333")
    monkeypatch.setenv("ASR_EXCLUDE_ACCOUNTS", "333333333333")
    monkeypatch.setenv("ASR_REGIONS", "us-east-1,eu-west-1")
    params = pipeline.common_params()
    assert params["accounts"].schema["examples"] == ["111111111111", "222222222222"]
    assert params["regions"].schema["examples"] == ["us-east-1", "eu-west-1"]
    assert params["regions"].resolve(["eu-west-1"]) == ["eu-west-1"]
    with pytest.raises(ParamValidationError, match="us-west-2"):
        params["regions"].resolve(["us-west-2"])
    with pytest.raises(ParamValidationError, match="333333333333"):
        params["accounts"].resolve(["333333333333"])
    assert params["accounts"].resolve(None) is None  # empty: all of ASR_ACCOUNTS

    # The organization's members count too, or no allow-list: any well-formed value, typed in.
    monkeypatch.setenv("ASR_ACCOUNTS_FROM_ORGANIZATION", "true")
    monkeypatch.delenv("ASR_REGIONS")
    params = pipeline.common_params()
    assert "examples" not in params["accounts"].schema and "examples" not in params["regions"].schema
    assert params["accounts"].resolve(["444444444444"]) == ["444444444444"]
    for account in ("4444", "444444444444\n"):
        with pytest.raises(ParamValidationError):
            params["accounts"].resolve([account])
    with pytest.raises(ParamValidationError):  # Airflow's check is re.search: "$" allows "\n"
        params["regions"].resolve(["eu-west-1\n"])


def asset_events(*messages: dict, prefix: str = "") -> list[SimpleNamespace]:
    """One trigger event of these message bodies, their MessageIds ``prefix`` and a number."""
    batch = [{"MessageId": f"{prefix}{n}", "Body": json.dumps(m)} for n, m in enumerate(messages)]
    event = SimpleNamespace(
        extra={"from_trigger": True, "payload": {"status": "success", "message_batch": batch}}
    )
    return [event]


START = datetime.datetime(2026, 3, 1, 12, tzinfo=datetime.UTC)


def trigger_event(
    minutes: int, message: str, finding: str = "f", runs: Sequence[str] = ()
) -> SimpleNamespace:
    """An asset event as the events queue's trigger makes it, ``minutes`` after START: one
    click on ``finding``, in the asr_events runs ``runs``."""
    batch = [{"MessageId": message, "Body": json.dumps(security_hub_event(CUSTOM_ACTION, finding))}]
    return SimpleNamespace(
        timestamp=START + datetime.timedelta(minutes=minutes),
        extra={"from_trigger": True, "payload": {"status": "success", "message_batch": batch}},
        created_dagruns=[SimpleNamespace(dag_id="asr_events", run_id=run) for run in runs],
        source_dag_id=None,
    )


class Accessor:
    """``inlet_events[asset].after(a).before(b)``: the asset's events from a to b as Airflow
    has them when asked, or its ``failure``. It keeps the windows it was asked for."""

    def __init__(self, *events: SimpleNamespace, failure: Exception | None = None) -> None:
        self.events, self.failure = events, failure
        self.asked: list[tuple[datetime.datetime, datetime.datetime]] = []

    def after(self, moment: datetime.datetime) -> Accessor:
        self.since = moment
        return self

    def before(self, moment: datetime.datetime) -> list[SimpleNamespace]:
        self.asked.append((self.since, moment))
        if self.failure is not None:
            raise self.failure
        return [event for event in self.events if self.since <= event.timestamp <= moment]


def events_of(given: list[SimpleNamespace], accessor: Accessor, store: RunStore) -> tuple[list, list]:
    """``run_events`` of an asr_events run Airflow gave ``given`` and that started at START + 5 min."""
    started = START + datetime.timedelta(minutes=5)
    return run_events({"asset": given}, {"asset": accessor}, ["asset"], store, started, "asr_events")


def test_a_run_takes_the_events_no_run_took_up_to_its_first_start(tmp_path: Path) -> None:
    """The race itself runs through Airflow in test_events_e2e; here, which events count."""
    mine, left_out, another_s = (
        trigger_event(0, "m1", runs=["this"]),
        trigger_event(1, "m2"),
        trigger_event(2, "m3", runs=["next"]),
    )
    accessor = Accessor(mine, left_out, another_s)
    store = RunStore(tmp_path)
    assert events_of([mine], accessor, store) == ([mine], [left_out])
    until = START + datetime.timedelta(minutes=5)
    assert accessor.asked == [(START, until)]
    # Cleared two days later, the run's start moves; its window does not.
    assert window_end(store, START + datetime.timedelta(days=2)) == until
    assert run_events({}, {"asset": accessor}, ["asset"], store, None, "asr_events") == ([], [])  # by hand


def test_an_event_a_run_took_as_left_out_is_not_taken_again_by_the_next_run(tmp_path: Path) -> None:
    """Airflow gives the next run every event since the previous run's first: the one the
    previous run took as left out too. It would route those findings again, and ask a person
    again to approve a fix the first run still waits on."""
    first, second, third = trigger_event(0, "m1"), trigger_event(1, "m2"), trigger_event(2, "m3")
    runs = [Claims(tmp_path, f"asr_events/run{n}", LEFT_OUT_CLAIM_TTL) for n in (1, 2)]
    assert take([first], [second], runs[0]) == [first, second]
    assert take([first], [second], runs[0]) == [first, second], "a retry of the run takes them again"
    assert take([trigger_event(1, "m2"), third], [], runs[1]) == [third]  # as Airflow hands it over
    assert take([first], [second], None) == [first, second]  # no shared claims: both read again


def test_a_retry_takes_the_left_out_events_its_first_try_claimed(tmp_path: Path) -> None:
    """R1's first try of ingest claims e2, left out of every run, and fails later (AWS
    throttled, say). Before its retry a click e3 makes R2, and Airflow gives R2 e2 too: R2
    leaves it to R1, whose claim it is. R1's retry must take it, though a run has it now."""
    e1, e2 = trigger_event(0, "m1", "f1", ["R1"]), trigger_event(1, "m2", "f2")
    r1, r2 = (Claims(tmp_path / "claims", f"asr_events/{run}", LEFT_OUT_CLAIM_TTL) for run in ("R1", "R2"))
    store = RunStore(tmp_path / "R1")

    def r1_asks(*asset_events: SimpleNamespace) -> list[str]:
        return findings_asked(take(*events_of([e1], Accessor(*asset_events), store), r1)).finding_ids

    assert r1_asks(e1, e2) == ["f1", "f2"]
    e3 = trigger_event(10, "m3", "f3", ["R2"])
    e2.created_dagruns = e3.created_dagruns
    assert findings_asked(take([e2, e3], [], r2)).finding_ids == ["f3"]
    assert r1_asks(e1, e2, e3) == ["f1", "f2"]


def test_a_window_airflow_cannot_list_leaves_its_left_out_events_to_the_next_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Airflow 3.3.2's API server cannot list events while one of them belongs to a queued
    run (apache/airflow#71360), and answers 500: the run goes on with its own events, and
    Airflow gives the next run the others. No answer at all fails the try, to be tried again."""
    from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
    from airflow.sdk.execution_time.comms import ErrorResponse

    def failing(detail: dict[str, Any]) -> Accessor:
        return Accessor(
            failure=AirflowRuntimeError(ErrorResponse(error=ErrorType.API_SERVER_ERROR, detail=detail))
        )

    mine, left_out = trigger_event(0, "m1", runs=["R1"]), trigger_event(1, "m2")
    store = RunStore(tmp_path)
    unlisted = {"status_code": 500, "message": "Server error", "detail": {"message": "Internal server error"}}
    assert events_of([mine], failing(unlisted), store) == ([mine], [])
    assert "left to the next run" in caplog.text
    assert events_of([mine], Accessor(mine, left_out), store) == ([mine], [left_out]), "a retry asks again"

    down = {"status_code": None, "message": "Connection refused", "exception_type": "ConnectError"}
    with pytest.raises(AirflowRuntimeError, match="Connection refused"):
        events_of([mine], failing(down), RunStore(tmp_path / "another"))


def test_only_events_the_queue_s_trigger_made_ask_for_fixes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Whoever may post asset events (POST /api/v2/assets/events) and any task with the asset
    as an outlet make events with any extra: taken as clicks, they would have any finding fixed
    by any playbook, past the queue's policy. Airflow adds from_rest_api to the first and names
    the second's task; a trigger's event has from_trigger and no task."""
    click = trigger_event(0, "m1", "f1", ["R1"])
    posted, left_posted = trigger_event(1, "m2", "f2", ["R1"]), trigger_event(2, "m3", "f3")
    for event in (posted, left_posted):
        event.extra["from_rest_api"] = True
    by_task = trigger_event(3, "m4", "f4", ["R1"])
    by_task.source_dag_id, by_task.source_task_id, by_task.source_run_id = "publish", "emit", "manual__1"
    unmarked = trigger_event(4, "m5", "f5", ["R1"])
    del unmarked.extra["from_trigger"]

    given = [click, posted, by_task, unmarked]
    assert events_of(given, Accessor(*given, left_posted), RunStore(tmp_path)) == ([click], [])
    assert findings_asked([*given, left_posted]).finding_ids == ["f1"]
    for why in (
        "posted through Airflow's REST API",
        "made by task emit of publish",
        "not made by the events",
    ):
        assert why in caplog.text


@pytest.mark.parametrize(
    "payload", ["junk", None, {"message_batch": ["junk"]}, {"message_batch": {"MessageId": "x"}}]
)
def test_an_event_with_no_list_of_messages_is_skipped_not_the_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, payload: Any
) -> None:
    """One such event would fail every try of ingest, and the run's other events with it."""
    good, bad, left_bad = (
        trigger_event(0, "m1", "f1", ["R1"]),
        trigger_event(1, "m2", runs=["R1"]),
        trigger_event(2, "m3"),
    )
    for event in (bad, left_bad):
        event.extra["payload"] = payload
    claims = Claims(tmp_path / "claims", "asr_events/R1", LEFT_OUT_CLAIM_TTL)
    assert findings_asked(take([good, bad], [left_bad], claims)).finding_ids == ["f1"]
    assert events_of([good, bad], Accessor(good, bad, left_bad), RunStore(tmp_path)) == ([good], [])
    assert "it holds no list of SQS messages" in caplog.text


def test_a_run_of_another_dag_on_the_asset_does_not_hide_a_left_out_event(tmp_path: Path) -> None:
    """An event's runs are those of every DAG scheduled on the asset: an audit DAG's, say."""
    mine, left_out = trigger_event(0, "m1", runs=["R1"]), trigger_event(1, "m2")
    left_out.created_dagruns = [SimpleNamespace(dag_id="events_audit", run_id="A1")]
    assert events_of([mine], Accessor(mine, left_out), RunStore(tmp_path)) == ([mine], [left_out])


def security_hub_event(kind: str, *ids: Any, **finding: Any) -> dict:
    """The event Security Hub sends for findings with these ids (``asr.local.events`` builds it)."""
    findings = [{"Id": i, **finding} for i in ids]
    if kind == CUSTOM_ACTION:
        action = f"arn:aws:securityhub:{REGION}:{ADMIN_ACCOUNT}:action/custom/Remediate"
        return custom_action_event(findings, action, ADMIN_ACCOUNT, REGION)
    return imported_event(findings, MEMBER_ACCOUNT, REGION)


def test_events_are_deduplicated_and_told_apart() -> None:
    event = security_hub_event
    asked = findings_asked(
        asset_events(
            event(CUSTOM_ACTION, "a", "b"),
            event(IMPORTED, "b", "c"),
            event(IMPORTED, "c"),
            {"junk": 1},
            # A message with a finding id that is no string fails none of the others.
            *(event(IMPORTED, "d", bad) for bad in (None, 7, {"Id": "x"}, ["x"])),
            # Only Security Hub sends aws.securityhub events; anyone with the queue may send others.
            {**event(CUSTOM_ACTION, "e"), "source": "my.app"},
            {**event(IMPORTED, "f"), "detail-type": "Security Hub Insight Results"},
        )
    )
    assert asked.finding_ids == ["a", "b", "c"]
    assert asked.by_person == {"a", "b"}
    # Each message that named no finding, for the run's report.
    assert [m["message"] for m in asked.skipped] == [str(n) for n in range(3, 10)]
    assert asked.skipped[0]["error"].startswith("not a Security Hub findings event: KeyError")
    assert "source 'my.app'" in asked.skipped[-2]["error"]
    assert asked.skipped[-1]["error"] == (
        "an event of type 'Security Hub Insight Results', which asr does not act on"
    )
    # A message delivered again, in another event of the same run, is listed once.
    assert [
        m["message"] for m in findings_asked([*asset_events({"junk": 1}), *asset_events({"junk": 2})]).skipped
    ] == ["0"]


@pytest.mark.airflow
def test_an_events_run_reports_the_messages_it_took_no_finding_from(
    aws, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anyone who may send to the queue can put anything there: the run goes on with the
    findings of the other messages and lists each bad one in its report, not only in a log."""
    from asr import events

    seeded = seed_one(aws, "EC2.13", MEMBER_ACCOUNT, REGION)
    raw = finding(seeded)
    import_findings(aws.admin_client("securityhub", REGION), [raw])
    # Message ids of this test's run only: the claims of an earlier one in this home last a week.
    prefix = f"{uuid.uuid4().hex}-"
    [event] = asset_events(security_hub_event(CUSTOM_ACTION, raw["Id"]), {"hello": "world"}, prefix=prefix)
    event.timestamp = datetime.datetime.now(datetime.UTC)
    monkeypatch.setattr(events, "run_events", lambda *args: ([event], []))

    run = dag("asr_events").test()

    assert run.state == "success"
    report = report_of(run)
    assert report["totals"] == {"REMEDIATED": 1}, "the message is no finding: counted nowhere"
    [skipped] = report["rejected"]
    assert skipped["named"] == f"SQS message {prefix}1"
    assert skipped["error"].startswith("not a Security Hub findings event: KeyError")
    assert not world_open(aws, seeded)


def test_a_body_nested_too_deep_is_skipped_not_the_others(caplog: pytest.LogCaptureFixture) -> None:
    """json.loads raises RecursionError, no ValueError, at a thousand levels: a 2 KB body."""
    deep = {"MessageId": "deep", "Body": "[" * 5000 + "]" * 5000}
    good = {"MessageId": "good", "Body": json.dumps(security_hub_event(CUSTOM_ACTION, "a"))}
    batch = [deep, good]
    for messages in (batch, [brief(m) for m in batch]):  # as stored before the trigger cut them, and after
        event = SimpleNamespace(extra={"from_trigger": True, "payload": {"message_batch": messages}})
        assert findings_asked([event]).finding_ids == ["a"]
        assert "RecursionError" in caplog.text
        caplog.clear()


def test_the_events_trigger_hands_on_finding_ids_not_whole_findings(stand_in: str) -> None:
    """Airflow keeps each message in the asset event, gives them all to every task of the
    run and shows them to whoever may read assets: a whole finding has no place there."""
    import asyncio

    from airflow.providers.amazon.aws.hooks.sqs import SqsHook

    from asr.triggers import SecurityHubEventsTrigger

    sqs = SqsHook(region_name=REGION).get_conn()  # the trigger's connection: the same account
    url = sqs.create_queue(QueueName="asr-events-brief")["QueueUrl"]
    tagged = [{"Id": "arn:aws:ec2:sg-1", "Tags": {"Owner": "me"}}]
    detail = {"Description": "x" * 100_000, "Resources": tagged}
    sent = [security_hub_event(IMPORTED, "f1", **detail), security_hub_event(CUSTOM_ACTION, "f2", "f3")]
    for body in [*map(json.dumps, sent), "not json"]:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    trigger = SecurityHubEventsTrigger(
        sqs_queue=url, region_name=REGION, max_messages=10, wait_time_seconds=0, waiter_delay=0
    )

    async def first_event() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    payload = asyncio.run(first_event())
    batch = payload["message_batch"]
    assert len(json.dumps(payload)) < 1_000
    assert "Owner" not in json.dumps(payload) and "ReceiptHandle" not in json.dumps(payload)
    assert all(m["MessageId"] for m in batch)
    # Airflow keeps the trigger's payload in the asset event it makes:
    asked = findings_asked([SimpleNamespace(extra={"from_trigger": True, "payload": payload})])
    assert (asked.by_import, asked.by_person) == ({"f1"}, {"f2", "f3"})
    [refused] = [m["NotAnEvent"] for m in batch if "NotAnEvent" in m]
    assert refused == "Expecting value: line 1 column 1 (char 0)"
    # Received is deleted, as the provider's trigger does: the run has what it needs.
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)


def test_an_import_fixes_only_automatic_controls_a_person_s_click_any() -> None:
    """The Imported rule already asks for automatic controls only; the DAG checks again, as a
    finding's playbook may have changed since the rule was made."""
    from asr.events import FindingsAsked

    automatic = routing_record("EC2.7", f"AWS::::Account:{MEMBER_ACCOUNT}", MEMBER_ACCOUNT, MEMBER_ACCOUNT)
    disruptive = routing_record(
        "EC2.13", f"arn:aws:ec2:us-east-1:{MEMBER_ACCOUNT}:security-group/sg-1", "sg-1", MEMBER_ACCOUNT
    )
    imported = FindingsAsked(by_import={automatic.finding_id, disruptive.finding_id})
    assert imported.keep(automatic) is None
    assert imported.keep(disruptive) == "automatic remediation is off for EC2.13; use the custom action"
    clicked = FindingsAsked(by_person={disruptive.finding_id}, by_import={disruptive.finding_id})
    assert clicked.keep(disruptive) is None


def test_the_events_queue_is_polled_as_configured_within_what_sqs_allows() -> None:
    assert queue_polling({}) == (20, 1)
    assert queue_polling({"ASR_EVENTS_WAIT_SECONDS": "5", "ASR_EVENTS_POLL_SECONDS": "0"}) == (5, 0)
    # No long poll and no pause would ask SQS nonstop: a short poll pauses a second.
    assert queue_polling({"ASR_EVENTS_WAIT_SECONDS": "0", "ASR_EVENTS_POLL_SECONDS": "0"}) == (0, 1)
    with pytest.raises(ConfigError, match="ASR_EVENTS_WAIT_SECONDS=21: an SQS long poll waits 20 s at most"):
        queue_polling({"ASR_EVENTS_WAIT_SECONDS": "21"})
    for bad in ("-1", "1.5", "²"):
        with pytest.raises(ConfigError, match=f"ASR_EVENTS_POLL_SECONDS='{bad}' is not a whole number"):
            queue_polling({"ASR_EVENTS_POLL_SECONDS": bad})


@pytest.mark.parametrize(
    ("wait", "poll", "polled"),
    [("0", "0", (0, 1)), ("30", "1", "ASR_EVENTS_WAIT_SECONDS=30: an SQS long poll waits 20 s at most")],
)
def test_the_events_dag_polls_its_queue_as_configured(
    monkeypatch: pytest.MonkeyPatch, wait: str, poll: str, polled: tuple[int, int] | str
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("ASR_EVENTS_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/111111111111/asr-events")
    monkeypatch.setenv("ASR_EVENTS_WAIT_SECONDS", wait)
    monkeypatch.setenv("ASR_EVENTS_POLL_SECONDS", poll)
    bag = DagBag(dag_folder=str(DAGS / "asr_events.py"))
    if isinstance(polled, str):  # the DAG does not load, and says why
        [message] = bag.import_errors.values()
        assert polled in message
        return
    sqs = bag.dags["asr_events"].schedule[0].watchers[0].trigger
    assert (sqs.wait_time_seconds, sqs.waiter_delay) == polled
    assert sqs.region_name == "us-east-1"
    # Runs waiting for approvals must not use up the places event runs take (Airflow's 16).
    assert bag.dags["asr_events"].max_active_runs == 64


@pytest.mark.parametrize(
    ("url", "environ", "region"),
    [
        ("https://sqs.eu-west-1.amazonaws.com/111111111111/asr-events", {}, "eu-west-1"),
        ("https://eu-central-1.queue.amazonaws.com/111111111111/asr-events", {}, "eu-central-1"),
        ("https://sqs.cn-north-1.amazonaws.com.cn/111111111111/asr-events", {}, "cn-north-1"),
        ("https://sqs-fips.us-gov-west-1.amazonaws.com/111111111111/asr-events", {}, "us-gov-west-1"),
        (
            "https://queue.amazonaws.com/111111111111/asr-events",
            {"ASR_SECURITYHUB_REGION": "eu-west-1"},
            "us-east-1",
        ),
        (
            "http://127.0.0.1:5000/111111111111/asr-events",
            {"ASR_SECURITYHUB_REGION": "ap-south-1"},
            "ap-south-1",
        ),
        ("http://127.0.0.1:5000/111111111111/asr-events", {}, "us-east-1"),
    ],
)
def test_the_events_queue_is_read_in_its_own_region(url: str, environ: dict[str, str], region: str) -> None:
    """Not the connection's: it may name another region, or none (SQS then cannot be called)."""
    assert queue_region(url, environ) == region


RUN_ID = "manual__2026-12-07T05:45:27.279442+00:00"


def test_a_rerun_takes_the_earlier_run_named_as_airflow_shows_it_or_as_its_folder_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README and the report's paths show a run as its folder reads (':' and '+' become '_'),
    as asr_rollback takes it: named so, the rerun found the folder, took it for another run's
    and said it had no outcomes. Airflow is asked about the run by its own id."""
    from asr import selection
    from asr.remediate import Outcome, Result, Status
    from asr.store import safe_name

    store = RunStore.for_run(str(tmp_path), "asr_remediate", RUN_ID)
    store.own("asr_remediate", RUN_ID)
    record = routing_record(
        "EC2.13", f"arn:aws:ec2:{REGION}:{MEMBER_ACCOUNT}:security-group/sg-1", "sg-1", MEMBER_ACCOUNT
    )
    store.write_lines("outcomes/b.jsonl", [Outcome.of(record, Result(Status.FAILED, "no")).to_dict()])
    ended = {("asr_remediate", RUN_ID): "success"}  # no report: Airflow alone says it has ended
    monkeypatch.setattr(selection, "run_state", lambda dag_id, run_id: ended.get((dag_id, run_id)))
    settings = Settings(data_dir=str(tmp_path))
    folder = safe_name(RUN_ID)
    assert folder == "manual__2026-12-07T05_45_27.279442_00_00"
    for named in (f"asr_remediate/{RUN_ID}", RUN_ID, f"asr_remediate/{folder}", folder):
        assert selection.failed_in_run(settings, named) == [record.finding_id], named
    how = (
        "name a run of asr_sweep, asr_remediate or asr_events as <dag_id>/<run_id>, or by its run id "
        "alone, as Airflow shows it or as its folder reads"
    )
    for wrong in (f"asr_remediate/{folder[:-1]}", f"asr_sweep/{folder}"):
        with pytest.raises(selection.SelectionError, match=f"^no outcomes of run '{wrong}' under .*: {how}$"):
            selection.failed_in_run(settings, wrong)


def test_a_form_s_lists_are_taken_as_a_person_meant_them() -> None:
    """Pasted lines keep a trailing space or a Windows line end (\\r): each named no finding."""
    from asr.config import Settings
    from asr.selection import Selection

    params = {
        "finding_ids": ["arn:aws:securityhub:x \r", "arn:aws:securityhub:y", "  "],
        "controls": ["EC2.13 "],
    }
    choice = Selection.from_params(params, Settings())
    assert choice.finding_ids == choice.named == ["arn:aws:securityhub:x", "arn:aws:securityhub:y"]
    assert choice.controls == ["EC2.13"]
