"""Airflow plugin: each asr run's report as a **Report** tab on the run's page in the UI,
served by the API server (``asr.report_view``)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from asr.report_view import URL_ROUTE, ReportsApp

PREFIX = "/asr"


class AsrReports(AirflowPlugin):
    name = "asr_reports"
    fastapi_apps = [{"app": ReportsApp(), "url_prefix": PREFIX, "name": "asr run reports"}]
    # No leading slash: the UI resolves it against its own base, so a deployment under a
    # path (``[api] base_url``) finds it too.
    external_views = [
        {
            "name": "Report",
            "href": PREFIX.lstrip("/") + "/reports/{DAG_ID}/{RUN_ID}",
            "destination": "dag_run",
            "url_route": URL_ROUTE,
        }
    ]
