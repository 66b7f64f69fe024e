"""Events through Airflow for real: the queue `asr setup` made, the triggerer, asr_events.

A custom-action event for two findings goes onto the EventBridge bus; the rule puts it
on the SQS queue; the triggerer's AssetWatcher picks it up and asr_events runs under
the scheduler with the LocalExecutor. Only the two resources may change.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from helpers import free_port, world_open

from asr.local import ADMIN_ACCOUNT, MEMBER_ACCOUNT
from asr.local.airflow import LocalAirflow
from asr.local.events import custom_action_event, imported_event, put_events
from asr.local.seed import finding, import_findings, seed_one
from asr.setup import setup
from asr.store import RunStore

REGION = "us-east-1"


def _installed(
    aws: Any, tmp_path: Path, count: int, poll_seconds: int
) -> tuple[list[Any], list[Any], Any, dict[str, str]]:
    """``count`` open security groups with their findings, ``asr setup`` made, and the
    environment an Airflow watching its queue needs."""
    seeded = [seed_one(aws, "EC2.13", MEMBER_ACCOUNT, REGION, n) for n in range(count)]
    findings = [finding(s) for s in seeded]
    import_findings(aws.admin_client("securityhub", REGION), findings)
    made = setup(aws, REGION)
    environment = {
        "ASR_EVENTS_QUEUE_URL": made.queue_url,
        "ASR_EVENTS_POLL_SECONDS": str(poll_seconds),
        "ASR_EVENTS_WAIT_SECONDS": "1",
        "ASR_DATA_DIR": str(tmp_path / "runs"),
        "ASR_LOCAL_PORT": os.environ["ASR_LOCAL_PORT"],
    }
    return seeded, findings, made, environment


@pytest.mark.airflow
def test_custom_action_event_fixes_exactly_its_findings_through_the_triggerer(aws, tmp_path) -> None:
    seeded, findings, made, environment = _installed(aws, tmp_path, 3, poll_seconds=2)
    securityhub = aws.admin_client("securityhub", REGION)
    with LocalAirflow(tmp_path / "airflow", free_port(), environment) as airflow:
        airflow.prepare("asr_events")
        airflow.start("api-server", "scheduler", "dag-processor", "triggerer")
        events = aws.admin_client("events", REGION)
        put_events(events, [custom_action_event(findings[:2], made.action_target_arn, ADMIN_ACCOUNT, REGION)])
        run = airflow.wait("asr_events", timeout=300)
        assert run["state"] == "success", f"see {airflow.logs} and the task logs under {tmp_path}"

        assert [world_open(aws, s) for s in seeded] == [False, False, True]
        status = {f["Id"]: f["Workflow"]["Status"] for f in securityhub.get_findings()["Findings"]}
        assert [status[f["Id"]] for f in findings] == ["RESOLVED", "RESOLVED", "NEW"]

        # EC2.13 is not automatic: an Imported event for the third finding starts nothing, and
        # neither does the Imported event our own update would cause for the first.
        resolved = {**findings[0], "Workflow": {"Status": "RESOLVED"}}
        put_events(events, [imported_event([findings[2]], MEMBER_ACCOUNT, REGION)])
        put_events(events, [imported_event([resolved], MEMBER_ACCOUNT, REGION)])
        time.sleep(15)
        assert len(airflow.runs("asr_events")) == 1
        assert world_open(aws, seeded[2])

        # An Imported event of an automatic control does start a run, which fixes its finding:
        # what kept the two above from starting one was the rule, not a triggerer gone quiet.
        automatic = finding(seed_one(aws, "RDS.8", MEMBER_ACCOUNT, REGION))
        import_findings(securityhub, [automatic])
        put_events(events, [imported_event([automatic], MEMBER_ACCOUNT, REGION)])
        _wait_for(lambda: len(airflow.runs("asr_events")) == 2, 240, "the run of the Imported event")
        [later] = [r for r in airflow.runs("asr_events") if r["run_id"] != run["run_id"]]
        assert airflow.wait("asr_events", later["run_id"], timeout=300)["state"] == "success"
        [written] = securityhub.get_findings(
            Filters={"Id": [{"Value": automatic["Id"], "Comparison": "EQUALS"}]}
        )["Findings"]
        assert written["Workflow"]["Status"] == "RESOLVED"
        assert world_open(aws, seeded[2])  # still: the later run took only its own event


def _asset_events(home: Path) -> int:
    """Asset events Airflow has recorded (its metadata database, read only)."""
    with closing(sqlite3.connect(f"file:{home / 'airflow.db'}?mode=ro", uri=True, timeout=30)) as db:
        return int(db.execute("select count(*) from asset_event").fetchone()[0])


def _wait_for(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(1)


@pytest.mark.airflow
def test_a_click_that_lands_before_the_scheduler_makes_the_run_is_not_left_behind(aws, tmp_path) -> None:
    """Airflow 3.3 gives an asset-triggered run only the events up to its first one: a second
    click that arrives before the scheduler makes the run is in no run, and its SQS message
    is deleted already. The run takes it itself. A third click makes the next run, which
    Airflow gives every event since the first run's first: the second is left to the run
    that took it."""
    seeded, findings, made, environment = _installed(aws, tmp_path, 3, poll_seconds=1)
    home = tmp_path / "airflow"
    events = aws.admin_client("events", REGION)

    def click(n: int) -> None:
        put_events(
            events, [custom_action_event([findings[n - 1]], made.action_target_arn, ADMIN_ACCOUNT, REGION)]
        )
        _wait_for(lambda: _asset_events(home) >= n, 240, f"asset event {n}")

    with LocalAirflow(home, free_port(), environment) as airflow:
        airflow.prepare("asr_events")
        airflow.start("api-server", "dag-processor", "triggerer")  # the scheduler is late
        click(1)
        click(2)
        airflow.start("scheduler")
        run = airflow.wait("asr_events", timeout=400)
        assert run["state"] == "success", f"see {airflow.logs} and the task logs under {tmp_path}"
        assert [world_open(aws, s) for s in seeded] == [False, False, True]

        click(3)
        _wait_for(lambda: len(airflow.runs("asr_events")) == 2, 240, "the second run")
        [later] = [r for r in airflow.runs("asr_events") if r["run_id"] != run["run_id"]]
        assert airflow.wait("asr_events", later["run_id"], timeout=400)["state"] == "success"
        assert [world_open(aws, s) for s in seeded] == [False, False, False]
        asked = json.dumps(
            RunStore.for_run(str(tmp_path / "runs"), "asr_events", later["run_id"]).read_json("queries.json")
        )
        assert findings[2]["Id"] in asked and findings[1]["Id"] not in asked


def _queue_counts(sqs: Any, url: str) -> tuple[int, int]:
    """Messages waiting in the queue, and those received and not yet deleted (in flight)."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return int(got[names[0]]), int(got[names[1]])


@pytest.mark.airflow
def test_a_click_the_triggerer_received_and_died_with_comes_back_and_is_fixed(aws, tmp_path) -> None:
    """The triggerer is killed (SIGKILL) as soon as it has received the click's message,
    before Airflow stored the asset event. The provider's trigger deleted the message on
    receipt: the click was gone without trace. Now the message stays in flight until Airflow
    confirms the event stored, comes back when its visibility timeout ends (here 20 s: ack
    timeout 10 s plus margin), and the restarted triggerer hands it to a run that fixes it."""
    seeded, findings, made, environment = _installed(aws, tmp_path, 1, poll_seconds=1)
    environment["AIRFLOW__TRIGGERER__SHARED_STREAM_ACK_TIMEOUT"] = "10"
    home = tmp_path / "airflow"
    sqs = aws.admin_client("sqs", REGION)
    events = aws.admin_client("events", REGION)
    with LocalAirflow(home, free_port(), environment) as airflow:
        airflow.prepare("asr_events")
        airflow.start("api-server", "dag-processor", "scheduler")
        put_events(events, [custom_action_event(findings, made.action_target_arn, ADMIN_ACCOUNT, REGION)])
        _wait_for(lambda: _queue_counts(sqs, made.queue_url) == (1, 0), 60, "the click in the queue")
        airflow.start("triggerer")
        deadline = time.monotonic() + 240
        while _queue_counts(sqs, made.queue_url) == (1, 0):  # until received (in flight, or deleted)
            assert time.monotonic() < deadline, f"the triggerer never received the click; see {airflow.logs}"
            time.sleep(0.005)
        os.killpg(airflow.pids["triggerer"], signal.SIGKILL)  # the triggerer this test started
        time.sleep(2)
        assert _asset_events(home) == 0, "killed too late: Airflow had stored the event already"
        assert airflow.runs("asr_events") == []

        airflow.start("triggerer")
        _wait_for(lambda: _asset_events(home) >= 1, 240, "the click's event after the restart")
        run = airflow.wait("asr_events", timeout=400)
        assert run["state"] == "success", f"see {airflow.logs} and the task logs under {tmp_path}"
        assert not world_open(aws, seeded[0])
        # Deleted once its event was stored: it does not come back again.
        _wait_for(lambda: _queue_counts(sqs, made.queue_url) == (0, 0), 60, "the message deleted")
        assert _queue_counts(sqs, made.dead_letter_queue_url) == (0, 0)
        assert len(airflow.runs("asr_events")) == 1
