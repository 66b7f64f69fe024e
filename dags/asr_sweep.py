"""
### ASR sweep: fix what Security Hub found

Pages through the Security Hub administrator's findings that are **FAILED**, **ACTIVE**
and **NEW** or **NOTIFIED**, routes each to the playbook of its control, and fixes the
resources in parallel: one task group per control, its fix task mapped over batches of
resources per account and region. Every outcome is written back to Security Hub
(**RESOLVED**, or **NOTIFIED** with the reason) and into a run report.

Configure with `ASR_*` environment variables (see the README); the form below narrows
or overrides them for one run.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Param, TaskGroup, dag

from asr import tasks
from asr.operators import AutomationFixOperator
from asr.playbooks import registry

DAG_ID = "asr_sweep"
SCHEDULE = os.environ.get("ASR_SWEEP_SCHEDULE", "@hourly")


@dag(
    dag_id=DAG_ID,
    schedule=None if SCHEDULE.lower() == "none" else SCHEDULE,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["asr", "security-hub"],
    params={
        "controls": Param(
            [],
            type="array",
            items={"type": "string", "enum": [p.control_id for p in registry()]},
            title="Controls",
            description="Only these playbooks (empty: all).",
        ),
        "accounts": Param(
            [],
            type="array",
            items={"type": "string", "pattern": r"^\d{12}$"},
            title="Accounts",
            description="Only these 12-digit account ids (empty: ASR_ACCOUNTS, or every account).",
        ),
        "regions": Param(
            [],
            type="array",
            items={"type": "string", "pattern": r"^[a-z]{2}(-[a-z]+)+-\d$"},
            title="Regions",
            description="Only resources in these regions (empty: ASR_REGIONS, or every region).",
        ),
        "batch_size": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=1000,
            title="Batch size",
            description="Resources per mapped fix task (empty: ASR_BATCH_SIZE, default 50).",
        ),
    },
)
def asr_sweep() -> None:
    batches = tasks.plan(tasks.ingest())
    chosen = tasks.choose_playbooks(batches)
    groups = []
    for playbook in registry():
        with TaskGroup(group_id=f"remediate_{playbook.group_id}", tooltip=playbook.title) as group:
            selected = tasks.select_batches(batches, playbook.control_id)
            if playbook.ssm_document:
                AutomationFixOperator.partial(
                    task_id="fix", map_index_template="{{ task.batch['batch_id'] }}"
                ).expand(batch=selected)
            else:
                tasks.fix.expand(batch=selected)
        chosen >> group
        groups.append(group)
    written = tasks.write_back()
    reported = tasks.report()
    groups >> written >> reported
    [*groups, written, reported] >> tasks.watcher()


asr_sweep()
