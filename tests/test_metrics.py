"""Runs counted in Airflow's metrics: a real StatsD client (Airflow's own set-up of it, as
``[metrics]`` configures it) sending to a UDP socket the test reads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import StatsdListener

from asr import metrics
from asr.local import MEMBER_ACCOUNT
from asr.store import RunStore
from asr.sweep import WRITTEN_BACK

DAGS = Path(__file__).resolve().parents[1] / "dags"
REGION = "us-east-1"


@pytest.fixture
def statsd(monkeypatch: pytest.MonkeyPatch) -> Iterator[StatsdListener]:
    """Airflow's StatsD metrics on, pointed at the listener, set up as a task process sets
    them up (``task_runner.main``): ``dag.test()`` runs tasks in this process."""
    from airflow.sdk._shared.observability.metrics import stats
    from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger
    from airflow.sdk.observability.metrics import stats_utils

    listener = StatsdListener()
    for name, value in listener.environment.items():
        monkeypatch.setenv(name, value)
    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=True)
    try:
        yield listener
    finally:
        stats.initialize(factory=NoStatsLogger, export_legacy_names=True)
        listener.close()


def outcome(finding_id: str, status: str, control: str = "EC2.13") -> dict[str, Any]:
    """The parts of a report's outcome the metrics read."""
    return {"finding_id": finding_id, "playbook": control, "control_id": control, "status": status}


def report(
    *outcomes: dict[str, Any],
    rejected: tuple[dict[str, Any], ...] = (),
    refused: int = 0,
    unsupported: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The parts of a run report (``asr.report.build``) the metrics read."""
    return {
        "outcomes": list(outcomes),
        "rejected": list(rejected),
        "unsupported": unsupported or {},
        "writeback_failures": [
            {"FindingIdentifier": {"Id": f"r{n}"}, "ErrorCode": "X"} for n in range(refused)
        ],
    }


def written(store: RunStore, settled: dict[str, str], unchanged: tuple[str, ...] = ()) -> None:
    """Write-back's record: what Security Hub shows of each finding, and which were so already."""
    store.write_json(WRITTEN_BACK, {"settled": settled, "unchanged": list(unchanged)})


def test_tag_values_and_legacy_names_hold_only_what_metric_names_may() -> None:
    assert metrics.tag("(unknown)") == "unknown"
    assert metrics.tag("EC2.13") == "EC2.13"
    tags = (("dag_id", "asr_sweep"), ("control", "EC2.13"), ("status", "REMEDIATED"))
    assert metrics.legacy_name(metrics.FINDINGS, tags) == "asr.findings.asr_sweep.EC2_13.REMEDIATED"


def test_the_events_are_outcomes_rejections_unsupported_controls_and_security_hub_s_answers() -> None:
    run = report(
        outcome("f1", "REMEDIATED"),
        outcome("f2", "REMEDIATED"),
        outcome("f3", "NOT_APPROVED", "S3.1"),
        rejected=(
            {"finding_id": "f3", "reason": "has an outcome"},
            {"reason": "no Id"},
            {"pick_not_found": "x"},
        ),
        refused=1,
        unsupported={"Macie.99": 3, "Foo Bar/1": 1},
    )
    found = metrics.events("asr_sweep", run, {"settled": {"f1": "a", "f2": "b"}, "unchanged": ["f2"]})
    assert Counter(metrics.legacy_name(name, tags) for name, tags, _ in found) == {
        "asr.findings.asr_sweep.EC2_13.REMEDIATED": 2,
        "asr.findings.asr_sweep.S3_1.NOT_APPROVED": 1,
        "asr.findings.asr_sweep.unknown.REJECTED": 1,
        "asr.findings.asr_sweep.Macie_99.UNSUPPORTED": 3,
        "asr.findings.asr_sweep.Foo_Bar_1.UNSUPPORTED": 1,
        "asr.securityhub.asr_sweep.updated": 1,
        "asr.securityhub.asr_sweep.not_taken": 1,
    }
    assert len({key for _, _, key in found}) == len(found), "each event is one of its own"


def test_a_report_made_again_sends_only_the_events_not_sent(statsd: StatsdListener, tmp_path: Path) -> None:
    """A person reruns a run's failures, and its report is made again: the fix and its update
    count; the failure and its first update are not taken back; nothing counts twice."""
    store = RunStore(tmp_path)
    written(store, {"f1": "RESOLVED fixed", "f2": "NOTIFIED failed"})
    first = report(outcome("f1", "REMEDIATED"), outcome("f2", "FAILED"))
    assert metrics.count_run(store, "asr_sweep", first) == {
        "asr.findings.asr_sweep.EC2_13.REMEDIATED": 1,
        "asr.findings.asr_sweep.EC2_13.FAILED": 1,
        "asr.securityhub.asr_sweep.updated": 2,
    }
    assert sorted(statsd.received()) == sorted(
        [
            "airflow.asr.findings:1|c",
            "airflow.asr.findings.asr_sweep.EC2_13.REMEDIATED:1|c",
            "airflow.asr.findings:1|c",
            "airflow.asr.findings.asr_sweep.EC2_13.FAILED:1|c",
            "airflow.asr.securityhub:2|c",
            "airflow.asr.securityhub.asr_sweep.updated:2|c",
        ]
    )
    assert metrics.count_run(store, "asr_sweep", first) == {}
    assert statsd.received() == []

    written(store, {"f1": "RESOLVED fixed", "f2": "RESOLVED fixed by the rerun"})
    rerun = report(outcome("f1", "REMEDIATED"), outcome("f2", "REMEDIATED"))
    assert metrics.count_run(store, "asr_sweep", rerun) == {
        "asr.findings.asr_sweep.EC2_13.REMEDIATED": 1,
        "asr.securityhub.asr_sweep.updated": 1,
    }
    assert sorted(statsd.received()) == sorted(
        [
            "airflow.asr.findings:1|c",
            "airflow.asr.findings.asr_sweep.EC2_13.REMEDIATED:1|c",
            "airflow.asr.securityhub:1|c",
            "airflow.asr.securityhub.asr_sweep.updated:1|c",
        ]
    )


def test_unfixable_findings_are_recorded_as_a_count_per_control(
    statsd: StatsdListener, tmp_path: Path
) -> None:
    """An organisation may have 100,000 findings no playbook fixes: metrics.json keeps how many
    of each control were sent, not a digest each; a report made again sends only the rise."""
    store = RunStore(tmp_path)
    assert metrics.count_run(store, "asr_sweep", report(unsupported={"Macie.99": 3})) == {
        "asr.findings.asr_sweep.Macie_99.UNSUPPORTED": 3
    }
    assert store.read_json(metrics.SENT) == {"sent": [], "tallied": {"unsupported|Macie.99": 3}}
    assert metrics.count_run(store, "asr_sweep", report(unsupported={"Macie.99": 3})) == {}
    assert metrics.count_run(store, "asr_sweep", report(unsupported={"Macie.99": 5, "EC2.9": 1})) == {
        "asr.findings.asr_sweep.Macie_99.UNSUPPORTED": 2,
        "asr.findings.asr_sweep.EC2_9.UNSUPPORTED": 1,
    }
    assert store.read_json(metrics.SENT)["tallied"] == {"unsupported|Macie.99": 5, "unsupported|EC2.9": 1}


def test_a_run_cleared_whole_counts_its_new_pass(statsd: StatsdListener, tmp_path: Path) -> None:
    """The new pass (``sweep.start_over`` keeps metrics.json) met other findings, as many and
    with the same outcomes: they are new events."""
    store = RunStore(tmp_path)
    metrics.count_run(store, "asr_sweep", report(*(outcome(f"old{n}", "FAILED") for n in range(3))))
    statsd.received()
    again = report(*(outcome(f"new{n}", "FAILED") for n in range(3)))
    assert metrics.count_run(store, "asr_sweep", again) == {"asr.findings.asr_sweep.EC2_13.FAILED": 3}


def test_tags_go_out_where_the_backend_takes_them_and_legacy_names_can_be_turned_off(
    statsd: StatsdListener, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """InfluxDB-style StatsD tags, and ``legacy_names_on`` off: the tagged name alone, with
    tag values Airflow takes into a name (it drops a name with a parenthesis)."""
    from airflow.sdk._shared.observability.metrics import stats
    from airflow.sdk.observability.metrics import stats_utils

    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED", "True")
    monkeypatch.setenv("AIRFLOW__METRICS__LEGACY_NAMES_ON", "False")
    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)
    run = report(outcome("f1", "NOT_APPROVED", "S3.1"), rejected=({"reason": "no Id"},))
    metrics.count_run(RunStore(tmp_path), "asr_events", run)
    assert sorted(statsd.received()) == [
        "airflow.asr.findings,dag_id=asr_events,control=S3.1,status=NOT_APPROVED:1|c",
        "airflow.asr.findings,dag_id=asr_events,control=unknown,status=REJECTED:1|c",
    ]


def test_a_record_that_cannot_be_written_fails_nothing_and_sends_nothing(
    statsd: StatsdListener, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's report is written and its summary still to send: counting must not fail the
    step (a report step has no retries; a rollback's revert is made)."""
    store = RunStore(tmp_path)

    def refused(name: str, data: Any) -> None:
        raise PermissionError(f"{name}: access denied")

    monkeypatch.setattr(store, "write_json", refused)
    assert metrics.count_run(store, "asr_sweep", report(outcome("f1", "REMEDIATED"))) == {}
    assert statsd.received() == []


def test_nothing_is_sent_or_recorded_for_a_run_that_counted_nothing(
    statsd: StatsdListener, tmp_path: Path
) -> None:
    store = RunStore(tmp_path)
    assert metrics.count_run(store, "asr_sweep", report()) == {}
    assert statsd.received() == []
    assert not store.path(metrics.SENT).exists()


@pytest.mark.airflow
def test_a_sweep_and_its_rollback_are_counted_in_airflow_s_metrics(
    aws: Any, airflow_db: None, statsd: StatsdListener
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from asr.config import Settings
    from asr.local.seed import Seeded, finding, import_findings, seed_one

    securityhub = aws.admin_client("securityhub", REGION)
    seeded = [seed_one(aws, "EC2.13", MEMBER_ACCOUNT, REGION, n) for n in range(2)]
    account = f"AWS::::Account:{MEMBER_ACCOUNT}"
    unfixable = finding(Seeded("EC2.9", MEMBER_ACCOUNT, REGION, "AwsAccount", account))  # no playbook
    import_findings(securityhub, [*(finding(s) for s in seeded), unfixable])
    run = DagBag(dag_folder=str(DAGS / "asr_sweep.py")).dags["asr_sweep"].test()
    assert run.state == "success"
    assert sorted(statsd.received("airflow.asr.")) == sorted(
        [
            "airflow.asr.findings:2|c",
            "airflow.asr.findings.asr_sweep.EC2_13.REMEDIATED:2|c",
            "airflow.asr.findings:1|c",
            "airflow.asr.findings.asr_sweep.EC2_9.UNSUPPORTED:1|c",
            "airflow.asr.securityhub:2|c",
            "airflow.asr.securityhub.asr_sweep.updated:2|c",
        ]
    )
    store = RunStore.for_run(Settings.from_env().data_dir, "asr_sweep", run.run_id)
    record = store.read_json(metrics.SENT)
    assert len(record["sent"]) == 4, "two outcomes, two updates"
    assert record["tallied"] == {"unsupported|EC2.9": 1}, "the unfixable one, counted by its control"

    # Its rollback counts what it put back (its check before the approval counts nothing).
    dag = DagBag(dag_folder=str(DAGS / "asr_rollback.py")).dags["asr_rollback"]
    rollback = dag.test(run_conf={"run": f"asr_sweep/{run.run_id}"})
    assert rollback.state == "success"
    changes = RunStore.for_run(Settings.from_env().data_dir, "asr_rollback", rollback.run_id).read_json(
        "rollback.json"
    )["changes"]
    [action] = {c["action"] for c in changes}
    put_back = f"airflow.asr.rollbacks.asr_rollback.{action.replace('.', '_')}.REVERTED:2|c"
    assert sorted(statsd.received("airflow.asr.")) == sorted(["airflow.asr.rollbacks:2|c", put_back])
