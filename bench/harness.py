"""What the benchmarks share: a private stand-in, the local Airflow's REST API, the
administrator's AWS access, and where the figures go."""

from __future__ import annotations

import datetime
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

import asr
from asr import local
from asr.aws import AwsContext

PROJECT = Path(__file__).resolve().parents[1]
SECURITYHUB_REGION = "us-east-1"
MEMBER_ROLE = "ASRMemberRole"


def admin_context(port: int) -> AwsContext:
    """As the Security Hub administrator, the identity the product's Airflow connection uses."""
    return AwsContext.from_endpoint(
        local.endpoint_url(port), MEMBER_ROLE, SECURITYHUB_REGION, admin_role_arn=local.ADMIN_ROLE_ARN
    )


class AirflowApi:
    """The REST API of the local Airflow: triggering and polling through it instead of the
    ``airflow`` CLI keeps a CLI process (seconds of CPU each) out of the measurement."""

    def __init__(self, base_url: str, dag_id: str) -> None:
        self.base = base_url
        self.dag_id = dag_id
        token = requests.get(f"{base_url}/auth/token", timeout=30)
        token.raise_for_status()
        self.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(
            method, f"{self.base}/api/v2{path}", headers=self.headers, timeout=60, **kwargs
        )
        if not response.ok:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def trigger(self, run_id: str, conf: dict[str, Any]) -> None:
        self.call(
            "POST",
            f"/dags/{self.dag_id}/dagRuns",
            json={"dag_run_id": run_id, "logical_date": None, "conf": conf},
        )

    def wait(self, run_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.call("GET", f"/dags/{self.dag_id}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(1)
        raise TimeoutError(f"{self.dag_id} {run_id} did not finish within {timeout:.0f}s")

    def wait_for_parsing(self, since: datetime.datetime, timeout: float = 180) -> None:
        """Until the dag-processor has parsed every DAG file once after ``since`` (its start).
        A deployment parses its files when it starts, not once per run, so a run triggered
        before that pass ends would be measured sharing the CPU with it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dags = self.call("GET", "/dags", params={"limit": 100})["dags"]
            if dags and all(d["last_parsed_time"] and when(d["last_parsed_time"]) > since for d in dags):
                return
            time.sleep(1)
        raise TimeoutError(f"the dag-processor did not parse every DAG file within {timeout:.0f}s")

    def runs(self) -> list[dict[str, Any]]:
        """The DAG's runs, newest first (at most 100)."""
        page = self.call("GET", f"/dags/{self.dag_id}/dagRuns", params={"order_by": "-id", "limit": 100})
        return page["dag_runs"]

    def task_instances(self, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run, mapped ones one by one."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.call(
                "GET",
                f"/dags/{self.dag_id}/dagRuns/{run_id}/taskInstances",
                params={"limit": 100, "offset": len(found)},
            )
            found += page["task_instances"]
            if not page["task_instances"] or len(found) >= page["total_entries"]:
                return found


def when(stamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def product_version() -> str:
    """The commit measured (``+dirty`` with uncommitted changes), or where asr was loaded from."""
    where = Path(asr.__file__).resolve().parents[2]
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=where, capture_output=True, text=True)
    if head.returncode:
        return f"asr from {where}"
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--", "plugins", "dags", "playbooks"],
        cwd=where,
        capture_output=True,
        text=True,
    )
    return head.stdout.strip() + ("+dirty" if changed.stdout.strip() else "")


def save(results: dict[str, Any], path: Path | None) -> None:
    """The figures as JSON, where ``--json`` asked for them."""
    if path:
        path.write_text(json.dumps(results, indent=1))
        print(f"Results: {path}")


@contextmanager
def stand_in() -> Iterator[int]:
    """A private stand-in on a free port, stopped on exit whatever happens. A SIGTERM
    (``timeout``, ``kill``) unwinds the bench as Ctrl-C does, so that the stand-in and the
    Airflow started within are stopped: by default it would end the process at once and leave
    them running, holding the machine's CPU."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    port = free_port()
    local.up(port)
    try:
        yield port
    finally:
        local.down(port)
