"""Security Hub calls moto 5.2.5 lacks, added to moto's own backend.

moto stores imported findings and pages through them, but answers 404 to
``BatchUpdateFindings`` and ignores ``GetFindings`` filters (string and date filters). The product needs
both, with AWS semantics, so they are added here to ``SecurityHubBackend`` and
``SecurityHubResponse`` and wired into moto's URL map.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

from moto.securityhub import urls
from moto.securityhub.exceptions import InvalidInputException
from moto.securityhub.models import Finding, SecurityHubBackend
from moto.securityhub.responses import SecurityHubResponse
from moto.utilities.paginator import paginate

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
WORKFLOW_STATUSES = {"NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED"}
MAX_FILTER_FIELDS = 10
MAX_FILTER_VALUES = 20
MAX_IDENTIFIERS = 100
MAX_NOTE = 512
FILTER_CACHE_SIZE = 64


def _values(node: Any, path: tuple[str, ...]) -> Iterator[str]:
    if not path:
        if isinstance(node, str):
            yield node
        return
    step, rest = path[0], path[1:]
    if step == "[]":
        for item in node if isinstance(node, list) else ():
            yield from _values(item, rest)
    elif isinstance(node, dict) and step in node:
        yield from _values(node[step], rest)


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
    """One DateFilter: ``Start`` and ``End`` (inclusive), or a ``DateRange`` of the last days."""
    if not isinstance(value, str):
        return False
    moment = _time(value)
    if "DateRange" in condition:
        return now - datetime.timedelta(days=condition["DateRange"]["Value"]) <= moment <= now
    return _time(condition["Start"]) <= moment <= _time(condition["End"])


def _field_matches(finding: dict[str, Any], field: str, conditions: list[dict[str, Any]]) -> bool:
    """Positive conditions of one field are OR-ed; negative ones must all hold; date
    conditions are OR-ed."""
    if field in DATE_FILTER_FIELDS:
        now = datetime.datetime.now(datetime.UTC)
        return any(_in_range(finding.get(DATE_FILTER_FIELDS[field]), c, now) for c in conditions)
    values = list(_values(finding, STRING_FILTER_PATHS[field]))
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
        checked[field] = conditions
    return checked


def filter_findings(findings: list[dict[str, Any]], filters: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Fields are AND-ed, as Security Hub does."""
    checked = validate_filters(filters)
    return [f for f in findings if all(_field_matches(f, k, v) for k, v in checked.items())]


@paginate(pagination_model=SecurityHubBackend.PAGINATION_MODEL)
def get_findings(
    self: SecurityHubBackend,
    filters: dict[str, Any] | None = None,
    sort_criteria: list[dict[str, str]] | None = None,
    max_results: int | None = None,
) -> list[dict[str, Any]]:
    if max_results is not None and not 1 <= int(max_results) <= 100:
        raise InvalidInputException(op="GetFindings", msg="MaxResults must be a number between 1 and 100")
    # moto's paginator calls this for every page and slices the result: without a cache,
    # paging through 10,000 findings filters all of them a hundred times.
    key = (getattr(self, "_asr_version", 0), json.dumps(filters, sort_keys=True, default=str))
    cache: dict[tuple[int, str], list[dict[str, Any]]] = self.__dict__.setdefault("_asr_filtered", {})
    if key not in cache:
        if len(cache) >= FILTER_CACHE_SIZE:
            cache.clear()
        cache[key] = filter_findings([f.as_dict() for f in self.findings], filters)
    return cache[key]


def _changed(backend: SecurityHubBackend) -> None:
    """Findings were added or updated: every cached filter result is stale."""
    backend._asr_version = getattr(backend, "_asr_version", 0) + 1  # type: ignore[attr-defined]


def batch_import_findings(
    self: SecurityHubBackend, findings: list[dict[str, Any]]
) -> tuple[int, int, list[dict[str, Any]]]:
    """moto's own import searches the whole list per finding; large fleets need an index."""
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
            index[data["Id"]].data.update(data)
        else:
            index[data["Id"]] = Finding(data["Id"], data)
            self.findings.append(index[data["Id"]])
    _changed(self)
    return len(failed), len(findings) - len(failed), failed


def batch_update_findings(
    self: SecurityHubBackend,
    identifiers: list[dict[str, str]],
    workflow: dict[str, str] | None,
    note: dict[str, str] | None,
    extra: dict[str, Any],
) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """Update findings by (Id, ProductArn); unknown ones come back unprocessed, not as errors."""
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
    if note is not None:
        text, by = note.get("Text"), note.get("UpdatedBy")
        if not text or not by or len(text) > MAX_NOTE:
            raise InvalidInputException(
                op="BatchUpdateFindings",
                msg=f"Note needs Text (1 to {MAX_NOTE} characters) and UpdatedBy",
            )
    now = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
    index = {(f.id, f.data.get("ProductArn")): f for f in self.findings}
    processed: list[dict[str, str]] = []
    unprocessed: list[dict[str, Any]] = []
    for ident in identifiers:
        found = index.get((ident.get("Id"), ident.get("ProductArn")))
        if found is None:
            unprocessed.append(
                {
                    "FindingIdentifier": ident,
                    "ErrorCode": "FindingNotFound",
                    "ErrorMessage": "Finding Not Found",
                }
            )
            continue
        data = found.data
        if status:
            data["Workflow"] = {"Status": status}
            data["WorkflowState"] = status
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
