"""Airflow's own processes on this machine, for the demo, end-to-end tests and benchmarks.

A project-local ``AIRFLOW_HOME`` with SQLite and the LocalExecutor; the scheduler,
dag-processor, API server (and the triggerer where event-driven or deferred work needs
it) run as real processes, and everything started is stopped on exit, pass or fail.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import requests

from asr import local

PROJECT = Path(__file__).resolve().parents[3]
FINISHED = ("success", "failed")


class LocalAirflow:
    def __init__(self, home: Path, api_port: int, environment: dict[str, str] | None = None) -> None:
        self.home = home
        self.logs = home / "logs-local"
        self.logs.mkdir(parents=True, exist_ok=True)
        secret_file = home / "jwt_secret"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(32))
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API_AUTH__JWT_SECRET": secret_file.read_text(),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            # The scheduling settings of docker-compose.yaml (see there): a run is a chain of
            # short tasks, and each hop waited up to a second, or up to five behind a finished
            # task; DAG files are not re-parsed every 30 s while runs need the CPU.
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
            "AIRFLOW_CONN_AWS_DEFAULT": local.airflow_connection(),
            "ASR_SWEEP_SCHEDULE": "none",
            "PYTHONWARNINGS": "ignore::UserWarning,ignore::DeprecationWarning",
            **(environment or {}),
        }
        self._stack = ExitStack()
        self.pids: dict[str, int] = {}  # of the components started, e.g. "scheduler"

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [str(Path(sys.executable).with_name("airflow")), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
        return done.stdout

    def prepare(self, *dag_ids: str) -> None:
        """Migrate the metadata DB, forget earlier runs of these DAGs, parse and unpause them."""
        self.cli("db", "migrate")
        for dag_id in dag_ids:
            with suppress(RuntimeError):  # a run left over from an interrupted session must not resume
                self.cli("dags", "delete", dag_id, "--yes")
        self.cli("dags", "reserialize")
        for dag_id in dag_ids:
            self.cli("dags", "unpause", dag_id)

    def start(self, *components: str) -> None:
        """Start Airflow commands as processes, e.g. ``"scheduler"``, ``"celery worker"``."""
        for component in components:
            log = open(self.logs / f"{component.replace(' ', '-')}.log", "ab")  # noqa: SIM115 (closed by the stack)
            self._stack.callback(log.close)
            proc = subprocess.Popen(
                [str(Path(sys.executable).with_name("airflow")), *component.split()],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self._stack.callback(_stop, proc)
            self.pids[component] = proc.pid
            if component == "api-server":
                self._wait_for_api(proc)

    def _wait_for_api(self, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
        """Task processes report to the API server: nothing may start before it answers.

        The Execution API the tasks call builds its versioned routes on its first request
        (seconds of CPU on 2 cores), so its health check is asked for here: that is start-up,
        and would otherwise be charged to the first task of the first run.
        """
        urls = [f"{self.api_url}/api/v2/monitor/health", f"{self.api_url}/execution/health"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the API server exited with {proc.returncode}; see {self.logs}")
            with suppress(requests.RequestException):
                while urls and requests.get(urls[0], timeout=max(2.0, deadline - time.monotonic())).ok:
                    urls.pop(0)
                if not urls:
                    return
            time.sleep(0.5)
        raise TimeoutError(f"the API server did not answer within {timeout:.0f}s; see {self.logs}")

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any] | None = None) -> None:
        self.cli(
            "dags", "trigger", dag_id, "--run-id", run_id, *(["--conf", json.dumps(conf)] if conf else [])
        )

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        lines = [line for line in self.cli("dags", "list-runs", dag_id, "-o", "json").splitlines() if line]
        return json.loads(lines[-1]) if lines and lines[-1].startswith("[") else []

    def wait(self, dag_id: str, run_id: str | None = None, timeout: float = 600) -> dict[str, Any]:
        """The run once finished (the first one of the DAG when no run id is given)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r for r in self.runs(dag_id) if run_id in (None, r["run_id"])]
            if found and found[0]["state"] in FINISHED:
                return found[0]
            time.sleep(2)
        raise TimeoutError(
            f"{dag_id} {run_id or 'run'} did not finish within {timeout:.0f}s (logs: {self.logs})"
        )

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['AIRFLOW__API__PORT']}"

    def __enter__(self) -> LocalAirflow:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
