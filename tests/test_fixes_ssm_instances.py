"""SSM.1: an EC2 instance's role gets AmazonSSMManagedInstanceCore, or the instance gets the
shared instance profile; what each path writes, refuses, reuses and undoes."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from helpers import Refusals, routing_record

import asr.actions
from asr.aws import Clients
from asr.local import MEMBER_ACCOUNT, served_requests
from asr.local.request_log_ext import is_write
from asr.local.seed import seed_one
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource, run_batch

REGION = "us-east-1"
CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
ROLE = "asr-service-ssm-instance"
EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


@pytest.fixture
def clients(aws) -> Clients:  # type: ignore[no-untyped-def]
    return Clients(aws, MEMBER_ACCOUNT, REGION)


def fix(clients: Clients, instance_id: str, **params: Any) -> tuple[Result, list[str]]:
    """Run SSM.1's fix on one instance; return the result and the write calls it made."""
    served_requests(clear=True)
    result = remediate_resource(registry().playbooks["SSM.1"].build_action(params), clients, instance_id)
    return result, [c["action"] for c in served_requests() if is_write(c)]


def instance(aws) -> str:  # type: ignore[no-untyped-def]
    """A running instance without an instance profile (the seeder's)."""
    seeded = seed_one(aws, "SSM.1", MEMBER_ACCOUNT, REGION)
    return registry().for_control("SSM.1").extract_resource_id(seeded.resource_id, MEMBER_ACCOUNT)


def profile_of(clients: Clients, instance_id: str) -> str | None:
    """The ARN of the instance's associated profile, or None."""
    associations = clients.ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["IamInstanceProfileAssociations"]
    live = [a for a in associations if a["State"] in ("associating", "associated")]
    return live[0]["IamInstanceProfile"]["Arn"] if live else None


def attached(clients: Clients, role: str) -> set[str]:
    return {
        p["PolicyArn"] for p in clients.iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    }


def own_profile(clients: Clients, name: str, role: str | None, *policies: str, path: str = "/") -> str:
    """An instance profile (with a role holding ``policies``, unless ``role`` is None); its ARN."""
    iam = clients.iam
    arn = iam.create_instance_profile(InstanceProfileName=name, Path=path)["InstanceProfile"]["Arn"]
    if role is not None:
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
        for policy in policies:
            iam.attach_role_policy(RoleName=role, PolicyArn=policy)
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
    return arn


def with_profile(aws, clients: Clients, profile_arn: str) -> str:  # type: ignore[no-untyped-def]
    instance_id = instance(aws)
    clients.ec2.associate_iam_instance_profile(
        IamInstanceProfile={"Arn": profile_arn}, InstanceId=instance_id
    )
    return instance_id


# --- no instance profile: the shared role and profile ---


def test_an_instance_without_profile_gets_the_stacks_shared_one(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    """The member-role stack made the role (trusting EC2, holding the policy) and its profile:
    the fix only associates it."""
    first, second = instance(aws), instance(aws)
    result, writes = fix(clients, first)
    assert result.status == Status.REMEDIATED, result.message
    assert writes == ["AssociateIamInstanceProfile"]
    assert result.before == {"InstanceProfile": None, "Role": None, "ManagedInstanceCore": False}
    assert result.after == {"InstanceProfile": ROLE, "Role": ROLE, "ManagedInstanceCore": True}

    role = clients.iam.get_role(RoleName=ROLE)["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == EC2_TRUST["Statement"]
    assert attached(clients, ROLE) == {CORE}
    profile = clients.iam.get_instance_profile(InstanceProfileName=ROLE)["InstanceProfile"]
    assert profile_of(clients, first) == profile["Arn"]

    result, writes = fix(clients, second)
    assert result.status == Status.REMEDIATED, result.message
    assert writes == ["AssociateIamInstanceProfile"]
    assert profile_of(clients, second) == profile["Arn"]


def test_a_role_the_stack_did_not_make_is_not_made(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    instance_id = instance(aws)
    result, writes = fix(clients, instance_id, role_name="fleet")
    assert (result.status, writes) == (Status.FAILED, [])
    assert "the IAM role fleet is missing: the member-role stack makes it" in result.message
    assert profile_of(clients, instance_id) is None


def test_a_profile_of_that_name_holding_another_role_is_not_handed_out(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    instance_id = instance(aws)
    own_profile(clients, "other-profile", "powerful", READ_ONLY)
    clients.iam.remove_role_from_instance_profile(InstanceProfileName=ROLE, RoleName=ROLE)
    clients.iam.add_role_to_instance_profile(InstanceProfileName=ROLE, RoleName="powerful")
    result, writes = fix(clients, instance_id)
    assert (result.status, writes) == (Status.FAILED, [])
    assert f"lacks an instance profile {ROLE} holding it (and no other role)" in result.message
    assert profile_of(clients, instance_id) is None


def test_a_profile_made_lately_is_associated_once_ec2_accepts_it(aws, clients: Clients, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """EC2 refuses a profile IAM made moments ago, whoever made it: that refusal is tried
    again. Another refusal, or an old profile's, is not."""
    monkeypatch.setattr(asr.actions, "ROLE_PROPAGATION_DELAYS", (0.0, 0.0))
    refusing = Refusals(clients.ec2, "AssociateIamInstanceProfile")
    unready = {
        "Code": "InvalidParameterValue",
        "Message": f"Value (arn:aws:iam::{MEMBER_ACCOUNT}:instance-profile/{ROLE}) for parameter "
        "iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN",
    }

    def fixed(wanted: Status, calls_wanted: int, *refused: dict[str, str]) -> None:
        refusing.next(*refused)
        # Each fix a batch of its own: a batch reads the role once (``Action.ready_role``).
        result, _ = fix(Clients(aws, MEMBER_ACCOUNT, REGION), instance(aws))
        assert (result.status, refusing.calls) == (wanted, calls_wanted), result.message

    fixed(Status.REMEDIATED, 2, unready)  # the stack made it moments ago: refused once, then associated
    fixed(Status.REMEDIATED, 3, unready, unready)
    fixed(Status.FAILED, 1, {"Code": "UnauthorizedOperation", "Message": "not allowed to pass the role"})
    monkeypatch.setattr(asr.actions, "NEW_ROLE_AGE", datetime.timedelta(0))
    fixed(Status.FAILED, 1, unready)  # an old profile's refusal stands


def _batch(aws, n: int) -> tuple[list[str], list[Any]]:  # type: ignore[no-untyped-def]
    """``n`` instances without a profile, and SSM.1's findings of them."""
    ids = [instance(aws) for _ in range(n)]
    arn = f"arn:aws:ec2:{REGION}:{MEMBER_ACCOUNT}:instance/"
    return ids, [routing_record("SSM.1", arn + i, i, MEMBER_ACCOUNT) for i in ids]


def test_a_batch_of_instances_shares_one_role_and_profile_read_once(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    """The role is checked once per batch: per instance, a fleet of thousands would spend
    IAM's low rate limit on the same three reads."""
    ids, records = _batch(aws, 4)
    served_requests(clear=True)
    outcomes = run_batch(records, registry(), aws)
    assert [o.status for o in outcomes] == [Status.REMEDIATED] * 4, [o.message for o in outcomes]
    calls = [c["action"] for c in served_requests()]
    assert [c for c in calls if c.startswith("AssociateIam")] == ["AssociateIamInstanceProfile"] * 4
    fixing = calls[: len(calls) - calls[::-1].index("AssociateIamInstanceProfile")]  # not the read-back
    assert [c for c in fixing if c.startswith(("Get", "List"))] == [
        "GetRole",
        "ListAttachedRolePolicies",
        "GetInstanceProfile",
    ], calls
    profile = clients.iam.get_instance_profile(InstanceProfileName=ROLE)["InstanceProfile"]
    assert {profile_of(clients, i) for i in ids} == {profile["Arn"]}


def test_a_role_not_as_the_stack_makes_it_fails_the_whole_batch_read_once(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    ids, records = _batch(aws, 3)
    clients.iam.detach_role_policy(RoleName=ROLE, PolicyArn=CORE)
    served_requests(clear=True)
    outcomes = run_batch(records, registry(), aws)
    assert {o.status for o in outcomes} == {Status.FAILED}
    assert all("lacks the AWS managed policy AmazonSSMManagedInstanceCore" in o.message for o in outcomes)
    calls = [c["action"] for c in served_requests()]
    assert calls.count("GetRole") == 1 and not [c for c in calls if c.startswith("AssociateIam")]
    assert all(profile_of(clients, i) is None for i in ids)


# --- an instance profile already: its role ---


def test_the_role_of_an_existing_profile_gets_the_policy_and_no_role_is_made(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    arn = own_profile(clients, "web", "web-role", READ_ONLY, path="/apps/")
    instance_id = with_profile(aws, clients, arn)
    result, writes = fix(clients, instance_id)
    assert result.status == Status.REMEDIATED, result.message
    assert writes == ["AttachRolePolicy"]
    assert (result.before, result.after) == ({"ManagedInstanceCore": False}, {"ManagedInstanceCore": True})
    assert attached(clients, "web-role") == {READ_ONLY, CORE}
    assert profile_of(clients, instance_id) == arn


def test_a_profile_without_a_role_is_refused_with_the_reason(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    instance_id = with_profile(aws, clients, own_profile(clients, "empty", None))
    result, writes = fix(clients, instance_id)
    assert (result.status, writes) == (Status.FAILED, [])
    assert "instance profile empty has no role" in result.message


def test_a_fixed_instance_systems_manager_does_not_list_yet_awaits_security_hub_s_check(  # type: ignore[no-untyped-def]
    aws, clients: Clients
) -> None:
    """The role is given, but SSM.1 checks Systems Manager's list, which the agent joins
    minutes later, or never (no route to the endpoints): the fix is made, and the finding is
    left for Security Hub to resolve (``awaits_check``), not RESOLVED by asr."""
    silent, listed = instance(aws), instance(aws)
    clients.ec2.create_tags(Resources=[silent], Tags=[{"Key": "asr-local:ssm-agent", "Value": "stopped"}])
    result, writes = fix(clients, silent)
    assert (result.status, writes, result.awaits_check) == (
        Status.REMEDIATED,
        ["AssociateIamInstanceProfile"],
        True,
    )
    assert "Systems Manager does not list the instance yet" in result.message
    assert "Systems Manager does not list the instance yet" in result.caveat
    result, _ = fix(clients, listed)
    assert (result.status, result.awaits_check, result.caveat) == (Status.REMEDIATED, False, "")


def test_such_a_fix_is_written_back_notified_for_security_hub_to_resolve(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    """From the finding through the fix to write-back: the outcome carries what the fix
    awaits, and Security Hub is told NOTIFIED with it, not RESOLVED."""
    from asr.findings import parse_finding
    from asr.local.seed import finding, import_findings
    from asr.securityhub import iter_findings, queries_by_id
    from asr.writeback import write_back

    seeded = seed_one(aws, "SSM.1", MEMBER_ACCOUNT, REGION)
    raw = finding(seeded)
    securityhub = aws.admin_client("securityhub", REGION)
    import_findings(securityhub, [raw])
    record = parse_finding(raw, registry())
    clients.ec2.create_tags(
        Resources=[record.resource_id], Tags=[{"Key": "asr-local:ssm-agent", "Value": "stopped"}]
    )
    [outcome] = run_batch([record], registry(), aws)
    assert (outcome.status, outcome.awaits_check) == ("REMEDIATED", True)
    assert write_back(securityhub, [outcome], "run-1").updated == 1
    [now] = iter_findings(securityhub, queries_by_id([raw["Id"]]))
    assert now["Workflow"]["Status"] == "NOTIFIED"
    assert "Systems Manager does not list the instance yet" in now["Note"]["Text"]


def test_a_role_with_the_policy_already_is_left_alone(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    instance_id = with_profile(aws, clients, own_profile(clients, "managed", "managed-role", CORE))
    result, writes = fix(clients, instance_id)
    assert (result.status, writes) == (Status.ALREADY_COMPLIANT, [])


@pytest.mark.parametrize(
    ("agent", "stopped", "reason"),
    [
        ("stopped", False, "Systems Manager does not list the instance: its SSM agent is not running"),
        (None, True, "the instance is stopped: Systems Manager lists an instance only once"),
    ],
)
def test_a_role_with_the_policy_but_no_registered_agent_is_failed_not_compliant(  # type: ignore[no-untyped-def]
    aws, clients: Clients, agent: str | None, stopped: bool, reason: str
) -> None:
    """SSM.1 checks that Systems Manager lists the instance. With the policy in place, what
    is missing is the agent (or the instance running): no IAM change helps, and calling it
    compliant would write the finding RESOLVED while Security Hub still fails it."""
    instance_id = with_profile(aws, clients, own_profile(clients, "managed", "managed-role", CORE))
    if agent:
        clients.ec2.create_tags(
            Resources=[instance_id], Tags=[{"Key": "asr-local:ssm-agent", "Value": agent}]
        )
    if stopped:
        clients.ec2.stop_instances(InstanceIds=[instance_id])
    result, writes = fix(clients, instance_id)
    assert (result.status, writes) == (Status.FAILED, [])
    assert "its role managed-role already has AmazonSSMManagedInstanceCore" in result.message
    assert reason in result.message and result.message.endswith("; nothing changed")


# --- reverts ---


def test_a_revert_takes_away_the_profile_it_gave_and_keeps_the_shared_role(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    fixed, other = instance(aws), instance(aws)
    action = registry().playbooks["SSM.1"].build_action()
    before = action.read(clients, fixed)  # what the journal keeps for a rollback
    for instance_id in (fixed, other):
        assert fix(clients, instance_id)[0].status == Status.REMEDIATED

    action.revert(clients, fixed, before)
    assert action.read(clients, fixed) == before
    assert profile_of(clients, other) is not None  # the other instance keeps the shared profile
    assert attached(clients, ROLE) == {CORE}


def test_a_revert_leaves_a_profile_associated_since_by_someone_else(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    instance_id = instance(aws)
    action = registry().playbooks["SSM.1"].build_action()
    before = action.read(clients, instance_id)
    assert fix(clients, instance_id)[0].status == Status.REMEDIATED
    [association] = clients.ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["IamInstanceProfileAssociations"]
    clients.ec2.disassociate_iam_instance_profile(AssociationId=association["AssociationId"])
    theirs = own_profile(clients, "theirs", "their-role", CORE)
    clients.ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": theirs}, InstanceId=instance_id)

    action.revert(clients, instance_id, before)
    assert profile_of(clients, instance_id) == theirs


def test_a_revert_detaches_the_policy_from_the_existing_role_only(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    instance_id = with_profile(aws, clients, own_profile(clients, "web", "web-role", READ_ONLY))
    action = registry().playbooks["SSM.1"].build_action()
    before = action.read(clients, instance_id)
    assert fix(clients, instance_id)[0].status == Status.REMEDIATED

    action.revert(clients, instance_id, before)
    assert attached(clients, "web-role") == {READ_ONLY}
    assert action.read(clients, instance_id) == before
    action.revert(clients, instance_id, before)  # detached already: nothing to do, no error


# --- errors and bulk reads ---


def test_a_missing_instance_fails_with_the_aws_reason(clients: Clients) -> None:
    result, writes = fix(clients, "i-00000000000000000")
    assert (result.status, writes) == (Status.FAILED, [])
    assert result.message.startswith("InvalidInstanceID.NotFound")


def test_a_terminated_instance_is_refused_with_the_reason(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    instance_id = instance(aws)
    clients.ec2.terminate_instances(InstanceIds=[instance_id])
    result, writes = fix(clients, instance_id)
    assert (result.status, writes) == (Status.FAILED, [])
    assert "is terminated" in result.message


def test_many_instances_are_read_in_one_describe_each_profile_once(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    bare = instance(aws)
    shared = own_profile(clients, "web", "web-role", READ_ONLY)
    web = [with_profile(aws, clients, shared) for _ in range(3)]
    managed = with_profile(aws, clients, own_profile(clients, "managed", "managed-role", CORE))
    empty = with_profile(aws, clients, own_profile(clients, "empty", None))
    action = registry().playbooks["SSM.1"].build_action()

    served_requests(clear=True)
    states = action.read_many(clients, [bare, *web, managed, empty])
    calls = [c["action"] for c in served_requests()]
    assert calls.count("DescribeInstances") == 1
    assert calls.count("DescribeIamInstanceProfileAssociations") == 1
    assert calls.count("GetInstanceProfile") == 3  # web, managed, empty
    assert calls.count("ListAttachedRolePolicies") == 2  # web-role, managed-role
    assert calls.count("DescribeInstanceInformation") == 1  # for the one whose role allows the agent

    unmanaged = {"State": "running", "ManagedInstanceCore": False, "Registered": False}
    assert states[bare] == {"InstanceProfile": None, "Role": None, **unmanaged}
    assert all(states[i] == {"InstanceProfile": "web", "Role": "web-role", **unmanaged} for i in web)
    assert states[managed] == {
        "State": "running",
        "InstanceProfile": "managed",
        "Role": "managed-role",
        "ManagedInstanceCore": True,
        "Registered": True,
    }
    assert isinstance(states[empty], ValueError)


def test_a_full_chunk_of_200_instances_is_read_in_one_go(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    """EC2 takes 200 filter values a call in all: a state filter beside 200 ids was refused,
    and the whole chunk was read again one instance at a time."""
    first = instance(aws)
    image = clients.ec2.describe_instances(InstanceIds=[first])["Reservations"][0]["Instances"][0]["ImageId"]
    more = clients.ec2.run_instances(ImageId=image, MinCount=199, MaxCount=199)["Instances"]
    ids = [first, *(i["InstanceId"] for i in more)]
    action = registry().playbooks["SSM.1"].build_action()

    served_requests(clear=True)
    states = action.read_many(clients, ids)
    calls = [c["action"] for c in served_requests()]
    assert (calls.count("DescribeInstances"), calls.count("DescribeIamInstanceProfileAssociations")) == (1, 1)
    assert all(states[i]["InstanceProfile"] is None for i in ids)


def test_only_a_live_association_counts_as_the_instance_s_profile() -> None:
    """The association states are picked in code, not by EC2's filter: AWS lists an
    instance's disassociated profiles too, which must neither count as its profile nor hide
    the live one. (The stand-in forgets disassociated ones: a stubbed answer stands in.)"""
    import boto3
    from botocore.stub import Stubber

    from asr.actions.ssm import _live_associations

    ec2 = boto3.client("ec2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")

    def association(instance_id: str, state: str, name: str) -> dict[str, Any]:
        arn = f"arn:aws:iam::{MEMBER_ACCOUNT}:instance-profile/{name}"
        return {"InstanceId": instance_id, "State": state, "IamInstanceProfile": {"Arn": arn, "Id": name}}

    answer = [
        association("i-0a", "associated", "live"),
        association("i-0a", "disassociated", "old"),
        association("i-0b", "disassociated", "gone"),
    ]
    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_iam_instance_profile_associations", {"IamInstanceProfileAssociations": answer}
        )
        live = _live_associations(ec2, ["i-0a", "i-0b"])
    assert {i: a["IamInstanceProfile"]["Id"] for i, a in live.items()} == {"i-0a": "live"}


def test_an_id_systems_manager_refuses_does_not_fail_the_others(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    """One instance that ended between the reads (InvalidInstanceId) failed the whole ask, and
    with it every instance of the batch."""
    from asr.actions.ssm import _registered

    managed = with_profile(aws, clients, own_profile(clients, "managed", "managed-role", CORE))
    assert _registered(clients.ssm, [managed, "i-00000000000000000"]) == {managed}


def test_a_retry_credits_the_fix_an_earlier_try_made_though_the_agent_is_not_listed_yet(  # type: ignore[no-untyped-def]
    aws, clients: Clients, tmp_path
) -> None:
    """The earlier try attached the policy and died; the agent registers minutes later on AWS.
    The retry must report that fix, not FAILED for an agent that has not registered yet."""
    from asr.audit import AuditJournal, Origin
    from asr.remediate import Target, assess, fix_targets

    instance_id = with_profile(aws, clients, own_profile(clients, "web", "web-role", READ_ONLY))
    clients.ec2.create_tags(
        Resources=[instance_id], Tags=[{"Key": "asr-local:ssm-agent", "Value": "stopped"}]
    )
    action = registry().playbooks["SSM.1"].build_action()
    target = Target(clients, instance_id, (), action)
    planned = assess(action, clients, instance_id)

    def journal(try_number: int) -> AuditJournal:
        return AuditJournal(tmp_path, Origin("asr_sweep", "r", "SSM.1-0000", try_number, "s"))

    journal(1).intend(target, planned)
    action.apply(clients, instance_id, planned.state, planned.plan)  # and then the try died
    [result] = fix_targets([target], journal=journal(2))
    assert result.status == Status.REMEDIATED and "by an earlier try" in result.message
    # Without an earlier try of its own, the same resource is FAILED for its agent.
    [again] = fix_targets(
        [target], journal=AuditJournal(tmp_path / "other", Origin("asr_sweep", "r2", "b", 1, "s"))
    )
    assert again.status == Status.FAILED and "Systems Manager does not list the instance" in again.message
