"""The DAGs on a production-shaped Airflow: PostgreSQL metadata DB, Celery workers on Redis.

Real processes (scheduler, dag-processor, triggerer, API server, a Celery worker), the
machine's PostgreSQL and Redis, and the REST API as an operator would use it: JWT login,
trigger with conf, poll, clear one mapped task instance and watch it rerun; and one
Security Hub event through the triggerer; each run counted in Airflow's StatsD metrics by the
worker's task process. Everything started is stopped, pass or fail.
Select it alone with ``pytest -m cluster``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import redis
from helpers import Api, StatsdListener, free_port, signed_in_users, world_open

from asr.local import ADMIN_ACCOUNT, MEMBER_ACCOUNT
from asr.local.airflow import LocalAirflow
from asr.local.events import custom_action_event, put_events
from asr.local.seed import finding, import_findings, seed_one, seed_scenarios
from asr.setup import setup

pytestmark = [pytest.mark.cluster, pytest.mark.airflow]
REGION = "us-east-1"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS_DB = 7


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database for Airflow's metadata, dropped afterwards."""
    name = f"asr_cluster_{os.getpid()}"
    try:
        admin = psycopg2.connect(dbname="postgres", **PG)
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable on 127.0.0.1:5432 (.ci/run starts it): {exc}")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        cursor.execute(f"CREATE DATABASE {name}")
    yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


@pytest.fixture
def broker() -> str:
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable on 127.0.0.1:6379 (.ci/run starts it): {exc}")
    return f"redis://127.0.0.1:6379/{REDIS_DB}"


@pytest.fixture
def statsd() -> Iterator[StatsdListener]:
    listener = StatsdListener()
    yield listener
    listener.close()


def test_cluster_runs_sweeps_reruns_and_events(
    aws, database: str, broker: str, statsd: StatsdListener, tmp_path: Path
) -> None:
    fleet = seed_scenarios(aws)
    securityhub = aws.admin_client("securityhub", REGION)
    import_findings(securityhub, [finding(s) for s in fleet])
    made = setup(aws, REGION)

    home = tmp_path / "airflow"
    signed_in, passwords = signed_in_users(home, {"operator": "admin"})
    password = passwords["operator"]
    environment = {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
        "AIRFLOW__CELERY__BROKER_URL": broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + database,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
        **signed_in,
        "ASR_EVENTS_QUEUE_URL": made.queue_url,
        "ASR_EVENTS_POLL_SECONDS": "2",
        "ASR_EVENTS_WAIT_SECONDS": "1",
        "ASR_DATA_DIR": str(tmp_path / "runs"),
        "ASR_LOCAL_PORT": os.environ["ASR_LOCAL_PORT"],
        **statsd.environment,
    }
    with LocalAirflow(home, free_port(), environment) as airflow:
        airflow.prepare("asr_sweep", "asr_events")
        airflow.start("api-server", "scheduler", "dag-processor", "triggerer", "celery worker")
        api = Api(airflow.api_url, "operator", password)

        run_id = "cluster__sweep"
        conf = {"batch_size": 2, "accounts": [ADMIN_ACCOUNT, MEMBER_ACCOUNT]}
        api.call(
            "POST", "/dags/asr_sweep/dagRuns", {"dag_run_id": run_id, "logical_date": None, "conf": conf}
        )
        assert api.wait("asr_sweep", run_id) == "success", f"logs: {airflow.logs}"
        statuses = {f["Id"]: f["Workflow"]["Status"] for f in securityhub.get_findings()["Findings"]}
        assert set(statuses.values()) == {"RESOLVED"}
        assert not any(world_open(aws, s) for s in fleet if s.control_id == "EC2.13")
        report = json.loads((tmp_path / "runs" / "asr_sweep" / run_id / "report.json").read_text())
        assert sum(report["totals"].values()) == len(fleet)
        sent = counted(statsd.received("airflow.asr."))
        assert {name: n for name, n in sent.items() if name.startswith("airflow.asr.findings.")} == {
            f"airflow.asr.findings.asr_sweep.{control.replace('.', '_')}.{status}": count
            for control, row in report["by_control"].items()
            for status, count in row.items()
        }
        assert sent["airflow.asr.findings"] == len(fleet), "the tagged name, once per finding"
        assert sent["airflow.asr.securityhub.asr_sweep.updated"] == report["findings_updated"] == len(fleet)

        # An operator reruns one mapped batch: mark it failed, clear only failed instances.
        task = "remediate_EC2_13.fix"
        mapped = api.call("GET", f"/dags/asr_sweep/dagRuns/{run_id}/taskInstances/{task}/listMapped")
        first = mapped["task_instances"][0]
        api.call(
            "PATCH",
            f"/dags/asr_sweep/dagRuns/{run_id}/taskInstances/{task}/{first['map_index']}",
            {"new_state": "failed"},
        )
        cleared = api.call(
            "POST",
            "/dags/asr_sweep/clearTaskInstances",
            {
                "dry_run": False,
                "dag_run_id": run_id,
                "task_ids": [[task, first["map_index"]]],
                "only_failed": True,
                "reset_dag_runs": True,
            },
        )
        assert [ti["task_id"] for ti in cleared["task_instances"]] == [task]
        assert api.wait("asr_sweep", run_id) == "success"
        again = api.call("GET", f"/dags/asr_sweep/dagRuns/{run_id}/taskInstances/{task}/{first['map_index']}")
        assert again["state"] == "success"
        assert again["try_number"] == first["try_number"] + 1

        # One event through the triggerer: a new open group, a custom action on its finding.
        late = seed_one(aws, "EC2.13", MEMBER_ACCOUNT, REGION, 99)
        late_finding = finding(late)
        import_findings(securityhub, [late_finding])
        put_events(
            aws.admin_client("events", REGION),
            [custom_action_event([late_finding], made.action_target_arn, ADMIN_ACCOUNT, REGION)],
        )
        event_run = airflow.wait("asr_events", timeout=300)
        assert event_run["state"] == "success", f"logs: {airflow.logs}"
        assert not world_open(aws, late)
        # The rerun above ran no report again: nothing more of asr_sweep was counted.
        assert counted(statsd.received("airflow.asr.")) == {
            "airflow.asr.findings": 1,
            "airflow.asr.findings.asr_events.EC2_13.REMEDIATED": 1,
            "airflow.asr.securityhub": 1,
            "airflow.asr.securityhub.asr_events.updated": 1,
        }
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _is_ours(p, home)]
    assert leftovers == [], "every process the test started must be gone"


def counted(lines: list[str]) -> dict[str, int]:
    """StatsD counter lines (``name:count|c``) added up by name."""
    totals: dict[str, int] = {}
    for line in lines:
        name, _, rest = line.partition(":")
        totals[name] = totals.get(name, 0) + int(rest.split("|")[0])
    return totals


def _is_ours(proc: Path, home: Path) -> bool:
    try:
        return str(home) in (proc / "environ").read_bytes().decode(errors="replace")
    except OSError:
        return False
