"""Benchmark: how long a person waits after choosing "Remediate with ASR" in Security Hub.

Runs ``asr_events`` the way production does: the custom-action event goes onto the
EventBridge bus, the rule ``asr setup`` made puts it on the SQS queue, the triggerer's
AssetWatcher picks it up, and the scheduler runs the DAG with the LocalExecutor. One
finding is clicked at a time, each once the previous run has ended, and timed from its
``PutEvents``:

- picked up: its run is queued (the queue poll, the asset event, the scheduler);
- fixed: its ``fix`` task ended (the security group no longer open to the world);
- RESOLVED: the ``write_back`` task ended;
- run end: the report written.

A person clicks at any moment, not just after the previous run ended: before each click
the bench waits a random 0 to ``--max-gap`` seconds (seeded), so clicks land at every
point of the trigger's cycle of long poll and sleep. The first click also waits for the
triggerer to start watching, so it is shown apart and left out of the medians.

    .venv/bin/python bench/events.py --clicks 6
    .venv/bin/python bench/events.py --poll-seconds 1 --wait-seconds 20
"""

from __future__ import annotations

import argparse
import datetime
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from harness import PROJECT, AirflowApi, admin_context, free_port, product_version, save, stand_in, when

from asr import local
from asr.local import ADMIN_ACCOUNT, MEMBER_ACCOUNT
from asr.local.airflow import LocalAirflow
from asr.local.events import custom_action_event, put_events
from asr.local.seed import finding, import_findings, seed_one
from asr.report import table
from asr.setup import setup

DAG_ID = "asr_events"
REGION = "us-east-1"
CONTROL = "EC2.13"
MARKS = ("picked up", "fixed", "RESOLVED", "run end")


def marks(api: AirflowApi, run: dict[str, Any], clicked: datetime.datetime) -> dict[str, float]:
    """Seconds from the click to each mark, from what Airflow recorded."""
    instances = api.task_instances(run["dag_run_id"])
    ended = {ti["task_id"]: when(ti["end_date"]) for ti in instances if ti["state"] == "success"}
    fixed = max(moment for task_id, moment in ended.items() if task_id.endswith(".fix"))
    moments = (when(run["queued_at"]), fixed, ended["write_back"], when(run["end_date"]))
    return {mark: (moment - clicked).total_seconds() for mark, moment in zip(MARKS, moments, strict=True)}


def click_and_wait(api: AirflowApi, events: Any, item: dict[str, Any], target: str, timeout: float) -> dict:
    """Send one custom-action event, find the run it started and wait for its end."""
    before = {r["dag_run_id"] for r in api.runs()}
    clicked = datetime.datetime.now(datetime.UTC)
    put_events(events, [custom_action_event([item], target, ADMIN_ACCOUNT, REGION)])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [r for r in api.runs() if r["dag_run_id"] not in before]
        if new and new[0]["state"] in ("success", "failed"):
            if new[0]["state"] != "success":
                raise RuntimeError(f"{DAG_ID} run {new[0]['dag_run_id']} failed")
            return marks(api, new[0], clicked)
        time.sleep(0.5)
    raise TimeoutError(f"no {DAG_ID} run ended within {timeout:.0f}s of the click")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clicks", type=int, default=6, help="findings clicked, one after another (default 6)"
    )
    parser.add_argument(
        "--poll-seconds", type=int, help="ASR_EVENTS_POLL_SECONDS (default: the DAG's own default)"
    )
    parser.add_argument(
        "--wait-seconds", type=int, help="ASR_EVENTS_WAIT_SECONDS (default: the DAG's own default)"
    )
    parser.add_argument(
        "--max-gap", type=float, default=50, help="longest random pause before a click (default 50 s)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the random pauses")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for each run")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    if args.clicks < 2:
        parser.error("--clicks must be at least 2: the first one is not counted")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    local.use_test_credentials()
    home = PROJECT / ".asr" / "bench" / f"events-{time.strftime('%Y%m%dT%H%M%S')}"
    results: dict[str, Any] = {"date": datetime.date.today().isoformat(), "commit": product_version()}
    print(f"bench/events.py at {results['commit']}; work under {home}")
    with stand_in() as port:
        aws = admin_context(port)
        seeded = [seed_one(aws, CONTROL, MEMBER_ACCOUNT, REGION, n) for n in range(args.clicks)]
        findings = [finding(s) for s in seeded]
        import_findings(aws.admin_client("securityhub", REGION), findings)
        made = setup(aws, REGION)
        environment = {
            "AIRFLOW_CONN_AWS_DEFAULT": local.airflow_connection(port, REGION),
            "ASR_LOCAL_PORT": str(port),
            "ASR_DATA_DIR": str(home / "runs"),
            "ASR_EVENTS_QUEUE_URL": made.queue_url,
            "ASR_AUTO_APPROVE": CONTROL,  # disruptive: it would otherwise wait for a person
            **({"ASR_EVENTS_POLL_SECONDS": str(args.poll_seconds)} if args.poll_seconds is not None else {}),
            **({"ASR_EVENTS_WAIT_SECONDS": str(args.wait_seconds)} if args.wait_seconds is not None else {}),
        }
        results["environment"] = {k: v for k, v in environment.items() if k.startswith("ASR_EVENTS_")}
        with LocalAirflow(home / "airflow", free_port(), environment) as airflow:
            airflow.prepare(DAG_ID)
            airflow.start("api-server", "scheduler", "dag-processor", "triggerer")
            api = AirflowApi(airflow.api_url, DAG_ID)
            events = aws.admin_client("events", REGION)
            pauses = random.Random(args.seed)
            clicks = []
            for number, item in enumerate(findings):
                if number:
                    time.sleep(pauses.uniform(0, args.max_gap))
                clicks.append(click_and_wait(api, events, item, made.action_target_arn, args.timeout))
    results["clicks"] = clicks
    results["median"] = {mark: statistics.median(c[mark] for c in clicks[1:]) for mark in MARKS}
    rows = [[str(n + 1), *(f"{c[mark]:.1f}" for mark in MARKS)] for n, c in enumerate(clicks)]
    rows.append(["median of 2..", *(f"{results['median'][mark]:.1f}" for mark in MARKS)])
    settings = results["environment"] or "the DAG's defaults"
    print(f"\nSeconds from the click, {CONTROL}, one finding a click; {settings}")
    print(table(rows, ("click", *MARKS)))
    save(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
