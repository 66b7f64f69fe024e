"""
### ASR events: fix findings as Security Hub reports them

Runs when Security Hub events arrive on the SQS queue `asr setup` created (set
`ASR_EVENTS_QUEUE_URL`): **Remediate with ASR** custom actions a person chose in the
console, and **Imported** findings of controls whose playbook has automatic remediation
on. Events are hints: each named finding is read again and fixed only if it is still
**FAILED** (or **WARNING**), **ACTIVE** and **NEW** or **NOTIFIED**. Without a queue configured this DAG
has no schedule and nothing to fix: name findings by hand in `asr_remediate`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, AssetWatcher, dag

from asr import events, notify, pipeline, tasks
from asr.config import DEFAULT_AWS_CONN_ID, env_value, events_queue_url

DAG_ID = "asr_events"
QUEUE_URL = events_queue_url()


def event_asset(queue_url: str) -> Asset:
    from asr.triggers import SecurityHubEventsTrigger  # the SQS trigger brings boto3: only with a queue

    wait, pause = events.queue_polling()
    trigger = SecurityHubEventsTrigger(
        sqs_queue=queue_url,
        region_name=events.queue_region(queue_url),
        aws_conn_id=env_value("ASR_AWS_CONN_ID", DEFAULT_AWS_CONN_ID),
        max_messages=10,
        wait_time_seconds=wait,
        waiter_delay=pause,
    )
    return Asset("asr_security_hub_events", watchers=[AssetWatcher(name="asr_events_queue", trigger=trigger)])


EVENTS = event_asset(QUEUE_URL) if QUEUE_URL else None


@dag(
    dag_id=DAG_ID,
    schedule=[EVENTS] if EVENTS else None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # A run waiting for an approval (up to ASR_APPROVAL_TIMEOUT) holds a place, and Airflow
    # makes no event run while every place is held: more than Airflow's 16.
    max_active_runs=64,
    doc_md=__doc__,
    on_failure_callback=notify.notify_failure,
    tags=["asr", "security-hub", "events"],
    params=pipeline.common_params(),
)
def asr_events() -> None:
    # The asset is also an inlet: ingest takes the events Airflow left out of every run.
    ingest = tasks.ingest_events.override(inlets=[EVENTS]) if EVENTS else tasks.ingest_events
    pipeline.remediation(ingest())


asr_events()
