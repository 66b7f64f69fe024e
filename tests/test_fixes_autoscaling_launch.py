"""AutoScaling.3 and Autoscaling.5 (so Security Hub spells it): a launch configuration replaced by
a copy that differs in one setting, its groups moved to the copy, the original deleted."""

from __future__ import annotations

import base64
import gzip
from pathlib import Path
from typing import Any

import pytest
from helpers import Refusals, assert_extracted_id, hooked, routing_record
from test_fixes_data import assert_permissions_cover_served_calls, parameters_sent
from test_iam_policy import _decision, statements_of

from asr import iam_policy, local
from asr.actions import ChangedMeanwhile, NotReversible
from asr.actions import autoscaling as module
from asr.audit import AuditJournal, Origin, journal_root
from asr.aws import Clients
from asr.config import Settings
from asr.local import MEMBER_ACCOUNT
from asr.local.request_log_ext import is_write
from asr.local.seed import seed_one
from asr.local.seeders.autoscaling import SEED_USER_DATA
from asr.local.seeders.ec2 import SEED_IMAGE
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource, run_batch
from asr.rollback import Rollback, RollbackStatus

REGION = "us-east-1"
ZONE = f"{REGION}a"
CONTROLS = ("AutoScaling.3", "Autoscaling.5")
SUFFIX = {"AutoScaling.3": "-imdsv2", "Autoscaling.5": "-no-public-ip"}
# What each control fails, and what the copy gets instead.
FLAW = {
    "AutoScaling.3": {"MetadataOptions": {"HttpTokens": "optional", "HttpPutResponseHopLimit": 3}},
    "Autoscaling.5": {"AssociatePublicIpAddress": True},
}
FIXED = {
    "AutoScaling.3": {
        "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 3, "HttpEndpoint": "enabled"}
    },
    "Autoscaling.5": {"AssociatePublicIpAddress": False},
}
# What tells two launch configurations apart besides what they are made of.
IDENTITY = ("LaunchConfigurationName", "LaunchConfigurationARN", "CreatedTime")
# User data no text encoding can carry: gzip, as cloud-init takes it.
BINARY_USER_DATA = gzip.compress(
    b"#cloud-config\nruncmd:\n  - [sh, -c, 'echo \xc3\xa9t\xc3\xa9 > /etc/motd']\n"
)
NOT_AVAILABLE = {
    "Code": "UnsupportedOperation",
    "Message": "The Launch Configuration creation operation is not available in your account. Use launch "
    "templates to create configuration templates for your Auto Scaling groups.",
}


def clients(aws: Any) -> Clients:
    return Clients(aws, MEMBER_ACCOUNT, REGION)


def action(control: str) -> Any:
    return registry().playbooks[control].build_action()


def arn(name: str) -> str:
    return (
        f"arn:aws:autoscaling:{REGION}:{MEMBER_ACCOUNT}:launchConfiguration:"
        f"9dbbbf87-6141-428a-a409-0752edbe6cad:launchConfigurationName/{name}"
    )


def fix(aws: Any, control: str, name: str, dry: bool = False) -> tuple[Result, list[dict[str, Any]]]:
    """The fix of the launch configuration, and the parameters of each CreateLaunchConfiguration sent."""
    with parameters_sent(clients(aws).autoscaling, "CreateLaunchConfiguration") as sent:
        result = remediate_resource(action(control), clients(aws), name, dry)
    return result, sent


def make(aws: Any, name: str, **attributes: Any) -> dict[str, Any]:
    clients(aws).autoscaling.create_launch_configuration(
        LaunchConfigurationName=name, **({"ImageId": SEED_IMAGE, "InstanceType": "t3.micro"} | attributes)
    )
    made = described(aws, name)
    assert made is not None
    return made


def described(aws: Any, name: str) -> dict[str, Any] | None:
    found = clients(aws).autoscaling.describe_launch_configurations(LaunchConfigurationNames=[name])
    return dict(found["LaunchConfigurations"][0]) if found["LaunchConfigurations"] else None


def group(aws: Any, name: str, configuration: str, instances: int = 0) -> None:
    clients(aws).autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchConfigurationName=configuration,
        MinSize=0,
        MaxSize=max(instances, 1),
        DesiredCapacity=instances,
        AvailabilityZones=[ZONE],
    )


def using(aws: Any) -> dict[str, str]:
    """The launch configuration each group names."""
    pages = clients(aws).autoscaling.get_paginator("describe_auto_scaling_groups").paginate()
    return {
        g["AutoScalingGroupName"]: g.get("LaunchConfigurationName", "")
        for page in pages
        for g in page["AutoScalingGroups"]
    }


def content(found: dict[str, Any]) -> dict[str, Any]:
    """What a launch configuration is made of, as described: all but its name, ARN and time."""
    return {key: value for key, value in found.items() if key not in IDENTITY}


def writes() -> list[str]:
    return [c["action"] for c in local.served_requests() if is_write(c) and c["service"] == "autoscaling"]


def seeded(aws: Any, control: str) -> str:
    """The name of the control's seeded launch configuration, as its playbook takes it from the ARN."""
    made = seed_one(aws, control, MEMBER_ACCOUNT, REGION)
    return registry().playbooks[control].extract_resource_id(made.resource_id, MEMBER_ACCOUNT)


@pytest.mark.parametrize("control", CONTROLS)
def test_the_seeded_configuration_is_replaced_within_the_permissions(aws: Any, control: str) -> None:
    name = seeded(aws, control)
    original = described(aws, name)
    assert original is not None
    local.served_requests(clear=True)
    result, sent = fix(aws, control, name)
    copy_name = f"{name}{SUFFIX[control]}"
    assert result.status == Status.REMEDIATED, result.message
    before, after = result.before or {}, result.after or {}
    assert (before["Groups"], before["Copy"], before["CopyGroups"]) == ([f"{name}-asg"], None, [])
    assert (after["LaunchConfiguration"], after["Groups"], after["CopyGroups"]) == (None, [], [f"{name}-asg"])
    assert after["Copy"]["LaunchConfigurationName"] == copy_name
    assert before["LaunchConfiguration"]["UserDataSha256"] == after["Copy"]["UserDataSha256"]
    assert SEED_USER_DATA not in str(before), "user data may hold secrets: the state keeps a digest"
    assert f"({action(control).params['setting']})" in result.message and result.caveat == ""
    copy = described(aws, copy_name)
    assert copy is not None and described(aws, name) is None
    assert base64.b64decode(copy["UserData"]).decode() == SEED_USER_DATA
    changed = {
        "AutoScaling.3": {
            "MetadataOptions": {**original.get("MetadataOptions", {}), "HttpTokens": "required"}
        },
        "Autoscaling.5": {"AssociatePublicIpAddress": False},
    }[control]
    assert content(copy) == content(original) | changed
    assert [s["UserData"] for s in sent] == [SEED_USER_DATA.encode()], "decoded: botocore encodes it"
    assert using(aws) == {f"{name}-asg": copy_name}
    assert_permissions_cover_served_calls(control)


@pytest.mark.parametrize("control", CONTROLS)
def test_every_attribute_is_copied_and_only_the_setting_changes(aws: Any, control: str) -> None:
    devices = [
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {
                "SnapshotId": "snap-0123456789abcdef0",
                "VolumeSize": 30,
                "VolumeType": "gp3",
                "Iops": 4000,
                "Throughput": 250,
                "DeleteOnTermination": False,
                "Encrypted": True,
            },
        },
        {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
        {"DeviceName": "/dev/sdc", "NoDevice": True},
    ]
    other = "Autoscaling.5" if control == "AutoScaling.3" else "AutoScaling.3"
    original = make(
        aws,
        "wide",
        KeyName="ops",
        SecurityGroups=["sg-0123456789abcdef0", "sg-0fedcba9876543210"],
        UserData=BINARY_USER_DATA,
        InstanceType="c5.large",
        KernelId="aki-0123456789abcdef0",
        RamdiskId="ari-0123456789abcdef0",
        BlockDeviceMappings=devices,
        InstanceMonitoring={"Enabled": False},
        SpotPrice="0.05",
        IamInstanceProfile=f"arn:aws:iam::{MEMBER_ACCOUNT}:instance-profile/web",
        EbsOptimized=True,
        PlacementTenancy="dedicated",
        **FLAW[control],
        **FLAW[other],  # the other control's flaw is kept: the copy differs in one setting only
    )
    group(aws, "wide-asg", "wide")
    result, sent = fix(aws, control, "wide")
    assert result.status == Status.REMEDIATED, result.message
    copy = described(aws, f"wide{SUFFIX[control]}")
    assert copy is not None
    assert content(copy) == content(original) | FIXED[control]
    assert base64.b64decode(copy["UserData"]) == BINARY_USER_DATA
    assert copy["BlockDeviceMappings"] == devices and copy["PlacementTenancy"] == "dedicated"
    assert [s["UserData"] for s in sent] == [BINARY_USER_DATA]


def test_what_the_original_leaves_out_the_copy_leaves_out(aws: Any) -> None:
    """AWS answers "" for a kernel, RAM disk or key pair a configuration has not (and refuses "");
    and without AssociatePublicIpAddress the subnet decides, which false would overrule. IMDSv2's
    copy spells out the options the original left to their defaults."""
    make(aws, "bare")
    monitoring = (described(aws, "bare") or {})["InstanceMonitoring"]
    result, sent = fix(aws, "AutoScaling.3", "bare")
    assert result.status == Status.REMEDIATED, result.message
    assert sent == [
        {
            "LaunchConfigurationName": "bare-imdsv2",
            "ImageId": SEED_IMAGE,
            "InstanceType": "t3.micro",
            "InstanceMonitoring": monitoring,
            "EbsOptimized": False,
            "MetadataOptions": {
                "HttpTokens": "required",
                "HttpPutResponseHopLimit": 1,
                "HttpEndpoint": "enabled",
            },
        }
    ]
    copy = described(aws, "bare-imdsv2")
    assert copy is not None and "AssociatePublicIpAddress" not in copy and "UserData" not in copy
    assert module.configuration(clients(aws).autoscaling, {**copy, "KernelId": "", "KeyName": ""}) == (
        module.configuration(clients(aws).autoscaling, copy)
    )


@pytest.mark.parametrize("control", CONTROLS)
def test_a_configuration_that_complies_is_left_alone(aws: Any, control: str) -> None:
    make(aws, "fine", **FIXED[control])
    make(aws, "unset")  # no metadata options: IMDSv1 allowed (AutoScaling.3); no public IP asked (.5)
    local.served_requests(clear=True)
    assert fix(aws, control, "fine")[0].status == Status.ALREADY_COMPLIANT
    assert fix(aws, "Autoscaling.5", "unset")[0].status == Status.ALREADY_COMPLIANT
    assert writes() == []
    assert fix(aws, "AutoScaling.3", "unset")[0].status == Status.REMEDIATED


@pytest.mark.parametrize("control", CONTROLS)
def test_a_second_run_changes_nothing(aws: Any, control: str) -> None:
    name = seeded(aws, control)
    assert fix(aws, control, name)[0].status == Status.REMEDIATED
    local.served_requests(clear=True)
    result, sent = fix(aws, control, name)
    assert (result.status, result.before, sent) == (Status.ALREADY_COMPLIANT, None, [])
    assert writes() == []


def test_a_configuration_no_group_uses_is_replaced_too(aws: Any) -> None:
    make(aws, "spare", **FLAW["Autoscaling.5"])
    result, _ = fix(aws, "Autoscaling.5", "spare")
    assert result.status == Status.REMEDIATED, result.message
    assert (result.before or {})["Groups"] == [] and (result.after or {})["CopyGroups"] == []
    assert described(aws, "spare") is None and described(aws, "spare-no-public-ip") is not None


def test_every_group_that_uses_it_is_moved_and_no_other(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Region's groups are read page by page (two a page here)."""
    monkeypatch.setattr(module, "GROUPS_PER_PAGE", 2)
    make(aws, "web", **FLAW["AutoScaling.3"])
    make(aws, "batch", **FLAW["AutoScaling.3"])
    for n in range(4):
        group(aws, f"web-{n}", "web")
    group(aws, "batch-0", "batch")
    result, _ = fix(aws, "AutoScaling.3", "web")
    assert result.status == Status.REMEDIATED, result.message
    assert using(aws) == {**{f"web-{n}": "web-imdsv2" for n in range(4)}, "batch-0": "batch"}
    assert described(aws, "batch") is not None


@pytest.mark.parametrize("stopped", ["after-the-copy", "after-one-group"])
def test_a_run_that_stopped_part_way_is_finished_without_a_second_copy(aws: Any, stopped: str) -> None:
    make(aws, "web", UserData="#!/bin/sh\necho web\n", **FLAW["Autoscaling.5"])
    group(aws, "web-a", "web")
    group(aws, "web-b", "web")
    moved = [] if stopped == "after-the-copy" else ["web-a"]
    calls: list[dict[str, Any]] = []

    def refuse_after_those_moved(**_: Any) -> Any:
        calls.append({})
        if len(calls) > len(moved):
            refused = {"Code": "ScalingActivityInProgress", "Message": "Scaling activity in progress"}
            return type("Refused", (), {"status_code": 400})(), {"Error": refused}
        return None

    event = "before-call.auto-scaling.UpdateAutoScalingGroup"
    with hooked(clients(aws).autoscaling, event, refuse_after_those_moved):
        first, sent = fix(aws, "Autoscaling.5", "web")
    assert first.status == Status.FAILED and "ScalingActivityInProgress" in first.message
    assert len(sent) == 1 and described(aws, "web") is not None
    assert (first.after or {})["CopyGroups"] == moved, "what the failure left is recorded"
    second, sent = fix(aws, "Autoscaling.5", "web")
    assert second.status == Status.REMEDIATED, second.message
    assert sent == [], "the copy made before is used"
    assert (second.before or {})["Copy"] == (second.after or {})["Copy"]
    assert using(aws) == {"web-a": "web-no-public-ip", "web-b": "web-no-public-ip"}
    assert described(aws, "web") is None


@pytest.mark.parametrize(
    "taken",
    [{"ImageId": "ami-0123456789abcdef0"}, {"AssociatePublicIpAddress": True}, {"UserData": "#!/bin/sh\n"}],
    ids=["other-image", "not-fixed", "other-user-data"],
)
def test_a_copy_name_held_by_another_configuration_is_refused(aws: Any, taken: dict[str, Any]) -> None:
    make(aws, "web", UserData="#!/bin/sh\necho web\n", **FLAW["Autoscaling.5"])
    make(
        aws,
        "web-no-public-ip",
        **{"UserData": "#!/bin/sh\necho web\n", "AssociatePublicIpAddress": False} | taken,
    )
    group(aws, "web-asg", "web")
    group(aws, "other-asg", "web-no-public-ip")
    local.served_requests(clear=True)
    result, sent = fix(aws, "Autoscaling.5", "web")
    assert (result.status, sent, writes()) == (Status.FAILED, [], [])
    differs = next(iter(taken)).replace("UserData", "UserDataSha256")
    assert "a launch configuration web-no-public-ip exists, groups other-asg use it, and is not web" in (
        result.message
    )
    assert f"(it differs in {differs})" in result.message
    assert using(aws) == {"web-asg": "web", "other-asg": "web-no-public-ip"}


def test_an_account_that_may_make_no_launch_configuration_is_refused_unchanged(aws: Any) -> None:
    name = seeded(aws, "AutoScaling.3")
    before = action("AutoScaling.3").read(clients(aws), name)
    Refusals(clients(aws).autoscaling, "CreateLaunchConfiguration").next(NOT_AVAILABLE)
    result, sent = fix(aws, "AutoScaling.3", name)
    assert (result.status, len(sent)) == (Status.FAILED, 1)
    assert "not available in your account" in result.message
    assert "accounts made on or after 1 October 2024. Nothing was changed." in result.message
    assert (
        f"Move the groups using it ({name}-asg) to a launch template with IMDSv2 required" in result.message
    )
    assert action("AutoScaling.3").read(clients(aws), name) == before


def test_a_copy_that_reads_back_otherwise_than_sent_is_deleted(aws: Any) -> None:
    make(aws, "web", KeyName="ops", **FLAW["AutoScaling.3"])
    group(aws, "web-asg", "web")
    before = action("AutoScaling.3").read(clients(aws), "web")
    autoscaling = clients(aws).autoscaling

    def lose_the_key(params: dict[str, Any], **_: Any) -> None:
        params.pop("KeyName", None)

    with hooked(autoscaling, "provide-client-params.auto-scaling.CreateLaunchConfiguration", lose_the_key):
        result, sent = fix(aws, "AutoScaling.3", "web")
    assert (result.status, len(sent)) == (Status.FAILED, 1)
    assert "the copy web-imdsv2 read back otherwise than it was made (in KeyName): it was deleted" in (
        result.message
    )
    assert action("AutoScaling.3").read(clients(aws), "web") == before
    assert described(aws, "web-imdsv2") is None


def test_a_group_that_starts_using_it_meanwhile_keeps_it_until_the_next_run(aws: Any) -> None:
    make(aws, "web", **FLAW["AutoScaling.3"])
    group(aws, "web-a", "web")
    fixer = action("AutoScaling.3")
    state = fixer.read(clients(aws), "web")
    group(aws, "web-late", "web")
    with pytest.raises(ValueError, match=r"a group started using web after it was read .*web-late"):
        fixer.apply(clients(aws), "web", state, fixer.plan(state))
    assert using(aws) == {"web-a": "web-imdsv2", "web-late": "web"}
    assert fix(aws, "AutoScaling.3", "web")[0].status == Status.REMEDIATED
    assert using(aws) == {"web-a": "web-imdsv2", "web-late": "web-imdsv2"}
    assert described(aws, "web") is None


def test_an_original_made_again_since_the_read_is_planned_again(aws: Any) -> None:
    make(aws, "web", **FLAW["AutoScaling.3"])
    fixer = action("AutoScaling.3")
    state = fixer.read(clients(aws), "web")
    clients(aws).autoscaling.delete_launch_configuration(LaunchConfigurationName="web")
    make(aws, "web", InstanceType="m5.large", **FLAW["AutoScaling.3"])
    with pytest.raises(ChangedMeanwhile):
        fixer.apply(clients(aws), "web", state, fixer.plan(state))
    assert described(aws, "web-imdsv2") is None


def test_a_copy_made_by_someone_else_since_the_read_is_planned_again(aws: Any) -> None:
    make(aws, "web", **FLAW["Autoscaling.5"])
    fixer = action("Autoscaling.5")
    state = fixer.read(clients(aws), "web")
    make(aws, "web-no-public-ip", AssociatePublicIpAddress=False)
    with pytest.raises(ChangedMeanwhile, match="web-no-public-ip was made since web was read"):
        fixer.apply(clients(aws), "web", state, fixer.plan(state))
    assert described(aws, "web") is not None


def test_a_copy_not_listed_yet_is_taken_up_by_the_next_run(aws: Any) -> None:
    """A read just after CreateLaunchConfiguration that does not list the copy yet: nothing else is
    changed, and the next run finds the copy and goes on from it."""
    make(aws, "web", **FLAW["AutoScaling.3"])
    group(aws, "web-asg", "web")

    def not_listed_yet(params: dict[str, Any], **_: Any) -> Any:
        if (
            params["body"].get("LaunchConfigurationNames.member.1") == "web-imdsv2"
            and len(params["body"]) == 3
        ):
            return type("Listed", (), {"status_code": 200})(), {"LaunchConfigurations": []}
        return None

    with hooked(
        clients(aws).autoscaling, "before-call.auto-scaling.DescribeLaunchConfigurations", not_listed_yet
    ):
        result, sent = fix(aws, "AutoScaling.3", "web")
    assert (result.status, len(sent)) == (Status.FAILED, 1)
    assert "the copy web-imdsv2 is not listed yet: a later run takes it from there" in result.message
    assert using(aws) == {"web-asg": "web"} and described(aws, "web") is not None
    result, sent = fix(aws, "AutoScaling.3", "web")
    assert (result.status, sent) == (Status.REMEDIATED, [])
    assert using(aws) == {"web-asg": "web-imdsv2"}


def test_a_batch_reads_its_configurations_in_bulk_and_the_groups_once(aws: Any) -> None:
    """30 launch configurations and their 30 copies: 50 names a DescribeLaunchConfigurations, and
    one listing of the Region's groups for the whole batch, before and after."""
    names = [f"web-{n:02}" for n in range(30)]
    for name in names:
        make(aws, name, **FLAW["AutoScaling.3"])
        group(aws, f"{name}-asg", name)
    records = [routing_record("AutoScaling.3", arn(n), n, MEMBER_ACCOUNT, REGION) for n in names]
    local.served_requests(clear=True)
    outcomes = run_batch(records, registry(), aws)
    assert {o.status for o in outcomes} == {"REMEDIATED"}, {o.message for o in outcomes}
    reads = [c["action"] for c in local.served_requests() if c["action"].startswith("Describe")]
    assert reads.count("DescribeAutoScalingGroups") == 2
    # Two bulk reads of 60 names (before, after); each copy's making reads its original again
    # (for the user data) and the copy back.
    assert reads.count("DescribeLaunchConfigurations") == 2 * 2 + 30 * 2
    assert set(using(aws).values()) == {f"{name}-imdsv2" for name in names}


def test_running_instances_launched_from_it_are_named_in_a_caveat(aws: Any) -> None:
    make(aws, "web", **FLAW["AutoScaling.3"])
    group(aws, "web-asg", "web", instances=2)
    result, _ = fix(aws, "AutoScaling.3", "web")
    assert result.status == Status.REMEDIATED, result.message
    [instances] = [
        g["Instances"] for g in clients(aws).autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]
    ]
    assert {i["LaunchConfigurationName"] for i in instances} == {"web"}
    assert result.caveat.startswith(
        "2 running instance(s) launched from the replaced launch configuration keep IMDSv1"
    )
    assert all(f"{i['InstanceId']} (web-asg)" in result.caveat for i in instances)
    assert result.message.endswith(result.caveat)


def test_a_dry_run_changes_nothing(aws: Any) -> None:
    name = seeded(aws, "Autoscaling.5")
    local.served_requests(clear=True)
    result, sent = fix(aws, "Autoscaling.5", name, dry=True)
    assert (result.status, sent, writes()) == (Status.DRY_RUN, [], [])
    assert (result.after or {})["Copy"]["LaunchConfigurationName"] == f"{name}-no-public-ip"
    assert described(aws, name) is not None


def test_a_long_name_gets_a_copy_name_that_fits(aws: Any) -> None:
    name = "w" * 250
    fixer = action("Autoscaling.5")
    target = fixer.copy_name(name)
    assert len(target) == 255 and target.endswith("-no-public-ip") and target == fixer.copy_name(name)
    assert fixer.copy_name("w" * 249 + "x") != target, "a digest of the whole name tells them apart"
    make(aws, name, **FLAW["Autoscaling.5"])
    assert fix(aws, "Autoscaling.5", name)[0].status == Status.REMEDIATED
    assert described(aws, target) is not None


def test_after_one_control_replaced_it_the_other_s_finding_is_about_a_configuration_gone(aws: Any) -> None:
    """Both flaws on one configuration: each fix makes its own copy, so the second finding is about a
    configuration deleted by the first fix, and its copy has the second flaw, for its own finding."""
    make(aws, "web", **FLAW["AutoScaling.3"], **FLAW["Autoscaling.5"])
    assert fix(aws, "AutoScaling.3", "web")[0].status == Status.REMEDIATED
    result, _ = fix(aws, "Autoscaling.5", "web")
    assert result.status == Status.FAILED and "launch configuration web was not found" in result.message
    assert fix(aws, "Autoscaling.5", "web-imdsv2")[0].status == Status.REMEDIATED


def test_user_data_is_decoded_once_and_what_is_no_base64_is_refused() -> None:
    def read(text: str) -> bytes:
        return module.user_data({"LaunchConfigurationName": "web", "UserData": text})

    assert (read("ZWNob2hp"), read("ZWNo\nb2hp\n"), read("")) == (b"echohi", b"echohi", b"")
    for junk in ("ZWNob2hp!", "echo hi"):
        with pytest.raises(ValueError, match="the user data of web reads as no base64 text"):
            read(junk)


# --- Rollback


def journal(tmp_path: Path, dag: str, run: str, who: str = "s") -> AuditJournal:
    return AuditJournal(journal_root(str(tmp_path), "asr_sweep", "run-1"), Origin(dag, run, "b", 1, who))


def fixed_in_a_run(aws: Any, tmp_path: Path, control: str, name: str) -> None:
    record = routing_record(control, arn(name), name, MEMBER_ACCOUNT, REGION)
    [outcome] = run_batch([record], registry(), aws, journal=journal(tmp_path, "asr_sweep", "run-1"))
    assert outcome.status == "REMEDIATED", outcome.message


def rollback(aws: Any, tmp_path: Path, dry: bool = False) -> Any:
    [reversal] = Rollback(journal(tmp_path, "asr_rollback", "r-1", "bob"), aws, dry=dry).run()
    return reversal


@pytest.mark.parametrize("control", CONTROLS)
def test_a_rollback_makes_the_original_again_and_moves_its_groups_back(
    aws: Any, tmp_path: Path, control: str
) -> None:
    make(aws, "web", UserData=BINARY_USER_DATA, IamInstanceProfile="web", **FLAW[control])
    original = described(aws, "web")
    assert original is not None
    group(aws, "web-a", "web")
    group(aws, "web-b", "web")
    make(aws, "batch", **FLAW[control])
    group(aws, "batch-asg", "batch")
    fixed_in_a_run(aws, tmp_path, control, "web")
    assert rollback(aws, tmp_path, dry=True).status == RollbackStatus.WOULD_REVERT
    reversal = rollback(aws, tmp_path)
    assert reversal.status == RollbackStatus.REVERTED, reversal.reason
    back = described(aws, "web")
    assert back is not None and content(back) == content(original)
    assert base64.b64decode(back["UserData"]) == BINARY_USER_DATA
    assert described(aws, f"web{SUFFIX[control]}") is None
    assert using(aws) == {"web-a": "web", "web-b": "web", "batch-asg": "batch"}


def test_a_fix_that_failed_part_way_is_rolled_back_from_where_it_stopped(aws: Any, tmp_path: Path) -> None:
    """The copy made and one group of two moved, the original kept: the group goes back and the
    copy is deleted."""
    make(aws, "web", **FLAW["AutoScaling.3"])
    original = described(aws, "web")
    group(aws, "web-a", "web")
    group(aws, "web-b", "web")
    calls: list[int] = []

    def refuse_the_second(**_: Any) -> Any:
        calls.append(1)
        if len(calls) > 1:
            refused = {"Code": "ScalingActivityInProgress", "Message": "Scaling activity in progress"}
            return type("Refused", (), {"status_code": 400})(), {"Error": refused}
        return None

    record = routing_record("AutoScaling.3", arn("web"), "web", MEMBER_ACCOUNT, REGION)
    with hooked(
        clients(aws).autoscaling, "before-call.auto-scaling.UpdateAutoScalingGroup", refuse_the_second
    ):
        [outcome] = run_batch([record], registry(), aws, journal=journal(tmp_path, "asr_sweep", "run-1"))
    assert outcome.status == "FAILED" and using(aws) == {"web-a": "web-imdsv2", "web-b": "web"}
    reversal = rollback(aws, tmp_path)
    assert reversal.status == RollbackStatus.REVERTED, reversal.reason
    assert described(aws, "web") == original and described(aws, "web-imdsv2") is None
    assert using(aws) == {"web-a": "web", "web-b": "web"}


def test_a_rollback_leaves_alone_a_group_moved_since(aws: Any, tmp_path: Path) -> None:
    make(aws, "web", **FLAW["AutoScaling.3"])
    group(aws, "web-asg", "web")
    make(aws, "other")
    fixed_in_a_run(aws, tmp_path, "AutoScaling.3", "web")
    clients(aws).autoscaling.update_auto_scaling_group(
        AutoScalingGroupName="web-asg", LaunchConfigurationName="other"
    )
    reversal = rollback(aws, tmp_path)
    assert reversal.status == RollbackStatus.CHANGED_SINCE, reversal.reason
    assert described(aws, "web") is None and using(aws) == {"web-asg": "other"}


def test_a_rollback_keeps_a_copy_an_earlier_run_made(aws: Any, tmp_path: Path) -> None:
    """A run that found the copy made (by a run that stopped part way) leaves it on rollback."""
    make(aws, "web", **FLAW["Autoscaling.5"])
    group(aws, "web-asg", "web")
    make(aws, "web-no-public-ip", AssociatePublicIpAddress=False)
    fixed_in_a_run(aws, tmp_path, "Autoscaling.5", "web")
    reversal = rollback(aws, tmp_path)
    assert reversal.status == RollbackStatus.REVERTED, reversal.reason
    assert described(aws, "web-no-public-ip") is not None and using(aws) == {"web-asg": "web"}


@pytest.mark.parametrize("since", ["copy-deleted", "copy-made-again", "no-user-data"])
def test_revert_needs_the_copy_only_for_the_user_data_it_holds(aws: Any, since: str) -> None:
    data = b"" if since == "no-user-data" else b"#!/bin/sh\necho web\n"
    make(aws, "spare", **({"UserData": data} if data else {}), **FLAW["AutoScaling.3"])
    fixer = action("AutoScaling.3")
    before = fixer.read(clients(aws), "spare")
    assert fix(aws, "AutoScaling.3", "spare")[0].status == Status.REMEDIATED
    clients(aws).autoscaling.delete_launch_configuration(LaunchConfigurationName="spare-imdsv2")
    if since == "copy-made-again":
        make(aws, "spare-imdsv2", UserData=b"#!/bin/sh\necho other\n", **FIXED["AutoScaling.3"])
    if data:
        for attempt in (fixer.check_revert, fixer.revert):
            with pytest.raises(NotReversible, match="spare's user data is nowhere now"):
                attempt(clients(aws), "spare", before)
        assert described(aws, "spare") is None
    else:
        fixer.check_revert(clients(aws), "spare", before)
        fixer.revert(clients(aws), "spare", before)
        assert fixer.read(clients(aws), "spare") == before


# --- Routing, playbooks, IAM


@pytest.mark.parametrize("control", CONTROLS)
@pytest.mark.parametrize(
    ("resource_arn", "expected"),
    [
        (arn("web"), "web"),
        (arn("web/blue:2 (copy)"), "web/blue:2 (copy)"),
        (arn("w" * 255), "w" * 255),
        (arn("w" * 256), None),
        (arn(""), None),
        (
            "arn:aws-cn:autoscaling:cn-north-1:222222222222:launchConfiguration:"
            "9dbbbf87-6141-428a-a409-0752edbe6cad:launchConfigurationName/web",
            "web",
        ),
        (
            f"arn:aws:autoscaling:{REGION}:{MEMBER_ACCOUNT}:autoScalingGroup:"
            "9dbbbf87-6141-428a-a409-0752edbe6cad:autoScalingGroupName/web",
            None,
        ),
    ],
)
def test_the_launch_configuration_name_is_the_resource_id(
    control: str, resource_arn: str, expected: str | None
) -> None:
    assert_extracted_id(control, resource_arn, expected)


@pytest.mark.parametrize("control", CONTROLS)
def test_the_playbooks_ask_a_person_first(control: str) -> None:
    playbook = registry().playbooks[control]
    assert (playbook.disruptive, playbook.auto_remediate) == (True, False)
    assert f'a copy "<name>{SUFFIX[control]}"' in (playbook.risk or "")
    assert "Running instances keep" in (playbook.risk or "")


def test_instance_profiles_roles_are_passed_to_ec2_only() -> None:
    """CreateLaunchConfiguration asks for iam:PassRole on the role of the copy's instance profile,
    whichever it is: the account's roles, to EC2 only."""
    values = iam_policy.plain_values(Settings()) | {"AWS::AccountId": MEMBER_ACCOUNT}
    policies = iam_policy.render(iam_policy.member_policies(registry()), values)
    granting = statements_of(policies, "iam:PassRole")
    assert all(s.get("Condition", {}).get("StringEquals", {}).get("iam:PassedToService") for s in granting)
    to_ec2 = {
        "p": {
            "Statement": [
                s
                for s in granting
                if s["Condition"]["StringEquals"]["iam:PassedToService"] == "ec2.amazonaws.com"
            ]
        }
    }
    assert _decision(to_ec2, "iam:PassRole", f"arn:aws:iam::{MEMBER_ACCOUNT}:role/web") == "Allow"
    assert _decision(to_ec2, "iam:PassRole", "arn:aws:iam::999999999999:role/web") == "implicit deny"
