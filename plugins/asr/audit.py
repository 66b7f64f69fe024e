"""The audit journal: every change recorded before it is made, in an append-only store.

Before a fix changes a resource, an *intent* is written and made durable: who (the run's
triggering user, or the scheduler) and what (DAG, run, batch, try), when, where (account,
region of the clients, the resource's own region, resource, findings, control), which action
with which parameters, the settings about to change (before) and what they will become
(plan). After the change a *settle* line follows: the outcome, the state read back (after),
the message. Rollback records its own reverts the same way, in the same run's journal. An
intent without a settle is a change whose task died before it could say how it ended: a
retry or a rollback can see it.

Nothing is rewritten. On local disk each writer (one task try) appends JSON lines to its
own file and fsyncs it before a change goes ahead (one fsync serves the lines that
threads wrote meanwhile); in object storage (``s3://...``), which cannot append, each
event is its own object, named so that names sort by time and never collide. Credentials
never reach the journal: only ids, settings and outcomes are written, never the clients.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asr.store import RunStore, bounded, fsync_path, safe_name

if TYPE_CHECKING:
    from asr.remediate import Planned, Result, Target

log = logging.getLogger(__name__)

INTENT = "intent"
SETTLE = "settle"
# A rollback's mark, in the journal of the run it undoes, written before its first revert: from
# then on that run's fix tasks and write-back refuse to act (``AuditJournal.rolled_back_by``).
BEGIN = "begin"
FIX = "fix"
REVERT = "revert"
# Outcome of a change whose intent has no settle: its task died between the two.
UNSETTLED = "UNSETTLED"
# Who started a run that no person triggered, by run type.
RUN_TYPE_ACTORS = {"scheduled": "scheduler", "asset_triggered": "Security Hub events", "backfill": "backfill"}


@dataclass(frozen=True)
class Origin:
    """Who and what writes to a journal: the task try that makes the changes."""

    dag_id: str
    run_id: str
    batch_id: str
    try_number: int | None
    who: str

    @classmethod
    def from_context(cls, context: Mapping[str, Any], batch_id: str) -> Origin:
        """The running task's DAG, run, try and the person (or scheduler) behind the run."""
        dag_run = context["dag_run"]
        run_type = getattr(dag_run, "run_type", "")
        run_type = str(getattr(run_type, "value", run_type))  # DagRunType, or its text
        who = getattr(dag_run, "triggering_user_name", None) or RUN_TYPE_ACTORS.get(run_type, run_type or "?")
        task_instance = context.get("ti")
        return cls(
            dag_id=context["dag"].dag_id,
            run_id=context["run_id"],
            batch_id=batch_id,
            try_number=getattr(task_instance, "try_number", None),
            who=str(who),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "batch_id": self.batch_id,
            "try_number": self.try_number,
            "who": self.who,
        }


def journal_root(audit_dir: str, dag_id: str, run_id: str, conn_id: str | None = None) -> Any:
    """The folder (local path or ``ObjectStoragePath``) holding one run's audit events."""
    return RunStore.for_run(audit_dir, dag_id, run_id, conn_id).root


# Of each event's time: text that sorts as the times do.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
# Which runs' journals were written to on which day (UTC): an empty file per run and day,
# ``activity/<day>/<dag>/<run folder>`` beside the DAGs' folders, so that finding the runs
# since a fix (``asr.rollback.fixed_again``) lists a few days, not every run there ever was.
ACTIVITY = "activity"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime(TIME_FORMAT)


def _plain(value: Any) -> Any:
    """JSON-native data (dates as ISO text), as it will read back from the journal."""
    return json.loads(json.dumps(value, default=str))


def resource_key(event: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    """What one change is about: kind, account, region, resource and action."""
    return (event["kind"], event["account_id"], event["region"], event["resource_id"], event["action"])


def fix_key(intent: Mapping[str, Any]) -> tuple[str, ...]:
    """One playbook's fix of one resource: two playbooks may share an action (IAM.8 and IAM.22
    both revoke unused credentials, at 90 and 45 days), and each change is its own to undo."""
    return (*resource_key(intent)[1:], intent.get("playbook") or "")


@dataclass(frozen=True)
class Change:
    """One intent and, when its task lived to write it, the settle that followed."""

    intent: dict[str, Any]
    settle: dict[str, Any] | None

    @property
    def status(self) -> str:
        return str(self.settle["status"]) if self.settle else UNSETTLED

    @property
    def finding_ids(self) -> list[str]:
        return list(self.intent.get("finding_ids") or [])

    def about(self, controls: Iterable[str] = (), finding_ids: Iterable[str] = ()) -> bool:
        """Whether the change touches any of the controls (or playbooks) and findings asked for."""
        controls, finding_ids = set(controls), set(finding_ids)
        named = {*self.intent.get("control_ids", []), self.intent.get("playbook")}
        return (not controls or bool(controls & named)) and (
            not finding_ids or bool(finding_ids & set(self.finding_ids))
        )


def pair(events: Iterable[dict[str, Any]]) -> list[Change]:
    """Intents with their settles, in time order.

    A settle that names its intent (``intent``: the intent's id) belongs to it, even when it
    sorts first: another host wrote it (a retry, a task resumed after deferral) by a clock
    behind the first one's. Otherwise (older journals, reverts) a settle belongs to the latest
    earlier intent of the same kind, resource and action that has none yet, so a retry's
    intent does not take an earlier try's.
    """
    changes: list[Change] = []
    open_intents: dict[tuple[str, ...], list[int]] = {}
    by_id: dict[str, int] = {}
    early: dict[str, dict[str, Any]] = {}  # settles met before their intent, by its id
    for event in sorted(events, key=lambda e: (e["time"], e.get("seq", 0))):
        if event["event"] not in (INTENT, SETTLE):  # a rollback's BEGIN: about no resource
            continue
        key = resource_key(event)
        named = event.get("intent")
        if event["event"] == INTENT:
            if event.get("id") in early:
                changes.append(Change(event, early.pop(event["id"])))
                continue
            by_id[event.get("id") or ""] = len(changes)
            open_intents.setdefault(key, []).append(len(changes))
            changes.append(Change(event, None))
        elif event["event"] == SETTLE and named:
            index = by_id.get(named)
            if index is None:
                early[named] = event
            elif changes[index].settle is None:
                open_intents.get(key, []).remove(index)
                changes[index] = Change(changes[index].intent, event)
        elif event["event"] == SETTLE:
            waiting = open_intents.get(key, [])
            # Two playbooks' fixes of one resource may overlap (IAM.8 and IAM.22): a settle
            # names its playbook (older journals' do not: then the latest intent is it).
            mine = [i for i in waiting if changes[i].intent.get("playbook") == event.get("playbook", "?")]
            if not (mine or waiting):
                log.warning("audit: a settle without an intent: %s", event)
                continue
            index = (mine or waiting)[-1]
            waiting.remove(index)
            changes[index] = Change(changes[index].intent, event)
    for event in early.values():
        log.warning("audit: a settle without an intent: %s", event)
    return changes


class RolledBack(RuntimeError):
    """A task of a run a rollback began to undo: it must not fix or mark anything again."""


class AuditJournal:
    """One run's journal: written by the task try of ``origin``, read whole by anyone.

    ``root`` is the run's folder; the writer may be another run (a rollback writes its
    reverts into the journal of the run it reverts).
    """

    def __init__(self, root: Any, origin: Origin) -> None:
        self.root = root
        self.origin = origin
        self._lock = threading.Lock()
        self._seq = 0
        self._sync_lock = threading.Lock()
        self._synced = 0  # the last seq known to be on disk
        self._local = isinstance(root, Path)
        self._intents: dict[tuple[str, ...], str] = {}  # the latest intent's id, by target
        self._active_on = ""  # the last day this writer marked (``ACTIVITY``)
        # One file (or name prefix) per writer: the writing run's DAG, run, batch and try.
        self._file = bounded(
            safe_name(f"{origin.dag_id}.{origin.run_id}.{origin.batch_id}.try{origin.try_number or 0}")
        )

    @classmethod
    def for_task(
        cls, audit_dir: str, conn_id: str | None, context: Mapping[str, Any], batch_id: str
    ) -> AuditJournal:
        """The journal of the running task's own run."""
        origin = Origin.from_context(context, batch_id)
        return cls(journal_root(audit_dir, origin.dag_id, origin.run_id, conn_id), origin)

    # --- the hook the fix runner calls (asr.remediate.Journal)

    def intend(self, target: Target, planned: Planned) -> str:
        """Record the change about to be made; raises if it cannot be made durable. Returns the
        intent's id, which its settle names (``settle``)."""
        records = target.records
        intent_id = uuid.uuid4().hex
        self.record(
            {
                "event": INTENT,
                "kind": FIX,
                "id": intent_id,
                **self._where(target),
                # ``region`` is where the fix's clients were: a global playbook's batch's Region.
                # Where the resource is, the rollback judges ASR_REGIONS and reads its tags by.
                "resource_region": target.resource_region,
                "resource_arn": records[0].resource_arn if records else "",
                "finding_ids": sorted({r.finding_id for r in records}),
                "control_ids": sorted({r.control_id for r in records}),
                "params": target.action.params,
                "before": planned.before,
                "plan": planned.plan,
                "state": planned.state,
            }
        )
        with self._lock:
            self._intents[fix_key({"kind": FIX, **self._where(target)})] = intent_id
        return intent_id

    def settle(self, target: Target, result: Result, intent: str | None = None) -> None:
        """Record how the change ended, naming its intent: ``intent``, else the latest this
        writer recorded for the target."""
        where = self._where(target)
        with self._lock:
            intent = intent or self._intents.pop(fix_key({"kind": FIX, **where}), None)
        self.record(
            {
                "event": SETTLE,
                "kind": FIX,
                **where,
                **({"intent": intent} if intent else {}),
                "status": str(result.status),
                "message": result.message,
                "before": result.before,
                "after": result.after,
            }
        )

    @staticmethod
    def _where(target: Target) -> dict[str, Any]:
        # Only the ids of the clients: the object itself holds credentials.
        return {
            "account_id": target.clients.account_id,
            "region": target.clients.region,
            "resource_id": target.resource_id,
            "action": target.action.name,
            "playbook": target.records[0].playbook if target.records else "",
        }

    # --- writing

    def record(self, event: dict[str, Any]) -> dict[str, Any]:
        """Append one event (stamped with time, order and origin), durably; return it as written."""
        with self._lock:
            self._seq += 1
            stamped = _plain({**event, "time": _now(), "seq": self._seq, **self.origin.to_dict()})
            if stamped["time"][:10] != self._active_on:
                self._mark_active(stamped["time"][:10])
            line = json.dumps(stamped, sort_keys=True) + "\n"
            if self._local:
                self._append_local(line)
            else:
                self._put_object(stamped, line)
        if self._local:
            self._sync(stamped["seq"])
        return stamped

    def _mark_active(self, day: str) -> None:
        """Note that the run's journal is written to on ``day``, before the event is."""
        marker = activity_root(self.root.parent.parent) / day / self.root.parent.name / self.root.name
        if self._local:
            new = [folder for folder in (marker.parent, marker.parent.parent) if not folder.exists()]
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            for folder in (marker.parent, *(folder.parent for folder in new)):  # the new names too
                fsync_path(folder)
        else:
            marker.write_text("")
        self._active_on = day

    def _path(self) -> Path:
        return self.root / f"{self._file}.jsonl"

    def _append_local(self, line: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._path()
        created = not path.exists()
        descriptor = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            data = line.encode("utf-8")
            size = os.fstat(descriptor).st_size
            if size and os.pread(descriptor, 1, size - 1) != b"\n":
                data = b"\n" + data  # an earlier write torn by a full disk: this line starts its own
            while data:  # a write may take only part (a full disk, a signal): the rest, or raise
                data = data[os.write(descriptor, data) :]
        finally:
            os.close(descriptor)
        if created:  # the new file's name must survive a crash too
            fsync_path(self.root)

    def _sync(self, seq: int) -> None:
        """Return once the line numbered ``seq`` is on disk. Group commit: one fsync covers
        every line written before it began, so threads recording at once share it instead
        of queueing one fsync each."""
        with self._sync_lock:
            if self._synced >= seq:
                return
            with self._lock:
                covered = self._seq
            fsync_path(self._path())
            self._synced = covered

    def _put_object(self, event: dict[str, Any], line: str) -> None:
        # Time first, so a listing is in time order; a random tail, so no name is ever reused.
        name = (
            f"{event['time']}-{self._file}-{event['seq']:06d}-{event['event']}-{uuid.uuid4().hex[:12]}.json"
        )
        (self.root / safe_name(name)).write_text(line)

    # --- reading

    def events(self, by_others: bool = False) -> list[dict[str, Any]]:
        """Every event of the run, in time order; ``by_others``: only the files (objects) that
        other runs wrote are read, not the run's own. A torn last line (a crash mid-write) is
        skipped."""
        if not self._local:  # s3fs keeps listings for good: another process's writes since
            self.root.fs.invalidate_cache(self.root.path)  # (a rollback's BEGIN) would stay unseen
        if not self.root.exists():
            return []
        # The run's own writers' names start so (``_file``); a long one may be cut (``bounded``),
        # and is then read too: the callers filter the events, this only spares reading.
        own = f"{self.root.parent.name}.{self.root.name}."
        events: list[dict[str, Any]] = []
        for path in sorted(self.root.iterdir(), key=lambda p: p.name):
            if by_others and self._writer(path.name).startswith(own):
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    log.warning("audit: unreadable line %d of %s skipped", number, path)
        return sorted(events, key=lambda e: (e["time"], e.get("seq", 0)))

    def changes(self, kind: str = FIX) -> list[Change]:
        return [change for change in pair(self.events()) if change.intent["kind"] == kind]

    def _writer(self, name: str) -> str:
        """Who wrote the file (object) ``name``: its name starts with the writer's (``_file``);
        an object's does after its time (``_put_object``)."""
        return name if self._local else name.partition("Z-")[2]

    def rolled_back_by(self) -> list[str]:
        """The runs (``<dag_id>/<run_id>``: asr_rollback's) that began to put back changes of
        this run (their ``BEGIN``, or a revert), earliest first. Only what other runs wrote is
        read: each fix task of a run asks, and a run never rolled back has nothing of theirs."""
        runs = (f"{e['dag_id']}/{e['run_id']}" for e in self.events(by_others=True) if e["kind"] == REVERT)
        return list(dict.fromkeys(runs))

    def refuse_if_rolled_back(self) -> None:
        """Raise ``RolledBack`` once a rollback has begun to undo this run (its ``BEGIN``, written
        before it reads or claims anything). Asked before a task reads anything, and again once
        a fix holds its resources' claims, so that one cleared as the rollback begins changes
        nothing; one that asked before the mark is caught by the rollback, which then finds
        the run running again (``rollback._begin``)."""
        rollbacks = self.rolled_back_by()
        if rollbacks:
            raise RolledBack(
                f"run {self.origin.dag_id}/{self.origin.run_id} was rolled back by {', '.join(rollbacks)}: "
                "its fixes are not applied again, nor written back to Security Hub; trigger a new run"
            )

    def made_earlier(self) -> dict[tuple[str, ...], dict[str, Any]]:
        """Fixes of this run that an earlier try began, by ``fix_key`` (account, region,
        resource, action, playbook):
        its ``before``, ``after`` (the plan, when unsettled) and whether it was ``settled``.
        An unsettled one's try died mid-change; a settled REMEDIATED one's before saving its
        outcomes. A retry that finds such a resource compliant reports the change."""
        made: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for change in self.changes():
            if change.settle is None:
                before, after, settled = change.intent.get("before"), change.intent.get("plan"), False
            elif change.status == "REMEDIATED":
                before, after, settled = change.settle.get("before"), change.settle.get("after"), True
            else:
                continue
            made[fix_key(change.intent)] = {
                "before": before,
                "after": after,
                "settled": settled,
                "intent_id": change.intent.get("id"),
            }
        return made

    def earlier(self, target: Target) -> list[Change]:
        """This resource's changes by this action earlier in the run (an earlier try's, say),
        so a retry can tell a change already made, or one cut off mid-way, from a new one."""
        where = self._where(target)
        return [
            change
            for change in self.changes()
            if all(change.intent.get(key) == value for key, value in where.items())
        ]


def activity_root(audit_root: Any) -> Any:
    return audit_root / ACTIVITY


def written_since(audit_root: Any, day: datetime.date) -> list[Any]:
    """The run folders (``journal_root``) whose journals were written to from ``day`` on (UTC),
    by the activity marks. An entry that is not a mark (a stray file, a folder marker an S3
    console made) is passed over."""
    folders: dict[str, Any] = {}
    today = datetime.datetime.now(datetime.UTC).date()
    for offset in range((today - day).days + 2):  # and tomorrow: a writer whose clock runs ahead
        for dag_folder in _listed(
            activity_root(audit_root) / (day + datetime.timedelta(days=offset)).isoformat()
        ):
            for mark in _listed(dag_folder):
                run_folder = audit_root / dag_folder.name / mark.name
                folders.setdefault(str(run_folder), run_folder)
    return list(folders.values())


def _listed(folder: Any) -> list[Any]:
    """A folder's entries; none when it is missing or not a folder."""
    try:
        return list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def canonical(value: Any) -> Any:
    """A state in a form to compare: JSON-native, every list in one fixed order (AWS returns
    rules and statements in no set order, and a rollback must not mistake that for a change)."""
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return sorted((canonical(item) for item in value), key=lambda item: json.dumps(item, sort_keys=True))
    return _plain(value)
