"""Who may be acted on, and exclusions that always hold and fail closed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from helpers import world_open

from asr import guard, sweep
from asr.aws import Clients
from asr.config import ConfigError, Settings, env_number
from asr.findings import parse_finding
from asr.guard import GuardError, Scope
from asr.local import ADMIN_ACCOUNT, MEMBER_ACCOUNT, served_requests
from asr.local.request_log_ext import is_write
from asr.local.seed import finding, import_findings, seed_one, seed_scenarios
from asr.playbooks import registry
from asr.remediate import Status, run_batch
from asr.store import RunStore

REGION = "us-east-1"
DAGS = Path(__file__).resolve().parents[1] / "dags"


def routed(aws, control: str = "EC2.13", account: str = MEMBER_ACCOUNT, n: int = 0):  # type: ignore[no-untyped-def]
    seeded = seed_one(aws, control, account, REGION, n)
    return seeded, parse_finding(finding(seeded), registry())


def test_allow_list_rejects_other_accounts_and_run_params_cannot_widen_it(aws) -> None:
    scope = Scope.resolve(Settings(accounts=(MEMBER_ACCOUNT,)))
    _, record = routed(aws, account=ADMIN_ACCOUNT)
    assert scope.check(record) == (Status.REJECTED, f"account {ADMIN_ACCOUNT} is not one asr may act in")
    _, ours = routed(aws, n=1)
    assert scope.check(ours) is None
    with pytest.raises(ConfigError, match="not in the allow-list"):
        Settings(accounts=(MEMBER_ACCOUNT,)).with_overrides({"accounts": [ADMIN_ACCOUNT]})


def test_exclusions_by_account_and_control(aws) -> None:
    _, record = routed(aws)
    by_account = Scope.resolve(Settings(exclude_accounts=(MEMBER_ACCOUNT,)))
    assert by_account.check(record)[0] == Status.EXCLUDED
    by_control = Scope.resolve(Settings(exclude_controls=("EC2.13",)))
    assert by_control.check(record) == (Status.EXCLUDED, "control EC2.13 is excluded (ASR_EXCLUDE_CONTROLS)")


def test_organization_members_and_excluded_ous(aws) -> None:
    organizations = aws.admin_client("organizations", REGION)
    organizations.create_organization(FeatureSet="ALL")
    root = organizations.list_roots()["Roots"][0]["Id"]
    sandbox = organizations.create_organizational_unit(ParentId=root, Name="sandbox")["OrganizationalUnit"][
        "Id"
    ]
    nested = organizations.create_organizational_unit(ParentId=sandbox, Name="deeper")["OrganizationalUnit"][
        "Id"
    ]
    created = organizations.create_account(Email="a@example.com", AccountName="a")["CreateAccountStatus"]
    member = created["AccountId"]
    organizations.move_account(AccountId=member, SourceParentId=root, DestinationParentId=nested)

    scope = Scope.resolve(Settings(accounts_from_organization=True, exclude_ous=(sandbox,)), organizations)
    assert scope.allowed is not None and {ADMIN_ACCOUNT, member} <= scope.allowed
    assert scope.excluded_accounts == {member: f"the account is in excluded organizational unit {sandbox}"}


def test_an_unreadable_organization_fails_closed() -> None:
    unreachable = boto3.client(
        "organizations",
        region_name=REGION,
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1),
    )
    with pytest.raises(GuardError, match="cannot read the organization"):
        Scope.resolve(Settings(accounts_from_organization=True), unreachable)
    with pytest.raises(GuardError):
        Scope.resolve(Settings(exclude_ous=("ou-abcd-12345678",)))


def test_tagged_resources_are_excluded_in_their_own_account(aws) -> None:
    _, first = routed(aws)
    _, second = routed(aws, n=1)
    Clients(aws, MEMBER_ACCOUNT, REGION).ec2.create_tags(
        Resources=[first.resource_id], Tags=[{"Key": "asr:exclude", "Value": "true"}]
    )
    outcomes = {
        o.resource_id: o
        for o in run_batch([first, second], registry(), aws, exclude_tag=("asr:exclude", None))
    }
    assert outcomes[first.resource_id].status == Status.EXCLUDED
    assert outcomes[first.resource_id].message == "the resource is tagged asr:exclude (ASR_EXCLUDE_TAG)"
    assert outcomes[second.resource_id].status == Status.REMEDIATED
    rules = Clients(aws, MEMBER_ACCOUNT, REGION).ec2.describe_security_groups(GroupIds=[first.resource_id])
    assert any(
        r["CidrIp"] == "0.0.0.0/0" for p in rules["SecurityGroups"][0]["IpPermissions"] for r in p["IpRanges"]
    )


def test_a_bucket_s_tags_are_read_in_the_bucket_s_own_region(aws, monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 playbooks act on an account's buckets together, but AWS's tagging API answers only
    for the buckets of the region it is called in: a tagged bucket elsewhere was missed."""
    records = [
        parse_finding(finding(seed_one(aws, "S3.5", MEMBER_ACCOUNT, region, n)), registry())
        for n, region in enumerate((REGION, "eu-west-1"))
    ]
    asked: list[tuple[str, list[str]]] = []
    real = guard.excluded_by_tag

    def recorded(clients: Clients, arns: list[str], tag: tuple[str, str | None]) -> dict[str, str]:
        asked.append((clients.region, arns))
        return real(clients, arns, tag)

    monkeypatch.setattr(guard, "excluded_by_tag", recorded)
    run_batch(records, registry(), aws, exclude_tag=("asr:exclude", None))
    assert sorted(asked) == sorted((r.region, [r.resource_arn]) for r in records)


def test_a_tagged_iam_user_is_excluded_though_the_tagging_api_does_not_list_it(aws) -> None:
    """AWS's GetResources does not answer for IAM users (nor does the stand-in): their tags
    are read from IAM, so a tagged user keeps its access key."""
    _, tagged = routed(aws, "IAM.3")
    _, other = routed(aws, "IAM.3", n=1)
    iam = Clients(aws, MEMBER_ACCOUNT, REGION).iam
    name = tagged.resource_arn.rsplit("/", 1)[1]
    iam.tag_user(UserName=name, Tags=[{"Key": "owner", "Value": "x"}, {"Key": "asr:exclude", "Value": "yes"}])
    batch = run_batch([tagged, other], registry(), aws, exclude_tag=("asr:exclude", "yes"))
    outcomes = {o.resource_arn: o for o in batch}
    assert outcomes[tagged.resource_arn].status == Status.EXCLUDED
    assert outcomes[tagged.resource_arn].message == "the resource is tagged asr:exclude=yes (ASR_EXCLUDE_TAG)"
    assert outcomes[other.resource_arn].status == Status.REMEDIATED
    [key] = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert key["Status"] == "Active"
    # A user deleted since its finding has no tags to read: not an error for the others.
    gone = f"arn:aws:iam::{MEMBER_ACCOUNT}:user/asr-seed/deleted-since"
    excluded = guard.excluded_by_tag(
        Clients(aws, MEMBER_ACCOUNT, REGION), [gone, tagged.resource_arn], ("asr:exclude", "yes")
    )
    assert list(excluded) == [tagged.resource_arn]


def test_a_tagged_log_group_named_with_its_trailing_star_is_excluded(aws) -> None:
    """AWS Config and DescribeLogGroups write a log group's ARN ending in ":*"; the tagging API
    knows it without: looked up as the finding wrote it, a tagged group read as untagged."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    for name in ("kept", "other"):
        clients.logs.create_log_group(
            logGroupName=name, tags={"asr:exclude": "yes"} if name == "kept" else {}
        )
    arn = f"arn:aws:logs:{REGION}:{MEMBER_ACCOUNT}:log-group:kept"
    other = f"arn:aws:logs:{REGION}:{MEMBER_ACCOUNT}:log-group:other"
    excluded = guard.excluded_by_tag(clients, [f"{arn}:*", f"{other}:*", arn], ("asr:exclude", "yes"))
    assert sorted(excluded) == [arn, f"{arn}:*"]


def test_a_tagged_auto_scaling_group_is_excluded_though_the_tagging_api_does_not_list_it(aws) -> None:
    """AWS's GetResources answers nothing for Auto Scaling groups (nor does the stand-in),
    which would read as "not tagged": their tags come from Auto Scaling's DescribeTags."""
    _, tagged = routed(aws, "AutoScaling.1")
    _, other = routed(aws, "AutoScaling.1", n=1)
    autoscaling = Clients(aws, MEMBER_ACCOUNT, REGION).autoscaling
    name = tagged.resource_arn.split("autoScalingGroupName/", 1)[1]
    autoscaling.create_or_update_tags(
        Tags=[
            {"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": key, "Value": "yes"}
            for key in ("asr:exclude", "owner")
        ]
    )
    batch = run_batch([tagged, other], registry(), aws, exclude_tag=("asr:exclude", None))
    outcomes = {o.resource_arn: o for o in batch}
    assert outcomes[tagged.resource_arn].status == Status.EXCLUDED
    assert outcomes[other.resource_arn].status == Status.REMEDIATED
    [group] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    assert group["HealthCheckType"] == "EC2"


def test_a_tagged_auto_scaling_group_named_by_two_arns_is_excluded_for_both(
    aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group deleted and made again under its name has a new ARN (its UUID), and an old
    finding may still name the old one: the group's tag answers for every ARN of its name,
    and one excluded finding of a resource holds back all of them."""
    import dataclasses

    _, tagged = routed(aws, "AutoScaling.1")
    autoscaling = Clients(aws, MEMBER_ACCOUNT, REGION).autoscaling
    name = tagged.resource_arn.split("autoScalingGroupName/", 1)[1]
    autoscaling.create_or_update_tags(
        Tags=[
            {"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": "asr:exclude", "Value": "yes"}
        ]
    )
    uuid = tagged.resource_arn.split(":autoScalingGroup:", 1)[1].split(":", 1)[0]
    older = dataclasses.replace(
        tagged,
        finding_id=f"{tagged.finding_id}-old",
        resource_arn=tagged.resource_arn.replace(uuid, "00000000-0000-0000-0000-000000000000"),
    )
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    excluded = guard.excluded_by_tag(
        clients, [tagged.resource_arn, older.resource_arn], ("asr:exclude", None)
    )
    assert sorted(excluded) == sorted([tagged.resource_arn, older.resource_arn])
    # However the batch's findings came to be ordered, none of them is fixed; and were only
    # one of the ARNs found tagged, the resource would still be held back.
    only_older = {older.resource_arn: excluded[older.resource_arn]}
    for found in (excluded, only_older):
        monkeypatch.setattr(guard, "excluded_by_tag", lambda *_, f=found: f)
        for batch in ([older, tagged], [tagged, older]):
            outcomes = run_batch(batch, registry(), aws, exclude_tag=("asr:exclude", None))
            assert [o.status for o in outcomes] == [Status.EXCLUDED, Status.EXCLUDED]
    [group] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    assert group["HealthCheckType"] == "EC2"


def test_a_fix_task_holds_back_what_was_excluded_after_ingest(aws, tmp_path: Path) -> None:
    """Settings may change between ingest and the fix (an approval waits up to a day, a failed
    task is cleared days later): the fix task checks its findings again and touches none
    that is excluded now."""
    seeded, record = routed(aws)
    _, other = routed(aws, n=1)
    store = RunStore(tmp_path)
    batch = {"batch_id": "EC2.13-1", "playbook": "EC2.13", "count": 2}
    store.write_lines("batches/EC2.13-1.jsonl", [record.to_dict(), other.to_dict()])
    now = Settings(exclude_controls=("EC2.13",), accounts=(MEMBER_ACCOUNT,))
    counts = sweep.remediate(batch, store, registry(), aws, scope=Scope.of_settings(now))
    assert counts == {"EXCLUDED": 2}
    assert world_open(aws, seeded), "left as it was"
    [first, _] = store.read_lines("outcomes/EC2.13-1.jsonl")
    assert first["message"] == "control EC2.13 is excluded (ASR_EXCLUDE_CONTROLS); not touched"
    # Outside the allow-list now: left alone, as ingest leaves a finding it rejects.
    elsewhere = Scope.of_settings(Settings(accounts=("999999999999",)))
    assert sweep.remediate(batch, store, registry(), aws, scope=elsewhere) == {"IGNORED": 2}


def test_the_scope_a_fix_task_checks_leaves_the_organization_to_ingest() -> None:
    """Without the organization read again: its members stay allowed (ingest checked them),
    and the allow-list, exclusions and the run's own choice hold."""
    widened = Scope.of_settings(Settings(accounts=(MEMBER_ACCOUNT,), accounts_from_organization=True))
    assert widened.allowed is None
    chosen = Settings(accounts_from_organization=True, run_accounts=(ADMIN_ACCOUNT,))
    assert Scope.of_settings(chosen).allowed == {ADMIN_ACCOUNT}
    listed = Scope.of_settings(Settings(accounts=(MEMBER_ACCOUNT,), exclude_ous=("ou-abcd-12345678",)))
    assert listed.allowed == {MEMBER_ACCOUNT} and listed.excluded_accounts == {}


def test_organization_members_are_read_by_state_now_that_status_is_retired() -> None:
    organizations = boto3.client("organizations", region_name=REGION)
    accounts = [
        {"Id": "111111111111", "State": "ACTIVE"},
        {"Id": "222222222222", "State": "SUSPENDED"},
        {"Id": "333333333333", "Status": "ACTIVE"},
    ]
    with Stubber(organizations) as stubber:
        stubber.add_response("list_accounts", {"Accounts": accounts})
        scope = Scope.resolve(Settings(accounts_from_organization=True), organizations)
    assert scope.allowed == {"111111111111", "333333333333"}


def test_tags_that_cannot_be_read_leave_resources_untouched(aws, monkeypatch: pytest.MonkeyPatch) -> None:
    """Failing closed: the stand-in served no write, and the group is as open as it was."""
    seeded, record = routed(aws)

    def denied(*_: object) -> dict:
        raise ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "no tag:GetResources"}}, "GetResources"
        )

    monkeypatch.setattr(guard, "excluded_by_tag", denied)
    assert world_open(aws, seeded)
    served_requests(clear=True)
    outcomes = run_batch([record], registry(), aws, exclude_tag=("asr:exclude", "true"))
    assert [c for c in served_requests() if is_write(c)] == []
    assert world_open(aws, seeded)
    [outcome] = outcomes
    assert outcome.status == Status.FAILED
    assert outcome.message.startswith("cannot read tags to check exclusions, not touched: AccessDenied")


def dag(dag_id: str):  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS)).dags[dag_id]


@pytest.mark.airflow
@pytest.mark.parametrize("excluded", ["before the run", "after the plan"])
def test_an_excluded_control_is_notified_and_untouched_by_the_sweep(
    aws, airflow_db: None, monkeypatch: pytest.MonkeyPatch, excluded: str
) -> None:
    """Excluded at ingest, or after ingest and the plan (a run waits a day for an approval, or
    is cleared later): the fix task checks again and touches nothing."""
    seeded, _ = routed(aws)
    import_findings(aws.admin_client("securityhub", REGION), [finding(seeded)])
    if excluded == "before the run":
        monkeypatch.setenv("ASR_EXCLUDE_CONTROLS", "EC2.13")
    else:
        real_plan = sweep.plan

        def plan_then_exclude(*args, **kwargs):  # type: ignore[no-untyped-def]
            planned = real_plan(*args, **kwargs)
            monkeypatch.setenv("ASR_EXCLUDE_CONTROLS", "EC2.13")
            return planned

        monkeypatch.setattr(sweep, "plan", plan_then_exclude)
    run = dag("asr_sweep").test()
    assert run.state == "success"
    assert world_open(aws, seeded)
    [found] = aws.admin_client("securityhub", REGION).get_findings()["Findings"]
    assert found["Workflow"]["Status"] == "NOTIFIED"
    assert "control EC2.13 is excluded (ASR_EXCLUDE_CONTROLS)" in found["Note"]["Text"]


@pytest.mark.airflow
@pytest.mark.parametrize("asked_by", ["form", "ASR_DRY_RUN"])
def test_dry_run_over_the_demo_fleet_makes_no_mutating_call(
    aws, airflow_db: None, monkeypatch: pytest.MonkeyPatch, asked_by: str
) -> None:
    """Nothing is written, to the resources or to Security Hub, whether the form or the
    setting asks for the dry run; not even the NOTIFIED an excluded control would get."""
    if asked_by == "ASR_DRY_RUN":
        monkeypatch.setenv("ASR_DRY_RUN", "on")
    monkeypatch.setenv("ASR_EXCLUDE_CONTROLS", "S3.1")
    seeded = seed_scenarios(aws)
    securityhub = aws.admin_client("securityhub", REGION)
    import_findings(securityhub, [finding(s) for s in seeded])
    served_requests(clear=True)
    run = dag("asr_sweep").test(run_conf={"dry_run": True} if asked_by == "form" else {})
    assert run.state == "success"
    writes = [c for c in served_requests() if is_write(c)]
    assert writes == []
    store = RunStore.for_run(Settings.from_env().data_dir, "asr_sweep", run.run_id)
    report = store.read_json("report.json")
    excluded = sum(s.control_id == "S3.1" for s in seeded)
    assert excluded and report["totals"] == {"DRY_RUN": len(seeded) - excluded, "EXCLUDED": excluded}
    statuses = {f["Workflow"]["Status"] for f in securityhub.get_findings()["Findings"]}
    assert statuses == {"NEW"}
    assert all(o["before"] and o["after"] for o in report["outcomes"] if o["status"] == "DRY_RUN")
    # Decided once, at ingest: a later task parsed with ASR_DRY_RUN off still sees a dry run.
    assert sweep.is_dry_run(store, {"dry_run": False})


def test_a_run_is_dry_as_its_ingest_recorded_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Each task takes its params from its own parse, whose default follows ASR_DRY_RUN: an
    approval step that saw a dry run asked nobody, and a fix parsed after ASR_DRY_RUN was
    turned off changed the resource."""
    store = RunStore(tmp_path)
    assert not sweep.is_dry_run(store, {})  # before ingest: the run's params
    store.write_json(sweep.INGESTED, {"began": "2026-12-04T00:00:00+00:00", "dry_run": True})
    assert sweep.is_dry_run(store, {"dry_run": False})
    store.write_json(sweep.INGESTED, {"began": "2026-12-04T00:00:00+00:00", "dry_run": False})
    assert not sweep.is_dry_run(store, {"dry_run": True})


def test_a_run_cleared_whole_stays_as_dry_as_its_first_ingest_decided(
    aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheduled sweep's params follow ASR_DRY_RUN at each parse: cleared after the setting
    was turned off, a dry sweep would have become a real one."""
    from types import SimpleNamespace

    from asr import tasks
    from asr.securityhub import actionable_plan

    monkeypatch.setenv("ASR_DATA_DIR", str(tmp_path))
    context = {
        "params": {"dry_run": False},  # ASR_DRY_RUN off now
        "run_id": "scheduled__2026-12-05T10:00:00+00:00",
        "dag": SimpleNamespace(dag_id="asr_sweep"),
        "dag_run": SimpleNamespace(run_type="scheduled"),
    }
    monkeypatch.setattr(tasks, "get_current_context", lambda: context)
    store = RunStore.for_run(str(tmp_path), "asr_sweep", context["run_id"])
    store.write_json(sweep.INGESTED, {"began": "2026-12-05T10:00:00+00:00", "dry_run": True})
    tasks._ingest(actionable_plan())
    assert store.read_json(sweep.INGESTED)["dry_run"] is True
    # An ingest that fails part way (after removing ingest.json), and its retry: still dry.
    real_read = sweep.iter_findings

    def unreachable(*_: Any) -> Any:
        raise ConnectionError("Security Hub did not answer")

    monkeypatch.setattr(sweep, "iter_findings", unreachable)
    with pytest.raises(ConnectionError):
        tasks._ingest(actionable_plan())
    assert not store.path(sweep.INGESTED).exists()
    monkeypatch.setattr(sweep, "iter_findings", real_read)
    tasks._ingest(actionable_plan())
    assert store.read_json(sweep.INGESTED)["dry_run"] is True


def test_a_dry_run_whose_first_ingest_fails_early_is_reported_dry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decision was recorded only once findings were read: a dry run whose ingest failed
    before (the run it reruns was deleted, the organization unreadable) was reported as a run
    that changes things, "Security Hub: 0 findings updated" and all."""
    from airflow.sdk.exceptions import AirflowFailException

    from asr import report, tasks

    store, run_id = _rerun_of_a_deleted_run(tmp_path, monkeypatch, dry_run=True)
    with pytest.raises(AirflowFailException, match="deleted-since"):
        tasks.ingest_selected.function()
    assert report.headline(report.build(store, run_id)).startswith("ASR dry run")


def _rerun_of_a_deleted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dry_run: bool
) -> tuple[Any, str]:
    """An asr_remediate run's task context, rerunning the failures of a run deleted since: its
    store and run id."""
    from types import SimpleNamespace

    from asr import tasks

    monkeypatch.setenv("ASR_DATA_DIR", str(tmp_path))
    context = {
        "params": {"rerun_failures_of": "asr_sweep/deleted-since", "dry_run": dry_run},
        "run_id": "manual__2026-12-06T10:00:00+00:00",
        "dag": SimpleNamespace(dag_id="asr_remediate"),
        "dag_run": SimpleNamespace(run_type="manual"),
    }
    monkeypatch.setattr(tasks, "get_current_context", lambda: context)
    return RunStore.for_run(str(tmp_path), "asr_remediate", context["run_id"]), context["run_id"]


def test_a_run_cleared_whole_whose_ingest_fails_early_is_not_taken_for_its_last_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last pass's ingest.json, records and outcomes stayed until ingest read findings: an
    ingest that failed before (the run it reruns was deleted) let write-back and the report pass
    the last pass off as complete. The SSM executions a fix task waits for stay."""
    from airflow.sdk.exceptions import AirflowFailException

    from asr import tasks

    store, run_id = _rerun_of_a_deleted_run(tmp_path, monkeypatch, dry_run=False)
    store.own("asr_remediate", run_id)
    store.write_json(sweep.INGESTED, {"began": "2026-12-06T09:00:00+00:00", "dry_run": True})
    store.write_lines(sweep.RECORDS, [{"finding_id": "f-1"}])
    store.write_lines("outcomes/b-1.jsonl", [{"finding_id": "f-1", "status": "REMEDIATED"}])
    store.write_json(sweep.WRITTEN_BACK, {"updated": 1})
    store.write_json("automations/b-1.json", {"outcomes": [], "pending": [{"execution_id": "e-1"}]})

    with pytest.raises(AirflowFailException, match="deleted-since"):
        tasks.ingest_selected.function()

    assert sweep.unfinished(store, 0) == "ingest did not finish"
    assert not store.path(sweep.RECORDS).exists() and not store.path(sweep.WRITTEN_BACK).exists()
    assert store.names("outcomes") == []
    assert store.read_json("automations/b-1.json")["pending"] == [{"execution_id": "e-1"}]
    assert sweep.is_dry_run(store, {"dry_run": False}), "the first pass's decision stays"


def test_a_setting_left_empty_takes_its_default_and_a_wrong_number_is_named() -> None:
    """A line of .env left blank reaches a plain deployment as an empty variable, not an unset one."""
    blank = {
        name: ""
        for name in (
            "ASR_SECURITYHUB_REGION",
            "ASR_MEMBER_ROLE_NAME",
            "ASR_BATCH_SIZE",
            "ASR_FIX_THREADS",
            "ASR_DATA_DIR",
            "ASR_RATE_LIMITS",
            "ASR_AWS_CONN_ID",
        )
    }
    assert Settings.from_env(blank) == Settings()
    with pytest.raises(ConfigError, match="ASR_BATCH_SIZE='ten' is not a whole number"):
        Settings.from_env({"ASR_BATCH_SIZE": "ten"})


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ASR_DRY_RUN": "ture"}, "ASR_DRY_RUN='ture' is neither on"),
        ({"ASR_DRY_RUN": "y"}, "ASR_DRY_RUN='y' is neither on"),
        ({"ASR_ACCOUNTS_FROM_ORGANIZATION": "enabled"}, "ASR_ACCOUNTS_FROM_ORGANIZATION='enabled'"),
        ({"ASR_EXCLUDE_CONTROLS": "ec2.13"}, "ASR_EXCLUDE_CONTROLS: 'ec2.13' is no control asr fixes"),
        ({"ASR_EXCLUDE_CONTROLS": "EC2.13 EC2.2"}, "'EC2.13 EC2.2' is no control asr fixes"),
        ({"ASR_BATCH_SIZE": "0"}, "ASR_BATCH_SIZE='0' is not a whole number of at least 1"),
        ({"ASR_FIX_THREADS": "-2"}, "ASR_FIX_THREADS='-2' is not a whole number of at least 1"),
        (
            {"ASR_AUDIT_DIR": "/tmp/asr-runs/", "ASR_DATA_DIR": "/tmp/asr-runs"},
            "ASR_AUDIT_DIR '/tmp/asr-runs/' is",
        ),
        ({"ASR_SECURITYHUB_REGION": "US-EAST-1"}, "ASR_SECURITYHUB_REGION 'US-EAST-1' is not"),
        ({"ASR_AUTOMATION_ROLE_NAME": "a role"}, "ASR_AUTOMATION_ROLE_NAME 'a role' is not"),
        ({"ASR_ROLLBACK_ROLE_NAME": "role/undo"}, "ASR_ROLLBACK_ROLE_NAME 'role/undo' is not"),
        # Else summaries, failures and approval requests would go nowhere, said only in logs.
        ({"ASR_SNS_TOPIC_ARN": "asr-notifications"}, "ASR_SNS_TOPIC_ARN 'asr-notifications' is not an SNS"),
        (
            {"ASR_SNS_TOPIC_ARN": "arn:aws:sns:us-east1:123456789012:asr"},
            "ASR_SNS_TOPIC_ARN 'arn:aws:sns:us-east1:123456789012:asr' is not an SNS",
        ),
        # Written as a list, as the other exclusions are, it would match no tag: nothing excluded.
        (
            {"ASR_EXCLUDE_TAG": "asr:skip,do-not-touch"},
            "ASR_EXCLUDE_TAG 'asr:skip,do-not-touch' is not one tag",
        ),
        (
            {"ASR_EXCLUDE_TAG": "asr-skip=true, owner=sec"},
            "ASR_EXCLUDE_TAG 'asr-skip=true, owner=sec' is not",
        ),
        ({"ASR_EXCLUDE_TAG": "=yes"}, "ASR_EXCLUDE_TAG '=yes' needs a key"),
    ],
)
def test_a_setting_asr_would_misread_stops_the_dags_and_is_named(
    environ: dict[str, str], message: str
) -> None:
    """A misspelt flag read as off would make a dry run change resources; an exclusion
    that matches nothing, or a journal inside the run folders, fails open."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env(environ)


def test_on_off_settings_take_the_usual_words() -> None:
    for word in ("1", "true", "Yes", " ON "):
        assert Settings.from_env({"ASR_DRY_RUN": word}).dry_run
    for word in ("", "0", "false", "No", "off"):
        assert not Settings.from_env({"ASR_DRY_RUN": word}).dry_run
    for tag, read in (
        ("asr:exclude", ("asr:exclude", None)),
        (" Owner Team = sec-ops@x ", ("Owner Team", "sec-ops@x")),
    ):
        assert Settings.from_env({"ASR_EXCLUDE_TAG": tag}).exclusion_tag == read
    # A control another playbook fixes is matched too (guard.Scope.check reads both).
    assert Settings.from_env({"ASR_EXCLUDE_CONTROLS": "EC2.13, IAM.22"}).exclude_controls == (
        "EC2.13",
        "IAM.22",
    )


@pytest.mark.parametrize("value", ["nan", "inf", "-30"])
def test_task_settings_read_at_parse_time_refuse_what_is_no_delay(value: str) -> None:
    with pytest.raises(ConfigError, match="ASR_RETRY_DELAY_SECONDS"):
        env_number("ASR_RETRY_DELAY_SECONDS", 30.0, {"ASR_RETRY_DELAY_SECONDS": value})


def test_a_resource_outside_the_configured_regions_is_rejected(aws) -> None:
    """The query narrows by any resource's Region, while asr acts where the resource's ARN says:
    the scope checks the region asr would act in."""
    _, record = routed(aws)
    assert Scope.resolve(Settings(regions=("eu-west-1",))).check(record) == (
        Status.REJECTED,
        f"region {REGION} is not one asr may act in (ASR_REGIONS)",
    )
    assert Scope.resolve(Settings(regions=(REGION,))).check(record) is None


def test_a_run_narrows_regions_and_never_widens_them() -> None:
    settings = Settings(regions=("us-east-1", "eu-west-1"))
    assert settings.with_overrides({"regions": "eu-west-1"}).regions == ("eu-west-1",)
    with pytest.raises(ConfigError, match=r"regions \['ap-south-1'\] are not among those asr may act in"):
        settings.with_overrides({"regions": ["eu-west-1", "ap-south-1"]})
    assert Settings().with_overrides({"regions": ["ap-south-1"]}).regions == ("ap-south-1",)


def test_the_organization_widens_the_allow_list_and_a_run_narrows_it(aws, tmp_path: Path) -> None:
    """ASR_ACCOUNTS_FROM_ORGANIZATION with ASR_ACCOUNTS: the query is not narrowed to
    ASR_ACCOUNTS (an organization member's findings were never read), the scope checks each
    account; a run's choice of accounts narrows both, and may name any allowed account."""
    from asr import sweep
    from asr.securityhub import actionable_plan

    organizations = aws.admin_client("organizations", REGION)
    organizations.create_organization(FeatureSet="ALL")
    member = organizations.create_account(Email="m@example.com", AccountName="m")["CreateAccountStatus"][
        "AccountId"
    ]
    outsider = "999999999999"
    seeded = {
        account: seed_one(aws, "EC2.13", account, REGION) for account in (MEMBER_ACCOUNT, member, outsider)
    }
    import_findings(aws.admin_client("securityhub", REGION), [finding(s) for s in seeded.values()])
    settings = Settings(accounts=(MEMBER_ACCOUNT,), accounts_from_organization=True, data_dir=str(tmp_path))
    assert settings.query_accounts == ()
    assert Settings(accounts=(MEMBER_ACCOUNT,)).query_accounts == (MEMBER_ACCOUNT,)

    def routed_accounts(chosen: Settings) -> set[str]:
        store = RunStore(tmp_path / str(len(chosen.run_accounts)))
        scope = Scope.resolve(chosen, organizations)
        sweep.ingest(chosen, aws, registry(), store, actionable_plan(chosen.query_accounts), scope=scope)
        return {r["account_id"] for r in store.read_lines(sweep.RECORDS)}

    assert routed_accounts(settings) == {MEMBER_ACCOUNT, member}
    narrowed = settings.with_overrides({"accounts": [member, outsider]})  # the scope checks them
    assert narrowed.query_accounts == (member, outsider)
    assert routed_accounts(narrowed) == {member}


def test_a_run_s_conf_cannot_change_the_role_asr_assumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any key of a triggered run's conf reaches its params: a run that named another role
    (OrganizationAccountAccessRole, say) would have acted as that role in every account."""
    from types import SimpleNamespace

    from asr.tasks import run_context

    monkeypatch.setenv("ASR_DATA_DIR", str(tmp_path))
    params = {"member_role_name": "OrganizationAccountAccessRole", "batch_size": 7, "regions": ["us-east-1"]}
    context = {"params": params, "run_id": "manual__1", "dag": SimpleNamespace(dag_id="asr_sweep")}
    settings, _, _ = run_context(context)
    assert settings.member_role_name == "ASRMemberRole"
    assert (settings.batch_size, settings.regions) == (7, ("us-east-1",)), "what a run may set still applies"


def test_a_throttled_assume_role_or_tag_read_is_tried_again_not_failed(aws) -> None:  # type: ignore[no-untyped-def]
    """STS and the tagging API throttle too: once refused, the account's findings still go on."""
    from botocore.exceptions import ClientError

    from asr.aws import _member as member_session

    seeded, record = routed(aws)
    aws._forget(MEMBER_ACCOUNT)
    refusals = {
        "AssumeRole": [ClientError({"Error": {"Code": "Throttling"}}, "AssumeRole")],
        "GetResources": [ClientError({"Error": {"Code": "ThrottlingException"}}, "GetResources")],
    }

    def refuse_once(model: Any, **_: Any) -> None:
        if refusals.get(model.name):
            raise refusals[model.name].pop()

    # Sessions pass their handlers to the clients they make next: the member role's are made anew.
    member_events = member_session().events
    aws.base_session.events.register("before-call.sts.AssumeRole", refuse_once)
    member_events.register("before-call.resource-groups-tagging-api.GetResources", refuse_once)
    try:
        [outcome] = run_batch([record], registry(), aws, exclude_tag=("asr:exclude", None))
    finally:
        aws.base_session.events.unregister("before-call.sts.AssumeRole", refuse_once)
        member_events.unregister("before-call.resource-groups-tagging-api.GetResources", refuse_once)
    assert outcome.status == Status.REMEDIATED, outcome.message
    assert refusals == {"AssumeRole": [], "GetResources": []}
    assert not world_open(aws, seeded)
