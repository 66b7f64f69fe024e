"""
### ASR housekeeping: delete the files of old runs

Every run keeps its findings, batches, outcomes and reports in its folder of the data dir
(`ASR_DATA_DIR`): tens of MB for a sweep of 10,000 findings. Once a day this deletes the
files of the runs that ended and wrote nothing for `ASR_KEEP_RUNS_DAYS` days (90 by
default; 0 keeps them for ever). Each keeps only its `run.json`, marked pruned. The audit
journal, which rollbacks read, is never deleted here.

Tick **Dry run** to list what would be deleted.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag

from asr import notify, tasks


@dag(
    dag_id="asr_housekeeping",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    on_failure_callback=notify.notify_failure,
    tags=["asr", "housekeeping"],
    params={
        "dry_run": Param(False, type="boolean", title="Dry run", description="List what would be deleted."),
    },
)
def asr_housekeeping() -> None:
    tasks.prune_runs()


asr_housekeeping()
