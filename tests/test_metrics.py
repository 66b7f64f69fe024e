"""Runs counted in Airflow's metrics: a real StatsD client (Airflow's own set-up of it, as
``[metrics]`` configures it) sending to a UDP socket the test reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import StatsdListener

from asr import metrics
from asr.local import MEMBER_ACCOUNT
from asr.store import RunStore

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


def report(by_control: dict[str, dict[str, int]], updated: int = 0, not_taken: int = 0) -> dict[str, Any]:
    """The parts of a run report (``asr.report.build``) the metrics read."""
    return {
        "by_control": by_control,
        "findings_updated": updated,
        "writeback_failures": [{"Id": f"f{n}"} for n in range(not_taken)],
    }


def test_legacy_names_spell_the_tags_out_in_what_a_metric_name_may_hold() -> None:
    tags = (("dag_id", "asr_sweep"), ("control", "EC2.13"), ("status", "REMEDIATED"))
    assert metrics.legacy_name(metrics.FINDINGS, tags) == "asr.findings.asr_sweep.EC2_13.REMEDIATED"
    odd = (("dag_id", "team.dag"), ("control", "(unknown)"), ("status", "REJECTED"))
    assert metrics.legacy_name(metrics.FINDINGS, odd) == "asr.findings.team_dag.unknown.REJECTED"


def test_counters_are_findings_by_control_and_status_and_security_hub_s_answers() -> None:
    counted = metrics.counters(
        "asr_sweep", report({"EC2.13": {"REMEDIATED": 3, "FAILED": 0}, "S3.1": {"NOT_APPROVED": 1}}, 4, 1)
    )
    assert {metrics.legacy_name(*key): n for key, n in counted.items()} == {
        "asr.findings.asr_sweep.EC2_13.REMEDIATED": 3,
        "asr.findings.asr_sweep.S3_1.NOT_APPROVED": 1,
        "asr.securityhub.asr_sweep.updated": 4,
        "asr.securityhub.asr_sweep.not_taken": 1,
    }


def test_a_report_made_again_sends_only_what_grew(statsd: StatsdListener, tmp_path: Path) -> None:
    """A person reruns a run's failures, and its report is made again: the fixed finding is
    counted, the failure it was is not taken back, and nothing else is counted twice."""
    store = RunStore(tmp_path)
    first = report({"EC2.13": {"REMEDIATED": 2, "FAILED": 1}}, updated=3)
    assert metrics.send(store, "asr_sweep", first) == {
        "asr.findings.asr_sweep.EC2_13.REMEDIATED": 2,
        "asr.findings.asr_sweep.EC2_13.FAILED": 1,
        "asr.securityhub.asr_sweep.updated": 3,
    }
    assert sorted(statsd.received()) == sorted(
        [
            "airflow.asr.findings:2|c",
            "airflow.asr.findings.asr_sweep.EC2_13.REMEDIATED:2|c",
            "airflow.asr.findings:1|c",
            "airflow.asr.findings.asr_sweep.EC2_13.FAILED:1|c",
            "airflow.asr.securityhub:3|c",
            "airflow.asr.securityhub.asr_sweep.updated:3|c",
        ]
    )
    assert metrics.send(store, "asr_sweep", first) == {}
    assert statsd.received() == []

    rerun = report({"EC2.13": {"REMEDIATED": 3}}, updated=4)
    assert metrics.send(store, "asr_sweep", rerun) == {
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
    assert store.read_json(metrics.SENT)["asr.findings.asr_sweep.EC2_13.FAILED"] == 1


def test_tags_go_out_where_the_backend_takes_them_and_legacy_names_can_be_turned_off(
    statsd: StatsdListener, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """InfluxDB-style StatsD tags, and ``legacy_names_on`` off: the tagged name alone."""
    from airflow.sdk._shared.observability.metrics import stats
    from airflow.sdk.observability.metrics import stats_utils

    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED", "True")
    monkeypatch.setenv("AIRFLOW__METRICS__LEGACY_NAMES_ON", "False")
    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)
    metrics.send(RunStore(tmp_path), "asr_events", report({"S3.1": {"NOT_APPROVED": 1}}))
    tagged = "airflow.asr.findings,dag_id=asr_events,control=S3.1,status=NOT_APPROVED:1|c"
    assert statsd.received() == [tagged]


def test_nothing_is_sent_or_recorded_for_a_run_that_counted_nothing(
    statsd: StatsdListener, tmp_path: Path
) -> None:
    store = RunStore(tmp_path)
    assert metrics.send(store, "asr_sweep", report({})) == {}
    assert statsd.received() == []
    assert not store.path(metrics.SENT).exists()


@pytest.mark.airflow
def test_a_sweep_counts_its_findings_in_airflow_s_metrics(
    aws: Any, airflow_db: None, statsd: StatsdListener
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from asr.config import Settings
    from asr.local.seed import finding, import_findings, seed_one

    securityhub = aws.admin_client("securityhub", REGION)
    seeded = [seed_one(aws, "EC2.13", MEMBER_ACCOUNT, REGION, n) for n in range(2)]
    import_findings(securityhub, [finding(s) for s in seeded])
    run = DagBag(dag_folder=str(DAGS / "asr_sweep.py")).dags["asr_sweep"].test()
    assert run.state == "success"
    assert sorted(statsd.received("airflow.asr.")) == sorted(
        [
            "airflow.asr.findings:2|c",
            "airflow.asr.findings.asr_sweep.EC2_13.REMEDIATED:2|c",
            "airflow.asr.securityhub:2|c",
            "airflow.asr.securityhub.asr_sweep.updated:2|c",
        ]
    )
    store = RunStore.for_run(Settings.from_env().data_dir, "asr_sweep", run.run_id)
    assert store.read_json(metrics.SENT) == {
        "asr.findings.asr_sweep.EC2_13.REMEDIATED": 2,
        "asr.securityhub.asr_sweep.updated": 2,
    }
