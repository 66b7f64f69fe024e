"""The whole catalogue: every fix end to end in one sweep, and the coverage table."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from asr import coverage, local
from asr.aws import Clients
from asr.config import Settings
from asr.local import MEMBER_ACCOUNT
from asr.local.request_log_ext import is_write
from asr.local.seed import finding, import_findings, seed_one
from asr.playbooks import registry
from asr.store import RunStore

REGION = "us-east-1"


def test_committed_coverage_table_matches_the_playbooks() -> None:
    assert coverage.TABLE.read_text() == coverage.render(registry()), "run: make coverage"


def test_coverage_lists_every_reference_control_id() -> None:
    """Each reference id has one row, and its "fixed" column says what the registry says:
    computed here from the catalogue and the registry, not from what render() used."""
    playbooks = registry()
    catalogue = yaml.safe_load(coverage.CATALOGUE.read_text())
    reference = [i for entry in catalogue["controls"] for i in (entry["control_id"], *entry.get("also", ()))]
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in coverage.render(playbooks).splitlines()
        if line.startswith("| ") and not line.startswith("| control |")
    ]
    assert [row[0] for row in rows] == reference
    fixed = {row[0]: row[2] for row in rows}
    assert fixed == {i: "yes" if playbooks.for_control(i) is not None else "no" for i in reference}


# CloudWatch.1-14's alarms count only on a multi-Region trail logging every management event,
# the trail CloudTrail.1 and .3 find missing: those two are seeded in an account of their own.
TRAIL_MISSING = {"CloudTrail.1", "CloudTrail.3"}
OTHER_MEMBER = "333333333333"


def account_for(control_id: str) -> str:
    return OTHER_MEMBER if control_id in TRAIL_MISSING else MEMBER_ACCOUNT


def report_of(run) -> dict:  # type: ignore[no-untyped-def]
    return RunStore.for_run(Settings.from_env().data_dir, "asr_sweep", run.run_id).read_json("report.json")


@pytest.mark.airflow
def test_every_fix_end_to_end_and_a_second_sweep_writes_nothing(aws, airflow_db: None) -> None:
    from airflow.dag_processing.dagbag import DagBag

    playbooks = list(registry())
    seeded = [
        seed_one(aws, playbook.control_id, account_for(playbook.control_id), REGION) for playbook in playbooks
    ]
    findings = [finding(s) for s in seeded]
    securityhub = aws.admin_client("securityhub", REGION)
    import_findings(securityhub, findings)
    dag = DagBag(dag_folder=str(Path(__file__).resolve().parents[1] / "dags")).dags["asr_sweep"]

    first = dag.test()
    assert first.state == "success"
    report = report_of(first)
    failures = {o["control_id"]: o["message"] for o in report["outcomes"] if o["status"] != "REMEDIATED"}
    assert failures == {}
    assert report["totals"] == {"REMEDIATED": len(playbooks)}
    statuses = {f["Id"]: f["Workflow"]["Status"] for f in securityhub.get_findings()["Findings"]}
    assert set(statuses.values()) == {"RESOLVED"}
    for playbook, made in zip(playbooks, seeded, strict=True):
        action = playbook.build_action()
        resource_id = playbook.extract_resource_id(made.resource_id, made.account_id)
        state = action.read(Clients(aws, made.account_id, REGION), resource_id)
        assert not action.plan(state), f"{playbook.control_id} reads back wrong"

    # Security Hub has not re-evaluated yet, and a person sets the findings back to NEW (a
    # re-import cannot: BatchImportFindings leaves the workflow to customers).
    identifiers = [{"Id": raw["Id"], "ProductArn": raw["ProductArn"]} for raw in findings]
    for start in range(0, len(identifiers), 100):
        securityhub.batch_update_findings(
            FindingIdentifiers=identifiers[start : start + 100], Workflow={"Status": "NEW"}
        )
    local.served_requests(clear=True)
    second = dag.test()
    assert second.state == "success"
    assert report_of(second)["totals"] == {"ALREADY_COMPLIANT": len(playbooks)}
    writes = [c for c in local.served_requests() if is_write(c) and c["service"] != "securityhub"]
    assert writes == [], "a second sweep must not change the fixed resources"
