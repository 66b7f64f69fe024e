"""
### ASR sweep: fix what Security Hub found

Pages through the Security Hub administrator's findings that are **FAILED** (or **WARNING**), **ACTIVE**
and **NEW** or **NOTIFIED**, routes each to the playbook of its control, and fixes the
resources in parallel: one task group per control, its fix task mapped over batches of
resources per account and region. Every outcome is written back to Security Hub
(**RESOLVED**, or **NOTIFIED** with the reason) and into a run report.

Configure with `ASR_*` environment variables (see the README); the form below narrows
or overrides them for one run.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag

from asr import notify, pipeline, tasks
from asr.config import sweep_schedule

DAG_ID = "asr_sweep"
SCHEDULE = sweep_schedule()  # None: by hand only


@dag(
    dag_id=DAG_ID,
    schedule=SCHEDULE,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    on_failure_callback=notify.notify_failure,
    tags=["asr", "security-hub"],
    params={
        "controls": pipeline.playbook_choice("Only these playbooks (empty: all)."),
        **pipeline.common_params(),
    },
)
def asr_sweep() -> None:
    pipeline.remediation(tasks.ingest())


asr_sweep()
