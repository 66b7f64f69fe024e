"""Hostile input: quotes, newlines, JSON and shell metacharacters, huge fields, unicode.

Values from findings are validated by pattern and only ever carried as data (JSON,
HTML-escaped pages, API parameters), never interpolated into anything executed.
"""

from __future__ import annotations

import html
import json
import re
import time

import pytest

from asr.config import Settings
from asr.findings import FindingError, parse_finding
from asr.local.seed import Seeded, finding, import_findings
from asr.playbooks import registry
from asr.report import write
from asr.securityhub import QueryPlan, clip_note, iter_findings, queries_by_id
from asr.store import RunStore
from asr.sweep import ingest, load_outcomes, write_back

NASTY = [
    "sg-0123456789abcdef0'; rm -rf / #",
    'sg-0123456789abcdef0"\n{"injected": true}',
    "sg-0123456789abcdef0$(curl http://127.0.0.1/x)",
    "sg-0123456789abcdef0`id`",
    "sg-0123456789abcdef0\u202e\u0000",
    "sg-" + "0" * 1_000_000,
]


def sg_finding(resource_id: str) -> dict:
    arn = f"arn:aws:ec2:us-east-1:222222222222:security-group/{resource_id}"
    return finding(Seeded("EC2.13", "222222222222", "us-east-1", "AwsEc2SecurityGroup", arn))


@pytest.mark.parametrize("resource_id", NASTY, ids=range(len(NASTY)))
def test_hostile_resource_ids_are_rejected_by_pattern_quickly(resource_id: str) -> None:
    raw, playbooks = sg_finding(resource_id), registry()
    started = time.monotonic()
    with pytest.raises(FindingError, match="does not match"):
        parse_finding(raw, playbooks)
    assert time.monotonic() - started < 1, "patterns must not backtrack on huge input"


HOSTILE_TEXT = [
    "ok'\"; $(id)",
    "line\n# forged heading\n- forged item",
    "emoji 🔥 and RTL \u202e",
    "a | b <b>bold</b> & <script>alert(1)</script>",
    "x" * 100_000,
]


def markdown_separators(line: str) -> int:
    """The ``|`` that separate a Markdown table's cells (an escaped ``\\|`` is text)."""
    return len(re.findall(r"(?<!\\)\|", line))


@pytest.mark.parametrize("value", HOSTILE_TEXT, ids=range(len(HOSTILE_TEXT)))
def test_hostile_text_is_carried_as_data(aws, tmp_path, value: str) -> None:  # type: ignore[no-untyped-def]
    """Hostile text in a finding's resource ARN and control id, through ingest, write-back and
    the report: it reaches the rejection reasons, the outcomes, the Security Hub note and
    every report view as data: intact in JSON and the note, escaped in HTML, never a new
    line, a cell or an unprintable character (an RTL override) in Markdown."""
    by_resource = sg_finding("sg-0123456789abcdef0" + value)
    arn = by_resource["Resources"][0]["Id"]
    by_control = sg_finding("sg-0123456789abcdef0")
    by_control["Compliance"]["SecurityControlId"] = value
    securityhub = aws.admin_client("securityhub", "us-east-1")
    import_findings(securityhub, [by_resource, by_control])
    ids = [by_resource["Id"], by_control["Id"]]
    settings, store = Settings(data_dir=str(tmp_path)), RunStore(tmp_path / "run")
    by_id = QueryPlan(tuple(queries_by_id(ids)))
    assert ingest(settings, aws, registry(), store, by_id, named=ids)["rejected"] == 2
    write_back(settings, aws, store, "run", load_outcomes(store))
    report, text = write(store, "run")

    errors = {r["finding_id"]: r["error"] for r in report["rejected"]}
    assert repr(arn) in errors[by_resource["Id"]]
    assert value in errors[by_control["Id"]]
    outcomes = {o["finding_id"]: o for o in store.read_json("report.json")["outcomes"]}
    assert outcomes[by_resource["Id"]]["resource_arn"] == arn
    assert outcomes[by_control["Id"]]["control_id"] == value
    assert {o["message"] for o in outcomes.values()} == set(errors.values())

    notes = {f["Id"]: f for f in iter_findings(securityhub, queries_by_id(ids))}
    for finding_id, error in errors.items():
        assert notes[finding_id]["Workflow"]["Status"] == "NOTIFIED"
        note = notes[finding_id]["Note"]["Text"]
        assert note == clip_note("ASR: not remediated: " + error, " [run run]") and len(note) <= 512
    if len(value) < 100:
        assert repr(arn) in notes[by_resource["Id"]]["Note"]["Text"]
        assert value in notes[by_control["Id"]]["Note"]["Text"]

    page = (tmp_path / "run" / "report.html").read_text()
    assert html.escape(value) in page
    assert "<script>" not in page and "<b>" not in page

    lines = text.splitlines()
    rows = lines[lines.index("") + 3 : lines.index("## Not acted on") - 1]
    assert len(rows) == 4 and len({markdown_separators(row) for row in rows}) == 1
    # Shown on one line, with what is not printable (a newline, an RTL override) as spaces.
    shown = "".join(c if c.isprintable() else " " for c in value)
    # ... and what opens a link, an image or HTML (and, in a table cell, a |) backslash-escaped.
    assert re.sub(r"[\[\]<>|]", r"\\\g<0>", " ".join(shown.split())) in text
    assert all(c.isprintable() for line in text.splitlines() for c in line)
    listed = lines[lines.index("## Not acted on") + 2 :]
    assert len(listed) == 2 and all(line.startswith("- arn:aws:securityhub:") for line in listed)


def test_hostile_run_ids_cannot_escape_the_data_dir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = RunStore.for_run(str(tmp_path), "asr_sweep", "../../etc/passwd\n$(id)")
    store.write_json("report.json", {"x": 1})
    written = list(tmp_path.rglob("report.json"))
    assert len(written) == 1 and tmp_path in written[0].parents
    assert json.loads(written[0].read_text()) == {"x": 1}


@pytest.mark.parametrize("run_id", [".", ".."])
def test_a_run_id_of_dots_gets_a_folder_of_its_own(tmp_path, run_id: str) -> None:  # type: ignore[no-untyped-def]
    """Airflow takes a run id `.`: as a folder it would be the DAG's folder, and a plan there
    would clear other runs' folders (named `batches`, `outcomes`)."""
    dag_folder = tmp_path / "asr_remediate"
    other = RunStore.for_run(str(tmp_path), "asr_remediate", "outcomes")
    other.write_json("run.json", {"run": "outcomes"})
    store = RunStore.for_run(str(tmp_path), "asr_remediate", run_id)
    assert store.root.parent == dag_folder and store.root.name not in (".", "..", "")
    store.write_json("run.json", {"run": run_id})
    assert json.loads(other.path("run.json").read_text()) == {"run": "outcomes"}
    assert not (dag_folder / "run.json").exists()


def test_a_local_run_file_is_synced_before_it_replaces_the_old_one(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A host that loses power after a task succeeded must find its outcomes, not an empty file:
    the new file is on disk before the rename, and the rename before the write returns."""
    import os

    from asr import store as store_module

    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor: int) -> None:
        events.append("fsync dir" if os.path.isdir(f"/proc/self/fd/{descriptor}") else "fsync file")
        real_fsync(descriptor)

    def replace(source: str, target: str) -> None:
        events.append("rename")
        real_replace(source, target)

    monkeypatch.setattr(store_module.os, "fsync", fsync)
    monkeypatch.setattr(store_module.os, "replace", replace)
    store = RunStore.for_run(str(tmp_path), "asr_sweep", "run-1")
    store.write_lines("outcomes/b.jsonl", [{"status": "REMEDIATED"}])
    assert events == ["fsync file", "rename", "fsync dir"]
    assert list(store.read_lines("outcomes/b.jsonl")) == [{"status": "REMEDIATED"}]
