"""The local AWS stand-in: start, stop and find moto in server mode on 127.0.0.1."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psutil
import requests

DEFAULT_PORT = 5000


def state_dir() -> Path:
    path = Path(os.environ.get("ASR_STATE_DIR", ".asr")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def port() -> int:
    from asr.config import env_number

    return int(env_number("ASR_LOCAL_PORT", DEFAULT_PORT, minimum=1, maximum=65535))


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


# The stand-ins this process started, by pid: a child that exited stays a zombie, answering
# os.kill(pid, 0), until its Popen reaps it.
_children: dict[int, subprocess.Popen[bytes]] = {}


@contextmanager
def _locked(for_port: int) -> Iterator[None]:
    """One ``up`` or ``down`` of a port at a time, across processes: two starts at once would
    both find the port free, and the pid file would name the one that lost."""
    with open(state_dir() / f"moto-{for_port}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _is_stand_in(pid: int, for_port: int) -> bool:
    """Whether that process is the stand-in on that port: a pid file outlives a stand-in that
    crashed or was killed, and its pid may belong to anything now."""
    child = _children.get(pid)
    if child is not None and child.poll() is not None:  # ours, exited: reaped now, pid free for reuse
        del _children[pid]
        return False
    try:
        cmdline = psutil.Process(pid).cmdline()
    except psutil.Error:  # gone, a zombie, or not ours to read
        return False
    return "asr.local.server" in cmdline and cmdline[-2:] == ["--port", str(for_port)]


def pid(for_port: int | None = None) -> int | None:
    """The process id of the stand-in this project started on that port, if it is running."""
    the_port = for_port or port()
    try:
        found = int(_pid_file(the_port).read_text())
    except (OSError, ValueError):
        return None
    return found if _is_stand_in(found, the_port) else None


def _exited(pid: int) -> bool:
    """Gone, or a zombie: this process reaps its own children (a zombie still takes signals)."""
    child = _children.get(pid)
    if child is not None:
        return child.poll() is not None
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _stop(pid: int) -> None:
    """SIGTERM the stand-in's process group, SIGKILL it after a second: its state is in memory
    and disposable, so a graceful exit is not worth waiting for."""
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 1
        while not _exited(pid):
            if time.monotonic() > deadline:
                os.killpg(pid, signal.SIGKILL)
                break
            time.sleep(0.05)
    child = _children.pop(pid, None)
    if child is not None:
        child.wait()


def up(for_port: int | None = None, timeout: float = 30.0) -> str:
    """Start the stand-in unless it already answers; return its endpoint. The pid file is
    written only once this start's own child answers, so it never names a failed start."""
    the_port = for_port or port()
    with _locked(the_port):
        if is_up(the_port):
            return endpoint_url(the_port)
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", the_port)) == 0:
                raise RuntimeError(f"port {the_port} is taken by something that is not the stand-in")
        pid_file = _pid_file(the_port)
        pid_file.unlink(missing_ok=True)  # nothing answers: whatever it names is gone
        log = state_dir() / f"moto-{the_port}.log"
        with log.open("ab") as output:
            child = subprocess.Popen(
                [sys.executable, "-m", "asr.local.server", "--port", str(the_port)],
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _children[child.pid] = child
        try:
            _wait_until_up(child, the_port, timeout, log)
        except BaseException:
            _stop(child.pid)
            raise
        pid_file.write_text(str(child.pid))
        return endpoint_url(the_port)


def _wait_until_up(child: subprocess.Popen[bytes], for_port: int, timeout: float, log: Path) -> None:
    """Return once the port answers while the child still runs: an answer after it exited
    comes from a stand-in someone else started meanwhile, which ``down`` could not stop."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answered = is_up(for_port)
        if child.poll() is not None:
            meanwhile = "; another stand-in took the port meanwhile" if answered else ""
            raise RuntimeError(f"the stand-in exited with {child.returncode}{meanwhile}; see {log}")
        if answered:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the stand-in did not answer on port {for_port} within {timeout}s")


def down(for_port: int | None = None) -> bool:
    """Stop the stand-in this project started; True if one was running. A pid file that names
    anything else is stale: it is removed, and that process left alone."""
    the_port = for_port or port()
    with _locked(the_port):
        running = pid(the_port)
        _pid_file(the_port).unlink(missing_ok=True)
        if running is None:
            return False
        _stop(running)
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
