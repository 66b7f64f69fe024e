"""A global playbook's batch fixes buckets of several Regions with one Region's clients: the
rollback judges each bucket by its own Region (ASR_REGIONS, the exclusion tag, the report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from asr.audit import FIX, INTENT, REVERT, AuditJournal, Origin, journal_root
from asr.aws import Clients
from asr.config import Settings
from asr.findings import RoutingRecord, parse_finding
from asr.guard import Scope
from asr.local import MEMBER_ACCOUNT, served_requests
from asr.local.seed import finding, seed_one
from asr.playbooks import registry
from asr.remediate import run_batch
from asr.rollback import Reversal, Rollback, RollbackStatus

RUN_ID = "manual__2026-01-01T00:00:00+00:00"
BATCH, ELSEWHERE = "us-east-1", "eu-west-1"
TAG = ("asr:exclude", None)


def _fixed_in_one_batch(aws: Any, tmp_path: Path) -> tuple[AuditJournal, dict[str, RoutingRecord]]:
    """A us-east-1 bucket and an eu-west-1 one, fixed (S3.5) in one batch, which takes the
    clients of its first finding's Region (us-east-1); the journal as a rollback opens it."""
    records = [
        parse_finding(finding(seed_one(aws, "S3.5", MEMBER_ACCOUNT, region, n)), registry())
        for n, region in enumerate((BATCH, ELSEWHERE))
    ]
    root = journal_root(str(tmp_path), "asr_sweep", RUN_ID)
    outcomes = run_batch(
        records, registry(), aws, journal=AuditJournal(root, Origin("asr_sweep", RUN_ID, "b", 1, "s"))
    )
    assert [o.status for o in outcomes] == ["REMEDIATED", "REMEDIATED"]
    journal = AuditJournal(root, Origin("asr_rollback", "rb-1", "rollback", 1, "bob"))
    return journal, {r.region: r for r in records}


def _as_written_before_resource_region(journal: AuditJournal) -> None:
    """Rewrite the journal as asr wrote it before intents recorded the resource's Region."""
    for path in journal.root.glob("*.jsonl"):
        events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for event in events:
            event.pop("resource_region", None)
        path.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in events))


def _tag_excluded(aws: Any, record: RoutingRecord) -> None:
    Clients(aws, MEMBER_ACCOUNT, record.region).s3.put_bucket_tagging(
        Bucket=record.resource_id, Tagging={"TagSet": [{"Key": "asr:exclude", "Value": "yes"}]}
    )


def _denies_insecure_transport(aws: Any, record: RoutingRecord) -> bool:
    action = registry().for_control("S3.5").build_action()
    return action.read(Clients(aws, MEMBER_ACCOUNT, record.region), record.resource_id)[
        "DeniesInsecureTransport"
    ]


def _by_bucket(reversals: list[Reversal]) -> dict[str, Reversal]:
    return {r.resource_id: r for r in reversals}


def _reverted(journal: AuditJournal) -> list[str]:
    return [c.intent["resource_id"] for c in journal.changes(REVERT)]


def test_the_journal_records_where_the_bucket_is_beside_the_batch_s_region(aws, tmp_path: Path) -> None:
    journal, records = _fixed_in_one_batch(aws, tmp_path)
    intents = {e["resource_id"]: e for e in journal.events() if e["event"] == INTENT and e["kind"] == FIX}
    assert {(i["region"], i["resource_region"]) for i in intents.values()} == {
        (BATCH, BATCH),
        (BATCH, ELSEWHERE),
    }
    assert intents[records[ELSEWHERE].resource_id]["resource_region"] == ELSEWHERE


@pytest.mark.parametrize("older_journal", [False, True], ids=["journal", "journal-before-resource-region"])
def test_a_bucket_tagged_never_touch_in_its_own_region_since_a_fix_in_another_region_s_batch_is_not_put_back(
    aws, tmp_path: Path, older_journal: bool
) -> None:
    """Its tags are read in its own Region (the tagging API answers for no other), as the fix
    read them; an older journal's bucket is first asked where it is (GetBucketLocation)."""
    journal, records = _fixed_in_one_batch(aws, tmp_path)
    if older_journal:
        _as_written_before_resource_region(journal)
    eu, us = records[ELSEWHERE], records[BATCH]
    _tag_excluded(aws, eu)
    reversals = _by_bucket(Rollback(journal, aws, exclude_tag=TAG).run())
    excluded = reversals[eu.resource_id]
    assert excluded.status == RollbackStatus.OUT_OF_SCOPE
    assert excluded.reason == "not put back: the resource is tagged asr:exclude (ASR_EXCLUDE_TAG)"
    assert excluded.region == ELSEWHERE  # as the report shows it: where the bucket is
    assert _denies_insecure_transport(aws, eu)
    assert reversals[us.resource_id].status == RollbackStatus.REVERTED
    assert reversals[us.resource_id].region == BATCH
    assert not _denies_insecure_transport(aws, us)
    assert _reverted(journal) == [us.resource_id]


@pytest.mark.parametrize("older_journal", [False, True], ids=["journal", "journal-before-resource-region"])
def test_asr_regions_is_judged_by_the_bucket_s_region_not_the_batch_s(
    aws, tmp_path: Path, older_journal: bool
) -> None:
    journal, records = _fixed_in_one_batch(aws, tmp_path)
    if older_journal:
        _as_written_before_resource_region(journal)
    eu, us = records[ELSEWHERE], records[BATCH]
    only_batch = Scope.resolve(Settings(regions=(BATCH,)))
    reversals = _by_bucket(Rollback(journal, aws, dry=True, scope=only_batch).run())
    assert reversals[eu.resource_id].status == RollbackStatus.OUT_OF_SCOPE
    assert reversals[eu.resource_id].reason == (
        f"not put back: region {ELSEWHERE} is not one asr may act in (ASR_REGIONS)"
    )
    assert reversals[us.resource_id].status == RollbackStatus.WOULD_REVERT
    # Only the bucket's Region allowed: it is put back (through the batch's clients, as fixed).
    only_elsewhere = Scope.resolve(Settings(regions=(ELSEWHERE,)))
    reversals = _by_bucket(Rollback(journal, aws, scope=only_elsewhere).run())
    assert reversals[eu.resource_id].status == RollbackStatus.REVERTED
    assert reversals[us.resource_id].status == RollbackStatus.OUT_OF_SCOPE
    assert not _denies_insecure_transport(aws, eu) and _denies_insecure_transport(aws, us)
    [revert] = [c for c in journal.changes(REVERT)]
    assert (revert.intent["region"], revert.intent["resource_region"]) == (BATCH, ELSEWHERE)


def test_an_older_journal_s_bucket_deleted_since_has_nothing_to_put_back(aws, tmp_path: Path) -> None:
    """Asked where it is, a bucket deleted since answers NoSuchBucket: as its read would."""
    journal, records = _fixed_in_one_batch(aws, tmp_path)
    _as_written_before_resource_region(journal)
    eu = records[ELSEWHERE]
    s3 = Clients(aws, MEMBER_ACCOUNT, ELSEWHERE).s3
    s3.delete_bucket_policy(Bucket=eu.resource_id)
    s3.delete_bucket(Bucket=eu.resource_id)
    served_requests(clear=True)
    reversals = _by_bucket(Rollback(journal, aws, exclude_tag=TAG).run())
    assert "GetBucketLocation" in {c["action"] for c in served_requests()}
    assert reversals[eu.resource_id].status == RollbackStatus.CHANGED_SINCE
    assert "NoSuchBucket" in reversals[eu.resource_id].reason
    assert reversals[records[BATCH].resource_id].status == RollbackStatus.REVERTED
