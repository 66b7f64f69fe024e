"""The local AWS stand-in: start, stop and find moto in server mode on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

DEFAULT_PORT = 5000


def state_dir() -> Path:
    path = Path(os.environ.get("ASR_STATE_DIR", ".asr")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def port() -> int:
    return int(os.environ.get("ASR_LOCAL_PORT", DEFAULT_PORT))


def endpoint_url(for_port: int | None = None) -> str:
    return f"http://127.0.0.1:{for_port or port()}"


def is_up(for_port: int | None = None) -> bool:
    try:
        response = requests.get(f"{endpoint_url(for_port)}/moto-api/", timeout=2)
        return response.ok and "moto" in response.text.lower()
    except requests.RequestException:
        return False


def _pid_file(for_port: int) -> Path:
    return state_dir() / f"moto-{for_port}.pid"


def pid(for_port: int | None = None) -> int | None:
    """The process id of the stand-in this project started on that port, if it did."""
    pid_file = _pid_file(for_port or port())
    return int(pid_file.read_text()) if pid_file.exists() else None


def up(for_port: int | None = None, timeout: float = 30.0) -> str:
    """Start the stand-in unless it already answers; return its endpoint."""
    the_port = for_port or port()
    if is_up(the_port):
        return endpoint_url(the_port)
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", the_port)) == 0:
            raise RuntimeError(f"port {the_port} is taken by something that is not the stand-in")
    log = open(state_dir() / f"moto-{the_port}.log", "ab")  # noqa: SIM115 (handed to the child)
    proc = subprocess.Popen(
        [sys.executable, "-m", "asr.local.server", "--port", str(the_port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _pid_file(the_port).write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_up(the_port):
            return endpoint_url(the_port)
        if proc.poll() is not None:
            raise RuntimeError(f"the stand-in exited with {proc.returncode}; see {log.name}")
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the stand-in did not answer on port {the_port} within {timeout}s")


def down(for_port: int | None = None) -> bool:
    """Stop the stand-in this project started; True if one was running."""
    pid_file = _pid_file(for_port or port())
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text())
    pid_file.unlink()
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    # Its state is in memory and disposable: no need to wait long for a graceful exit.
    for _ in range(10):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    os.killpg(pid, signal.SIGKILL)
    return True


def reset(for_port: int | None = None) -> None:
    """Forget every resource and finding (moto's own reset), the request log, denied
    accounts and any outage."""
    requests.post(f"{endpoint_url(for_port)}/moto-api/reset", timeout=10).raise_for_status()
    requests.delete(f"{endpoint_url(for_port)}/moto-api/asr/requests", timeout=10).raise_for_status()
    deny_accounts([], for_port)
    requests.delete(f"{endpoint_url(for_port)}/moto-api/asr/outage", timeout=10).raise_for_status()


def outage(seconds: float, for_port: int | None = None) -> None:
    """Answer every AWS call with 503 ServiceUnavailable for ``seconds`` (``outage_ext``)."""
    response = requests.post(
        f"{endpoint_url(for_port)}/moto-api/asr/outage", json={"seconds": seconds}, timeout=10
    )
    response.raise_for_status()


def deny_accounts(accounts: list[str], for_port: int | None = None) -> None:
    """Make AssumeRole into these accounts answer AccessDenied (``sts_ext``); [] allows all again."""
    response = requests.post(
        f"{endpoint_url(for_port)}/moto-api/asr/sts", json={"deny_accounts": accounts}, timeout=10
    )
    response.raise_for_status()


def served_requests(for_port: int | None = None, clear: bool = False) -> list[dict[str, Any]]:
    """The calls the stand-in served since the log was last cleared: service, action, account,
    region, resource, and the CPU seconds the stand-in spent on each (``request_log_ext``)."""
    url = f"{endpoint_url(for_port)}/moto-api/asr/requests"
    response = requests.delete(url, timeout=10) if clear else requests.get(url, timeout=10)
    response.raise_for_status()
    return response.json()


ADMIN_ACCOUNT = "111111111111"
MEMBER_ACCOUNT = "222222222222"
ADMIN_ROLE_ARN = f"arn:aws:iam::{ADMIN_ACCOUNT}:role/ASRAdministrator"


def use_test_credentials() -> None:
    """The stand-in accepts any credentials; never send real ones to it."""
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def airflow_connection(for_port: int | None = None, region: str = "us-east-1") -> str:
    """The ``aws_default`` connection (as AIRFLOW_CONN_AWS_DEFAULT JSON) for the stand-in."""
    endpoint = endpoint_url(for_port)
    return json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {
                "region_name": region,
                "endpoint_url": endpoint,
                "role_arn": ADMIN_ROLE_ARN,
                "service_config": {"sts": {"endpoint_url": endpoint}},
            },
        }
    )
