"""
### ASR remediate: fix the findings you pick

Pick findings by id, rerun the failures of an earlier run, or narrow by control,
account, region and resource (ARN or id). Each finding is read again from Security Hub
and fixed only if it is still **FAILED** (or **WARNING**), **ACTIVE** and **NEW** or **NOTIFIED**. A
picked finding that no playbook can fix is marked **NOTIFIED** with the reason.

Tick **Dry run** to see what would change without changing anything. To retry one
batch that failed, clear its mapped `fix` task instance in the grid.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag

from asr import notify, pipeline, tasks

DAG_ID = "asr_remediate"


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    doc_md=__doc__,
    on_failure_callback=notify.notify_failure,
    tags=["asr", "security-hub"],
    params={
        "finding_ids": pipeline.finding_id_list("Security Hub finding ids (ARNs), one per line."),
        "rerun_failures_of": pipeline.run_reference(
            "Rerun the failures of run",
            "An earlier run (`<dag_id>/<run_id>`, or its run id) whose FAILED and NOT_RUN findings, "
            "and NOT_APPROVED ones whose approval request timed out, to redo; those a person "
            "rejected since stay held (name them by id to fix them now).",
        ),
        "controls": pipeline.playbook_choice("Findings of these playbooks' controls."),
        "resources": pipeline.string_list(
            "Resources",
            "Only findings on these resources (ARN as in the finding, or the resource id).",
            minLength=1,
            maxLength=2048,
        ),
        **pipeline.common_params(),
    },
)
def asr_remediate() -> None:
    pipeline.remediation(tasks.ingest_selected())


asr_remediate()
