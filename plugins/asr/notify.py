"""Notifications to an Amazon SNS topic: each run's summary, approvals waiting, failed runs.

The topic is ``ASR_SNS_TOPIC_ARN`` (unset: nothing is sent); it is published to with the
Airflow connection ``ASR_AWS_CONN_ID`` (default ``aws_default``), in the topic's own
region. Subscribe e-mail, chat or a queue to the topic.

A notification is never allowed to fail what it reports on: publishing errors are
logged and swallowed, and the functions say whether they sent. DAG files import this
module for ``notify_failure``, so it imports nothing heavy at module level.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from typing import Any

from asr.config import SNS_TOPIC_RE, env_value

log = logging.getLogger(__name__)

TOPIC_ENV = "ASR_SNS_TOPIC_ARN"
CONN_ENV = "ASR_AWS_CONN_ID"
# SNS: subjects are one line of printable ASCII shorter than 100 characters.
SUBJECT_LIMIT = 99
# Failed tasks named in a failure notification: a fleet-wide failure fails thousands of mapped
# fix tasks, and SNS takes 256 KB a message at most.
FAILED_SHOWN = 50


def run_page(dag_id: str, run_id: str, tab: str = "") -> str | None:
    """The address of a run's page in the Airflow UI (or of one of its tabs), when
    ``[api] base_url`` says where the UI is; else None: Airflow cannot know its own address
    behind a proxy, and a link to localhost in an e-mail reaches no one."""
    from urllib.parse import quote

    from airflow.sdk.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    if not base:
        return None
    page = f"{base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    return f"{page}/{tab}" if tab else page


def topic_arn(environ: Mapping[str, str] | None = None) -> str | None:
    """The configured topic, or None when notifications are off."""
    value = (os.environ if environ is None else environ).get(TOPIC_ENV, "").strip()
    return value or None


def subject_line(text: str) -> str:
    """Text SNS accepts as a subject: printable ASCII, one line, under 100 characters."""
    line = "".join(c if " " <= c <= "~" else " " for c in " ".join(text.split()))
    return line if len(line) <= SUBJECT_LIMIT else line[: SUBJECT_LIMIT - 3] + "..."


def publish(topic: str, aws_conn_id: str, subject: str, message: str) -> bool:
    """Publish one message; log, never raise, when it cannot be sent."""
    match = SNS_TOPIC_RE.match(topic)
    if not match:
        log.error("Not notifying: %s=%r is not an SNS topic ARN", TOPIC_ENV, topic)
        return False
    try:
        from airflow.providers.amazon.aws.hooks.sns import SnsHook

        hook = SnsHook(aws_conn_id=aws_conn_id, region_name=match["region"])
        fifo = {}
        if topic.endswith(".fifo"):  # a FIFO topic refuses a message without a group
            digest = hashlib.sha256(f"{subject}\n{message}".encode()).hexdigest()
            fifo = {"message_group_id": "asr", "message_deduplication_id": digest}
        hook.publish_to_target(target_arn=topic, message=message, subject=subject_line(subject), **fifo)
    except Exception:
        log.exception("Could not publish %r to %s", subject, topic)
        return False
    log.info("Published %r to %s", subject, topic)
    return True


def send_run_summary(
    settings_topic_arn: str | None,
    aws_conn_id: str,
    report: dict[str, Any],
    report_location: str,
    report_page: str | None = None,
) -> bool:
    """Publish a run's summary and where its full report is: its file, and its page in the
    Airflow UI (``run_page``) when known; False when off or not sent."""
    from asr import report as run_report

    if not settings_topic_arn:
        log.info("No %s configured; no run summary sent", TOPIC_ENV)
        return False
    subject = run_report.headline(report, limit=SUBJECT_LIMIT)
    message = f"{run_report.summary(report)}\nFull report: {report_location}\n"
    if report_page:
        message += f"In Airflow: {report_page}\n"
    return publish(settings_topic_arn, aws_conn_id, subject, message)


def send_approval_request(
    settings_topic_arn: str | None, aws_conn_id: str, subject: str, body: str, where: str
) -> bool:
    """Tell the topic that a disruptive fix waits for a person: unanswered, a scheduled
    sweep's request lapses before the next sweep, so someone must hear of it."""
    if not settings_topic_arn:
        return False
    message = f"{body}\n\nAnswer in Airflow: {where}\n"
    return publish(settings_topic_arn, aws_conn_id, subject, message)


def failed_task_ids(context: Mapping[str, Any], dag_id: str, run_id: str) -> list[str]:
    """The run's failed tasks as Airflow has them, else the task the callback came with.

    Mapped task instances come as ``<task id>_<map index>``, as Airflow reports them.
    """
    try:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        states = RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=[run_id])
        failed = sorted(task for task, state in states.get(run_id, {}).items() if state == "failed")
        if failed:
            return failed
    except Exception as exc:  # outside a worker or the dag processor (dag.test) there is no one to ask
        log.info(
            "Could not ask Airflow for the failed tasks of %s %s (%s); naming the callback's task",
            dag_id,
            run_id,
            exc,
        )
    ti = context.get("ti") or context.get("task_instance")
    return [ti.task_id] if getattr(ti, "task_id", None) else []


def _attribute(owner: Any, name: str) -> Any:
    """An attribute that may be missing or computed (and fail): a notification takes what it can."""
    try:
        return getattr(owner, name, None)
    except Exception:
        return None


def notify_failure(context: Mapping[str, Any]) -> None:
    """``on_failure_callback`` for DAGs (or tasks): publish which run failed, its failed tasks
    and the log URL. Never raises, so the real failure stays what Airflow shows."""
    try:
        topic = topic_arn()
        if not topic:
            return
        dag_run = context.get("dag_run")
        ti = context.get("ti") or context.get("task_instance")
        dag_id = str(
            _attribute(context.get("dag"), "dag_id")
            or _attribute(dag_run, "dag_id")
            or _attribute(ti, "dag_id")
            or "?"
        )
        run_id = str(
            context.get("run_id") or _attribute(dag_run, "run_id") or _attribute(ti, "run_id") or "?"
        )
        failed = failed_task_ids(context, dag_id, run_id)
        reason = context.get("reason")
        shown = failed[:FAILED_SHOWN] + (
            [f"and {len(failed) - FAILED_SHOWN} more"] if len(failed) > FAILED_SHOWN else []
        )
        lines = [
            f"Run {run_id} of DAG {dag_id} failed" + (f" ({reason})." if reason else "."),
            f"Failed tasks: {', '.join(shown) or 'unknown'}",
        ]
        if log_url := _attribute(ti, "log_url"):
            lines.append(f"Log: {log_url}")
        conn_id = env_value(CONN_ENV, "aws_default")
        publish(topic, conn_id, f"ASR: {dag_id} failed: run {run_id}", "\n".join(lines) + "\n")
    except Exception:
        log.exception("Could not send the failure notification")
