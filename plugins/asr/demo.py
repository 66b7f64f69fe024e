"""``make demo``: the seed scenarios fixed by a real Airflow sweep, end to end.

Starts the local stand-in, seeds it, runs ``asr_sweep`` through Airflow's own
scheduler, dag-processor and API server (LocalExecutor, SQLite under a project-local
``AIRFLOW_HOME``), prints what happened to each finding as Security Hub and the
resources now say, and stops everything it started.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

from asr import local
from asr.aws import Clients
from asr.config import Settings
from asr.playbooks import registry
from asr.report import table
from asr.securityhub import FILTER_VALUES, iter_findings

DAG_ID = "asr_sweep"
RUN_TIMEOUT = 600
PROJECT = Path(__file__).resolve().parents[2]


def airflow_env(home: Path, api_port: int) -> dict[str, str]:
    """The environment every Airflow process of the demo shares."""
    secret_file = home / "jwt_secret"
    if not secret_file.exists():
        home.mkdir(parents=True, exist_ok=True)
        secret_file.write_text(secrets.token_urlsafe(32))
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API_AUTH__JWT_SECRET": secret_file.read_text(),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW_CONN_AWS_DEFAULT": local.airflow_connection(),
        "ASR_SWEEP_SCHEDULE": "none",
        "PYTHONWARNINGS": "ignore::UserWarning",
        "ASR_DATA_DIR": str(PROJECT / ".asr" / "runs"),
    }


def airflow(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def start(env: dict[str, str], logs: Path, stack: ExitStack, *command: str) -> None:
    log = open(logs / f"{command[0]}.log", "ab")  # noqa: SIM115 (closed by the stack)
    stack.callback(log.close)
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("airflow")), *command],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack.callback(_stop, proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)


def wait_for_run(env: dict[str, str], run_id: str) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        lines = airflow(env, "dags", "state", DAG_ID, run_id).split()
        state = lines[-1] if lines else None
        if state in ("success", "failed"):
            return state
        time.sleep(3)
    raise TimeoutError(f"{DAG_ID} run {run_id} did not finish within {RUN_TIMEOUT}s")


def findings_now(aws: Any, settings: Settings, finding_ids: list[str]) -> dict[str, str]:
    client = aws.admin_client("securityhub", settings.securityhub_region)
    queries = [
        {"Id": [{"Value": i, "Comparison": "EQUALS"} for i in finding_ids[n : n + FILTER_VALUES]]}
        for n in range(0, len(finding_ids), FILTER_VALUES)
    ]
    return {f["Id"]: f["Workflow"]["Status"] for f in iter_findings(client, queries)}


def compliant_now(aws: Any, outcome: dict[str, Any]) -> bool:
    """Read the resource back with its playbook's own check."""
    playbook = registry().playbooks[outcome["playbook"]]
    action = playbook.build_action()
    clients = Clients(aws, outcome["account_id"], outcome["region"])
    return not action.plan(action.read(clients, outcome["resource_id"]))


def show(report: dict[str, Any], aws: Any, settings: Settings) -> bool:
    outcomes = report["outcomes"]
    status = findings_now(aws, settings, [o["finding_id"] for o in outcomes])
    rows, good = [], bool(outcomes)
    for o in outcomes:
        fixed = compliant_now(aws, o)
        workflow = status.get(o["finding_id"], "?")
        good &= o["status"] == "REMEDIATED" and workflow == "RESOLVED" and fixed
        rows.append(
            [
                o["control_id"],
                o["account_id"],
                o["region"],
                o["resource_id"],
                o["status"],
                workflow,
                str(fixed),
            ]
        )
    header = ("control", "account", "region", "resource", "outcome", "finding", "compliant now")
    print(table(rows, header))
    for rejected in report["rejected"]:
        good = False
        print(f"not acted on: {rejected['finding_id']}: {rejected['error']}")
    return good


def run() -> int:
    from asr.cli import local_context
    from asr.local import seed as seeding
    from asr.store import RunStore

    local.use_test_credentials()
    home = PROJECT / ".airflow"
    env = airflow_env(home, int(os.environ.get("ASR_AIRFLOW_PORT", "28080")))
    logs = home / "demo-logs"
    logs.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        started_here = not local.is_up()
        local.up()
        if started_here:
            stack.callback(local.down)
        local.reset()
        aws = local_context()
        seeded = seeding.seed_scenarios(aws)
        seeding.import_findings(
            aws.admin_client("securityhub", "us-east-1"), [seeding.finding(s) for s in seeded]
        )
        print(f"Seeded {len(seeded)} misconfigured resources and their findings at {local.endpoint_url()}")

        print("Preparing Airflow (metadata DB under .airflow/) ...")
        airflow(env, "db", "migrate")
        with suppress(RuntimeError):  # a run left over from an interrupted demo must not resume
            airflow(env, "dags", "delete", DAG_ID, "--yes")
        airflow(env, "dags", "reserialize")
        airflow(env, "dags", "unpause", DAG_ID)
        for component in ("api-server", "scheduler", "dag-processor"):
            start(env, logs, stack, component)
        run_id = f"demo__{time.strftime('%Y%m%dT%H%M%S')}"
        airflow(env, "dags", "trigger", DAG_ID, "--run-id", run_id)
        print(f"Triggered {DAG_ID} run {run_id}; waiting for it (logs: {logs}) ...")
        state = wait_for_run(env, run_id)
        print(f"Run {run_id}: {state}\n")

        settings = Settings.from_env(env)
        store = RunStore.for_run(settings.data_dir, DAG_ID, run_id)
        report = store.read_json("report.json")
        good = show(report, aws, settings) and state == "success"
        print(f"\nReport: {store.path('report.md')}")
        print("Every finding remediated and RESOLVED." if good else "Some findings were not remediated.")
        return 0 if good else 1
