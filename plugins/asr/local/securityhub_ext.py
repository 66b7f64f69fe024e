"""Security Hub calls moto 5.2.5 lacks, added to moto's own backend.

moto stores imported findings and pages through them, but answers 404 to
``BatchUpdateFindings`` and ignores ``GetFindings`` filters (string and date filters). The product needs
both, with AWS semantics, so they are added here to ``SecurityHubBackend`` and
``SecurityHubResponse`` and wired into moto's URL map. ``BatchImportFindings`` is replaced too:
moto's lets a re-import overwrite what customers own (the workflow, the note) and never moves
the workflow as Security Hub does when a control passes or fails again.
"""

from __future__ import annotations

import datetime
import json
import threading
import uuid
from collections import Counter
from typing import Any

from moto.securityhub import urls
from moto.securityhub.exceptions import InvalidInputException
from moto.securityhub.models import Finding, SecurityHubBackend
from moto.securityhub.responses import SecurityHubResponse

from asr.securityhub import values_at

# GetFindings string filter name -> path into the ASFF finding. A "[]" step fans out over a list.
STRING_FILTER_PATHS: dict[str, tuple[str, ...]] = {
    "Id": ("Id",),
    "ProductArn": ("ProductArn",),
    "ProductName": ("ProductName",),
    "CompanyName": ("CompanyName",),
    "AwsAccountId": ("AwsAccountId",),
    "AwsAccountName": ("AwsAccountName",),
    "GeneratorId": ("GeneratorId",),
    "Region": ("Region",),
    "Title": ("Title",),
    "Type": ("Types", "[]"),
    "SeverityLabel": ("Severity", "Label"),
    "ComplianceStatus": ("Compliance", "Status"),
    "ComplianceSecurityControlId": ("Compliance", "SecurityControlId"),
    "ComplianceAssociatedStandardsId": ("Compliance", "AssociatedStandards", "[]", "StandardsId"),
    "WorkflowStatus": ("Workflow", "Status"),
    "WorkflowState": ("WorkflowState",),
    "RecordState": ("RecordState",),
    "VerificationState": ("VerificationState",),
    "NoteText": ("Note", "Text"),
    "ResourceType": ("Resources", "[]", "Type"),
    "ResourceId": ("Resources", "[]", "Id"),
    "ResourceRegion": ("Resources", "[]", "Region"),
    "ResourcePartition": ("Resources", "[]", "Partition"),
}

# GetFindings date filter name -> the ASFF field, an ISO 8601 time.
DATE_FILTER_FIELDS = {name: name for name in ("CreatedAt", "UpdatedAt", "FirstObservedAt", "LastObservedAt")}

POSITIVE = {"EQUALS", "PREFIX", "CONTAINS"}
NEGATIVE = {"NOT_EQUALS", "PREFIX_NOT_EQUALS", "NOT_CONTAINS"}
# The botocore model's StringFilter, on one field: "You can't have both a CONTAINS filter and a
# NOT_CONTAINS filter on the same field. Similarly, you can't provide both an EQUALS filter and
# a NOT_EQUALS or PREFIX_NOT_EQUALS filter on the same field. Combining filters in this way
# returns an error. CONTAINS filters can only be used with other CONTAINS filters. NOT_CONTAINS
# filters can only be used with other NOT_CONTAINS filters." (PREFIX with NOT_EQUALS or
# PREFIX_NOT_EQUALS is allowed.) Each pair below is refused.
REFUSED_TOGETHER = (
    ("EQUALS", {"NOT_EQUALS", "PREFIX_NOT_EQUALS"}),
    ("CONTAINS", (POSITIVE | NEGATIVE) - {"CONTAINS"}),
    ("NOT_CONTAINS", (POSITIVE | NEGATIVE) - {"NOT_CONTAINS"}),
)
DATE_RANGE_COMPARISONS = {"WITHIN", "OLDER_THAN"}
WORKFLOW_STATUSES = {"NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED"}
MAX_FILTER_FIELDS = 10
MAX_FILTER_VALUES = 20
MAX_IDENTIFIERS = 100
MAX_IMPORT = 100
MAX_NOTE = 512
# ASFF's UserDefinedFields (the botocore model's AwsSecurityFinding): "Can contain up to 50
# key-value pairs. For each key-value pair, the key can contain up to 128 characters, and the
# value can contain up to 1024 characters."
MAX_USER_FIELDS = 50
MAX_USER_FIELD_KEY = 128
MAX_USER_FIELD_VALUE = 1024
# What BatchImportFindings "cannot be used to update" once a finding exists (the model's
# BatchImportFindings documentation): customers own them, through BatchUpdateFindings.
CUSTOMER_FIELDS = ("Note", "UserDefinedFields", "VerificationState", "Workflow")
NOT_PASSING = ("FAILED", "WARNING", "NOT_AVAILABLE")
FILTER_CACHE_SIZE = 64
# Results being paged through, oldest dropped first: a query pages through one at a time.
SNAPSHOTS_KEPT = 256
_SNAPSHOTS_LOCK = threading.Lock()


def _compare(value: str, comparison: str, wanted: str) -> bool:
    if comparison in ("EQUALS", "NOT_EQUALS"):
        return value == wanted
    if comparison in ("PREFIX", "PREFIX_NOT_EQUALS"):
        return value.startswith(wanted)
    return wanted in value


def _time(text: str) -> datetime.datetime:
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _in_range(value: Any, condition: dict[str, Any], now: datetime.datetime) -> bool:
    """One DateFilter: ``Start`` and ``End`` (inclusive), or a ``DateRange`` of days: the last
    ones (``WITHIN``, the default) or those before them (``OLDER_THAN``)."""
    if not isinstance(value, str):
        return False
    moment = _time(value)
    if "DateRange" in condition:
        date_range = condition["DateRange"]
        since = now - datetime.timedelta(days=date_range["Value"])
        if date_range.get("Comparison", "WITHIN") == "OLDER_THAN":
            return moment < since
        return since <= moment <= now
    return _time(condition["Start"]) <= moment <= _time(condition["End"])


def _field_matches(finding: dict[str, Any], field: str, conditions: list[dict[str, Any]]) -> bool:
    """Positive conditions of one field are OR-ed; negative ones must all hold; date
    conditions are OR-ed."""
    if field in DATE_FILTER_FIELDS:
        now = datetime.datetime.now(datetime.UTC)
        return any(_in_range(finding.get(DATE_FILTER_FIELDS[field]), c, now) for c in conditions)
    values = list(values_at(finding, STRING_FILTER_PATHS[field]))
    positives = [c for c in conditions if c["Comparison"] in POSITIVE]
    negatives = [c for c in conditions if c["Comparison"] in NEGATIVE]
    if positives and not any(_compare(v, c["Comparison"], c["Value"]) for c in positives for v in values):
        return False
    return not any(_compare(v, c["Comparison"], c["Value"]) for c in negatives for v in values)


def _check_date_condition(field: str, condition: dict[str, Any]) -> None:
    """Start and End together, or a DateRange in days, as Security Hub takes them."""
    date_range = condition.get("DateRange")
    try:
        if date_range is not None:
            if set(condition) != {"DateRange"} or date_range.get("Unit") != "DAYS":
                raise ValueError("a DateRange alone, in DAYS")
            if date_range.get("Comparison", "WITHIN") not in DATE_RANGE_COMPARISONS:
                raise ValueError(f"Comparison is one of {sorted(DATE_RANGE_COMPARISONS)}")
            int(date_range["Value"])
        elif {"Start", "End"} <= set(condition):
            _time(condition["Start"]), _time(condition["End"])
        else:
            raise ValueError("Start and End, or a DateRange")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInputException(
            op="GetFindings", msg=f"Filter '{field}' has an invalid date condition {condition}: {exc}"
        ) from None


def validate_filters(filters: dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """Reject filters this stand-in cannot honour, so a test never passes on an ignored filter."""
    checked: dict[str, list[dict[str, Any]]] = {}
    if len(filters or {}) > MAX_FILTER_FIELDS:
        raise InvalidInputException(
            op="GetFindings", msg=f"Filters may name at most {MAX_FILTER_FIELDS} attributes"
        )
    for field, conditions in (filters or {}).items():
        if len(conditions) > MAX_FILTER_VALUES:
            raise InvalidInputException(
                op="GetFindings", msg=f"Filter '{field}' has more than {MAX_FILTER_VALUES} values"
            )
        if field in DATE_FILTER_FIELDS:
            for condition in conditions:
                _check_date_condition(field, condition)
            checked[field] = conditions
            continue
        if field not in STRING_FILTER_PATHS:
            raise InvalidInputException(
                op="GetFindings", msg=f"Filter '{field}' is not supported by the local stand-in"
            )
        for condition in conditions:
            comparison = condition.get("Comparison")
            if comparison not in POSITIVE | NEGATIVE or not isinstance(condition.get("Value"), str):
                raise InvalidInputException(
                    op="GetFindings", msg=f"Filter '{field}' has an invalid condition {condition}"
                )
        comparisons = {c["Comparison"] for c in conditions}
        for comparison, others in REFUSED_TOGETHER:
            if comparison in comparisons and comparisons & others:
                raise InvalidInputException(
                    op="GetFindings",
                    msg=f"Filter '{field}' cannot combine {comparison} with {sorted(comparisons & others)}",
                )
        checked[field] = conditions
    return checked


def filter_findings(findings: list[dict[str, Any]], filters: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Fields are AND-ed, as Security Hub does."""
    checked = validate_filters(filters)
    return [f for f in findings if all(_field_matches(f, k, v) for k, v in checked.items())]


def get_findings(
    self: SecurityHubBackend,
    filters: dict[str, Any] | None = None,
    sort_criteria: list[dict[str, str]] | None = None,
    max_results: int | None = None,
    next_token: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the findings the filters select, and the token of the next.

    The first page takes the whole result once, and later pages page through that: a finding
    updated out of the filter between pages (resolved by a run that writes back meanwhile)
    must not break the paging. moto's paginator keys its token on the next page's first
    finding and answers InvalidToken when that finding has left, an error GetFindings does
    not have on AWS."""
    if max_results is not None and not 1 <= int(max_results) <= 100:
        raise InvalidInputException(op="GetFindings", msg="MaxResults must be a number between 1 and 100")
    snapshots: dict[str, list[dict[str, Any]]] = self.__dict__.setdefault("_asr_snapshots", {})
    if next_token:
        snapshot, _, offset = next_token.partition(":")
        if snapshot not in snapshots or not offset.isdigit():
            raise InvalidInputException(op="GetFindings", msg="The NextToken is not valid or has expired")
        found, start = snapshots[snapshot], int(offset)
    else:
        found, start = _filtered(self, filters), 0
    end = start + int(max_results or 100)
    if end >= len(found):
        return found[start:], None
    if not next_token:
        snapshot = uuid.uuid4().hex
        with _SNAPSHOTS_LOCK:
            while len(snapshots) >= SNAPSHOTS_KEPT:
                snapshots.pop(next(iter(snapshots)))
            snapshots[snapshot] = found
    return found[start:end], f"{snapshot}:{end}"


def _filtered(backend: SecurityHubBackend, filters: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The findings the filters select now. Cached until findings change: a sweep's queries
    often ask the same filters again (a re-read, another task's query)."""
    key = (getattr(backend, "_asr_version", 0), json.dumps(filters, sort_keys=True, default=str))
    cache: dict[tuple[int, str], list[dict[str, Any]]] = backend.__dict__.setdefault("_asr_filtered", {})
    if key not in cache:
        if len(cache) >= FILTER_CACHE_SIZE:
            cache.clear()
        cache[key] = filter_findings([f.as_dict() for f in backend.findings], filters)
    return cache[key]


def _changed(backend: SecurityHubBackend) -> None:
    """Findings were added or updated: every cached filter result is stale."""
    backend._asr_version = getattr(backend, "_asr_version", 0) + 1  # type: ignore[attr-defined]


def _workflow_status(finding: dict[str, Any]) -> str:
    workflow = finding.get("Workflow")
    return str(workflow.get("Status") or "NEW") if isinstance(workflow, dict) else "NEW"


def _compliance_status(finding: dict[str, Any]) -> str | None:
    compliance = finding.get("Compliance")
    return compliance.get("Status") if isinstance(compliance, dict) else None


def _imported(old: dict[str, Any] | None, data: dict[str, Any]) -> dict[str, Any]:
    """The finding an import leaves. On a re-import the customers' fields stay as they were,
    and the workflow moves as the model's ``Workflow.Status`` says: NOTIFIED or RESOLVED
    back to NEW when the record is ACTIVE again or a PASSED control no longer passes; and,
    from the user guide ("For findings from controls, if Compliance.Status is PASSED, then
    Security Hub automatically sets the workflow status to RESOLVED"), a passing control
    finding is RESOLVED unless a person suppressed it."""
    if old is None:
        finding = dict(data)
    else:
        finding = {**old, **data}
        for field in CUSTOMER_FIELDS:
            if field in old:
                finding[field] = old[field]
            else:
                finding.pop(field, None)
    status = _workflow_status(finding)
    compliance = _compliance_status(finding)
    if old is not None and status in ("NOTIFIED", "RESOLVED"):
        active_again = old.get("RecordState") == "ARCHIVED" and finding.get("RecordState") == "ACTIVE"
        failing_again = _compliance_status(old) == "PASSED" and compliance in NOT_PASSING
        if active_again or failing_again:
            status = "NEW"
    from_controls = str(finding.get("ProductArn", "")).endswith("::product/aws/securityhub")
    if from_controls and compliance == "PASSED" and status in ("NEW", "NOTIFIED"):
        status = "RESOLVED"
    if status != _workflow_status(finding):
        workflow = finding.get("Workflow")
        finding["Workflow"] = {**(workflow if isinstance(workflow, dict) else {}), "Status": status}
    return finding


def batch_import_findings(
    self: SecurityHubBackend, findings: list[dict[str, Any]]
) -> tuple[int, int, list[dict[str, Any]]]:
    """moto's own import searches the whole list per finding (large fleets need an index) and
    lets a re-import overwrite the whole finding (see ``_imported``)."""
    if not 1 <= len(findings) <= MAX_IMPORT:  # botocore checks the least, not the most
        raise InvalidInputException(
            op="BatchImportFindings", msg=f"Findings must hold 1 to {MAX_IMPORT} items"
        )
    index: dict[str, Finding] = {f.id: f for f in self.findings}
    failed: list[dict[str, Any]] = []
    for data in findings:
        resources = data.get("Resources")
        if not isinstance(resources, list) or not resources or not data.get("Id"):
            failed.append(
                {
                    "Id": data.get("Id", ""),
                    "ErrorCode": "InvalidInput",
                    "ErrorMessage": "Finding must have an Id and at least one resource",
                }
            )
            continue
        if data["Id"] in index:
            index[data["Id"]].data = _imported(index[data["Id"]].data, data)
        else:
            index[data["Id"]] = Finding(data["Id"], _imported(None, data))
            self.findings.append(index[data["Id"]])
    _changed(self)
    return len(failed), len(findings) - len(failed), failed


def _fields_fit(fields: dict[str, Any]) -> bool:
    """Whether a finding may carry these UserDefinedFields (ASFF's limits)."""
    return len(fields) <= MAX_USER_FIELDS and all(
        len(str(k)) <= MAX_USER_FIELD_KEY and len(str(v)) <= MAX_USER_FIELD_VALUE for k, v in fields.items()
    )


def _unprocessed(ident: dict[str, str], code: str, message: str) -> dict[str, Any]:
    return {"FindingIdentifier": ident, "ErrorCode": code, "ErrorMessage": message}


def batch_update_findings(
    self: SecurityHubBackend,
    identifiers: list[dict[str, str]],
    workflow: dict[str, str] | None,
    note: dict[str, str] | None,
    extra: dict[str, Any],
) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """Update findings by (Id, ProductArn); those it cannot come back unprocessed, not as errors."""
    if not identifiers or len(identifiers) > MAX_IDENTIFIERS:
        raise InvalidInputException(
            op="BatchUpdateFindings",
            msg=f"FindingIdentifiers must hold 1 to {MAX_IDENTIFIERS} items",
        )
    status = (workflow or {}).get("Status")
    if workflow is not None and status not in WORKFLOW_STATUSES:
        raise InvalidInputException(op="BatchUpdateFindings", msg=f"Workflow.Status '{status}' is not valid")
    fields = extra.get("UserDefinedFields")
    if fields is not None and not all(str(v).strip() and str(k).strip() for k, v in fields.items()):
        raise InvalidInputException(  # the model's NonEmptyString: a pattern botocore does not check
            op="BatchUpdateFindings", msg="UserDefinedFields keys and values must not be blank"
        )
    # The 50-pair, 128- and 1024-character limits are the finding's (ASFF), not the request's:
    # the model bounds neither the request's map nor its strings, and documents the per-finding
    # InvalidInput as "The finding update contained an invalid value that did not satisfy the
    # AWS Security Finding Format syntax". So each finding the update would break comes back
    # unprocessed with it. The map replaces the finding's (see below): it is the map after.
    fields_fit = fields is None or _fields_fit(fields)
    if note is not None:
        text, by = note.get("Text"), note.get("UpdatedBy")
        if not text or not by or len(text) > MAX_NOTE:
            raise InvalidInputException(
                op="BatchUpdateFindings",
                msg=f"Note needs Text (1 to {MAX_NOTE} characters) and UpdatedBy",
            )
    now = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
    index = {(f.id, f.data.get("ProductArn")): f for f in self.findings}
    # Every copy of an identifier sent twice is refused and its finding left alone: the model
    # says only that such a request "included two or more findings with the same
    # FindingIdentifier", so the stand-in takes the stricter reading.
    sent = Counter((ident.get("Id"), ident.get("ProductArn")) for ident in identifiers)
    processed: list[dict[str, str]] = []
    unprocessed: list[dict[str, Any]] = []
    for ident in identifiers:
        key = (ident.get("Id"), ident.get("ProductArn"))
        found = index.get(key)
        if sent[key] > 1:
            unprocessed.append(
                _unprocessed(ident, "DuplicatedFindingIdentifier", "Finding Identifier is duplicated")
            )
        elif found is None:
            unprocessed.append(_unprocessed(ident, "FindingNotFound", "Finding Not Found"))
        elif not fields_fit:
            unprocessed.append(_unprocessed(ident, "InvalidInput", "Invalid Input"))
        else:
            data = found.data
            if status:
                # WorkflowState (deprecated, its own values) is the provider's: BatchUpdateFindings
                # does not list it among the fields it updates.
                data["Workflow"] = {"Status": status}
            if note is not None:
                data["Note"] = {"Text": note["Text"], "UpdatedBy": note["UpdatedBy"], "UpdatedAt": now}
            data.update(extra)  # UpdatedAt stays: it is the provider's, and AWS leaves it alone here
            processed.append({"Id": ident["Id"], "ProductArn": ident["ProductArn"]})
    _changed(self)
    return processed, unprocessed


def batch_update_findings_response(self: SecurityHubResponse) -> str:
    body = json.loads(self.body or "{}")
    # UserDefinedFields replaces the map: whether AWS merges or replaces is not documented, and
    # asr sends the whole map either way, so replacing is the stricter stand-in.
    extra_fields = (
        "Severity",
        "VerificationState",
        "Confidence",
        "Criticality",
        "Types",
        "UserDefinedFields",
    )
    processed, unprocessed = self.securityhub_backend.batch_update_findings(
        identifiers=body.get("FindingIdentifiers") or [],
        workflow=body.get("Workflow"),
        note=body.get("Note"),
        extra={k: body[k] for k in extra_fields if k in body},
    )
    return json.dumps({"ProcessedFindings": processed, "UnprocessedFindings": unprocessed})


def install() -> None:
    SecurityHubBackend.get_findings = get_findings  # type: ignore[method-assign]
    SecurityHubBackend.batch_import_findings = batch_import_findings  # type: ignore[method-assign]
    SecurityHubBackend.batch_update_findings = batch_update_findings  # type: ignore[attr-defined]
    SecurityHubResponse.batch_update_findings = batch_update_findings_response  # type: ignore[attr-defined]
    urls.url_paths["{0}/findings/batchupdate$"] = SecurityHubResponse.dispatch
