"""Where a run keeps its findings, batches and outcomes: files, not XCom.

XCom carries references and counts; the data a run works on lives under
``<data_dir>/<dag_id>/<run_id>/``, on local disk or, for a ``scheme://`` data dir,
in object storage through Airflow's ``ObjectStoragePath``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

OWNER = "run.json"  # the run a folder belongs to (``RunStore.own``)
# The DAGs whose runs a person can name to rerun their failures or roll them back.
RUN_DAGS = ("asr_sweep", "asr_remediate", "asr_events")
# The DAGs whose runs keep a folder of the data dir: those, and rollbacks.
ROLLBACK_DAG = "asr_rollback"
FOLDER_DAGS = (*RUN_DAGS, ROLLBACK_DAG)


def named_run(run: str, found: Callable[[str, str], bool]) -> tuple[str | None, str]:
    """The DAG of a run a person named, ``<dag_id>/<run_id>`` or its run id alone, among those
    where ``found(dag_id, run_id)`` (None: nowhere), and its run id; a ValueError when runs of
    several DAGs have that id: the person must say which."""
    dag_id, _, run_id = run.rpartition("/")
    dags = [dag for dag in ([dag_id] if dag_id else RUN_DAGS) if found(dag, run_id)]
    if len(dags) > 1:
        named = " or ".join(f"{dag}/{run_id}" for dag in dags)
        raise ValueError(f"runs of several DAGs are called {run_id!r}: name one, {named}")
    return (dags[0] if dags else None), run_id


def recorded_run_id(run_id: str, recorded: Iterable[Any]) -> str:
    """The run id as a run's files record it (``recorded``: the ids found there), for the one a
    person named: copied from the run's folder name, where ``:`` and ``+`` read ``_``, it
    finds the folder but matches none of what is recorded. Run ids that share one folder
    name must be told apart by the person (ValueError)."""
    ids = {r for r in recorded if isinstance(r, str)}
    if run_id in ids:
        return run_id
    alike = sorted(r for r in ids if safe_name(r) == safe_name(run_id))
    if len(alike) > 1:
        raise ValueError(f"several runs share the folder of {run_id!r}: name one of {alike}")
    return alike[0] if alike else run_id


ENDED = ("success", "failed")  # a DAG run's states once no task of it runs


def run_state(dag_id: str, run_id: str) -> str | None:
    """The state Airflow gives a DAG run ("running", "success", ...), or None where Airflow
    cannot be asked (outside a task: the CLI, a test's caller) or does not know the run."""
    try:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        state = RuntimeTaskInstance.get_dagrun_state(dag_id=dag_id, run_id=run_id)
    except Exception:  # no one to ask here
        return None
    return str(getattr(state, "value", state))


def safe_name(part: str) -> str:
    """A run's id or DAG id as a folder name: characters a file system or object store may
    refuse (`:`, `+`) read `_`, and so does a name of dots alone (Airflow takes a run id `.`,
    which as a folder would be the folder of every run of its DAG)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", part)
    return name if name.strip(".") else "_" * max(1, len(name))


NAME_LIMIT = 200  # bytes of a file name, below the 255 most file systems allow, for suffixes


def bounded(name: str, limit: int = NAME_LIMIT) -> str:
    """A file name of at most ``limit`` characters: a longer one keeps its start and ends in a
    digest of the whole, so it stays unique. Airflow run ids reach 250 characters."""
    if len(name) <= limit:
        return name
    return f"{name[: limit - 17]}-{hashlib.sha256(name.encode()).hexdigest()[:16]}"


def shown(location: Any) -> str:
    """A path or URL as a person may read it: without the connection id ObjectStoragePath puts
    in an object-store URL (``s3://aws_default@bucket/...``), or credentials given in one."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", str(location))


def data_root(data_dir: str, conn_id: str | None) -> Any:
    """The data dir (or any folder setting): a local path, or object storage for a URL."""
    if "://" in data_dir:
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(data_dir, conn_id=conn_id)
    return Path(data_dir)


def fsync_path(path: Any) -> None:
    """Make what is written to a local file, or a folder's entries (a file made or renamed in
    it), survive a crash of the host."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_whole(target: Any, text: str) -> None:
    """Write a whole file or nothing, durably: a task killed mid-write (or a host losing power
    after the task succeeded) must not leave a torn or empty file for write-back and the report
    to trip on. Locally through a hidden temporary file, synced, renamed over the target; an
    object store's put is whole and durable already."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not isinstance(target, Path):
        target.write_text(text, encoding="utf-8")
        return
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())  # on disk before the rename makes it the file: a power cut leaves
    os.replace(temporary, target)  # the old file or the new one, never an empty one
    fsync_path(target.parent)  # and the rename itself survives it


def remove_tree(path: Any) -> None:
    """Delete a folder and all it holds, on local disk or in object storage."""
    if isinstance(path, Path):
        shutil.rmtree(path)
    else:
        path.fs.rm(path.path, recursive=True)


class RunStore:
    def __init__(self, root: Any) -> None:
        self.root = root

    @classmethod
    def for_run(cls, data_dir: str, dag_id: str, run_id: str, conn_id: str | None = None) -> RunStore:
        return cls(data_root(data_dir, conn_id) / safe_name(dag_id) / safe_name(run_id))

    def path(self, name: str) -> Any:
        return self.root / name

    def own(self, dag_id: str, run_id: str, run_after: str | None = None) -> None:
        """Mark the folder as this run's (``refuse_another``); ``run_after``: when Airflow
        made the run, which tells it from a run of the same id deleted before it."""
        self.refuse_another(dag_id, run_id, run_after)
        self.write_json(OWNER, {"dag_id": dag_id, "run_id": run_id, "run_after": run_after})

    def owner(self) -> dict[str, Any]:
        """What ``run.json`` says of the run the folder is marked for; {} while none is."""
        return self.read_json(OWNER) if self.path(OWNER).exists() else {}

    def refuse_another(self, dag_id: str, run_id: str, run_after: str | None = None) -> dict[str, Any]:
        """Raise ValueError if the folder is another run's: run ids that differ only in
        characters a folder name cannot hold (``fix:1``, ``fix_1``, made up through the REST
        API) map to one folder, and a run must not read, report or roll back another's files.
        Nor may a run triggered again under the id of one deleted since: it would take that
        run's dry-run decision, approvals and SSM executions for its own. Returns ``owner()``,
        read once."""
        owner = self.owner()
        if owner and [owner.get("dag_id"), owner.get("run_id")] != [dag_id, run_id]:
            raise ValueError(
                f"run {run_id!r} of {dag_id} would share the folder {self.root} with run "
                f"{owner.get('run_id')!r}: trigger it with another run id"
            )
        earlier = owner.get("run_after")
        if earlier and run_after and earlier != run_after:
            kept = "its run.json" if owner.get("pruned") else "its files"
            raise ValueError(
                f"an earlier run {run_id!r} of {dag_id} (made {earlier}, deleted since) left {kept} "
                f"in {self.root}: trigger this one with another run id (they are that run's, and its "
                "audit journal its rollback)"
            )
        return owner

    def belongs_to(self, dag_id: str, run_id: str) -> bool:
        """Whether the folder is this run's id's, or no run's yet (or a run's from before ``own``)."""
        owner = self.owner()
        return not owner or [owner.get("dag_id"), owner.get("run_id")] == [dag_id, run_id]

    def run_named(self, dag_id: str, run_id: str) -> str:
        """The id of the run whose folder this is, for ``run_id`` as a person named it: the id
        itself or the folder's name (``recorded_run_id``); ``run_id`` when no run owns it."""
        owner = self.owner()
        return recorded_run_id(run_id, [owner.get("run_id")] if owner.get("dag_id") == dag_id else [])

    def pruned(self) -> str | None:
        """When the run's files were deleted for age (``asr.housekeeping``), else None."""
        return self.owner().get("pruned")

    def write_json(self, name: str, data: Any) -> Any:
        target = self.path(name)
        write_whole(target, json.dumps(data, indent=1, default=str))
        return target

    def read_json(self, name: str) -> Any:
        return json.loads(self.path(name).read_text())

    def write_lines(self, name: str, rows: Iterable[dict[str, Any]]) -> int:
        lines = [json.dumps(row, default=str) for row in rows]
        write_whole(self.path(name), "".join(line + "\n" for line in lines))
        return len(lines)

    def read_lines(self, name: str) -> Iterator[dict[str, Any]]:
        target = self.path(name)
        if not target.exists():
            return
        for line in target.read_text().splitlines():
            if line.strip():
                yield json.loads(line)

    def remove(self, name: str) -> None:
        """Delete a file, or every file of a folder; nothing there is fine."""
        target = self.path(name)
        if not target.exists():
            return
        for path in target.iterdir() if target.is_dir() else [target]:
            path.unlink()

    def names(self, folder: str) -> list[str]:
        directory = self.path(folder)
        if not directory.exists():
            return []
        return sorted(f"{folder}/{p.name}" for p in directory.iterdir() if not p.name.startswith("."))
