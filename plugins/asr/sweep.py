"""The steps of a sweep, each a plain function the DAG's tasks call.

ingest -> plan -> remediate (per batch) -> write back -> report. Each step reads what
the one before wrote to the run's store and returns only references and counts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from asr import writeback
from asr.aws import AwsContext
from asr.config import Settings
from asr.findings import FindingError, RoutingRecord, parse_finding
from asr.guard import Scope
from asr.playbooks import PlaybookRegistry
from asr.remediate import Outcome, Result, Status, run_batch
from asr.securityhub import iter_findings
from asr.store import RunStore

RECORDS = "records.jsonl"
REJECTED = "rejected.jsonl"
QUERIES = "queries.json"
NOT_ACTED = "outcomes/not-acted.jsonl"

# Decides whether to act on a routed finding: None to act, else why not (it is then IGNORED).
Keep = Callable[[RoutingRecord], "str | None"]


def chunks(rows: list[Any], size: int) -> list[list[Any]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def ingest(
    settings: Settings,
    aws: AwsContext,
    playbooks: PlaybookRegistry,
    store: RunStore,
    queries: list[dict[str, Any]],
    keep: Keep | None = None,
    notify_rejected: Callable[[str], bool] = lambda finding_id: False,
    scope: Scope | None = None,
) -> dict[str, int]:
    """Read the findings the queries select and route each one.

    Rejected findings are always reported; those ``notify_rejected`` picks (findings a
    person asked for) are also marked NOTIFIED with the reason. Findings ``keep`` turns down are
    reported as IGNORED and left alone in Security Hub. ``scope`` rejects findings in
    accounts asr may not act in and excludes what the exclusions name (EXCLUDED,
    marked NOTIFIED), before any member role is assumed.
    """
    client = aws.admin_client("securityhub", settings.securityhub_region)
    records: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    not_acted: list[Outcome] = []
    seen: set[str] = set()
    for finding in iter_findings(client, queries):
        if finding.get("Id") in seen:
            continue
        seen.add(finding.get("Id"))
        try:
            record = parse_finding(finding, playbooks)
            verdict = scope.check(record) if scope else None
            if verdict and verdict[0] == Status.REJECTED:
                raise FindingError(record.finding_id, verdict[1])
        except FindingError as exc:
            rejected.append({"finding_id": exc.finding_id, "error": exc.reason})
            if exc.finding_id and notify_rejected(exc.finding_id):
                not_acted.append(Outcome.not_acted(finding, Status.REJECTED, exc.reason))
            continue
        if verdict:
            not_acted.append(Outcome.of(record, Result(verdict[0], verdict[1])))
            continue
        reason = keep(record) if keep else None
        if reason:
            not_acted.append(Outcome.not_acted(finding, Status.IGNORED, reason))
        else:
            records.append(record.to_dict())
    store.write_json(QUERIES, queries)
    store.write_lines(RECORDS, records)
    store.write_lines(REJECTED, rejected)
    store.write_lines(NOT_ACTED, (o.to_dict() for o in not_acted))
    return {
        "findings": len(seen),
        "routed": len(records),
        "rejected": len(rejected),
        "ignored": sum(o.status == Status.IGNORED for o in not_acted),
        "excluded": sum(o.status == Status.EXCLUDED for o in not_acted),
    }


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
    dry: bool = False,
    exclude_tag: tuple[str, str | None] | None = None,
) -> dict[str, int]:
    """Fix one batch and persist its outcomes before anything is written back."""
    outcomes = run_batch(batch_records(store, batch), playbooks, aws, overrides, dry, exclude_tag)
    return save_outcomes(store, batch, outcomes)


def batch_records(store: RunStore, batch: dict[str, Any]) -> list[RoutingRecord]:
    return [RoutingRecord.from_dict(r) for r in store.read_lines(f"batches/{batch['batch_id']}.jsonl")]


def save_outcomes(store: RunStore, batch: dict[str, Any], outcomes: list[Outcome]) -> dict[str, int]:
    """Persist a batch's outcomes (write-back and the report read them); return counts by status."""
    store.write_lines(f"outcomes/{batch['batch_id']}.jsonl", (o.to_dict() for o in outcomes))
    return dict(Counter(o.status for o in outcomes))


def load_outcomes(store: RunStore) -> list[Outcome]:
    return [Outcome(**row) for name in store.names("outcomes") for row in store.read_lines(name)]


def write_back(settings: Settings, aws: AwsContext, store: RunStore, run_id: str) -> dict[str, int]:
    """Every outcome of the run to Security Hub, under the rules of ``asr.writeback``."""
    client = aws.admin_client("securityhub", settings.securityhub_region)
    queries = store.read_json(QUERIES) if store.path(QUERIES).exists() else None
    result = writeback.write_back(client, load_outcomes(store), run_id, queries)
    store.write_json("writeback.json", result.to_dict())
    return result.counts()
