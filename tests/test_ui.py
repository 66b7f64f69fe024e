"""The Airflow UI as a person uses it: sign in, fill asr_remediate's form, trigger, see it succeed,
read its report in the run's Report tab.

Headless Chromium (the system package, /usr/bin/chromium; .ci/run installs it when
missing) driven by Playwright. A screenshot of the filled form is kept as a test artifact
under .asr/test/artifacts/.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import requests
from helpers import free_port, signed_in_users, world_open
from playwright.sync_api import sync_playwright

from asr import notify, report_view
from asr.local import MEMBER_ACCOUNT
from asr.local.airflow import LocalAirflow
from asr.local.seed import finding, import_findings, seed_one
from asr.store import RunStore

pytestmark = [pytest.mark.airflow, pytest.mark.ui]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / ".asr" / "test" / "artifacts"
REGION = "us-east-1"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_trigger_form_runs_a_remediation(aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Path(CHROMIUM).exists(), "install Debian's chromium (.ci/run does)"
    seeded = [seed_one(aws, "EC2.13", MEMBER_ACCOUNT, REGION, n) for n in range(2)]
    findings = [finding(s) for s in seeded]
    import_findings(aws.admin_client("securityhub", REGION), findings)

    home = tmp_path / "airflow"
    signed_in, passwords = signed_in_users(home, {"operator": "admin"})
    password = passwords["operator"]
    environment = {
        **signed_in,
        "ASR_DATA_DIR": str(tmp_path / "runs"),
        "ASR_LOCAL_PORT": os.environ["ASR_LOCAL_PORT"],
        "ASR_REGIONS": f"{REGION},eu-west-1",  # the form offers these two to pick from
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with LocalAirflow(home, free_port(), environment) as airflow:
        airflow.prepare("asr_remediate")
        airflow.start("api-server", "scheduler", "dag-processor")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{airflow.api_url}/")
            page.get_by_label("Username").fill("operator")
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{airflow.api_url}/")

            page.goto(f"{airflow.api_url}/dags/asr_remediate")
            page.get_by_role("button", name="Trigger").first.click()
            form = page.get_by_role("dialog")
            form.get_by_text("Finding ids", exact=True).wait_for()
            form.locator("textarea").first.fill(findings[0]["Id"])
            form.locator("#element_regions").click()
            assert page.get_by_role("option").all_inner_texts() == [REGION, "eu-west-1"]
            page.get_by_role("option", name=REGION).click()
            form.screenshot(path=str(ARTIFACTS / "asr_remediate-form.png"))
            form.get_by_role("button", name="Trigger").click()
            form.wait_for(state="hidden")
            run = airflow.wait("asr_remediate", timeout=300)
            assert run["state"] == "success"

            queries = RunStore.for_run(str(tmp_path / "runs"), "asr_remediate", run["run_id"]).read_json(
                "queries.json"
            )
            assert REGION in json.dumps(queries) and "eu-west-1" not in json.dumps(queries)
            # The run's report, as a person opens it: the Report tab of the run's page.
            page.goto(f"{airflow.api_url}/dags/asr_remediate/runs/{quote(run['run_id'], safe='')}")
            page.get_by_role("link", name="Report", exact=True).click()
            report = page.frame_locator("iframe[title='Report']")
            row = report.get_by_role("row").filter(has_text=seeded[0].resource_id.rsplit("/", 1)[1])
            assert "REMEDIATED" in row.inner_text()
            # The address the run's SNS summary gives, with [api] base_url set, is this tab's.
            monkeypatch.setenv("AIRFLOW__API__BASE_URL", airflow.api_url)
            emailed = notify.run_page("asr_remediate", run["run_id"], report_view.TAB)
            assert emailed and unquote(page.url) == unquote(emailed)
            page.goto(emailed)
            assert "REMEDIATED" in row.inner_text()
            page.screenshot(path=str(ARTIFACTS / "asr_remediate-report.png"), full_page=True)
            browser.close()

        # The REST API refuses a run naming a region the form does not offer: no run is made.
        token = requests.post(
            f"{airflow.api_url}/auth/token", json={"username": "operator", "password": password}, timeout=30
        ).json()["access_token"]
        refused = requests.post(
            f"{airflow.api_url}/api/v2/dags/asr_remediate/dagRuns",
            json={
                "logical_date": None,
                "conf": {"finding_ids": [findings[1]["Id"]], "regions": ["us-west-2"]},
            },
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert refused.status_code == 400, refused.text
        assert "us-west-2" in refused.text
        assert len(airflow.runs("asr_remediate")) == 1
    open_to_world = [world_open(aws, s) for s in seeded]
    assert open_to_world == [False, True]
    assert (ARTIFACTS / "asr_remediate-form.png").stat().st_size > 10_000
