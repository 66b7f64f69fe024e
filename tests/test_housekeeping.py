"""Old runs' files are deleted ASR_KEEP_RUNS_DAYS after the run last wrote, once it has ended;
the audit journal never is, and a pruned run still answers for its id."""

from __future__ import annotations

import math
import os
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from asr.config import ConfigError, Settings
from asr.housekeeping import prune_runs
from asr.remediate import Outcome
from asr.selection import SelectionError, failed_in_run, run_finished
from asr.store import RunStore, data_root

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
KEEP = timedelta(days=90)
MADE = "2026-08-01T00:00:00+00:00"
FAILED = Outcome(
    "f-1", "arn:p", "EC2.13", "EC2.13", "222222222222", "us-east-1", "arn:sg", "sg-1", "FAILED", "throttled"
)


def run_folder(root: Path, dag_id: str, run_id: str, age: timedelta | None, owned: bool = True) -> RunStore:
    """A run's folder as its tasks leave it, its files last written ``age`` before NOW."""
    store = RunStore.for_run(str(root), dag_id, run_id)
    if owned:
        store.own(dag_id, run_id, MADE)
    store.write_json("ingest.json", {"routed": 1})
    store.write_lines("outcomes/EC2.13-0000.jsonl", [asdict(FAILED)])
    store.write_json("report.json", {"totals": {"FAILED": 1}})
    if age is not None:
        stamp = (NOW - age).timestamp()
        for path in store.root.rglob("*"):
            os.utime(path, (stamp, stamp))
    return store


def files(store: RunStore) -> list[str]:
    return sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.is_file())


def ended(dag_id: str, run_id: str) -> str | None:
    return "success"


def test_ended_runs_older_than_the_setting_keep_only_their_marked_owner(tmp_path: Path) -> None:
    old = run_folder(tmp_path, "asr_sweep", "scheduled__1", KEEP + timedelta(hours=1))
    recent = run_folder(tmp_path, "asr_sweep", "scheduled__2", KEEP - timedelta(hours=1))
    undone = run_folder(tmp_path, "asr_rollback", "manual__1", KEEP * 2, owned=False)
    journal = tmp_path / "audit" / "asr_sweep" / "scheduled__1" / "fix.jsonl"
    journal.parent.mkdir(parents=True)
    journal.write_text("{}\n")
    os.utime(journal, (0, 0))

    done = prune_runs(tmp_path, KEEP, NOW, state=ended)

    assert done.deleted == ["asr_sweep/scheduled__1", "asr_rollback/manual__1"]
    assert files(old) == ["run.json"]
    assert old.pruned() == NOW.isoformat()
    assert old.read_json("run.json")["run_id"] == "scheduled__1"
    assert files(recent) == ["ingest.json", "outcomes/EC2.13-0000.jsonl", "report.json", "run.json"]
    assert not undone.root.exists()
    assert journal.read_text() == "{}\n", "the audit journal is never pruned"
    # A second pass finds nothing more to do, even much later.
    assert prune_runs(tmp_path, KEEP, NOW + KEEP * 3, state=ended).deleted == ["asr_sweep/scheduled__2"]
    assert files(old) == ["run.json"]


def test_a_run_not_ended_or_cleared_and_run_again_is_kept(tmp_path: Path) -> None:
    waiting = run_folder(tmp_path, "asr_remediate", "manual__waiting", KEEP * 2)
    asked: list[tuple[str, str]] = []

    def state(dag_id: str, run_id: str) -> str | None:
        asked.append((dag_id, run_id))
        return "running"

    done = prune_runs(tmp_path, KEEP, NOW, state=state)
    assert (done.deleted, done.not_ended) == ([], ["asr_remediate/manual__waiting"])
    assert asked == [("asr_remediate", "manual__waiting")]
    assert "report.json" in files(waiting)

    # Made long ago, cleared since: its report is new.
    rerun = run_folder(tmp_path, "asr_events", "asset_triggered__x", KEEP * 2)
    rerun.write_json("report.json", {"totals": {}})
    os.utime(rerun.path("report.json"), (NOW.timestamp(), NOW.timestamp()))
    assert "asr_events/asset_triggered__x" not in prune_runs(tmp_path, KEEP, NOW, state=ended).deleted
    assert "ingest.json" in files(rerun)


def test_a_run_airflow_no_longer_knows_is_pruned_by_the_id_it_recorded(tmp_path: Path) -> None:
    store = run_folder(tmp_path, "asr_remediate", "manual__2026-08-01T00:00:00+00:00", KEEP * 2)
    asked: list[str] = []

    def forgotten(dag_id: str, run_id: str) -> str | None:
        asked.append(run_id)
        return None

    assert prune_runs(tmp_path, KEEP, NOW, state=forgotten).deleted == [f"asr_remediate/{store.root.name}"]
    assert asked == ["manual__2026-08-01T00:00:00+00:00"], "the run id, not its folder's name"


def test_a_dry_run_deletes_nothing(tmp_path: Path) -> None:
    store = run_folder(tmp_path, "asr_sweep", "scheduled__1", KEEP * 2)
    before = files(store)
    assert prune_runs(tmp_path, KEEP, NOW, dry_run=True, state=ended).deleted == ["asr_sweep/scheduled__1"]
    assert files(store) == before
    assert store.pruned() is None


def test_a_pruned_run_still_refuses_its_folder_to_a_new_run_of_its_id(tmp_path: Path) -> None:
    store = run_folder(tmp_path, "asr_sweep", "scheduled__1", KEEP * 2)
    prune_runs(tmp_path, KEEP, NOW, state=ended)
    store.refuse_another("asr_sweep", "scheduled__1", MADE)  # its own tasks: fine
    with pytest.raises(ValueError, match=r"deleted since\) left its run.json in"):
        store.refuse_another("asr_sweep", "scheduled__1", "2026-12-07T00:00:00+00:00")


def test_rerunning_a_pruned_runs_failures_says_its_files_went(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=str(tmp_path))
    store = run_folder(tmp_path, "asr_sweep", "scheduled__1", KEEP * 2)
    assert failed_in_run(settings, "scheduled__1") == ["f-1"]
    store.path("report.json").unlink()  # as a run Airflow no longer knows, its report gone:
    assert not run_finished("asr_sweep", "scheduled__1", store)  # it may still be running

    prune_runs(tmp_path, KEEP, NOW, state=ended)
    with pytest.raises(SelectionError, match=r"deleted on 2026-12-07, ASR_KEEP_RUNS_DAYS after"):
        failed_in_run(settings, "asr_sweep/scheduled__1")
    assert run_finished("asr_sweep", "scheduled__1", store), "a rollback of its journal may go on"


def test_runs_in_object_storage_are_pruned(clean_aws: str) -> None:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    s3 = S3Hook(aws_conn_id="aws_default")
    s3.create_bucket("asr-runs")
    root = data_root("s3://asr-runs/data", "aws_default")
    store = RunStore(root / "asr_sweep" / "scheduled__1")
    store.own("asr_sweep", "scheduled__1", MADE)
    store.write_lines("outcomes/EC2.13-0000.jsonl", [{"finding_id": "f-1"}])
    store.write_json("report.json", {})
    s3.load_string("{}", "data/audit/asr_sweep/scheduled__1/fix.jsonl", "asr-runs")

    assert prune_runs(root, KEEP, datetime.now(UTC) + KEEP / 2, state=ended).deleted == []
    done = prune_runs(root, KEEP, datetime.now(UTC) + KEEP * 2, state=ended)

    assert done.deleted == ["asr_sweep/scheduled__1"]
    assert sorted(s3.list_keys("asr-runs", prefix="data/")) == [
        "data/asr_sweep/scheduled__1/run.json",
        "data/audit/asr_sweep/scheduled__1/fix.jsonl",
    ]
    assert store.pruned()


def server_said(status: int) -> Exception:
    """The API server's answer as dag.test's supervisor passes it on: the client's own error."""
    import httpx
    from airflow.sdk.api.client import ServerResponseError

    request = httpx.Request("GET", "http://api/dag-runs/asr_sweep/scheduled__1/state")
    return ServerResponseError(
        "Server returned error", request=request, response=httpx.Response(status, request=request)
    )


def answer(**detail: Any) -> Exception:
    from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
    from airflow.sdk.execution_time.comms import ErrorResponse

    return AirflowRuntimeError(ErrorResponse(error=ErrorType.API_SERVER_ERROR, detail=detail))


def test_a_run_airflow_could_not_be_asked_about_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only Airflow's "no such run" deletes a run it does not report as ended: a failing API
    server must not read as every old run forgotten."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    store = run_folder(tmp_path, "asr_sweep", "scheduled__1", KEEP * 2)
    for failure in (answer(status_code=500), server_said(500), ConnectionError("refused")):

        def failing(dag_id: str, run_id: str, failure: Exception = failure) -> str:
            raise failure

        monkeypatch.setattr(RuntimeTaskInstance, "get_dagrun_state", staticmethod(failing))
        done = prune_runs(tmp_path, KEEP, NOW)
        assert (done.deleted, done.failed) == ([], ["asr_sweep/scheduled__1"])
        assert "report.json" in files(store)

    def unknown(dag_id: str, run_id: str) -> str:
        raise answer(status_code=404, message="DAG run not found")

    monkeypatch.setattr(RuntimeTaskInstance, "get_dagrun_state", staticmethod(unknown))
    assert prune_runs(tmp_path, KEEP, NOW).deleted == ["asr_sweep/scheduled__1"]


def test_a_folder_without_its_run_id_goes_only_when_airflow_says_it_ended(tmp_path: Path) -> None:
    """A folder's name is the run id with ``:`` and ``+`` read ``_``: Airflow knows no run of
    that name, which says nothing about the run. An Airflow id is read back from it."""
    made = "manual__2026-08-01T00:00:00.123456+00:00"
    store = run_folder(tmp_path, "asr_rollback", made, KEEP * 2, owned=False)
    other = run_folder(tmp_path, "asr_sweep", "fix:1", KEEP * 2, owned=False)
    asked: list[str] = []

    def knows(dag_id: str, run_id: str) -> str | None:
        asked.append(run_id)
        return "success" if run_id == made else None

    done = prune_runs(tmp_path, KEEP, NOW, state=knows)
    assert (done.deleted, done.not_ended) == ([f"asr_rollback/{store.root.name}"], ["asr_sweep/fix_1"])
    assert asked == ["fix_1", store.root.name, made]
    assert not store.root.exists() and "report.json" in files(other)


def test_one_run_that_cannot_be_read_leaves_the_others_to_go(tmp_path: Path) -> None:
    torn = run_folder(tmp_path, "asr_events", "a", KEEP * 2)
    torn.path("run.json").write_text("")
    later = run_folder(tmp_path, "asr_events", "b", KEEP * 2)
    stray = tmp_path / "asr_events" / "notes.txt"
    stray.write_text("a file of no run")
    os.utime(stray, (0, 0))

    done = prune_runs(tmp_path, KEEP, NOW, state=ended)

    assert (done.deleted, done.failed) == (["asr_events/b"], ["asr_events/a"])
    assert files(later) == ["run.json"] and "report.json" in files(torn)
    assert stray.exists()


def test_an_object_without_a_time_never_looks_old() -> None:
    from asr.housekeeping import _mtime

    assert _mtime({"name": "b/k", "type": "file", "size": 1}) == math.inf
    assert _mtime({"LastModified": NOW}) == NOW.timestamp()


def test_a_prune_that_could_not_finish_is_finished_by_the_next_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = run_folder(tmp_path, "asr_sweep", "scheduled__1", KEEP * 2)
    unlink = Path.unlink

    def refused(path: Path, missing_ok: bool = False) -> None:
        if path.name == "report.json":
            raise PermissionError("read-only")
        unlink(path, missing_ok)

    monkeypatch.setattr(Path, "unlink", refused)
    assert prune_runs(tmp_path, KEEP, NOW, state=ended).failed == ["asr_sweep/scheduled__1"]
    assert "report.json" in files(store) and store.pruned()
    monkeypatch.setattr(Path, "unlink", unlink)
    # The next day: the run.json rewritten as it was marked is new, the run was judged old already.
    assert prune_runs(tmp_path, KEEP, NOW + timedelta(days=1), state=ended).deleted == [
        "asr_sweep/scheduled__1"
    ]
    assert files(store) == ["run.json"]


def test_no_task_of_a_pruned_run_runs_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task cleared later would read no batch and no outcome and report success for nothing;
    its ingest cleared would start over without the decision its first one recorded (a dry
    run, scheduled, would follow today's ASR_DRY_RUN and change things)."""
    from airflow.sdk.exceptions import AirflowFailException

    from asr.tasks import own_run, run_context

    monkeypatch.setenv("ASR_DATA_DIR", str(tmp_path))
    store = run_folder(tmp_path, "asr_sweep", "scheduled__1", KEEP * 2)
    dag = SimpleNamespace(dag_id="asr_sweep", params={})
    made = datetime.fromisoformat(MADE)
    context = {
        "params": {},
        "dag": dag,
        "run_id": "scheduled__1",
        "dag_run": SimpleNamespace(conf={}, run_after=made),
    }
    run_context(context)
    prune_runs(tmp_path, KEEP, NOW, state=ended)

    for step in (run_context, own_run):
        with pytest.raises(AirflowFailException, match=r"deleted on 2026-12-07, .*: trigger a new run"):
            step(context)
    assert store.pruned()


@pytest.mark.parametrize(
    ("data_dir", "audit_dir", "refused"),
    [
        ("/srv/asr", "/srv/asr/asr_sweep", True),
        ("/srv/asr", "/srv/asr/asr_rollback/journal", True),
        ("/srv/asr/", "/srv/asr/asr_events/", True),
        ("s3://b/asr", "s3://b/asr/asr_remediate/j", True),
        ("/srv/asr", "/srv/asr/audit", False),
        ("/srv/asr", "/srv/asr/asr_sweeps", False),
        ("s3://b/asr", "s3://b/asr-audit", False),
    ],
)
def test_a_journal_inside_a_dags_run_folders_is_refused(data_dir: str, audit_dir: str, refused: bool) -> None:
    environ = {"ASR_DATA_DIR": data_dir, "ASR_AUDIT_DIR": audit_dir}
    if refused:
        with pytest.raises(ConfigError, match=r"ASR_AUDIT_DIR .* is inside the folder of asr_"):
            Settings.from_env(environ)
    else:
        Settings.from_env(environ)


@pytest.mark.parametrize("value", ["-1", "ninety", "1.5"])
def test_a_mistyped_keep_setting_is_refused_by_name(value: str) -> None:
    with pytest.raises(ConfigError, match="ASR_KEEP_RUNS_DAYS"):
        Settings.from_env({"ASR_KEEP_RUNS_DAYS": value})


@pytest.mark.airflow
def test_the_daily_dag_prunes_and_zero_keeps_everything(
    airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("ASR_DATA_DIR", str(tmp_path))
    old = run_folder(tmp_path, "asr_sweep", "scheduled__gone", timedelta(days=400))
    dag = DagBag(dag_folder=str(Path(__file__).resolve().parents[1] / "dags")).dags["asr_housekeeping"]

    monkeypatch.setenv("ASR_KEEP_RUNS_DAYS", "0")
    assert dag.test().state == "success"
    assert "report.json" in files(old)

    monkeypatch.setenv("ASR_KEEP_RUNS_DAYS", "365")
    assert dag.test(run_conf={"dry_run": True}).state == "success"
    assert "report.json" in files(old)
    assert dag.test(run_conf={"dry_run": False}).state == "success"
    assert files(old) == ["run.json"]
    assert "deleted the files of 1\n  asr_sweep/scheduled__gone" in caplog.text

    # A mistyped setting fails the run at once, naming it: a retry would read the same.
    monkeypatch.setenv("ASR_KEEP_RUNS_DAYS", "ninety")
    failed = dag.test(run_conf={"dry_run": False})
    assert failed.state == "failed"
    assert [ti.try_number for ti in failed.get_task_instances()] == [1]
    assert "ASR_KEEP_RUNS_DAYS='ninety' is not a whole number" in caplog.text
