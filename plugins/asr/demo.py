"""``make demo``: the seed scenarios fixed by a real Airflow sweep, end to end.

Starts the local stand-in, seeds it, runs ``asr_sweep`` through Airflow's own
scheduler, dag-processor and API server (LocalExecutor, SQLite under a project-local
``AIRFLOW_HOME``), prints what happened to each finding as Security Hub and the
resources now say, and stops everything it started.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from asr import local
from asr.aws import Clients
from asr.config import Settings, env_number
from asr.playbooks import registry
from asr.report import table
from asr.securityhub import iter_findings, queries_by_id

DAG_ID = "asr_sweep"
RUN_TIMEOUT = 600
PROJECT = Path(__file__).resolve().parents[2]


def findings_now(aws: Any, settings: Settings, finding_ids: list[str]) -> dict[str, str]:
    client = aws.admin_client("securityhub", settings.securityhub_region)
    return {f["Id"]: f["Workflow"]["Status"] for f in iter_findings(client, queries_by_id(finding_ids))}


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
        print(f"not acted on: {rejected['named']}: {rejected['error']}")
    return good


def run() -> int:
    from asr.cli import local_context
    from asr.local import seed as seeding
    from asr.local.airflow import LocalAirflow
    from asr.store import RunStore

    local.use_test_credentials()
    data_dir = PROJECT / ".asr" / "runs"
    port = int(env_number("ASR_AIRFLOW_PORT", 28080, minimum=1, maximum=65535))
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
        airflow = stack.enter_context(
            # The demo runs unattended: its disruptive fixes (EC2.13, RDS.5, EC2.2, S3.1) are approved.
            LocalAirflow(PROJECT / ".airflow", port, {"ASR_DATA_DIR": str(data_dir), "ASR_AUTO_APPROVE": "*"})
        )
        airflow.prepare(DAG_ID)
        airflow.start("api-server", "scheduler", "dag-processor")
        run_id = f"demo__{time.strftime('%Y%m%dT%H%M%S')}"
        airflow.trigger(DAG_ID, run_id)
        print(f"Triggered {DAG_ID} run {run_id}; waiting for it (logs: {airflow.logs}) ...")
        state = airflow.wait(DAG_ID, run_id, RUN_TIMEOUT)["state"]
        print(f"Run {run_id}: {state}\n")

        settings = Settings.from_env({"ASR_DATA_DIR": str(data_dir)})
        store = RunStore.for_run(settings.data_dir, DAG_ID, run_id)
        report = store.read_json("report.json")
        good = show(report, aws, settings) and state == "success"
        print(f"\nReport: {store.path('report.html')}")
        print("Every finding remediated and RESOLVED." if good else "Some findings were not remediated.")
        return 0 if good else 1
