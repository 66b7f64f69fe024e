"""Faults a sweep survives, each through a whole ``dag.test()`` run against the stand-in."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
import requests
from test_sweep import dag_bag

from asr import local
from asr.config import Settings
from asr.local import MEMBER_ACCOUNT, throttling
from asr.local.seed import finding, import_findings, seed_one
from asr.securityhub import iter_findings, queries_by_id
from asr.store import RunStore

REGION = "us-east-1"
DENIED = "333333333333"


@pytest.fixture
def faults(aws):  # type: ignore[no-untyped-def]
    """The stand-in, with every fault turned off again after the test."""
    yield aws
    throttling.disable()
    local.deny_accounts([])


def seed_groups(aws: Any, account: str, count: int) -> list[dict[str, Any]]:
    findings = [finding(seed_one(aws, "EC2.19", account, REGION, n)) for n in range(count)]
    import_findings(aws.admin_client("securityhub", REGION), findings)
    return findings


def workflow_of(aws: Any, findings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    client = aws.admin_client("securityhub", REGION)
    return {f["Id"]: f for f in iter_findings(client, queries_by_id([f["Id"] for f in findings]))}


def sweep() -> Any:
    run = dag_bag().dags["asr_sweep"].test()
    assert run.state == "success"
    return run


def refused(snapshot: dict[str, Any], rule: str) -> int:
    """How many calls of one API (``service:Action``) the stand-in's throttle refused."""
    service, _, action = rule.partition(":")
    return sum(
        c["throttled"] for c in snapshot["counts"] if (c["service"], c["api_class"]) == (service, action)
    )


@pytest.mark.airflow
def test_write_back_throttled_for_a_while_is_retried_and_loses_nothing(faults, airflow_db: None) -> None:
    """The throttle is lifted only once write-back has been refused (then a little later),
    never on a clock: a timer could lift it before write-back ever ran, proving nothing."""
    findings = seed_groups(faults, MEMBER_ACCOUNT, 3)
    rule = "securityhub:BatchUpdateFindings"
    throttling.enable(**{rule: (0, 0, "action")})
    done = threading.Event()
    refusals: list[int] = []

    def lift_once_refused() -> None:
        deadline = time.monotonic() + 600
        while not done.is_set() and time.monotonic() < deadline:
            if refused(throttling.stats(), rule):
                done.wait(3)  # refused for a while: the retries must outlast it
                break
            done.wait(0.2)
        refusals.append(refused(throttling.disable(), rule))

    lifter = threading.Thread(target=lift_once_refused, daemon=True)
    lifter.start()
    try:
        run = sweep()
    finally:
        done.set()
        lifter.join(30)
    assert refusals and refusals[0] >= 1, "write-back was never throttled"
    assert {f["Workflow"]["Status"] for f in workflow_of(faults, findings).values()} == {"RESOLVED"}
    store = RunStore.for_run(Settings.from_env().data_dir, "asr_sweep", run.run_id)
    assert store.read_json("report.json")["totals"] == {"REMEDIATED": 3}


@pytest.mark.airflow
def test_an_account_whose_role_cannot_be_assumed_is_notified_and_the_others_proceed(
    faults, airflow_db: None
) -> None:
    fixable = seed_groups(faults, MEMBER_ACCOUNT, 2)
    denied = seed_groups(faults, DENIED, 2)
    local.deny_accounts([DENIED])
    sweep()
    now = workflow_of(faults, fixable + denied)
    assert [now[f["Id"]]["Workflow"]["Status"] for f in fixable] == ["RESOLVED", "RESOLVED"]
    for f in denied:
        assert now[f["Id"]]["Workflow"]["Status"] == "NOTIFIED"
        assert "cannot assume" in now[f["Id"]]["Note"]["Text"]
        assert "AccessDenied" in now[f["Id"]]["Note"]["Text"]


@pytest.mark.airflow
def test_findings_of_a_fix_task_that_failed_its_retries_are_reported_not_run_and_can_be_rerun(
    faults, airflow_db: None, monkeypatch
) -> None:
    from asr import sweep as steps

    findings = seed_groups(faults, MEMBER_ACCOUNT, 2)

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("the fix task died")

    monkeypatch.setattr(steps, "run_batch", broken)
    run = dag_bag().dags["asr_sweep"].test()
    assert run.state == "failed"
    # Both did their part, and failed: a "failed tasks only" clear reruns them with the fix.
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert (states["write_back"], states["report"]) == ("failed", "failed")
    report = RunStore.for_run(Settings.from_env().data_dir, "asr_sweep", run.run_id).read_json("report.json")
    assert report["totals"] == {"NOT_RUN": 2}
    assert {o["workflow_status"] for o in report["outcomes"]} == {None}
    assert {f["Workflow"]["Status"] for f in workflow_of(faults, findings).values()} == {"NEW"}

    # A rerun of the run's failures takes them up again, though they have no outcome saved.
    monkeypatch.undo()
    rerun = dag_bag().dags["asr_remediate"].test(run_conf={"rerun_failures_of": f"asr_sweep/{run.run_id}"})
    assert rerun.state == "success"
    store = RunStore.for_run(Settings.from_env().data_dir, "asr_remediate", rerun.run_id)
    assert store.read_json("report.json")["totals"] == {"REMEDIATED": 2}
    assert {f["Workflow"]["Status"] for f in workflow_of(faults, findings).values()} == {"RESOLVED"}


@pytest.mark.airflow
def test_throttled_writes_are_paced_and_retried_and_no_resource_fails(faults, airflow_db: None) -> None:
    findings = seed_groups(faults, MEMBER_ACCOUNT, 12)
    throttling.enable(ec2_write=(2, 4))
    local.served_requests(clear=True)
    run = sweep()
    stats = throttling.stats()
    assert stats["throttled"] > 0
    assert {f["Workflow"]["Status"] for f in workflow_of(faults, findings).values()} == {"RESOLVED"}
    store = RunStore.for_run(Settings.from_env().data_dir, "asr_sweep", run.run_id)
    assert store.read_json("report.json")["totals"] == {"REMEDIATED": 12}
    revokes = Counter(
        r["resource"] for r in local.served_requests() if r["action"] == "RevokeSecurityGroupIngress"
    )
    assert len(revokes) == 12 and set(revokes.values()) == {1}


def outage_after_first_write(seconds: float, timeout: float = 120) -> None:
    """Take the stand-in down as soon as the run has changed its first resource."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r["action"] == "RevokeSecurityGroupIngress" for r in local.served_requests()):
            local.outage(seconds)
            return
        time.sleep(0.05)


@pytest.mark.airflow
def test_an_outage_of_the_endpoint_mid_run_is_ridden_out(faults, airflow_db: None) -> None:
    findings = seed_groups(faults, MEMBER_ACCOUNT, 8)
    throttling.enable(ec2_write=(1, 2))  # slow enough for the outage to land mid-batch
    local.served_requests(clear=True)
    watcher = threading.Thread(target=outage_after_first_write, args=(5,), daemon=True)
    watcher.start()
    run = sweep()
    watcher.join()
    refused = requests.get(f"{local.endpoint_url()}/moto-api/asr/outage", timeout=10).json()["refused"]
    assert refused > 0
    assert {f["Workflow"]["Status"] for f in workflow_of(faults, findings).values()} == {"RESOLVED"}
    store = RunStore.for_run(Settings.from_env().data_dir, "asr_sweep", run.run_id)
    assert store.read_json("report.json")["totals"] == {"REMEDIATED": 8}
    revokes = Counter(
        r["resource"] for r in local.served_requests() if r["action"] == "RevokeSecurityGroupIngress"
    )
    assert len(revokes) == 8 and set(revokes.values()) == {1}


@pytest.mark.airflow
def test_a_write_refused_while_its_resource_is_busy_is_tried_again_in_a_sweep(
    faults, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 refuses a bucket's write while another write to it is under way (another control's
    fix of the bucket, a person's change): OperationAborted, which botocore does not retry.
    Through a whole sweep the fix tries again, from a new read, and the finding is RESOLVED."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    findings = [finding(seed_one(faults, "S3.5", MEMBER_ACCOUNT, REGION, n)) for n in range(2)]
    import_findings(faults.admin_client("securityhub", REGION), findings)
    real, refused = BaseClient._make_api_call, []

    def busy_once(self: Any, name: str, params: dict[str, Any]) -> Any:
        if name == "PutBucketPolicy" and not refused:
            refused.append(params["Bucket"])
            message = "A conflicting conditional operation is currently in progress against this resource."
            raise ClientError({"Error": {"Code": "OperationAborted", "Message": message}}, name)
        return real(self, name, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", busy_once)
    run = sweep()
    assert len(refused) == 1
    assert {f["Workflow"]["Status"] for f in workflow_of(faults, findings).values()} == {"RESOLVED"}
    store = RunStore.for_run(Settings.from_env().data_dir, "asr_sweep", run.run_id)
    assert store.read_json("report.json")["totals"] == {"REMEDIATED": 2}
