"""The audit journal: durable before the change, append-only, readable by run, control and finding."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import seeded_records

from asr.audit import UNSETTLED, AuditJournal, Origin, journal_root
from asr.aws import Clients
from asr.findings import parse_finding
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import finding, seed_one
from asr.playbooks import registry
from asr.remediate import Planned, Result, Status, Target, fix_targets, run_batch
from asr.store import RunStore
from asr.sweep import remediate as remediate_batch

REGION = "us-east-1"
RUN_ID = "manual__2026-01-01T00:00:00+00:00"


def origin(try_number: int = 1, batch_id: str = "EC2.13-b0") -> Origin:
    return Origin("asr_sweep", RUN_ID, batch_id, try_number, "alice")


def seeded_target(aws: Any, control: str = "EC2.13") -> Target:
    seeded = seed_one(aws, control, MEMBER_ACCOUNT, REGION)
    record = parse_finding(finding(seeded), registry())
    action = registry().playbooks[record.playbook].build_action()
    return Target(Clients(aws, MEMBER_ACCOUNT, REGION), record.resource_id, (record,), action)


def planned_for(target: Target) -> Planned:
    state = target.action.read(target.clients, target.resource_id)
    return Planned(state, target.action.plan(state))


def journal(tmp_path: Path, try_number: int = 1) -> AuditJournal:
    return AuditJournal(journal_root(str(tmp_path), "asr_sweep", RUN_ID), origin(try_number))


def test_an_intent_and_its_settle_say_who_what_where_before_and_after(aws, tmp_path: Path) -> None:
    target = seeded_target(aws)
    planned = planned_for(target)
    written = journal(tmp_path)
    written.intend(target, planned)
    written.settle(target, Result(Status.REMEDIATED, "fixed", planned.before, {"public_admin_ingress": []}))

    [change] = journal(tmp_path, try_number=9).changes()
    intent, settle = change.intent, change.settle
    assert settle and change.status == "REMEDIATED"
    record = target.records[0]
    assert {key: intent[key] for key in ("dag_id", "run_id", "batch_id", "try_number", "who")} == {
        "dag_id": "asr_sweep",
        "run_id": RUN_ID,
        "batch_id": "EC2.13-b0",
        "try_number": 1,
        "who": "alice",
    }
    assert (intent["account_id"], intent["region"], intent["resource_id"]) == (
        MEMBER_ACCOUNT,
        REGION,
        target.resource_id,
    )
    assert intent["resource_arn"] == record.resource_arn
    assert intent["finding_ids"] == [record.finding_id]
    assert intent["control_ids"] == ["EC2.13"]
    assert (intent["action"], intent["params"]) == (target.action.name, target.action.params)
    assert intent["before"] == planned.before and intent["plan"] == planned.plan
    assert intent["before"]["public_admin_ingress"], "the rules about to be revoked are recorded"
    assert intent["time"] < settle["time"]
    assert settle["after"] == {"public_admin_ingress": []} and settle["message"] == "fixed"


def test_the_journal_holds_no_credentials(aws, tmp_path: Path) -> None:
    target = seeded_target(aws)
    journal(tmp_path).intend(target, planned_for(target))
    text = "".join(p.read_text() for p in journal_root(str(tmp_path), "asr_sweep", RUN_ID).iterdir())
    for secret in aws.credentials(MEMBER_ACCOUNT).values():
        assert secret not in text


def test_a_run_id_as_long_as_airflow_allows_still_names_a_journal_file(aws, tmp_path: Path) -> None:
    """Airflow takes run ids of 250 characters; the file name holds the DAG, run, batch and try
    as well, and file systems take 255 bytes: a longer name would fail every fix of the batch."""
    target = seeded_target(aws)
    long_run = "manual__" + "x" * 242
    tries = [Origin("asr_sweep", long_run, "EC2.13-b0", n, "alice") for n in (1, 2)]
    for one in tries:
        AuditJournal(journal_root(str(tmp_path), "asr_sweep", long_run), one).intend(
            target, planned_for(target)
        )
    files = list(journal_root(str(tmp_path), "asr_sweep", long_run).iterdir())
    assert len(files) == 2 and all(len(f.name) <= 255 for f in files)


def test_writes_only_append(aws, tmp_path: Path) -> None:
    target = seeded_target(aws)
    planned = planned_for(target)
    written = journal(tmp_path)
    written.intend(target, planned)
    [path] = list(written.root.iterdir())
    first = path.read_bytes()
    written.settle(target, Result(Status.FAILED, "denied", planned.before))
    assert path.read_bytes().startswith(first)
    assert [json.loads(line)["event"] for line in path.read_text().splitlines()] == ["intent", "settle"]


def test_a_short_write_is_finished_and_a_torn_line_does_not_swallow_the_next(
    aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk can take part of a line: the intent must be whole before the change, and
    the line after a torn one must still be read."""
    import asr.audit

    target = seeded_target(aws)
    planned = planned_for(target)
    written = journal(tmp_path)
    written.intend(target, planned)
    [path] = list(written.root.iterdir())
    with path.open("a") as torn:
        torn.write('{"event": "intent", "resou')
    real_write = os.write
    monkeypatch.setattr(asr.audit.os, "write", lambda fd, data: real_write(fd, data[:7]))
    written.settle(target, Result(Status.REMEDIATED, "fixed", planned.before))
    monkeypatch.undo()
    assert [e["event"] for e in journal(tmp_path).events()] == ["intent", "settle"]


def test_a_task_killed_mid_change_leaves_an_intent_without_settle(aws, tmp_path: Path) -> None:
    """A retry sees what the first try meant to do; its own settle does not close the first try's intent."""
    target = seeded_target(aws)
    planned = planned_for(target)
    journal(tmp_path, try_number=1).intend(target, planned)
    path = next(journal(tmp_path).root.iterdir())
    with path.open("a") as torn:  # the process died in the middle of its next line
        torn.write('{"event": "settle", "kind": "fi')

    retry = journal(tmp_path, try_number=2)
    [earlier] = retry.earlier(target)
    assert earlier.status == UNSETTLED and earlier.intent["try_number"] == 1

    retry.intend(target, planned)
    retry.settle(target, Result(Status.REMEDIATED, "fixed", planned.before, {"public_admin_ingress": []}))
    changes = retry.changes()
    assert [(c.intent["try_number"], c.status) for c in changes] == [(1, UNSETTLED), (2, "REMEDIATED")]


@pytest.mark.parametrize("settled", [True, False], ids=["died-before-saving", "died-mid-change"])
def test_a_retry_reports_the_fix_an_earlier_try_made_not_already_compliant(
    aws, tmp_path: Path, settled: bool
) -> None:
    """The first try fixed the resource, then died before saving its outcome (or before even
    recording the end): the retry finds it compliant, and says this run changed it."""
    target = seeded_target(aws)
    planned = planned_for(target)
    first = journal(tmp_path, try_number=1)
    first.intend(target, planned)
    target.action.apply(target.clients, target.resource_id, planned.before, planned.plan)
    if settled:
        first.settle(target, Result(Status.REMEDIATED, "fixed", planned.before, {"public_admin_ingress": []}))

    [result] = fix_targets([target], journal=journal(tmp_path, try_number=2))

    assert result.status == Status.REMEDIATED and "by an earlier try" in result.message
    assert result.before == planned.before
    assert [c.status for c in journal(tmp_path, try_number=3).changes()] == ["REMEDIATED"]


def test_a_retry_on_a_host_whose_clock_is_behind_settles_the_earlier_try_s_change(
    aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Try 1 (its host's clock a minute fast) intends a change, makes it and dies; try 2, on
    another host 40 s later, settles it with an earlier time. Paired by time alone, the settle
    had no intent before it and was dropped: the change stayed UNSETTLED for good."""
    from asr import audit

    target = seeded_target(aws)
    planned = planned_for(target)
    clock = iter(["2026-12-06T10:01:00.000000Z", "2026-12-06T10:00:40.000000Z"])
    monkeypatch.setattr(audit, "_now", lambda: next(clock))
    first = journal(tmp_path, try_number=1)
    first.intend(target, planned)
    target.action.apply(target.clients, target.resource_id, planned.before, planned.plan)

    [result] = fix_targets([target], journal=journal(tmp_path, try_number=2))

    assert result.status == Status.REMEDIATED and "by an earlier try" in result.message
    [change] = journal(tmp_path, try_number=3).changes()
    assert (change.status, change.intent["try_number"], change.settle["try_number"]) == ("REMEDIATED", 1, 2)
    assert change.settle["intent"] == change.intent["id"]


def test_settles_pair_with_the_intent_they_name_and_older_ones_by_time() -> None:
    from asr.audit import pair

    where = {
        "kind": "fix",
        "account_id": "1",
        "region": "r",
        "resource_id": "sg-1",
        "action": "a",
        "playbook": "p",
    }
    events = [
        {**where, "event": "settle", "intent": "b", "status": "FAILED", "time": "1"},  # before its intent
        {**where, "event": "intent", "id": "a", "time": "2"},
        {**where, "event": "intent", "id": "b", "time": "3"},
        {**where, "event": "intent", "id": "c", "time": "4"},
        {**where, "event": "settle", "status": "REMEDIATED", "time": "5"},  # an older journal's: the latest
    ]
    assert [(c.intent["id"], c.status) for c in pair(events)] == [
        ("a", UNSETTLED),
        ("b", "FAILED"),
        ("c", "REMEDIATED"),
    ]


def test_a_journal_that_cannot_settle_an_earlier_try_costs_the_batch_nothing(
    aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settling what a dead try began was the one journal write that failed the whole batch:
    no outcome saved, the other resources never fixed."""
    done, still_open = seeded_target(aws), seeded_target(aws)
    planned = planned_for(done)
    journal(tmp_path, try_number=1).intend(done, planned)
    done.action.apply(done.clients, done.resource_id, planned.before, planned.plan)  # and then it died
    retry = journal(tmp_path, try_number=2)

    def unavailable(*_: object) -> None:
        raise OSError("audit store unavailable")

    monkeypatch.setattr(retry, "settle", unavailable)

    results = fix_targets([done, still_open], journal=retry)

    assert [r.status for r in results] == [Status.REMEDIATED, Status.REMEDIATED]
    assert "by an earlier try" in results[0].message and "by an earlier try" not in results[1].message


def test_threads_recording_at_once_share_fsyncs_and_each_returns_only_once_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = journal(tmp_path)
    synced_lines = [0]  # lines the last fsync covered
    real_fsync = os.fsync

    def counting_fsync(descriptor: int) -> None:
        time.sleep(0.002)  # a disk under load, so that threads pile up behind it
        lines = written._path().read_text().count("\n") if written._path().exists() else 0
        real_fsync(descriptor)
        synced_lines[0] = max(synced_lines[0], lines)
        calls.append(lines)

    calls: list[int] = []
    monkeypatch.setattr(os, "fsync", counting_fsync)

    def one(n: int) -> None:
        event = written.record({"event": "note", "n": n})
        assert synced_lines[0] >= event["seq"], "record returned before its line was synced"

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(200)))
    assert written._path().read_text().count("\n") == 200
    assert len(calls) < 150, f"{len(calls)} fsyncs for 200 events from 8 threads"


def test_changes_by_control_and_finding(aws, tmp_path: Path) -> None:
    written = journal(tmp_path)
    targets = [seeded_target(aws, "EC2.13"), seeded_target(aws, "EC2.7")]
    for target in targets:
        written.intend(target, planned_for(target))
    changes = written.changes()
    assert [c.intent["control_ids"] for c in changes if c.about(controls=["EC2.7"])] == [["EC2.7"]]
    wanted = targets[0].records[0].finding_id
    assert [c.finding_ids for c in changes if c.about(finding_ids=[wanted])] == [[wanted]]
    assert len([c for c in changes if c.about()]) == 2


def test_the_intent_is_durable_before_the_change_and_a_failed_one_stops_it(aws, tmp_path: Path) -> None:
    target = seeded_target(aws)
    record = target.records[0]

    class Refusing(AuditJournal):
        def intend(self, target: Target, planned: Planned) -> None:
            raise OSError("disk full")

    refused = run_batch([record], registry(), aws, journal=Refusing(journal(tmp_path).root, origin()))
    assert [o.status for o in refused] == ["FAILED"]
    assert target.action.plan(target.action.read(target.clients, target.resource_id)), "nothing changed"

    class Checking(AuditJournal):
        def intend(self, target: Target, planned: Planned) -> str:
            intent = super().intend(target, planned)
            assert self.changes()[-1].status == UNSETTLED, "on disk before apply"
            assert target.action.plan(target.action.read(target.clients, target.resource_id))
            return intent

    checked = Checking(journal(tmp_path).root, origin())
    assert [o.status for o in run_batch([record], registry(), aws, journal=checked)] == ["REMEDIATED"]
    assert [c.status for c in checked.changes()] == ["REMEDIATED"]


def test_in_object_storage_each_event_is_its_own_object_named_in_time_order(aws, tmp_path: Path) -> None:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    s3 = S3Hook(aws_conn_id="aws_default")
    s3.create_bucket("asr-audit")
    target = seeded_target(aws)
    planned = planned_for(target)
    root = journal_root("s3://asr-audit/audit", "asr_sweep", RUN_ID, "aws_default")
    written = AuditJournal(root, origin())
    written.intend(target, planned)
    written.settle(target, Result(Status.REMEDIATED, "fixed", planned.before, {"public_admin_ingress": []}))
    AuditJournal(root, origin(try_number=2)).intend(target, planned)

    keys = s3.list_keys("asr-audit", prefix="audit/asr_sweep/")
    assert len(keys) == 3
    events = [json.loads(s3.read_key(key, "asr-audit"))["event"] for key in sorted(keys)]
    assert events == ["intent", "settle", "intent"], "names sort by time"
    read = AuditJournal(root, origin()).changes()
    assert [c.status for c in read] == ["REMEDIATED", UNSETTLED]


@pytest.mark.parametrize(
    ("run_type", "user", "who"),
    [
        ("manual", "alice", "alice"),
        ("scheduled", None, "scheduler"),
        ("asset_triggered", None, "Security Hub events"),
    ],
)
def test_who_is_the_triggering_user_or_the_scheduler(run_type: str, user: str | None, who: str) -> None:
    context = {
        "dag_run": SimpleNamespace(run_type=run_type, triggering_user_name=user),
        "dag": SimpleNamespace(dag_id="asr_sweep"),
        "run_id": RUN_ID,
        "ti": SimpleNamespace(try_number=3),
    }
    assert Origin.from_context(context, "b") == Origin("asr_sweep", RUN_ID, "b", 3, who)


def test_the_ssm_executor_records_the_start_and_the_end_across_processes(aws, tmp_path: Path) -> None:
    """The intent is written before the execution starts; the settle after resuming from
    deferral, by another journal object (another process), pairs with it by resource."""
    import shutil

    from asr import automation
    from asr.config import Settings
    from asr.playbooks import default_dir, load_playbooks

    directory = tmp_path / "playbooks"
    shutil.copytree(default_dir(), directory)
    path = directory / "EC2.13.yaml"
    text = path.read_text()
    ssm = "  ssm_document:\n    name: AWS-DisablePublicAccessForSecurityGroup\n"
    ssm += '    parameters: {GroupId: "{resource_id}", AutomationAssumeRole: "{automation_role_arn}"}\n'
    path.write_text(text.replace("remediation:\n", "remediation:\n" + ssm, 1))
    playbooks = load_playbooks(directory)
    record = parse_finding(finding(seed_one(aws, "EC2.13", MEMBER_ACCOUNT, REGION)), playbooks)

    _, pending = automation.start([record], playbooks, aws, Settings(), journal=journal(tmp_path))
    [change] = journal(tmp_path).changes()
    assert change.status == UNSETTLED and change.intent["before"]["public_admin_ingress"]

    statuses = automation.poll(pending, aws)
    automation.finish(pending, statuses, playbooks, aws, journal=journal(tmp_path))
    [change] = journal(tmp_path).changes()
    assert change.status == "REMEDIATED" and change.settle["after"] == {"public_admin_ingress": []}


class UnsettledJournal:
    """Records every intent, and cannot record how a change ended (its store went away)."""

    def __init__(self) -> None:
        self.intended: list[str] = []
        self.settles: list[str] = []

    def intend(self, target: Target, planned: Planned) -> str:
        self.intended.append(target.resource_id)
        return target.resource_id

    def settle(self, target: Target, result: Result, intent: str | None = None) -> None:
        self.settles.append(target.resource_id)
        raise OSError("the audit store is gone")

    def made_earlier(self) -> dict[tuple[str, ...], dict[str, Any]]:
        return {}

    def refuse_if_rolled_back(self) -> None:
        """Never rolled back."""


def test_a_journal_that_cannot_settle_does_not_lose_the_outcomes(aws: Any, tmp_path: Path) -> None:
    """The intent is durable already; the fixes were made, so their outcomes must be saved for
    write-back and the report, not lost to an exception from the journal's last step."""
    records = seeded_records(aws, 2)
    store = RunStore(tmp_path)
    batch = {"batch_id": "EC2.13-0000", "playbook": "EC2.13"}
    store.write_lines("batches/EC2.13-0000.jsonl", [r.to_dict() for r in records])
    journal = UnsettledJournal()
    counts = remediate_batch(batch, store, registry(), aws, journal=journal)
    assert sorted(journal.settles) == sorted(journal.intended) == sorted(r.resource_id for r in records)
    assert counts == {Status.REMEDIATED: 2}
    saved = list(store.read_lines("outcomes/EC2.13-0000.jsonl"))
    assert {(row["finding_id"], row["status"]) for row in saved} == {
        (r.finding_id, Status.REMEDIATED) for r in records
    }


def test_each_settle_ends_its_own_playbook_s_change_of_a_shared_resource() -> None:
    """IAM.8 and IAM.22 fix one user with one action, and may overlap: a settle taken by the
    latest intent instead of its own gave IAM.22's change IAM.8's FAILED, and a rollback then
    left IAM.22's deactivated keys off. A settle from before settles named their playbook
    still ends the latest intent."""
    from asr.audit import pair

    where = {"kind": "fix", "account_id": "1", "region": "r", "resource_id": "alice", "action": "a"}

    def event(n: int, kind: str, playbook: str | None, **more: Any) -> dict[str, Any]:
        named = {} if playbook is None else {"playbook": playbook}
        return {"event": kind, **where, **named, "time": f"t{n}", "seq": n, **more}

    changes = pair(
        [
            event(1, "intent", "IAM.8"),
            event(2, "intent", "IAM.22"),
            event(3, "settle", "IAM.8", status="FAILED"),
            event(4, "settle", "IAM.22", status="REMEDIATED"),
            event(5, "intent", "IAM.8"),
            event(6, "settle", None, status="REMEDIATED"),
        ]
    )
    assert [(c.intent["playbook"], c.settle and c.settle["status"]) for c in changes] == [
        ("IAM.8", "FAILED"),
        ("IAM.22", "REMEDIATED"),
        ("IAM.8", "REMEDIATED"),
    ]


@pytest.mark.airflow
def test_an_audit_dir_of_its_own_in_s3_needs_no_delete_but_of_claims(
    aws, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fix run with ``ASR_AUDIT_DIR`` in a bucket of its own: every call it makes there is
    one the administrator's ``ASRAdministratorAuditDir`` policy allows, which deletes only
    the claims; the journal's events are only ever added."""
    from fnmatch import fnmatchcase

    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from asr import iam_policy
    from asr.config import Settings
    from asr.local import served_requests
    from asr.local.seed import import_findings

    S3Hook(aws_conn_id="aws_default").create_bucket("asr-audit")
    monkeypatch.setenv("ASR_AUDIT_DIR", "s3://asr-audit/asr")
    raw = finding(seed_one(aws, "EC2.13", MEMBER_ACCOUNT, "us-east-1"))
    import_findings(aws.admin_client("securityhub", "us-east-1"), [raw])
    served_requests(clear=True)
    dags = DagBag(dag_folder=str(Path(__file__).resolve().parents[1] / "dags")).dags
    assert dags["asr_remediate"].test(run_conf={"finding_ids": [raw["Id"]]}).state == "success"

    calls = [c for c in served_requests() if c["resource"].startswith("arn:aws:s3:::asr-audit")]
    settings = Settings.from_env()
    policy = iam_policy.render(
        iam_policy.admin_policies("ASRMemberRole", audit_dir=settings.audit_dir),
        iam_policy.plain_values(settings),
    )
    allowed = [
        (action, resource)
        for statement in policy["ASRAdministratorAuditDir"]["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        for resource in (
            [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        )
    ]
    permission = {"HeadObject": "GetObject", "ListObjects": "ListBucket", "ListObjectsV2": "ListBucket"}
    for call in calls:
        wanted = f"s3:{permission.get(call['action'], call['action'])}"
        if call["resource"] == "arn:aws:s3:::asr-audit" and wanted == "s3:DeleteObject":
            continue  # DeleteObjects: S3 checks s3:DeleteObject on each key it names (below)
        assert any(a == wanted and fnmatchcase(call["resource"], r) for a, r in allowed), call["resource"]
    journal = {
        c["resource"] for c in calls if c["action"] == "PutObject" and "/asr/asr_remediate/" in c["resource"]
    }
    assert journal, "the journal's events were written"
    kept = {
        f"arn:aws:s3:::asr-audit/{key}" for key in S3Hook(aws_conn_id="aws_default").list_keys("asr-audit")
    }
    assert journal <= kept, "no event of the journal is deleted"
    assert any(c["action"] == "PutObject" and "/asr/claims/" in c["resource"] for c in calls), "claimed"
    assert not [k for k in kept if "/claims/" in k], "the claims are released: deleting them is allowed"
