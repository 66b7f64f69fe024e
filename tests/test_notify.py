"""Notifications: run summaries and failed runs reach an SNS topic (here, through a queue)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from asr import notify, report

CONN = "aws_default"
REPORT: dict[str, Any] = {
    "run_id": "manual__2026-01-01T00:00:00+00:00",
    "totals": {"REMEDIATED": 7, "FAILED": 1},
    "findings_updated": 8,
    "writeback_failures": [],
    "outcomes": [
        {
            "control_id": "EC2.13",
            "account_id": "222222222222",
            "region": "us-east-1",
            "resource_id": "sg-0123",
            "status": "FAILED",
            "message": "AccessDenied: not authorized to perform ec2:RevokeSecurityGroupIngress",
        }
    ],
    "rejected": [],
}


@pytest.fixture
def subscribed(clean_aws: str) -> Iterator[tuple[str, Any]]:
    """An SNS topic with an SQS queue subscribed, in the account the connection acts as."""
    from airflow.providers.amazon.aws.hooks.sns import SnsHook
    from airflow.providers.amazon.aws.hooks.sqs import SqsHook

    sns = SnsHook(aws_conn_id=CONN).get_conn()
    sqs = SqsHook(aws_conn_id=CONN).get_conn()
    topic = sns.create_topic(Name="asr-notifications")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="asr-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["QueueArn"])

    def received() -> list[dict[str, Any]]:
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [json.loads(m["Body"]) for m in response.get("Messages", [])]

    yield topic, received


def test_run_summary_is_published_with_subject_and_report_location(subscribed: tuple[str, Any]) -> None:
    topic, received = subscribed
    assert notify.send_run_summary(topic, CONN, REPORT, "s3://reports/asr_sweep/run-1/report.html")
    [message] = received()
    assert message["TopicArn"] == topic
    assert message["Subject"] == "ASR run manual__2026-01-01T00:00:00+00:00: 7 remediated, 1 failed"
    body = message["Message"]
    assert body.startswith(report.summary(REPORT))
    assert "EC2.13 222222222222 us-east-1 sg-0123: AccessDenied" in body
    assert body.rstrip().endswith("Full report: s3://reports/asr_sweep/run-1/report.html")


def test_the_summary_links_the_run_s_report_tab_when_airflow_knows_its_address(
    subscribed: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    topic, received = subscribed
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    assert notify.run_page("asr_sweep", "manual__1") is None, "no address: no link to localhost"
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")
    page = notify.run_page("asr_sweep", "manual__2026-01-01T00:00:00+00:00", "plugin/asr-report")
    assert page == (
        "https://airflow.example.com/dags/asr_sweep/runs/manual__2026-01-01T00%3A00%3A00%2B00%3A00/plugin/asr-report"
    )
    assert notify.send_run_summary(topic, CONN, REPORT, "s3://reports/run-1/report.html", page)
    [message] = received()
    assert message["Message"].endswith(f"Full report: s3://reports/run-1/report.html\nIn Airflow: {page}\n")


def test_long_run_id_keeps_the_subject_within_sns_limits(subscribed: tuple[str, Any]) -> None:
    topic, received = subscribed
    long_run = REPORT | {"run_id": "scheduled__" + "x" * 200 + "\u00e9\nend"}
    assert notify.send_run_summary(topic, CONN, long_run, "report.html")
    [message] = received()
    assert len(message["Subject"]) <= 99
    assert message["Subject"].endswith("...: 7 remediated, 1 failed")
    assert message["Subject"].isascii() and "\n" not in message["Subject"]


def test_nothing_is_sent_without_a_topic(subscribed: tuple[str, Any]) -> None:
    _, received = subscribed
    assert notify.send_run_summary(None, CONN, REPORT, "report.html") is False
    assert notify.send_run_summary("", CONN, REPORT, "report.html") is False
    assert received() == []


def failure_context() -> dict[str, Any]:
    ti = SimpleNamespace(
        task_id="watcher",
        dag_id="asr_sweep",
        run_id="manual__1",
        log_url="http://localhost:8080/dags/asr_sweep/runs/manual__1/tasks/watcher",
    )
    return {
        "dag": SimpleNamespace(dag_id="asr_sweep"),
        "run_id": "manual__1",
        "reason": "task_failure",
        "ti": ti,
    }


def test_failed_run_is_published_with_its_task_and_log(
    subscribed: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    topic, received = subscribed
    monkeypatch.setenv(notify.TOPIC_ENV, topic)
    notify.notify_failure(failure_context())
    [message] = received()
    assert message["Subject"] == "ASR: asr_sweep failed: run manual__1"
    assert message["Message"].splitlines() == [
        "Run manual__1 of DAG asr_sweep failed (task_failure).",
        "Failed tasks: watcher",
        "Log: http://localhost:8080/dags/asr_sweep/runs/manual__1/tasks/watcher",
    ]


def test_failed_tasks_are_asked_of_airflow_when_it_can_tell(
    subscribed: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    topic, received = subscribed
    monkeypatch.setenv(notify.TOPIC_ENV, topic)
    asked: list[dict[str, Any]] = []

    def task_states(**kwargs: Any) -> dict[str, dict[str, str]]:
        asked.append(kwargs)
        return {"manual__1": {"ingest": "success", "remediate_EC2_13.fix_0": "failed", "watcher": "failed"}}

    monkeypatch.setattr(RuntimeTaskInstance, "get_task_states", staticmethod(task_states))
    notify.notify_failure(failure_context())
    assert asked == [{"dag_id": "asr_sweep", "run_ids": ["manual__1"]}]
    [message] = received()
    assert "Failed tasks: remediate_EC2_13.fix_0, watcher" in message["Message"]


@pytest.mark.parametrize("topic", ["arn:aws:sns:us-east-1:111111111111:no-such-topic", "not-an-arn"])
def test_a_broken_topic_is_logged_not_raised(
    clean_aws: str, topic: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(notify.TOPIC_ENV, topic)
    with caplog.at_level(logging.ERROR, logger="asr.notify"):
        assert notify.send_run_summary(topic, CONN, REPORT, "report.html") is False
        notify.notify_failure(failure_context())
        notify.notify_failure({})
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 3
    assert all(topic in r.getMessage() for r in errors)


def test_failure_callback_does_nothing_without_a_topic(
    subscribed: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, received = subscribed
    monkeypatch.delenv(notify.TOPIC_ENV, raising=False)
    notify.notify_failure(failure_context())
    assert received() == []


def test_a_fifo_topic_gets_its_message_group(clean_aws: str) -> None:
    """SNS refuses a FIFO topic's message without a group: every notification was lost."""
    from airflow.providers.amazon.aws.hooks.sns import SnsHook
    from airflow.providers.amazon.aws.hooks.sqs import SqsHook

    sns, sqs = SnsHook(aws_conn_id=CONN).get_conn(), SqsHook(aws_conn_id=CONN).get_conn()
    topic = sns.create_topic(Name="asr.fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    queue_url = sqs.create_queue(QueueName="asr-inbox.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["QueueArn"])

    assert notify.send_run_summary(topic, CONN, REPORT, "s3://reports/run-1/report.html")
    [message] = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert json.loads(message["Body"])["Subject"].startswith("ASR run manual__")


def test_a_failure_of_thousands_of_tasks_names_fifty(
    subscribed: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SNS takes 256 KB a message: the list of failed tasks is cut, with the count of the rest."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    topic, received = subscribed
    monkeypatch.setenv(notify.TOPIC_ENV, topic)
    failed = {f"remediate_EC2_13.fix_{n:04d}": "failed" for n in range(3000)}
    monkeypatch.setattr(
        RuntimeTaskInstance, "get_task_states", staticmethod(lambda **_: {"manual__1": failed})
    )
    notify.notify_failure(failure_context())
    [message] = received()
    [line] = [line for line in message["Message"].splitlines() if line.startswith("Failed tasks:")]
    assert line.count("remediate_EC2_13.fix_") == 50 and line.endswith(", and 2950 more")


def approval_step(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, topic: str) -> tuple[Any, dict[str, Any]]:
    """EC2.13's approval step of run manual__1, one batch planned, and its context; the wait
    itself (Airflow's) is left out."""
    from airflow.providers.standard.operators.hitl import ApprovalOperator
    from helpers import routing_record

    from asr.approvals import ControlApproval
    from asr.store import RunStore

    monkeypatch.setenv("ASR_SNS_TOPIC_ARN", topic)
    monkeypatch.setenv("ASR_AUTO_APPROVE", "")
    monkeypatch.setenv("ASR_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(ApprovalOperator, "execute", lambda self, context: "waiting")
    arn = "arn:aws:ec2:us-east-1:222222222222:security-group/sg-0123"
    record = routing_record("EC2.13", arn, "sg-0123", "222222222222")
    RunStore.for_run(str(tmp_path), "asr_sweep", "manual__1").write_lines(
        "batches/EC2.13-0000.jsonl", [record.to_dict()]
    )
    context = {
        "params": {},
        "run_id": "manual__1",
        "dag": SimpleNamespace(dag_id="asr_sweep"),
        "dag_run": SimpleNamespace(run_type="manual"),
        "ti": SimpleNamespace(
            xcom_pull=lambda task_ids, key: [
                {"batch_id": "EC2.13-0000", "playbook": "EC2.13"},
                {"batch_id": "EC2.2-0000", "playbook": "EC2.2"},
            ]
        ),
    }
    return ControlApproval(task_id="approve", playbook="EC2.13", plan_task_id="plan"), context


def test_an_approval_request_is_published_before_it_waits(
    subscribed: tuple[str, Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheduled sweep's request lapses before the next sweep: unless someone hears of it,
    every disruptive fix times out NOT_APPROVED, hour after hour."""
    from airflow.providers.standard.operators.hitl import ApprovalOperator
    from airflow.sdk.exceptions import TaskDeferred

    topic, received = subscribed
    operator, context = approval_step(tmp_path, monkeypatch, topic)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com")
    heard_before_waiting: list[list[dict[str, Any]]] = []

    def defer(self: Any, context: Any) -> None:  # Airflow's wait defers: nothing after it runs
        heard_before_waiting.append(received())
        raise TaskDeferred(trigger=None, method_name="execute_complete")  # type: ignore[arg-type]

    monkeypatch.setattr(ApprovalOperator, "execute", defer)
    with pytest.raises(TaskDeferred):
        operator.execute(context)
    [[message]] = heard_before_waiting
    assert message["Subject"] == "Approve the EC2.13 fix: 1 resources, 1 findings"
    assert "`sg-0123`" in message["Message"]
    assert (
        "Answer in Airflow: Required actions, DAG asr_sweep, run manual__1, task approve: "
        "https://airflow.example.com/dags/asr_sweep/runs/manual__1\n" in message["Message"]
    )


def test_a_request_that_could_not_be_sent_is_named_in_the_timeout_s_reason(
    aws: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unheard, a request times out and the next sweep asks again, unheard again: the NOT_APPROVED
    reason (the finding's note, the report) says the request never went out."""
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    from asr.store import RunStore

    gone = "arn:aws:sns:us-east-1:111111111111:no-such-topic"
    operator, context = approval_step(tmp_path, monkeypatch, gone)
    assert operator.execute(context) == "waiting"
    monkeypatch.setattr(ApprovalOperator, "execute_complete", lambda self, context, event: None)
    operator.execute_complete(context, {"chosen_options": ["Reject"], "timedout": True})
    store = RunStore.for_run(str(tmp_path), "asr_sweep", "manual__1")
    [row] = store.read_lines("outcomes/EC2.13-0000.jsonl")
    assert row["status"] == "NOT_APPROVED"
    assert row["message"].endswith(
        "; the request could not be sent to ASR_SNS_TOPIC_ARN (see the approval task's log)"
    )


def test_a_request_the_next_sweep_cut_short_says_so_not_the_timeout_setting(
    aws: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In an hourly sweep every request lapses within the hour: a reason naming
    ASR_APPROVAL_TIMEOUT (set to a day) sent the operator looking at the wrong setting."""
    from datetime import timedelta

    from airflow.providers.standard.operators.hitl import ApprovalOperator

    import asr.approvals
    from asr.store import RunStore

    operator, context = approval_step(tmp_path, monkeypatch, "arn:aws:sns:us-east-1:111111111111:gone")
    store = RunStore.for_run(str(tmp_path), "asr_sweep", "manual__1")
    monkeypatch.setattr(ApprovalOperator, "execute_complete", lambda self, context, event: None)
    for wait, says in (
        (timedelta(minutes=35), "ahead of the next scheduled sweep"),
        (None, "(ASR_APPROVAL_TIMEOUT)"),
    ):
        monkeypatch.setattr(asr.approvals, "wait_for_decision", lambda timeout, _, w=wait: w or timeout)
        operator.execute(context)
        operator.execute_complete(context, {"chosen_options": ["Reject"], "timedout": True})
        [row] = store.read_lines("outcomes/EC2.13-0000.jsonl")
        assert says in row["message"], row["message"]


def test_the_report_says_whether_its_summary_went_out(
    subscribed: tuple[str, Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A summary SNS refused is logged and the run goes on: report.json says it was not sent,
    for whoever wonders why none came."""
    from asr import tasks
    from asr.store import RunStore
    from asr.sweep import INGESTED, REJECTED, WRITTEN_BACK

    topic, received = subscribed
    monkeypatch.setenv("ASR_DATA_DIR", str(tmp_path))
    context = {"params": {}, "run_id": "manual__1", "dag": SimpleNamespace(dag_id="asr_sweep")}
    monkeypatch.setattr(tasks, "get_current_context", lambda: context)
    store = RunStore.for_run(str(tmp_path), "asr_sweep", "manual__1")
    store.write_json(INGESTED, {"began": "2026-12-05T10:00:00+00:00", "dry_run": False})
    store.write_json(WRITTEN_BACK, {"updated": 0, "settled": {}})
    store.write_lines(REJECTED, [{"finding_id": "arn:f-1", "error": "malformed"}])
    gone = topic.replace("asr-notifications", "no-such-topic")
    for arn, sent in ((topic, True), (gone, False)):
        monkeypatch.setenv("ASR_SNS_TOPIC_ARN", arn)
        tasks.report.function()
        assert store.read_json("report.json")["summary"] == {"topic": arn, "sent": sent}
    assert len(received()) == 1


def test_a_run_that_only_left_findings_alone_sends_no_summary(
    subscribed: tuple[str, Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst of Imported events made a run each, every one a summary saying nothing was done;
    so did every hourly sweep of a clean fleet. A run with anything to say still sends one."""
    from asr import tasks
    from asr.remediate import Outcome, Status
    from asr.store import RunStore
    from asr.sweep import INGESTED, NOT_ACTED, REJECTED, WRITTEN_BACK

    topic, received = subscribed
    monkeypatch.setenv("ASR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ASR_SNS_TOPIC_ARN", topic)
    context = {"params": {}, "run_id": "manual__1", "dag": SimpleNamespace(dag_id="asr_events")}
    monkeypatch.setattr(tasks, "get_current_context", lambda: context)
    store = RunStore.for_run(str(tmp_path), "asr_events", "manual__1")
    store.write_json(INGESTED, {"began": "2026-12-05T10:00:00+00:00", "dry_run": False})
    store.write_json(WRITTEN_BACK, {"updated": 0, "settled": {}})
    left = Outcome(
        *("f-1", "arn:aws:securityhub:us-east-1::product/aws/securityhub", "EC2.19", "EC2.19"),
        *("1" * 12, "us-east-1", "arn:aws:ec2:us-east-1:111111111111:security-group/sg-1", "sg-1"),
        status=Status.IGNORED,
        message="a run under way has it",
    )
    store.write_lines(NOT_ACTED, [left.to_dict()])

    tasks.report.function()
    said = store.read_json("report.json")["summary"]
    assert said == {"topic": topic, "sent": False, "skipped": tasks.NOTHING_TO_TELL}
    assert received() == []

    store.write_lines(REJECTED, [{"finding_id": "f-2", "error": "no resource in the finding"}])
    tasks.report.function()
    assert store.read_json("report.json")["summary"] == {"topic": topic, "sent": True}
    assert len(received()) == 1


@pytest.mark.parametrize(
    "news",
    [
        {"totals": {"REMEDIATED": 1}},
        {"totals": {"FAILED": 1}},
        {"totals": {"DRY_RUN": 1}},
        {"totals": {"IGNORED": 3, "EXCLUDED": 1}},
        {"rejected": [{"finding_id": "f", "error": "malformed"}]},
        {"unfinished": "write-back did not finish"},
        {"writeback_failures": [{"FindingIdentifier": {"Id": "f"}, "ErrorCode": "InvalidInput"}]},
        {"warnings": ["region 'us-eest-1' ... a typo?"]},
    ],
)
def test_a_run_with_anything_to_say_is_worth_a_summary(news: dict[str, Any]) -> None:
    from asr.report import worth_telling

    quiet: dict[str, Any] = {"totals": {"IGNORED": 2}, "rejected": [], "unfinished": "", "warnings": []}
    assert not worth_telling(quiet) and not worth_telling(quiet | {"totals": {}})
    assert worth_telling(quiet | news)
