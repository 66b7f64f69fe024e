"""Rollback from the audit journal: the demo run undone through Airflow, and each rule on its own."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from asr import actions
from asr.audit import FIX, REVERT, UNSETTLED, AuditJournal, Origin, canonical, journal_root
from asr.aws import Clients
from asr.config import Settings
from asr.findings import RoutingRecord, parse_finding
from asr.guard import Scope
from asr.local import MEMBER_ACCOUNT, served_requests
from asr.local.seed import finding, import_findings, seed_one, seed_scenarios
from asr.playbooks import registry
from asr.remediate import Planned, Target, resolve_targets, run_batch
from asr.rollback import Rollback, RollbackStatus, find_journal
from asr.selection import SelectionError, failed_in_run
from asr.store import OWNER, RunStore

DAGS = Path(__file__).resolve().parents[1] / "dags"
REGION = "us-east-1"
RUN_ID = "manual__2026-01-01T00:00:00+00:00"


def dag_bag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def resource_state(aws: Any, control_id: str, account: str, resource_arn: str) -> dict[str, Any]:
    """What the control's own action reads of the resource: the settings a fix changes."""
    playbook = registry().for_control(control_id)
    action = playbook.build_action()
    resource_id = playbook.extract_resource_id(resource_arn, account)
    return canonical(action.read(Clients(aws, account, REGION), resource_id))


@pytest.mark.airflow
def test_rollback_of_the_demo_run_puts_every_reversible_resource_back_as_seeded(
    aws, airflow_db: None
) -> None:
    seeded = seed_scenarios(aws)
    raws = [finding(s) for s in seeded]
    import_findings(aws.admin_client("securityhub", REGION), raws)
    as_seeded = [resource_state(aws, s.control_id, s.account_id, s.resource_id) for s in seeded]

    bag = dag_bag()
    sweep = bag.get_dag("asr_sweep").test()
    assert sweep.state == "success"
    fixed = [resource_state(aws, s.control_id, s.account_id, s.resource_id) for s in seeded]
    assert all(now != then for now, then in zip(fixed, as_seeded, strict=True)), "the sweep fixed each"

    served_requests(clear=True)
    rollback = bag.get_dag("asr_rollback").test(run_conf={"run": f"asr_sweep/{sweep.run_id}"})
    assert rollback.state == "success"
    # In member accounts it acts as the rollback role, which alone may undo fixes.
    assumed = {c["resource"].rsplit("/", 1)[-1] for c in served_requests() if c["action"] == "AssumeRole"}
    assert "ASRRollbackRole" in assumed and "ASRMemberRole" not in assumed, assumed

    for s, then in zip(seeded, as_seeded, strict=True):
        assert resource_state(aws, s.control_id, s.account_id, s.resource_id) == then, s
    settings = Settings.from_env()
    folder = RunStore.for_run(settings.data_dir, "asr_rollback", rollback.run_id)
    report = folder.read_json("rollback.json")
    assert report["totals"] == {"REVERTED": len(seeded)}
    # It owns its folder: housekeeping asks Airflow about it by its id, not its folder's name.
    assert folder.read_json("run.json")["run_id"] == rollback.run_id
    assert {c["resource_id"] for c in report["changes"]} == {
        registry().for_control(s.control_id).extract_resource_id(s.resource_id, s.account_id) for s in seeded
    }
    reverts = find_journal(settings.audit_root, sweep.run_id, None, _rollback_origin())[0].changes(REVERT)
    assert [c.status for c in reverts] == ["REVERTED"] * len(seeded), "the rollback is in the journal too"

    # Security Hub is told, and the next sweep does not fix them again; a person's pick by id does.
    assert report["security_hub"]["updated"] == len(seeded)
    securityhub = aws.admin_client("securityhub", REGION)
    found = {f["Id"]: f for f in securityhub.get_findings()["Findings"]}
    mark = f"asr_rollback/{rollback.run_id}"
    for raw in raws:
        one = found[raw["Id"]]
        assert one["Workflow"]["Status"] == "NOTIFIED" and one["UserDefinedFields"] == {"asr:reverted": mark}
        assert one["Note"]["Text"].startswith(f"ASR: {mark} put back what asr's fix had changed")

    again = bag.get_dag("asr_sweep").test()
    assert again.state == "success"
    for s, then in zip(seeded, as_seeded, strict=True):
        assert resource_state(aws, s.control_id, s.account_id, s.resource_id) == then, s
    totals = RunStore.for_run(settings.data_dir, "asr_sweep", again.run_id).read_json("report.json")["totals"]
    assert totals == {"IGNORED": len(seeded)}

    picked = raws[0]["Id"]
    by_hand = bag.get_dag("asr_remediate").test(run_conf={"finding_ids": [picked]})
    assert by_hand.state == "success"
    [one] = securityhub.get_findings(Filters={"Id": [{"Value": picked, "Comparison": "EQUALS"}]})["Findings"]
    assert one["Workflow"]["Status"] == "RESOLVED" and one["UserDefinedFields"] == {"asr:reverted": "no"}


# --- the rules, on one resource each, without Airflow


def _rollback_origin() -> Origin:
    return Origin("asr_rollback", "rollback-1", "rollback", 1, "bob")


def _fixed(aws: Any, tmp_path: Path, control: str) -> tuple[AuditJournal, RoutingRecord]:
    """A seeded resource fixed by the runner with a journal; the journal as a rollback writes it."""
    record = parse_finding(finding(seed_one(aws, control, MEMBER_ACCOUNT, REGION)), registry())
    root = journal_root(str(tmp_path), "asr_sweep", RUN_ID)
    [outcome] = run_batch(
        [record], registry(), aws, journal=AuditJournal(root, Origin("asr_sweep", RUN_ID, "b", 1, "s"))
    )
    assert outcome.status == "REMEDIATED", outcome.message
    return AuditJournal(root, _rollback_origin()), record


def _state(aws: Any, record: RoutingRecord) -> dict[str, Any]:
    return resource_state(aws, record.control_id, record.account_id, record.resource_arn)


def test_a_fix_that_cannot_be_undone_is_reported_with_why(aws, tmp_path: Path) -> None:
    journal, _ = _fixed(aws, tmp_path, "CloudTrail.1")
    [reversal] = Rollback(journal, aws).run()
    assert reversal.status == RollbackStatus.NOT_REVERSIBLE
    assert "KMS key can only be scheduled for deletion" in reversal.reason


def test_a_support_role_fix_journaled_by_the_version_that_made_the_role_is_put_back(
    aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the member-role stack made IAM.18's role, its reads also said whether the role
    existed (``role_exists``, kept in the journal's state); reads no longer do, and the
    revert (which deleted a role it had made) now only detaches the policy."""
    from asr.actions.iam import CreateSupportRole

    read = CreateSupportRole.read
    monkeypatch.setattr(
        CreateSupportRole, "read", lambda self, c, r: {**read(self, c, r), "role_exists": False}
    )
    journal, _ = _fixed(aws, tmp_path, "IAM.18")
    monkeypatch.setattr(CreateSupportRole, "read", read)
    assert journal.changes(FIX)[0].intent["state"]["role_exists"] is False
    [reversal] = Rollback(journal, aws).run()
    assert reversal.status == RollbackStatus.REVERTED, reversal.reason


def test_a_resource_changed_since_is_left_alone(aws, tmp_path: Path) -> None:
    journal, _ = _fixed(aws, tmp_path, "EC2.7")
    Clients(aws, MEMBER_ACCOUNT, REGION).ec2.disable_ebs_encryption_by_default()  # someone else did
    [reversal] = Rollback(journal, aws).run()
    assert reversal.status == RollbackStatus.CHANGED_SINCE
    assert "changed since" in reversal.reason
    assert journal.changes(REVERT) == [], "nothing attempted, nothing recorded"


def test_a_rollback_cut_off_after_its_revert_is_reported_reverted_by_its_retry(
    aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rollback's task died between putting the setting back and recording it: its retry
    finds the before-state, not "changed since", so the finding is still marked reverted."""
    import asr.rollback

    journal, _ = _fixed(aws, tmp_path, "EC2.7")

    def died(*_: Any) -> None:
        raise KeyboardInterrupt  # the worker went away: nothing after the revert call ran

    monkeypatch.setattr(asr.rollback, "_read_back", died)
    with pytest.raises(KeyboardInterrupt):
        Rollback(journal, aws).run()
    monkeypatch.undo()
    assert [c.status for c in journal.changes(REVERT)] == [UNSETTLED]
    assert not Clients(aws, MEMBER_ACCOUNT, REGION).ec2.get_ebs_encryption_by_default()[
        "EbsEncryptionByDefault"
    ]

    retry = AuditJournal(journal.root, Origin("asr_rollback", "rollback-1", "rollback", 2, "bob"))
    [reversal] = Rollback(retry, aws).run()
    assert reversal.status == RollbackStatus.REVERTED, reversal.reason
    assert "by an earlier rollback try" in reversal.reason
    assert [c.status for c in retry.changes(REVERT)] == [RollbackStatus.REVERTED]
    # Another rollback run is not this one: it sees an unfinished revert it did not begin.
    other = AuditJournal(journal.root, Origin("asr_rollback", "rollback-2", "rollback", 1, "eve"))
    assert Rollback(other, aws).run()[0].status == RollbackStatus.ALREADY_REVERTED


def test_dry_run_changes_nothing_then_a_rollback_is_done_once(aws, tmp_path: Path) -> None:
    journal, record = _fixed(aws, tmp_path, "S3.1")
    fixed = _state(aws, record)
    [dry] = Rollback(journal, aws, dry=True).run()
    assert dry.status == RollbackStatus.WOULD_REVERT and _state(aws, record) == fixed

    [done] = Rollback(journal, aws).run(controls=["S3.1"], finding_ids=[record.finding_id])
    assert done.status == RollbackStatus.REVERTED
    assert _state(aws, record) != fixed
    # A retry of the same rollback reports its own revert (and tells Security Hub again);
    # another rollback finds it already done.
    [retried] = Rollback(journal, aws).run()
    assert (retried.status, retried.reason) == (done.status, done.reason)
    later = AuditJournal(journal.root, Origin("asr_rollback", "rollback-2", "rollback", 1, "bob"))
    [again] = Rollback(later, aws).run()
    assert again.status == RollbackStatus.ALREADY_REVERTED


@pytest.mark.parametrize(
    ("settings", "why"),
    [
        (Settings(exclude_accounts=(MEMBER_ACCOUNT,)), "the account is excluded (ASR_EXCLUDE_ACCOUNTS)"),
        (Settings(accounts=("999999999999",)), f"account {MEMBER_ACCOUNT} is not one asr may act in"),
        (Settings(regions=("eu-west-1",)), "region us-east-1 is not one asr may act in"),
        (Settings(exclude_controls=("EC2.7",)), "control EC2.7 is excluded"),
    ],
)
def test_a_change_outside_what_asr_may_act_on_now_is_not_put_back(
    aws, tmp_path: Path, settings: Settings, why: str
) -> None:
    """An account excluded (or a control, a region) since the fix: "never act on" holds for undoing too."""
    journal, record = _fixed(aws, tmp_path, "EC2.7")
    fixed = _state(aws, record)
    [reversal] = Rollback(journal, aws, scope=Scope.resolve(settings)).run()
    assert reversal.status == RollbackStatus.OUT_OF_SCOPE and why in reversal.reason
    assert _state(aws, record) == fixed and journal.changes(REVERT) == []
    [allowed] = Rollback(journal, aws, scope=Scope.resolve(Settings(accounts=(MEMBER_ACCOUNT,)))).run()
    assert allowed.status == RollbackStatus.REVERTED


def test_a_resource_tagged_never_touch_since_the_fix_is_not_put_back(aws, tmp_path: Path) -> None:
    """ASR_EXCLUDE_TAG holds for undoing too; a tag that cannot be read leaves it untouched."""
    journal, record = _fixed(aws, tmp_path, "EC2.13")
    fixed = _state(aws, record)
    ec2 = Clients(aws, MEMBER_ACCOUNT, REGION).ec2
    ec2.create_tags(Resources=[record.resource_id], Tags=[{"Key": "asr:exclude", "Value": "yes"}])
    [reversal] = Rollback(journal, aws, exclude_tag=("asr:exclude", None)).run()
    assert reversal.status == RollbackStatus.OUT_OF_SCOPE
    assert reversal.reason == "not put back: the resource is tagged asr:exclude (ASR_EXCLUDE_TAG)"
    assert _state(aws, record) == fixed and journal.changes(REVERT) == []
    [other_tag] = Rollback(journal, aws, exclude_tag=("asr:exclude", "no")).run()
    assert other_tag.status == RollbackStatus.REVERTED


def test_a_rollback_reverts_only_the_named_run_s_fixes_in_a_folder_two_run_ids_share(
    aws, tmp_path: Path
) -> None:
    """``manual__...T00:00:00+00:00`` and ``manual__...T00_00_00_00_00`` map to one folder."""
    journal, record = _fixed(aws, tmp_path, "EC2.7")
    other_id = RUN_ID.replace(":", "_").replace("+", "_")
    other = parse_finding(finding(seed_one(aws, "S3.1", MEMBER_ACCOUNT, REGION)), registry())
    root = journal_root(str(tmp_path), "asr_sweep", other_id)
    assert root == journal.root
    run_batch(
        [other], registry(), aws, journal=AuditJournal(root, Origin("asr_sweep", other_id, "b", 1, "s"))
    )
    [reversal] = Rollback(journal, aws, dry=True).run(run=("asr_sweep", RUN_ID))
    assert reversal.finding_ids == [record.finding_id]
    others = Rollback(journal, aws, dry=True).run(run=("asr_sweep", other_id))
    assert [r.finding_ids for r in others] == [[other.finding_id]]


def test_a_run_id_whose_folder_another_run_has_is_refused(tmp_path: Path) -> None:
    RunStore.for_run(str(tmp_path), "asr_sweep", RUN_ID).own("asr_sweep", RUN_ID)
    RunStore.for_run(str(tmp_path), "asr_sweep", RUN_ID).own("asr_sweep", RUN_ID)  # its own: fine
    other_id = RUN_ID.replace(":", "_").replace("+", "_")
    with pytest.raises(ValueError, match=r"would share the folder .* trigger it with another run id"):
        RunStore.for_run(str(tmp_path), "asr_sweep", other_id).own("asr_sweep", other_id)
    # Named as its folder reads, a rerun of failures takes the folder's own run (as a rollback
    # does), never the refused one: here the run has not finished.
    RunStore.for_run(str(tmp_path), "asr_sweep", RUN_ID).write_lines("outcomes/b.jsonl", [])
    with pytest.raises(SelectionError, match=f"run asr_sweep/{other_id} has not finished"):
        failed_in_run(Settings(data_dir=str(tmp_path)), f"asr_sweep/{other_id}")
    # Write-back and the report run after a failed ingest: they must not go on there either.
    from airflow.sdk.exceptions import AirflowFailException

    from asr.tasks import run_context

    context = {"params": {}, "run_id": other_id, "dag": SimpleNamespace(dag_id="asr_sweep")}
    with pytest.MonkeyPatch.context() as patch, pytest.raises(AirflowFailException, match="would share"):
        patch.setenv("ASR_DATA_DIR", str(tmp_path))
        run_context(context)


def test_a_run_triggered_again_under_a_deleted_run_s_id_is_refused(tmp_path: Path) -> None:
    """Airflow lets a run be deleted and its id triggered again: the new run took the old one's
    dry-run decision (a dry run then changed things), approvals and SSM executions as its own."""
    import datetime

    from airflow.sdk.exceptions import AirflowFailException

    from asr.tasks import own_run, run_context

    first, again = (datetime.datetime(2026, 1, 1, h, tzinfo=datetime.UTC) for h in (0, 5))
    store = RunStore.for_run(str(tmp_path), "asr_sweep", RUN_ID)

    def context(made: datetime.datetime) -> dict[str, Any]:
        dag_run = SimpleNamespace(run_after=made, run_type="manual")
        return {
            "params": {},
            "run_id": RUN_ID,
            "dag": SimpleNamespace(dag_id="asr_sweep"),
            "dag_run": dag_run,
        }

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASR_DATA_DIR", str(tmp_path))
        for _ in range(2):  # ingest, then ingest again when the run is cleared: its own folder
            assert own_run(context(first))[1].root == store.root
        assert run_context(context(first))[1].root == store.root
        for step in (own_run, run_context):
            with pytest.raises(
                AirflowFailException, match=r"an earlier run .* deleted since\) left its files"
            ):
                step(context(again))
    # A folder from before run_after was recorded is taken as the run's own, as before.
    store.write_json(OWNER, {"dag_id": "asr_sweep", "run_id": RUN_ID})
    store.refuse_another("asr_sweep", RUN_ID, again.isoformat())


def test_the_selection_narrows_by_control_and_finding(aws, tmp_path: Path) -> None:
    journal, record = _fixed(aws, tmp_path, "EC2.7")
    assert Rollback(journal, aws).run(controls=["S3.1"]) == []
    assert Rollback(journal, aws).run(finding_ids=["arn:other"]) == []
    assert [r.status for r in Rollback(journal, aws, dry=True).run(finding_ids=[record.finding_id])] == [
        RollbackStatus.WOULD_REVERT
    ]


def test_a_change_whose_task_died_is_reverted_when_the_resource_reads_as_the_fix_left_it(
    aws, tmp_path: Path
) -> None:
    """The task was killed between applying the fix and recording its outcome."""
    record = parse_finding(finding(seed_one(aws, "EC2.13", MEMBER_ACCOUNT, REGION)), registry())
    seeded = _state(aws, record)
    action = registry().playbooks[record.playbook].build_action()
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    state = action.read(clients, record.resource_id)
    journal = AuditJournal(journal_root(str(tmp_path), "asr_sweep", RUN_ID), _rollback_origin())
    journal.intend(Target(clients, record.resource_id, (record,), action), Planned(state, action.plan(state)))
    action.apply(clients, record.resource_id, state, action.plan(state))  # ... and then it died

    assert [c.status for c in journal.changes()] == [UNSETTLED]
    [reversal] = Rollback(journal, aws).run()
    assert reversal.status == RollbackStatus.REVERTED
    assert _state(aws, record) == seeded


def test_a_fix_that_failed_after_changing_part_of_the_resource_is_put_back(
    aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default group lost its inbound rules, then the outbound call was refused: the fix is
    FAILED, and what it did change is still reverted."""
    from test_fixes_ec2 import refuse_outbound_once

    record = parse_finding(finding(seed_one(aws, "EC2.2", MEMBER_ACCOUNT, REGION)), registry())
    seeded = _state(aws, record)
    refuse_outbound_once(monkeypatch, "AccessDenied")
    outcome, journal = _fixed_in_a_run(aws, tmp_path, record)
    assert outcome.status == "FAILED" and outcome.message.startswith("AccessDenied")
    assert _state(aws, record)["IpPermissions"] == []

    [reversal] = Rollback(journal, aws).run()
    assert reversal.status == RollbackStatus.REVERTED, reversal.reason
    assert _state(aws, record) == seeded


def test_a_fix_a_retry_finished_is_put_back_to_before_the_first_try(aws, tmp_path: Path) -> None:
    """The first try emptied the default group's inbound rules and died; the retry read that
    half-changed group as its "before" and emptied the outbound. The rollback puts back both:
    what was there before the first try, not before the retry."""
    record = parse_finding(finding(seed_one(aws, "EC2.2", MEMBER_ACCOUNT, REGION)), registry())
    seeded = _state(aws, record)
    assert seeded["IpPermissions"] and seeded["IpPermissionsEgress"]
    action = registry().playbooks[record.playbook].build_action()
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    state = action.read(clients, record.resource_id)
    root = journal_root(str(tmp_path), "asr_sweep", RUN_ID)
    first = AuditJournal(root, Origin("asr_sweep", RUN_ID, "b", 1, "s"))
    first.intend(Target(clients, record.resource_id, (record,), action), Planned(state, action.plan(state)))
    action.apply(clients, record.resource_id, state, {"IpPermissions": []})  # ... and then it died
    [outcome] = run_batch(
        [record], registry(), aws, journal=AuditJournal(root, Origin("asr_sweep", RUN_ID, "b", 2, "s"))
    )
    assert outcome.status == "REMEDIATED", outcome.message

    [reversal] = Rollback(AuditJournal(root, _rollback_origin()), aws).run()
    assert reversal.status == RollbackStatus.REVERTED, reversal.reason
    assert _state(aws, record) == seeded


@pytest.mark.parametrize("vpc", ["own", "default"])
def test_a_fix_planned_again_after_another_fix_is_put_back_without_undoing_the_other(
    aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vpc: str
) -> None:
    """EC2.13's fix revoked port 22 between EC2.19's read and its revoke; EC2.19 planned again
    and revoked 3306 alone. Rolling EC2.19 back opens 3306 again, not 22. In a default VPC
    EC2 revokes 3306 in that one call and names 22 as unknown, without an error: only 3306
    is recorded as the fix's."""
    from helpers import routing_record

    ec2 = Clients(aws, MEMBER_ACCOUNT, REGION).ec2
    if vpc == "default":
        [found] = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
        vpc_id = found["VpcId"]
    else:
        vpc_id = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    group_id = ec2.create_security_group(GroupName="both", Description="test", VpcId=vpc_id)["GroupId"]
    world = [
        {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        for port in (22, 3306)
    ]
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=world)
    arn = f"arn:aws:ec2:{REGION}:{MEMBER_ACCOUNT}:security-group/{group_id}"
    record = routing_record("EC2.19", arn, group_id, MEMBER_ACCOUNT, REGION)
    action_class = type(registry().playbooks["EC2.19"].build_action())
    real, calls = action_class.apply, []

    def after_another_fix(self: Any, clients: Clients, resource_id: str, state: dict, plan: dict) -> None:
        if not calls:
            ec2.revoke_security_group_ingress(GroupId=resource_id, IpPermissions=world[:1])
        calls.append(plan)
        real(self, clients, resource_id, state, plan)

    monkeypatch.setattr(action_class, "apply", after_another_fix)
    outcome, journal = _fixed_in_a_run(aws, tmp_path, record)
    assert outcome.status == "REMEDIATED", outcome.message
    assert [rule["FromPort"] for rule in outcome.before["public_high_risk_ingress"]] == [3306]
    assert len(calls) == (2 if vpc == "own" else 1), "planned again, or answered in part"

    [reversal] = Rollback(journal, aws).run()
    assert reversal.status == RollbackStatus.REVERTED, reversal.reason
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    assert [rule["FromPort"] for rule in group["IpPermissions"]] == [3306]


def test_in_a_default_vpc_a_fix_another_fix_beat_to_every_rule_changed_nothing(
    aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EC2 answers a revoke of rules all gone meanwhile with no error in a default VPC: the
    fix reads again and finds nothing left to do, and a rollback puts nothing back."""
    from helpers import routing_record

    ec2 = Clients(aws, MEMBER_ACCOUNT, REGION).ec2
    [found] = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    group_id = ec2.create_security_group(GroupName="beaten", Description="t", VpcId=found["VpcId"])["GroupId"]
    world = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=world)
    arn = f"arn:aws:ec2:{REGION}:{MEMBER_ACCOUNT}:security-group/{group_id}"
    record = routing_record("EC2.19", arn, group_id, MEMBER_ACCOUNT, REGION)
    action_class = type(registry().playbooks["EC2.19"].build_action())
    real = action_class.apply

    def after_another_fix(self: Any, clients: Clients, resource_id: str, state: dict, plan: dict) -> None:
        ec2.revoke_security_group_ingress(GroupId=resource_id, IpPermissions=world)
        real(self, clients, resource_id, state, plan)

    monkeypatch.setattr(action_class, "apply", after_another_fix)
    outcome, journal = _fixed_in_a_run(aws, tmp_path, record)
    assert (outcome.status, outcome.message) == (
        "ALREADY_COMPLIANT",
        "made compliant by another change first; nothing changed",
    )
    [reversal] = Rollback(journal, aws).run()
    assert (reversal.status, reversal.reason) == (
        RollbackStatus.NOT_FIXED,
        "the fix ended ALREADY_COMPLIANT: made compliant by another change first; nothing changed",
    )
    assert ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]["IpPermissions"] == []


def test_a_fix_that_changed_nothing_is_not_reverted(
    aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused before it changed anything: there is nothing to put back, and no call is made."""
    record = parse_finding(finding(seed_one(aws, "EC2.7", MEMBER_ACCOUNT, REGION)), registry())
    seeded = _state(aws, record)
    _refused(monkeypatch, "EnableEbsEncryptionByDefault")
    outcome, journal = _fixed_in_a_run(aws, tmp_path, record)
    monkeypatch.undo()
    assert outcome.status == "FAILED" and _state(aws, record) == seeded
    [reversal] = Rollback(journal, aws).run()
    assert reversal.status == RollbackStatus.NOT_FIXED
    assert reversal.reason.startswith("the fix ended FAILED: AccessDenied")
    assert journal.changes(REVERT) == [], "nothing attempted, nothing recorded"


def test_a_revert_that_reads_back_wrong_is_failed_not_reverted(
    aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The revert call answered, but the setting did not come back: the rollback says so,
    and Security Hub is not told the fix was put back."""
    from botocore.client import BaseClient

    journal, record = _fixed(aws, tmp_path, "EC2.7")
    fixed = _state(aws, record)
    real = BaseClient._make_api_call

    def ignored(self: Any, name: str, params: dict[str, Any]) -> Any:
        if name == "DisableEbsEncryptionByDefault":
            return {"EbsEncryptionByDefault": False}  # says done, does nothing
        return real(self, name, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", ignored)
    [reversal] = Rollback(journal, aws).run()
    assert reversal.status == RollbackStatus.FAILED
    assert reversal.reason.startswith("read back {'EbsEncryptionByDefault': True}")
    assert _state(aws, record) == fixed


def _fixed_in_a_run(aws: Any, tmp_path: Path, record: RoutingRecord) -> tuple[Any, AuditJournal]:
    """The record's fix in a sweep run, and that run's journal as a rollback opens it."""
    root = journal_root(str(tmp_path), "asr_sweep", RUN_ID)
    [outcome] = run_batch(
        [record], registry(), aws, journal=AuditJournal(root, Origin("asr_sweep", RUN_ID, "b", 1, "s"))
    )
    return outcome, AuditJournal(root, _rollback_origin())


def _refused(monkeypatch: pytest.MonkeyPatch, operation: str, calls: int = 1) -> None:
    """The ``calls``-th call of ``operation`` (by any client) is refused AccessDenied."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    real, seen = BaseClient._make_api_call, []

    def refusing(self: Any, name: str, params: dict[str, Any]) -> Any:
        if name == operation:
            seen.append(params)
            if len(seen) == calls:
                raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, name)
        return real(self, name, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", refusing)


def test_a_config_fix_that_failed_before_the_delivery_channel_is_put_back(
    aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorder was changed, then the log bucket refused: the revert deleted a channel
    that was never made, failed on that, and left the recorder changed."""
    record = parse_finding(finding(seed_one(aws, "Config.1", MEMBER_ACCOUNT, REGION)), registry())
    config = Clients(aws, MEMBER_ACCOUNT, REGION).config
    [seeded] = config.describe_configuration_recorders()["ConfigurationRecorders"]
    _refused(monkeypatch, "CreateBucket")
    outcome, journal = _fixed_in_a_run(aws, tmp_path, record)
    monkeypatch.undo()
    assert outcome.status == "FAILED" and outcome.message.startswith("AccessDenied")
    [reversal] = Rollback(journal, aws).run()
    assert reversal.status == RollbackStatus.REVERTED, reversal.reason
    [now] = config.describe_configuration_recorders()["ConfigurationRecorders"]
    assert (now["roleARN"], now["recordingGroup"]) == (seeded["roleARN"], seeded["recordingGroup"])


def test_a_lambda_fix_that_removed_one_of_two_statements_is_put_back(
    aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The revert added back both public statements, the one still there too (AWS refuses
    that id: a conflict)."""
    seeded = seed_one(aws, "Lambda.1", MEMBER_ACCOUNT, REGION)
    record = parse_finding(finding(seeded), registry())
    functions = Clients(aws, MEMBER_ACCOUNT, REGION)["lambda"]
    name = record.resource_id
    functions.add_permission(
        FunctionName=name, StatementId="public-2", Action="lambda:InvokeFunction", Principal="*"
    )
    _refused(monkeypatch, "RemovePermission", calls=2)
    outcome, journal = _fixed_in_a_run(aws, tmp_path, record)
    monkeypatch.undo()
    assert outcome.status == "FAILED"
    [reversal] = Rollback(journal, aws).run()
    assert reversal.status == RollbackStatus.REVERTED, reversal.reason
    sids = [s["Sid"] for s in json.loads(functions.get_policy(FunctionName=name)["Policy"])["Statement"]]
    assert sorted(sids) == sorted(set(sids)) and "public-2" in sids


def test_a_rollback_waits_for_a_revert_the_service_shows_late(
    aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQS takes up to a minute to show a queue's new attributes: the rollback read once,
    at once, and called a revert that was made FAILED."""
    from asr.actions import sqs

    record = parse_finding(finding(seed_one(aws, "SQS.1", MEMBER_ACCOUNT, REGION)), registry())
    outcome, journal = _fixed_in_a_run(aws, tmp_path, record)
    assert outcome.status == "REMEDIATED"
    real_read, real_revert = sqs.EnableQueueEncryption.read, sqs.EnableQueueEncryption.revert
    stale_reads = []

    def revert(self: Any, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        real_revert(self, clients, resource_id, before)
        stale_reads.append(1)  # the next read is answered as before the change

    def read(self: Any, clients: Clients, resource_id: str) -> dict[str, Any]:
        state = real_read(self, clients, resource_id)
        return {**state, "SqsManagedSseEnabled": True} if stale_reads and stale_reads.pop() else state

    monkeypatch.setattr(sqs.EnableQueueEncryption, "revert", revert)
    monkeypatch.setattr(sqs.EnableQueueEncryption, "read", read)
    [reversal] = Rollback(journal, aws).run()
    assert reversal.status == RollbackStatus.REVERTED, reversal.reason


def test_a_run_id_two_dags_have_must_be_named_with_its_dag(tmp_path: Path) -> None:
    """A person picks run ids through the form: 'nightly' in two DAGs picked the first DAG's."""
    settings = Settings(data_dir=str(tmp_path))
    for dag_id in ("asr_sweep", "asr_remediate"):
        store = RunStore.for_run(str(tmp_path), dag_id, "nightly")
        store.write_lines("outcomes/b.jsonl", [{"finding_id": f"{dag_id}-f", "status": "FAILED"}])
        journal_root(settings.audit_root, dag_id, "nightly").mkdir(parents=True)
    with pytest.raises(ValueError, match="name one, asr_sweep/nightly or asr_remediate/nightly"):
        failed_in_run(settings, "nightly")
    # A run still going (no report yet) has findings queued that read as not run: not taken.
    # (a finished one's failures are rerun: test_manual_and_events).
    with pytest.raises(SelectionError, match="has not finished"):
        failed_in_run(settings, "asr_remediate/nightly")
    with pytest.raises(ValueError, match="runs of several DAGs are called 'nightly'"):
        find_journal(settings.audit_root, "nightly", None, _rollback_origin())
    assert find_journal(settings.audit_root, "asr_remediate/nightly", None, _rollback_origin())


def test_a_run_cleared_and_running_again_is_not_taken_for_finished_by_its_old_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    settings = Settings(data_dir=str(tmp_path))
    store = RunStore.for_run(str(tmp_path), "asr_sweep", "nightly")
    store.write_lines("outcomes/b.jsonl", [])
    store.write_json("report.json", {})  # the first pass's
    states = iter(["running", "failed"])
    monkeypatch.setattr(RuntimeTaskInstance, "get_dagrun_state", staticmethod(lambda **_: next(states)))
    with pytest.raises(SelectionError, match="has not finished"):
        failed_in_run(settings, "asr_sweep/nightly")
    with pytest.raises(SelectionError, match="no failed findings to rerun"):  # ended: read
        failed_in_run(settings, "asr_sweep/nightly")


@pytest.mark.parametrize("run", ["asr_sweep/.", "asr_sweep/..", "..", ".", "asr_sweep/r\n"])
@pytest.mark.parametrize("required", [True, False])
def test_the_form_refuses_a_run_named_by_dots_or_with_a_newline(run: str, required: bool) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    from asr.pipeline import run_reference

    field = run_reference("Run", "a run", required=required)
    with pytest.raises(ParamValidationError):
        field.resolve(run)
    for good in ("asr_sweep/manual__2026-01-01T00:00:00+00:00", "a.b~c"):
        assert field.resolve(good) == good
    assert required or field.resolve(None) is None


def test_a_rollback_whose_marks_security_hub_refused_fails_to_be_tried_again(
    aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unmarked, a reverted finding goes NEW when its control fails anew, and the next sweep
    fixes it again; a new rollback run would find the revert done and mark nothing."""
    import asr.rollback
    import asr.tasks

    _fixed(aws, tmp_path, "EC2.7")
    monkeypatch.setenv("ASR_AUDIT_DIR", str(tmp_path))
    monkeypatch.setenv("ASR_DATA_DIR", str(tmp_path / "runs"))
    busy = {"ErrorCode": "ConcurrentUpdateError"}
    refused = {"updated": 0, "failed": [busy, {"ErrorCode": "InvalidInput"}], "left_alone": []}
    monkeypatch.setattr(asr.rollback, "mark_reverted", lambda *_: refused)
    context = _ended_run_context(tmp_path, run=f"asr_sweep/{RUN_ID}")
    asr.rollback.check_chosen_run(context)
    asr.rollback.decide(asr.tasks.run_context(context)[1], asr.rollback.NOT_ASKED)
    with pytest.raises(RuntimeError, match="Security Hub refused to mark 1 of their findings for now"):
        asr.rollback.revert_chosen_run(context)
    # A refusal no retry mends (InvalidInput) is reported, not tried again for ever.
    refused["failed"] = [{"ErrorCode": "InvalidInput"}]
    context["ti"] = SimpleNamespace(try_number=2)
    assert asr.rollback.revert_chosen_run(context) == {"REVERTED": 1}


def test_a_revert_waits_its_turn_on_a_resource_a_fix_holds(aws, tmp_path: Path) -> None:
    """A revert takes the resource's claim, as a fix does: two edits of one bucket policy at
    once would drop each other's statement."""
    from asr.claims import for_run

    journal, record = _fixed(aws, tmp_path, "EC2.7")
    fixing = for_run(str(tmp_path / "audit"), "asr_sweep", "sweep-2", task_id="fix")
    assert fixing is not None
    [target] = resolve_targets([record], registry(), aws)[0]
    assert fixing.acquire(target.claim, {}) is None
    mine = for_run(str(tmp_path / "audit"), "asr_rollback", "rollback-1", task_id="revert_run")
    [held] = Rollback(journal, aws, claims=mine).run()
    assert held.status == RollbackStatus.FAILED
    assert held.reason == "another task (asr_sweep/sweep-2/fix) is changing it now"
    assert journal.changes(REVERT) == [], "nothing attempted"
    fixing.release_all()
    [done] = Rollback(journal, aws, claims=mine).run()
    assert done.status == RollbackStatus.REVERTED
    assert mine.acquire(target.claim, {}) is None, "the revert let go of its claim"


def test_a_retried_rollback_whose_revert_showed_late_reports_it_reverted(
    aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first try's read-back came before the service showed the revert (FAILED); its retry
    reads the before-state: REVERTED, recorded, and the finding will be marked; not "changed
    since", which left the run green and the finding unmarked."""
    import asr.rollback

    journal, _ = _fixed(aws, tmp_path, "EC2.7")
    monkeypatch.setattr(asr.rollback, "_read_back", lambda *_: {"EbsEncryptionByDefault": True})
    [first] = Rollback(journal, aws).run()
    assert first.status == RollbackStatus.FAILED
    monkeypatch.undo()
    retry = AuditJournal(journal.root, Origin("asr_rollback", "rollback-1", "rollback", 2, "bob"))
    [again] = Rollback(retry, aws).run()
    assert again.status == RollbackStatus.REVERTED, again.reason
    assert [c.status for c in retry.changes(REVERT)] == [RollbackStatus.FAILED, RollbackStatus.REVERTED]


def _revert_failed_part_way(aws: Any, tmp_path: Path) -> tuple[AuditJournal, RoutingRecord, dict[str, Any]]:
    """EC2.2 fixed, then a rollback (rollback-1) that put back its inbound rules, not its
    outbound ones, and recorded FAILED with what it left; the seeded state."""
    record = parse_finding(finding(seed_one(aws, "EC2.2", MEMBER_ACCOUNT, REGION)), registry())
    seeded = _state(aws, record)
    _, journal = _fixed_in_a_run(aws, tmp_path, record)
    [change] = journal.changes()
    Rollback(journal, aws)._intend_revert(change.intent, _state(aws, record))
    ec2 = Clients(aws, MEMBER_ACCOUNT, REGION).ec2
    ec2.authorize_security_group_ingress(GroupId=record.resource_id, IpPermissions=seeded["IpPermissions"])
    left = {key: _state(aws, record)[key] for key in change.intent["before"]}
    journal.record(
        {"event": "settle", "kind": REVERT, "status": "FAILED", "message": "refused", "after": left}
        | {k: change.intent[k] for k in ("account_id", "region", "resource_id", "action", "playbook")}
    )
    return journal, record, seeded


def _another_rollback(journal: AuditJournal) -> AuditJournal:
    return AuditJournal(journal.root, Origin("asr_rollback", "rollback-2", "rollback", 1, "bob"))


def test_a_revert_left_part_way_is_finished_by_a_new_rollback_run_its_dry_run_says_so(
    aws, tmp_path: Path
) -> None:
    """A retry failed it for good, and a new rollback run called it "changed since" and went
    green, leaving the group half put back."""
    journal, record, seeded = _revert_failed_part_way(aws, tmp_path)
    half = _state(aws, record)
    [dry] = Rollback(_another_rollback(journal), aws, dry=True).run()
    assert dry.status == RollbackStatus.WOULD_REVERT
    assert dry.reason.startswith("would finish the revert an earlier rollback try began")
    assert _state(aws, record) == half
    [finished] = Rollback(_another_rollback(journal), aws).run()
    assert finished.status == RollbackStatus.REVERTED, finished.reason
    assert _state(aws, record) == seeded


def test_a_resource_edited_after_a_rollback_failed_is_left_to_the_person(aws, tmp_path: Path) -> None:
    """Neither as the fix left it nor as the failed revert left it: a person's edit since."""
    journal, record, _ = _revert_failed_part_way(aws, tmp_path)
    ec2 = Clients(aws, MEMBER_ACCOUNT, REGION).ec2
    rule = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
    ec2.authorize_security_group_egress(GroupId=record.resource_id, IpPermissions=[rule])
    edited = _state(aws, record)
    [left] = Rollback(_another_rollback(journal), aws).run()
    assert left.status == RollbackStatus.CHANGED_SINCE, left.reason
    assert _state(aws, record) == edited


def test_a_revert_a_died_rollback_made_is_recorded_by_the_run_that_finds_it(aws, tmp_path: Path) -> None:
    """Its settle paired with the dead run's intent: the finding run's retry (after Security Hub
    refused its marks for now) found it ALREADY_REVERTED and marked nothing."""
    record = parse_finding(finding(seed_one(aws, "EC2.2", MEMBER_ACCOUNT, REGION)), registry())
    _, journal = _fixed_in_a_run(aws, tmp_path, record)
    [change] = journal.changes()
    Rollback(journal, aws)._intend_revert(change.intent, _state(aws, record))
    action = actions.build(change.intent["action"], change.intent["params"])
    action.revert(
        Clients(aws, MEMBER_ACCOUNT, REGION), record.resource_id, change.intent["state"]
    )  # then died
    for _ in range(2):  # rollback-2, and its retry
        [found] = Rollback(_another_rollback(journal), aws).run()
        assert found.status == RollbackStatus.REVERTED, found.reason


def _ended_run_context(tmp_path: Path, ended: bool = True, **params: Any) -> dict[str, Any]:
    """An asr_rollback task's context, for a run of asr_sweep (RUN_ID) that has ended (its report
    written: outside a worker Airflow cannot be asked) or not."""
    if ended:
        RunStore.for_run(str(tmp_path / "runs"), "asr_sweep", RUN_ID).write_json("report.json", {})
    return {
        "params": params,
        "run_id": "rollback-9",
        "dag": SimpleNamespace(dag_id="asr_rollback"),
        "dag_run": SimpleNamespace(run_type="manual", triggering_user_name="bob"),
        "ti": SimpleNamespace(try_number=1),
    }


def _roll_back(context: dict[str, Any]) -> dict[str, int]:
    """What asr_rollback's tasks do with nobody asked (``ASR_ROLLBACK_APPROVAL`` off): check,
    then revert; the totals of the report (a dry run's is the check's)."""
    from asr.rollback import NOT_ASKED, check_chosen_run, decide, revert_chosen_run
    from asr.tasks import run_context

    check_chosen_run(context)
    if not context["params"].get("dry_run"):
        decide(run_context(context)[1], NOT_ASKED)  # as the approval step does when it does not ask
    return revert_chosen_run(context)


def test_a_run_still_going_is_not_rolled_back_but_a_dry_run_may_look(
    aws, tmp_path: Path, rollback_env: None
) -> None:
    """Its fixes after the rollback would stay, and its write-back would mark RESOLVED what the
    rollback marked reverted."""
    from asr.rollback import RollbackError, check_chosen_run

    _, record = _fixed(aws, tmp_path, "EC2.7")
    fixed = _state(aws, record)
    with pytest.raises(RollbackError, match=re.escape(f"run asr_sweep/{RUN_ID} has not finished")):
        check_chosen_run(_ended_run_context(tmp_path, ended=False, run=f"asr_sweep/{RUN_ID}"))
    dry = _ended_run_context(tmp_path, ended=False, run=f"asr_sweep/{RUN_ID}", dry_run=True)
    assert _roll_back(dry) == {"WOULD_REVERT": 1}
    assert _state(aws, record) == fixed
    assert _roll_back(_ended_run_context(tmp_path, run=f"asr_sweep/{RUN_ID}")) == {"REVERTED": 1}


def test_a_rollback_naming_what_the_run_did_not_change_puts_nothing_back(
    aws, tmp_path: Path, rollback_env: None
) -> None:
    """A typo in a finding id or control read as "nothing to do", and the run went green."""
    from asr.rollback import RollbackError

    _, record = _fixed(aws, tmp_path, "EC2.7")
    fixed = _state(aws, record)
    run = f"asr_sweep/{RUN_ID}"
    for params, named in (
        ({"finding_ids": [record.finding_id, "arn:typo"]}, "finding arn:typo"),
        ({"controls": ["EC2.7", "S3.1"]}, "control S3.1"),
        ({"controls": ["S3.1"], "finding_ids": [record.finding_id]}, "control S3.1"),
    ):
        with pytest.raises(RollbackError, match=f"recorded no change for {named}: nothing was put back"):
            _roll_back(_ended_run_context(tmp_path, run=run, **params))
        assert _state(aws, record) == fixed
    # Pasted with a trailing space and a Windows line end, the id is the finding's.
    pasted = _ended_run_context(tmp_path, run=run, finding_ids=[f"{record.finding_id} \r"])
    assert _roll_back(pasted) == {"REVERTED": 1}


def test_a_run_named_as_its_folder_reads_finds_its_changes(aws, tmp_path: Path, rollback_env: None) -> None:
    """The run's folder turns ':' and '+' into '_': copied from there, the name found the journal
    and matched none of its changes, and the rollback said "nothing to do"."""

    _fixed(aws, tmp_path, "EC2.7")
    as_folder = RUN_ID.replace(":", "_").replace("+", "_")
    assert _roll_back(_ended_run_context(tmp_path, run=f"asr_sweep/{as_folder}")) == {"REVERTED": 1}


def test_a_fix_put_back_in_part_is_reported_so_and_marked_in_security_hub(aws, tmp_path: Path) -> None:
    """IAM.22's keys come back, its deleted console password cannot: reported NOT_REVERSIBLE, the
    finding went unmarked, and the next sweep turned the reactivated keys off again."""
    from asr.rollback import PUT_BACK

    journal, record = _fixed(aws, tmp_path, "IAM.22")
    [dry] = Rollback(journal, aws, dry=True).run()
    assert dry.status == RollbackStatus.WOULD_REVERT  # and says what cannot come back
    assert "unused_console_password" not in dry.reason.split("; not ")[0]
    assert "; not unused_console_password: the console password was deleted" in dry.reason
    [partly] = Rollback(journal, aws).run()
    assert partly.status == RollbackStatus.PARTLY_REVERTED and partly.status in PUT_BACK
    assert "; not unused_console_password: the console password was deleted" in partly.reason
    keys = {
        k["Status"]
        for k in Clients(aws, MEMBER_ACCOUNT, REGION).iam.list_access_keys(UserName=record.resource_id)[
            "AccessKeyMetadata"
        ]
    }
    assert keys == {"Active"}
    [again] = Rollback(journal, aws).run()  # a retry of the same rollback reports it as it ended
    assert (again.status, again.reason) == (partly.status, partly.reason)


def _no_detector(clients: Clients) -> None:
    for detector in clients.guardduty.list_detectors()["DetectorIds"]:  # the seed's is suspended
        clients.guardduty.delete_detector(DetectorId=detector)


def _detector_on(clients: Clients) -> bool:
    [detector] = clients.guardduty.list_detectors()["DetectorIds"]
    return clients.guardduty.get_detector(DetectorId=detector)["Status"] == "ENABLED"


def _macie_off(clients: Clients) -> None:
    clients.macie2.disable_macie()  # the seed's is paused


def _macie_on(clients: Clients) -> bool:
    return clients.macie2.get_macie_session()["status"] == "ENABLED"


@pytest.mark.parametrize(
    ("control", "turn_off", "is_on", "why"),
    [
        ("GuardDuty.1", _no_detector, _detector_on, "deleting the one the fix created deletes its findings"),
        ("Macie.1", _macie_off, _macie_on, "disabling it deletes its findings"),
    ],
)
def test_a_fix_that_cannot_be_undone_from_its_before_state_is_refused_in_a_dry_run_too(
    aws, tmp_path: Path, control: str, turn_off: Any, is_on: Any, why: str
) -> None:
    """GuardDuty or Macie turned on where it was off: the dry run promised a revert the real
    one refused, and nothing is turned off."""
    record = parse_finding(finding(seed_one(aws, control, MEMBER_ACCOUNT, REGION)), registry())
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    turn_off(clients)
    outcome, journal = _fixed_in_a_run(aws, tmp_path, record)
    assert outcome.status == "REMEDIATED"
    for dry in (True, False):
        [reversal] = Rollback(journal, aws, dry=dry).run()
        assert reversal.status == RollbackStatus.NOT_REVERSIBLE, reversal.reason
        assert why in reversal.reason
    assert is_on(clients)


def test_a_key_deleted_since_the_fix_does_not_fail_the_rollback_for_ever(aws, tmp_path: Path) -> None:
    """IAM.3's revert skips a deactivated key deleted since, but the read-back was held to the
    whole before-state: every try and every new rollback run failed, with nothing left to do.
    The user has two old keys: the one left is put back (none left: nothing to put back)."""
    from asr.local.seeders import days_ago
    from asr.local.seeders.iam import set_credential_history

    record = parse_finding(finding(seed_one(aws, "IAM.3", MEMBER_ACCOUNT, REGION)), registry())
    iam = Clients(aws, MEMBER_ACCOUNT, REGION).iam
    other = iam.create_access_key(UserName=record.resource_id)["AccessKey"]["AccessKeyId"]
    set_credential_history(aws.endpoint_for("iam"), MEMBER_ACCOUNT, record.resource_id, other, days_ago(400))
    _, journal = _fixed_in_a_run(aws, tmp_path, record)
    keys = iam.list_access_keys(UserName=record.resource_id)["AccessKeyMetadata"]
    assert len(keys) == 2 and {k["Status"] for k in keys} == {"Inactive"}
    iam.delete_access_key(UserName=record.resource_id, AccessKeyId=keys[0]["AccessKeyId"])
    [reversal] = Rollback(journal, aws).run()
    assert reversal.status == RollbackStatus.REVERTED, reversal.reason
    assert reversal.reason.endswith(": the rest was deleted since)")
    left = iam.list_access_keys(UserName=record.resource_id)["AccessKeyMetadata"]
    assert {k["AccessKeyId"]: k["Status"] for k in left} == {k["AccessKeyId"]: "Active" for k in keys[1:]}


def test_a_fix_that_deleted_only_a_password_is_not_reversible_nor_marked_reverted(
    aws, tmp_path: Path
) -> None:
    """Reported PARTLY_REVERTED with no key put back, the finding was marked reverted, and sweeps
    then left it alone for good though nothing had been undone."""
    from asr.rollback import PUT_BACK

    record = parse_finding(finding(seed_one(aws, "IAM.22", MEMBER_ACCOUNT, REGION)), registry())
    iam = Clients(aws, MEMBER_ACCOUNT, REGION).iam
    for key in iam.list_access_keys(UserName=record.resource_id)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=record.resource_id, AccessKeyId=key["AccessKeyId"])
    outcome, journal = _fixed_in_a_run(aws, tmp_path, record)
    assert outcome.status == "REMEDIATED"
    for dry in (True, False):
        [reversal] = Rollback(journal, aws, dry=dry).run()
        assert reversal.status == RollbackStatus.NOT_REVERSIBLE and reversal.status not in PUT_BACK
        assert "the console password was deleted" in reversal.reason


def _found_and_fixed(
    aws: Any, tmp_path: Path, control: str, count: int = 1
) -> tuple[AuditJournal, list[RoutingRecord]]:
    """``count`` seeded resources of ``control``, their findings in Security Hub (for a rollback
    to mark), each fixed in the run RUN_ID; its journal as a rollback opens it."""
    raws = [finding(seed_one(aws, control, MEMBER_ACCOUNT, REGION, n)) for n in range(count)]
    import_findings(aws.admin_client("securityhub", REGION), raws)
    records = [parse_finding(raw, registry()) for raw in raws]
    for record in records:
        outcome, journal = _fixed_in_a_run(aws, tmp_path, record)
        assert outcome.status == "REMEDIATED", outcome.message
    return journal, records


def _marked(aws: Any, record: RoutingRecord) -> tuple[str, dict[str, str]]:
    """The workflow status of the record's finding, and its user-defined fields."""
    query = {"Id": [{"Value": record.finding_id, "Comparison": "EQUALS"}]}
    [found] = aws.admin_client("securityhub", REGION).get_findings(Filters=query)["Findings"]
    return found["Workflow"]["Status"], found.get("UserDefinedFields", {})


def _open_to_the_world(aws: Any, group_id: str) -> bool:
    [group] = Clients(aws, MEMBER_ACCOUNT, REGION).ec2.describe_security_groups(GroupIds=[group_id])[
        "SecurityGroups"
    ]
    return any(r.get("CidrIp") == "0.0.0.0/0" for p in group["IpPermissions"] for r in p.get("IpRanges", []))


@pytest.mark.parametrize("deleted", ["before the check", "between the check and the revert"])
def test_a_resource_deleted_since_the_fix_has_nothing_to_put_back_and_the_others_are_put_back(
    aws, tmp_path: Path, rollback_env: None, deleted: str
) -> None:
    """A run fixed two security groups, and one was deleted since: its check failed
    (InvalidGroup.NotFound), so nobody was asked and nothing of the run was put back, for a cause
    nobody could mend; deleted after the check, its revert failed the rollback run."""
    from asr.rollback import NOT_ASKED, check_chosen_run, decide, revert_chosen_run

    _, (kept, gone) = _found_and_fixed(aws, tmp_path, "EC2.13", 2)
    context = _ended_run_context(tmp_path, run=f"asr_sweep/{RUN_ID}")
    store = RunStore.for_run(str(tmp_path / "runs"), "asr_rollback", "rollback-9")

    def delete() -> None:
        Clients(aws, MEMBER_ACCOUNT, REGION).ec2.delete_security_group(GroupId=gone.resource_id)

    if deleted == "before the check":
        delete()
        assert check_chosen_run(context) == {"WOULD_REVERT": 1, "CHANGED_SINCE": 1}
    else:
        assert check_chosen_run(context) == {"WOULD_REVERT": 2}
        delete()
    decide(store, NOT_ASKED)
    assert revert_chosen_run(context) == {"REVERTED": 1, "CHANGED_SINCE": 1}
    report = store.read_json("rollback.json")
    why = {c["resource_id"]: c["reason"] for c in report["changes"]}
    assert why[gone.resource_id].startswith("nothing to put back, deleted since: InvalidGroup.NotFound")
    assert _open_to_the_world(aws, kept.resource_id)
    assert report["security_hub"]["updated"] == 1
    assert _marked(aws, kept) == ("NOTIFIED", {"asr:reverted": "asr_rollback/rollback-9"})
    assert _marked(aws, gone)[1].get("asr:reverted") is None


def test_a_resource_deleted_while_its_revert_runs_has_nothing_to_put_back(
    aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read as the fix left it, then deleted before the revert's call: that failed, and every
    retry and new rollback run failed too, with nothing left to do."""
    from asr.actions.ec2 import RevokePublicAdminIngress

    journal, _ = _fixed(aws, tmp_path, "EC2.13")
    revert = RevokePublicAdminIngress.revert

    def deleted_first(self: Any, clients: Clients, resource_id: str, before: dict[str, Any]) -> Any:
        clients.ec2.delete_security_group(GroupId=resource_id)
        return revert(self, clients, resource_id, before)

    monkeypatch.setattr(RevokePublicAdminIngress, "revert", deleted_first)
    [reversal] = Rollback(journal, aws).run()
    assert reversal.status == RollbackStatus.CHANGED_SINCE, reversal.reason
    assert reversal.reason.startswith("nothing to put back, deleted since: InvalidGroup.NotFound")
    assert [c.status for c in journal.changes(REVERT)] == [RollbackStatus.CHANGED_SINCE]
    [again] = Rollback(journal, aws).run()
    assert again.status == RollbackStatus.CHANGED_SINCE, again.reason


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ("InvalidGroup.NotFound", RollbackStatus.CHANGED_SINCE),
        ("NoSuchEntity", RollbackStatus.CHANGED_SINCE),
        ("ResourceNotFoundException", RollbackStatus.CHANGED_SINCE),
        ("DBInstanceNotFound", RollbackStatus.CHANGED_SINCE),
        ("AccessDenied", RollbackStatus.FAILED),
        ("NoSuchBucketPolicy", RollbackStatus.FAILED),  # a setting missing, not the resource
        pytest.param(KeyError("GroupId"), RollbackStatus.FAILED, id="KeyError"),  # a read gone wrong
    ],
)
def test_only_an_error_that_says_the_resource_is_gone_reads_as_deleted(
    aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Any, status: str
) -> None:
    from botocore.exceptions import ClientError

    from asr.actions.ec2 import EnableEbsEncryptionByDefault

    journal, _ = _fixed(aws, tmp_path, "EC2.7")

    def unreadable(*_: Any) -> dict[str, Any]:
        raise error if isinstance(error, Exception) else ClientError({"Error": {"Code": error}}, "Read")

    monkeypatch.setattr(EnableEbsEncryptionByDefault, "read", unreadable)
    for dry in (True, False):
        [reversal] = Rollback(journal, aws, dry=dry).run()
        assert reversal.status == status, reversal.reason


@pytest.mark.parametrize(
    ("control", "also"),
    [
        ("IAM.3", ""),
        ("IAM.22", "; not unused_console_password: the console password was deleted"),
        ("EC2.1", ""),
    ],
    ids=["IAM.3", "IAM.22", "EC2.1"],
)
def test_a_fix_all_of_whose_parts_were_deleted_since_is_not_reported_nor_marked_reverted(
    aws, tmp_path: Path, rollback_env: None, control: str, also: str
) -> None:
    """Every access key the fix turned off (or snapshot it made private) deleted since: the check
    promised to put them back, the revert put back none and said REVERTED, and the finding was
    marked reverted, which sweeps then left alone for good."""
    journal, [record] = _found_and_fixed(aws, tmp_path, control)
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    if control == "EC2.1":
        for snapshot in clients.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]:
            clients.ec2.delete_snapshot(SnapshotId=snapshot["SnapshotId"])
    else:
        for key in clients.iam.list_access_keys(UserName=record.resource_id)["AccessKeyMetadata"]:
            clients.iam.delete_access_key(UserName=record.resource_id, AccessKeyId=key["AccessKeyId"])
    [dry] = Rollback(journal, aws, dry=True).run()  # as the check before the approval
    assert dry.status == RollbackStatus.CHANGED_SINCE, dry.reason
    assert dry.reason.startswith("nothing to put back, deleted since: the ") and "not found" in dry.reason
    [reversal] = Rollback(journal, aws).run()  # as a revert that finds them gone
    assert reversal.status == RollbackStatus.CHANGED_SINCE, reversal.reason
    assert reversal.reason.startswith("nothing to put back, deleted since: {") and also in reversal.reason
    context = _ended_run_context(tmp_path, run=f"asr_sweep/{RUN_ID}")
    assert _roll_back(context) == {"CHANGED_SINCE": 1}  # through the tasks, asking nobody
    assert _marked(aws, record) == ("NEW", {})


@pytest.mark.parametrize(
    ("control", "status"), [("IAM.3", RollbackStatus.REVERTED), ("IAM.22", RollbackStatus.PARTLY_REVERTED)]
)
def test_a_key_that_aged_past_the_limit_since_the_fix_does_not_stop_the_rollback(
    aws, tmp_path: Path, control: str, status: str
) -> None:
    """IAM.3 reads the active keys older than 90 days, IAM.22 those unused for 45: a second key
    that passed that age after the fix read as a change since, and the rollback left the
    deactivated key off."""
    from asr.local.seeders import days_ago
    from asr.local.seeders.iam import set_credential_history

    record = parse_finding(finding(seed_one(aws, control, MEMBER_ACCOUNT, REGION)), registry())
    iam = Clients(aws, MEMBER_ACCOUNT, REGION).iam
    young = iam.create_access_key(UserName=record.resource_id)["AccessKey"]["AccessKeyId"]
    _, journal = _fixed_in_a_run(aws, tmp_path, record)
    set_credential_history(aws.endpoint_for("iam"), MEMBER_ACCOUNT, record.resource_id, young, days_ago(120))
    [reversal] = Rollback(journal, aws).run()
    assert reversal.status == status, reversal.reason
    keys = iam.list_access_keys(UserName=record.resource_id)["AccessKeyMetadata"]
    assert {k["Status"] for k in keys} == {"Active"} and young in {k["AccessKeyId"] for k in keys}


def _fix_again(aws: Any, record: RoutingRecord, base: str, run_id: str) -> AuditJournal:
    """A later sweep's fix of the same resource, journaled under ``base``."""
    root = journal_root(base, "asr_sweep", run_id, "aws_default")
    [outcome] = run_batch(
        [record], registry(), aws, journal=AuditJournal(root, Origin("asr_sweep", run_id, "b", 1, "s"))
    )
    assert outcome.status == "REMEDIATED", outcome.message
    return AuditJournal(root, _rollback_origin())


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_fix_undone_and_fixed_again_by_a_later_run_waits_for_that_run_s_rollback(
    aws, tmp_path: Path, where: str
) -> None:
    """The owner turned EBS encryption off again, and the next sweep turned it on: the resource
    reads as both fixes left it. Rolling the first run back would undo the second's fix
    (and the owner's change); it is refused, naming the run to roll back first."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    base = str(tmp_path)
    if where == "s3":
        S3Hook(aws_conn_id="aws_default").create_bucket("asr-audit")
        base = "s3://asr-audit/audit"
    record = parse_finding(finding(seed_one(aws, "EC2.7", MEMBER_ACCOUNT, REGION)), registry())
    first = _fix_again(aws, record, base, RUN_ID)
    ec2 = Clients(aws, MEMBER_ACCOUNT, REGION).ec2
    ec2.disable_ebs_encryption_by_default()
    second = _fix_again(aws, record, base, "scheduled__2026-01-02T00:00:00+00:00")
    # What else may lie in the audit folder is passed over: a file an editor left, a folder an
    # S3 console made (an empty object named with a slash).
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    for stray in (f"activity/{today}/", f"activity/{today}/notes.txt", "asr_sweep/notes.txt"):
        if where == "s3":
            S3Hook(aws_conn_id="aws_default").load_string("", f"audit/{stray}", "asr-audit")
        elif not stray.endswith("/"):
            (tmp_path / stray).write_text("")

    for dry in (True, False):
        [refused] = Rollback(first, aws, dry=dry).run()
        assert refused.status == RollbackStatus.CHANGED_SINCE
        assert refused.reason.startswith("undone since and fixed again, by asr_sweep/scheduled__2026-01-02")
        assert refused.reason.endswith("roll back asr_sweep/scheduled__2026-01-02T00:00:00+00:00 first")
    assert first.changes(REVERT) == [] and ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"]

    [newest] = Rollback(second, aws).run()
    assert newest.status == RollbackStatus.REVERTED, newest.reason
    assert not ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"], "as the owner left it"
    # The later fix is put back: the first run's reads as changed since, as any other would.
    [older] = Rollback(first, aws).run()
    assert (
        older.status == RollbackStatus.CHANGED_SINCE
        and "not {'EbsEncryptionByDefault': True}" in older.reason
    )


def test_a_later_run_s_fix_of_other_settings_of_the_resource_does_not_stop_the_rollback(
    aws, tmp_path: Path
) -> None:
    """A later run fixed the same resource by the same action, but not what this fix left
    (another statement, another key): nothing of the later fix is undone by putting this back."""
    journal, _ = _fixed(aws, tmp_path, "EC2.7")
    later = journal_root(str(tmp_path), "asr_sweep", "scheduled__2026-01-02T00:00:00+00:00")
    [change] = journal.changes(FIX)
    moved = {**change.intent, "id": "later", "run_id": "scheduled__2026-01-02T00:00:00+00:00"}
    moved["state"] = {**change.intent["state"], **change.settle["after"]}  # found it as the fix left it
    AuditJournal(later, Origin("asr_sweep", moved["run_id"], "b", 1, "s")).record(
        {k: v for k, v in moved.items() if k not in ("time", "seq")}
    )
    [reversal] = Rollback(journal, aws, dry=True).run()
    assert reversal.status == RollbackStatus.WOULD_REVERT, reversal.reason


def test_a_fix_the_same_run_made_again_under_another_playbook_is_not_a_later_run_s(
    aws, tmp_path: Path
) -> None:
    """Two playbooks share an action (IAM.8 and IAM.22): the run's own second fix of the
    resource is this rollback's to undo too, newest first, not another run's to wait for."""
    journal, _ = _fixed(aws, tmp_path, "EC2.7")
    [change] = journal.changes(FIX)
    twin = {k: v for k, v in change.intent.items() if k not in ("time", "seq")} | {
        "id": "twin",
        "playbook": "X.1",
    }
    AuditJournal(journal.root, Origin("asr_sweep", RUN_ID, "b2", 1, "s")).record(twin)
    assert [r.status for r in Rollback(journal, aws, dry=True).run()] == [RollbackStatus.WOULD_REVERT] * 2


def test_a_later_run_s_try_its_retry_took_up_goes_with_the_retry_s_rollback(aws, tmp_path: Path) -> None:
    """The later run's first try died after its intent; its retry fixed the resource, and that
    run was rolled back. The owner then turned encryption on again: the first run's fix reads
    as it left it, and the dead try's intent, superseded, does not stand in its way."""
    record = parse_finding(finding(seed_one(aws, "EC2.7", MEMBER_ACCOUNT, REGION)), registry())
    first = _fix_again(aws, record, str(tmp_path), RUN_ID)
    ec2 = Clients(aws, MEMBER_ACCOUNT, REGION).ec2
    ec2.disable_ebs_encryption_by_default()
    later = "scheduled__2026-01-02T00:00:00+00:00"
    root = journal_root(str(tmp_path), "asr_sweep", later)
    [change] = first.changes(FIX)
    died = {k: v for k, v in change.intent.items() if k in ("event", "kind", "account_id", "region")}
    died |= {k: change.intent[k] for k in ("resource_id", "action", "playbook", "params", "before", "plan")}
    died |= {"id": "try-1", "state": {**change.intent["state"], "EbsEncryptionByDefault": False}}
    AuditJournal(root, Origin("asr_sweep", later, "b", 1, "s")).record(died)
    second = _fix_again(aws, record, str(tmp_path), later)  # the retry (try 1 again: the same writer file)
    assert [r.status for r in Rollback(second, aws).run()] == [RollbackStatus.REVERTED]
    ec2.enable_ebs_encryption_by_default()

    [reversal] = Rollback(first, aws, dry=True).run()
    assert reversal.status == RollbackStatus.WOULD_REVERT, reversal.reason
