"""Shared fixtures: a project-local Airflow, and the local AWS stand-in on a free port.

Airflow reads its configuration when first imported, so the environment is set here,
before any test module imports it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
# ASR_TEST_HOME lets two test runs share a checkout without sharing an Airflow database.
TEST_HOME = Path(os.environ.get("ASR_TEST_HOME") or ROOT / ".asr" / "test").resolve()


PORT = free_port()
os.environ.update(
    {
        "AIRFLOW_HOME": str(TEST_HOME / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{TEST_HOME / 'airflow' / 'airflow.db'}",
        "ASR_STATE_DIR": str(TEST_HOME / "state"),
        "ASR_LOCAL_PORT": str(PORT),
        "ASR_DATA_DIR": str(TEST_HOME / "runs"),
        "ASR_SWEEP_SCHEDULE": "none",
        "ASR_RETRY_DELAY_SECONDS": "2",
        # Disruptive fixes wait for a person; tests that are not about approvals need no one.
        "ASR_AUTO_APPROVE": "*",
        "ASR_ROLLBACK_APPROVAL": "off",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_SESSION_TOKEN", None)


from asr import local  # noqa: E402

os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = local.airflow_connection(PORT)


@pytest.fixture(scope="session")
def stand_in() -> Iterator[str]:
    """moto in server mode with the asr extensions, for the whole session."""
    endpoint = local.up(PORT)
    yield endpoint
    local.down(PORT)


@pytest.fixture
def clean_aws(stand_in: str) -> str:
    """An empty stand-in for each test that changes it."""
    local.reset(PORT)
    return stand_in


@pytest.fixture
def aws(clean_aws: str):  # type: ignore[no-untyped-def]
    """An AwsContext as the Security Hub administrator of the stand-in."""
    from asr.cli import local_context

    return local_context()


@pytest.fixture
def member_stack(aws):  # type: ignore[no-untyped-def]
    """The member-role stack in the stand-in's member account: the roles fixes hand to services."""
    from asr.local import MEMBER_ACCOUNT
    from asr.local import member_stack as stack

    stack.deploy(aws, MEMBER_ACCOUNT)
    return aws


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A migrated metadata DB (SQLite) under the test home."""
    (TEST_HOME / "airflow").mkdir(parents=True, exist_ok=True)
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)


@pytest.fixture
def rollback_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rollback's settings in the test's own folder: the journal in it, the runs below it."""
    monkeypatch.setenv("ASR_AUDIT_DIR", str(tmp_path))
    monkeypatch.setenv("ASR_DATA_DIR", str(tmp_path / "runs"))
