"""Rollback: put back what a run's fixes changed, from the run's audit journal.

For each change of the selection (the run, narrowed to some controls or findings) that
succeeded, or whose task died before it could say (and the resource reads as the fix would
leave it), the resource is read first: if it no longer reads as the fix left it, someone or
something changed it since, and it is left alone; deleted since (or all of it the fix
changed), it has nothing to put back. Otherwise the action's ``revert`` puts the recorded
before-state back, in the member account as the fix did, and a read-back must show it. Each
revert is itself recorded in the run's journal (an intent, then a settle). Fixes that cannot
be undone say why. The rollback report lists every change and what became of it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from asr import actions
from asr.actions.s3 import bucket_home
from asr.audit import (
    BEGIN,
    FIX,
    INTENT,
    REVERT,
    SETTLE,
    TIME_FORMAT,
    UNSETTLED,
    AuditJournal,
    Change,
    Origin,
    canonical,
    fix_key,
    journal_root,
    pair,
    written_since,
)
from asr.aws import AwsContext, Clients
from asr.claims import Claims, claim_name
from asr.guard import Scope, excluded_by_tag
from asr.playbooks import registry
from asr.remediate import Status, describe_error, error_code, read_again_while, retry_throttled
from asr.securityhub import (
    NOT_MARKED,
    iter_findings,
    queries_by_id,
    refused_for_now,
    reverted_by,
    update_findings,
    with_marks,
)
from asr.store import ROLLBACK_DAG, RUN_DAGS, RunStore, named_run, recorded_run_id, safe_name

log = logging.getLogger(__name__)
T = TypeVar("T")

# The rollback report, in the rollback run's folder (beside ``rollback.md``).
REPORT = "rollback.json"


class RollbackStatus(StrEnum):
    REVERTED = "REVERTED"
    # Put back in part; what could not be put back says why (``Action.lost_on_revert``,
    # ``actions.RevertedInPart``).
    PARTLY_REVERTED = "PARTLY_REVERTED"
    WOULD_REVERT = "WOULD_REVERT"  # a dry run
    NOT_REVERSIBLE = "NOT_REVERSIBLE"
    # Changed since the fix: left alone; or deleted since (``Deleted``): nothing to put back.
    CHANGED_SINCE = "CHANGED_SINCE"
    ALREADY_REVERTED = "ALREADY_REVERTED"
    NOT_FIXED = "NOT_FIXED"  # the fix itself did not succeed: nothing of it to put back
    # The account, region or control is outside what asr may act on now (``asr.guard``).
    OUT_OF_SCOPE = "OUT_OF_SCOPE"
    # A person rejected the rollback, or did not answer in time; or, read again once it was
    # approved, the change would now be put back though the request did not list it.
    NOT_APPROVED = "NOT_APPROVED"
    FAILED = "FAILED"


# What Security Hub is told was put back: by this rollback run (an earlier rollback told it then).
PUT_BACK = (RollbackStatus.REVERTED, RollbackStatus.PARTLY_REVERTED)


class RollbackError(ValueError):
    """The run to roll back cannot be found, has not finished, or changed none of what was asked."""


@dataclass(frozen=True)
class Reversal:
    """What became of one recorded change."""

    account_id: str
    region: str
    resource_id: str
    action: str
    control_ids: list[str]
    finding_ids: list[str]
    status: str
    reason: str
    before: dict[str, Any] | None
    now: dict[str, Any] | None = None
    fix_id: str = ""  # the fix's intent id in the journal

    @classmethod
    def of(cls, change: Change, status: str, reason: str, now: dict[str, Any] | None = None) -> Reversal:
        intent = change.intent
        return cls(
            account_id=intent["account_id"],
            region=resource_region(intent),
            resource_id=intent["resource_id"],
            action=intent["action"],
            control_ids=list(intent.get("control_ids") or []),
            finding_ids=change.finding_ids,
            status=status,
            reason=reason,
            before=intent.get("before"),
            now=now,
            fix_id=intent["id"],
        )


def find_journal(
    audit_dir: str, run: str, conn_id: str | None, origin: Origin
) -> tuple[AuditJournal, tuple[str, str]]:
    """The journal of the run named ``<dag_id>/<run_id>``, or by its run id alone, written as
    ``origin``; and which DAG's run that is."""
    dag_id, run_id = named_run(
        run, lambda dag, run_id: journal_root(audit_dir, dag, run_id, conn_id).exists()
    )
    if dag_id is None:
        raise RollbackError(f"no audit journal of run {run!r} under {audit_dir}")
    journal = AuditJournal(journal_root(audit_dir, dag_id, run_id, conn_id), origin)
    # The run id as the journal's changes record it, also when named as its folder reads.
    recorded = (c.intent.get("run_id") for c in journal.changes(FIX) if c.intent.get("dag_id") == dag_id)
    return journal, (dag_id, recorded_run_id(run_id, recorded))


def latest_fixes(changes: Iterable[Change]) -> list[Change]:
    """The last fix of each resource by each playbook, newest first, so later changes are undone
    before earlier ones. An earlier try's intent for the same resource is superseded by the
    retry's; if that try changed part of the resource before it died or failed, the retry
    read the half-changed resource as its "before", so the retry's change is taken back to
    the earlier try's before-state (``_continued``)."""
    latest: dict[tuple[str, ...], Change] = {}
    for change in changes:
        if change.intent["kind"] == FIX:
            key = fix_key(change.intent)
            earlier = latest.get(key)
            latest[key] = _continued(earlier, change) if earlier else change
    return sorted(latest.values(), key=lambda c: c.intent["time"], reverse=True)


def _continued(earlier: Change, retry: Change) -> Change:
    """The retry's change, from the state before the earlier try of the same run when that try
    made part of the change and did not finish it; else the retry's change as it is. An
    earlier intent of the same try was planned again from a new read before anything was
    changed (``remediate._apply``): the later one stands alone."""
    run, task_try = ("dag_id", "run_id"), ("dag_id", "run_id", "batch_id", "try_number")
    if earlier.status == Status.REMEDIATED or not _made(earlier):
        return retry
    if [earlier.intent.get(k) for k in run] != [retry.intent.get(k) for k in run]:
        return retry
    if [earlier.intent.get(k) for k in task_try] == [retry.intent.get(k) for k in task_try]:
        return retry
    intent = retry.intent | {
        "state": earlier.intent["state"],
        "before": retry.intent["before"] | earlier.intent["before"],
        # What the earlier try meant to set and the retry did not set again: the earlier try did.
        "plan": earlier.intent["plan"] | retry.intent["plan"],
        "finding_ids": sorted({*earlier.finding_ids, *retry.finding_ids}),
    }
    return Change(intent, retry.settle)


def _made(change: Change) -> bool:
    """Whether the fix changed the resource: it was verified, or its task died before it could
    tell, or it failed after changing part of it (its read-back differs from before)."""
    if change.status in (Status.REMEDIATED, UNSETTLED):
        return True
    after = change.settle.get("after") if change.settle else None
    return after is not None and canonical(after) != canonical(change.intent["before"])


def resource_region(intent: dict[str, Any]) -> str:
    """The Region the fixed resource is in: where ASR_REGIONS and the exclusion tag are judged,
    and what the report shows. A global playbook's fix used its batch's clients (``region``),
    maybe another Region's; journals written before ``resource_region`` have only that one
    (``Rollback._located`` asks a bucket's own)."""
    return intent.get("resource_region") or intent["region"]


# An S3 bucket's ARN, as Security Hub names it: ``arn:aws:s3:::<bucket>``.
BUCKET_ARN = re.compile(r"^arn:aws[a-z-]*:s3:::([^/:]+)$")


def _unlocated_bucket(intent: dict[str, Any]) -> str:
    """The bucket a global playbook fixed whose Region its journal did not record (one written
    before ``resource_region``), else "". Other global resources need none: an IAM user's
    tags are read from IAM, whatever the Region, and a CloudFront distribution's findings and
    tags are us-east-1's, as was its batch."""
    if intent.get("resource_region"):
        return ""
    playbook = registry().playbooks.get(intent.get("playbook") or "")
    bucket = BUCKET_ARN.match(intent.get("resource_arn") or "")
    return bucket.group(1) if bucket and playbook is not None and not playbook.regional else ""


def _resource(intent: dict[str, Any]) -> tuple[str, str, str]:
    """The resource a fix changed, as its claim names it: a global one (an IAM user, a bucket)
    once, whichever region's finding led to it."""
    playbook = registry().playbooks.get(intent.get("playbook") or "")
    region = "global" if playbook is not None and not playbook.regional else intent["region"]
    return intent["account_id"], region, intent["resource_id"]


# Clocks of the hosts that write journals may differ: the runs written to from this long
# before the oldest fix chosen are read.
CLOCK_SLACK = datetime.timedelta(hours=1)


def fixed_again(journal: AuditJournal, chosen: list[Change]) -> dict[str, list[Change]]:
    """By fix id, the latest fixes of the same resource by the same action that other runs
    made (or began) after it, and that no rollback has put back (``Rollback._revert`` keeps
    those that found it undone). Only the fixing DAGs' runs whose journals were written to
    since the oldest chosen fix are read (``asr.audit.written_since``). Which fix came later
    is told by the times their writers stamped: the hosts' clocks are taken to agree."""
    if not chosen:
        return {}
    oldest = min(c.intent["time"] for c in chosen)
    since = datetime.datetime.strptime(oldest, TIME_FORMAT).replace(tzinfo=datetime.UTC) - CLOCK_SLACK
    wanted = {_target(c) for c in chosen}
    fixing = {safe_name(dag_id) for dag_id in RUN_DAGS}
    own = (journal.root.parent.name, journal.root.name)
    later: dict[tuple[str, ...], list[Change]] = {}
    for folder in written_since(journal.root.parent.parent, since.date()):
        # The run's own journal is the one being rolled back (a folder holds one run: RunStore.own).
        if folder.parent.name not in fixing or (folder.parent.name, folder.name) == own:
            continue
        changes = pair(AuditJournal(folder, journal.origin).events())
        undone = {
            c.intent.get("reverts") for c in changes if c.intent["kind"] == REVERT and c.status in PUT_BACK
        }
        for change in latest_fixes(changes):  # a try's change a retry took up is the retry's
            if change.intent["id"] not in undone and _made(change) and _target(change) in wanted:
                later.setdefault(_target(change), []).append(change)
    return {
        c.intent["id"]: [m for m in later.get(_target(c), []) if m.intent["time"] > c.intent["time"]]
        for c in chosen
    }


def _target(change: Change) -> tuple[str, ...]:
    return (*_resource(change.intent), change.intent["action"])


def _made_again(action: actions.Action, change: Change, later: list[Change]) -> str:
    """Why ``change`` must wait for a later run's rollback, if it must: a later fix found it
    undone (on the settings ``change`` left, the state it planned from read otherwise:
    ``Action.as_compared``) and made it again. The resource reads as both fixes leave it, and
    putting the older before-state back would undo the later fix and the change in between.
    A later fix of other settings of the resource (another access key, another statement) is
    no reason."""
    left = _left(change)
    for fix in sorted(later, key=lambda c: c.intent["time"], reverse=True):
        run = f"{fix.intent['dag_id']}/{fix.intent['run_id']}"
        try:
            redone = not _same(action, _subset(fix.intent["state"], left), left, change.intent["before"])
        except Exception as exc:  # a state recorded in a form this action cannot compare
            return (
                f"{run} fixed it again at {fix.intent['time']}, and what it found cannot be compared "
                f"with what this fix left ({describe_error(exc)}): roll back {run} first, or look"
            )
        if redone:
            return (
                f"undone since and fixed again, by {run} at {fix.intent['time']}: putting this fix back "
                f"would undo that one and the change in between; roll back {run} first"
            )
    return ""


def _left(change: Change) -> dict[str, Any]:
    """What a fix left: its read-back, or (its task having died) what it meant to set; and what
    an earlier try it finished set (``_continued``), which the read-back did not cover."""
    return change.intent["plan"] | ((change.settle or {}).get("after") or {})


def _subset(state: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {key: state.get(key) for key in keys}


class Rollback:
    """Reverts the recorded changes of one run, recording each revert in that run's journal."""

    def __init__(
        self,
        journal: AuditJournal,
        aws: AwsContext,
        dry: bool = False,
        scope: Scope | None = None,
        exclude_tag: tuple[str, str | None] | None = None,
        claims: Claims | None = None,
        checked: dict[str, Reversal] | None = None,
    ) -> None:
        self.journal = journal
        self.aws = aws
        self.dry = dry
        # Who asr may act on now: an account excluded since the fix is not touched to undo it,
        # nor a resource that carries the exclusion tag now (``ASR_EXCLUDE_TAG``).
        self.scope = scope
        self.exclude_tag = exclude_tag
        # A revert takes the resource's claim, as a fix does (``asr.claims``): a fix running
        # meanwhile (another statement of the same bucket policy, say) must not interleave.
        self.claims = claims
        # What the check before the approval found, by fix id (``check_chosen_run``): only
        # what it would put back may be put back; the rest is reported as it found it.
        self.checked = checked

    def run(
        self,
        controls: Iterable[str] = (),
        finding_ids: Iterable[str] = (),
        run: tuple[str, str] | None = None,
    ) -> list[Reversal]:
        """Revert the chosen fixes; ``run`` (DAG id, run id): only that run's, should another
        run id's fixes share its journal's folder."""
        chosen = self.chosen(controls, finding_ids, run)
        reverts = self.journal.changes(REVERT)
        reverted = {c.intent["reverts"]: c for c in reverts if c.status in PUT_BACK}
        # Reverts an earlier try of this or another rollback began and did not see through: it
        # died before recording the end, or its read-back came too soon, or a call of several
        # failed. The latest of each fix's is taken up again, not taken for a change since.
        tried = {c.intent["reverts"]: c for c in reverts if c.status not in PUT_BACK}
        again = fixed_again(self.journal, chosen)
        return [
            self.one(
                change,
                reverted.get(change.intent["id"]),
                tried.get(change.intent["id"]),
                again[change.intent["id"]],
            )
            for change in chosen
        ]

    def chosen(
        self,
        controls: Iterable[str] = (),
        finding_ids: Iterable[str] = (),
        run: tuple[str, str] | None = None,
    ) -> list[Change]:
        """The latest fix of each resource that ``run`` recorded, among the controls and
        findings asked for (none: all)."""
        controls, finding_ids = list(controls), list(finding_ids)
        changes = [
            change
            for change in self.journal.changes(FIX)
            if run is None or (change.intent.get("dag_id"), change.intent.get("run_id")) == run
        ]
        return [c for c in latest_fixes(changes) if c.about(controls, finding_ids)]

    def unmatched(self, controls: list[str], finding_ids: list[str], run: tuple[str, str]) -> list[str]:
        """What a person asked for that matches no change the run recorded: a typo, or a
        finding the run did not change. Reported before anything is put back."""
        every = self.chosen((), (), run)
        named = {n for c in every for n in (*c.intent.get("control_ids", []), c.intent.get("playbook"))}
        missing = [f"control {c}" for c in controls if c not in named]
        missing += [f"finding {i}" for i in finding_ids if not any(i in c.finding_ids for c in every)]
        if (
            not missing
            and (controls or finding_ids)
            and not any(c.about(controls, finding_ids) for c in every)
        ):
            missing.append("any change of those findings by those controls")
        return missing

    def _own(self, revert: Change) -> bool:
        """Whether a revert was recorded by a try of this very rollback run."""
        origin = self.journal.origin
        return (revert.intent.get("dag_id"), revert.intent.get("run_id")) == (origin.dag_id, origin.run_id)

    def one(
        self,
        change: Change,
        revert: Change | None = None,
        tried: Change | None = None,
        again: Iterable[Change] = (),
    ) -> Reversal:
        """What becomes of one fix; ``revert``: the revert of it already recorded, if any;
        ``tried``: one an earlier rollback try began and did not see through; ``again``: later
        runs' fixes of the same resource still in place (``fixed_again``)."""
        if revert is not None:
            settle = revert.settle or {}
            if self._own(revert):  # an earlier try of this very rollback: its revert, reported as such
                return Reversal.of(change, revert.status, settle.get("message", ""), settle.get("after"))
            return Reversal.of(change, RollbackStatus.ALREADY_REVERTED, "an earlier rollback put it back")
        if self.checked is not None and not self.dry:
            checked = self.checked.get(change.intent["id"])
            if checked is None:
                return Reversal.of(
                    change,
                    RollbackStatus.NOT_APPROVED,
                    "the approval request did not list it: roll it back again",
                )
            if checked.status != RollbackStatus.WOULD_REVERT:
                return replace(checked, reason=f"{checked.reason} (when checked before the approval)")
        if not _made(change):
            message = change.settle["message"] if change.settle else ""
            return Reversal.of(change, RollbackStatus.NOT_FIXED, f"the fix ended {change.status}: {message}")
        refused = self._refused(change.intent)
        if refused:
            return Reversal.of(change, RollbackStatus.OUT_OF_SCOPE, f"not put back: {refused}")
        if _unlocated_bucket(change.intent):
            try:
                change = self._located(change)
            except Deleted as deleted:
                return Reversal.of(change, RollbackStatus.CHANGED_SINCE, str(deleted))
            except Exception as exc:  # not known where it is: not touched
                return Reversal.of(
                    change, RollbackStatus.FAILED, f"cannot tell the bucket's region: {describe_error(exc)}"
                )
            refused = self._refused(change.intent)
            if refused:
                return Reversal.of(change, RollbackStatus.OUT_OF_SCOPE, f"not put back: {refused}")
        try:
            action = actions.build(change.intent["action"], change.intent["params"])
        except actions.ActionError as exc:
            return Reversal.of(change, RollbackStatus.FAILED, str(exc))
        why = action.irreversible_from(change.intent["state"])
        if why:
            return Reversal.of(change, RollbackStatus.NOT_REVERSIBLE, f"cannot be reversed: {why}")
        try:
            held = self._claim(change, action)
            if held:
                return Reversal.of(change, RollbackStatus.FAILED, f"another task ({held}) is changing it now")
            return self._revert(change, action, tried, again)
        except Deleted as deleted:
            return Reversal.of(change, RollbackStatus.CHANGED_SINCE, str(deleted))
        except Exception as exc:  # one resource's failure must not stop the others
            return Reversal.of(change, RollbackStatus.FAILED, describe_error(exc))
        finally:
            if self.claims is not None and not self.dry:
                self.claims.release_all()

    def _refused(self, intent: dict[str, Any]) -> str:
        """Why the change is outside what asr may act on now (``asr.guard.Scope``), judged in
        the resource's own Region; "" to go on. A bucket whose Region is not recorded is judged
        by its account and controls, and by its Region once it is asked (``_located``)."""
        if self.scope is None:
            return ""
        scope = replace(self.scope, regions=frozenset()) if _unlocated_bucket(intent) else self.scope
        controls = [*(intent.get("control_ids") or []), intent.get("playbook", "")]
        refused = scope.why_not(intent["account_id"], resource_region(intent), controls)
        return refused[1] if refused else ""

    def _located(self, change: Change) -> Change:
        """The change with its bucket's own Region (``resource_region``), asked of S3 as the fix
        path's S3 actions ask it (``bucket_home``), for a journal written before the
        fix recorded it; Deleted if the bucket is gone."""
        intent = change.intent
        self.aws.credentials(intent["account_id"])  # fails here, clearly, if the role cannot be assumed
        clients = Clients(self.aws, intent["account_id"], intent["region"])
        home, _ = _unless_deleted(lambda: bucket_home(clients.s3, _unlocated_bucket(intent)))
        return Change(intent | {"resource_region": home}, change.settle)

    def _intend_revert(self, intent: dict[str, Any], now: dict[str, Any]) -> None:
        """Record the revert of this fix about to be made, from ``now`` back to its before-state."""
        self.journal.record(
            {
                "event": INTENT,
                "kind": REVERT,
                "id": uuid.uuid4().hex,
                "reverts": intent["id"],
                **_where(intent),
                **{key: intent.get(key) for key in ("resource_arn", "finding_ids", "control_ids")},
                "resource_region": resource_region(intent),
                "params": intent["params"],
                "before": now,
                "plan": intent["before"],
            }
        )

    def _claim(self, change: Change, action: actions.Action) -> str | None:
        """Who else holds the resource's claim (the name a fix of it takes), if anyone."""
        if self.claims is None or self.dry:
            return None
        intent = change.intent
        name = claim_name(*_resource(intent), action.claims_as or action.name)
        about = {"resource": [intent[k] for k in ("account_id", "region", "resource_id", "action")]}
        return self.claims.acquire(name, about)

    def _revert(
        self,
        change: Change,
        action: actions.Action,
        tried: Change | None = None,
        again: Iterable[Change] = (),
    ) -> Reversal:
        """Put the fix back if the resource reads as the fix left it. ``tried``: an earlier
        rollback try began to and did not see it through: if the resource reads as before the
        fix, that try put it back; if it reads as that try's failure left it, the revert is
        made again to finish it (reverts put back only what is missing). Read as neither, it
        was changed since (a person's edit after the failure), unless the try was this run's
        own: then this run stays failed for a person to look."""
        intent = change.intent
        resource_id, before = intent["resource_id"], intent["before"]
        self.aws.credentials(intent["account_id"])  # fails here, clearly, if the role cannot be assumed
        # The batch's clients, as the fix used (S3 answers for a bucket of any Region); the tagging
        # API answers only for the resources of its own Region: asked in the resource's.
        clients = Clients(self.aws, intent["account_id"], intent["region"])
        arn = intent.get("resource_arn") or ""
        if self.exclude_tag and arn.startswith("arn:"):  # a tag that cannot be read fails it: not touched
            tagging = clients.in_region(resource_region(intent))
            tagged = excluded_by_tag(tagging, [arn], self.exclude_tag).get(arn)
            if tagged:
                return Reversal.of(change, RollbackStatus.OUT_OF_SCOPE, f"not put back: {tagged}")
        left = _left(change)
        state = _unless_deleted(lambda: action.read(clients, resource_id))
        now = _subset(state, left)

        def same(one: dict[str, Any], other: dict[str, Any]) -> bool:
            return _same(action, one, other, before)

        if tried is not None and not same(now, left):
            back = _subset(state, before)
            if same(back, before):
                reason = f"put back {before} (by an earlier rollback try; verified now)"
                if self.dry:
                    return Reversal.of(change, RollbackStatus.WOULD_REVERT, f"would record it {reason}", back)
                if tried.settle is not None or not self._own(tried):  # this run's own record of it
                    self._intend_revert(intent, now)
                self.journal.record(
                    {"event": SETTLE, "kind": REVERT, **_where(intent), "status": RollbackStatus.REVERTED}
                    | {"message": reason, "after": back}
                )
                return Reversal.of(change, RollbackStatus.REVERTED, reason, back)
            failed_at = (tried.settle or {}).get("after")
            if failed_at is not None and same(back, failed_at):
                if self.dry:
                    why = f"would finish the revert an earlier rollback try began: put back {before}"
                    return self._would_revert(change, action, clients, why, now)
                return self._put_back(change, action, clients, now)
            if self._own(tried) and not self.dry:
                return Reversal.of(
                    change,
                    RollbackStatus.FAILED,
                    f"an earlier try of this rollback put back part of it: it reads {back}, "
                    f"neither {before} nor {left} as the fix left it",
                    now,
                )
        if not same(now, left):
            why = (
                "the fix's task died before recording an outcome, and " if change.status == UNSETTLED else ""
            )
            return Reversal.of(
                change,
                RollbackStatus.CHANGED_SINCE,
                f"{why}it reads {now}, not {left} as the fix left it: changed since, left alone",
                now,
            )
        waits = _made_again(action, change, list(again))
        if waits:
            return Reversal.of(change, RollbackStatus.CHANGED_SINCE, waits, now)
        if self.dry:
            lost = _lost(action, before)
            kept = {key: value for key, value in before.items() if key not in lost}
            never = f"; {_not_back(lost)}" if lost else ""
            return self._would_revert(change, action, clients, f"would put back {kept}{never}", now)
        return self._put_back(change, action, clients, now)

    @staticmethod
    def _would_revert(
        change: Change, action: actions.Action, clients: Clients, why: str, now: dict[str, Any]
    ) -> Reversal:
        """A dry run's WOULD_REVERT, unless the revert would refuse for what it reads now
        (``Action.check_revert``): the approval request then promises only what the real run
        puts back."""
        intent = change.intent
        try:  # Deleted: all it would put back is gone, as the revert would find it
            _unless_deleted(lambda: action.check_revert(clients, intent["resource_id"], intent["state"]))
        except actions.NotReversible as exc:
            return Reversal.of(change, RollbackStatus.NOT_REVERSIBLE, f"cannot be reversed: {exc}", now)
        return Reversal.of(change, RollbackStatus.WOULD_REVERT, why, now)

    def _put_back(
        self, change: Change, action: actions.Action, clients: Clients, now: dict[str, Any]
    ) -> Reversal:
        intent = change.intent
        resource_id, before = intent["resource_id"], intent["before"]
        where = _where(intent)
        self._intend_revert(intent, now)
        try:
            restorable, kept = _reverted(action, clients, resource_id, intent["state"])
            # What is left of the before-state: a part deleted since (a key) cannot come back,
            # nor what the action declares lost (a deleted password), nor what its revert kept.
            wanted = _subset(restorable, before) if restorable is not None else before
            lost = _lost(action, wanted) | {key: why for key, why in kept.items() if key in wanted}
            wanted = {key: value for key, value in wanted.items() if key not in lost}
            back = _read_back(action, clients, resource_id, wanted)
            if not _same(action, back, wanted, before):
                status, reason = RollbackStatus.FAILED, f"read back {back}, not {wanted}"
            elif _same(action, wanted, _subset(_left(change), wanted), before):
                # What is left to put back is what the fix left: nothing came back, nothing is
                # told to Security Hub (its finding marked reverted would be left alone for good).
                status, reason = RollbackStatus.CHANGED_SINCE, "nothing to put back"
                if restorable is not None:  # the revert found the rest deleted since
                    reason = _deleted(str(_subset(before, wanted)))
                if lost:
                    reason += f"; {_not_back(lost)}"
            elif lost:
                status = RollbackStatus.PARTLY_REVERTED
                reason = f"put back {wanted}; {_not_back(lost)}"
            else:
                gone = "" if wanted == before else f" (of {before}: the rest was deleted since)"
                status, reason = RollbackStatus.REVERTED, f"put back {wanted}{gone}"
        except actions.NotReversible as exc:
            status, reason, back = RollbackStatus.NOT_REVERSIBLE, f"cannot be reversed: {exc}", None
        except Exception as exc:  # what it left is recorded: a later try finishes from there
            status, reason = RollbackStatus.FAILED, describe_error(exc)
            try:
                back = _left_by(action, clients, resource_id, before)
            except Deleted as deleted:  # meanwhile: nothing is left to put back, nor to finish
                status, reason, back = RollbackStatus.CHANGED_SINCE, str(deleted), None
        self.journal.record(
            {"event": SETTLE, "kind": REVERT, **where, "status": status, "message": reason, "after": back}
        )
        return Reversal.of(change, status, reason, back)


def _where(intent: dict[str, Any]) -> dict[str, Any]:
    """What a revert's journal events say they are about: the fix's resource, action and playbook."""
    return {key: intent[key] for key in ("account_id", "region", "resource_id", "action")} | {
        "playbook": intent.get("playbook", "")
    }


def _reverted(
    action: actions.Action, clients: Clients, resource_id: str, state: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """What ``revert`` returned, and the keys it kept as the fix left them, with why."""
    try:
        return retry_throttled(lambda: action.revert(clients, resource_id, state)), {}
    except actions.RevertedInPart as part:
        return None, part.kept


def _lost(action: actions.Action, before: dict[str, Any]) -> dict[str, str]:
    """The settings of ``before`` the fix changed that no revert brings back, with why."""
    return {key: why for key, why in action.lost_on_revert.items() if before.get(key)}


def _not_back(lost: dict[str, str]) -> str:
    return f"not {', '.join(lost)}: {'; '.join(lost.values())}"


def _same(action: actions.Action, one: dict[str, Any], other: dict[str, Any], before: dict[str, Any]) -> bool:
    """Whether two reads of the resource agree on what the fix (its ``before``) is about
    (``Action.as_compared``)."""
    return canonical(action.as_compared(one, before)) == canonical(action.as_compared(other, before))


def _left_by(action: Any, clients: Any, resource_id: str, before: dict[str, Any]) -> dict[str, Any] | None:
    """The fields ``before`` names as a failed revert left them (None: they cannot be read);
    Deleted if the resource is gone."""
    try:
        return _subset(_unless_deleted(lambda: action.read(clients, resource_id)), before)
    except Deleted:
        raise
    except Exception:
        return None


# How services say a resource does not exist: the many codes that end so (EC2's
# InvalidGroup.NotFound, RDS's DBInstanceNotFound, ResourceNotFoundException,
# ClusterNotFoundFault), and these.
NOT_FOUND = re.compile(r"NotFound(Exception|Fault)?$")
NO_SUCH = frozenset(
    {
        "NoSuchEntity",
        "NoSuchBucket",
        "NoSuchDistribution",
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.NonExistentQueue",
        "StateMachineDoesNotExist",
    }
)


class Deleted(Exception):
    """The resource, or all a revert would put back, was deleted since: nothing to put back
    (CHANGED_SINCE, not a failure that stops the rollback of the others)."""


def _unless_deleted(call: Callable[[], T]) -> T:
    """``call()`` (a read, or ``Action.check_revert``), throttled calls retried; Deleted when it
    answers that what it reads no longer exists (``_gone``)."""
    try:
        return retry_throttled(call)
    except Exception as exc:
        gone = _gone(exc)
        if gone:
            raise Deleted(_deleted(gone)) from exc
        raise


def _gone(exc: Exception) -> str:
    """What ``exc`` says no longer exists, if it says the resource (or all a revert would put
    back) was deleted: the service's not-found error, or asr's own (a plain LookupError, as
    ``BulkRead.read`` raises; not a KeyError). Else "": throttling, access denied and the
    rest are failures a person must look at."""
    if type(exc) is LookupError:
        return str(exc)
    if isinstance(exc, ClientError) and (error_code(exc) in NO_SUCH or NOT_FOUND.search(error_code(exc))):
        return describe_error(exc)
    return ""


def _deleted(what: str) -> str:
    return f"nothing to put back, deleted since: {what}"


def _read_back(action: Any, clients: Any, resource_id: str, before: dict[str, Any]) -> dict[str, Any]:
    """The fields ``before`` names, as the resource reads now: read again, backing off, while
    they differ and the service may not show the revert yet (``Action.propagation_seconds``;
    SQS takes up to a minute), as a fix's own read-back does."""
    return read_again_while(
        lambda: _subset(retry_throttled(lambda: action.read(clients, resource_id)), before),
        lambda back: not _same(action, back, before, before),
        action.propagation_seconds,
    )


# --- Security Hub


def mark_reverted(client: Any, reversals: list[Reversal], run: str) -> dict[str, Any]:
    """Tell Security Hub what was put back: each finding of a reverted fix goes from RESOLVED
    (asr's own write-back) to NOTIFIED, with a note, and carries the rollback's mark
    (``REVERTED_FIELD``) so that sweeps and automatic events leave it alone; the next one
    would fix it again within the hour. A person can still pick it by id. A finding that was
    suppressed or archived meanwhile is left as it is."""
    reverted = {i for r in reversals if r.status in PUT_BACK for i in r.finding_ids}
    found = {f["Id"]: f for f in iter_findings(client, queries_by_id(sorted(reverted)))}
    note = (
        f"ASR: {run} put back what asr's fix had changed; asr leaves this finding alone until a "
        "person picks it by id in asr_remediate"
    )
    updates, left_alone = [], []
    for finding_id in sorted(reverted):
        finding = found.get(finding_id)
        workflow = (finding or {}).get("Workflow", {}).get("Status")
        if finding is None or workflow == "SUPPRESSED" or finding.get("RecordState") != "ACTIVE":
            left_alone.append(
                {"finding_id": finding_id, "now": f"{workflow}, {(finding or {}).get('RecordState')}"}
            )
        elif not (reverted_by(finding) and workflow == "NOTIFIED"):  # not told by this or an earlier rollback
            identifier = {"Id": finding_id, "ProductArn": finding["ProductArn"]}
            fields = with_marks(finding, reverted=run)
            if fields is None:
                updates.append((identifier, "NOTIFIED", f"{note} ({NOT_MARKED})"))
            else:
                updates.append((identifier, "NOTIFIED", note, fields))
    # One refused while another update was under way (a person's, maybe) is not sent again
    # blind: refused for now, the task's retry reads it again first.
    updated, failed = update_findings(client, updates) if updates else (0, [])
    return {"updated": updated, "failed": failed, "left_alone": left_alone}


# --- the report


def counts(reversals: list[Reversal]) -> dict[str, int]:
    return dict(Counter(r.status for r in reversals))


def markdown(run: str, reversals: list[Reversal]) -> str:
    from asr.report import table

    totals = ", ".join(f"{status}: {n}" for status, n in sorted(counts(reversals).items())) or "nothing to do"
    rows = [
        [r.status, ",".join(r.control_ids), r.account_id, r.region, r.resource_id, r.reason]
        for r in reversals
    ]
    header = ("outcome", "control", "account", "region", "resource", "why")
    return f"# ASR rollback of {run}\n\n{totals}\n\n{table(rows, header)}\n"


def write_report(
    store: RunStore,
    run: str,
    dry: bool,
    reversals: list[Reversal],
    security_hub: dict[str, Any] | None = None,
) -> str:
    """Write rollback.json and rollback.md, and count the changes in Airflow's metrics
    (``asr.metrics``; a dry run's as WOULD_REVERT)."""
    from asr import metrics

    changes = [asdict(r) for r in reversals]
    store.write_json(
        REPORT,
        {
            "run": run,
            "dry_run": dry,
            "totals": counts(reversals),
            "changes": changes,
            "security_hub": security_hub or {},
        },
    )
    text = markdown(run, reversals)
    if security_hub and "error" in security_hub:
        text += f"\nSecurity Hub was not told: {security_hub['error']}\n"
    elif security_hub:
        text += (
            f"\nSecurity Hub: {security_hub['updated']} finding(s) marked NOTIFIED (rolled back), "
            f"{len(security_hub['left_alone'])} left as they were, {len(security_hub['failed'])} refused.\n"
        )
    store.path("rollback.md").write_text(text)
    metrics.send(store, metrics.rollback_events(ROLLBACK_DAG, changes))
    return text


# --- what asr_rollback's tasks do (``tasks.check_rollback``, ``tasks.revert_run``)

# What the check before the approval found (``check_chosen_run``), in the rollback run's folder.
CHECK = "rollback-check.json"
# What the approval step decided, and about which check (``decide``): Airflow lets a person
# clear the check alone, and the revert must not act on a check nobody was asked about.
DECISION = "approvals/rollback-decision.json"
APPROVED, NOT_ASKED, ASKED = "approved", "not asked", "asked"


@dataclass(frozen=True)
class Chosen:
    """What a run of asr_rollback undoes: the run, the controls and findings its form names."""

    run: tuple[str, str]
    controls: list[str]
    finding_ids: list[str]
    dry: bool  # the form's dry run


def _prepared(context: Any, checking: bool) -> tuple[Rollback, Chosen, RunStore, Any]:
    """The rollback the run's form asks for (``checking``: reading only, for the check before
    the approval), with its store and settings. Refused before anything is read when the run
    to undo has not ended (a dry run may look), or changed none of what the form names."""
    from asr import claims
    from asr.selection import run_finished, typed
    from asr.tasks import aws_context, own_run, run_context

    # The check is the run's first step: it marks the folder as this run's (``RunStore.own``).
    settings, store, _ = (own_run if checking else run_context)(context)
    params = context["params"]
    origin = Origin.from_context(context, "rollback")
    journal, run = find_journal(settings.audit_root, params["run"], settings.aws_conn_id, origin)
    chosen = Chosen(
        run, typed(params.get("controls")), typed(params.get("finding_ids")), bool(params.get("dry_run"))
    )
    if not chosen.dry and not run_finished(
        *run, RunStore.for_run(settings.data_dir, *run, settings.aws_conn_id)
    ):
        # Its fixes after this point would stay, and its write-back would mark RESOLVED the
        # findings this rollback marks.
        raise RollbackError(
            f"run {params['run']} has not finished: let it end (or mark it failed), then roll it back"
        )
    aws = aws_context(settings, context=context, role_name=settings.rollback_role_name)
    held = claims.for_run(
        settings.audit_root,
        context["dag"].dag_id,
        context["run_id"],
        settings.aws_conn_id,
        "revert_run",
        lapse_with_run=True,
    )
    reading = checking or chosen.dry
    checked = None if reading else checked_reversals(decided(store))
    rollback = Rollback(
        journal, aws, reading, Scope.for_aws(settings, aws), settings.exclusion_tag, held, checked
    )
    missing = rollback.unmatched(chosen.controls, chosen.finding_ids, run)
    if missing:
        raise RollbackError(
            f"run {'/'.join(run)} recorded no change for {', '.join(missing)}: nothing was put back "
            "(its report lists what it changed)"
        )
    return rollback, chosen, store, settings


def check_digest(check: dict[str, Any]) -> str:
    """What a decision names the check it is about by (``CHECK``'s content)."""
    return hashlib.sha256(json.dumps(check, sort_keys=True).encode()).hexdigest()


def decide(store: RunStore, decision: str, check: dict[str, Any] | None = None) -> None:
    """Record the approval step's decision about ``check`` (the one its request showed; else
    the check as it is now)."""
    about = check_digest(check if check is not None else store.read_json(CHECK))
    store.write_json(DECISION, {"decision": decision, "by": "", "check": about})


def approved(store: RunStore, by: str) -> None:
    """Record a person's Approve of the check the request showed (the one ``decide`` noted when
    it asked), not of the check as it may read now."""
    asked = store.read_json(DECISION)
    if asked["decision"] != ASKED:  # no request of this step's is open: nothing to approve
        raise RollbackError(f"an answer came with no request open (the decision is {asked['decision']})")
    store.write_json(DECISION, asked | {"decision": APPROVED, "by": by})


def decided(store: RunStore) -> dict[str, Any]:
    """The check the approval step's decision lets be put back (read once: what is hashed is
    what is acted on); else RollbackError: no decision, a refusal, or a check made again since
    the decision (a person cleared the check alone)."""
    if not store.path(DECISION).exists():
        raise RollbackError("the approval step recorded no decision: trigger a new rollback run")
    decision = store.read_json(DECISION)
    if decision["decision"] not in (APPROVED, NOT_ASKED):
        raise RollbackError(f"the rollback was not approved ({decision['decision']}): nothing is put back")
    check = store.read_json(CHECK)
    if decision["check"] != check_digest(check):
        raise RollbackError(
            "the check was made again after the approval step decided, and nobody was asked about "
            "what it found: trigger a new rollback run"
        )
    return check


def checked_reversals(check: dict[str, Any]) -> dict[str, Reversal]:
    """What the check before the approval found (``CHECK``'s content), by fix id."""
    return {row["fix_id"]: Reversal(**row) for row in check["changes"]}


def check_chosen_run(context: Any) -> dict[str, int]:
    """Read each chosen change and say what a rollback would do, changing nothing: what the
    approval request lists, and all the rollback may then put back. Of a dry run, it is the
    report."""
    rollback, chosen, store, _ = _prepared(context, checking=True)
    reversals = rollback.run(chosen.controls, chosen.finding_ids, chosen.run)
    store.write_json(CHECK, {"run": context["params"]["run"], "changes": [asdict(r) for r in reversals]})
    if chosen.dry:
        log.info("Rollback report:\n%s", write_report(store, context["params"]["run"], True, reversals))
    totals = counts(reversals)
    if totals.get(RollbackStatus.FAILED):
        # Tried again (a throttled read, a role not assumable for now) before anyone is asked
        # about a rollback some of whose changes nobody could look at.
        raise RuntimeError(
            f"{totals[RollbackStatus.FAILED]} change(s) could not be checked ({CHECK} says why): nothing "
            "is asked or put back; once the cause is mended clear the run, or roll back the others by "
            "naming their controls or findings"
        )
    log.info("Would put back %d change(s)", totals.get(RollbackStatus.WOULD_REVERT, 0))
    return totals


def _begin(rollback: Rollback, run: tuple[str, str], settings: Any) -> None:
    """Mark the run as being undone (``BEGIN``, which its tasks ask about before they act),
    then make sure it has not started again, before anything is read or put back. A task of
    it cleared since its end either asks after the mark and refuses, or is running now: then
    this try fails, and its retry, once the run has ended, reads what that task did."""
    from asr.selection import run_finished

    rollback.journal.record({"event": BEGIN, "kind": REVERT})
    if not run_finished(*run, RunStore.for_run(settings.data_dir, *run, settings.aws_conn_id)):
        raise RuntimeError(
            f"run {'/'.join(run)} is running again (a person cleared its tasks): its tasks refuse now "
            "that this rollback has begun, and this task is tried again once the run has ended"
        )


def revert_chosen_run(context: Any) -> dict[str, int]:
    """Revert what the check found to put back (a dry run: nothing, the check was its report),
    write the rollback report; fail if any revert failed, or Security Hub was not told."""
    if context["params"].get("dry_run"):
        from asr.tasks import run_context

        log.info("Dry run: the check's report (rollback.md) is this run's; nothing is put back")
        return dict(Counter(c["status"] for c in run_context(context)[1].read_json(CHECK)["changes"]))
    rollback, chosen, store, settings = _prepared(context, checking=False)
    if any(r.status == RollbackStatus.WOULD_REVERT for r in (rollback.checked or {}).values()):
        _begin(rollback, chosen.run, settings)
    reversals = rollback.run(chosen.controls, chosen.finding_ids, chosen.run)
    securityhub = rollback.aws.admin_client("securityhub", settings.securityhub_region)
    try:
        marked = mark_reverted(securityhub, reversals, f"asr_rollback/{context['run_id']}")
    except Exception as exc:  # the reverts are made: report them, and say Security Hub was not told
        log.exception("Could not mark the reverted findings in Security Hub")
        marked = {"updated": 0, "failed": [], "left_alone": [], "error": describe_error(exc)}
    log.info("Rollback report:\n%s", write_report(store, context["params"]["run"], False, reversals, marked))
    totals = counts(reversals)
    if totals.get(RollbackStatus.FAILED):
        raise RuntimeError(f"{totals[RollbackStatus.FAILED]} change(s) could not be reverted; see the report")
    if "error" in marked:  # a retry reports its reverts again and tells Security Hub
        raise RuntimeError(f"the reverts are made, but Security Hub was not told: {marked['error']}")
    busy = [f for f in marked.get("failed", []) if refused_for_now(f)]
    if busy:  # unmarked, a finding is NEW again when its control fails anew (final refusals: reported)
        raise RuntimeError(
            f"the reverts are made, but Security Hub refused to mark {len(busy)} of their findings "
            "for now; the task is tried again (or clear it): a new rollback run would not mark them"
        )
    return totals


def record_not_approved(store: RunStore, reason: str) -> dict[str, int]:
    """The report of a rollback a person rejected, or nobody answered: nothing was put back,
    and what the check would have put back says why. A report of reverts this run made (its
    approval step cleared alone and asked again, after the revert) is kept: it is true."""
    checked = store.read_json(CHECK)
    decide(store, "not approved: " + reason, checked)
    if store.path(REPORT).exists():
        made = counts([Reversal(**c) for c in store.read_json(REPORT)["changes"]])
        if any(made.get(status) for status in PUT_BACK):
            log.warning("This run put changes back before: its report stays (%s)", made)
            return made
    reversals = [
        replace(r, status=RollbackStatus.NOT_APPROVED, reason=f"not put back: {reason}")
        if r.status == RollbackStatus.WOULD_REVERT
        else r
        for r in checked_reversals(checked).values()
    ]
    log.info("Rollback report:\n%s", write_report(store, checked["run"], False, reversals))
    return counts(reversals)
