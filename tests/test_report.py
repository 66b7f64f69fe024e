"""The run report: JSON, Markdown, the HTML page (escaped, self-contained) and the summary,
on local disk and in object storage."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from asr import report
from asr.remediate import Outcome
from asr.store import RunStore
from asr.writeback import written

RUN_ID = "manual__2026-01-01T00:00:00+00:00"
SVG = "{http://www.w3.org/2000/svg}"
FINDING = "arn:aws:securityhub:us-east-1:222222222222:security-control/EC2.13/finding/0f1e-2d3c"
HOSTILE = "sg-\"'><script>alert(1)</script>"


def outcome(n: int, status: str, **changes: Any) -> dict[str, Any]:
    return {
        "finding_id": f"{FINDING}-{n}",
        "product_arn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
        "control_id": "EC2.13",
        "playbook": "EC2.13",
        "account_id": "222222222222",
        "region": "us-east-1",
        "resource_arn": f"arn:aws:ec2:us-east-1:222222222222:security-group/sg-{n}",
        "resource_id": f"sg-{n}",
        "status": status,
        "message": "revoked tcp/22 from 0.0.0.0/0",
        "before": None,
        "after": None,
    } | changes


OUTCOMES = [
    outcome(
        1,
        "REMEDIATED",
        before={"IpPermissions": [{"FromPort": 22, "CidrIp": "0.0.0.0/0"}]},
        after={"IpPermissions": []},
    ),
    outcome(2, "REMEDIATED", account_id="333333333333"),
    outcome(3, "FAILED", resource_id=HOSTILE, message='AccessDenied: "déjà vu" <b>not</b> allowed ✓'),
    outcome(4, "DRY_RUN", control_id="IAM.7", playbook="IAM.7"),
]
REJECTED = [{"finding_id": "arn:aws:securityhub:x", "error": "no playbook for <FOO.1> & friends"}]
WRITEBACK = {
    "updated": 3,
    "failed": [
        {
            "FindingIdentifier": {"Id": f"{FINDING}-2", "ProductArn": "p"},
            "ErrorCode": "FindingNotFound",
            "ErrorMessage": "Finding <gone>",
        }
    ],
    "left_alone": [{"finding_id": f"{FINDING}-9", "now": "SUPPRESSED, ACTIVE"}],
    # What Security Hub shows of each outcome write-back gave it (sg-2's update was refused).
    "settled": {o["finding_id"]: written(Outcome(**o), RUN_ID) for o in (OUTCOMES[0], OUTCOMES[2])},
}


def seed(store: RunStore, outcomes: list[dict[str, Any]] = OUTCOMES) -> None:
    store.write_json("ingest.json", {"began": "2026-01-01T00:00:00+00:00", "dry_run": False})
    store.write_lines("outcomes/EC2.13-0000.jsonl", outcomes)
    store.write_lines("rejected.jsonl", REJECTED)
    store.write_json("writeback.json", WRITEBACK)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    store = RunStore.for_run(str(tmp_path), "asr_sweep", RUN_ID)
    seed(store)
    return store


def page(text: str) -> ET.Element:
    """The page parsed strictly: the markup must be well-formed for this to work at all."""
    doctype, body = text.split("\n", 1)
    assert doctype == "<!DOCTYPE html>"
    return ET.fromstring(body)


def section_rows(root: ET.Element, heading: str) -> list[list[str]]:
    """The body rows of the first table after the heading, as the cells' text."""
    elements = list(root.iter())
    start = next(i for i, e in enumerate(elements) if e.tag == "h2" and e.text == heading)
    table = next(e for e in elements[start:] if e.tag == "table")
    return [["".join(cell.itertext()) for cell in row] for row in table.find("tbody") or []]


def test_json_and_markdown_are_written_as_before(store: RunStore) -> None:
    built, markdown = report.write(store, RUN_ID)
    assert store.read_json("report.json") == json.loads(json.dumps(built))
    assert built["totals"] == {"REMEDIATED": 2, "FAILED": 1, "DRY_RUN": 1, "REJECTED": 1}
    # The rejected finding has no outcome: rejected.jsonl does not say its control or account.
    assert built["by_control"] == {
        "EC2.13": {"REMEDIATED": 2, "FAILED": 1},
        "IAM.7": {"DRY_RUN": 1},
        "(unknown)": {"REJECTED": 1},
    }
    assert built["by_account"]["333333333333"] == {"REMEDIATED": 1}
    assert built["picks_not_found"] == 0
    # sg-2's update was refused; a dry run writes nothing
    assert [o["workflow_status"] for o in built["outcomes"]] == ["RESOLVED", None, "NOTIFIED", None]
    assert store.path("report.md").read_text(encoding="utf-8") == markdown
    assert report.location(store, "report.md") == str(store.path("report.md"))
    assert markdown.startswith(
        f"# ASR run {RUN_ID}\n\nTotals: REMEDIATED: 2, FAILED: 1, REJECTED: 1, DRY_RUN: 1"
    )
    assert built["writeback_pending"] == 0  # written, refused (sg-2) or not for Security Hub (dry)
    assert "- arn:aws:securityhub:x: no playbook for \\<FOO.1\\> & friends" in markdown


def test_html_escapes_everything_and_loads_nothing(store: RunStore) -> None:
    report.write(store, RUN_ID)
    text = store.path("report.html").read_text(encoding="utf-8")
    root = page(text)
    assert "<script" not in text and "<b>" not in text and "<FOO.1>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "déjà vu" in text and "✓" in text
    assert not [e for e in root.iter() if e.get("src") or e.tag in ("script", "link", "iframe", "img")]
    hrefs = [e.get("href") for e in root.iter("a")]
    assert hrefs and all(h.startswith("https://us-east-1.console.aws.amazon.com/securityhub/") for h in hrefs)
    assert root.find("head/title").text == f"ASR run {RUN_ID}"
    assert root.find("body/header/h1/code").text == RUN_ID


def test_html_lists_every_finding_with_the_problems_first(store: RunStore) -> None:
    report.write(store, RUN_ID)
    root = page(store.path("report.html").read_text(encoding="utf-8"))
    rows = section_rows(root, "Findings")
    assert [(r[1], r[3], r[4]) for r in rows] == [
        ("222222222222", HOSTILE, "FAILED"),
        ("222222222222", "sg-1", "REMEDIATED"),
        ("333333333333", "sg-2", "REMEDIATED"),
        ("222222222222", "sg-4", "DRY_RUN"),
    ]
    # What Security Hub was told of each: written, refused, or nothing (a dry run).
    assert [r[5] for r in rows] == ["NOTIFIED", "RESOLVED", "refused: FindingNotFound", "not written"]
    assert rows[0][6] == 'AccessDenied: "déjà vu" <b>not</b> allowed ✓'
    assert rows[1][7] == (
        '{"IpPermissions": [{"CidrIp": "0.0.0.0/0", "FromPort": 22}]} \u2192 {"IpPermissions": []}'
    )
    assert rows[3][0] == "IAM.7" and rows[3][7] == "\u2014"
    assert section_rows(root, "Not acted on") == [
        ["arn:aws:securityhub:x", "no playbook for <FOO.1> & friends"]
    ]
    assert section_rows(root, "Security Hub did not take these updates") == [
        [f"{FINDING}-2", "FindingNotFound", "Finding <gone>"]
    ]
    assert section_rows(root, report.LEFT_ALONE) == [[f"{FINDING}-9", "SUPPRESSED, ACTIVE"]]
    # REMEDIATED, FAILED, REJECTED, DRY_RUN, total: the rejected finding's account is not known.
    assert section_rows(root, "By account") == [
        ["222222222222", "1", "1", "0", "1", "3"],
        ["333333333333", "1", "0", "0", "0", "1"],
        ["(unknown)", "0", "0", "1", "0", "1"],
    ]


def test_chart_has_a_bar_per_outcome_scaled_and_coloured(store: RunStore) -> None:
    report.write(store, RUN_ID)
    svg = page(store.path("report.html").read_text(encoding="utf-8")).find(f".//{SVG}svg")
    bars = [(int(r.get("width")), r.get("fill")) for r in svg.iter(f"{SVG}rect")]
    labels = [t.text for t in svg.iter(f"{SVG}text")]
    assert labels == ["REMEDIATED", "2", "FAILED", "1", "REJECTED", "1", "DRY_RUN", "1"]
    assert bars == [
        (380, report.STATUS_COLOURS["REMEDIATED"]),
        (190, report.STATUS_COLOURS["FAILED"]),
        (190, report.STATUS_COLOURS["REJECTED"]),
        (190, report.STATUS_COLOURS["DRY_RUN"]),
    ]


def test_unknown_statuses_are_shown_in_the_neutral_colour(tmp_path: Path) -> None:
    store = RunStore.for_run(str(tmp_path), "asr_sweep", RUN_ID)
    seed(store, [outcome(1, "WAITING_FOR_<MOON>"), outcome(2, "REMEDIATED")])
    built, _ = report.write(store, RUN_ID)
    assert built["outcomes"][0]["workflow_status"] is None
    root = page(store.path("report.html").read_text(encoding="utf-8"))
    svg = root.find(f".//{SVG}svg")
    assert [r.get("fill") for r in svg.iter(f"{SVG}rect")][-1] == report.NEUTRAL
    badges = {e.text: e.get("style") for e in root.iter("span")}
    assert badges["WAITING_FOR_<MOON>"] == f"border-color:{report.NEUTRAL}"
    assert badges["REMEDIATED"] == f"border-color:{report.STATUS_COLOURS['REMEDIATED']}"


def test_console_link_encodes_the_finding_id_as_the_console_does() -> None:
    assert report.console_url("arn:aws:securityhub:eu-west-1:1/x y", "eu-west-1") == (
        "https://eu-west-1.console.aws.amazon.com/securityhub/home?region=eu-west-1"
        "#/findings?search=Id%3D%255Coperator%255C%253AEQUALS%255C%253A"
        "arn%253Aaws%253Asecurityhub%253Aeu-west-1%253A1%252Fx%2520y"
    )
    assert report.console_url("arn:aws-cn:securityhub:cn-north-1:1:x", "cn-north-1").startswith(
        "https://console.amazonaws.cn/securityhub/home?region=cn-north-1#"
    )
    assert report.console_url("arn:aws:securityhub:x", 'not a region"><') is None
    assert report.console_url("", "us-east-1") is None


def test_summary_counts_and_lists_what_needs_a_person(store: RunStore) -> None:
    built, _ = report.write(store, RUN_ID)
    assert report.summary(built).splitlines() == [
        f"ASR run {RUN_ID}: 2 remediated, 1 failed, 1 rejected, 1 dry run",
        "Security Hub: 3 findings updated; updates not taken: 1; "
        "left alone, closed, changed or not found meanwhile: 1",
        "Needs attention (1):",
        f'- EC2.13 222222222222 us-east-1 {HOSTILE}: AccessDenied: "déjà vu" <b>not</b> allowed ✓',
        "Not acted on (1):",
        "- arn:aws:securityhub:x: no playbook for <FOO.1> & friends",
    ]


def test_a_fix_that_left_something_to_check_is_listed_apart_everywhere(tmp_path: Path) -> None:
    """Its finding is RESOLVED, where nobody looks: the report and the notification list it."""
    store = RunStore.for_run(str(tmp_path), "asr_sweep", RUN_ID)
    check = "bucket partner-media refuses this account (403): check who owns it"
    fixed = outcome(5, "REMEDIATED", message=f"repointed; {check}", caveat=check)
    twin = fixed | {"finding_id": "arn:aws:securityhub:us-east-1:222222222222:subscription/cis/5"}
    seed(store, [*OUTCOMES, fixed, twin])
    built, markdown = report.write(store, RUN_ID)
    arn = "arn:aws:ec2:us-east-1:222222222222:security-group/sg-5"
    section = markdown.split(f"## {report.TO_CHECK}\n\n", 1)[1].split("\n\n", 1)[0]
    assert section == f"- {arn}: {check}", "that fix alone, once though two standards' findings name it"
    lines = report.summary(built).splitlines()
    at = lines.index(f"{report.TO_CHECK} (1):")
    assert lines[at + 1] == f"- EC2.13 222222222222 us-east-1 sg-5: {check}"
    root = page(store.path("report.html").read_text(encoding="utf-8"))
    assert section_rows(root, report.TO_CHECK) == [[arn, check]]


def test_summary_stays_short_for_a_bad_run(tmp_path: Path) -> None:
    store = RunStore.for_run(str(tmp_path), "asr_sweep", RUN_ID)
    failed = [outcome(n, "FAILED", message="x" * 500) for n in range(40)]
    to_check = [outcome(n, "REMEDIATED", caveat="y" * 500) for n in range(40, 80)]
    seed(store, failed + to_check)
    lines = report.summary(report.build(store, RUN_ID)).splitlines()
    assert len(lines) <= 26
    assert f"{report.TO_CHECK} (40):" in lines
    assert "Needs attention (40):" in lines
    assert "  ...and 32 more (see the report)" in lines
    assert max(len(line) for line in lines) <= report.SUMMARY_WIDTH


def test_headline_shortens_the_run_id_not_the_counts() -> None:
    built = {"run_id": "r" * 150, "totals": {"FAILED": 2, "ALREADY_COMPLIANT": 5}}
    line = report.headline(built, limit=99)
    assert len(line) == 99
    assert line.endswith("...: 5 already compliant, 2 failed")
    assert report.headline({"run_id": "r", "totals": {}}) == "ASR run r: nothing to do"
    statuses = ("REMEDIATED", "ALREADY_COMPLIANT", "FAILED", "NOT_RUN", "REJECTED", "NOT_APPROVED", "DRY_RUN")
    crowded = report.headline({"run_id": "r" * 40, "totals": dict.fromkeys(statuses, 123456)}, limit=99)
    assert len(crowded) <= 99 and crowded.endswith(", ...")
    assert crowded.split(": ", 1)[1].startswith("123456 remediated, 123456 already compliant")


def test_report_round_trips_through_object_storage(clean_aws: str) -> None:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    s3 = S3Hook(aws_conn_id="aws_default")
    s3.create_bucket("asr-reports")
    store = RunStore.for_run("s3://asr-reports/runs", "asr_sweep", RUN_ID, "aws_default")
    seed(store)
    built, markdown = report.write(store, RUN_ID)

    prefix = "runs/asr_sweep/manual__2026-01-01T00_00_00_00_00"
    assert sorted(s3.list_keys("asr-reports", prefix=f"{prefix}/report")) == [
        f"{prefix}/report.html",
        f"{prefix}/report.json",
        f"{prefix}/report.md",
    ]
    assert json.loads(s3.read_key(f"{prefix}/report.json", "asr-reports")) == json.loads(json.dumps(built))
    assert s3.read_key(f"{prefix}/report.md", "asr-reports") == markdown
    page_object = s3.get_key(f"{prefix}/report.html", "asr-reports")
    assert page_object.content_type == "text/html; charset=utf-8"
    html_text = page_object.get()["Body"].read().decode("utf-8")
    assert html_text == report.html_page(built)
    assert section_rows(page(html_text), "Findings")[0][3] == HOSTILE
    assert report.location(store) == f"s3://asr-reports/{prefix}/report.html"


def record(n: int) -> dict[str, Any]:
    """The routing record ingest wrote for the finding of ``outcome(n)``."""
    routed = {k: v for k, v in outcome(n, "").items() if k not in ("status", "message", "before", "after")}
    return routed | {"standard": "", "standard_control_id": "EC2.13", "resource_type": "AwsEc2SecurityGroup"}


def test_a_routed_finding_whose_task_did_not_finish_is_reported_not_run(store: RunStore) -> None:
    store.write_lines("records.jsonl", [record(n) for n in (1, 2, 3, 5, 6)])
    built, markdown = report.write(store, RUN_ID)
    assert built["totals"]["NOT_RUN"] == 2
    missing = [o for o in built["outcomes"] if o["status"] == "NOT_RUN"]
    assert [(o["resource_id"], o["workflow_status"]) for o in missing] == [("sg-5", None), ("sg-6", None)]
    assert "did not finish" in missing[0]["message"]
    assert "sg-5" in report.summary(built) and "2 not run" in report.headline(built)
    assert "NOT_RUN: 2" in markdown


def test_a_finding_write_back_did_not_reach_has_no_workflow_status(tmp_path: Path) -> None:
    store = RunStore.for_run(str(tmp_path), "asr_sweep", RUN_ID)
    store.write_lines("outcomes/EC2.13-0000.jsonl", [outcome(1, "REMEDIATED"), outcome(9, "REMEDIATED")])
    assert [o["workflow_status"] for o in report.build(store, RUN_ID)["outcomes"]] == [None, None]
    store.write_json("writeback.json", WRITEBACK)  # sg-9 was left alone: a person suppressed it
    assert [o["workflow_status"] for o in report.build(store, RUN_ID)["outcomes"]] == ["RESOLVED", None]


def test_a_rerun_fix_whose_second_write_back_did_not_finish_shows_no_status(tmp_path: Path) -> None:
    """A cleared run reruns a fix, then write-back again: if that pass dies, the first pass's
    writeback.json stays, and the new outcome was never written. The report must not say it
    was, and the report step fails so that clearing it runs write-back again."""
    from asr import sweep

    store = RunStore.for_run(str(tmp_path), "asr_sweep", RUN_ID)
    store.write_json(sweep.INGESTED, {"began": "2026-01-01T00:00:00+00:00", "dry_run": False})
    store.write_lines(
        "outcomes/EC2.13-0000.jsonl", [OUTCOMES[0], outcome(3, "REMEDIATED", message="fixed on rerun")]
    )
    store.write_json("writeback.json", WRITEBACK)
    built = report.build(store, RUN_ID)
    assert [o["workflow_status"] for o in built["outcomes"]] == ["RESOLVED", None]
    assert built["writeback_pending"] == 1 and "not written yet: 1" in report.summary(built)
    reason = sweep.unfinished(store, 0, written_back=True, unwritten=built["writeback_pending"])
    assert reason == "1 outcomes are not written to Security Hub: write-back did not finish"


def test_a_run_whose_ingest_did_not_finish_reads_incomplete_not_nothing_to_do(tmp_path: Path) -> None:
    store = RunStore.for_run(str(tmp_path), "asr_sweep", RUN_ID)
    built, markdown = report.write(store, RUN_ID)
    assert built["unfinished"] == "ingest did not finish"
    assert report.headline(built) == f"ASR run {RUN_ID}: INCOMPLETE"
    not_finished = "Not finished: ingest did not finish. Clear the run's failed tasks to finish it."
    assert not_finished in report.summary(built).splitlines()
    assert markdown.startswith(f"# ASR run {RUN_ID}\n\n**{not_finished}**")
    root = page(store.path("report.html").read_text(encoding="utf-8"))
    assert not_finished in ["".join(p.itertext()) for p in root.iter("p")]
    # A run whose fixes did not all finish says so beside its counts.
    seed(store)
    store.write_lines("records.jsonl", [record(n) for n in (1, 2, 3, 7)])
    assert report.headline(report.build(store, RUN_ID)).startswith(
        f"ASR run {RUN_ID}: INCOMPLETE, 2 remediated"
    )


def test_a_dry_run_says_so_everywhere_a_person_reads_it(tmp_path: Path) -> None:
    """All compliant or failed, a dry run's report read like a real run whose write-back did nothing."""
    from asr import sweep

    store = RunStore.for_run(str(tmp_path), "asr_sweep", RUN_ID)
    store.write_json(sweep.INGESTED, {"began": "2026-01-01T00:00:00+00:00", "dry_run": True})
    store.write_lines("outcomes/EC2.13-0000.jsonl", [outcome(1, "ALREADY_COMPLIANT"), outcome(2, "FAILED")])
    store.write_lines("outcomes/EC2.13-0001.jsonl", [outcome(3, "DRY_RUN"), outcome(4, "REJECTED")])
    built, markdown = report.write(store, RUN_ID)
    assert built["dry_run"] and report.headline(built, 100).startswith("ASR dry run ")
    assert built["writeback_pending"] == 0  # nothing is written in a dry run: nothing waits
    assert markdown.startswith(f"# ASR dry run {RUN_ID}\n\n{report.DRY_RUN_NOTE}")
    assert report.DRY_RUN_NOTE in report.summary(built) and "findings updated" not in report.summary(built)
    root = page(store.path("report.html").read_text(encoding="utf-8"))
    assert root.find("head/title").text == f"ASR dry run {RUN_ID}"
    assert report.DRY_RUN_NOTE in "".join(root.find("body/header/p").itertext())


def test_a_finding_s_own_text_cannot_break_the_markdown_table() -> None:
    """A rejection reason quotes the finding's control id, and a message may hold anything."""
    from asr.report import table

    rows = [
        ["EC2.13\n# heading", "a | b\x1b[2J\x00", "ok"],
        ["", "no control id", "REJECTED"],
        ["# x", "> y", "z"],
    ]
    lines = table(rows, ("control", "message", "status")).splitlines()
    assert len(lines) == 5
    cells = [cell.strip() for cell in re.split(r"(?<!\\) \| ", lines[2].strip("| "))]
    assert cells == ["EC2.13 # heading", "a \\| b \\[2J", "ok"]  # no escape sequence reaches a terminal
    # A row starting with spaces (an empty first cell) would be read as code; with "#" as a heading.
    assert all(line.startswith("| ") and line.endswith(" |") for line in lines)


# Links, an image, raw HTML and an autolink, one escaped already (a backslash must not undo
# asr's escape), and a name with underscores: text from outside asr, in every part of report.md.
INJECTED = (
    "[Approve here](https://evil.example/login) ![t](https://evil.example/pixel.png) "
    "<img src=x onerror=alert(1)> <https://evil.example/auto> \\[Undo\\](https://evil.example/undo) "
    "set ASR_REGIONS (a-b.c)"
)


def test_markdown_shows_text_from_outside_asr_as_text_never_as_links_images_or_html(tmp_path: Path) -> None:
    """An AWS error message, a fix's caveat (a bucket's name), a rejection's reason (a finding's
    field) became a live link, a tracking image or HTML where report.md is rendered."""
    from markdown_it import MarkdownIt

    store = RunStore.for_run(str(tmp_path), "asr_sweep", RUN_ID)
    hostile = [
        outcome(1, "REMEDIATED", message=f"repointed; {INJECTED}", caveat=INJECTED),
        outcome(2, "FAILED", control_id=INJECTED, message=INJECTED),
    ]
    seed(store, hostile)
    store.write_lines("rejected.jsonl", [{"finding_id": INJECTED, "error": INJECTED}])
    store.write_json("unsupported.json", {INJECTED: 2})
    store.write_json("warnings.json", [INJECTED])
    failure = {
        "FindingIdentifier": {"Id": f"{FINDING}-2"},
        "ErrorCode": "InvalidInput",
        "ErrorMessage": INJECTED,
    }
    store.write_json(
        "writeback.json",
        WRITEBACK | {"failed": [failure], "left_alone": [{"finding_id": INJECTED, "now": INJECTED}]},
    )
    _, markdown = report.write(store, RUN_ID)
    # Read as plain text in the task log: only what opens a link, an image or HTML is escaped.
    assert "set ASR_REGIONS (a-b.c)" in markdown and "\\_" not in markdown

    plain = MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)
    assert "<a " not in plain and "<img" not in plain, "no link, no image, no HTML"
    shown = html.unescape(re.sub(r"<[^>]+>", "", plain))
    # As written: in the findings table (two messages, a control id), the checks, the
    # rejections (id and reason), the unsupported controls, the settings, and what was left
    # alone (id and state). What Security Hub did not take is its record, quoted (repr).
    assert shown.count(INJECTED) == 10
    # GitHub-flavoured, a bare URL becomes a link too: it shows where it goes, as the text says.
    gfm = MarkdownIt("gfm-like", {"html": True}).render(markdown)
    assert "<img" not in gfm
    links = re.findall(r"<a [^>]*>.*?</a>", gfm)
    assert links
    for link in links:
        href, text = re.fullmatch(r'<a href="([^"]+)">([^<]*)</a>', link).groups()
        assert unquote(html.unescape(href)) == html.unescape(text), link


def test_an_update_refused_for_now_is_counted_not_written_yet_only(tmp_path: Path) -> None:
    """Security Hub refused sg-2's update for now (it is written when write-back is tried
    again) and sg-5's for good: each is counted once, and every view says the same."""
    store = RunStore.for_run(str(tmp_path), "asr_sweep", RUN_ID)
    seed(store, [*OUTCOMES, outcome(5, "FAILED")])
    refused = [
        {
            "FindingIdentifier": {"Id": f"{FINDING}-2"},
            "ErrorCode": "ConcurrentUpdateError",
            "ErrorMessage": "busy",
        },
        {"FindingIdentifier": {"Id": f"{FINDING}-5"}, "ErrorCode": "FindingNotFound", "ErrorMessage": "gone"},
    ]
    store.write_json("writeback.json", WRITEBACK | {"failed": refused, "left_alone": []})
    built, markdown = report.write(store, RUN_ID)

    assert report.summary(built).splitlines()[1] == (
        "Security Hub: 3 findings updated; updates not taken: 1; not written yet: 1"
    )
    assert built["writeback_failures"] == refused[1:]
    assert built["writeback_refused_for_now"] == refused[:1]
    assert built["writeback_pending"] == 1
    told = {o["resource_id"]: o["security_hub"] for o in built["outcomes"]}
    assert told["sg-2"] == "not written yet (refused for now: ConcurrentUpdateError)"
    assert told["sg-5"] == "refused: FindingNotFound"

    def listed(heading: str) -> list[str]:
        return markdown.split(f"## {heading}\n\n", 1)[1].split("\n\n", 1)[0].splitlines()

    assert len(listed(report.NOT_TAKEN)) == 1 and "FindingNotFound" in listed(report.NOT_TAKEN)[0]
    assert (
        len(listed(report.REFUSED_FOR_NOW)) == 1 and "ConcurrentUpdate" in listed(report.REFUSED_FOR_NOW)[0]
    )
    root = page(store.path("report.html").read_text(encoding="utf-8"))
    assert section_rows(root, report.NOT_TAKEN) == [[f"{FINDING}-5", "FindingNotFound", "gone"]]
    assert section_rows(root, report.REFUSED_FOR_NOW) == [[f"{FINDING}-2", "ConcurrentUpdateError", "busy"]]


def test_picks_no_finding_answers_are_counted_apart_from_the_findings(tmp_path: Path) -> None:
    """A finding id a person typed that was not found, and a chosen resource no finding names,
    are no findings: 3 findings read "5 findings", REJECTED 3 beside a REJECTED 1 by control."""
    from asr import sweep

    store = RunStore.for_run(str(tmp_path), "asr_remediate", RUN_ID)
    store.write_json(sweep.INGESTED, {"began": "2026-01-01T00:00:00+00:00", "dry_run": False})
    named = outcome(3, "REJECTED", message="no playbook fixes control Foo.1")
    fixed = [outcome(1, "REMEDIATED"), outcome(2, "REMEDIATED", account_id="333333333333")]
    store.write_lines("outcomes/EC2.13-0000.jsonl", fixed)
    store.write_lines(sweep.NOT_ACTED, [named])
    picks = [
        {"finding_id": "arn:typo", "error": sweep.NOT_FOUND, sweep.PICK: True},
        {
            "finding_id": "",
            "resource": "sg-0abc",
            "error": f"resource sg-0abc: {sweep.NO_SUCH_RESOURCE}",
            sweep.PICK: True,
        },
    ]
    store.write_lines(
        "rejected.jsonl", [{"finding_id": named["finding_id"], "error": named["message"]}, *picks]
    )
    settled = {o["finding_id"]: written(Outcome(**o), RUN_ID) for o in (*fixed, named)}
    store.write_json("writeback.json", {"updated": 3, "settled": settled, "failed": [], "left_alone": []})
    built, markdown = report.write(store, RUN_ID)

    assert built["totals"] == {"REMEDIATED": 2, "REJECTED": 1}
    assert built["picks_not_found"] == 2
    for by in ("by_control", "by_account"):
        assert sum(n for row in built[by].values() for n in row.values()) == 3, by
    assert built["by_control"] == {"EC2.13": {"REMEDIATED": 2, "REJECTED": 1}}
    assert report.headline(built) == f"ASR run {RUN_ID}: 2 remediated, 1 rejected, 2 picks not found"
    assert "Totals: REMEDIATED: 2, REJECTED: 1, picks not found: 2\n" in markdown
    assert len(markdown.split("## Not acted on\n\n", 1)[1].strip().splitlines()) == 3  # listed, as before
    root = page(store.path("report.html").read_text(encoding="utf-8"))
    assert " \u00b7 3 findings \u00b7 2 picks not found \u00b7 " in "".join(
        root.find("body/header/p").itertext()
    )
    assert [r[1] for r in section_rows(root, "Outcomes")] == ["2", "1"]
    assert len(section_rows(root, "Not acted on")) == 3
    assert "Not acted on (3):" in report.summary(built)

    # A run whose only pick matched nothing does not say "nothing to do".
    store.write_lines(sweep.NOT_ACTED, [])
    store.write_lines("outcomes/EC2.13-0000.jsonl", [])
    store.write_lines("rejected.jsonl", picks[1:])
    alone = report.build(store, RUN_ID)
    assert (alone["totals"], report.headline(alone)) == ({}, f"ASR run {RUN_ID}: 1 pick not found")


def test_what_was_not_acted_on_is_named_in_every_view_and_only_findings_are_counted(store: RunStore) -> None:
    """A resource a person chose that no finding names, and an events message that named no
    finding, are no findings: listed by what they are, counted in no finding total."""
    from asr.sweep import MESSAGE, PICK, REJECTED

    arn = "arn:aws:ec2:us-east-1:222222222222:security-group/sg-gone"
    store.write_lines(
        REJECTED,
        [
            {"finding_id": "f-9", "error": "account 999999999999 is not allowed"},
            {"finding_id": "", "resource": arn, "error": "no finding names it", PICK: True},
            {"finding_id": "", MESSAGE: "m-1", "error": "not a Security Hub findings event: KeyError"},
        ],
    )
    built, markdown = report.write(store, RUN_ID)

    assert [r["named"] for r in built["rejected"]] == ["f-9", f"resource {arn}", "SQS message m-1"]
    assert (built["totals"]["REJECTED"], built["picks_not_found"]) == (1, 1)
    assert "- SQS message m-1: not a Security Hub findings event: KeyError" in markdown
    assert f"- resource {arn}: no finding names it" in markdown
    assert "(no id)" not in markdown + report.summary(built)
    assert "- SQS message m-1: not a Security Hub" in report.summary(built)
    page = report.html_page(built)
    assert "<td><code>SQS message m-1</code></td>" in page and '<th scope="col">what</th>' in page
    assert report.worth_telling(built)
    # Counted apart from the findings, in every view's counts.
    assert built["messages_not_read"] == 1
    assert "picks not found: 1, SQS messages not read: 1\n" in markdown
    assert report.headline(built).endswith("1 pick not found, 1 SQS message not read")
    assert "\u00b7 1 pick not found \u00b7 1 SQS message not read \u00b7" in page


def test_a_run_given_only_messages_it_could_not_read_says_so_in_its_headline(tmp_path: Path) -> None:
    """The summary of such a run goes out (someone sends junk to the queue): its subject must
    not read "nothing to do" above a list of what was not read."""
    from asr.sweep import MESSAGE, REJECTED

    store = RunStore.for_run(str(tmp_path), "asr_events", RUN_ID)
    store.write_lines(REJECTED, [{"finding_id": "", MESSAGE: f"m-{n}", "error": "KeyError"} for n in (1, 2)])
    built, markdown = report.write(store, RUN_ID)
    assert report.headline(built).endswith(", 2 SQS messages not read")  # not "nothing to do"
    assert "Totals: SQS messages not read: 2\n" in markdown
