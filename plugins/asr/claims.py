"""Claims on resources, so two runs that overlap never fix the same resource twice.

A sweep, a person's rerun and an event run can all name one security group at the same
time. Reading it first does not help: both runs read it non-compliant before either has
changed it. So a fix task claims every resource of its batch before it reads any: one
file per resource, created only if absent, where every worker sees it: linked to its name
in a shared folder (a hard link fails on a name that exists, on NFS and EFS too), or with a
conditional write (``If-None-Match: *``) in S3. A resource
another run holds is left to that run; the claim is dropped when the batch is done. A
claim states how long its holder may keep it (``ttl``: longer for a task that waits on SSM
Automation); one older than that belongs to a task that died, and may be broken: only that
claim, so two runs that find it at the same moment cannot delete the fresh one either of
them has just made. For the same reason a holder drops only its own claim, not one another
run made after breaking its own (``_delete_if``).

The holder is one task of one run (``for_run``): a retry of that task takes its claims
over, while two playbooks of a run whose fixes share an action (IAM.8 and IAM.22) claim
each resource in turn. A claim on a resource also lapses once Airflow says its holder's run
has ended: a task killed with no try left never dropped it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from asr.store import ENDED, run_state

DEFAULT_TTL = 6 * 3600.0
BREAK_LOCK = ".breaking.lock"  # in a local claims folder: breakers of stale claims take turns
# S3's answers to a conditional delete of a claim that is no longer the one judged stale.
NOT_OURS_TO_BREAK = ("NoSuchKey", "404", "PreconditionFailed", "412", "ConditionalRequestConflict", "409")
ATTEMPTS = 3  # tries to claim one resource (a write that failed, a claim released meanwhile)
log = logging.getLogger(__name__)


def claim_name(account_id: str, region: str, resource_id: str, action: str) -> str:
    """A file name for a resource: a digest, since resource ids may hold any character."""
    key = json.dumps([account_id, region, resource_id, action])
    return hashlib.sha256(key.encode()).hexdigest()[:40] + ".json"


def _create(path: Any, body: bytes) -> bool:
    """Write a claim only if none exists; False when one does.

    A claim appears whole or not at all. In a folder it is written to a file of its own,
    then linked to its name (``link`` fails if the name exists): made with ``O_EXCL`` and
    then written, a writer killed between the two left an empty claim nobody owned, which
    shut every run out of the resource for the ttl, a retry of that very task included.
    A writer killed before the link leaves a hidden ``.tmp`` file, never read as a claim.
    """
    if isinstance(path, Path):
        draft = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            try:
                os.write(descriptor, body)
            finally:
                os.close(descriptor)
            os.link(draft, path)
        except FileExistsError:
            return False
        finally:
            draft.unlink(missing_ok=True)
        return True
    try:
        path.fs.pipe_file(path.path, body, mode="create")  # s3fs: PutObject with If-None-Match: *
    except FileExistsError:
        return False
    return True


def _owner(text: str) -> str | None:
    """Who holds a claim, from its text; None for one not yet filled in."""
    try:
        return str(json.loads(text)["owner"])
    except (ValueError, KeyError, TypeError):
        return None


def _age(text: str, modified: Callable[[], float]) -> float:
    """How long a claim has been held, from its text. A claim its writer has created but not
    yet filled in (or died filling in) is judged by when it was written."""
    try:
        return time.time() - float(json.loads(text)["time"])
    except (ValueError, KeyError, TypeError):
        return time.time() - modified()


def _stale(text: str, modified: Callable[[], float], ttl: float) -> bool:
    """Whether a claim is older than the ttl it states (claims before that state none: ``ttl``)."""
    try:
        stated = float(json.loads(text)["ttl"])
    except (ValueError, KeyError, TypeError):
        stated = ttl
    return _age(text, modified) > stated


def _break(path: Any, ttl: float) -> None:
    """Delete the claim at ``path`` if it is still stale (``_stale``)."""
    _delete_if(path, lambda text, modified: _stale(text, modified, ttl))


def _delete_if(path: Any, judge: Callable[[str, Callable[[], float]], bool]) -> None:
    """Delete the claim at ``path`` if ``judge`` (given its text and when it was written) says so.

    Read, judged, then deleted: between the read and the delete another run may have broken
    the same claim and made its own, which must survive. In S3 the delete names the ETag of
    the very object judged (``If-Match``), which a newer claim does not carry. (AWS honours
    that on general purpose buckets since September 2025; an S3-compatible store that
    ignores it deletes regardless, and the race is back.) In a local folder, judges take
    turns under a lock, so the claim one of them has made is seen fresh by the next.
    """
    if isinstance(path, Path):
        # flock needs no more than a read-only descriptor, so every worker that shares the
        # folder through its group can take the lock, whoever created the file.
        lock = os.open(path.parent / BREAK_LOCK, os.O_RDONLY | os.O_CREAT, 0o640)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if judge(path.read_text(), lambda: path.stat().st_mtime):
                path.unlink()
        except FileNotFoundError:
            pass
        finally:
            os.close(lock)  # and with it the lock
        return
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from botocore.exceptions import ClientError

    s3 = S3Hook(aws_conn_id=path.conn_id).get_conn()
    try:
        held = s3.get_object(Bucket=path.bucket, Key=path.key)
        text = held["Body"].read().decode("utf-8", "replace")
        if judge(text, held["LastModified"].timestamp):
            s3.delete_object(Bucket=path.bucket, Key=path.key, IfMatch=held["ETag"])
    except ClientError as exc:
        # Gone (released or broken meanwhile), replaced by a newer claim, or being written or
        # deleted by another run right now (409): in every case not this one's to delete.
        if exc.response.get("Error", {}).get("Code") not in NOT_OURS_TO_BREAK:
            raise
    finally:
        path.fs.invalidate_cache(path.path)


def _run_ended(owner: str) -> bool:
    """Whether Airflow says the run of a claim's holder (``dag/run[/task]``) has ended: its
    task was killed with no try left (a lost worker, the OOM killer) and never dropped its
    claims, which would keep reruns, rollbacks and sweeps off the resource for the ttl."""
    dag_id, _, rest = owner.partition("/")
    return bool(rest) and run_state(dag_id, rest.partition("/")[0]) in ENDED


class Claims:
    """One holder's claims under ``root``: a local ``Path`` or an S3 ``ObjectStoragePath``."""

    def __init__(self, root: Any, owner: str, ttl: float = DEFAULT_TTL, lapse_with_run: bool = False) -> None:
        self.root = root
        self.owner = owner
        self.ttl = ttl
        # A claim on a resource lapses once its holder's run has ended (``_run_ended``); one
        # that marks something taken for good (an event a run took) must not.
        self.lapse_with_run = lapse_with_run
        self._ended: dict[str, bool] = {}  # by holder: Airflow is asked once a batch, not per claim
        # By path: the path, and when this object made the claim (the ``time`` written in it).
        self._held: dict[str, tuple[Any, float | None]] = {}

    def acquire(self, name: str, about: dict[str, Any]) -> str | None:
        """Claim one resource; None when it is ours now, else who holds it."""
        path = self.root / name  # a name may hold a folder (``events.message_claim``: a day's)
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(ATTEMPTS):
            written = time.time()
            body = json.dumps({"owner": self.owner, "time": written, "ttl": self.ttl, **about}).encode()
            try:
                created = _create(path, body)
            except OSError as exc:  # S3 answers 409 to a conditional write racing a delete
                if attempt == ATTEMPTS - 1:
                    raise
                log.info("Claiming %s failed (%s); trying again", path, exc)
                time.sleep(0.2 * (attempt + 1))
                continue
            if created:
                self._held[str(path)] = (path, written)
                return None
            held = self._read(path)
            if held is None:  # released meanwhile: try again
                continue
            owner, stale = held
            if owner == self.owner:
                # An earlier try of this task died holding it, perhaps hours ago: made anew, so
                # that its age counts from now and no other run breaks it while this try works.
                _delete_if(path, self._ours)
                continue
            if stale:
                _break(path, self.ttl)
                continue
            if owner and self.lapse_with_run and self._run_ended(owner):
                _delete_if(path, lambda text, _, dead=owner: _owner(text) == dead)
                continue
            return owner or "another run"
        return "another run"

    def _run_ended(self, owner: str) -> bool:
        if owner not in self._ended:
            self._ended[owner] = _run_ended(owner)
        return self._ended[owner]

    def holder(self, name: str) -> str | None:
        """Who else holds the claim ``name`` now; None when nobody does (or only this holder,
        or a holder whose claim has lapsed)."""
        held = self._read(self.root / name)
        if held is None or held[1] or held[0] == self.owner:
            return None
        return held[0] or "another run"

    def _ours(self, text: str, _: Callable[[], float]) -> bool:
        return _owner(text) == self.owner

    def _read(self, path: Any) -> tuple[str | None, bool] | None:
        """Who holds a claim, and whether it is stale (``_stale``); None if it is gone. In S3 a
        claim released and made anew while it is read is read again: s3fs reads an object by
        the ETag it saw first, and answers FileExpired (EBUSY) when that object was replaced."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                text = path.read_text()
                return _owner(text), _stale(text, lambda: path.stat().st_mtime, self.ttl)
            except FileNotFoundError:
                return None
            except OSError as exc:
                if exc.errno != errno.EBUSY or attempt == ATTEMPTS:
                    raise
                log.info("Claim %s was replaced while it was read; reading it again", path)
        raise AssertionError("unreachable")

    def release(self, names: Iterable[str]) -> None:
        """Drop the claims named, if they are still ours: a task that deferred drops the claims
        it took when it resumes, perhaps in another process."""
        paths = [self.root / name for name in sorted(set(names))]
        for path in paths:
            self._held.pop(str(path), None)
        self._drop([(path, None) for path in paths])

    def release_all(self) -> None:
        """Drop every claim held."""
        self._drop(list(self._held.values()))
        self._held = {}

    def _drop(self, paths: list[tuple[Any, float | None]]) -> None:
        """Delete each claim, with when this object made it (None: not this object).

        A claim made less than half its ttl ago (by the clock other runs judge it by) is
        still ours: nobody may break it yet. An older one, or one of unknown age, may have
        been broken and its name taken by another run: it is read first, and deleted only if
        ours. One that cannot be dropped lapses after its ttl, and must not cost the batch
        its outcomes.
        """
        for path, written in paths:
            try:
                if written is not None and time.time() - written < self.ttl / 2:
                    path.unlink(missing_ok=True)
                else:
                    _delete_if(path, self._ours)
            except Exception as exc:
                log.warning(
                    "Could not release the claim %s (%s): other runs leave that resource alone "
                    "for up to %.0f h (s3:DeleteObject on the audit dir?)",
                    path,
                    exc,
                    self.ttl / 3600,
                )


def for_run(
    audit_root: str,
    dag_id: str,
    run_id: str,
    conn_id: str | None = None,
    task_id: str = "",
    ttl: float = DEFAULT_TTL,
    lapse_with_run: bool = False,
) -> Claims | None:
    """The claims of one task of a run (``task_id``; without it, the run's), beside the
    audit journal: in a folder every worker shares, or in S3, where a conditional write
    makes creating a claim exclusive. Other object stores give no such guarantee through
    fsspec, so there are no claims there, and overlapping runs rely on reading each
    resource before they change it. ``lapse_with_run``: claims on resources, which another
    run may take once this run has ended (``Claims``)."""
    owner = "/".join(part for part in (dag_id, run_id, task_id) if part)
    if audit_root.startswith("s3://"):
        from airflow.sdk import ObjectStoragePath

        return Claims(ObjectStoragePath(audit_root, conn_id=conn_id) / "claims", owner, ttl, lapse_with_run)
    if "://" in audit_root:
        return None
    return Claims(Path(audit_root) / "claims", owner, ttl, lapse_with_run)
