"""Security Hub I/O: page through actionable findings; write outcomes back.

Both calls are batched to Security Hub's own limits (100 findings a page, 100
identifiers an update), and unprocessed updates are retried rather than lost.
"""

from __future__ import annotations

import datetime
import itertools
import json
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from asr.findings import ACTIONABLE_COMPLIANCE, ACTIONABLE_WORKFLOW

# The ProductName of Security Hub's control findings: "Security Hub CSPM" since the 2025
# rename (the filter is exact, so the old name alone matched none of them), "Security Hub"
# on findings made before it.
OWN_PRODUCT_NAMES = ("Security Hub CSPM", "Security Hub")
PAGE_SIZE = 100
FILTER_VALUES = 20
UPDATE_LIMIT = 100
UPDATE_THREADS = 4  # BatchUpdateFindings calls in flight at once (Security Hub: 10 a second, burst 30)
NOTE_LIMIT = 512
UPDATED_BY = "asr"
# Per-finding BatchUpdateFindings errors no retry can mend: reported at once, not retried.
FINAL_UPDATE_ERRORS = frozenset({"FindingNotFound", "FindingSizeExceeded", "InvalidInput"})
# Another update of the finding was under way, a person's maybe: sent again as it was, an
# update may undo theirs. Not resent: the caller's retry reads the finding again first.
CONCURRENT_UPDATE = "ConcurrentUpdateError"
NOT_RESENT = FINAL_UPDATE_ERRORS | {CONCURRENT_UPDATE}


def refused_for_now(unprocessed: Any) -> bool:
    """Whether Security Hub refused an update (an UnprocessedFindings entry) with an error a
    later try may mend (ConcurrentUpdateError, InternalFailure): not one of the final ones."""
    return isinstance(unprocessed, dict) and unprocessed.get("ErrorCode") not in FINAL_UPDATE_ERRORS


# The UserDefinedFields key asr_rollback sets on the findings of the fixes it put back (the
# rollback run's id): sweeps and automatic events leave them alone; a person may pick them.
REVERTED_FIELD = "asr:reverted"
# The key write-back sets on the findings of a fix a person rejected (when the hold ends, an
# ISO 8601 time): until then sweeps and automatic events leave them alone (ASR_REJECTION_HOLD).
HELD_FIELD = "asr:rejected-until"
# The value of either mark once a person had the finding fixed: Security Hub takes no blank value.
REVERTED_CLEARED = "no"
MARKS = {"reverted": REVERTED_FIELD, "held": HELD_FIELD}
FIELDS_LIMIT = 50  # UserDefinedFields a finding may have
# Said in the note of a finding that has no room left for asr's mark.
NOT_MARKED = f"not marked: the finding has {FIELDS_LIMIT} user-defined fields, the most it may have"


def equals(values: Iterable[str]) -> list[dict[str, str]]:
    return [{"Value": v, "Comparison": "EQUALS"} for v in values]


def actionable_filters(
    accounts: Iterable[str] = (),
    regions: Iterable[str] = (),
    control_ids: Iterable[str] = (),
    finding_ids: Iterable[str] = (),
    resource_ids: Iterable[str] = (),
) -> list[dict[str, list[dict[str, str]]]]:
    """Failed, active, not yet resolved or suppressed: what a sweep should look at.

    Security Hub takes at most 20 values per filter attribute, so a longer list of
    accounts, regions, controls or ids becomes several queries; their results are
    disjoint, since each query takes a different slice of values. Several long lists
    multiply the queries: ``actionable_plan`` keeps them within a budget.
    """

    base = {
        # Security Hub's own control findings: other products' (AWS Config, partners) carry a
        # compliance status too, and no playbook is for them. A custom integration may take
        # the name: ingest passes over its findings by their ProductArn (GetFindings has no
        # filter on the ARN's end: CONTAINS is documented for automation rules).
        "ProductName": equals(list(OWN_PRODUCT_NAMES)),
        "ComplianceStatus": equals(sorted(ACTIONABLE_COMPLIANCE)),
        "RecordState": equals(["ACTIVE"]),
        "WorkflowStatus": equals(sorted(ACTIONABLE_WORKFLOW)),
    }
    narrowing = [
        (name, sorted(set(values)))
        for name, values in (
            ("AwsAccountId", accounts),
            ("ResourceRegion", regions),
            ("ComplianceSecurityControlId", control_ids),
            ("Id", finding_ids),
            ("ResourceId", resource_ids),
        )
    ]
    sliced = [
        [(name, values[i : i + FILTER_VALUES]) for i in range(0, len(values), FILTER_VALUES)]
        for name, values in narrowing
        if values
    ]
    return [
        base | {name: equals(values) for name, values in combination}
        for combination in itertools.product(*sliced)
    ]


# The lists a finding query narrows by, the most selective first: actionable_filters' parameter
# -> the filter attribute, and where a finding holds the value it is matched on ("[]": any item).
NARROWING: dict[str, tuple[str, tuple[str, ...]]] = {
    "finding_ids": ("Id", ("Id",)),
    "resource_ids": ("ResourceId", ("Resources", "[]", "Id")),
    "control_ids": ("ComplianceSecurityControlId", ("Compliance", "SecurityControlId")),
    "accounts": ("AwsAccountId", ("AwsAccountId",)),
    "regions": ("ResourceRegion", ("Resources", "[]", "Region")),
}
PATHS = dict(NARROWING.values())
# Queries a finding read may take before further lists are checked after reading instead.
QUERY_BUDGET = 20


def values_at(node: Any, path: tuple[str, ...]) -> Iterator[str]:
    """The strings at ``path`` in a finding, as GetFindings reads them: "[]" fans out over a list,
    and a part missing or of another type holds none. (The stand-in's filters read so too.)"""
    if not path:
        if isinstance(node, str):
            yield node
        return
    step, rest = path[0], path[1:]
    if step == "[]":
        for item in node if isinstance(node, list) else ():
            yield from values_at(item, rest)
    elif isinstance(node, dict) and step in node:
        yield from values_at(node[step], rest)


@dataclass(frozen=True)
class QueryPlan:
    """The GetFindings queries to send, and the narrowing they leave out (filter attribute ->
    the values a finding must have), checked on each finding read: with both, a finding is
    kept exactly when Security Hub would have matched it to the lists sent in full. No
    queries: nothing is read."""

    queries: tuple[dict[str, Any], ...] = ()
    residual: tuple[tuple[str, frozenset[str]], ...] = ()

    def matches(self, finding: dict[str, Any]) -> bool:
        """Whether the finding is within the residual narrowing: EQUALS, exact and case-sensitive."""
        return all(not values.isdisjoint(values_at(finding, PATHS[name])) for name, values in self.residual)


def actionable_plan(
    accounts: Iterable[str] = (),
    regions: Iterable[str] = (),
    control_ids: Iterable[str] = (),
    finding_ids: Iterable[str] = (),
    resource_ids: Iterable[str] = (),
) -> QueryPlan:
    """``actionable_filters``' findings in at most ``QUERY_BUDGET`` queries, or the slices of
    one list when it alone takes more, not the product of every long list's (400 ids and
    300 accounts: 20 queries, not 300, each at least one GetFindings call at some 3 a
    second). The most selective list given (``NARROWING``) is sent in full; each other
    list, in that order, while the product of slices stays in the budget, else it is
    checked after reading. Within the budget, the queries are ``actionable_filters``' own."""
    lists = {
        "finding_ids": sorted(set(finding_ids)),
        "resource_ids": sorted(set(resource_ids)),
        "control_ids": sorted(set(control_ids)),
        "accounts": sorted(set(accounts)),
        "regions": sorted(set(regions)),
    }
    slices = {name: -(-len(values) // FILTER_VALUES) for name, values in lists.items()}
    leading = next((name for name in NARROWING if lists[name]), None)
    budget = max(QUERY_BUDGET, slices[leading] if leading else 1)
    queries, checked = slices[leading] if leading else 1, []
    for name in NARROWING:
        if name == leading or not lists[name]:
            continue
        if queries * slices[name] <= budget:
            queries *= slices[name]
        else:
            checked.append(name)
    sent = {name: () if name in checked else values for name, values in lists.items()}
    return QueryPlan(
        tuple(actionable_filters(**sent)),
        tuple((NARROWING[name][0], frozenset(lists[name])) for name in checked),
    )


def queries_by_id(finding_ids: list[str]) -> list[dict[str, Any]]:
    """GetFindings queries for these findings, 20 ids a query (Security Hub's limit)."""
    return [
        {"Id": [{"Value": i, "Comparison": "EQUALS"} for i in finding_ids[n : n + FILTER_VALUES]]}
        for n in range(0, len(finding_ids), FILTER_VALUES)
    ]


def closed_in(query: dict[str, Any]) -> dict[str, Any]:
    """The findings ``query`` would select, had a person not closed them (RESOLVED, SUPPRESSED).

    Closing a finding does not move its ``UpdatedAt``, so it cannot be asked for by time.
    """
    return query | {"WorkflowStatus": equals(["RESOLVED", "SUPPRESSED"])}


def closed_since(query: dict[str, Any], since: str) -> dict[str, Any]:
    """The findings in ``query``'s accounts, regions and controls that are closed (RESOLVED,
    SUPPRESSED) and that then left the query otherwise: their control passed or their record
    was archived. Either change moves ``UpdatedAt``, so the findings that changed since
    ``since`` cover them."""
    scope = {k: v for k, v in query.items() if k not in ("ComplianceStatus", "RecordState", "WorkflowStatus")}
    until = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)).isoformat()
    closed = equals(["RESOLVED", "SUPPRESSED"])
    return scope | {"WorkflowStatus": closed, "UpdatedAt": [{"Start": since, "End": until}]}


def _pages(client: Any, filters: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The GetFindings pages of one query, each fetched only when asked for."""
    token: dict[str, str] = {}
    while True:
        page = client.get_findings(Filters=filters, MaxResults=PAGE_SIZE, **token)
        yield page
        if not page.get("NextToken"):
            return
        token = {"NextToken": page["NextToken"]}


def find_within(client: Any, queries: list[dict[str, Any]], pages: int) -> list[dict[str, Any]] | None:
    """Every finding the queries match, or None when that takes more than ``pages`` calls."""
    found: list[dict[str, Any]] = []
    for filters in queries:
        if pages == 0:
            return None
        for page in _pages(client, filters):
            pages -= 1
            found += page["Findings"]
            if page.get("NextToken") and pages == 0:
                return None
    return found


def iter_findings(client: Any, queries: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every finding matching any of the queries, 100 a page."""
    for filters in queries:
        for page in _pages(client, filters):
            yield from page["Findings"]


def _units(text: str) -> int:
    """``text``'s length as AWS's limits count it, in UTF-16 code units (Java's): an emoji
    in a resource's name or an error counts two."""
    return len(text.encode("utf-16-le")) // 2


def clip_note(text: str, suffix: str = "") -> str:
    """``text`` and ``suffix`` within Security Hub's note limit (``_units``): a longer text is cut at a word
    (if one ends near the cut) and ends in "…", so a reader sees that more was said (the run
    report has it whole); the suffix stays whole."""
    if _units(text) + _units(suffix) <= NOTE_LIMIT:
        return text + suffix
    room = max(0, NOTE_LIMIT - _units(suffix) - 1)
    cut = text[:room]
    while _units(cut) > room:  # characters that count two: drop as many as it is over
        cut = cut[: len(cut) - max(1, (_units(cut) - room) // 2)]
    space = cut.rfind(" ")
    if space >= len(cut) - 40:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…" + suffix


def reverted_by(finding: dict[str, Any]) -> str:
    """The rollback run that put back asr's fix of this finding, or ""."""
    fields = finding.get("UserDefinedFields")
    mark = str(fields.get(REVERTED_FIELD) or "") if isinstance(fields, dict) else ""
    return "" if mark == REVERTED_CLEARED else mark


def held_until(finding: dict[str, Any], now: datetime.datetime | None = None) -> datetime.datetime | None:
    """When the hold of a rejected fix on this finding ends, if it has not ended yet."""
    fields = finding.get("UserDefinedFields")
    mark = str(fields.get(HELD_FIELD) or "") if isinstance(fields, dict) else ""
    try:
        until = datetime.datetime.fromisoformat(mark)
    except ValueError:  # cleared ("no"), absent, or not asr's writing: no hold
        return None
    if until.tzinfo is None:
        until = until.replace(tzinfo=datetime.UTC)
    return until if until > (now or datetime.datetime.now(datetime.UTC)) else None


def marked(finding: dict[str, Any]) -> bool:
    """Whether the finding carries one of asr's marks (a rollback's, a rejection's hold)."""
    fields = finding.get("UserDefinedFields")
    return isinstance(fields, dict) and any(
        str(fields.get(key) or REVERTED_CLEARED) != REVERTED_CLEARED for key in MARKS.values()
    )


def with_marks(finding: dict[str, Any], **marks: str) -> dict[str, str] | None:
    """The finding's UserDefinedFields with asr's marks set (``reverted``: the rollback run;
    ``held``: when a rejection's hold ends; ``REVERTED_CLEARED`` clears either). All of them
    are sent, so another tool's fields stay even if an update replaces the map. None when
    the marks do not fit beside them (``FIELDS_LIMIT``): asr never drops another's field."""
    fields = finding.get("UserDefinedFields")
    marked = {**(fields if isinstance(fields, dict) else {}), **{MARKS[name]: v for name, v in marks.items()}}
    return marked if len(marked) <= FIELDS_LIMIT else None


def without_marks(finding: dict[str, Any]) -> dict[str, str] | None:
    """The UserDefinedFields that clear asr's marks on a finding now fixed, or None if it has none."""
    if not marked(finding):
        return None
    fields = finding["UserDefinedFields"]
    return with_marks(finding, **{name: REVERTED_CLEARED for name, key in MARKS.items() if key in fields})


def update_findings(
    client: Any,
    updates: Iterable[tuple[dict[str, str], str, str] | tuple[dict[str, str], str, str, dict[str, str]]],
    attempts: int = 3,
    pause: float = 1.0,
) -> tuple[int, list[dict[str, Any]]]:
    """Apply (identifier, workflow status, note[, UserDefinedFields]) updates, grouped so one
    call serves many.

    The calls run ``UPDATE_THREADS`` at a time: one after another, a large run waited a round
    trip per 100 findings, well below Security Hub's 10 calls a second; the client's rate
    budget (``asr.pacing``) keeps them within it. Each finding must come once: two calls
    at once for the same finding would race. A call that fails stops the calls not yet
    begun, and its error is raised. Returns how many findings were updated and the ones
    Security Hub would not process even after retries, with its reason; one refused with
    ``CONCURRENT_UPDATE`` is returned at once, for the caller to read the finding again.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    # A finding goes once into its group: Security Hub refuses an identifier sent twice in one
    # call (DuplicatedFindingIdentifier), so the same update asked for twice is made once.
    groups: dict[tuple[str, str, str], dict[tuple[str, str], dict[str, str]]] = defaultdict(dict)
    for identifier, status, note, *fields in updates:
        group = groups[(status, clip_note(note), json.dumps(fields[0], sort_keys=True) if fields else "")]
        group.setdefault((identifier["Id"], identifier["ProductArn"]), identifier)
    calls = [
        (status, note, fields, identifiers[start : start + UPDATE_LIMIT])
        for (status, note, fields), unique in groups.items()
        for identifiers in [list(unique.values())]
        for start in range(0, len(identifiers), UPDATE_LIMIT)
    ]

    def update(call: tuple[str, str, str, list[dict[str, str]]]) -> tuple[int, list[dict[str, Any]]]:
        status, note, fields, pending = call
        extra = {"UserDefinedFields": json.loads(fields)} if fields else {}
        done = 0
        failed: list[dict[str, Any]] = []
        for attempt in range(attempts):
            response = client.batch_update_findings(
                FindingIdentifiers=pending,
                Workflow={"Status": status},
                Note={"Text": note, "UpdatedBy": UPDATED_BY},
                **extra,
            )
            done += len(response.get("ProcessedFindings", []))
            unprocessed = response.get("UnprocessedFindings", [])
            retryable = [u for u in unprocessed if u.get("ErrorCode") not in NOT_RESENT]
            failed += [u for u in unprocessed if u.get("ErrorCode") in NOT_RESENT]
            pending = [u["FindingIdentifier"] for u in retryable]
            if not pending:
                break
            if attempt < attempts - 1:
                time.sleep(pause * (attempt + 1))
        else:
            failed += retryable
        return done, failed

    with ThreadPoolExecutor(max_workers=max(1, min(UPDATE_THREADS, len(calls)))) as pool:
        futures = [pool.submit(update, call) for call in calls]
        wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            future.cancel()  # after a failure: those not begun (none otherwise)
        # Calls begin in order, so a failed one comes before any cancelled one.
        results = [future.result() for future in futures]
    return sum(done for done, _ in results), [u for _, failed in results for u in failed]
