"""Writing outcomes back to Security Hub: one set of rules for every DAG.

- RESOLVED, with a note saying what was changed, when a resource was fixed; NOTIFIED, with
  the reason, when it failed or a person must act (a finding no playbook can fix, when
  someone asked for it; a disruptive fix a person rejected or nobody approved in time).
  A resource found compliant, with nothing changed, is NOTIFIED with that note, not
  RESOLVED: Security Hub resolves a control finding itself once its check passes, and a
  RESOLVED finding stays RESOLVED while its control keeps failing, so a RESOLVED written
  where the control checks more than the playbook would hide a failure for good. Dry runs
  and ignored findings are not written at all.
- A finding closed while the run worked (a person suppressed or resolved it) is left as it
  is: just before writing, the status is read again (one no longer found is left alone too,
  ``NOT_FOUND``). One Security Hub resolved itself, its control passing (after the fix, most
  often), with no one's note on it but asr's, gets the run's note, still RESOLVED; one
  headed for NOTIFIED is left RESOLVED. A run of up to 200
  findings reads each one by id. A larger run reads by id only those headed for NOTIFIED
  (up to 200), asks its own query which of the rest are closed now, and which in its scope
  were closed and then changed since ingest (their control passed or their record was
  archived: they left the query), and takes the others as ingest saw them
  (``seen_state``): a few calls instead of a second pass over the run. When that would cost
  more than a quarter of a second pass (closed findings abound in the run's scope, or the
  run has many queries), the run's query is paged again, and the findings it no longer
  matches are read by id: among them may be ones this run resolved already (an earlier try
  of write-back, a fix task cleared and run again).
- A fix a person rejected marks its findings held (``UserDefinedFields`` ``asr:rejected-until``,
  ``ASR_REJECTION_HOLD`` from the rejection); a finding fixed clears that mark and a
  rollback's (``asr:reverted``), so the sweeps take it up again if it ever fails anew.
- A finding that already carries the same status, note and marks is not rewritten, so repeated
  runs do not churn notes or emit "Imported" events for nothing.
- Notes stay under Security Hub's 512 characters (UTF-16 units); a long one is cut to fit beside the
  run's id, and another run's note, cut for its own id, counts as the same. Updates go 100
  findings a call, and updates Security Hub does not process are retried
  (``securityhub.update_findings``), except one refused as another update of the finding
  was under way: the step's retry reads it again before it writes.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from asr.remediate import Outcome, Status
from asr.securityhub import (
    NOT_MARKED,
    PAGE_SIZE,
    UPDATED_BY,
    clip_note,
    closed_in,
    closed_since,
    find_within,
    iter_findings,
    marked,
    queries_by_id,
    refused_for_now,
    update_findings,
    with_marks,
    without_marks,
)

WORKFLOW_FOR: dict[str, str] = {
    Status.REMEDIATED: "RESOLVED",
    Status.ALREADY_COMPLIANT: "NOTIFIED",  # Security Hub resolves it when its check passes
    Status.FAILED: "NOTIFIED",
    Status.REJECTED: "NOTIFIED",
    Status.EXCLUDED: "NOTIFIED",
    Status.NOT_APPROVED: "NOTIFIED",
}
STILL_OURS = {"NEW", "NOTIFIED"}


def workflow_for(outcome: Outcome) -> str | None:
    """The workflow status an outcome is written back with (None: not written). A fix made
    whose effect Security Hub's check cannot see yet (``Outcome.awaits_check``) is NOTIFIED,
    as an already compliant resource is: RESOLVED, a finding whose check then still failed
    would stay out of sight, as Security Hub reopens only on a change of compliance."""
    if outcome.status == Status.REMEDIATED and outcome.awaits_check:
        return "NOTIFIED"
    return WORKFLOW_FOR.get(outcome.status)


# Why a finding Security Hub no longer returns is left alone: read by id, with no filter on
# its state, it is not there (deleted, or archived long enough ago that Security Hub dropped
# it), or the administrator's region does not see it.
NOT_FOUND = "not found in Security Hub (deleted, or not visible from ASR_SECURITYHUB_REGION)"
RUN_SUFFIX = re.compile(r" \[run [^\]]*\]$")
# Above this many findings, re-reading by id (20 a call) costs more than paging the run's own query.
RECHECK_BY_ID_LIMIT = 200


@dataclass
class WriteBack:
    unchanged: list[str] = field(default_factory=list)
    left_alone: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    # What Security Hub now shows of each finding's outcome (``written``): updated or unchanged.
    settled: dict[str, str] = field(default_factory=dict)

    @property
    def updated(self) -> int:
        return len(self.settled) - len(self.unchanged)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"updated": self.updated}

    def carry(self, earlier: dict[str, Any], finding_ids: set[str]) -> None:
        """Take what an earlier pass of the run (``to_dict``) settled for these findings as done."""
        self.unchanged += sorted(set(earlier.get("unchanged", ())) & finding_ids)
        self.settled |= {i: earlier["settled"][i] for i in finding_ids}

    @staticmethod
    def given_up(record: dict[str, Any]) -> set[str]:
        """The findings a write-back record (``to_dict``) left alone or Security Hub refused for
        good. One it refused for now (busy, an internal failure) is still to be written."""
        left = {x.get("finding_id") for x in record.get("left_alone", []) if isinstance(x, dict)}
        return left | _refused([x for x in record.get("failed", []) if not refused_for_now(x)])

    @property
    def refused_for_now(self) -> list[dict[str, Any]]:
        """The updates Security Hub refused with an error a later try may mend (it was still
        refusing them after the retries ``update_findings`` makes, or another update of the
        finding was under way)."""
        return [x for x in self.failed if refused_for_now(x)]

    def counts(self) -> dict[str, int]:
        return {
            "updated": self.updated,
            "unchanged": len(self.unchanged),
            "left_alone": len(self.left_alone),
            "failed": len(self.failed),
        }


def _refused(failed: list[Any]) -> set[str]:
    """The ids of the updates Security Hub refused (BatchUpdateFindings' UnprocessedFindings)."""
    return {x.get("FindingIdentifier", {}).get("Id") for x in failed if isinstance(x, dict)}


def written(outcome: Outcome, run_id: str) -> str:
    """What writing an outcome puts in Security Hub (status, note, hold), in a few bytes: a
    later pass of the run rewrites a finding only when this changed (a rerun fix's new
    reason, a rejection's hold after a timeout), not when its status alone is the same."""
    text = json.dumps([workflow_for(outcome), note_for(outcome, run_id), outcome.held_until])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_suffix(run_id: str) -> str:
    """What ends every note a run writes (``RUN_SUFFIX`` matches it)."""
    return f" [run {run_id}]"


def note_for(outcome: Outcome, run_id: str) -> str:
    return clip_note(note_text(outcome), run_suffix(run_id))


def note_text(outcome: Outcome) -> str:
    """What a note says of an outcome, before it is cut to fit beside the run's id."""
    subject = outcome.playbook or outcome.control_id or "finding"
    if outcome.status == Status.FAILED:
        return f"ASR {subject}: remediation failed: {outcome.message}"
    if outcome.status in (Status.REJECTED, Status.EXCLUDED):
        return f"ASR: not remediated: {outcome.message}"
    if outcome.status == Status.ALREADY_COMPLIANT:
        return (
            f"ASR {subject}: {outcome.message}; Security Hub resolves the finding at its next check "
            "(should it stay FAILED, the control checks more than the playbook does)"
        )
    if outcome.status == Status.NOT_APPROVED:
        return f"ASR {subject}: fix not approved, nothing changed: {outcome.message}"
    return f"ASR {subject}: {outcome.message}"


def _says(note: str, text: str) -> bool:
    """Whether a note a run wrote says ``text``, cut as it was to fit beside that run's id: the
    same long message from a run whose id is longer or shorter is no change."""
    suffix = RUN_SUFFIX.search(note)
    return suffix is not None and note == clip_note(text, suffix.group())


def _resolved_by_its_check(finding: dict[str, Any]) -> bool:
    """Whether Security Hub resolved the finding itself, as it does a control finding whose check
    passes, with no note on it but asr's: a person who resolves one says why in theirs."""
    note = finding.get("Note") or {}
    return (
        (finding.get("Workflow") or {}).get("Status") == "RESOLVED"
        and (finding.get("Compliance") or {}).get("Status") == "PASSED"
        and (not note.get("Text") or note.get("UpdatedBy") == UPDATED_BY)
    )


def _text(finding: dict[str, Any] | None) -> str:
    """A finding's note, as Security Hub holds it now."""
    return str(((finding or {}).get("Note") or {}).get("Text", ""))


def seen_state(finding: dict[str, Any]) -> dict[str, Any]:
    """The part of a finding write-back compares, as ingest read it (a malformed part reads
    as missing: routing rejects the finding with the reason)."""

    def part(name: str) -> dict[str, Any]:
        value = finding.get(name)
        return value if isinstance(value, dict) else {}

    seen = {
        "Workflow": {"Status": part("Workflow").get("Status")},
        "RecordState": finding.get("RecordState"),
        "Note": {"Text": part("Note").get("Text", "")},
    }
    if marked(finding):  # write-back clears asr's marks, and keeps the other fields
        seen["UserDefinedFields"] = part("UserDefinedFields")
    return seen


def _found(client: Any, queries: list[dict[str, Any]], wanted: set[str]) -> dict[str, dict[str, Any]]:
    """The wanted findings among what the queries match, by id."""
    return {f["Id"]: f for f in iter_findings(client, queries) if f["Id"] in wanted}


def _by_id(client: Any, finding_ids: list[str]) -> dict[str, dict[str, Any]]:
    return _found(client, queries_by_id(finding_ids), set(finding_ids))


def current_state(
    client: Any,
    planned: dict[str, str],
    queries: list[dict[str, Any]] | None,
    seen: dict[str, dict[str, Any]] | None = None,
    since: str | None = None,
) -> dict[str, dict[str, Any]]:
    """The findings (id -> the status planned for it) as Security Hub has them now, read the
    cheapest way the rules allow (``seen`` and ``since``: what ingest read, and when)."""
    wanted = set(planned)
    if queries is None or len(wanted) <= RECHECK_BY_ID_LIMIT:
        return _by_id(client, list(planned))
    # Security Hub itself resolves a control finding that passes: one headed for NOTIFIED is
    # read by id, so that it is not reopened; for one headed for RESOLVED that does no harm.
    notify = [finding_id for finding_id, status in planned.items() if status != "RESOLVED"]
    budget = max(len(queries), math.ceil(len(wanted) / PAGE_SIZE)) // 4
    # Two queries a run query, each at least one call.
    cheap_enough = len(notify) <= RECHECK_BY_ID_LIMIT and 2 * len(queries) <= budget
    if seen is not None and since is not None and wanted <= seen.keys() and cheap_enough:
        closing = [closed_in(q) for q in queries] + [closed_since(q, since) for q in queries]
        closed = find_within(client, closing, budget)
        if closed is not None:
            now = {finding_id: seen[finding_id] for finding_id in wanted.difference(notify)}
            now.update({f["Id"]: f for f in closed if f["Id"] in now})
            return now | _by_id(client, notify)
    # The run's query matches what is open: one this run resolved already is among the rest.
    found = _found(client, queries, wanted)
    return found | _by_id(client, sorted(wanted.difference(found)))


def write_back(
    client: Any,
    outcomes: list[Outcome],
    run_id: str,
    queries: list[dict[str, Any]] | None = None,
    seen: dict[str, dict[str, Any]] | None = None,
    since: str | None = None,
) -> WriteBack:
    """Write each outcome's workflow status and note, under the rules above.

    ``queries`` is the run's own finding query, ``seen`` what ingest read (``seen_state``
    by finding id) and ``since`` when it began: with all three, a large run re-reads only
    the findings closed meanwhile.
    """
    result = WriteBack()
    planned = {o.finding_id: o for o in outcomes if o.status in WORKFLOW_FOR}
    if not planned:
        return result
    planned_status = {i: str(workflow_for(o)) for i, o in planned.items()}
    now = current_state(client, planned_status, queries, seen, since)
    updates = []
    for finding_id, outcome in planned.items():
        found = now.get(finding_id)
        status = planned_status[finding_id]
        said = outcome
        fields = None
        if found:
            fixed = outcome.status in (Status.REMEDIATED, Status.ALREADY_COMPLIANT)
            # A person picked a finding whose fix was rolled back, or rejected: fixed now, unmarked.
            fields = without_marks(found) if fixed else None
            if outcome.held_until:  # a person rejected the fix: sweeps leave it alone until then
                fields = with_marks(found, held=outcome.held_until)
                if fields is None:
                    said = replace(outcome, message=f"{NOT_MARKED}; {outcome.message}")
        note = note_for(said, run_id)
        workflow = (found or {}).get("Workflow", {}).get("Status")
        if found and workflow == status and _text(found) == note:
            # This run wrote it already: a try of write-back that died before saving its counts.
            result.settled[finding_id] = written(outcome, run_id)
            continue
        # Resolved by an earlier pass of this run (a fix task cleared and run again), or by
        # Security Hub once the fix made its control pass: still ours to write the same status
        # with this run's note. Not to reopen it: a person may have.
        again = workflow == status == "RESOLVED" and (
            _text(found).endswith(run_suffix(run_id)) or _resolved_by_its_check(found)
        )
        if (
            found is None
            or (workflow not in STILL_OURS and not again)
            or found.get("RecordState") != "ACTIVE"
        ):
            state = f"{workflow}, {found.get('RecordState')}" if found else NOT_FOUND
            result.left_alone.append({"finding_id": finding_id, "now": state})
            continue
        if (
            workflow == status
            and _says(_text(found), note_text(said))
            and fields in (None, found.get("UserDefinedFields"))
        ):
            result.unchanged.append(finding_id)
            result.settled[finding_id] = written(outcome, run_id)
            continue
        identifier = {"Id": finding_id, "ProductArn": outcome.product_arn}
        updates.append((identifier, status, note, fields) if fields else (identifier, status, note))
    if updates:
        # One refused as another update was under way (a person's, maybe) is not sent again
        # blind: it is refused for now, and the step's retry reads it again first.
        _, result.failed = update_findings(client, updates)
        refused = _refused(result.failed)
        ids = (u[0]["Id"] for u in updates)
        result.settled |= {i: written(planned[i], run_id) for i in ids if i not in refused}
    return result
