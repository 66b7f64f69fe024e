"""The run report: JSON for machines; Markdown for the task log; a self-contained HTML page
for people; a plain-text summary for notifications.

Outcome statuses are open-ended strings: every view renders any status, and only the
colour and the ordering know some of them by name.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote

from asr.config import REGION_RE
from asr.findings import one_line
from asr.remediate import Outcome
from asr.securityhub import refused_for_now
from asr.store import RunStore, shown, write_whole
from asr.sweep import (
    MESSAGE,
    PICK,
    REJECTED,
    UNSUPPORTED,
    WARNINGS,
    WRITTEN_BACK,
    every_outcome,
    is_dry_run,
    unfinished,
)
from asr.writeback import WORKFLOW_FOR, WriteBack, workflow_for, written

COLUMNS = ("control", "account", "region", "resource", "outcome", "Security Hub", "detail")
NOT_WRITTEN = "not written"
NOT_WRITTEN_YET = "not written yet"
# A rejected finding with no outcome: rejected.jsonl does not say its control or account.
UNKNOWN = "(unknown)"
NOT_TAKEN = "Security Hub did not take these updates"
REFUSED_FOR_NOW = "Refused by Security Hub for now, not written yet (write-back's retry writes them)"
LEFT_ALONE = "Left alone: closed or changed meanwhile (by Security Hub or a person), or not found"

# Known statuses, in the order views list them, with their colour; any other status is
# listed after them (alphabetically) in NEUTRAL.
STATUS_COLOURS = {
    "REMEDIATED": "#1a7f37",
    "ALREADY_COMPLIANT": "#0969da",
    "FAILED": "#cf222e",
    "NOT_RUN": "#a40e26",
    "REJECTED": "#bc4c00",
    "NOT_APPROVED": "#9a6700",
    "DRY_RUN": "#8250df",
}
NEUTRAL = "#6e7781"
# Outcomes a person has to look at: listed in the summary, and first in the findings table
# with the rejections (which the summary takes from the rejected list, where all of them are).
FAILING = ("FAILED", "NOT_RUN", "NOT_APPROVED")
ATTENTION = (*FAILING, "REJECTED")
DRY_RUN_NOTE = "Dry run: nothing was changed, in the resources or in Security Hub"
TO_CHECK = "Fixed, with something left to check"
# Settings that let the run through but are likely a mistake (``Settings.warnings``).
SETTINGS_TO_CHECK = "Settings to check"
SUMMARY_ITEMS = 8
SUMMARY_WIDTH = 200
S3_SCHEMES = ("s3", "s3a", "s3n")
CONSOLE_HOSTS = {
    "aws": "https://{region}.console.aws.amazon.com",
    "aws-cn": "https://console.amazonaws.cn",
    "aws-us-gov": "https://console.amazonaws-us-gov.com",
}


def _written(writeback: dict[str, Any], run_id: str) -> Callable[[Outcome], str | None]:
    """The workflow status write-back gave (or found already on) a finding for its outcome
    now; None when write-back left it alone, Security Hub refused the update, or no pass of
    write-back wrote this outcome (a rerun fix whose second write-back did not finish)."""
    settled = writeback.get("settled") or {}
    return lambda o: workflow_for(o) if settled.get(o.finding_id) == written(o, run_id) else None


def _told(writeback: dict[str, Any], run_id: str) -> Callable[[Outcome], str]:
    """What Security Hub was told of a finding, in a few words: the workflow status written
    (or found), why it was left alone, Security Hub's refusal (for good, or for now: not
    written yet), or that nothing was written (a dry run, an ignored finding, a write-back
    still to come)."""
    shown = _written(writeback, run_id)
    left = {x.get("finding_id"): x.get("now") for x in writeback.get("left_alone", []) if isinstance(x, dict)}
    refused = {
        x.get("FindingIdentifier", {}).get("Id"): x.get("ErrorCode")
        for x in writeback.get("failed", [])
        if isinstance(x, dict)
    }
    for_now = {
        x.get("FindingIdentifier", {}).get("Id") for x in writeback.get("failed", []) if refused_for_now(x)
    }

    def told(outcome: Outcome) -> str:
        if outcome.finding_id in left:
            return f"left alone: {left[outcome.finding_id]}"
        if outcome.finding_id in for_now:
            return f"{NOT_WRITTEN_YET} (refused for now: {refused[outcome.finding_id]})"
        if outcome.finding_id in refused:
            return f"refused: {refused[outcome.finding_id]}"
        return shown(outcome) or NOT_WRITTEN

    return told


def _unwritten(outcomes: list[Outcome], writeback: dict[str, Any], run_id: str) -> int:
    """Outcomes write-back has yet to give Security Hub: neither settled, left alone nor refused."""
    done = WriteBack.given_up(writeback)
    shown = _written(writeback, run_id)
    return sum(1 for o in outcomes if o.status in WORKFLOW_FOR and o.finding_id not in done and not shown(o))


def is_pick(rejection: dict[str, Any]) -> bool:
    """Whether an entry of rejected.jsonl is a pick no finding answers, not a finding: a finding
    id a person named that was not found, or a resource they chose that no finding names."""
    return bool(rejection.get(PICK))


def is_finding(rejection: dict[str, Any]) -> bool:
    """Whether an entry of rejected.jsonl is a finding: not a pick, nor an events message that
    named none (``MESSAGE``)."""
    return not is_pick(rejection) and MESSAGE not in rejection


def unlisted_rejections(rejected: Iterable[dict[str, Any]], has_outcome: set[str]) -> list[dict[str, Any]]:
    """The rejected findings no outcome tells of (none named them): the report counts them
    REJECTED under ``UNKNOWN``, and so do the metrics."""
    return [
        r
        for r in rejected
        if is_finding(r) and (not r.get("finding_id") or r["finding_id"] not in has_outcome)
    ]


def named(rejection: dict[str, Any]) -> str:
    """What an entry of rejected.jsonl is about, as "Not acted on" lists it: a finding's id,
    else the resource a person chose, else the SQS message."""
    if rejection.get("finding_id"):
        return str(rejection["finding_id"])
    if rejection.get("resource"):
        return f"resource {rejection['resource']}"
    if rejection.get(MESSAGE):
        return f"SQS message {rejection[MESSAGE]}"
    return "(no id)"


def build(store: RunStore, run_id: str) -> dict[str, Any]:
    """Everything the views show, from what the run's steps left in its store.

    ``totals``, ``by_control`` and ``by_account`` count findings, each once, and agree: a
    rejected finding with an outcome (one a person named, marked NOTIFIED) counts as that
    outcome; one without is counted REJECTED under ``UNKNOWN``. The picks no finding answers
    (``is_pick``) are not findings: ``picks_not_found`` counts them; ``rejected`` lists them
    with the rejected findings, as "Not acted on", each ``named``; so are the events' messages
    that named no finding, which ``messages_not_read`` counts.
    """
    outcomes = every_outcome(store)
    rejected = [r | {"named": named(r)} for r in store.read_lines(REJECTED)]
    picks = sum(1 for r in rejected if is_pick(r))
    unlisted = len(unlisted_rejections(rejected, {o.finding_id for o in outcomes}))
    writeback = store.read_json(WRITTEN_BACK) if store.path(WRITTEN_BACK).exists() else {}
    workflow_status, told = _written(writeback, run_id), _told(writeback, run_id)
    totals = Counter(o.status for o in outcomes)
    by_control = _count(outcomes, lambda o: o.playbook or o.control_id)
    by_account = _count(outcomes, lambda o: o.account_id)
    if unlisted:
        totals["REJECTED"] += unlisted
        for counts in (by_control, by_account):
            row = counts.setdefault(UNKNOWN, {})
            row["REJECTED"] = row.get("REJECTED", 0) + unlisted
    failed = writeback.get("failed", [])
    dry = is_dry_run(store, {})
    pending = 0 if dry else _unwritten(outcomes, writeback, run_id)
    return {
        "run_id": run_id,
        "dry_run": dry,
        # What did not finish (the run then fails), so the report never reads as complete.
        "unfinished": unfinished(store, totals.get("NOT_RUN", 0), written_back=not dry, unwritten=pending),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "totals": dict(totals),
        "by_control": by_control,
        "by_account": by_account,
        "findings_updated": writeback.get("updated", 0),
        # Refused for good; those refused for now are not written yet (``writeback_pending``
        # counts them), and the step's retry writes them.
        "writeback_failures": [x for x in failed if not refused_for_now(x)],
        "writeback_refused_for_now": [x for x in failed if refused_for_now(x)],
        "writeback_left_alone": writeback.get("left_alone", []),
        "writeback_pending": pending,
        "outcomes": [
            o.to_dict() | {"workflow_status": workflow_status(o), "security_hub": told(o)} for o in outcomes
        ],
        "rejected": rejected,
        "picks_not_found": picks,
        "messages_not_read": sum(1 for r in rejected if MESSAGE in r),
        # Findings of controls no playbook fixes, by control: counted, not listed one by one.
        "unsupported": store.read_json(UNSUPPORTED) if store.path(UNSUPPORTED).exists() else {},
        "warnings": store.read_json(WARNINGS) if store.path(WARNINGS).exists() else [],
    }


def _count(outcomes: list[Outcome], key: Callable[[Outcome], str]) -> dict[str, dict[str, int]]:
    table: dict[str, Counter[str]] = {}
    for outcome in outcomes:
        table.setdefault(key(outcome) or "(none)", Counter())[outcome.status] += 1
    return {name: dict(counts) for name, counts in sorted(table.items())}


def ordered(statuses: Iterable[str]) -> list[str]:
    """Known statuses in their order, then any others alphabetically."""
    known = list(STATUS_COLOURS)
    return sorted(set(statuses), key=lambda s: (known.index(s) if s in known else len(known), s))


def colour(status: str) -> str:
    return STATUS_COLOURS.get(status, NEUTRAL)


def counts_text(totals: dict[str, int], extras: Iterable[str] = ()) -> str:
    """The totals in words, known statuses first, then what was no finding (``extras_text``):
    '7 remediated, 1 failed, 2 picks not found'."""
    words = [f"{totals[s]} {s.lower().replace('_', ' ')}" for s in ordered(totals)]
    return ", ".join([*words, *extras]) or "nothing to do"


def _not_findings(report: dict[str, Any]) -> list[tuple[str, int, str]]:
    """What the run was given that is no finding, where there was any: picks no finding
    answers, and events' messages that named none; each as its name in the totals, its
    count, and in words ('2 picks not found', '1 SQS message not read')."""
    kinds = (
        ("picks not found", int(report.get("picks_not_found") or 0), picks_text),
        ("SQS messages not read", int(report.get("messages_not_read") or 0), messages_text),
    )
    return [(name, n, words(n)) for name, n, words in kinds if n]


def extras_text(report: dict[str, Any]) -> list[str]:
    """``_not_findings`` in words, for the counts."""
    return [words for _, _, words in _not_findings(report)]


def messages_text(messages: int) -> str:
    """'1 SQS message not read': events' messages that named no finding."""
    return f"{messages} SQS message{'' if messages == 1 else 's'} not read"


def picks_text(picks: int) -> str:
    """'2 picks not found': finding ids a person named, or resources they chose, that no finding answers."""
    return f"{picks} pick{'' if picks == 1 else 's'} not found"


def title(report: dict[str, Any]) -> str:
    """'ASR run', or 'ASR dry run': a dry run's report must not read like one that changed things."""
    return "ASR dry run" if report.get("dry_run") else "ASR run"


def headline(report: dict[str, Any], limit: int | None = None) -> str:
    """'ASR run <id>: <counts>'; within ``limit`` the run id is shortened first, then the last
    counts are left out whole (", ..."), never cut inside a word."""
    extras = extras_text(report)
    counts = counts_text(report["totals"], extras)
    if report.get("unfinished"):
        counts = ", ".join(["INCOMPLETE", *([counts] if report["totals"] or extras else [])])
    run_id = str(report["run_id"])
    shortest = len(f"{title(report)} r...: ")
    if limit is not None and shortest + len(counts) > limit:
        kept: list[str] = []
        for part in counts.split(", "):
            if shortest + len(", ".join([*kept, part, "..."])) > limit:
                break
            kept.append(part)
        counts = ", ".join([*kept, "..."])
    if limit is not None:
        room = max(limit - len(f"{title(report)} : {counts}"), 4)
        run_id = run_id if len(run_id) <= room else run_id[: room - 3] + "..."
    text = f"{title(report)} {run_id}: {counts}"
    return text if limit is None else text[:limit]


# Escaped in Markdown: what opens a link, an image, an autolink or raw HTML (``[ ] < >``), and
# a backslash before any ASCII punctuation, which would turn the escape after it into text.
_MARKDOWN = re.compile(r"\\(?=[!-/:-@\[-`{-~])|[\[\]<>]")
_MARKDOWN_CELL = re.compile(r"\\(?=[!-/:-@\[-`{-~])|[\[\]<>|]")  # and a | (a column)


def _md(value: Any, special: re.Pattern[str] = _MARKDOWN) -> str:
    """Text from outside asr (a finding's fields, AWS's error messages, a fix's caveat, a
    rejection's reason, a setting) as Markdown: on one line (``one_line``), with what opens
    a link, an image, an autolink or raw HTML backslash-escaped, so that it shows as the text
    it is. Nothing else is escaped: the report is read as plain text in the task log too,
    where ASR_REGIONS must not read ASR\\_REGIONS."""
    return special.sub(lambda m: "\\" + m.group(), one_line(value))


def _cell(value: Any) -> str:
    """One table cell (``_md``): a ``|`` in it would add a column."""
    return _md(value, _MARKDOWN_CELL)


def table(rows: list[list[str]], header: tuple[str, ...]) -> str:
    cells = [[_cell(c) for c in row] for row in (list(header), *rows)]
    widths = [max(len(c) for c in column) for column in zip(*cells, strict=False)]
    # Outer pipes: a row must not start with spaces (an empty first cell), which Markdown
    # reads as code, nor with a "#" or ">" of the finding's own text.
    lines = [
        "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + " |"
        for row in (cells[0], ["-" * w for w in widths], *cells[1:])
    ]
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    """The report in Markdown, every value from outside asr through ``_md`` (or ``_cell``)."""
    counted = [f"{_md(s)}: {report['totals'][s]}" for s in ordered(report["totals"])]
    extras = [f"{name}: {n}" for name, n, _ in _not_findings(report)]
    totals = ", ".join(counted + extras) or "nothing to do"
    rows = [
        [
            *(o["control_id"], o["account_id"], o["region"], o["resource_id"], o["status"]),
            o.get("security_hub") or NOT_WRITTEN,
            o["message"],
        ]
        for o in report["outcomes"]
    ]
    parts = [f"# {title(report)} {_md(report['run_id'])}", "", f"Totals: {totals}", "", table(rows, COLUMNS)]
    for warning in reversed(report.get("warnings", [])):  # under the title, as what follows says
        parts[1:1] = ["", f"**{SETTINGS_TO_CHECK}:** {_md(warning)}"]
    if report.get("unfinished"):
        parts[1:1] = ["", f"**{not_finished(report)}**"]
    if report.get("dry_run"):
        parts[1:1] = ["", DRY_RUN_NOTE]
    checks = to_check(report)
    if checks:
        parts += ["", f"## {TO_CHECK}", ""]
        parts += [f"- {_md(o['resource_arn'])}: {_md(o['caveat'])}" for o in checks]
    if report["rejected"]:
        parts += ["", "## Not acted on", ""]
        parts += [f"- {_md(r['named'])}: {_md(r['error'])}" for r in report["rejected"]]
    if report.get("unsupported"):
        parts += ["", f"## {unsupported_text(report['unsupported'])}", ""]
        parts += [f"- {_md(control)}: {n}" for control, n in report["unsupported"].items()]
    for heading, failures in (
        (NOT_TAKEN, "writeback_failures"),
        (REFUSED_FOR_NOW, "writeback_refused_for_now"),
    ):
        if report.get(failures):
            parts += ["", f"## {heading}", ""]
            parts += [f"- {_md(f)}" for f in report[failures]]
    if report.get("writeback_left_alone"):
        parts += ["", f"## {LEFT_ALONE}", ""]
        parts += [
            f"- {_md(x.get('finding_id'))}: {_md(x.get('now'))}" for x in report["writeback_left_alone"]
        ]
    return "\n".join(parts) + "\n"


def to_check(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The outcomes of fixes made that left something for a person to check (``Action.caveat``):
    listed apart, for their findings are RESOLVED, where nobody looks. A resource several
    findings name (one per standard) is listed once."""
    seen: set[tuple[str, ...]] = set()
    listed = []
    for outcome in report["outcomes"]:
        key = tuple(outcome.get(k) or "" for k in ("account_id", "region", "resource_arn", "caveat"))
        if outcome.get("caveat") and key not in seen:
            seen.add(key)
            listed.append(outcome)
    return listed


def unsupported_text(unsupported: dict[str, int]) -> str:
    """'1,204 findings of 37 controls no playbook fixes, left as they are'."""
    return (
        f"{sum(unsupported.values()):,} findings of {len(unsupported)} controls no playbook fixes, "
        "left as they are"
    )


def not_finished(report: dict[str, Any]) -> str:
    return f"Not finished: {report['unfinished']}. Clear the run's failed tasks to finish it."


def _clip(text: Any, width: int = SUMMARY_WIDTH) -> str:
    line = one_line(text)
    return line if len(line) <= width else line[: width - 3] + "..."


def _listed(title: str, lines: list[str], limit: int) -> list[str]:
    if not lines:
        return []
    more = [f"  ...and {len(lines) - limit} more (see the report)"] if len(lines) > limit else []
    return [f"{title} ({len(lines)}):", *lines[:limit], *more]


def worth_telling(report: dict[str, Any]) -> bool:
    """Whether a run has something to tell whoever reads the topic: a finding acted on (or
    that would be, dry), one not acted on, a pick no finding answers, something unfinished or
    refused, a setting to check. A run that only left findings alone (a burst of Imported
    events asr had already taken, an hourly sweep of a clean fleet) sends nothing."""
    return bool(
        any(status != "IGNORED" for status in report["totals"])
        or report["rejected"]
        or report.get("unfinished")
        or report.get("writeback_failures")
        or report.get("warnings")
    )


def summary(report: dict[str, Any]) -> str:
    """A few plain lines for a notification: counts by outcome, then what needs a person, with reasons."""

    def about(outcome: dict[str, Any], text: str) -> str:
        where = (outcome[key] for key in ("control_id", "account_id", "region", "resource_id"))
        return _clip(f"- {' '.join(where)}: {text}")

    failed = [about(o, o["message"]) for o in report["outcomes"] if o["status"] in FAILING]
    checks = [about(o, o["caveat"]) for o in to_check(report)]
    rejected = [_clip(f"- {r['named']}: {r.get('error')}") for r in report["rejected"]]
    lines = [headline(report)]
    writeback = f"Security Hub: {report.get('findings_updated', 0)} findings updated"
    if report.get("writeback_failures"):
        writeback += f"; updates not taken: {len(report['writeback_failures'])}"
    if report.get("writeback_left_alone"):
        writeback += (
            f"; left alone, closed, changed or not found meanwhile: {len(report['writeback_left_alone'])}"
        )
    if report.get("writeback_pending"):
        writeback += f"; not written yet: {report['writeback_pending']}"
    lines.append(DRY_RUN_NOTE if report.get("dry_run") else writeback)
    if report.get("unfinished"):
        lines.append(not_finished(report))
    lines += _listed(SETTINGS_TO_CHECK, [_clip(f"- {w}") for w in report.get("warnings", [])], SUMMARY_ITEMS)
    lines += _listed("Needs attention", failed, SUMMARY_ITEMS)
    lines += _listed(TO_CHECK, checks, SUMMARY_ITEMS // 2)
    lines += _listed("Not acted on", rejected, SUMMARY_ITEMS // 2)
    if report.get("unsupported"):
        lines.append(unsupported_text(report["unsupported"]))
    return "\n".join(lines) + "\n"


# --- HTML ------------------------------------------------------------------------------

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2328;margin:1.5rem auto;
max-width:84rem;padding:0 1rem}
h1{font-size:1.45rem;margin:0}h2{font-size:1.1rem;margin:2rem 0 .5rem;border-bottom:1px solid #d0d7de}
header p{margin:.25rem 0;color:#59636e}
table{border-collapse:collapse;width:100%;margin:.25rem 0}
th,td{border:1px solid #d0d7de;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;overflow-wrap:anywhere}
.st{border-left:5px solid;padding-left:.35rem;font-weight:600;white-space:nowrap}
.counts{display:flex;flex-wrap:wrap;gap:1.5rem}.counts>*{flex:1 1 20rem}
svg text{font:12px system-ui,sans-serif;fill:#1f2328}
@media print{body{margin:0;max-width:none;font-size:10px}a{color:inherit;text-decoration:none}
thead{display:table-header-group}tr{break-inside:avoid}.st,svg{print-color-adjust:exact}}
"""


def console_url(finding_id: str, region: str) -> str | None:
    """The finding in the Security Hub console, or None when its region or partition is unknown.

    The console double-decodes the search value (the operator's ``\\:`` is ``%255C%253A``),
    so the id is encoded twice as well.
    """
    partition = finding_id.split(":")[1] if finding_id.startswith("arn:") else "aws"
    host = CONSOLE_HOSTS.get(partition)
    if not finding_id or host is None or not REGION_RE.fullmatch(region or ""):
        return None
    value = quote(quote(finding_id, safe=""), safe="")
    return (
        f"{host.format(region=region)}/securityhub/home?region={region}"
        f"#/findings?search=Id%3D%255Coperator%255C%253AEQUALS%255C%253A{value}"
    )


def _text(value: Any) -> str:
    """Escaped text; a dash for nothing."""
    return escape(str(value)) if value not in (None, "") else "\u2014"


def _row(cells: Iterable[str]) -> str:
    """A table row from cells that are already markup (each built from escaped data)."""
    return "<tr>" + "".join(cells) + "</tr>"


def _table(header: Iterable[str], rows: Iterable[str]) -> str:
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _status(status: str) -> str:
    return f'<span class="st" style="border-color:{colour(status)}">{escape(status)}</span>'


def _json(value: Any) -> str:
    if value is None:
        return "\u2014"
    return f"<code>{escape(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str))}</code>"


def _change(before: Any, after: Any) -> str:
    """Before -> after, or a dash when the outcome recorded neither."""
    return "\u2014" if before is None and after is None else f"{_json(before)} \u2192 {_json(after)}"


def _number(value: int) -> str:
    return f'<td class="n">{int(value)}</td>'


def chart(totals: dict[str, int]) -> str:
    """A horizontal bar per status, as inline SVG."""
    statuses = ordered(totals)
    if not statuses:
        return "<p>Nothing to do.</p>"
    label, bars, row = 170, 380, 26
    top = max(int(n) for n in totals.values()) or 1
    parts = []
    for i, status in enumerate(statuses):
        count = int(totals[status])
        width = max(round(bars * count / top), 2 if count else 0)
        y = i * row
        name = status if len(status) <= 22 else status[:21] + "\u2026"
        parts.append(
            f'<text x="{label - 8}" y="{y + 17}" text-anchor="end">{escape(name)}</text>'
            f'<rect x="{label}" y="{y + 5}" width="{width}" height="16" fill="{colour(status)}"/>'
            f'<text x="{label + width + 6}" y="{y + 17}">{count}</text>'
        )
    width, height = label + bars + 60, row * len(statuses)
    described = escape(counts_text(totals))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{described}</title>{"".join(parts)}</svg>'
    )


def _totals_table(totals: dict[str, int]) -> str:
    rows = (_row([f"<td>{_status(s)}</td>", _number(totals[s])]) for s in ordered(totals))
    return _table(("outcome", "findings"), rows)


def _counts_table(first: str, counts: dict[str, dict[str, int]]) -> str:
    statuses = ordered(s for row in counts.values() for s in row)
    rows = [
        _row(
            [
                f'<th scope="row">{_text(name)}</th>',
                *(_number(row.get(s, 0)) for s in statuses),
                _number(sum(row.values())),
            ]
        )
        for name, row in counts.items()
    ]
    return _table([first, *statuses, "total"], rows) if rows else "<p>None.</p>"


def _finding_row(outcome: dict[str, Any]) -> str:
    url = console_url(outcome.get("finding_id") or "", outcome.get("region") or "")
    link = f'<a href="{escape(url)}" rel="noopener noreferrer">open</a>' if url else "\u2014"
    resource = outcome.get("resource_id") or outcome.get("resource_arn")
    return _row(
        [
            f"<td>{_text(outcome.get('control_id'))}</td>",
            f"<td>{_text(outcome.get('account_id'))}</td>",
            f"<td>{_text(outcome.get('region'))}</td>",
            f'<td title="{escape(outcome.get("resource_arn") or "")}"><code>{_text(resource)}</code></td>',
            f"<td>{_status(outcome['status'])}</td>",
            f"<td>{_text(outcome.get('security_hub') or NOT_WRITTEN)}</td>",
            f"<td>{_text(outcome.get('message'))}</td>",
            f"<td>{_change(outcome.get('before'), outcome.get('after'))}</td>",
            f"<td>{link}</td>",
        ]
    )


def _findings(outcomes: list[dict[str, Any]]) -> str:
    rank = {s: i for i, s in enumerate(ordered(o["status"] for o in outcomes))}
    first = sorted(
        outcomes,
        key=lambda o: (
            o["status"] not in ATTENTION,
            rank[o["status"]],
            *(str(o.get(k) or "") for k in ("control_id", "account_id", "region", "resource_id")),
        ),
    )
    header = (
        "control",
        "account",
        "region",
        "resource",
        "outcome",
        "Security Hub",
        "message",
        "before \u2192 after",
        "finding",
    )
    return _table(header, map(_finding_row, first)) if first else "<p>No findings.</p>"


def _writeback_failure(failure: Any) -> str:
    """One update Security Hub did not take (an UnprocessedFindings entry, or anything else)."""
    if not isinstance(failure, dict):
        return _row([f"<td colspan='3'>{_text(failure)}</td>"])
    finding = failure.get("FindingIdentifier") or {}
    return _row(
        [
            f"<td><code>{_text(finding.get('Id') if isinstance(finding, dict) else finding)}</code></td>",
            f"<td>{_text(failure.get('ErrorCode'))}</td>",
            f"<td>{_text(failure.get('ErrorMessage'))}</td>",
        ]
    )


def _listing(
    title: str, header: tuple[str, str], items: list[dict[str, Any]], key: str, text: str
) -> list[str]:
    """A titled table of items (findings or resources, named by ``key``) and one ``text``
    each; nothing when there are none."""
    rows = (
        _row([f"<td><code>{_text(item.get(key))}</code></td>", f"<td>{_text(item.get(text))}</td>"])
        for item in items
    )
    return [f"<h2>{escape(title)}</h2>", _table(header, rows)] if items else []


def html_page(report: dict[str, Any]) -> str:
    """The report as one HTML page: no scripts, no external resources, every value escaped."""
    run_id = escape(str(report["run_id"]))
    generated = str(report.get("generated_at") or "")
    shown = generated.replace("T", " ").replace("+00:00", " UTC")
    total = sum(int(n) for n in report["totals"].values())
    sections = [
        "<h2>Outcomes</h2>",
        f'<div class="counts"><div>{chart(report["totals"])}</div><div>',
        _totals_table(report["totals"]),
        "</div></div>",
        '<div class="counts"><div><h2>By control</h2>',
        _counts_table("control", report["by_control"]),
        "</div><div><h2>By account</h2>",
        _counts_table("account", report["by_account"]),
        "</div></div>",
        "<h2>Findings</h2>",
        _findings(report["outcomes"]),
    ]
    sections += _listing(TO_CHECK, ("resource", "what to check"), to_check(report), "resource_arn", "caveat")
    sections += _listing("Not acted on", ("what", "reason"), report["rejected"], "named", "error")
    if report.get("unsupported"):
        rows = (_row([f"<td>{_text(c)}</td>", f"<td>{n}</td>"]) for c, n in report["unsupported"].items())
        sections += [
            f"<h2>{escape(unsupported_text(report['unsupported']))}</h2>",
            _table(("control", "findings"), rows),
        ]
    for heading, failures in (
        (NOT_TAKEN, "writeback_failures"),
        (REFUSED_FOR_NOW, "writeback_refused_for_now"),
    ):
        if report.get(failures):
            sections += [
                f"<h2>{escape(heading)}</h2>",
                _table(("finding", "error", "message"), map(_writeback_failure, report[failures])),
            ]
    sections += _listing(
        LEFT_ALONE,
        ("finding", "now"),
        report.get("writeback_left_alone") or [],
        "finding_id",
        "now",
    )
    written = f"{int(report.get('findings_updated') or 0)} updated in Security Hub"
    header = (
        f'<p>Generated <time datetime="{escape(generated)}">{escape(shown)}</time> \u00b7 {total} findings'
        + "".join(f" \u00b7 {escape(extra)}" for extra in extras_text(report))
        + f" \u00b7 {escape(DRY_RUN_NOTE) if report.get('dry_run') else written}</p>"
    )
    if report.get("unfinished"):
        header += f"<p><strong>{escape(not_finished(report))}</strong></p>"
    header += "".join(
        f"<p><strong>{escape(SETTINGS_TO_CHECK)}:</strong> {escape(str(w))}</p>"
        for w in report.get("warnings", [])
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
        f"<title>{title(report)} {run_id}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{title(report)} <code>{run_id}</code></h1>{header}</header>"
        f"<main>{''.join(sections)}</main></body></html>\n"
    )


def _write_text(path: Any, text: str, content_type: str) -> None:
    """Write UTF-8 text; in S3 with its content type, so a browser shows the page, not a download."""
    if getattr(path, "protocol", None) in S3_SCHEMES:
        with path.open("w", encoding="utf-8", ContentType=content_type) as target:
            target.write(text)
    else:
        write_whole(path, text)  # whole or not at all: a killed report task leaves no torn page


def location(store: RunStore, name: str = "report.html") -> str:
    """Where a person finds a report file: its path or URL (``shown``)."""
    return shown(store.path(name))


def write(store: RunStore, run_id: str) -> tuple[dict[str, Any], str]:
    """Write report.json, report.md and report.html; return the report and its Markdown."""
    report = build(store, run_id)
    text = markdown(report)
    store.write_json("report.json", report)
    _write_text(store.path("report.md"), text, "text/markdown; charset=utf-8")
    _write_text(store.path("report.html"), html_page(report), "text/html; charset=utf-8")
    return report, text
