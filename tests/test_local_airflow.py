"""The local Airflow's start-up: what it waits for before any run may begin."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from asr.local.airflow import LocalAirflow


class _Answers(BaseHTTPRequestHandler):
    """Answers health checks; the Execution API fails its first ``unready`` requests."""

    asked: list[str] = []
    unready = 2

    def do_GET(self) -> None:
        self.asked.append(self.path)
        ready = self.path != "/execution/health" or self.asked.count(self.path) > self.unready
        self.send_response(200 if ready else 503)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api_server() -> Iterator[int]:
    _Answers.asked, _Answers.unready = [], 2
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


class _Running:
    returncode = None

    def poll(self) -> None:
        return None


def test_start_up_waits_until_the_execution_api_has_answered(api_server: int, tmp_path: Path) -> None:
    # Tasks call the Execution API, which builds its routes on its first request: the wait
    # makes that request, so the first task of the first run does not pay for it.
    airflow = LocalAirflow(tmp_path, api_server)
    airflow._wait_for_api(_Running(), timeout=30)  # type: ignore[arg-type]
    assert _Answers.asked[0] == "/api/v2/monitor/health"
    assert _Answers.asked.count("/execution/health") == 3
    assert _Answers.asked[-1] == "/execution/health"


def test_start_up_gives_up_when_the_execution_api_never_answers(api_server: int, tmp_path: Path) -> None:
    _Answers.unready = 10**6
    airflow = LocalAirflow(tmp_path, api_server)
    with pytest.raises(TimeoutError, match="did not answer"):
        airflow._wait_for_api(_Running(), timeout=0.8)  # type: ignore[arg-type]
