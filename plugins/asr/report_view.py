"""Each run's report in the Airflow UI: a **Report** tab on every run's page.

A run's report is a file in ``ASR_DATA_DIR``: on a worker's volume or in a bucket, where the
people who read runs in the Airflow UI may have no access. The API server reads it for them
(``asr_reports``, the Airflow plugin, mounts ``ReportsApp`` at ``/asr``), and Airflow's own
auth decides who may: whoever may read the DAG's task logs (which show the report's table),
through the UI's session cookie or a token.

The page is the file as the report step wrote it (``report.html``; ``rollback.md`` of an
``asr_rollback`` run, as text), under a policy that lets it load nothing and run nothing:
the report holds text from findings, escaped when written; this is the second fence.
"""

from __future__ import annotations

import logging
from html import escape
from typing import Any

from asr.config import ConfigError, Settings
from asr.store import FOLDER_DAGS, RunStore, shown

log = logging.getLogger(__name__)
# What the page may do: show itself and its inline style, be framed by the Airflow UI only.
# ``sandbox`` gives the page an origin of its own: even a script that got past the rest could
# not act as the Airflow user reading it.
POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'; sandbox"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
ROLLBACK_REPORT = "rollback.md"
UNREADABLE = "Could not read the run's report from ASR_DATA_DIR: the API server's log says why."
# The Report tab, as the UI names it under a run's page (``asr_reports``' ``url_route``).
URL_ROUTE = "asr-report"
TAB = f"plugin/{URL_ROUTE}"
NOT_YET = (
    "No report: the run's last step (report) writes it, and has not run or did not finish (its log "
    "says why). A run that is still going, or waits for an approval, shows its report when it ends."
)
# No file of the DAG's runs at all: none wrote yet, or this API server looks elsewhere.
NOTHING_SEEN = (
    "No report: nothing of {dag_id}'s runs is in ASR_DATA_DIR ({data_dir}) as the API server sees it. "
    "Either no run has written there yet, or the API server does not see the folder or bucket the "
    "workers write to: give it the same ASR_DATA_DIR (and volume)."
)


def _document(title: str, body: str) -> str:
    head = f'<meta charset="utf-8"><title>{escape(title)}</title>'
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>"


def note(text: str) -> str:
    """A page of one sentence, for a run without a report to show."""
    return _document("asr", f"<p>{escape(text)}</p>")


def as_text(title: str, text: str) -> str:
    return _document(title, f'<pre style="white-space: pre-wrap">{escape(text)}</pre>')


def page(settings: Settings, dag_id: str, run_id: str) -> tuple[int, str]:
    """The HTTP status and page for one run. A folder is found by the run's id made safe for
    a file name, which two run ids can share: a folder another run owns is not this run's."""
    if dag_id not in FOLDER_DAGS:
        return 404, note(f"{dag_id} is not one of asr's DAGs with a report: its task logs say what it did.")
    store = RunStore.for_run(settings.data_dir, dag_id, run_id, settings.aws_conn_id)
    owner = store.owner()
    if owner and (owner.get("dag_id"), owner.get("run_id")) != (dag_id, run_id):
        other = owner.get("run_id")
        return 404, note(f"No report: this run id's folder is run {other!r}'s, not this run's.")
    if owner.get("pruned"):
        return 410, note(
            f"This run's files were deleted on {owner['pruned']}, ASR_KEEP_RUNS_DAYS after it ended "
            "(asr_housekeeping); the audit journal keeps what its fixes changed."
        )
    if store.path("report.html").exists():
        return 200, store.path("report.html").read_text(encoding="utf-8")
    if store.path(ROLLBACK_REPORT).exists():
        return 200, as_text(f"{dag_id} {run_id}", store.path(ROLLBACK_REPORT).read_text(encoding="utf-8"))
    if not owner and not store.root.parent.exists():
        return 404, note(NOTHING_SEEN.format(dag_id=dag_id, data_dir=shown(settings.data_dir)))
    return 404, note(NOT_YET)


def build() -> Any:
    """The FastAPI app: ``GET /reports/{dag_id}/{run_id}``, for those Airflow lets read the DAG's
    task logs (which show the report's table). A setting asr cannot use, or a store that
    cannot be read, is said on the page, the details in the API server's log."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag
    from fastapi import Depends, FastAPI
    from fastapi.responses import HTMLResponse

    app = FastAPI(title="asr run reports", docs_url=None, redoc_url=None, openapi_url=None)

    may_read_logs = Depends(requires_access_dag("GET", DagAccessEntity.TASK_LOGS))

    @app.get("/reports/{dag_id}/{run_id}", dependencies=[may_read_logs])
    def report(dag_id: str, run_id: str) -> HTMLResponse:
        try:
            status, body = page(Settings.from_env(), dag_id, run_id)
        except ConfigError as exc:
            status, body = 500, note(f"asr's settings: {exc}")
        except Exception:  # a store down, a file half written or not text: said, not a bare 500
            log.exception("Could not read the report of %s %s", dag_id, run_id)
            status, body = 502, note(UNREADABLE)
        return HTMLResponse(body, status_code=status, headers=HEADERS)

    return app


class ReportsApp:
    """An ASGI app that builds ``build()`` at its first request. Every Airflow process imports
    the plugin, task processes too; only the API server serves it, and only it should import
    FastAPI and Airflow's API security for it."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = build()
        await self._app(scope, receive, send)
