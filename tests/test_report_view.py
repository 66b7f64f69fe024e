"""A run's report in the Airflow UI: the page the API server serves for a run, and who may
read it (the UI's own check of the tab, in a browser, is in tests/test_ui.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import free_port, signed_in_users

from asr import report_view
from asr.config import Settings
from asr.local.airflow import LocalAirflow
from asr.store import RunStore

RUN_ID = "manual__2026-12-07T10:00:00+00:00"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"ASR_DATA_DIR": str(tmp_path / "runs"), "ASR_SWEEP_SCHEDULE": "none"})


def owned(settings: Settings, dag_id: str = "asr_sweep", run_id: str = RUN_ID) -> RunStore:
    store = RunStore.for_run(settings.data_dir, dag_id, run_id)
    store.own(dag_id, run_id)
    return store


def test_a_run_s_report_is_its_html_page_as_written(settings: Settings) -> None:
    store = owned(settings)
    store.path("report.html").write_text("<html><body><h1>asr run</h1></body></html>")
    assert report_view.page(settings, "asr_sweep", RUN_ID) == (
        200,
        "<html><body><h1>asr run</h1></body></html>",
    )


def test_a_rollback_s_report_is_its_markdown_shown_as_text(settings: Settings) -> None:
    store = owned(settings, "asr_rollback")
    store.path("rollback.md").write_text("# Rollback\n<script>alert(1)</script> | put back |")
    status, body = report_view.page(settings, "asr_rollback", RUN_ID)
    assert status == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt; | put back |" in body
    assert "<script>" not in body


def test_a_run_without_a_report_yet_says_so(settings: Settings) -> None:
    owned(settings)
    assert report_view.page(settings, "asr_sweep", RUN_ID) == (404, report_view.note(report_view.NOT_YET))
    assert report_view.page(settings, "asr_sweep", "never_ran")[0] == 404


def test_a_folder_another_run_id_owns_is_not_shown_as_this_run_s(settings: Settings) -> None:
    """``a:b`` and ``a+b`` share the folder ``a_b``: the report there is the first run's."""
    store = owned(settings, run_id="manual__a:b")
    store.path("report.html").write_text("<p>the report of manual__a:b</p>")
    status, body = report_view.page(settings, "asr_sweep", "manual__a+b")
    assert status == 404
    assert "is run &#x27;manual__a:b&#x27;&#x27;s, not this run&#x27;s" in body


def test_a_pruned_run_says_its_files_were_deleted(settings: Settings) -> None:
    store = owned(settings)
    store.write_json("run.json", store.owner() | {"pruned": "2027-03-07T00:00:00+00:00"})
    status, body = report_view.page(settings, "asr_sweep", RUN_ID)
    assert status == 410
    assert "deleted on 2027-03-07T00:00:00+00:00" in body


def test_an_api_server_that_sees_none_of_a_dag_s_runs_says_it_may_not_see_the_data_dir(
    settings: Settings,
) -> None:
    status, body = report_view.page(settings, "asr_sweep", RUN_ID)
    assert status == 404
    assert "nothing of asr_sweep&#x27;s runs is in ASR_DATA_DIR" in body
    assert settings.data_dir in body
    owned(settings, run_id="another")
    assert report_view.page(settings, "asr_sweep", RUN_ID) == (404, report_view.note(report_view.NOT_YET))


def test_a_dag_that_is_not_asr_s_has_no_report(settings: Settings) -> None:
    status, body = report_view.page(settings, "etl_daily", RUN_ID)
    assert status == 404
    assert "etl_daily is not one of asr&#x27;s DAGs" in body


def test_a_report_in_object_storage_is_read_through_the_connection(clean_aws: str) -> None:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    S3Hook(aws_conn_id="aws_default").create_bucket("asr-views")
    settings = Settings.from_env({"ASR_DATA_DIR": "s3://asr-views/runs", "ASR_SWEEP_SCHEDULE": "none"})
    store = RunStore.for_run(settings.data_dir, "asr_events", RUN_ID, settings.aws_conn_id)
    store.own("asr_events", RUN_ID)
    store.path("report.html").write_text("<p>from the bucket</p>")
    assert report_view.page(settings, "asr_events", RUN_ID) == (200, "<p>from the bucket</p>")


def test_the_app_checks_task_log_access_and_says_what_it_could_not_read(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow's own check, with the entity the task logs (which show the report's table)
    are read with; a store that fails is a page that says so, never a bare error."""
    from airflow.api_fastapi.core_api import security
    from fastapi.testclient import TestClient

    asked: list[tuple[str, Any]] = []

    def requires_access_dag(method: str, access_entity: Any = None) -> Any:
        asked.append((method, access_entity))
        return lambda: None

    monkeypatch.setattr(security, "requires_access_dag", requires_access_dag)
    monkeypatch.setenv("ASR_DATA_DIR", settings.data_dir)
    client = TestClient(report_view.build())
    assert [(method, entity.name) for method, entity in asked] == [("GET", "TASK_LOGS")]

    store = owned(settings)
    store.path("report.html").write_bytes(b"\xff\xfe not text")
    broken = client.get(f"/reports/asr_sweep/{RUN_ID}")
    assert (broken.status_code, broken.text) == (502, report_view.note(report_view.UNREADABLE))
    assert broken.headers["Content-Security-Policy"] == report_view.POLICY

    store.path("run.json").write_text("{")  # half written
    assert client.get(f"/reports/asr_sweep/{RUN_ID}").status_code == 502

    monkeypatch.setenv("ASR_DRY_RUN", "ture")
    refused = client.get(f"/reports/asr_sweep/{RUN_ID}")
    assert refused.status_code == 500
    assert "ASR_DRY_RUN" in refused.text


@pytest.mark.airflow
def test_the_api_server_serves_a_report_to_those_airflow_lets_read_runs(tmp_path: Path) -> None:
    home = tmp_path / "airflow"
    signed_in, passwords = signed_in_users(home, {"reader": "viewer"})
    environment = {
        **signed_in,
        "ASR_DATA_DIR": str(tmp_path / "runs"),
        "ASR_LOCAL_PORT": os.environ["ASR_LOCAL_PORT"],
    }
    settings = Settings.from_env(environment)
    owned(settings).path("report.html").write_text("<h1>REMEDIATED 2</h1>")
    with LocalAirflow(home, free_port(), environment) as airflow:
        airflow.cli("db", "migrate")
        airflow.start("api-server")
        url = f"{airflow.api_url}/asr/reports/asr_sweep/{requests.utils.quote(RUN_ID, safe='')}"
        assert requests.get(url, timeout=30).status_code == 401
        token = requests.post(
            f"{airflow.api_url}/auth/token",
            json={"username": "reader", "password": passwords["reader"]},
            timeout=30,
        ).json()["access_token"]
        shown = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert (shown.status_code, shown.text) == (200, "<h1>REMEDIATED 2</h1>")
        assert shown.headers["Content-Security-Policy"] == report_view.POLICY
        assert shown.headers["Content-Type"] == "text/html; charset=utf-8"
        # The UI's session cookie is a credential too: the tab's frame sends no header.
        framed = requests.get(url, cookies={"_token": token}, timeout=30)
        assert framed.status_code == 200
        views = requests.get(
            f"{airflow.api_url}/api/v2/plugins", headers={"Authorization": f"Bearer {token}"}, timeout=30
        ).json()
        [plugin] = [p for p in views["plugins"] if p["name"] == "asr_reports"]
        assert plugin["external_views"][0]["href"] == "asr/reports/{DAG_ID}/{RUN_ID}"
        assert plugin["external_views"][0]["destination"] == "dag_run"
