"""The steps of a sweep, each a plain function the DAG's tasks call.

ingest -> plan -> remediate (per batch) -> write back -> report. Each step reads what
the one before wrote to the run's store and returns only references and counts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from asr.aws import AwsContext
from asr.config import Settings
from asr.findings import FindingError, RoutingRecord, parse_finding
from asr.playbooks import PlaybookRegistry
from asr.remediate import Outcome, Status, run_batch
from asr.securityhub import actionable_filters, iter_findings, update_findings
from asr.store import RunStore

RECORDS = "records.jsonl"
REJECTED = "rejected.jsonl"


def chunks(rows: list[Any], size: int) -> list[list[Any]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


WORKFLOW_FOR = {
    Status.REMEDIATED: "RESOLVED",
    Status.ALREADY_COMPLIANT: "RESOLVED",
    Status.FAILED: "NOTIFIED",
}


def ingest(
    settings: Settings,
    aws: AwsContext,
    playbooks: PlaybookRegistry,
    store: RunStore,
    control_ids: list[str] | None = None,
) -> dict[str, int]:
    """Page through the administrator's actionable findings and route each one."""
    client = aws.admin_client("securityhub", settings.securityhub_region)
    filters = actionable_filters(settings.accounts, settings.regions, control_ids or ())
    records: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for finding in iter_findings(client, filters):
        try:
            records.append(parse_finding(finding, playbooks).to_dict())
        except FindingError as exc:
            rejected.append({"finding_id": exc.finding_id, "error": exc.reason})
    store.write_lines(RECORDS, records)
    store.write_lines(REJECTED, rejected)
    return {"findings": len(records) + len(rejected), "routed": len(records), "rejected": len(rejected)}


def plan(store: RunStore, playbooks: PlaybookRegistry, settings: Settings) -> list[dict[str, Any]]:
    """Group routed findings into batches per (playbook, account, region).

    Map counts then grow with batches, not findings. Should one playbook still have
    more batches than Airflow maps, its batches are widened (a batch may then span
    several account-regions; the runner keeps one client per account-region).
    """
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in store.read_lines(RECORDS):
        playbook = playbooks.playbooks[row["playbook"]]
        region = row["region"] if playbook.regional else "global"
        groups[(row["playbook"], row["account_id"], region)].append(row)

    per_playbook: dict[str, list[list[dict[str, Any]]]] = defaultdict(list)
    for (playbook_id, _, _), rows in sorted(groups.items()):
        per_playbook[playbook_id] += chunks(rows, settings.batch_size)

    refs: list[dict[str, Any]] = []
    for playbook_id, batches in per_playbook.items():
        if len(batches) > settings.max_map_length:
            rows = [row for batch in batches for row in batch]
            size = -(-len(rows) // settings.max_map_length)
            batches = chunks(rows, size)
        for number, chunk in enumerate(batches):
            batch_id = f"{playbook_id}-{chunk[0]['account_id']}-{chunk[0]['region']}-{number:04d}"
            store.write_lines(f"batches/{batch_id}.jsonl", chunk)
            refs.append(
                {
                    "batch_id": batch_id,
                    "playbook": playbook_id,
                    "count": len(chunk),
                    "targets": sorted({f"{r['account_id']}/{r['region']}" for r in chunk}),
                }
            )
    return refs


def remediate(
    batch: dict[str, Any],
    store: RunStore,
    playbooks: PlaybookRegistry,
    aws: AwsContext,
    overrides: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Fix one batch and persist its outcomes before anything is written back."""
    outcomes = run_batch(batch_records(store, batch), playbooks, aws, overrides)
    return save_outcomes(store, batch, outcomes)


def batch_records(store: RunStore, batch: dict[str, Any]) -> list[RoutingRecord]:
    return [RoutingRecord.from_dict(r) for r in store.read_lines(f"batches/{batch['batch_id']}.jsonl")]


def save_outcomes(store: RunStore, batch: dict[str, Any], outcomes: list[Outcome]) -> dict[str, int]:
    """Persist a batch's outcomes (write-back and the report read them); return counts by status."""
    store.write_lines(f"outcomes/{batch['batch_id']}.jsonl", (o.to_dict() for o in outcomes))
    return dict(Counter(o.status for o in outcomes))


def load_outcomes(store: RunStore) -> list[Outcome]:
    return [Outcome(**row) for name in store.names("outcomes") for row in store.read_lines(name)]


def note_for(outcome: Outcome, run_id: str) -> str:
    if outcome.status == Status.FAILED:
        return f"ASR {outcome.playbook}: remediation failed: {outcome.message} [run {run_id}]"
    return f"ASR {outcome.playbook}: {outcome.message} [run {run_id}]"


def write_back(settings: Settings, aws: AwsContext, store: RunStore, run_id: str) -> dict[str, int]:
    """RESOLVED for fixed or compliant resources, NOTIFIED with the reason for failures."""
    outcomes = load_outcomes(store)
    client = aws.admin_client("securityhub", settings.securityhub_region)
    updates = [
        (
            {"Id": o.finding_id, "ProductArn": o.product_arn},
            WORKFLOW_FOR[Status(o.status)],
            note_for(o, run_id),
        )
        for o in outcomes
    ]
    updated, failed = update_findings(client, updates) if updates else (0, [])
    store.write_json("writeback.json", {"updated": updated, "failed": failed})
    return {"updated": updated, "failed": len(failed)}
