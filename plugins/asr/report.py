"""The run report: JSON for machines, a Markdown summary for people."""

from __future__ import annotations

from collections import Counter
from typing import Any

from asr.remediate import Status
from asr.store import RunStore
from asr.sweep import REJECTED, WORKFLOW_FOR, load_outcomes

COLUMNS = ("control", "account", "region", "resource", "outcome", "detail")


def build(store: RunStore, run_id: str) -> dict[str, Any]:
    outcomes = load_outcomes(store)
    rejected = list(store.read_lines(REJECTED))
    writeback = store.read_json("writeback.json") if store.path("writeback.json").exists() else {}
    return {
        "run_id": run_id,
        "totals": dict(Counter(o.status for o in outcomes))
        | ({"REJECTED": len(rejected)} if rejected else {}),
        "by_control": _count(outcomes, "playbook"),
        "by_account": _count(outcomes, "account_id"),
        "findings_updated": writeback.get("updated", 0),
        "writeback_failures": writeback.get("failed", []),
        "outcomes": [o.to_dict() | {"workflow_status": WORKFLOW_FOR[Status(o.status)]} for o in outcomes],
        "rejected": rejected,
    }


def _count(outcomes: list[Any], key: str) -> dict[str, dict[str, int]]:
    table: dict[str, Counter[str]] = {}
    for outcome in outcomes:
        table.setdefault(getattr(outcome, key), Counter())[outcome.status] += 1
    return {name: dict(counts) for name, counts in sorted(table.items())}


def table(rows: list[list[str]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    lines = [
        " | ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=False))
        for row in (list(header), ["-" * w for w in widths], *rows)
    ]
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    totals = ", ".join(f"{k}: {v}" for k, v in sorted(report["totals"].items())) or "nothing to do"
    rows = [
        [o["control_id"], o["account_id"], o["region"], o["resource_id"], o["status"], o["message"]]
        for o in report["outcomes"]
    ]
    parts = [f"# ASR run {report['run_id']}", "", f"Totals: {totals}", "", table(rows, COLUMNS)]
    if report["rejected"]:
        parts += ["", "## Not acted on", ""]
        parts += [f"- {r['finding_id'] or '(no id)'}: {r['error']}" for r in report["rejected"]]
    if report["writeback_failures"]:
        parts += ["", "## Security Hub did not take these updates", ""]
        parts += [f"- {f}" for f in report["writeback_failures"]]
    return "\n".join(parts) + "\n"


def write(store: RunStore, run_id: str) -> tuple[dict[str, Any], str]:
    """Write report.json and report.md; return the report and its Markdown."""
    report = build(store, run_id)
    text = markdown(report)
    store.write_json("report.json", report)
    store.path("report.md").write_text(text)
    return report, text
