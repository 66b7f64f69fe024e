"""Settings that used to be taken silently, or to fail without naming themselves: each is
refused with a one-line ConfigError that names it, where it is read."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from asr import local
from asr.config import ConfigError, Settings, events_queue_url, sweep_schedule
from asr.local import MEMBER_ACCOUNT

DAGS = Path(__file__).resolve().parents[1] / "dags"
REGION = "us-east-1"


def import_error(dag_file: str) -> str:
    """The last line of the import error Airflow records for one DAG file (it must have one)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / dag_file))
    [message] = bag.import_errors.values()
    return message.strip().splitlines()[-1]


# --- ASR_AWS_CONN_ID ---------------------------------------------------------------------------


def test_a_connection_id_airflow_does_not_have_is_refused_not_the_host_s_credentials(
    clean_aws: str,
) -> None:
    """The amazon provider goes on without the connection, with this host's own credentials
    (an instance profile): asr would have fixed every account as whoever those are."""
    from asr.aws import AwsContext

    with pytest.raises(ConfigError) as raised:
        AwsContext.from_airflow("aws_typo", Settings().member_role_name)
    assert str(raised.value) == (
        "ASR_AWS_CONN_ID 'aws_typo' names no Airflow connection: add it, or unset ASR_AWS_CONN_ID "
        "for 'aws_default'"
    )


def test_a_connection_id_airflow_has_is_used(clean_aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from asr.aws import AwsContext

    # Told apart from aws_default (us-east-1, set by conftest) by its region.
    monkeypatch.setenv("AIRFLOW_CONN_ASR_NAMED", local.airflow_connection(region="eu-west-1"))
    context = AwsContext.from_airflow("asr_named", Settings().member_role_name)
    assert context.base_session.region_name == "eu-west-1"
    assert context.client("ec2", MEMBER_ACCOUNT, REGION).describe_security_groups()["SecurityGroups"]


def test_without_aws_default_the_host_s_credentials_are_used_with_a_warning_once(
    clean_aws: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An instance profile or IRSA deployment has no aws_default: the provider's documented
    fallback stays, and the log says once which credentials asr acts with."""
    from asr import aws as aws_module

    monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT")
    aws_module._warn_without_default_connection.cache_clear()
    with caplog.at_level(logging.WARNING, logger="asr.aws"):
        for _ in range(2):
            context = aws_module.AwsContext.from_airflow("aws_default", Settings().member_role_name)
    warned = [r.getMessage() for r in caplog.records if r.name == "asr.aws"]
    assert warned == [
        "Airflow has no connection 'aws_default' (ASR_AWS_CONN_ID's default): asr acts with this host's "
        "own AWS credentials (instance profile, IRSA, environment), as the amazon provider does without one"
    ]
    assert context.base_session.get_credentials().access_key == "testing", "the environment's"


@pytest.mark.airflow
def test_a_sweep_through_a_missing_connection_fails_at_ingest_and_changes_nothing(
    aws: Any, airflow_db: None, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The ingest task fails, its log saying why (``dag.test()`` shows task logs on stdout)."""
    from airflow.dag_processing.dagbag import DagBag

    from asr.local.seed import finding, import_findings, seed_one

    seeded = seed_one(aws, "EC2.13", MEMBER_ACCOUNT, REGION)
    securityhub = aws.admin_client("securityhub", REGION)
    import_findings(securityhub, [finding(seeded)])
    monkeypatch.setenv("ASR_AWS_CONN_ID", "aws_typo")
    run = DagBag(dag_folder=str(DAGS / "asr_sweep.py")).dags["asr_sweep"].test()
    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["ingest"] == "failed"
    assert "ConfigError: ASR_AWS_CONN_ID 'aws_typo' names no Airflow connection" in capfd.readouterr().out
    assert {f["Workflow"]["Status"] for f in securityhub.get_findings()["Findings"]} == {"NEW"}


# --- ASR_EVENTS_QUEUE_URL ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://sqs.us-east-1.amazonaws.com/111111111111/asr-events",
        "https://sqs-fips.us-gov-west-1.amazonaws.com/111111111111/asr-events",
        "https://sqs.cn-north-1.amazonaws.com.cn/111111111111/asr_events",
        "https://eu-central-1.queue.amazonaws.com/111111111111/asr-events",
        "https://sqs.eu-west-1.amazonaws.com/111111111111/asr-events.fifo",
        "http://127.0.0.1:5000/111111111111/asr-events",
        "http://localhost:5000/111111111111/asr-events",
    ],
)
def test_an_sqs_queue_url_is_taken_as_written(url: str) -> None:
    assert events_queue_url({"ASR_EVENTS_QUEUE_URL": f" {url}\n"}) == url
    assert events_queue_url({"ASR_EVENTS_QUEUE_URL": url + "/"}) == url
    assert events_queue_url({}) == ""


def test_the_queue_url_asr_setup_prints_is_taken(aws: Any) -> None:
    """The stand-in's own URL (http://127.0.0.1:<port>/...), as the events tests use it."""
    from asr.setup import setup

    made = setup(aws, REGION)
    assert made.queue_url.startswith("http://127.0.0.1:")
    assert events_queue_url({"ASR_EVENTS_QUEUE_URL": made.queue_url}) == made.queue_url


@pytest.mark.parametrize(
    "url",
    [
        "arn:aws:sqs:us-east-1:111111111111:asr-events",
        "asr-events",
        "sqs.us-east-1.amazonaws.com/111111111111/asr-events",
        "https://sqs.us-east-1.amazonaws.com/asr-events",
        "https://sqs.us-east-1.amazonaws.com/11111111111/asr-events",
        "https://sqs.us-east-1.amazonaws.com/111111111111/asr events",
        "https://sqs.us-east-1.amazonaws.com/111111111111/" + "q" * 81,
        "s3://bucket/111111111111/asr-events",
    ],
)
def test_anything_but_a_queue_url_is_refused_naming_the_setting(url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        events_queue_url({"ASR_EVENTS_QUEUE_URL": url})
    assert str(raised.value) == (
        f"ASR_EVENTS_QUEUE_URL {url!r} is not an SQS queue URL: "
        "https://sqs.<region>.amazonaws.com/<12-digit account>/<queue name>, as asr setup prints it"
    )


def test_a_queue_arn_fails_the_events_dag_import_naming_the_setting(
    airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It loaded, and the triggerer polled a queue that is not there, saying so only in its log."""
    monkeypatch.setenv("ASR_EVENTS_QUEUE_URL", "arn:aws:sqs:us-east-1:111111111111:asr-events")
    assert import_error("asr_events.py") == (
        "asr.config.ConfigError: ASR_EVENTS_QUEUE_URL 'arn:aws:sqs:us-east-1:111111111111:asr-events' is "
        "not an SQS queue URL: https://sqs.<region>.amazonaws.com/<12-digit account>/<queue name>, as asr "
        "setup prints it"
    )


# --- ASR_SWEEP_SCHEDULE ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "schedule"),
    [
        ("", "@hourly"),
        ("@daily", "@daily"),
        ("@once", "@once"),
        ("@continuous", "@continuous"),
        ("*/15 * * * *", "*/15 * * * *"),
        ("0 6 * * 1-5", "0 6 * * 1-5"),
        ("none", None),
        ("None", None),
        (" NONE ", None),
    ],
)
def test_a_sweep_schedule_is_a_cron_expression_a_preset_or_none(value: str, schedule: str | None) -> None:
    assert sweep_schedule({"ASR_SWEEP_SCHEDULE": value}) == schedule


@pytest.mark.parametrize("value", ["hourly", "off", "manual", "@hour", "61 * * * *", "0 * * *"])
def test_a_mistyped_sweep_schedule_is_refused_naming_the_setting(value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        sweep_schedule({"ASR_SWEEP_SCHEDULE": value})
    assert str(raised.value) == (
        f"ASR_SWEEP_SCHEDULE {value!r} is not a cron expression or preset (@hourly), or none"
    )


def test_a_mistyped_sweep_schedule_fails_the_sweep_dag_import_naming_the_setting(
    airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow's own error ("Exactly 5, 6 or 7 columns ...") said nothing of where the value came from."""
    monkeypatch.setenv("ASR_SWEEP_SCHEDULE", "hourly")
    assert import_error("asr_sweep.py") == (
        "asr.config.ConfigError: ASR_SWEEP_SCHEDULE 'hourly' is not a cron expression or preset "
        "(@hourly), or none"
    )


def test_the_sweep_dag_runs_on_the_configured_schedule(
    airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("ASR_SWEEP_SCHEDULE", "@daily")
    assert DagBag(dag_folder=str(DAGS / "asr_sweep.py")).dags["asr_sweep"].schedule == "@daily"
    monkeypatch.setenv("ASR_SWEEP_SCHEDULE", "None")
    assert DagBag(dag_folder=str(DAGS / "asr_sweep.py")).dags["asr_sweep"].schedule is None


# --- ASR_DATA_DIR, ASR_AUDIT_DIR ---------------------------------------------------------------


@pytest.mark.parametrize("setting", ["ASR_DATA_DIR", "ASR_AUDIT_DIR"])
@pytest.mark.parametrize("value", ["s3:/my-bucket/asr", "s3:", "gs:/bucket", "file:/var/asr"])
def test_a_url_with_a_slash_missing_is_refused_not_taken_for_a_relative_folder(
    setting: str, value: str
) -> None:
    environ = {"ASR_DATA_DIR": "/srv/asr/runs", setting: value}
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(environ)
    assert str(raised.value) == (
        f"{setting} {value!r} is a URL with a slash missing: write scheme://... (s3://bucket/prefix), "
        "or a folder path"
    )


@pytest.mark.parametrize(
    "value",
    [".asr/runs", "runs", "/srv/asr/runs", "s3://my-bucket/asr", "file:///srv/asr", "C:/asr/runs", "C:\\asr"],
)
def test_folders_and_urls_are_taken(value: str) -> None:
    assert Settings.from_env({"ASR_DATA_DIR": value}).data_dir == value.removeprefix("file://")
    assert Settings.from_env({"ASR_AUDIT_DIR": value, "ASR_DATA_DIR": "/elsewhere"}).audit_dir == (
        value.removeprefix("file://")
    )
