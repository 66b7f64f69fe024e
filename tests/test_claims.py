"""Overlapping runs: a resource is fixed by one run only."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import seeded_records
from test_pacing import _records

from asr import local, remediate
from asr.claims import Claims, claim_name, for_run
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import seed_one
from asr.playbooks import registry
from asr.remediate import Result, Status, fix_targets, resolve_targets, run_batch

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
    assert not list(tmp_path.glob("*.json"))


def test_two_playbooks_of_one_run_take_a_shared_resource_in_turn(tmp_path: Path) -> None:
    """IAM.8's and IAM.22's tasks share a fix, and so a claim. When the holder was the run,
    the second task took the first one's claim as its own, fixed the user alongside it and,
    ending first, dropped the claim while the first was still at work."""
    name = claim_name(MEMBER_ACCOUNT, "us-east-1", "alice", "iam.revoke-unused-credentials")
    iam_8, iam_22 = (
        for_run(str(tmp_path), "asr_sweep", "r1", task_id=t) for t in ("iam_8.fix", "iam_22.fix")
    )
    assert iam_8 is not None and iam_22 is not None
    assert iam_8.acquire(name, {}) is None
    assert iam_22.acquire(name, {}) == "asr_sweep/r1/iam_8.fix"
    iam_22.release_all()
    assert Claims(tmp_path / "claims", "asr_events/e1").acquire(name, {}) == "asr_sweep/r1/iam_8.fix"
    retry = for_run(str(tmp_path), "asr_sweep", "r1", task_id="iam_8.fix")  # the same task, tried again
    assert retry is not None and retry.acquire(name, {}) is None
    retry.release_all()
    assert iam_22.acquire(name, {}) is None


def test_a_holder_drops_only_its_own_claim(tmp_path: Path) -> None:
    """A task held its claim past the claim's ttl (a wait it outlived), another run broke
    it and took the resource: the first task's release must leave that run's claim."""
    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x")
    slow = Claims(tmp_path, "asr_sweep/a", ttl=1.0)
    assert slow.acquire(name, {}) is None
    time.sleep(1.1)
    assert Claims(tmp_path, "asr_events/b", ttl=1.0).acquire(name, {}) is None
    slow.release_all()
    Claims(tmp_path, "asr_sweep/a").release([name])  # as a deferred task that resumed elsewhere would
    assert json.loads((tmp_path / name).read_text())["owner"] == "asr_events/b"
    Claims(tmp_path, "asr_events/b").release([name])
    assert not (tmp_path / name).exists()


def test_a_retry_makes_the_claim_it_takes_over_anew(tmp_path: Path) -> None:
    """The dead try's claim kept its age: another run broke it while the retry was at work."""
    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x")
    assert Claims(tmp_path, "asr_sweep/r/t", ttl=2.0).acquire(name, {}) is None
    time.sleep(1.5)  # the try died; its retry comes
    retry = Claims(tmp_path, "asr_sweep/r/t", ttl=2.0)
    assert retry.acquire(name, {}) is None
    time.sleep(0.6)
    assert Claims(tmp_path, "asr_events/e", ttl=2.0).acquire(name, {}) == "asr_sweep/r/t"


def test_a_holder_judges_its_claim_s_age_by_the_clock_other_runs_use(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Breakers read the wall-clock time in the claim; a monotonic clock stops while the host
    sleeps, so the holder thought a claim another run had broken and remade was its own."""
    from asr import claims as module

    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x")
    mine = Claims(tmp_path, "asr_sweep/a", ttl=100.0)
    assert mine.acquire(name, {}) is None
    real = time.time
    monkeypatch.setattr(module.time, "time", lambda: real() + 200)  # the host slept 200 s
    assert Claims(tmp_path, "asr_events/b", ttl=100.0).acquire(name, {}) is None
    mine.release_all()
    assert json.loads((tmp_path / name).read_text())["owner"] == "asr_events/b"


def test_a_claim_is_stale_after_the_ttl_it_states(tmp_path: Path) -> None:
    """An SSM fix task holds its claims through the document's timeout, which may pass the
    six hours other tasks judge by: the claim says how long it may be held."""
    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x")
    long_wait = Claims(tmp_path, "asr_sweep/ssm", ttl=3.0)
    assert long_wait.acquire(name, {}) is None
    time.sleep(1.1)
    assert Claims(tmp_path, "asr_events/b", ttl=1.0).acquire(name, {}) == "asr_sweep/ssm"
    (tmp_path / name).write_text(json.dumps({"owner": "asr_sweep/ssm", "time": time.time() - 5, "ttl": 3.0}))
    assert Claims(tmp_path, "asr_events/b", ttl=3600).acquire(name, {}) is None


def test_a_claim_write_that_fails_leaves_no_empty_claim(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The file was made, its text not written (disk full): the next try found an empty
    claim, its own, and called it another run's; nobody dropped it for six hours."""
    import errno

    _first_claim_write_raises(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x")
    mine = Claims(tmp_path, "asr_sweep/a")
    assert mine.acquire(name, {}) is None
    assert json.loads((tmp_path / name).read_text())["owner"] == "asr_sweep/a"
    mine.release_all()
    assert not list(tmp_path.glob("*.json"))


def _first_claim_write_raises(monkeypatch, error: BaseException) -> None:  # type: ignore[no-untyped-def]
    """The next write of a claim's text raises ``error``; later ones go through."""
    from asr import claims as module

    real_write, errors = os.write, [error]

    def write(descriptor: int, data: bytes) -> int:
        if errors:
            raise errors.pop()
        return real_write(descriptor, data)

    monkeypatch.setattr(module.os, "write", write)


def _first_write_fails(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The next claim write fails as S3 does when it races a delete (409); later ones go through."""
    from asr import claims as module

    real, failures = module._create, [OSError(5, "ConditionalRequestConflict")]

    def flaky(path: Path, body: bytes) -> bool:
        if failures:
            raise failures.pop()
        return real(path, body)

    monkeypatch.setattr(module, "_create", flaky)


def test_a_stale_claim_is_broken_after_a_failed_first_try(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x")
    (tmp_path / name).write_text(json.dumps({"owner": "asr_sweep/dead", "time": time.time() - 7200}))
    _first_write_fails(monkeypatch)
    assert Claims(tmp_path, "asr_sweep/b", ttl=3600).acquire(name, {}) is None


def test_a_task_killed_while_it_writes_a_claim_leaves_none(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Made with O_EXCL, then written: a task killed in between left an empty claim that
    nobody owned, and its own retry called it another run's and left the resource alone."""

    class Killed(BaseException):
        pass

    _first_claim_write_raises(monkeypatch, Killed())
    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x")
    with pytest.raises(Killed):
        Claims(tmp_path, "asr_sweep/a").acquire(name, {})
    assert not (tmp_path / name).exists()
    assert Claims(tmp_path, "asr_sweep/a").acquire(name, {}) is None
    assert json.loads((tmp_path / name).read_text())["owner"] == "asr_sweep/a"


def test_a_claim_on_a_resource_lapses_once_its_holder_s_run_has_ended(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A task killed with no try left never drops its claims: a rerun of the failures of its
    run, or a rollback of it, found the resource held by that failed run for six hours."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    states, asked = {"dead": "failed", "busy": "running"}, []

    def state(dag_id: str, run_id: str) -> str:
        asked.append(run_id)
        return states[run_id]

    monkeypatch.setattr(RuntimeTaskInstance, "get_dagrun_state", staticmethod(state))
    dead, busy, busier, taken = (claim_name(MEMBER_ACCOUNT, REGION, f"sg-{n}", "x") for n in range(4))
    for name, run in ((dead, "dead"), (busy, "busy"), (busier, "busy"), (taken, "dead")):
        assert Claims(tmp_path, f"asr_sweep/{run}/fix").acquire(name, {}) is None
    rerun = Claims(tmp_path, "asr_remediate/r/fix", lapse_with_run=True)
    assert rerun.acquire(dead, {}) is None
    assert json.loads((tmp_path / dead).read_text())["owner"] == "asr_remediate/r/fix"
    assert rerun.acquire(busy, {}) == rerun.acquire(busier, {}) == "asr_sweep/busy/fix"
    assert asked == ["dead", "busy"], "Airflow is asked once a holder"
    # A claim that marks something taken for good (an event a run took) stays with it.
    assert Claims(tmp_path, "asr_events/e").acquire(taken, {}) == "asr_sweep/dead/fix"


@pytest.mark.airflow
def test_a_rerun_fixes_a_resource_a_dead_task_of_an_ended_run_still_claims(aws, airflow_db: None) -> None:
    """Through Airflow: the claim of a task of a run that has ended (a dry run here) does not
    keep another run's fix off the resource; Airflow's word on that run is asked in the task."""
    from airflow.dag_processing.dagbag import DagBag

    from asr.config import Settings
    from asr.findings import parse_finding
    from asr.local.seed import finding, import_findings

    seeded = seed_one(aws, "EC2.13", MEMBER_ACCOUNT, REGION)
    raw = finding(seeded)
    import_findings(aws.admin_client("securityhub", REGION), [raw])
    remediate_dag = DagBag(dag_folder=str(Path(__file__).resolve().parents[1] / "dags")).dags["asr_remediate"]
    ended = remediate_dag.test(run_conf={"finding_ids": [raw["Id"]], "dry_run": True})
    assert ended.state == "success"
    record = parse_finding(raw, registry())
    claims = Path(Settings.from_env().audit_root) / "claims"
    dead = Claims(claims, f"asr_remediate/{ended.run_id}/remediate_EC2_13.fix")
    name = claim_name(MEMBER_ACCOUNT, REGION, record.resource_id, registry().playbooks["EC2.13"].action)
    assert dead.acquire(name, {}) is None

    assert remediate_dag.test(run_conf={"finding_ids": [raw["Id"]], "dry_run": False}).state == "success"
    [found] = aws.admin_client("securityhub", REGION).get_findings(
        Filters={"Id": [{"Value": raw["Id"], "Comparison": "EQUALS"}]}
    )["Findings"]
    assert found["Workflow"]["Status"] == "RESOLVED"


def test_a_claim_without_an_owner_is_held(tmp_path: Path) -> None:
    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x")
    (tmp_path / name).write_text("")  # an older asr's, killed between O_EXCL and its write
    assert Claims(tmp_path, "asr_sweep/b").acquire(name, {}) == "another run"
    assert (tmp_path / name).exists()


def test_a_stale_claim_is_broken(tmp_path: Path) -> None:
    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x")
    Claims(tmp_path, "asr_sweep/dead").acquire(name, {})
    (tmp_path / name).write_text("{")  # and half-written
    old = time.time() - 7200
    os.utime(tmp_path / name, (old, old))
    assert Claims(tmp_path, "asr_sweep/b", ttl=3600).acquire(name, {}) is None


def _stale_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The next claim read finds a dead run's stale claim: what a run saw a moment before
    another run broke that claim and made its own."""
    real = Claims._read
    seen = iter([("asr_sweep/dead", True)])
    monkeypatch.setattr(Claims, "_read", lambda self, path: next(seen, None) or real(self, path))


def test_two_runs_breaking_one_stale_claim_keep_the_claim_made_first(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x")
    Claims(tmp_path, "asr_sweep/dead").acquire(name, {})
    old = time.time() - 7200
    (tmp_path / name).write_text(json.dumps({"owner": "asr_sweep/dead", "time": old}))
    first = Claims(tmp_path, "asr_sweep/a", ttl=3600)
    assert first.acquire(name, {}) is None  # broke it, and holds it now
    _stale_once(monkeypatch)  # the second run judged the dead run's claim stale, too
    assert Claims(tmp_path, "asr_remediate/b", ttl=3600).acquire(name, {}) == "asr_sweep/a"
    assert json.loads((tmp_path / name).read_text())["owner"] == "asr_sweep/a"


def test_local_breakers_of_a_stale_claim_take_turns(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """While one run judges a stale claim under the lock, another waits for it; by its turn
    the claim is gone."""
    from asr import claims as module

    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x")
    (tmp_path / name).write_text(json.dumps({"owner": "asr_sweep/dead", "time": time.time() - 7200}))
    judging, first_in, go_on = [], threading.Event(), threading.Event()
    real_age = module._age

    def slow_age(text: str, modified: Any) -> float:
        judging.append(threading.current_thread().name)
        first_in.set()
        go_on.wait(5)
        return real_age(text, modified)

    monkeypatch.setattr(module, "_age", slow_age)
    runs = [threading.Thread(target=module._break, args=(tmp_path / name, 3600), name=n) for n in "ab"]
    runs[0].start()
    assert first_in.wait(5)
    runs[1].start()
    time.sleep(0.5)
    assert judging == ["a"]  # b waits for the lock
    go_on.set()
    for run in runs:
        run.join(5)
    assert judging == ["a"] and not (tmp_path / name).exists()  # b found nothing left to judge


def test_a_claim_that_cannot_be_released_does_not_stop_the_others(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    class Undeletable:
        def unlink(self, missing_ok: bool = False) -> None:
            raise PermissionError("AccessDenied")

    mine = Claims(tmp_path, "asr_sweep/a")
    assert mine.acquire(claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x"), {}) is None
    mine._held = {"undeletable": (Undeletable(), time.time()), **mine._held}
    mine.release_all()
    assert not list(tmp_path.iterdir())
    assert "Could not release the claim" in caplog.text


def test_a_claim_write_that_fails_once_is_tried_again(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _first_write_fails(monkeypatch)
    assert (
        Claims(tmp_path, "asr_sweep/a").acquire(claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x"), {}) is None
    )
    assert len(list(tmp_path.iterdir())) == 1


@pytest.fixture
def claims_bucket(aws):  # type: ignore[no-untyped-def]
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    s3 = S3Hook(aws_conn_id="aws_default")
    s3.create_bucket("asr-claims")
    return s3


def test_a_claim_replaced_while_it_is_read_is_read_again(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """In S3, s3fs reads an object by the ETag it saw first: a claim released and made anew by
    another run in between answers FileExpired (EBUSY). It is read again, not a failed batch."""
    from s3fs.utils import FileExpired

    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x")
    assert Claims(tmp_path, "asr_sweep/a").acquire(name, {}) is None
    real, expired = Path.read_text, []

    def replaced_once(self: Path, *args: Any, **kwargs: Any) -> str:
        if self.name == name and len(expired) < 2:
            expired.append(self)
            raise FileExpired(str(self), "etag-of-the-claim-released-meanwhile")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", replaced_once)
    claims = Claims(tmp_path, "asr_remediate/b")
    assert claims.acquire(name, {}) == "asr_sweep/a"
    assert claims.holder(name) == "asr_sweep/a"
    assert len(expired) == 2


def test_a_claim_that_cannot_be_read_for_another_reason_fails_the_claim(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x")
    assert Claims(tmp_path, "asr_sweep/a").acquire(name, {}) is None

    def denied(self: Path, *args: Any, **kwargs: Any) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(PermissionError):
        Claims(tmp_path, "asr_remediate/b").acquire(name, {})


def test_in_s3_a_claim_is_exclusive_through_a_conditional_write(claims_bucket) -> None:  # type: ignore[no-untyped-def]
    sweep = for_run("s3://asr-claims/audit", "asr_sweep", "a", "aws_default")
    rerun = for_run("s3://asr-claims/audit", "asr_remediate", "b", "aws_default")
    assert sweep is not None and rerun is not None
    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x")
    assert sweep.acquire(name, {"resource_id": "sg-1"}) is None
    assert rerun.acquire(name, {}) == "asr_sweep/a"
    held = json.loads(claims_bucket.read_key(f"audit/claims/{name}", "asr-claims"))
    assert (held["owner"], held["resource_id"]) == ("asr_sweep/a", "sg-1")
    sweep.release_all()
    assert claims_bucket.list_keys("asr-claims", prefix="audit/claims/") == []
    assert rerun.acquire(name, {}) is None


def test_in_s3_a_stale_claim_is_broken(claims_bucket) -> None:  # type: ignore[no-untyped-def]
    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x")
    dead = json.dumps({"owner": "asr_sweep/dead", "time": time.time() - 7200})
    claims_bucket.load_string(dead, f"audit/claims/{name}", "asr-claims")
    claims = for_run("s3://asr-claims/audit", "asr_remediate", "b", "aws_default")
    assert claims is not None
    claims.ttl = 3600
    assert claims.acquire(name, {}) is None
    held = json.loads(claims_bucket.read_key(f"audit/claims/{name}", "asr-claims"))
    assert held["owner"] == "asr_remediate/b"


def test_in_s3_a_resumed_task_drops_only_its_own_claim(claims_bucket) -> None:  # type: ignore[no-untyped-def]
    """A deferred task resumes in another process and drops its claims by name: one that
    another run holds now (it broke ours) stays."""
    ours, theirs = (claim_name(MEMBER_ACCOUNT, REGION, sg, "x") for sg in ("sg-1", "sg-2"))
    started = for_run("s3://asr-claims/audit", "asr_sweep", "a", "aws_default", "ssm.fix")
    assert started is not None and started.acquire(ours, {}) is None and started.acquire(theirs, {}) is None
    other = json.dumps({"owner": "asr_events/b", "time": time.time()})
    claims_bucket.load_string(other, f"audit/claims/{theirs}", "asr-claims", replace=True)
    resumed = for_run("s3://asr-claims/audit", "asr_sweep", "a", "aws_default", "ssm.fix")
    assert resumed is not None
    resumed.release([ours, theirs])
    assert claims_bucket.list_keys("asr-claims", prefix="audit/claims/") == [f"audit/claims/{theirs}"]


def _s3_clients_answer(monkeypatch, **calls: Any) -> None:  # type: ignore[no-untyped-def]
    """Every S3 client the claims make answers these calls its own way (each given the real
    client and the call's arguments), and the others as S3 does."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    real_get_conn = S3Hook.get_conn

    class Answering:
        def __init__(self, client: Any) -> None:
            self.client = client

        def __getattr__(self, name: str) -> Any:
            if name in calls:
                return functools.partial(calls[name], self.client)
            return getattr(self.client, name)

    monkeypatch.setattr(S3Hook, "get_conn", lambda self: Answering(real_get_conn(self)))


def test_in_s3_a_claim_made_while_another_run_breaks_a_stale_one_survives(claims_bucket, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The second run reads the stale claim; before it deletes it, the first run breaks it and
    makes its own. The second run's delete names the stale object's ETag, so it misses."""

    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x")
    key = f"audit/claims/{name}"
    dead = json.dumps({"owner": "asr_sweep/dead", "time": time.time() - 7200})
    claims_bucket.load_string(dead, key, "asr-claims")
    mine = json.dumps({"owner": "asr_sweep/a", "time": time.time()})

    def first_run_steps_in(client: Any, **kwargs: Any) -> Any:
        held = client.get_object(**kwargs)
        client.delete_object(Bucket="asr-claims", Key=key)
        client.put_object(Bucket="asr-claims", Key=key, Body=mine.encode())
        return held

    _s3_clients_answer(monkeypatch, get_object=first_run_steps_in)
    claims = for_run("s3://asr-claims/audit", "asr_remediate", "b", "aws_default")
    assert claims is not None
    claims.ttl = 3600
    assert claims.acquire(name, {}) == "asr_sweep/a"
    assert json.loads(claims_bucket.read_key(key, "asr-claims"))["owner"] == "asr_sweep/a"


@pytest.mark.parametrize(
    ("code", "raised"),
    [
        ("PreconditionFailed", False),  # a newer claim took its place
        ("NoSuchKey", False),  # released or broken meanwhile
        ("ConditionalRequestConflict", False),  # another run writes or deletes it right now
        ("AccessDenied", True),
    ],
)
def test_in_s3_only_answers_that_the_claim_changed_end_a_break_quietly(
    claims_bucket, monkeypatch, code: str, raised: bool
) -> None:  # type: ignore[no-untyped-def]
    from botocore.exceptions import ClientError

    from asr import claims as module

    def refuse(client: Any, **kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": code, "Message": code}}, "DeleteObject")

    name = claim_name(MEMBER_ACCOUNT, REGION, "sg-1", "x")
    dead = json.dumps({"owner": "asr_sweep/dead", "time": time.time() - 7200})
    claims_bucket.load_string(dead, f"audit/claims/{name}", "asr-claims")
    _s3_clients_answer(monkeypatch, delete_object=refuse)
    claims = for_run("s3://asr-claims/audit", "asr_remediate", "b", "aws_default")
    assert claims is not None
    if raised:
        with pytest.raises(ClientError, match=code):
            module._break(claims.root / name, 3600)
    else:
        module._break(claims.root / name, 3600)


def test_object_stores_without_exclusive_create_have_no_claims(tmp_path: Path) -> None:
    from asr.config import Settings

    assert for_run("gs://bucket/audit", "asr_sweep", "a") is None
    local_claims = for_run(str(tmp_path), "asr_sweep", "a")
    assert local_claims is not None and local_claims.root == tmp_path / "claims"
    # A file:// URL is the local folder it names, with its claims (and the journal's fsync).
    settings = Settings.from_env({"ASR_AUDIT_DIR": f"file://{tmp_path}", "ASR_DATA_DIR": "file:///srv/asr"})
    assert (settings.audit_root, settings.data_dir) == (str(tmp_path), "/srv/asr")
    assert for_run(settings.audit_root, "asr_sweep", "a") is not None


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


def test_a_global_resource_has_one_claim_whichever_region_found_it(aws, tmp_path: Path) -> None:
    """IAM is global: a run holding the user through a us-east-1 finding holds it for a run
    that reached it through an eu-west-1 finding too."""
    [record] = _records("IAM.8", [seed_one(aws, "IAM.8", MEMBER_ACCOUNT, REGION)])
    elsewhere = dataclasses.replace(record, region="eu-west-1")
    [held], _ = resolve_targets([record], registry(), aws)
    Claims(tmp_path, "asr_sweep/other").acquire(held.claim, {})
    [outcome] = run_batch([elsewhere], registry(), aws, claims=Claims(tmp_path, "asr_events/mine"))
    assert outcome.status == Status.IGNORED, outcome.message


def test_fixes_that_edit_one_bucket_policy_take_it_in_turn(aws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """S3.5 and S3.6 each read a bucket's one policy, add a statement and put it back: at
    once, the later put drops the other's statement, whose read-back may already have passed.
    They share a claim on the bucket; another kind of fix of it does not wait for them."""
    seeded = [seed_one(aws, "S3.6", MEMBER_ACCOUNT, REGION)]
    [tls], [cross], [encryption] = (_records(control, seeded) for control in ("S3.5", "S3.6", "S3.4"))
    [held], _ = resolve_targets([tls], registry(), aws)
    Claims(tmp_path, "asr_sweep/r/remediate_S3_5.fix").acquire(held.claim, {})
    mine = Claims(tmp_path, "asr_sweep/r/remediate_S3_6.fix")
    [outcome] = run_batch([cross], registry(), aws, claims=mine)
    assert outcome.status == Status.IGNORED and "remediate_S3_5.fix" in outcome.message
    [other] = run_batch([encryption], registry(), aws, claims=mine)
    assert other.status in (Status.REMEDIATED, Status.ALREADY_COMPLIANT), other.message


def test_fixes_that_send_one_project_environment_back_take_it_in_turn(aws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """CodeBuild.2 and CodeBuild.5 each read a project's environment and send it back whole with
    their one change: at once, the later undoes the other's (privileged mode on again)."""
    seeded = [seed_one(aws, "CodeBuild.5", MEMBER_ACCOUNT, REGION)]
    [privileged], [credentials] = (_records(control, seeded) for control in ("CodeBuild.5", "CodeBuild.2"))
    [held], _ = resolve_targets([privileged], registry(), aws)
    Claims(tmp_path, "asr_sweep/r/remediate_CodeBuild_5.fix").acquire(held.claim, {})
    mine = Claims(tmp_path, "asr_sweep/r/remediate_CodeBuild_2.fix")
    [outcome] = run_batch([credentials], registry(), aws, claims=mine)
    assert outcome.status == Status.IGNORED and "remediate_CodeBuild_5.fix" in outcome.message


def test_two_overlapping_runs_fix_each_resource_once(
    aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run a holds its fixes inside apply until run b has come and gone, so the runs overlap
    for certain (no timing to trust): b must find every resource claimed and leave it to a."""
    seeded = [seed_one(aws, "EC2.13", MEMBER_ACCOUNT, REGION, n) for n in range(12)]
    records = _records("EC2.13", seeded)
    action = type(registry().playbooks["EC2.13"].build_action())
    applying, b_done = threading.Event(), threading.Event()
    real_apply = action.apply

    def held_apply(self: Any, *args: Any, **kwargs: Any) -> None:
        applying.set()
        b_done.wait(10)  # a second run applying too waits here, then both change it
        real_apply(self, *args, **kwargs)

    monkeypatch.setattr(action, "apply", held_apply)
    local.served_requests(clear=True)
    statuses: dict[str, list[str]] = {}
    messages: dict[str, list[str]] = {}

    def run(owner: str, done: threading.Event | None = None) -> None:
        try:
            outcomes = run_batch(records, registry(), aws, claims=Claims(tmp_path, owner))
            statuses[owner] = [o.status for o in outcomes]
            messages[owner] = [o.message for o in outcomes]
        finally:
            if done:
                done.set()

    a = threading.Thread(target=run, args=("asr_sweep/a",))
    b = threading.Thread(target=run, args=("asr_events/b", b_done))
    a.start()
    assert applying.wait(60), "run a never reached apply"
    b.start()
    b.join(120)
    a.join(120)
    assert statuses["asr_events/b"] == [Status.IGNORED] * 12
    assert all("another task (asr_sweep/a) is fixing it now" in m for m in messages["asr_events/b"])
    assert statuses["asr_sweep/a"] == [Status.REMEDIATED] * 12
    revokes = [r for r in local.served_requests() if r["action"] == "RevokeSecurityGroupIngress"]
    assert len(revokes) == 12
    assert sorted(r["resource"] for r in revokes) == sorted(r.resource_id for r in records)


def test_claims_are_released_when_the_fix_raises(
    aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim left behind would keep every other run off the resource for six hours."""
    targets, failed = resolve_targets(seeded_records(aws, 3), registry(), aws)
    assert failed == [] and len(targets) == 3
    held: list[list[str]] = []

    def broken(*_: Any, **__: Any) -> list[Result]:
        held.append(sorted(p.name for p in tmp_path.iterdir()))
        raise RuntimeError("the fix died")

    monkeypatch.setattr(remediate, "_fix", broken)
    with pytest.raises(RuntimeError, match="the fix died"):
        fix_targets(targets, claims=Claims(tmp_path, "asr_sweep/a"))
    assert held == [sorted(t.claim for t in targets)], "every resource was claimed before the fix"
    assert list(tmp_path.iterdir()) == []
