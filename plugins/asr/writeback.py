"""Writing outcomes back to Security Hub: one set of rules for every DAG.

- RESOLVED, with a note saying what was changed, when a resource was fixed or found
  compliant; NOTIFIED, with the reason, when it failed or a person must act (a finding
  no playbook can fix, when someone asked for it; a disruptive fix a person rejected or
  nobody approved in time). Dry runs and ignored findings are
  not written at all.
- A finding whose status changed while the run worked (a person suppressed or resolved
  it, or Security Hub archived it) is left as it is: the current status is read again
  just before writing.
- A finding that already carries the same status and note is not rewritten, so repeated
  runs do not churn notes or emit "Imported" events for nothing.
- Notes stay under Security Hub's 512 characters; updates go 100 findings a call, and
  updates Security Hub does not process are retried (``securityhub.update_findings``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from asr.remediate import Outcome, Status
from asr.securityhub import clip_note, iter_findings, queries_by_id, update_findings

WORKFLOW_FOR: dict[str, str] = {
    Status.REMEDIATED: "RESOLVED",
    Status.ALREADY_COMPLIANT: "RESOLVED",
    Status.FAILED: "NOTIFIED",
    Status.REJECTED: "NOTIFIED",
    Status.EXCLUDED: "NOTIFIED",
    Status.NOT_APPROVED: "NOTIFIED",
}
STILL_OURS = {"NEW", "NOTIFIED"}
RUN_SUFFIX = re.compile(r" \[run [^\]]*\]$")
# Above this many findings, re-reading by id (20 a call) costs more than paging the run's own query.
RECHECK_BY_ID_LIMIT = 200


@dataclass
class WriteBack:
    updated: int = 0
    unchanged: list[str] = field(default_factory=list)
    left_alone: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def counts(self) -> dict[str, int]:
        return {
            "updated": self.updated,
            "unchanged": len(self.unchanged),
            "left_alone": len(self.left_alone),
            "failed": len(self.failed),
        }


def note_for(outcome: Outcome, run_id: str) -> str:
    subject = outcome.playbook or outcome.control_id or "finding"
    if outcome.status == Status.FAILED:
        text = f"ASR {subject}: remediation failed: {outcome.message}"
    elif outcome.status in (Status.REJECTED, Status.EXCLUDED):
        text = f"ASR: not remediated: {outcome.message}"
    elif outcome.status == Status.NOT_APPROVED:
        text = f"ASR {subject}: fix not approved, nothing changed: {outcome.message}"
    else:
        text = f"ASR {subject}: {outcome.message}"
    suffix = f" [run {run_id}]"
    return clip_note(text[: 512 - len(suffix)] + suffix)


def current_state(
    client: Any, finding_ids: list[str], queries: list[dict[str, Any]] | None
) -> dict[str, dict[str, Any]]:
    """The findings as Security Hub has them now, by id: by id for a few, else by the run's query."""
    if queries is None or len(finding_ids) <= RECHECK_BY_ID_LIMIT:
        queries = queries_by_id(finding_ids)
    wanted = set(finding_ids)
    return {f["Id"]: f for f in iter_findings(client, queries) if f["Id"] in wanted}


def write_back(
    client: Any, outcomes: list[Outcome], run_id: str, queries: list[dict[str, Any]] | None = None
) -> WriteBack:
    """Write each outcome's workflow status and note, under the rules above.

    ``queries`` is the run's own finding query: for large runs the current state is
    re-read with it (a finding it no longer returns has left NEW/NOTIFIED).
    """
    result = WriteBack()
    planned = {o.finding_id: o for o in outcomes if o.status in WORKFLOW_FOR}
    if not planned:
        return result
    now = current_state(client, list(planned), queries)
    updates = []
    for finding_id, outcome in planned.items():
        found = now.get(finding_id)
        status = WORKFLOW_FOR[outcome.status]
        note = note_for(outcome, run_id)
        workflow = (found or {}).get("Workflow", {}).get("Status")
        if found is None or workflow not in STILL_OURS or found.get("RecordState") != "ACTIVE":
            state = f"{workflow}, {found.get('RecordState')}" if found else "no longer NEW or NOTIFIED"
            result.left_alone.append({"finding_id": finding_id, "now": state})
            continue
        current_note = RUN_SUFFIX.sub("", (found.get("Note") or {}).get("Text", ""))
        if workflow == status and current_note == RUN_SUFFIX.sub("", note):
            result.unchanged.append(finding_id)
            continue
        updates.append(({"Id": finding_id, "ProductArn": outcome.product_arn}, status, note))
    if updates:
        result.updated, result.failed = update_findings(client, updates)
    return result
