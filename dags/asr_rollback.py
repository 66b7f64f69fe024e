"""
### ASR rollback: put back what a run changed

Reads the audit journal of an earlier run (`asr_sweep`, `asr_remediate` or `asr_events`)
and, for each fix it made, restores the resource's recorded before-state, in the
resource's own account and region, then reads it back to check. Narrow it to some
controls or findings. A resource changed again since the fix is left alone and reported;
fixes that cannot be undone (a deleted password, a created trail) are reported with the
reason. Every revert is recorded in the run's journal too.

First it checks each change, changing nothing; then, unless `ASR_ROLLBACK_APPROVAL` is off,
it waits for a person (`ASR_APPROVERS`, when set) to approve what the check would put back:
undoing a fix re-opens what it closed. Only that is put back; Reject, or no answer, puts
nothing back.

Tick **Dry run** to see what would be put back without changing anything or asking. The
report is `rollback.json` and `rollback.md` in this run's folder of the data dir.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag

from asr import notify, pipeline, tasks
from asr.approvals import RollbackApproval

DAG_ID = "asr_rollback"


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    doc_md=__doc__,
    on_failure_callback=notify.notify_failure,
    tags=["asr", "security-hub", "rollback"],
    params={
        "run": pipeline.run_reference(
            "Run to roll back",
            "The run whose changes to undo: `<dag_id>/<run_id>`, or its run id.",
            required=True,
        ),
        "controls": pipeline.playbook_choice("Only the changes of these playbooks' controls (empty: all)."),
        "finding_ids": pipeline.finding_id_list("Only the changes made for these findings (empty: all)."),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Check each change and report what would be put back; change nothing.",
        ),
    },
)
def asr_rollback() -> None:
    tasks.check_rollback() >> RollbackApproval(task_id="approve") >> tasks.revert_run()


asr_rollback()
