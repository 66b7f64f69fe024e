"""The stand-in's Security Hub answers where AWS refuses or rewrites a request: date ranges,
filter combinations, batch sizes, duplicate identifiers, user-defined field limits, and what a
re-import may change. Each case is one the botocore model or the AWS docs state."""

from __future__ import annotations

import datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from helpers import PRODUCT, make_finding

from asr.local.securityhub_ext import validate_filters
from asr.securityhub import update_findings


def ident(n: int) -> dict[str, str]:
    return {"Id": f"finding-{n}", "ProductArn": PRODUCT}


@pytest.fixture
def securityhub(clean_aws: str):  # type: ignore[no-untyped-def]
    return boto3.client("securityhub", endpoint_url=clean_aws, region_name="us-east-1")


def found(securityhub) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    return {f["Id"]: f for f in securityhub.get_findings()["Findings"]}


def error_code(raised: pytest.ExceptionInfo[ClientError]) -> str:
    return str(raised.value.response["Error"]["Code"])


def test_date_range_older_than_selects_what_came_before_the_range(securityhub) -> None:
    now = datetime.datetime.now(datetime.UTC)
    stamps = {1: now - datetime.timedelta(days=10), 2: now - datetime.timedelta(days=1)}
    securityhub.batch_import_findings(
        Findings=[make_finding(n, UpdatedAt=t.isoformat().replace("+00:00", "Z")) for n, t in stamps.items()]
    )

    def updated(**date_range: Any) -> set[str]:
        condition = {"DateRange": {"Value": 5, "Unit": "DAYS", **date_range}}
        return {f["Id"] for f in securityhub.get_findings(Filters={"UpdatedAt": [condition]})["Findings"]}

    assert updated(Comparison="OLDER_THAN") == {"finding-1"}
    assert updated(Comparison="WITHIN") == {"finding-2"}
    assert updated() == {"finding-2"}, "WITHIN is the default"
    with pytest.raises(ClientError, match="invalid date condition") as raised:
        updated(Comparison="NEWER_THAN")
    assert error_code(raised) == "InvalidInputException"


@pytest.mark.parametrize(
    "comparisons",
    [
        ("EQUALS", "NOT_EQUALS"),
        ("EQUALS", "PREFIX_NOT_EQUALS"),
        ("CONTAINS", "NOT_CONTAINS"),
        ("CONTAINS", "EQUALS"),
        ("CONTAINS", "PREFIX"),
        ("NOT_CONTAINS", "NOT_EQUALS"),
        ("NOT_CONTAINS", "PREFIX"),
    ],
)
def test_filter_combinations_security_hub_refuses(securityhub, comparisons: tuple[str, str]) -> None:
    conditions = [{"Value": f"v{i}", "Comparison": c} for i, c in enumerate(comparisons)]
    with pytest.raises(ClientError, match="Title") as raised:
        securityhub.get_findings(Filters={"Title": conditions})
    assert error_code(raised) == "InvalidInputException"


@pytest.mark.parametrize(
    "comparisons",
    [
        ("PREFIX", "NOT_EQUALS"),
        ("PREFIX", "PREFIX_NOT_EQUALS"),
        ("EQUALS", "PREFIX"),
        ("NOT_EQUALS", "PREFIX_NOT_EQUALS"),
        ("CONTAINS", "CONTAINS"),
        ("NOT_CONTAINS", "NOT_CONTAINS"),
    ],
)
def test_filter_combinations_security_hub_takes(comparisons: tuple[str, str]) -> None:
    conditions = [{"Value": f"v{i}", "Comparison": c} for i, c in enumerate(comparisons)]
    assert validate_filters({"Title": conditions}) == {"Title": conditions}


def test_batch_import_takes_at_most_100_findings(securityhub) -> None:
    with pytest.raises(ClientError, match="100") as raised:
        securityhub.batch_import_findings(Findings=[make_finding(n) for n in range(101)])
    assert error_code(raised) == "InvalidInputException"
    assert securityhub.get_findings()["Findings"] == [], "nothing of a refused call is imported"
    assert (
        securityhub.batch_import_findings(Findings=[make_finding(n) for n in range(100)])["SuccessCount"]
        == 100
    )


def test_batch_update_returns_a_duplicated_identifier_unprocessed(securityhub) -> None:
    securityhub.batch_import_findings(Findings=[make_finding(1), make_finding(2)])
    response = securityhub.batch_update_findings(
        FindingIdentifiers=[ident(1), ident(2), ident(1)], Workflow={"Status": "RESOLVED"}
    )
    assert response["ProcessedFindings"] == [ident(2)]
    assert (
        response["UnprocessedFindings"]
        == [
            {
                "FindingIdentifier": ident(1),
                "ErrorCode": "DuplicatedFindingIdentifier",
                "ErrorMessage": "Finding Identifier is duplicated",
            }
        ]
        * 2
    )
    assert found(securityhub)["finding-1"]["Workflow"]["Status"] == "NEW"


def test_update_findings_sends_each_identifier_once(securityhub) -> None:
    securityhub.batch_import_findings(Findings=[make_finding(1), make_finding(2)])
    updates = [(ident(n), "RESOLVED", "fixed") for n in (1, 2, 1)]
    assert update_findings(securityhub, updates) == (2, [])
    assert {f["Workflow"]["Status"] for f in found(securityhub).values()} == {"RESOLVED"}


@pytest.mark.parametrize(
    "fields",
    [
        {f"k{n}": "v" for n in range(51)},
        {"k" * 129: "v"},
        {"k": "v" * 1025},
    ],
    ids=["51 pairs", "key of 129", "value of 1025"],
)
def test_user_defined_fields_beyond_the_asff_limits_leave_the_finding_unprocessed(
    securityhub, fields: dict[str, str]
) -> None:
    securityhub.batch_import_findings(Findings=[make_finding(1)])
    response = securityhub.batch_update_findings(
        FindingIdentifiers=[ident(1)], UserDefinedFields=fields, Workflow={"Status": "NOTIFIED"}
    )
    assert response["ProcessedFindings"] == []
    assert response["UnprocessedFindings"] == [
        {"FindingIdentifier": ident(1), "ErrorCode": "InvalidInput", "ErrorMessage": "Invalid Input"}
    ]
    now = found(securityhub)["finding-1"]
    assert "UserDefinedFields" not in now and now["Workflow"]["Status"] == "NEW"


def test_user_defined_fields_at_the_asff_limits_are_taken(securityhub) -> None:
    securityhub.batch_import_findings(Findings=[make_finding(1)])
    fields = {f"{n:02d}" + "k" * 126: "v" * 1024 for n in range(50)}
    response = securityhub.batch_update_findings(FindingIdentifiers=[ident(1)], UserDefinedFields=fields)
    assert response["ProcessedFindings"] == [ident(1)]
    assert found(securityhub)["finding-1"]["UserDefinedFields"] == fields


def test_a_reimport_leaves_the_fields_customers_own(securityhub) -> None:
    securityhub.batch_import_findings(Findings=[make_finding(1)])
    securityhub.batch_update_findings(
        FindingIdentifiers=[ident(1)],
        Workflow={"Status": "SUPPRESSED"},
        Note={"Text": "accepted risk", "UpdatedBy": "alice"},
        UserDefinedFields={"ticket": "SEC-1"},
        VerificationState="BENIGN_POSITIVE",
    )
    before = found(securityhub)["finding-1"]
    securityhub.batch_import_findings(
        Findings=[
            make_finding(
                1,
                Title="new title",
                Workflow={"Status": "NEW"},
                Note={"Text": "provider", "UpdatedBy": "provider", "UpdatedAt": "2026-01-02T00:00:00Z"},
                UserDefinedFields={"provider": "x"},
                VerificationState="UNKNOWN",
            )
        ]
    )
    after = found(securityhub)["finding-1"]
    assert after["Title"] == "new title", "the provider's own fields do change"
    for field in ("Workflow", "Note", "UserDefinedFields", "VerificationState"):
        assert after[field] == before[field], field


def test_a_new_finding_takes_the_customer_fields_it_is_imported_with(securityhub) -> None:
    securityhub.batch_import_findings(Findings=[make_finding(1, Workflow={"Status": "NOTIFIED"})])
    assert found(securityhub)["finding-1"]["Workflow"] == {"Status": "NOTIFIED"}


def compliance(status: str) -> dict[str, Any]:
    return {"Compliance": {"Status": status, "SecurityControlId": "EC2.13"}}


ARCHIVED, ACTIVE = {"RecordState": "ARCHIVED"}, {"RecordState": "ACTIVE"}


@pytest.mark.parametrize(
    ("start", "workflow", "change", "expected"),
    [
        # Security Hub resets NOTIFIED or RESOLVED to NEW when the record is active again...
        (ARCHIVED, "RESOLVED", ACTIVE, "NEW"),
        (ARCHIVED, "NOTIFIED", ACTIVE, "NEW"),
        (ARCHIVED, "SUPPRESSED", ACTIVE, "SUPPRESSED"),
        # ...or when a passed control fails, warns or cannot be checked again.
        (compliance("PASSED"), "RESOLVED", compliance("FAILED"), "NEW"),
        (compliance("PASSED"), "NOTIFIED", compliance("WARNING"), "NEW"),
        (compliance("PASSED"), "RESOLVED", compliance("NOT_AVAILABLE"), "NEW"),
        (compliance("PASSED"), "SUPPRESSED", compliance("FAILED"), "SUPPRESSED"),
        # A control finding that passes is resolved, unless a person suppressed it.
        ({}, "NEW", compliance("PASSED"), "RESOLVED"),
        ({}, "NOTIFIED", compliance("PASSED"), "RESOLVED"),
        ({}, "SUPPRESSED", compliance("PASSED"), "SUPPRESSED"),
        # Nothing changed that Security Hub reacts to.
        ({}, "RESOLVED", {"Title": "still failing"}, "RESOLVED"),
        (ARCHIVED, "NEW", {"Title": "still archived"}, "NEW"),
    ],
)
def test_a_reimport_moves_the_workflow_as_security_hub_does(
    securityhub, start: dict[str, Any], workflow: str, change: dict[str, Any], expected: str
) -> None:
    first = make_finding(1, **start)
    securityhub.batch_import_findings(Findings=[first])
    securityhub.batch_update_findings(FindingIdentifiers=[ident(1)], Workflow={"Status": workflow})
    securityhub.batch_import_findings(Findings=[{**first, **change}])
    assert found(securityhub)["finding-1"]["Workflow"] == {"Status": expected}


def test_a_new_control_finding_that_passes_is_resolved(securityhub) -> None:
    securityhub.batch_import_findings(Findings=[make_finding(1, **compliance("PASSED"))])
    assert found(securityhub)["finding-1"]["Workflow"] == {"Status": "RESOLVED"}


def test_batch_update_leaves_workflow_state_within_its_own_values(securityhub) -> None:
    securityhub.batch_import_findings(Findings=[make_finding(1, WorkflowState="NEW")])
    for status in ("NOTIFIED", "SUPPRESSED", "RESOLVED"):
        securityhub.batch_update_findings(FindingIdentifiers=[ident(1)], Workflow={"Status": status})
        assert found(securityhub)["finding-1"]["WorkflowState"] == "NEW"
