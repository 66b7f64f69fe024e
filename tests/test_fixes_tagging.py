"""DynamoDB.5, GuardDuty.2 and GuardDuty.4: the tags a resource lacks added, none it has changed."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import assert_extracted_id
from test_actions import fix_read_back_stale
from test_fixes_data import assert_permissions_cover_served_calls

from asr import actions, local
from asr.actions import ChangedMeanwhile
from asr.audit import AuditJournal, Origin, journal_root
from asr.aws import Clients
from asr.findings import FindingError, RoutingRecord, parse_finding
from asr.local import MEMBER_ACCOUNT
from asr.local.request_log_ext import is_write
from asr.local.seed import finding, seed_one
from asr.local.seeders import Seeded
from asr.local.seeders.dynamodb import on_demand_table
from asr.playbooks import PlaybookError, parse_playbook, registry
from asr.remediate import Outcome, Status, remediate_resource, run_batch
from asr.rollback import Reversal, Rollback, RollbackStatus

REGION = "us-east-1"
CONTROLS = ["DynamoDB.5", "GuardDuty.2", "GuardDuty.4"]
SERVICES = {"DynamoDB.5": "dynamodb", "GuardDuty.2": "guardduty", "GuardDuty.4": "guardduty"}
DETECTOR = f"arn:aws:guardduty:{REGION}:{MEMBER_ACCOUNT}:detector/{'0a1b2c3d' * 4}"
TABLE = f"arn:aws:dynamodb:{REGION}:{MEMBER_ACCOUNT}:table"


def clients(aws: Any) -> Clients:
    return Clients(aws, MEMBER_ACCOUNT, REGION)


def tags(aws: Any, seeded: Seeded) -> dict[str, str]:
    """Every tag of the seeded resource, AWS's own included, as its service lists them."""
    arn = seeded.resource_id
    if seeded.control_id == "DynamoDB.5":
        pages = clients(aws).dynamodb.get_paginator("list_tags_of_resource").paginate(ResourceArn=arn)
        return {tag["Key"]: tag["Value"] for page in pages for tag in page["Tags"]}
    return dict(clients(aws).guardduty.list_tags_for_resource(ResourceArn=arn)["Tags"])


def tag(aws: Any, seeded: Seeded, **values: str) -> None:
    """Tag the seeded resource as a person would."""
    arn = seeded.resource_id
    if seeded.control_id == "DynamoDB.5":
        listed = [{"Key": key, "Value": value} for key, value in values.items()]
        clients(aws).dynamodb.tag_resource(ResourceArn=arn, Tags=listed)
    else:
        clients(aws).guardduty.tag_resource(ResourceArn=arn, Tags=values)


def record(seeded: Seeded, required: list[str] | None = None) -> RoutingRecord:
    """The routing record of the seeded resource's finding, carrying the control's
    requiredTagKeys as Security Hub sends them (none: the parameter left out)."""
    raw = finding(seeded)
    if required is not None:
        raw["Compliance"]["SecurityControlParameters"] = [{"Name": "requiredTagKeys", "Value": required}]
    return parse_finding(raw, registry())


def fix(
    aws: Any, seeded: Seeded, required: list[str] | None = None, journal: Any = None, **overrides: Any
) -> Outcome:
    [outcome] = run_batch([record(seeded, required)], registry(), aws, overrides or None, journal=journal)
    return outcome


def writes(service: str) -> list[str]:
    return [
        call["action"] for call in local.served_requests() if call["service"] == service and is_write(call)
    ]


@pytest.mark.parametrize("control", CONTROLS)
def test_an_untagged_resource_gets_the_playbook_s_tags_and_a_second_run_changes_nothing(
    aws: Any, control: str
) -> None:
    seeded = seed_one(aws, control, MEMBER_ACCOUNT, REGION)
    local.served_requests(clear=True)
    outcome = fix(aws, seeded)
    assert (outcome.status, outcome.before, outcome.after) == (
        Status.REMEDIATED,
        {"tag:Owner": None},
        {"tag:Owner": "unassigned"},
    ), outcome.message
    assert tags(aws, seeded) == {"Owner": "unassigned"}
    assert outcome.caveat == (
        "tags holding the placeholder 'unassigned': Owner; someone who knows the resource should set "
        "their real values"
    )
    assert outcome.message.endswith(outcome.caveat)
    assert writes(SERVICES[control]) == ["TagResource"]
    assert_permissions_cover_served_calls(control)

    local.served_requests(clear=True)
    again = fix(aws, seeded)
    assert (again.status, again.before) == (Status.ALREADY_COMPLIANT, None)
    assert writes(SERVICES[control]) == []


@pytest.mark.parametrize("control", CONTROLS)
def test_the_keys_the_finding_requires_are_added_with_their_configured_values(aws: Any, control: str) -> None:
    """requiredTagKeys from the finding's control parameters; a key's value from the tags
    parameter, else the placeholder; a tag the resource has, required or not, keeps its value."""
    seeded = seed_one(aws, control, MEMBER_ACCOUNT, REGION)
    tag(aws, seeded, team="web", Owner="alice")
    parsed = record(seeded, ["Owner", "CostCenter", "Environment"])
    assert parsed.parameters == {"required_tag_keys": ["Owner", "CostCenter", "Environment"]}
    outcome = fix(aws, seeded, ["Owner", "CostCenter", "Environment"], tags={"Environment": "prod"})
    assert (outcome.status, outcome.before, outcome.after) == (
        Status.REMEDIATED,
        {"tag:CostCenter": None, "tag:Environment": None},
        {"tag:CostCenter": "unassigned", "tag:Environment": "prod"},
    ), outcome.message
    assert tags(aws, seeded) == {
        "team": "web",
        "Owner": "alice",
        "CostCenter": "unassigned",
        "Environment": "prod",
    }
    assert outcome.caveat.startswith("tags holding the placeholder 'unassigned': CostCenter;")


def test_without_a_placeholder_a_required_key_with_no_value_is_refused_and_nothing_tagged(aws: Any) -> None:
    seeded = seed_one(aws, "DynamoDB.5", MEMBER_ACCOUNT, REGION)
    local.served_requests(clear=True)
    outcome = fix(aws, seeded, ["Owner", "CostCenter"], placeholder=None, tags={"Owner": "platform"})
    assert outcome.status == Status.FAILED
    assert outcome.message == (
        "ValueError: no value is configured for the required tag keys CostCenter, and the placeholder is "
        "null: give each a value in the playbook's tags parameter (tags: {CostCenter: ...}), or set a "
        "placeholder; nothing tagged"
    )
    assert (writes("dynamodb"), tags(aws, seeded)) == ([], {})
    with_values = fix(
        aws, seeded, ["Owner", "CostCenter"], placeholder=None, tags={"Owner": "p", "CostCenter": "c"}
    )
    assert (with_values.status, with_values.caveat) == (Status.REMEDIATED, "")
    assert tags(aws, seeded) == {"Owner": "p", "CostCenter": "c"}


def test_with_no_key_required_any_tag_of_its_own_complies(aws: Any) -> None:
    seeded = seed_one(aws, "GuardDuty.2", MEMBER_ACCOUNT, REGION)
    tag(aws, seeded, team="detection")
    local.served_requests(clear=True)
    outcome = fix(aws, seeded, [])
    assert (outcome.status, writes("guardduty")) == (Status.ALREADY_COMPLIANT, [])


def test_with_no_key_required_and_no_tags_configured_an_untagged_resource_is_refused(aws: Any) -> None:
    seeded = seed_one(aws, "GuardDuty.4", MEMBER_ACCOUNT, REGION)
    local.served_requests(clear=True)
    outcome = fix(aws, seeded, tags={})
    assert outcome.status == Status.FAILED
    assert "the playbook's tags parameter gives no tag to add" in outcome.message
    assert writes("guardduty") == []


def test_aws_own_tags_do_not_count_and_stay(aws: Any) -> None:
    """A table CloudFormation made carries aws:cloudformation:* tags: Security Hub ignores them."""
    stack = {"aws:cloudformation:stack-name": "orders"}
    arn = on_demand_table(
        aws, MEMBER_ACCOUNT, REGION, "orders", Tags=[{"Key": k, "Value": v} for k, v in stack.items()]
    )
    seeded = Seeded("DynamoDB.5", MEMBER_ACCOUNT, REGION, "AwsDynamoDbTable", arn)
    action = registry().playbooks["DynamoDB.5"].build_action()
    assert action.read(clients(aws), arn.rsplit("/", 1)[1]) == {}
    outcome = fix(aws, seeded)
    assert (outcome.status, outcome.before) == (Status.REMEDIATED, {"tag:Owner": None}), outcome.message
    assert tags(aws, seeded) == {**stack, "Owner": "unassigned"}


def test_no_placeholder_no_caveat(aws: Any) -> None:
    seeded = seed_one(aws, "GuardDuty.4", MEMBER_ACCOUNT, REGION)
    outcome = fix(aws, seeded, tags={"Owner": "detection-team"})
    assert (outcome.status, outcome.caveat) == (Status.REMEDIATED, "")
    assert outcome.message == "added the required tags the GuardDuty resource lacked"


def test_the_caveat_names_each_placeholder_once_and_nothing_without_a_placeholder() -> None:
    playbook = registry().playbooks["GuardDuty.4"]
    required = {"required_tag_keys": ["Owner", "CostCenter", "Owner"]}
    state = {"tag:Owner": "unassigned", "tag:CostCenter": "unassigned", "tag:team": "unassigned"}
    assert playbook.build_action(required).caveat(state) == (
        "tags holding the placeholder 'unassigned': Owner, CostCenter; someone who knows the resource "
        "should set their real values"
    )
    assert playbook.build_action({**required, "placeholder": None}).caveat({}) is None


def test_a_key_set_after_the_read_stops_the_change(aws: Any) -> None:
    """TagResource replaces a key's value: the tags are read again just before it, and a change
    since the first read (a key set meanwhile) is no change of the fix's to make."""
    seeded = seed_one(aws, "DynamoDB.5", MEMBER_ACCOUNT, REGION)
    action = registry().playbooks["DynamoDB.5"].build_action({"required_tag_keys": ["Owner", "CostCenter"]})
    name = seeded.resource_id.rsplit("/", 1)[1]
    state = action.read(clients(aws), name)
    tag(aws, seeded, CostCenter="4711")
    local.served_requests(clear=True)
    with pytest.raises(ChangedMeanwhile):
        action.apply(clients(aws), name, state, action.plan(state))
    assert (writes("dynamodb"), tags(aws, seeded)) == ([], {"CostCenter": "4711"})


def test_a_key_set_between_the_read_and_the_change_is_planned_again_not_overwritten(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed_one(aws, "DynamoDB.5", MEMBER_ACCOUNT, REGION)
    action = registry().playbooks["DynamoDB.5"].build_action({"required_tag_keys": ["Owner", "CostCenter"]})
    listed = type(action).tags_of

    def tags_of(self: Any, clients: Clients, arn: str) -> dict[str, str]:
        reads.append(arn)
        if len(reads) == 2:  # the read just before the change: someone tagged meanwhile
            tag(aws, seeded, Owner="alice")
        return listed(self, clients, arn)

    reads: list[str] = []
    monkeypatch.setattr(type(action), "tags_of", tags_of)
    result = remediate_resource(action, clients(aws), seeded.resource_id.rsplit("/", 1)[1])
    assert (result.status, result.before, result.after) == (
        Status.REMEDIATED,
        {"tag:CostCenter": None},
        {"tag:CostCenter": "unassigned"},
    ), result.message
    assert tags(aws, seeded) == {"Owner": "alice", "CostCenter": "unassigned"}


def test_every_page_of_a_table_s_tags_is_read(aws: Any) -> None:
    """ListTagsOfResource pages (the stand-in by 10): a required key on the third page is there."""
    seeded = seed_one(aws, "DynamoDB.5", MEMBER_ACCOUNT, REGION)
    tag(aws, seeded, **{f"k{n:02}": "v" for n in range(24)}, Owner="alice")
    local.served_requests(clear=True)
    outcome = fix(aws, seeded, ["Owner"])
    assert (outcome.status, writes("dynamodb")) == (Status.ALREADY_COMPLIANT, [])
    assert [call["action"] for call in local.served_requests()] == ["ListTagsOfResource"] * 3


def test_a_table_s_tags_that_show_late_are_read_again(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies tags asynchronously: a read-back that still shows none is read again."""
    result, read_backs, _ = fix_read_back_stale(aws, monkeypatch, "DynamoDB.5")
    assert (result.status, read_backs) == (Status.REMEDIATED, 3), result.message


def test_a_missing_table_fails_saying_so(aws: Any) -> None:
    seeded = Seeded("DynamoDB.5", MEMBER_ACCOUNT, REGION, "AwsDynamoDbTable", f"{TABLE}/gone")
    outcome = fix(aws, seeded)
    assert outcome.status == Status.FAILED
    assert outcome.message.startswith("ResourceNotFoundException")


def test_an_id_that_is_no_guardduty_arn_is_refused_without_a_call(aws: Any) -> None:
    local.served_requests(clear=True)
    action = registry().playbooks["GuardDuty.4"].build_action()
    result = remediate_resource(action, clients(aws), "0a1b2c3d" * 4)
    assert result.status == Status.FAILED
    assert f"'{'0a1b2c3d' * 4}' is not the ARN of a GuardDuty detector or filter" in result.message
    assert [call for call in local.served_requests() if call["service"] == "guardduty"] == []


# --- Rollback


def fixed_in_a_run(
    aws: Any, tmp_path: Path, seeded: Seeded, required: list[str], **overrides: Any
) -> tuple[Outcome, Path]:
    root = journal_root(str(tmp_path), "asr_sweep", "run-1")
    journal = AuditJournal(root, Origin("asr_sweep", "run-1", "b", 1, "s"))
    outcome = fix(aws, seeded, required, journal=journal, **overrides)
    assert outcome.status == Status.REMEDIATED, outcome.message
    return outcome, root


def rolled_back(aws: Any, root: Path, dry: bool = False, run: str = "r-1") -> Reversal:
    [reversal] = Rollback(
        AuditJournal(root, Origin("asr_rollback", run, "rollback", 1, "bob")), aws, dry=dry
    ).run()
    return reversal


@pytest.mark.parametrize("control", CONTROLS)
def test_a_rollback_removes_the_tags_the_fix_added_and_no_other(
    aws: Any, tmp_path: Path, control: str
) -> None:
    seeded = seed_one(aws, control, MEMBER_ACCOUNT, REGION)
    tag(aws, seeded, team="web")
    _, root = fixed_in_a_run(aws, tmp_path, seeded, ["team", "Owner", "CostCenter"])
    assert tags(aws, seeded) == {"team": "web", "Owner": "unassigned", "CostCenter": "unassigned"}
    assert rolled_back(aws, root, dry=True).status == RollbackStatus.WOULD_REVERT
    local.served_requests(clear=True)
    reversal = rolled_back(aws, root)
    assert reversal.status == RollbackStatus.REVERTED, reversal.reason
    assert tags(aws, seeded) == {"team": "web"}
    assert writes(SERVICES[control]) == ["UntagResource"]
    cls = actions.get_action(registry().playbooks[control].action)
    served = {f"{c['service']}:{c['action']}" for c in local.served_requests() if c["service"] == cls.service}
    assert served <= {*cls.permissions, *cls.revert_permissions}
    assert rolled_back(aws, root, run="r-2").status == RollbackStatus.ALREADY_REVERTED


@pytest.mark.parametrize("control", ["DynamoDB.5", "GuardDuty.2"])
def test_a_rollback_keeps_a_value_someone_set_since_and_removes_the_rest(
    aws: Any, tmp_path: Path, control: str
) -> None:
    seeded = seed_one(aws, control, MEMBER_ACCOUNT, REGION)
    _, root = fixed_in_a_run(aws, tmp_path, seeded, ["Owner", "CostCenter"])
    tag(aws, seeded, Owner="alice")
    assert rolled_back(aws, root, dry=True).status == RollbackStatus.WOULD_REVERT
    reversal = rolled_back(aws, root)
    assert reversal.status == RollbackStatus.REVERTED, reversal.reason
    assert reversal.now == {"tag:CostCenter": None, "tag:Owner": "alice"}
    assert "'tag:Owner': 'alice'" in reversal.reason
    assert tags(aws, seeded) == {"Owner": "alice"}


def test_a_rollback_with_every_added_tag_changed_since_puts_nothing_back(aws: Any, tmp_path: Path) -> None:
    seeded = seed_one(aws, "GuardDuty.4", MEMBER_ACCOUNT, REGION)
    _, root = fixed_in_a_run(aws, tmp_path, seeded, ["Owner", "CostCenter"])
    tag(aws, seeded, Owner="alice", CostCenter="4711")
    checked = rolled_back(aws, root, dry=True)
    local.served_requests(clear=True)
    made = rolled_back(aws, root)
    assert checked.status == made.status == RollbackStatus.NOT_REVERSIBLE, made.reason
    assert checked.reason == made.reason
    assert "given another value since (Owner, CostCenter): kept" in made.reason
    assert (writes("guardduty"), tags(aws, seeded)) == ([], {"Owner": "alice", "CostCenter": "4711"})


def test_a_rollback_leaves_the_tags_alone_when_one_the_fix_added_was_removed_since(
    aws: Any, tmp_path: Path
) -> None:
    seeded = seed_one(aws, "DynamoDB.5", MEMBER_ACCOUNT, REGION)
    _, root = fixed_in_a_run(aws, tmp_path, seeded, ["Owner", "CostCenter"])
    clients(aws).dynamodb.untag_resource(ResourceArn=seeded.resource_id, TagKeys=["Owner"])
    reversal = rolled_back(aws, root)
    assert reversal.status == RollbackStatus.CHANGED_SINCE, reversal.reason
    assert tags(aws, seeded) == {"CostCenter": "unassigned"}


def test_a_revert_with_nothing_of_the_fix_left_calls_nothing(aws: Any) -> None:
    """Every tag the fix added removed since (by another rollback's try, or a person): the
    resource reads as before the fix, and no call is made."""
    seeded = seed_one(aws, "GuardDuty.2", MEMBER_ACCOUNT, REGION)
    action = registry().playbooks["GuardDuty.2"].build_action({"required_tag_keys": ["Owner", "CostCenter"]})
    before = action.read(clients(aws), seeded.resource_id)
    assert remediate_resource(action, clients(aws), seeded.resource_id).status == Status.REMEDIATED
    clients(aws).guardduty.untag_resource(ResourceArn=seeded.resource_id, TagKeys=["Owner", "CostCenter"])
    local.served_requests(clear=True)
    assert action.revert(clients(aws), seeded.resource_id, before) == {
        "tag:Owner": None,
        "tag:CostCenter": None,
    }
    assert writes("guardduty") == []


# --- Parameters and playbooks


@pytest.mark.parametrize(
    ("action", "parameters", "wrong"),
    [
        ("dynamodb.add-required-tags", {"tags": {"aws:owner": "x"}}, "aws:owner"),
        ("dynamodb.add-required-tags", {"required_tag_keys": ["AWS:Owner"]}, "AWS:Owner"),
        ("dynamodb.add-required-tags", {"required_tag_keys": ["k" * 129]}, "k" * 129),
        ("dynamodb.add-required-tags", {"required_tag_keys": [""]}, "''"),
        ("dynamodb.add-required-tags", {"tags": {"Owner": "v" * 257}}, "v" * 257),
        ("dynamodb.add-required-tags", {"tags": {"Owner": "ops@example.com"}}, "ops@example.com"),
        ("dynamodb.add-required-tags", {"placeholder": "to be set!"}, "to be set!"),
        ("guardduty.add-required-tags", {"tags": {"Cost Center": "x"}}, "Cost Center"),
        ("guardduty.add-required-tags", {"placeholder": "v" * 257}, "v" * 257),
        ("guardduty.add-required-tags", {"required_tag_keys": "Owner"}, "Owner"),
    ],
)
def test_keys_and_values_aws_would_refuse_fail_the_playbook_s_load(
    action: str, parameters: dict[str, Any], wrong: str
) -> None:
    with pytest.raises(actions.ActionError) as refused:
        actions.validate_params(action, parameters)
    assert wrong in str(refused.value)


@pytest.mark.parametrize(
    ("action", "parameters"),
    [
        (
            "dynamodb.add-required-tags",
            {"tags": {"Cost Center": "Team A/B + 2", "Zoë": ""}, "placeholder": None},
        ),
        ("guardduty.add-required-tags", {"tags": {"team:owner/2": "ops@example.com (on call)"}}),
        ("guardduty.add-required-tags", {"required_tag_keys": ["k" * 128], "placeholder": ""}),
    ],
)
def test_keys_and_values_aws_takes_are_accepted(action: str, parameters: dict[str, Any]) -> None:
    assert actions.validate_params(action, parameters) == {
        "required_tag_keys": [],
        "tags": {},
        "placeholder": "unassigned",
        **parameters,
    }


def test_a_playbook_with_a_key_aws_would_refuse_does_not_load() -> None:
    source = Path(registry().playbooks["GuardDuty.2"].source)
    data = yaml.safe_load(source.read_text())
    data["remediation"]["parameters"]["tags"] = {"Owner": "unassigned", "aws:team": "detection"}
    with pytest.raises(
        PlaybookError, match=r"GuardDuty.2.yaml: remediation: .*tags: 'aws:team' does not match"
    ):
        parse_playbook(data, str(source))


def test_a_finding_requiring_a_key_aws_would_refuse_is_rejected_naming_it(aws: Any) -> None:
    seeded = seed_one(aws, "GuardDuty.4", MEMBER_ACCOUNT, REGION)
    with pytest.raises(FindingError, match=r"control parameters: .*aws:createdBy"):
        record(seeded, ["Owner", "aws:createdBy"])


@pytest.mark.parametrize("control", CONTROLS)
def test_the_playbooks_tag_unattended_and_say_what_tags_may_change(control: str) -> None:
    playbook = registry().playbooks[control]
    assert (playbook.disruptive, playbook.auto_remediate) == (False, True)
    assert playbook.control_parameters == {"requiredTagKeys": "required_tag_keys"}
    assert (playbook.parameters["tags"], playbook.parameters["placeholder"]) == (
        {"Owner": "unassigned"},
        "unassigned",
    )
    assert "ABAC" in playbook.risk


@pytest.mark.parametrize(
    ("control", "resource_arn", "expected"),
    [
        ("DynamoDB.5", f"{TABLE}/orders", "orders"),
        (
            "DynamoDB.5",
            f"arn:aws-cn:dynamodb:cn-north-1:{MEMBER_ACCOUNT}:table/Orders_2.v1-x",
            "Orders_2.v1-x",
        ),
        ("DynamoDB.5", f"{TABLE}/orders/stream/2026-01-05T00:00:00.000", None),
        ("DynamoDB.5", f"{TABLE}/or", None),
        ("GuardDuty.4", DETECTOR, DETECTOR),
        ("GuardDuty.4", f"{DETECTOR}/filter/noisy", None),
        ("GuardDuty.4", f"arn:aws:guardduty:{REGION}:{MEMBER_ACCOUNT}:detector/", None),
        ("GuardDuty.2", f"{DETECTOR}/filter/noisy.scans_2-b", f"{DETECTOR}/filter/noisy.scans_2-b"),
        ("GuardDuty.2", f"{DETECTOR}/filter/{'f' * 64}", f"{DETECTOR}/filter/{'f' * 64}"),
        ("GuardDuty.2", f"{DETECTOR}/filter/{'f' * 65}", None),
        ("GuardDuty.2", f"{DETECTOR}/filter/no", None),
        ("GuardDuty.2", f"{DETECTOR}/ipset/0123", None),
        ("GuardDuty.2", DETECTOR, None),
    ],
)
def test_the_resource_id_each_playbook_takes(control: str, resource_arn: str, expected: str | None) -> None:
    assert_extracted_id(control, resource_arn, expected)


def test_a_guardduty_filter_finding_of_the_generic_type_routes_too(aws: Any) -> None:
    """ASFF has no details object for GuardDuty filters: Security Hub may name the type Other."""
    seeded = dataclasses.replace(seed_one(aws, "GuardDuty.2", MEMBER_ACCOUNT, REGION), resource_type="Other")
    parsed = record(seeded)
    assert (parsed.playbook, parsed.resource_id) == ("GuardDuty.2", seeded.resource_id)


def test_the_guardduty_seeders_share_the_region_s_one_detector(aws: Any) -> None:
    """GuardDuty.1's seeder suspends the Region's detector (or makes one suspended); GuardDuty.4
    and .2 use that one, a tagged one untagged, and the three fixes each do their part."""
    guardduty = clients(aws).guardduty
    guardduty.create_detector(Enable=True, Tags={"team": "security", "aws:cloudformation:stack-name": "gd"})
    made = [
        seed_one(aws, control, MEMBER_ACCOUNT, REGION)
        for control in ("GuardDuty.1", "GuardDuty.4", "GuardDuty.2")
    ]
    [detector] = guardduty.list_detectors()["DetectorIds"]
    assert made[1].resource_id.endswith(f":detector/{detector}")
    assert made[2].resource_id.startswith(f"{made[1].resource_id}/filter/asr-seed-filter-0-")
    assert tags(aws, made[1]) == {"aws:cloudformation:stack-name": "gd"}
    outcomes = run_batch([record(s) for s in made[:1]], registry(), aws)
    outcomes += [fix(aws, s) for s in made[1:]]
    assert [o.status for o in outcomes] == [Status.REMEDIATED] * 3, [o.message for o in outcomes]
    assert guardduty.get_detector(DetectorId=detector)["Status"] == "ENABLED"
    assert tags(aws, made[1])["Owner"] == tags(aws, made[2])["Owner"] == "unassigned"
