"""Hostile input: quotes, newlines, JSON and shell metacharacters, huge fields, unicode.

Values from findings are validated by pattern and only ever carried as data (JSON,
HTML-escaped pages, API parameters), never interpolated into anything executed.
"""

from __future__ import annotations

import json
import time

import pytest

from asr.findings import FindingError, parse_finding
from asr.local.seed import Seeded, finding
from asr.playbooks import registry
from asr.remediate import Outcome, Result, Status
from asr.store import RunStore
from asr.writeback import note_for

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


@pytest.mark.parametrize("value", ["ok'\"; $(id)", "line\nbreak", "emoji 🔥 and RTL \u202e", "x" * 100_000])
def test_hostile_text_is_carried_as_data(tmp_path, value: str) -> None:  # type: ignore[no-untyped-def]
    raw = sg_finding("sg-0123456789abcdef0")
    raw["Title"] = value
    raw["Description"] = value
    record = parse_finding(raw, registry())
    outcome = Outcome.of(record, Result(Status.FAILED, value))
    note = note_for(outcome, "run")
    assert len(note) <= 512 and note.endswith("[run run]")
    store = RunStore(tmp_path)
    store.write_lines("outcomes/x.jsonl", [outcome.to_dict()])
    [row] = list(store.read_lines("outcomes/x.jsonl"))
    assert row["message"] == value


def test_hostile_run_ids_cannot_escape_the_data_dir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = RunStore.for_run(str(tmp_path), "asr_sweep", "../../etc/passwd\n$(id)")
    store.write_json("report.json", {"x": 1})
    written = list(tmp_path.rglob("report.json"))
    assert len(written) == 1 and tmp_path in written[0].parents
    assert json.loads(written[0].read_text()) == {"x": 1}
