"""How long runs' files stay: ``ASR_KEEP_RUNS_DAYS`` after a run last wrote.

Every run keeps its findings, batches, outcomes and reports under
``<data_dir>/<dag_id>/<run_id>/`` (``asr.store``): tens of MB for a sweep of 10,000 findings,
every hour for a scheduled sweep. Nothing read them once people were done with the run, so
the data dir grew for good. ``prune_runs`` deletes the files of runs that ended and wrote
nothing for that long. The audit journal and the claims (``ASR_AUDIT_DIR``, by default the
data dir's ``audit`` folder, never inside a DAG's folder: ``Settings``) are never touched:
rollbacks read the journal, and it is the record of what asr changed.

A pruned run keeps its ``run.json``, marked: a run triggered later under the same id must
still be refused its folder (``RunStore.refuse_another``), a task of it cleared later must
not run on nothing (``asr.tasks.run_context``), and people naming it (a rollback, a rerun of
its failures) are told its files were deleted, not that it never ran or has not finished.
"""

from __future__ import annotations

import logging
import math
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from asr.store import ENDED, FOLDER_DAGS, OWNER, RunStore, remove_tree

log = logging.getLogger(__name__)
NOT_FOUND = 404  # the Execution API's answer for a DAG run it does not have


@dataclass
class Pruned:
    """What a pass over the data dir did: the runs whose files went (``<dag>/<folder>``), those
    old enough but not known to have ended, and those it could not read, delete or ask
    Airflow about (kept, and tried again on the next pass)."""

    deleted: list[str] = field(default_factory=list)
    not_ended: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"deleted": len(self.deleted), "not_ended": len(self.not_ended), "failed": len(self.failed)}


def airflow_state(dag_id: str, run_id: str) -> str | None:
    """The state Airflow gives the run; None only when Airflow answers that it has no such run
    (deleted, or cleaned out of its database). Any other failure raises: ``store.run_state``
    reads every failure as None, and here None deletes."""
    from airflow.sdk.api.client import ServerResponseError
    from airflow.sdk.exceptions import AirflowRuntimeError
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    try:
        state = RuntimeTaskInstance.get_dagrun_state(dag_id=dag_id, run_id=run_id)
    except AirflowRuntimeError as exc:  # a task's supervisor passes the API server's answer on
        if (exc.error.detail or {}).get("status_code") == NOT_FOUND:
            return None
        raise
    except ServerResponseError as exc:  # dag.test's supervisor, in the task's process, does not
        if exc.response.status_code == NOT_FOUND:
            return None
        raise
    return str(getattr(state, "value", state))


def _mtime(info: dict[str, Any]) -> float:
    """When an object was written; a store that does not say (``st_mtime`` reads 0) gives
    infinity, so that its run never looks old: deleting on a guess is no option."""
    from airflow.sdk.io.stat import stat_result

    return float(stat_result(info).st_mtime) or math.inf


# A run id as its folder reads it (``store.safe_name``): Airflow's own ids end in a time,
# whose ":" and "+" read "_" there.
FOLDER_OF_AIRFLOW_ID = re.compile(
    r"(?P<kind>[a-z_]+?)__(?P<day>\d{4}-\d\d-\d\d)T(?P<h>\d\d)_(?P<m>\d\d)_(?P<s>\d\d)(?P<frac>\.\d+)?"
    r"_(?P<oh>\d\d)_(?P<om>\d\d)"
)


def ids_of_folder(folder: str) -> list[str]:
    """The run ids a folder without ``run.json`` (from before runs marked theirs) may belong
    to: its name, and the Airflow id it reads as, when it reads as one."""
    match = FOLDER_OF_AIRFLOW_ID.fullmatch(folder)
    if not match:
        return [folder]
    g = match.groupdict()
    made = f"{g['kind']}__{g['day']}T{g['h']}:{g['m']}:{g['s']}{g['frac'] or ''}+{g['oh']}:{g['om']}"
    return [folder, made]


def run_files(dag_root: Any) -> dict[str, dict[str, float]]:
    """Each run folder's files under a DAG's folder (path inside the folder -> when written),
    from one listing: a daily pass must not ask object storage once per run it ever kept."""
    found: dict[str, dict[str, float]] = defaultdict(dict)
    if isinstance(dag_root, Path):
        for path in dag_root.rglob("*"):
            run, _, inside = path.relative_to(dag_root).as_posix().partition("/")
            try:
                if inside and path.is_file():
                    found[run][inside] = path.stat().st_mtime
            except FileNotFoundError:  # a temporary file renamed meanwhile
                continue
        return found
    base = dag_root.path.rstrip("/") + "/"
    for key, info in dag_root.fs.find(dag_root.path, detail=True).items():
        run, _, inside = key.removeprefix(base).partition("/")
        if inside and info.get("type", "file") == "file":
            found[run][inside] = _mtime(info)
    return found


def prune_runs(
    root: Any,
    keep: timedelta,
    now: datetime,
    dry_run: bool = False,
    state: Callable[[str, str], str | None] = airflow_state,
) -> Pruned:
    """Delete the files of every run under ``root`` (the data dir) that last wrote a file of
    its folder's top level (a report, its records, its owner mark: a run cleared and run again
    writes them anew) more than ``keep`` before ``now``, and has ended: Airflow says so, or
    answers that it no longer has the run. With ``dry_run``, only say which."""
    done = Pruned()
    for dag_id in FOLDER_DAGS:
        dag_root = root / dag_id
        if not dag_root.is_dir():
            continue
        for folder, files in sorted(run_files(dag_root).items()):
            if set(files) == {OWNER}:
                continue  # pruned already (or a run that died as it began: one small file)
            name = f"{dag_id}/{folder}"
            try:
                if not _prune_one(
                    RunStore(dag_root / folder), dag_id, folder, files, keep, now, dry_run, state
                ):
                    continue
            except NotEnded:
                done.not_ended.append(name)
            except Exception as exc:  # a run Airflow could not answer for, a file unread or kept: left
                log.warning("Left the files of run %s: %s", name, exc)
                done.failed.append(name)
            else:
                done.deleted.append(name)
    return done


class NotEnded(Exception):
    """Airflow does not say the run ended: its files stay."""


def _prune_one(
    store: RunStore,
    dag_id: str,
    folder: str,
    files: dict[str, float],
    keep: timedelta,
    now: datetime,
    dry_run: bool,
    state: Callable[[str, str], str | None],
) -> bool:
    """Prune one run folder if it is old and ended (NotEnded if only old); whether it was."""
    owner = store.owner() if OWNER in files else {}
    top = [written for inside, written in files.items() if "/" not in inside]
    # A run marked pruned by a pass that could not finish is old enough already.
    if not owner.get("pruned") and (not top or now.timestamp() - max(top) <= keep.total_seconds()):
        return False
    if owner.get("dag_id") == dag_id and owner.get("run_id"):
        states = [state(dag_id, owner["run_id"])]
        ended = states[0] in ENDED or states[0] is None  # None: Airflow has no such run
    else:
        # No recorded id: Airflow may know the run by another name than these, so only its
        # word that the run ended counts, not "no such run".
        states = [state(dag_id, run_id) for run_id in ids_of_folder(folder)]
        ended = any(s in ENDED for s in states)
    if not ended:
        raise NotEnded
    if not dry_run:
        _prune(store, owner, now)
    return True


def _prune(store: RunStore, owner: dict[str, Any], now: datetime) -> None:
    """Mark the run pruned first, so that a pass stopped halfway leaves a run that says so
    (and the next pass deletes the rest); a folder no run marked goes whole."""
    if not owner:
        remove_tree(store.root)
        return
    if not owner.get("pruned"):
        store.write_json(OWNER, owner | {"pruned": now.isoformat()})
    for path in list(store.root.iterdir()):
        if path.name == OWNER:
            continue
        if path.is_dir():
            remove_tree(path)
        else:
            path.unlink()
