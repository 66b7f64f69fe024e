"""EC2 fixes beyond the generic harness: what they keep, what they refuse, the port rules."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import Refusals

from asr import local
from asr.aws import Clients
from asr.findings import parse_finding
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import finding, seed_one
from asr.local.seeders import Seeded
from asr.playbooks import registry
from asr.remediate import Status, remediate_resource

REGION = "us-east-1"
OTHER_ACCOUNT = "333333333333"


@pytest.fixture
def clients(aws) -> Clients:  # type: ignore[no-untyped-def]
    return Clients(aws, MEMBER_ACCOUNT, REGION)


def fix(clients: Any, control: str, resource_id: str, **params: Any):  # type: ignore[no-untyped-def]
    action = registry().playbooks[control].build_action(params)
    return remediate_resource(action, clients, resource_id)


def seeded_id(aws, control: str) -> str:  # type: ignore[no-untyped-def]
    seeded = seed_one(aws, control, MEMBER_ACCOUNT, REGION)
    return registry().for_control(control).extract_resource_id(seeded.resource_id, MEMBER_ACCOUNT)


# --- security groups: EC2.13, EC2.18, EC2.19 share one mechanism, with different port rules ---


def open_rules(clients: Clients, group_id: str) -> set[tuple[str, int | None, int | None, str]]:
    """Every (protocol, from, to, range) of the group's inbound rules."""
    group = clients.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return {
        (rule["IpProtocol"], rule.get("FromPort"), rule.get("ToPort"), cidr.get("CidrIp") or cidr["CidrIpv6"])
        for rule in group["IpPermissions"]
        for cidr in rule.get("IpRanges", []) + rule.get("Ipv6Ranges", [])
    }


def group_with(clients: Clients, *rules: tuple[str, int, int, str]) -> str:
    ec2 = clients.ec2
    vpc_id = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    group_id = ec2.create_security_group(GroupName="rules", Description="test", VpcId=vpc_id)["GroupId"]
    permissions = [
        {
            "IpProtocol": protocol,
            "FromPort": low,
            "ToPort": high,
            **({"Ipv6Ranges": [{"CidrIpv6": cidr}]} if ":" in cidr else {"IpRanges": [{"CidrIp": cidr}]}),
        }
        for protocol, low, high, cidr in rules
    ]
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=permissions)
    return group_id


MIXED_RULES = (
    ("tcp", 443, 443, "0.0.0.0/0"),
    ("tcp", 80, 80, "::/0"),
    ("tcp", 0, 65535, "0.0.0.0/0"),
    ("tcp", 5432, 5432, "10.0.0.0/8"),
    ("tcp", 3306, 3306, "::/0"),
    ("udp", 445, 445, "0.0.0.0/0"),
    ("udp", 53, 53, "0.0.0.0/0"),
    ("icmp", -1, -1, "0.0.0.0/0"),
    ("-1", -1, -1, "::/0"),
)


def kept(*dropped: tuple[str, int, int, str]) -> set[Any]:
    """What the group must read back as: the mixed rules minus the dropped ones."""
    expected = {r for r in MIXED_RULES if r not in dropped}
    return {(p, None, None, c) if p == "-1" else (p, lo, hi, c) for p, lo, hi, c in expected}


@pytest.mark.parametrize(
    ("control", "params", "dropped"),
    [
        (
            "EC2.18",
            {},
            [
                ("tcp", 0, 65535, "0.0.0.0/0"),
                ("tcp", 3306, 3306, "::/0"),
                ("udp", 445, 445, "0.0.0.0/0"),
                ("udp", 53, 53, "0.0.0.0/0"),
                ("-1", -1, -1, "::/0"),
            ],
        ),
        (
            "EC2.18",
            {"authorized_tcp_ports": [443, 3306], "authorized_udp_ports": [53]},
            [
                ("tcp", 80, 80, "::/0"),
                ("tcp", 0, 65535, "0.0.0.0/0"),
                ("udp", 445, 445, "0.0.0.0/0"),
                ("-1", -1, -1, "::/0"),
            ],
        ),
        (
            "EC2.19",
            {},
            [
                ("tcp", 0, 65535, "0.0.0.0/0"),
                ("tcp", 3306, 3306, "::/0"),
                ("udp", 445, 445, "0.0.0.0/0"),
                ("-1", -1, -1, "::/0"),
            ],
        ),
        ("EC2.13", {}, [("tcp", 0, 65535, "0.0.0.0/0"), ("-1", -1, -1, "::/0")]),
    ],
    ids=["EC2.18-defaults", "EC2.18-custom-ports", "EC2.19", "EC2.13-tcp-only"],
)
def test_open_ingress_port_rules(clients: Clients, control: str, params: dict, dropped: list) -> None:
    group_id = group_with(clients, *MIXED_RULES)
    result = fix(clients, control, group_id, **params)
    assert result.status == Status.REMEDIATED, result.message
    assert open_rules(clients, group_id) == kept(*dropped)


def test_open_ingress_keeps_narrow_ranges_of_a_revoked_rule(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    for control in ("EC2.18", "EC2.19"):
        group_id = seeded_id(aws, control)
        assert fix(clients, control, group_id).status == Status.REMEDIATED
        remaining = open_rules(clients, group_id)
        assert ("tcp", 443, 443, "0.0.0.0/0") in remaining, "not forbidden: stays"
        assert any(cidr == "10.0.0.0/8" for *_, cidr in remaining)


def test_authorized_ports_come_from_the_finding() -> None:
    seeded = Seeded(
        "EC2.18",
        "222222222222",
        "eu-west-1",
        "AwsEc2SecurityGroup",
        "arn:aws:ec2:eu-west-1:222222222222:security-group/sg-0123456789abcdef0",
    )
    raw = finding(seeded)
    raw["Compliance"]["SecurityControlParameters"] = [
        {"Name": "authorizedTcpPorts", "Value": ["443", "8443"]}
    ]
    record = parse_finding(raw, registry())
    assert record.parameters == {"authorized_tcp_ports": [443, 8443]}


def test_missing_security_group_is_reported(clients: Clients) -> None:
    result = fix(clients, "EC2.19", "sg-00000000000000000")
    assert result.status == Status.FAILED
    assert "InvalidGroup.NotFound" in result.message


# --- EC2.1: public snapshots ---


def snapshot(clients: Clients, **permission: list[str]) -> str:
    ec2 = clients.ec2
    volume_id = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    snapshot_id = ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"]
    ec2.modify_snapshot_attribute(
        SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType="add", **permission
    )
    return snapshot_id


def volume_permissions(clients: Clients, snapshot_id: str) -> list[dict[str, str]]:
    return clients.ec2.describe_snapshot_attribute(
        SnapshotId=snapshot_id, Attribute="createVolumePermission"
    )["CreateVolumePermissions"]


def test_public_snapshots_made_private_and_account_shares_kept(clients: Clients) -> None:
    public = [snapshot(clients, GroupNames=["all"]) for _ in range(3)]
    shared = snapshot(clients, UserIds=[OTHER_ACCOUNT])
    both = snapshot(clients, GroupNames=["all"], UserIds=[OTHER_ACCOUNT])

    result = fix(clients, "EC2.1", MEMBER_ACCOUNT)

    assert result.status == Status.REMEDIATED, result.message
    assert result.before == {"PublicSnapshots": sorted([*public, both])}
    assert all(volume_permissions(clients, s) == [] for s in public)
    assert volume_permissions(clients, shared) == [{"UserId": OTHER_ACCOUNT}]
    assert volume_permissions(clients, both) == [{"UserId": OTHER_ACCOUNT}]


def test_a_revert_skips_a_snapshot_deleted_since_and_puts_the_others_back(clients: Clients) -> None:
    first, gone, last = sorted(snapshot(clients, GroupNames=["all"]) for _ in range(3))
    action = registry().playbooks["EC2.1"].build_action()
    before = action.read(clients, MEMBER_ACCOUNT)
    action.apply(clients, MEMBER_ACCOUNT, before, action.plan(before))
    clients.ec2.delete_snapshot(SnapshotId=gone)

    action.revert(clients, MEMBER_ACCOUNT, before)
    assert volume_permissions(clients, first) == volume_permissions(clients, last) == [{"Group": "all"}]


class RefusingOne:
    """The member's clients, except that one snapshot's permission cannot be changed."""

    def __init__(self, clients: Clients, snapshot_id: str) -> None:
        self._clients, self._snapshot_id = clients, snapshot_id

    @property
    def ec2(self) -> Any:
        real, refused = self._clients.ec2, self._snapshot_id

        class Ec2:
            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

            def modify_snapshot_attribute(self, **kwargs: Any) -> Any:
                if kwargs["SnapshotId"] == refused:
                    raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "Modify")
                return real.modify_snapshot_attribute(**kwargs)

        return Ec2()


def test_one_snapshot_that_cannot_be_changed_does_not_keep_the_others_public(clients: Clients) -> None:
    first, refused, last = (snapshot(clients, GroupNames=["all"]) for _ in range(3))
    result = fix(RefusingOne(clients, refused), "EC2.1", MEMBER_ACCOUNT)
    assert result.status == Status.FAILED
    assert result.message.startswith("UnauthorizedOperation")
    assert volume_permissions(clients, first) == volume_permissions(clients, last) == []
    assert volume_permissions(clients, refused) == [{"Group": "all"}]


# --- EC2.6: flow logs ---


def test_flow_logs_share_the_stacks_role_and_one_log_group_for_many_vpcs(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    vpcs = [seeded_id(aws, "EC2.6") for _ in range(2)]
    for vpc_id in vpcs:
        assert fix(clients, "EC2.6", vpc_id).status == Status.REMEDIATED

    role = clients.iam.get_role(RoleName="asr-service-vpc-flow-logs")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    statement = trust["Statement"][0]
    assert statement["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == MEMBER_ACCOUNT
    [name] = clients.iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
    policy = clients.iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)
    assert "logs:PutLogEvents" in json.dumps(policy["PolicyDocument"])
    groups = clients.logs.describe_log_groups(logGroupNamePrefix="asr-vpc-flow-logs")["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["asr-vpc-flow-logs"]

    logs = clients.ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": vpcs}])["FlowLogs"]
    assert sorted(log["ResourceId"] for log in logs) == sorted(vpcs)
    assert {(log["TrafficType"], log["DeliverLogsPermissionArn"]) for log in logs} == {
        ("REJECT", role["Arn"])
    }


def test_flow_logs_to_a_log_group_the_stack_grants_no_delivery_to_fail_and_make_nothing(
    aws, clients: Clients
) -> None:  # type: ignore[no-untyped-def]
    """A playbook changed to name another log group since the stack was deployed: the role
    cannot deliver there, and the member role may not grant it, so the fix fails saying what
    to redeploy, and makes neither the group nor a flow log."""
    vpc = seeded_id(aws, "EC2.6")
    result = fix(clients, "EC2.6", vpc, log_group_name="network/flow-logs")
    assert result.status == Status.FAILED
    assert (
        "asr-service-vpc-flow-logs lacks the inline policy flow-logs-to-network-flow-logs-" in result.message
    )
    assert "member-role stack" in result.message
    assert clients.logs.describe_log_groups(logGroupNamePrefix="network")["logGroups"] == []
    assert (
        clients.ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc]}])["FlowLogs"] == []
    )


def test_flow_logs_wait_for_a_delivery_role_made_lately(aws, clients: Clients, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """EC2 checks that it can assume the role, and a role IAM made a moment ago is not usable
    yet, whichever thread or task made it: such a refusal is tried again. An old role's
    refusal, or another error that mentions an assumed role, is not."""
    import datetime

    import asr.actions

    monkeypatch.setattr(asr.actions, "ROLE_PROPAGATION_DELAYS", (0.0, 0.0))
    refusing = Refusals(clients.ec2, "CreateFlowLogs")
    unready = {"Code": "InvalidParameter", "Message": "Unable to assume given IAM role: 'arn'"}

    def fixed(result_wanted: Status, calls_wanted: int, *refused: dict[str, str]) -> None:
        refusing.next(*refused)
        # Each fix a batch of its own: a batch reads the role once (``Action.ready_role``).
        result = fix(Clients(aws, MEMBER_ACCOUNT, REGION), "EC2.6", seeded_id(aws, "EC2.6"))
        assert (result.status, refusing.calls) == (result_wanted, calls_wanted), result.message

    fixed(Status.REMEDIATED, 2, unready)  # the stack made the role moments ago: refused once, then made
    fixed(Status.REMEDIATED, 2, unready)  # again
    denied = {"Code": "UnauthorizedOperation", "Message": "assumed-role/ASRMemberRole/asr is not allowed"}
    fixed(Status.FAILED, 1, denied)  # not a propagation delay
    monkeypatch.setattr(asr.actions, "NEW_ROLE_AGE", datetime.timedelta(0))
    fixed(Status.FAILED, 1, unready)  # an old role's refusal stands


def test_flow_logs_of_another_traffic_type_do_not_count_but_all_does(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    accept_only, logs_all = seeded_id(aws, "EC2.6"), seeded_id(aws, "EC2.6")
    clients.logs.create_log_group(logGroupName="existing")
    for vpc_id, traffic in ((accept_only, "ACCEPT"), (logs_all, "ALL")):
        clients.ec2.create_flow_logs(
            ResourceIds=[vpc_id],
            ResourceType="VPC",
            TrafficType=traffic,
            LogGroupName="existing",
            DeliverLogsPermissionArn=f"arn:aws:iam::{MEMBER_ACCOUNT}:role/existing",
        )
    assert fix(clients, "EC2.6", logs_all).status == Status.ALREADY_COMPLIANT
    result = fix(clients, "EC2.6", accept_only)
    assert result.status == Status.REMEDIATED, result.message
    assert result.before == {"FlowLogsEnabled": False}


def test_flow_logs_for_a_missing_vpc_fail_before_creating_anything(clients: Clients) -> None:
    result = fix(clients, "EC2.6", "vpc-00000000000000000")
    assert result.status == Status.FAILED
    assert "InvalidVpcID.NotFound" in result.message
    assert clients.logs.describe_log_groups()["logGroups"] == []


# --- EC2.8, EC2.15 ---


def test_imdsv2_keeps_the_other_metadata_options(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    instance_id = seeded_id(aws, "EC2.8")
    result = fix(clients, "EC2.8", instance_id)
    assert result.status == Status.REMEDIATED, result.message
    assert (result.before, result.after) == ({"HttpTokens": "optional"}, {"HttpTokens": "required"})
    instance = clients.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert instance["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    assert instance["MetadataOptions"]["HttpEndpoint"] == "enabled"


def imdsv1_used(clients: Clients, instance_id: str, calls: int, days_ago: float) -> None:
    """What EC2 would have published: ``calls`` IMDSv1 calls the instance answered then."""
    import datetime

    clients.cloudwatch.put_metric_data(
        Namespace="AWS/EC2",
        MetricData=[
            {
                "MetricName": "MetadataNoToken",
                "Dimensions": [{"Name": "InstanceId", "Value": instance_id}],
                "Timestamp": datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days_ago),
                "Value": calls,
            }
        ],
    )


def test_imdsv2_is_not_required_of_an_instance_still_answering_imdsv1(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    """AWS's advice before requiring IMDSv2: see that nothing still uses IMDSv1. Calls in the
    last 14 days refuse the fix, naming them; older ones, or a check turned off, do not. The
    counts of many instances are one read, and a read-back reads no metric."""
    busy, long_ago, quiet = (
        registry()
        .for_control("EC2.8")
        .extract_resource_id(seed_one(aws, "EC2.8", MEMBER_ACCOUNT, REGION, n).resource_id, MEMBER_ACCOUNT)
        for n in range(3)
    )
    imdsv1_used(clients, busy, 30, days_ago=2)
    imdsv1_used(clients, busy, 7, days_ago=9)
    imdsv1_used(clients, long_ago, 12, days_ago=20)

    action = registry().playbooks["EC2.8"].build_action()
    local.served_requests(clear=True)
    states = action.read_many(clients, [busy, long_ago, quiet])
    served = [c["action"] for c in local.served_requests()]
    assert served == ["DescribeInstances", "GetMetricData"]
    assert {i: s["Imdsv1Calls"] for i, s in states.items()} == {busy: 37, long_ago: 0, quiet: 0}

    result = fix(clients, "EC2.8", busy)
    assert result.status == Status.FAILED
    assert (
        "answered 37 IMDSv1 metadata calls in the last 14 days (CloudWatch metric MetadataNoToken)"
        in result.message
    )
    instance = clients.ec2.describe_instances(InstanceIds=[busy])["Reservations"][0]["Instances"][0]
    assert instance["MetadataOptions"]["HttpTokens"] == "optional"

    local.served_requests(clear=True)
    assert fix(clients, "EC2.8", long_ago).status == Status.REMEDIATED
    assert [c["action"] for c in local.served_requests()].count("GetMetricData") == 1, "not on the read-back"
    assert fix(clients, "EC2.8", busy, imdsv1_quiet_days=0).status == Status.REMEDIATED


@pytest.mark.parametrize(
    ("control", "missing", "code"),
    [
        ("EC2.8", "i-00000000000000000", "InvalidInstanceID.NotFound"),
        ("EC2.15", "subnet-00000000000000000", "InvalidSubnetID.NotFound"),
    ],
)
def test_missing_instance_or_subnet_is_reported(
    clients: Clients, control: str, missing: str, code: str
) -> None:
    result = fix(clients, control, missing)
    assert result.status == Status.FAILED
    assert result.message.startswith(code)


# --- a change call that fails after part of the change went through, or after another fix


def refuse_outbound_once(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    """The default group's fix revokes the inbound rules, then its outbound call is refused
    with ``code`` once (as when botocore's own retries run out)."""
    action_class = type(registry().playbooks["EC2.2"].build_action())
    real = action_class.apply
    refused: list[str] = []

    def apply(self: Any, clients: Clients, resource_id: str, state: dict, plan: dict) -> None:
        if refused:
            return real(self, clients, resource_id, state, plan)
        refused.append(code)
        real(self, clients, resource_id, state, {k: v for k, v in plan.items() if k == "IpPermissions"})
        raise ClientError({"Error": {"Code": code, "Message": "refused"}}, "RevokeSecurityGroupEgress")

    monkeypatch.setattr(action_class, "apply", apply)


def default_group_rules(clients: Clients, group_id: str) -> tuple[list, list]:
    group = clients.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return group["IpPermissions"], group["IpPermissionsEgress"]


@pytest.mark.parametrize("n", [0, 1], ids=["default-vpc", "own-vpc"])
def test_a_throttled_fix_is_retried_from_what_the_resource_is_now(
    aws, clients: Clients, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    """The retry must not revoke the inbound rules again: outside a default VPC AWS (and the
    stand-in) answer InvalidPermission.NotFound, in one they come back unknown; the group
    was left half fixed. The fix's record keeps both directions it emptied."""
    seeded = seed_one(aws, "EC2.2", MEMBER_ACCOUNT, REGION, n)
    group_id = registry().for_control("EC2.2").extract_resource_id(seeded.resource_id, MEMBER_ACCOUNT)
    inbound, outbound = default_group_rules(clients, group_id)
    refuse_outbound_once(monkeypatch, "Throttling")
    local.served_requests(clear=True)
    result = fix(clients, "EC2.2", group_id)
    assert result.status == Status.REMEDIATED, result.message
    assert default_group_rules(clients, group_id) == ([], [])
    revokes = [c["action"] for c in local.served_requests() if c["action"].startswith("Revoke")]
    assert revokes == ["RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress"]
    assert result.before == {"IpPermissions": inbound, "IpPermissionsEgress": outbound}


@pytest.mark.parametrize("ours", [(22,), (22, 3306)], ids=["same-rules", "more-rules"])
def test_a_group_another_fix_changed_since_it_was_read_is_fixed_from_a_new_read(
    aws, clients: Clients, monkeypatch: pytest.MonkeyPatch, ours: tuple[int, ...]
) -> None:
    """EC2.13 and EC2.19 findings on one group run in parallel groups. In a non-default VPC
    a revoke naming a rule the other fix just revoked is refused whole: nothing of it is
    revoked, so the fix plans again from a new read and revokes the rest."""
    ec2 = clients.ec2
    vpc_id = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    group_id = ec2.create_security_group(GroupName="both", Description="test", VpcId=vpc_id)["GroupId"]
    world = [
        {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        for port in ours
    ]
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=world)
    action_class = type(registry().playbooks["EC2.19"].build_action())
    real = action_class.apply
    calls = []

    def after_another_fix(self: Any, clients: Clients, resource_id: str, state: dict, plan: dict) -> None:
        if not calls:  # EC2.13's fix, between our read and our revoke
            ec2.revoke_security_group_ingress(GroupId=resource_id, IpPermissions=world[:1])
        calls.append(state)
        real(self, clients, resource_id, state, plan)

    monkeypatch.setattr(action_class, "apply", after_another_fix)
    result = fix(clients, "EC2.19", group_id)
    assert open_rules(clients, group_id) == set()
    assert len(calls) == len(ours)  # planned again only when a rule was still open
    # What this fix revoked, not what the other did: a rollback must not reopen port 22.
    if ours[1:]:
        assert result.status == Status.REMEDIATED, result.message
        assert [rule["FromPort"] for rule in (result.before or {})["public_high_risk_ingress"]] == [3306]
    else:
        assert (result.status, result.before) == (Status.ALREADY_COMPLIANT, None), result.message


# --- EC2.23: transit gateways ---


def test_transit_gateway_fix_changes_only_auto_accept(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    gateway_id = seeded_id(aws, "EC2.23")
    options = clients.ec2.describe_transit_gateways(TransitGatewayIds=[gateway_id])["TransitGateways"][0][
        "Options"
    ]
    result = fix(clients, "EC2.23", gateway_id)
    assert result.status == Status.REMEDIATED, result.message
    assert (result.before, result.after) == (
        {"AutoAcceptSharedAttachments": "enable"},
        {"AutoAcceptSharedAttachments": "disable"},
    )
    after = clients.ec2.describe_transit_gateways(TransitGatewayIds=[gateway_id])["TransitGateways"][0][
        "Options"
    ]
    assert after == {**options, "AutoAcceptSharedAttachments": "disable"}


def test_a_missing_transit_gateway_is_reported(clients: Clients) -> None:
    result = fix(clients, "EC2.23", "tgw-00000000000000000")
    assert result.status == Status.FAILED
    assert "tgw-00000000000000000" in result.message


# --- AutoScaling.1: load-balanced groups on EC2 health checks ---


def auto_scaling_group(
    clients: Clients, name: str, checks: str, grace: int, load_balancers: tuple[str, ...] = ("web",)
) -> str:
    """A group with these health checks, behind these Classic Load Balancers; it runs no instances."""
    clients.ec2.create_launch_template(
        LaunchTemplateName=f"{name}-template", LaunchTemplateData={"ImageId": "ami-03cf127a"}
    )
    clients.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": f"{name}-template"},
        MinSize=0,
        MaxSize=1,
        AvailabilityZones=[f"{REGION}a"],
        LoadBalancerNames=list(load_balancers),
    )
    # moto makes a grace period of 0 at creation 300; an update sets it as AWS would have.
    clients.autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=name, HealthCheckType=checks, HealthCheckGracePeriod=grace
    )
    return name


def health_checks(clients: Clients, name: str) -> tuple[str, int]:
    group = clients.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ][0]
    return group["HealthCheckType"], group["HealthCheckGracePeriod"]


def test_elb_checks_join_the_others_and_a_missing_grace_period_is_given(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    seeded = seeded_id(aws, "AutoScaling.1")
    assert fix(clients, "AutoScaling.1", seeded).status == Status.REMEDIATED
    assert health_checks(clients, seeded) == ("ELB", 300)

    ebs = auto_scaling_group(clients, "with-ebs-checks", "EBS", 90)
    result = fix(clients, "AutoScaling.1", ebs)
    assert result.status == Status.REMEDIATED, result.message
    assert result.before == {"HealthCheckType": "EBS"}
    assert health_checks(clients, ebs) == ("EBS,ELB", 90)

    longer = auto_scaling_group(clients, "slow-start", "EC2", 0)
    assert fix(clients, "AutoScaling.1", longer, grace_period_seconds=900).status == Status.REMEDIATED
    assert health_checks(clients, longer) == ("ELB", 900)


def test_a_group_with_no_load_balancer_or_on_elb_checks_is_left_alone(clients: Clients) -> None:
    alone = auto_scaling_group(clients, "no-balancer", "EC2", 0, load_balancers=())
    on_elb = auto_scaling_group(clients, "on-elb", "ELB,EBS", 0)
    for name in (alone, on_elb):
        assert fix(clients, "AutoScaling.1", name).status == Status.ALREADY_COMPLIANT, name
    assert health_checks(clients, alone) == ("EC2", 0)


def test_groups_are_read_fifty_a_call(clients: Clients) -> None:
    """Auto Scaling describes at most 50 groups by name a call (the stand-in refuses more, as
    AWS does): 60 groups take two reads, not one refused read and then one per group."""
    names = [f"web-{n}" for n in range(60)]
    clients.ec2.create_launch_template(
        LaunchTemplateName="web", LaunchTemplateData={"ImageId": "ami-03cf127a"}
    )
    for name in names:
        clients.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": "web"},
            MinSize=0,
            MaxSize=1,
            AvailabilityZones=[f"{REGION}a"],
            LoadBalancerNames=["web"],
        )
    action = registry().playbooks["AutoScaling.1"].build_action()
    local.served_requests(clear=True)
    states = action.read_many(clients, names)
    assert [c["action"] for c in local.served_requests()] == ["DescribeAutoScalingGroups"] * 2
    assert sorted(states) == sorted(names) and all(isinstance(s, dict) for s in states.values())


def test_target_groups_count_as_a_load_balancer() -> None:
    action = registry().playbooks["AutoScaling.1"].build_action()
    group = {"AutoScalingGroupName": "g", "HealthCheckType": "EC2", "HealthCheckGracePeriod": 60}
    target = f"arn:aws:elasticloadbalancing:{REGION}:{MEMBER_ACCOUNT}:targetgroup/web/0123456789abcdef"
    assert action.plan(action.state_of({**group, "TargetGroupARNs": [target]})) == {"HealthCheckType": "ELB"}
    assert action.plan(action.state_of({**group, "TargetGroupARNs": []})) == {}


def serving_group(clients: Clients, name: str, instances: int = 2) -> tuple[str, str, list[str]]:
    """A group on EC2 checks running ``instances`` behind a target group and a Classic Load
    Balancer (all healthy until tagged ``asr-local:health``): its name, target group ARN and
    instances."""
    ec2 = clients.ec2
    vpc_id = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    target_group = clients.elbv2.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc_id)[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    clients.elb.create_load_balancer(
        LoadBalancerName=name,
        Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}],
        AvailabilityZones=[f"{REGION}a"],
    )
    ec2.create_launch_template(
        LaunchTemplateName=f"{name}-template", LaunchTemplateData={"ImageId": "ami-03cf127a"}
    )
    clients.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": f"{name}-template"},
        MinSize=instances,
        MaxSize=instances,
        DesiredCapacity=instances,
        AvailabilityZones=[f"{REGION}a"],
        TargetGroupARNs=[target_group],
        LoadBalancerNames=[name],
    )
    clients.autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=name, HealthCheckType="EC2", HealthCheckGracePeriod=0
    )
    group = clients.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ][0]
    return name, target_group, sorted(i["InstanceId"] for i in group["Instances"])


def fail_health_checks(clients: Clients, instance_id: str, reason: str = "") -> None:
    value = f"unhealthy:{reason}" if reason else "unhealthy"
    clients.ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "asr-local:health", "Value": value}])


def test_a_group_whose_load_balancer_finds_instances_unhealthy_is_refused(clients: Clients) -> None:
    """With ELB checks Auto Scaling would replace those instances at once: the fix refuses,
    naming each and where it fails, and changes nothing."""
    name, _, (first, second, third) = serving_group(clients, "web", instances=3)
    fail_health_checks(clients, first, "Target.Timeout")
    fail_health_checks(clients, third)
    local.served_requests(clear=True)
    result = fix(clients, "AutoScaling.1", name)
    assert result.status == Status.FAILED, result.message
    assert "2 of the group's 3 instances fail its load balancer's health check" in result.message
    assert (
        f"{first} (unhealthy in target group web: Target.Timeout; OutOfService behind load balancer web)"
        in result.message
    )
    assert (
        f"{third} (unhealthy in target group web: Target.FailedHealthChecks; OutOfService" in result.message
    )
    assert second not in result.message
    assert [c["action"] for c in local.served_requests()] == [
        "DescribeAutoScalingGroups",
        "DescribeTargetHealth",
        "DescribeInstanceHealth",
    ]
    assert health_checks(clients, name) == ("EC2", 0)


def test_a_classic_load_balancer_taking_an_instance_out_of_service_refuses_the_fix(clients: Clients) -> None:
    name, target_group, (first, _) = serving_group(clients, "classic")
    clients.autoscaling.detach_load_balancer_target_groups(
        AutoScalingGroupName=name, TargetGroupARNs=[target_group]
    )
    fail_health_checks(clients, first)
    result = fix(clients, "AutoScaling.1", name)
    assert result.status == Status.FAILED
    assert f"{first} (OutOfService behind load balancer classic)" in result.message
    assert health_checks(clients, name) == ("EC2", 0)


def test_a_group_whose_instances_pass_gets_elb_checks_and_its_read_back_reads_no_health(
    clients: Clients,
) -> None:
    name, _, _ = serving_group(clients, "healthy")
    local.served_requests(clear=True)
    result = fix(clients, "AutoScaling.1", name)
    assert result.status == Status.REMEDIATED, result.message
    assert [c["action"] for c in local.served_requests()] == [
        "DescribeAutoScalingGroups",
        "DescribeTargetHealth",
        "DescribeInstanceHealth",
        "UpdateAutoScalingGroup",
        "DescribeAutoScalingGroups",
    ]
    assert health_checks(clients, name) == ("ELB", 300)


def test_a_batch_reads_each_load_balancers_health_once_and_a_group_it_cannot_read_fails_alone(
    clients: Clients,
) -> None:
    """Two groups behind one target group cost one DescribeTargetHealth; a group whose target
    group is gone gets that error, and the others are still judged."""
    shared, target_group, (sick, _) = serving_group(clients, "shared")
    clients.ec2.create_launch_template(
        LaunchTemplateName="twin-template", LaunchTemplateData={"ImageId": "ami-03cf127a"}
    )
    clients.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="twin",
        LaunchTemplate={"LaunchTemplateName": "twin-template"},
        MinSize=1,
        MaxSize=1,
        DesiredCapacity=1,
        AvailabilityZones=[f"{REGION}a"],
        TargetGroupARNs=[target_group],
    )
    clients.autoscaling.update_auto_scaling_group(AutoScalingGroupName="twin", HealthCheckType="EC2")
    orphan, lost, _ = serving_group(clients, "orphan")
    clients.elbv2.delete_target_group(TargetGroupArn=lost)
    fail_health_checks(clients, sick)
    action = registry().playbooks["AutoScaling.1"].build_action()
    local.served_requests(clear=True)
    states = action.read_many(clients, [shared, "twin", orphan])
    health_reads = [c["action"] for c in local.served_requests() if c["action"].endswith("Health")]
    assert sorted(health_reads) == ["DescribeInstanceHealth", "DescribeTargetHealth", "DescribeTargetHealth"]
    assert len(states[shared]["Unhealthy"]) == 1 and states[shared]["Unhealthy"][0].startswith(sick)
    assert states["twin"]["Unhealthy"] == []
    assert isinstance(states[orphan], ClientError)
    assert states[orphan].response["Error"]["Code"] == "TargetGroupNotFound"


def test_a_group_name_is_read_from_its_arn() -> None:
    playbook = registry().playbooks["AutoScaling.1"]
    arn = (
        f"arn:aws:autoscaling:{REGION}:{MEMBER_ACCOUNT}:autoScalingGroup:"
        "14c4be82-bb3a-47ef-a33a-868696444d6a:autoScalingGroupName/web tier/blue"
    )
    assert playbook.extract_resource_id(arn, MEMBER_ACCOUNT) == "web tier/blue"


def test_the_part_of_a_rule_ec2_answered_unknown_is_not_counted_as_revoked() -> None:
    """Each source of a rule (range, group, prefix list) is revoked or named unknown on its
    own; a rule all of whose sources were unknown is not among those revoked."""
    from asr.actions.ec2 import _less

    both = {
        "IpProtocol": "tcp",
        "FromPort": 22,
        "ToPort": 22,
        "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
        "UserIdGroupPairs": [{"GroupId": "sg-1", "UserId": MEMBER_ACCOUNT}],
        "PrefixListIds": [{"PrefixListId": "pl-1"}],
    }
    every = {"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}
    unknown = [
        {"IpProtocol": "6", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": "sg-1"}]},
        {"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
    ]
    assert _less([both, every], unknown) == [{**both, "UserIdGroupPairs": []}]
    # An entry that names what none of the rules has, or nothing: what went is not known.
    other_port = {"IpProtocol": "tcp", "FromPort": 23, "ToPort": 23, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    assert _less([both], [other_port]) is None
    assert _less([both], [{**unknown[0], "UserIdGroupPairs": [{"GroupName": "web"}]}]) is None
    assert _less([both], [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22}]) is None
    icmp = {"IpProtocol": "icmp", "FromPort": 8, "ToPort": 0, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    assert _less([icmp], [{**icmp, "IpProtocol": "1"}]) == []


def test_a_flow_log_call_sent_again_after_a_lost_answer_makes_one_flow_log(aws, clients: Clients) -> None:  # type: ignore[no-untyped-def]
    """botocore sends a call again, as it was, when its answer is lost (a connection reset):
    the second refused as a duplicate of the first, the fix is judged by its read-back,
    which shows the one flow log the first made."""
    vpc = seeded_id(aws, "EC2.6")
    sent: list[str] = []

    def lost_once(attempts: int, operation: Any, **_: Any) -> float | None:
        if operation.name == "CreateFlowLogs" and attempts == 1:
            sent.append("again")
            return 0.0  # retry at once, the same request
        return None

    clients.ec2.meta.events.register_first("needs-retry.ec2.CreateFlowLogs", lost_once)
    result = fix(clients, "EC2.6", vpc)
    assert sent == ["again"]
    assert result.status == Status.REMEDIATED, result.message
    assert "FlowLogAlreadyExists" in result.message
    logs = clients.ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc]}])["FlowLogs"]
    assert len(logs) == 1
