"""Write-back rules: what each outcome becomes in Security Hub, and what is left alone."""

from __future__ import annotations

import dataclasses
import datetime
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from asr.local import ADMIN_ACCOUNT, MEMBER_ACCOUNT
from asr.local.seed import Seeded, finding, import_findings
from asr.pacing import HEADROOM, RateBudget
from asr.remediate import Outcome, Status
from asr.securityhub import (
    UPDATE_THREADS,
    actionable_filters,
    clip_note,
    closed_in,
    closed_since,
    iter_findings,
    queries_by_id,
    update_findings,
)
from asr.writeback import note_for, run_suffix, seen_state, write_back

PRODUCT = "arn:aws:securityhub:us-east-1::product/aws/securityhub"


def seeded(n: int) -> Seeded:
    arn = f"arn:aws:ec2:us-east-1:{MEMBER_ACCOUNT}:security-group/sg-{n:017x}"
    return Seeded("EC2.13", MEMBER_ACCOUNT, "us-east-1", "AwsEc2SecurityGroup", arn)


def outcome(raw: dict, status: Status, message: str = "done") -> Outcome:
    return Outcome(
        finding_id=raw["Id"],
        product_arn=raw["ProductArn"],
        control_id="EC2.13",
        playbook="EC2.13",
        account_id=MEMBER_ACCOUNT,
        region="us-east-1",
        resource_arn=raw["Resources"][0]["Id"],
        resource_id="sg",
        status=str(status),
        message=message,
    )


@pytest.fixture
def imported(aws):  # type: ignore[no-untyped-def]
    findings = [finding(seeded(n)) for n in range(6)]
    securityhub = aws.admin_client("securityhub", "us-east-1")
    import_findings(securityhub, findings)
    return securityhub, findings


def state(securityhub) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {f["Id"]: f for f in securityhub.get_findings()["Findings"]}


def state_of(securityhub, finding_ids: list[str]) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {f["Id"]: f for f in iter_findings(securityhub, queries_by_id(finding_ids))}


def test_each_outcome_gets_its_status_and_note(imported) -> None:  # type: ignore[no-untyped-def]
    securityhub, f = imported
    outcomes = [
        outcome(f[0], Status.REMEDIATED, "removed ingress"),
        outcome(f[1], Status.ALREADY_COMPLIANT, "already compliant"),
        outcome(f[2], Status.FAILED, "AccessDenied: no"),
        outcome(f[3], Status.REJECTED, "no playbook fixes control EC2.4"),
        outcome(f[4], Status.IGNORED, "automatic remediation is off"),
        outcome(f[5], Status.DRY_RUN, "would change"),
    ]
    result = write_back(securityhub, outcomes, "run-1")
    assert result.updated == 4
    now = state(securityhub)
    assert [now[x["Id"]]["Workflow"]["Status"] for x in f] == [
        "RESOLVED",
        "NOTIFIED",  # found compliant: Security Hub resolves it when its own check passes
        "NOTIFIED",
        "NOTIFIED",
        "NEW",
        "NEW",
    ]
    assert now[f[0]["Id"]]["Note"]["Text"] == "ASR EC2.13: removed ingress [run run-1]"
    assert now[f[1]["Id"]]["Note"]["Text"] == (
        "ASR EC2.13: already compliant; Security Hub resolves the finding at its next check "
        "(should it stay FAILED, the control checks more than the playbook does) [run run-1]"
    )
    assert now[f[2]["Id"]]["Note"]["Text"] == "ASR EC2.13: remediation failed: AccessDenied: no [run run-1]"
    assert now[f[3]["Id"]]["Note"]["Text"].startswith("ASR: not remediated: no playbook")
    assert "Note" not in now[f[4]["Id"]]


def test_a_fix_whose_effect_security_hub_cannot_see_yet_is_notified_not_resolved(imported) -> None:  # type: ignore[no-untyped-def]
    """Resolved, a finding whose check then still failed (an agent that never registers) would
    stay out of sight: Security Hub reopens a finding only when its compliance changes. Left
    NOTIFIED, Security Hub resolves it when its check passes; the run counts it fixed."""
    from dataclasses import replace

    from asr.writeback import written

    securityhub, f = imported
    waiting = replace(
        outcome(f[0], Status.REMEDIATED, "gave the role its policy; Systems Manager does not list it yet"),
        awaits_check=True,
    )
    result = write_back(securityhub, [waiting, outcome(f[1], Status.REMEDIATED)], "run-1")
    assert result.updated == 2
    now = state(securityhub)
    assert [now[x["Id"]]["Workflow"]["Status"] for x in f[:2]] == ["NOTIFIED", "RESOLVED"]
    assert now[f[0]["Id"]]["Note"]["Text"] == (
        "ASR EC2.13: gave the role its policy; Systems Manager does not list it yet [run run-1]"
    )
    assert (
        result.settled[f[0]["Id"]]
        == written(waiting, "run-1")
        != written(replace(waiting, awaits_check=False), "run-1")
    )


def test_a_finding_a_person_changed_meanwhile_is_left_alone(imported) -> None:  # type: ignore[no-untyped-def]
    securityhub, f = imported
    securityhub.batch_update_findings(
        FindingIdentifiers=[{"Id": f[0]["Id"], "ProductArn": PRODUCT}],
        Workflow={"Status": "SUPPRESSED"},
        Note={"Text": "accepted risk", "UpdatedBy": "alice"},
    )
    result = write_back(
        securityhub, [outcome(f[0], Status.REMEDIATED), outcome(f[1], Status.REMEDIATED)], "r"
    )
    assert result.updated == 1
    assert result.left_alone == [{"finding_id": f[0]["Id"], "now": "SUPPRESSED, ACTIVE"}]
    assert state(securityhub)[f[0]["Id"]]["Note"]["Text"] == "accepted risk"


def test_a_finding_this_run_resolved_is_resolved_again_with_a_rerun_s_note(imported) -> None:  # type: ignore[no-untyped-def]
    """A fix task cleared and run again finds what its first pass fixed compliant ("by an earlier
    try"): the note differs, and the finding, RESOLVED by this run, was counted left alone as if
    a person had closed it. The same run resolves it again; it never reopens one (a person may
    have resolved it meanwhile), nor touches another run's."""
    securityhub, f = imported
    write_back(securityhub, [outcome(f[0], Status.REMEDIATED), outcome(f[1], Status.REMEDIATED)], "run-1")
    again = [
        outcome(f[0], Status.REMEDIATED, "done (by an earlier try; verified now)"),
        outcome(f[1], Status.FAILED, "AccessDenied: no"),
    ]
    result = write_back(securityhub, again, "run-1")
    assert (result.updated, result.left_alone) == (1, [{"finding_id": f[1]["Id"], "now": "RESOLVED, ACTIVE"}])
    now = state(securityhub)
    assert now[f[0]["Id"]]["Note"]["Text"] == "ASR EC2.13: done (by an earlier try; verified now) [run run-1]"
    assert now[f[1]["Id"]]["Workflow"]["Status"] == "RESOLVED"
    other_run = write_back(securityhub, [outcome(f[0], Status.REMEDIATED, "fixed again")], "run-2")
    assert other_run.left_alone == [{"finding_id": f[0]["Id"], "now": "RESOLVED, ACTIVE"}]


def test_a_finding_security_hub_resolved_on_its_check_gets_the_run_s_note(imported) -> None:  # type: ignore[no-untyped-def]
    """The fix made the control pass and Security Hub resolved the finding before write-back: it
    still says what was done. Not one a person resolved (their note says why), nor one this run
    would have NOTIFIED: it is never reopened."""
    securityhub, f = imported
    securityhub.batch_update_findings(  # an earlier run's note: asr's
        FindingIdentifiers=[{"Id": f[0]["Id"], "ProductArn": PRODUCT}],
        Workflow={"Status": "NOTIFIED"},
        Note={"Text": "ASR EC2.13: remediation failed: Throttling [run run-0]", "UpdatedBy": "asr"},
    )
    securityhub.batch_update_findings(
        FindingIdentifiers=[{"Id": f[1]["Id"], "ProductArn": PRODUCT}],
        Workflow={"Status": "RESOLVED"},
        Note={"Text": "fixed by hand", "UpdatedBy": "alice"},
    )
    import_findings(securityhub, [passed(x, "RESOLVED") for x in f[:4]])
    outcomes = [outcome(x, Status.REMEDIATED, "removed ingress") for x in f[:3]]
    outcomes.append(outcome(f[3], Status.FAILED, "AccessDenied: no"))
    result = write_back(securityhub, outcomes, "run-1")
    assert result.updated == 2
    assert result.left_alone == [
        {"finding_id": f[1]["Id"], "now": "RESOLVED, ACTIVE"},
        {"finding_id": f[3]["Id"], "now": "RESOLVED, ACTIVE"},
    ]
    now = state(securityhub)
    assert [now[x["Id"]]["Workflow"]["Status"] for x in f[:4]] == ["RESOLVED"] * 4
    assert [now[x["Id"]]["Note"]["Text"] for x in f[:3]] == [
        "ASR EC2.13: removed ingress [run run-1]",
        "fixed by hand",
        "ASR EC2.13: removed ingress [run run-1]",
    ]
    assert "Note" not in now[f[3]["Id"]]


def test_a_finding_archived_meanwhile_is_left_alone(imported) -> None:  # type: ignore[no-untyped-def]
    """Security Hub archives a finding whose resource or control went away: still NEW, but not
    one to write a status on."""
    securityhub, f = imported
    import_findings(securityhub, [{**f[0], "RecordState": "ARCHIVED"}])
    result = write_back(securityhub, [outcome(f[0], Status.FAILED), outcome(f[1], Status.REMEDIATED)], "r")
    assert result.updated == 1
    assert result.left_alone == [{"finding_id": f[0]["Id"], "now": "NEW, ARCHIVED"}]
    assert state(securityhub)[f[0]["Id"]]["Workflow"]["Status"] == "NEW"


def test_a_finding_security_hub_no_longer_returns_is_said_to_be_not_found(imported, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Read by id, with no filter on its state, a finding Security Hub does not return is not
    there (deleted, or not visible from the administrator's region): not "no longer NEW or
    NOTIFIED", as if a person had closed it. The report's list of findings left alone says both."""
    from asr import report
    from asr.store import RunStore
    from asr.writeback import NOT_FOUND

    securityhub, f = imported
    gone = finding(seeded(99))  # never imported
    outcomes = [outcome(gone, Status.FAILED), outcome(f[0], Status.REMEDIATED)]
    result = write_back(securityhub, outcomes, "r1")
    assert result.updated == 1
    assert result.left_alone == [{"finding_id": gone["Id"], "now": NOT_FOUND}]

    store = RunStore(tmp_path)
    store.write_lines("outcomes/a.jsonl", [o.to_dict() for o in outcomes])
    store.write_json("writeback.json", result.to_dict())
    built = report.build(store, "r1")
    assert built["outcomes"][0]["security_hub"] == f"left alone: {NOT_FOUND}"
    assert f"## {report.LEFT_ALONE}\n\n- {gone['Id']}: {NOT_FOUND}\n" in report.markdown(built)
    assert "left alone, closed, changed or not found meanwhile: 1" in report.summary(built)


def test_a_second_pass_in_the_run_writes_only_what_changed_and_keeps_the_run_s_counts(  # type: ignore[no-untyped-def]
    imported, aws, tmp_path
) -> None:
    """Write-back again after the run's failed tasks were cleared: a finding the first pass
    settled is not written again (it is RESOLVED now: it would be "left alone"); a rerun
    fix's new outcome, or the same status with a new reason or a hold, is written; and the
    counts are the run's."""
    from asr import sweep
    from asr.config import Settings
    from asr.store import RunStore

    securityhub, f = imported
    store = RunStore(tmp_path)
    timed_out = outcome(f[3], Status.NOT_APPROVED, "no one approved it before the approval request timed out")
    store.write_lines("outcomes/a.jsonl", [outcome(f[0], Status.REMEDIATED).to_dict()])
    store.write_lines("outcomes/b.jsonl", [outcome(f[1], Status.FAILED, "RequestLimitExceeded").to_dict()])
    store.write_lines("outcomes/d.jsonl", [timed_out.to_dict()])
    first = sweep.write_back(Settings.from_env(), aws, store, "r1", sweep.load_outcomes(store))
    assert first == {"updated": 3, "unchanged": 0, "left_alone": 0, "failed": 0}

    store.write_lines("outcomes/b.jsonl", [outcome(f[1], Status.FAILED, "AccessDenied").to_dict()])  # rerun
    store.write_lines("outcomes/c.jsonl", [outcome(f[2], Status.REMEDIATED).to_dict()])  # ran at last
    # A person cleared the approval and rejected: NOT_APPROVED again, now held.
    rejected = dataclasses.replace(
        timed_out, message="rejected by secops", held_until="2099-01-01T00:00:00+00:00"
    )
    store.write_lines("outcomes/d.jsonl", [rejected.to_dict()])
    second = sweep.write_back(Settings.from_env(), aws, store, "r1", sweep.load_outcomes(store))
    assert second == {"updated": 4, "unchanged": 0, "left_alone": 0, "failed": 0}
    now = state(securityhub)
    statuses = [now[x["Id"]]["Workflow"]["Status"] for x in f[:4]]
    assert statuses == ["RESOLVED", "NOTIFIED", "RESOLVED", "NOTIFIED"]
    assert "AccessDenied" in now[f[1]["Id"]]["Note"]["Text"]
    assert now[f[3]["Id"]]["UserDefinedFields"]["asr:rejected-until"] == "2099-01-01T00:00:00+00:00"
    assert set(store.read_json(sweep.WRITTEN_BACK)["settled"]) == {x["Id"] for x in f[:4]}

    # Cleared again: the approval step dropped its NOT_APPROVED outcome, and the fix it then
    # released died. Security Hub still shows what the run wrote, so the run's counts keep it.
    store.path("outcomes/d.jsonl").unlink()
    third = sweep.write_back(Settings.from_env(), aws, store, "r1", sweep.load_outcomes(store))
    assert third == second
    assert set(store.read_json(sweep.WRITTEN_BACK)["settled"]) == {x["Id"] for x in f[:4]}


def test_an_update_security_hub_refuses_for_now_fails_the_step_and_is_written_by_its_retry(  # type: ignore[no-untyped-def]
    imported, aws, tmp_path, monkeypatch
) -> None:
    """ConcurrentUpdateError and InternalFailure are Security Hub's "not now": still refused
    after the retries, the finding is not given up (the report counts it unwritten) and the
    step fails, so Airflow tries it again; the next pass writes only that finding."""
    import asr.writeback
    from asr import report, sweep
    from asr.config import Settings
    from asr.store import RunStore

    securityhub, f = imported
    store = RunStore(tmp_path)
    store.write_lines("outcomes/a.jsonl", [outcome(x, Status.REMEDIATED).to_dict() for x in f[:2]])
    real = asr.writeback.update_findings

    def busy(client: Any, updates: list[Any], **kwargs: Any) -> Any:
        done, failed = real(client, [u for u in updates if u[0]["Id"] != f[1]["Id"]], **kwargs)
        refused = {"ErrorCode": "ConcurrentUpdateError", "ErrorMessage": "busy"}
        return done, failed + [
            {"FindingIdentifier": u[0]} | refused for u in updates if u[0]["Id"] == f[1]["Id"]
        ]

    monkeypatch.setattr(asr.writeback, "update_findings", busy)
    with pytest.raises(
        sweep.WriteBackIncomplete, match=r"refused 1 updates for now \(ConcurrentUpdateError\)"
    ):
        sweep.write_back(Settings.from_env(), aws, store, "r1", sweep.load_outcomes(store))
    assert report.build(store, "r1")["writeback_pending"] == 1
    assert state(securityhub)[f[1]["Id"]]["Workflow"]["Status"] == "NEW"

    monkeypatch.setattr(asr.writeback, "update_findings", real)
    counts = sweep.write_back(Settings.from_env(), aws, store, "r1", sweep.load_outcomes(store))
    assert counts == {"updated": 2, "unchanged": 0, "left_alone": 0, "failed": 0}
    assert report.build(store, "r1")["writeback_pending"] == 0


class BeatenByAPerson:
    """The stand-in's Security Hub client, whose first BatchUpdateFindings loses a race: a
    person suppresses the findings, and Security Hub refuses ours (ConcurrentUpdateError)."""

    def __init__(self, client: Any) -> None:
        self.client, self.calls = client, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def batch_update_findings(self, FindingIdentifiers: list[dict[str, str]], **update: Any) -> Any:
        self.calls += 1
        if self.calls > 1:
            return self.client.batch_update_findings(FindingIdentifiers=FindingIdentifiers, **update)
        suppress(self.client, FindingIdentifiers)
        return Unprocessable("ConcurrentUpdateError").batch_update_findings(FindingIdentifiers)


def test_an_update_refused_while_a_person_s_was_under_way_is_not_sent_again_blind(imported) -> None:  # type: ignore[no-untyped-def]
    """Sent again as it was, a second later, the update undid the person's SUPPRESSED. Refused
    for now instead, it fails the step, whose retry reads the finding again and leaves it alone."""
    securityhub, f = imported
    client = BeatenByAPerson(securityhub)
    result = write_back(client, [outcome(f[0], Status.REMEDIATED)], "r1")
    assert client.calls == 1
    assert [x["ErrorCode"] for x in result.refused_for_now] == ["ConcurrentUpdateError"]
    assert state(securityhub)[f[0]["Id"]]["Note"]["Text"] == "accepted risk"
    retried = write_back(securityhub, [outcome(f[0], Status.REMEDIATED)], "r1")
    assert retried.left_alone == [{"finding_id": f[0]["Id"], "now": "SUPPRESSED, ACTIVE"}]


class DiesOnUpdate:
    """The stand-in's Security Hub client, whose worker is killed on its ``nth`` BatchUpdateFindings."""

    def __init__(self, client: Any, nth: int) -> None:
        self.client, self.nth, self.calls = client, nth, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def batch_update_findings(self, **request: Any) -> Any:
        self.calls += 1
        if self.calls == self.nth:
            raise RuntimeError("the worker was killed")
        return self.client.batch_update_findings(**request)


def test_a_retried_write_back_counts_what_its_dead_try_wrote_as_updated(imported, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The first try wrote one finding, then died on the next call (before saving its
    counts): the retry called that finding changed by someone else and left it out."""
    import asr.securityhub

    securityhub, f = imported
    monkeypatch.setattr(asr.securityhub, "UPDATE_THREADS", 1)
    outcomes = [outcome(f[0], Status.REMEDIATED, "fixed A"), outcome(f[1], Status.REMEDIATED, "fixed B")]
    with pytest.raises(RuntimeError):
        write_back(DiesOnUpdate(securityhub, 2), outcomes, "r1")
    retried = write_back(securityhub, outcomes, "r1")
    assert (retried.updated, retried.left_alone, retried.unchanged) == (2, [], [])
    assert [state(securityhub)[x["Id"]]["Workflow"]["Status"] for x in f[:2]] == ["RESOLVED", "RESOLVED"]


def test_a_hold_that_does_not_fit_is_said_in_the_note_and_no_field_is_dropped(imported) -> None:  # type: ignore[no-untyped-def]
    """A finding may have 50 user-defined fields: the hold's mark would have been the 51st."""
    securityhub, f = imported
    fields = {f"team:{n}": "x" for n in range(50)}
    securityhub.batch_update_findings(
        FindingIdentifiers=[{"Id": f[0]["Id"], "ProductArn": PRODUCT}], UserDefinedFields=fields
    )
    rejected = dataclasses.replace(
        outcome(f[0], Status.NOT_APPROVED, "rejected by secops"), held_until="2099-01-01T00:00:00+00:00"
    )
    assert write_back(securityhub, [rejected], "r1").updated == 1
    now = state(securityhub)[f[0]["Id"]]
    assert now["UserDefinedFields"] == fields
    assert now["Workflow"]["Status"] == "NOTIFIED" and "not marked: the finding has 50" in now["Note"]["Text"]
    # A retry of a write-back that died before saving its counts: this run's own write.
    retried = write_back(securityhub, [rejected], "r1")
    assert (retried.updated, retried.unchanged) == (1, [])


def test_only_a_fix_clears_the_rollback_mark(imported) -> None:  # type: ignore[no-untyped-def]
    """A rolled-back finding a person picked, fixed again: sweeps may take it again. Failed,
    excluded or refused: it stays theirs alone."""
    securityhub, f = imported
    mark = {"asr:reverted": "asr_rollback/r1", "ticket": "SEC-1"}
    securityhub.batch_update_findings(
        FindingIdentifiers=[{"Id": r["Id"], "ProductArn": r["ProductArn"]} for r in f[:3]],
        UserDefinedFields=mark,
    )
    outcomes = [
        outcome(f[0], Status.REMEDIATED),
        outcome(f[1], Status.FAILED, "AccessDenied"),
        outcome(f[2], Status.EXCLUDED, "excluded"),
    ]
    write_back(securityhub, outcomes, "r2")
    now = state(securityhub)
    assert now[f[0]["Id"]]["UserDefinedFields"] == {**mark, "asr:reverted": "no"}
    assert now[f[1]["Id"]]["UserDefinedFields"] == now[f[2]["Id"]]["UserDefinedFields"] == mark


def test_a_rejected_fix_holds_its_findings_and_a_fix_clears_every_mark(imported) -> None:  # type: ignore[no-untyped-def]
    """A rejection marks the finding held until a time, beside another tool's fields; written
    again it is unchanged; a later fix (a person picked it) clears the hold and a rollback's mark."""
    securityhub, f = imported
    ticket = {"ticket": "SEC-1"}
    securityhub.batch_update_findings(
        FindingIdentifiers=[{"Id": f[0]["Id"], "ProductArn": f[0]["ProductArn"]}], UserDefinedFields=ticket
    )
    until = "2026-12-11T09:30:00+00:00"
    rejected = [
        dataclasses.replace(outcome(raw, Status.NOT_APPROVED, "rejected by secops"), held_until=until)
        for raw in f[:2]
    ]
    timed_out = outcome(f[2], Status.NOT_APPROVED, "no one approved it")
    assert write_back(securityhub, [*rejected, timed_out], "r1").updated == 3
    now = state(securityhub)
    assert now[f[0]["Id"]]["UserDefinedFields"] == {**ticket, "asr:rejected-until": until}
    assert now[f[1]["Id"]]["UserDefinedFields"] == {"asr:rejected-until": until}
    assert not now[f[2]["Id"]].get("UserDefinedFields"), "a request nobody answered holds nothing"
    assert write_back(securityhub, rejected, "r2").unchanged == [f[0]["Id"], f[1]["Id"]]

    securityhub.batch_update_findings(
        FindingIdentifiers=[{"Id": f[1]["Id"], "ProductArn": f[1]["ProductArn"]}],
        UserDefinedFields={"asr:rejected-until": until, "asr:reverted": "asr_rollback/r0"},
    )
    write_back(securityhub, [outcome(raw, Status.REMEDIATED) for raw in f[:2]], "r3")
    now = state(securityhub)
    assert now[f[0]["Id"]]["UserDefinedFields"] == {**ticket, "asr:rejected-until": "no"}
    assert now[f[1]["Id"]]["UserDefinedFields"] == {"asr:rejected-until": "no", "asr:reverted": "no"}
    assert all(now[raw["Id"]]["Workflow"]["Status"] == "RESOLVED" for raw in f[:2])


def test_ingest_keeps_the_fields_of_a_held_finding_for_write_back() -> None:
    held = {"Id": "x", "UserDefinedFields": {"asr:rejected-until": "2026-12-11T09:30:00+00:00", "a": "b"}}
    assert seen_state(held)["UserDefinedFields"] == held["UserDefinedFields"]
    assert "UserDefinedFields" not in seen_state({"Id": "y", "UserDefinedFields": {"a": "b"}})


def test_the_same_status_and_note_are_not_written_again(imported) -> None:  # type: ignore[no-untyped-def]
    securityhub, f = imported
    failed = outcome(f[2], Status.FAILED, "AccessDenied: no")
    assert write_back(securityhub, [failed], "run-1").updated == 1
    again = write_back(securityhub, [failed], "run-2")
    assert (again.updated, again.unchanged) == (0, [f[2]["Id"]])
    other = write_back(securityhub, [outcome(f[2], Status.FAILED, "Throttling: slow down")], "run-3")
    assert other.updated == 1


def test_large_runs_recheck_with_the_run_query(imported, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Up to RECHECK_BY_ID_LIMIT findings are read by id; above it, with nothing ingest read
    to go by, the run's own query is paged (one call here). Only the filters sent tell the
    two paths apart: both update every finding."""
    from asr import writeback

    securityhub, f = imported
    query = [{"AwsAccountId": [{"Value": MEMBER_ACCOUNT, "Comparison": "EQUALS"}]}]
    calls = get_findings_calls(securityhub)
    result = write_back(securityhub, [outcome(x, Status.FAILED, "no") for x in f], "r1", query)
    assert calls == queries_by_id([x["Id"] for x in f])
    assert result.updated == 6

    calls.clear()
    monkeypatch.setattr(writeback, "RECHECK_BY_ID_LIMIT", 1)
    result = write_back(securityhub, [outcome(x, Status.REMEDIATED) for x in f], "r2", query)
    assert calls == query
    assert result.updated == 6


def suppress(securityhub, raws: list[dict]) -> None:  # type: ignore[no-untyped-def]
    for start in range(0, len(raws), 100):
        securityhub.batch_update_findings(
            FindingIdentifiers=[{"Id": r["Id"], "ProductArn": PRODUCT} for r in raws[start : start + 100]],
            Workflow={"Status": "SUPPRESSED"},
            Note={"Text": "accepted risk", "UpdatedBy": "alice"},
        )


def get_findings_calls(securityhub) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The filters of each GetFindings call the client sends from now on, in order."""
    calls: list[dict[str, Any]] = []
    securityhub.meta.events.register(
        "provide-client-params.securityhub.GetFindings", lambda params, **_: calls.append(params["Filters"])
    )
    return calls


@pytest.fixture
def large_run(aws):  # type: ignore[no-untyped-def]
    """901 open findings (a check budget of 2 pages: 10 // 4), 99 closed ones beside them,
    what ingest saw and when it began."""
    securityhub = aws.admin_client("securityhub", "us-east-1")
    raws = [finding(seeded(n)) for n in range(1000)]
    import_findings(securityhub, raws)
    suppress(securityhub, raws[901:])  # closed before the run: in scope, never the run's
    query = actionable_filters([MEMBER_ACCOUNT])
    since = datetime.datetime.now(datetime.UTC).isoformat()
    seen = {f["Id"]: seen_state(f) for f in iter_findings(securityhub, query)}
    assert len(seen) == 901
    return securityhub, raws[:901], query, seen, since


def passed(raw: dict, workflow: str) -> dict:
    """The finding as Security Hub re-imports it when its control passes (it moves UpdatedAt)."""
    now = datetime.datetime.now(datetime.UTC).isoformat()
    compliance = {**raw["Compliance"], "Status": "PASSED"}
    return {**raw, "Compliance": compliance, "Workflow": {"Status": workflow}, "UpdatedAt": now}


def test_a_large_run_rereads_only_the_findings_closed_meanwhile(large_run) -> None:  # type: ignore[no-untyped-def]
    securityhub, raws, query, seen, since = large_run
    suppress(securityhub, raws[:1])  # a person closes one
    import_findings(securityhub, [passed(raws[2], "RESOLVED")])  # Security Hub, on a pass
    suppress(securityhub, raws[3:4])  # a person closes one, then its control passes
    import_findings(securityhub, [passed(raws[3], "SUPPRESSED")])
    securityhub.batch_update_findings(  # a person resolves one, and says how, then its control passes
        FindingIdentifiers=[{"Id": raws[4]["Id"], "ProductArn": PRODUCT}],
        Workflow={"Status": "RESOLVED"},
        Note={"Text": "fixed by hand, change CHG-42", "UpdatedBy": "alice"},
    )
    import_findings(securityhub, [passed(raws[4], "RESOLVED")])
    # An earlier try of this write-back resolved one before it died, then its control passed.
    write_back(securityhub, [outcome(raws[5], Status.REMEDIATED)], "run-1")
    import_findings(securityhub, [passed(raws[5], "RESOLVED")])
    calls = get_findings_calls(securityhub)
    outcomes = [outcome(r, Status.FAILED, "AccessDenied: no") for r in raws[1:3]]
    outcomes += [outcome(r, Status.REMEDIATED) for r in [raws[0], *raws[3:]]]
    result = write_back(securityhub, outcomes, "run-1", query, seen, since)
    # 100 closed in scope and still failing (1 page), 4 closed and passing since ingest
    # (1 page), and the two headed for NOTIFIED by id
    assert len(calls) == 3
    assert calls[0] == closed_in(query[0])
    assert {k: v for k, v in calls[1].items() if k != "UpdatedAt"} == {
        k: v for k, v in closed_since(query[0], since).items() if k != "UpdatedAt"
    }
    assert calls[1]["UpdatedAt"][0]["Start"] == since
    assert calls[2:] == queries_by_id([r["Id"] for r in raws[1:3]])
    assert result.left_alone == [
        {"finding_id": raws[2]["Id"], "now": "RESOLVED, ACTIVE"},
        {"finding_id": raws[0]["Id"], "now": "SUPPRESSED, ACTIVE"},
        {"finding_id": raws[3]["Id"], "now": "SUPPRESSED, ACTIVE"},
        {"finding_id": raws[4]["Id"], "now": "RESOLVED, ACTIVE"},
    ]
    assert result.updated == 897  # raws[5] among them: the run's own
    now = state_of(securityhub, [r["Id"] for r in raws[:6]])
    assert [now[r["Id"]]["Workflow"]["Status"] for r in raws[:6]] == [
        "SUPPRESSED",
        "NOTIFIED",
        "RESOLVED",
        "SUPPRESSED",
        "RESOLVED",
        "RESOLVED",
    ]
    assert now[raws[4]["Id"]]["Note"]["Text"] == "fixed by hand, change CHG-42"
    # The next run sees raws[1] NOTIFIED with the same note: nothing to write.
    seen = {f["Id"]: seen_state(f) for f in iter_findings(securityhub, query)}
    again = write_back(
        securityhub, [outcome(raws[1], Status.FAILED, "AccessDenied: no")], "run-2", query, seen, since
    )
    assert (again.updated, again.unchanged) == (0, [raws[1]["Id"]])


def test_a_large_run_pages_its_query_again_when_closed_findings_abound(large_run) -> None:  # type: ignore[no-untyped-def]
    securityhub, raws, query, seen, since = large_run
    suppress(securityhub, raws[:150])  # 249 closed in scope: more than the 2 pages allowed
    calls = get_findings_calls(securityhub)
    result = write_back(securityhub, [outcome(r, Status.REMEDIATED) for r in raws], "r", query, seen, since)
    # The two pages the budget allows, the run's 751 open findings, and the 150 closed by id.
    assert len(calls) == 2 + 8 + 8
    assert calls[10:] == queries_by_id(sorted(r["Id"] for r in raws[:150]))
    assert {x["finding_id"] for x in result.left_alone} == {r["Id"] for r in raws[:150]}
    assert {x["now"] for x in result.left_alone} == {"SUPPRESSED, ACTIVE"}
    assert result.updated == 751


def test_a_retried_large_write_back_counts_what_its_dead_try_wrote_as_updated(  # type: ignore[no-untyped-def]
    large_run, monkeypatch
) -> None:
    """The dead try resolved 300 findings: too many closed in scope for the cheap re-read, and
    the run's query, paged again, matches only open ones. The retry called them "no longer NEW
    or NOTIFIED" and left them out; it reads them by id, and finds its own writing."""
    import asr.securityhub

    securityhub, raws, query, seen, since = large_run
    monkeypatch.setattr(asr.securityhub, "UPDATE_THREADS", 1)
    outcomes = [outcome(r, Status.REMEDIATED) for r in raws]
    with pytest.raises(RuntimeError):
        write_back(DiesOnUpdate(securityhub, 4), outcomes, "r1", query, seen, since)
    now = state_of(securityhub, [r["Id"] for r in raws])
    resolved = sorted(i for i, f in now.items() if f["Workflow"]["Status"] == "RESOLVED")
    assert len(resolved) >= 300  # and the calls begun before the stop
    calls = get_findings_calls(securityhub)
    retried = write_back(securityhub, outcomes, "r1", query, seen, since)
    assert (retried.updated, retried.left_alone, retried.unchanged) == (901, [], [])
    assert [c for c in calls if "Id" in c] == queries_by_id(resolved)  # only those, by id


def test_a_large_run_s_rerun_fix_resolves_again_what_its_first_pass_resolved(large_run) -> None:  # type: ignore[no-untyped-def]
    """A fix task cleared and run again: its findings, RESOLVED by the first pass, are not in
    the run's query, and were all left alone as if a person had closed them."""
    securityhub, raws, query, seen, since = large_run
    first = write_back(securityhub, [outcome(r, Status.REMEDIATED) for r in raws], "r1", query, seen, since)
    assert first.updated == 901
    rerun = [outcome(r, Status.REMEDIATED, "done (by an earlier try; verified now)") for r in raws[:250]]
    second = write_back(securityhub, rerun, "r1", query, seen, since)
    assert (second.updated, second.left_alone) == (250, [])
    note = state_of(securityhub, [raws[0]["Id"]])[raws[0]["Id"]]["Note"]["Text"]
    assert note == "ASR EC2.13: done (by an earlier try; verified now) [run r1]"


def test_a_large_run_whose_check_costs_more_than_its_budget_pages_its_queries_once(large_run) -> None:  # type: ignore[no-untyped-def]
    """Two run queries: the check sends four (the closed ones in each, and those closed since
    ingest), more than its budget of two pages allows. It spent the two, gave up, and paged
    the run's queries all the same."""
    securityhub, raws, query, seen, since = large_run
    queries = query + actionable_filters([ADMIN_ACCOUNT])  # another slice of the run's scope, empty
    calls = get_findings_calls(securityhub)
    result = write_back(securityhub, [outcome(r, Status.REMEDIATED) for r in raws], "r", queries, seen, since)
    assert len(calls) == 10 + 1
    assert {c["WorkflowStatus"] == query[0]["WorkflowStatus"] for c in calls} == {True}
    assert result.updated == 901


def test_a_large_run_picked_by_id_pages_its_queries_once(large_run) -> None:  # type: ignore[no-untyped-def]
    securityhub, raws, _, seen, since = large_run
    by_id = queries_by_id([r["Id"] for r in raws])  # 46 queries: more than the budget of 11
    calls = get_findings_calls(securityhub)
    result = write_back(securityhub, [outcome(r, Status.REMEDIATED) for r in raws], "r", by_id, seen, since)
    assert len(calls) == 46
    assert result.updated == 901


def test_notes_stay_within_the_limit_and_keep_the_run() -> None:
    raw = finding(seeded(1))
    note = note_for(outcome(raw, Status.FAILED, "x" * 2000), "manual__2026-11-28T05:00:00+00:00")
    assert len(note) <= 512
    assert note.endswith("[run manual__2026-11-28T05:00:00+00:00]")
    # A long reason is cut at a word and says so: "…'CidrIp': '0.0.0.0/0'}, {'Ip [run …]" read
    # as the whole reason.
    words = " ".join(f"rule{n}" for n in range(200))
    note = note_for(outcome(raw, Status.FAILED, words), "r1")
    assert len(note) <= 512 and note.endswith("… [run r1]")
    cut = note.removesuffix("… [run r1]")
    assert cut.startswith("ASR EC2.") and words.startswith(cut.split("remediation failed: ", 1)[1] + " ")
    short = note_for(outcome(raw, Status.FAILED, "AccessDenied: no"), "r1")
    assert short.endswith("remediation failed: AccessDenied: no [run r1]")


def test_a_long_note_another_run_cut_for_its_own_id_is_not_written_again(imported) -> None:  # type: ignore[no-untyped-def]
    """A long reason is cut to fit beside the run's id, so shorter for a longer id: another run's
    note of the same failure, cut for its id, is no change to write again (an Imported event)."""
    securityhub, f = imported
    failed = outcome(f[0], Status.FAILED, "AccessDenied: " + " ".join(f"rule{n}" for n in range(200)))
    runs = ["r1", "scheduled__2026-12-04T21:00:00+00:00", "x" * 250]  # Airflow's run ids: 250 at most
    notes = {run_id: note_for(failed, run_id) for run_id in runs}
    assert max(map(len, notes.values())) <= 512
    assert len({note.removesuffix(run_suffix(run_id)) for run_id, note in notes.items()}) == 3
    assert write_back(securityhub, [failed], runs[0]).updated == 1
    assert write_back(securityhub, [failed], runs[1]).unchanged == [f[0]["Id"]]
    assert write_back(securityhub, [failed], runs[2]).unchanged == [f[0]["Id"]]
    other = outcome(f[0], Status.FAILED, "AccessDenied: " + " ".join(f"rule{n}" for n in range(1, 200)))
    assert write_back(securityhub, [other], runs[1]).updated == 1, "another message is a change"


def resolve(raws: list[dict]) -> list[tuple[dict[str, str], str, str]]:
    return [({"Id": r["Id"], "ProductArn": r["ProductArn"]}, "RESOLVED", "fixed") for r in raws]


class InFlight:
    """The stand-in's Security Hub client, counting its BatchUpdateFindings calls in flight."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls = 0
        self.now = 0
        self.most = 0
        self.lock = threading.Lock()

    def batch_update_findings(self, **request: Any) -> Any:
        with self.lock:
            self.calls += 1
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(0.05)  # a round trip to AWS takes longer than one to the stand-in
            return self.client.batch_update_findings(**request)
        finally:
            with self.lock:
                self.now -= 1


def test_updates_go_out_several_calls_at_a_time(aws) -> None:  # type: ignore[no-untyped-def]
    securityhub = aws.admin_client("securityhub", "us-east-1")
    raws = [finding(seeded(n)) for n in range(450)]
    import_findings(securityhub, raws)
    spy = InFlight(securityhub)
    assert update_findings(spy, resolve(raws)) == (450, [])
    assert spy.calls == 5
    assert 2 <= spy.most <= UPDATE_THREADS
    now = state_of(securityhub, [r["Id"] for r in raws])
    assert {f["Workflow"]["Status"] for f in now.values()} == {"RESOLVED"} and len(now) == 450


def test_updates_at_once_stay_within_the_rate_budget(aws) -> None:  # type: ignore[no-untyped-def]
    aws.budget = RateBudget({"securityhub:BatchUpdateFindings": (2, 5)})  # a bucket of 2, 5 a second
    securityhub = aws.admin_client("securityhub", "us-east-1")
    raws = [finding(seeded(n)) for n in range(450)]
    import_findings(securityhub, raws)
    started = time.monotonic()
    assert update_findings(securityhub, resolve(raws)) == (450, [])
    # 5 calls: 2 from the bucket, then 3 at the refill rate, however many threads ask.
    assert time.monotonic() - started >= 3 / (5 * HEADROOM) - 0.05


def test_findings_security_hub_cannot_find_come_back_in_order(aws) -> None:  # type: ignore[no-untyped-def]
    securityhub = aws.admin_client("securityhub", "us-east-1")
    raws = [finding(seeded(n)) for n in range(250)]  # never imported: 3 calls, each all not found
    done, failed = update_findings(securityhub, resolve(raws))
    assert done == 0
    assert [u["FindingIdentifier"]["Id"] for u in failed] == [r["Id"] for r in raws]
    assert {u["ErrorCode"] for u in failed} == {"FindingNotFound"}


class Unprocessable:
    """Security Hub answering that no finding of a call can take the update, with ``code``."""

    def __init__(self, code: str) -> None:
        self.code, self.calls = code, 0

    def batch_update_findings(self, FindingIdentifiers: list[dict[str, str]], **_: Any) -> Any:
        self.calls += 1
        unprocessed = [
            {"FindingIdentifier": i, "ErrorCode": self.code, "ErrorMessage": "no"} for i in FindingIdentifiers
        ]
        return {"ProcessedFindings": [], "UnprocessedFindings": unprocessed}


@pytest.mark.parametrize(
    ("code", "calls"),
    [("FindingSizeExceeded", 1), ("InvalidInput", 1), ("ConcurrentUpdateError", 1), ("InternalFailure", 3)],
)
def test_only_updates_a_retry_can_mend_are_retried(code: str, calls: int) -> None:
    raws = [finding(seeded(n)) for n in range(3)]
    client = Unprocessable(code)
    done, failed = update_findings(client, resolve(raws), attempts=3, pause=0)
    assert (done, client.calls) == (0, calls)
    assert {u["ErrorCode"] for u in failed} == {code} and len(failed) == 3


class RefusingAfterFirst(InFlight):
    """The first call is slow and goes through; every later one is refused at once."""

    def batch_update_findings(self, **request: Any) -> Any:
        with self.lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            time.sleep(0.3)
            return self.client.batch_update_findings(**request)
        refused = {"Error": {"Code": "AccessDeniedException", "Message": "no"}}
        raise ClientError(refused, "BatchUpdateFindings")


def test_a_refused_call_stops_the_calls_not_yet_begun(aws) -> None:  # type: ignore[no-untyped-def]
    spy = RefusingAfterFirst(aws.admin_client("securityhub", "us-east-1"))
    raws = [finding(seeded(n)) for n in range(2000)]  # 20 calls
    with pytest.raises(ClientError, match="AccessDenied"):
        update_findings(spy, resolve(raws))
    # The threads that were free took at most one more call each before the stop.
    assert spy.calls <= 2 * UPDATE_THREADS


@pytest.mark.parametrize("junk", [5, "NEW", ["NEW"], None])
def test_what_ingest_saw_of_a_malformed_finding_reads_as_missing(junk: object) -> None:
    """Routing rejects such a finding with the reason; noting what ingest saw must not stop
    the run first."""
    assert seen_state({"Id": "f", "Workflow": junk, "Note": junk, "RecordState": "ACTIVE"}) == {
        "Workflow": {"Status": None},
        "RecordState": "ACTIVE",
        "Note": {"Text": ""},
    }


@pytest.mark.parametrize("text", ["x" * 600, "🔥" * 600, "é🔥" * 300, "🔥" * 255 + "xy"])
def test_a_long_note_fits_security_hub_s_limit_as_aws_counts_it(text: str) -> None:
    """AWS counts 512 in UTF-16 code units: an emoji (a bucket's tag, an error quoting a
    name) counts two, so a note cut at 512 characters would be refused whole."""
    suffix = " [run r]"
    note = clip_note(text, suffix)
    units = len(note.encode("utf-16-le")) // 2
    assert 510 <= units <= 512, "cut to fit, and no shorter than it must be"
    assert note.endswith("…" + suffix) and text.startswith(note.removesuffix("…" + suffix))
