"""EC2.10: an interface endpoint for the EC2 API, one subnet per zone, behind a group of its own
that admits HTTPS from the VPC; whatever cannot be made right is refused, with nothing left."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import Refusals, assert_extracted_id, hooked, vpc_with_subnets
from test_actions import fix_read_back_stale
from test_fixes_data import assert_permissions_cover_served_calls, parameters_sent

from asr import local
from asr.actions import ChangedMeanwhile
from asr.actions.ec2_endpoints import GROUP_NAME, CreateEc2ApiEndpoint
from asr.audit import AuditJournal, Origin, journal_root
from asr.aws import Clients
from asr.findings import parse_finding
from asr.local import MEMBER_ACCOUNT
from asr.local.ec2_endpoints_ext import STATE_TAG
from asr.local.seed import finding, seed_one
from asr.local.seeders import Seeded
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource, run_batch
from asr.rollback import Rollback, RollbackStatus

REGION = "us-east-1"
CONTROL = "EC2.10"
SERVICE = f"com.amazonaws.{REGION}.ec2"
MADE_FOR = {"Key": "asr:made-for", "Value": "EC2.10"}
TAGS = [{"Key": "Name", "Value": GROUP_NAME}, MADE_FOR]
READS = ("Describe",)


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """EC2 is asked again every 10 ms, not 5 s, while it makes or deletes an endpoint."""
    monkeypatch.setattr(CreateEc2ApiEndpoint, "poll_seconds", 0.01)


def clients(aws: Any) -> Clients:
    return Clients(aws, MEMBER_ACCOUNT, REGION)


@pytest.fixture
def ec2(aws: Any) -> Any:
    return clients(aws).ec2


def vpc(ec2: Any, *zones: str, **dns: bool) -> tuple[str, list[str]]:
    return vpc_with_subnets(ec2, REGION, *zones, **dns)


def fix(aws: Any, vpc_id: str, **params: Any) -> tuple[Result, list[dict[str, Any]]]:
    """The fix of the VPC, and each CreateVpcEndpoint it sent."""
    action = registry().playbooks[CONTROL].build_action(params)
    with parameters_sent(clients(aws).ec2, "CreateVpcEndpoint") as sent:
        result = remediate_resource(action, clients(aws), vpc_id)
    return result, sent


def endpoints(ec2: Any, vpc_id: str) -> dict[str, str]:
    """The VPC's endpoints, by id: their state."""
    found = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"]
    return {e["VpcEndpointId"]: e["State"] for e in found}


def group(ec2: Any, vpc_id: str) -> dict[str, Any] | None:
    found = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [GROUP_NAME]}]
    )["SecurityGroups"]
    return found[0] if found else None


def https_from(*cidrs: str) -> list[dict[str, Any]]:
    return [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": c} for c in cidrs]}]


def hand_made_group(ec2: Any, vpc_id: str, rules: list[dict[str, Any]]) -> str:
    group_id = ec2.create_security_group(GroupName=GROUP_NAME, Description="by hand", VpcId=vpc_id)["GroupId"]
    if rules:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=rules)
    return str(group_id)


def by_hand(ec2: Any, vpc_id: str, subnets: list[str], **more: Any) -> str:
    """An endpoint for the EC2 API someone made (in the VPC's default group unless told)."""
    made = ec2.create_vpc_endpoint(
        VpcEndpointType="Interface", VpcId=vpc_id, ServiceName=SERVICE, SubnetIds=subnets, **more
    )
    return str(made["VpcEndpoint"]["VpcEndpointId"])


def offer_in(*zones: str) -> None:
    """EC2's endpoint service in these zones of the member account's Region only."""
    response = requests.post(
        f"{local.endpoint_url()}/moto-api/asr/ec2/endpoint-service-zones",
        json={"account_id": MEMBER_ACCOUNT, "region": REGION, "service_name": SERVICE, "zones": list(zones)},
        timeout=10,
    )
    response.raise_for_status()


def writes() -> list[str]:
    """The EC2 calls the stand-in served since its log was cleared that change something."""
    return [
        c["action"]
        for c in local.served_requests()
        if c["service"] == "ec2" and not c["action"].startswith(READS)
    ]


def untouched(ec2: Any, vpc_id: str) -> None:
    """Nothing made: no endpoint, no group."""
    assert (endpoints(ec2, vpc_id), group(ec2, vpc_id)) == ({}, None)


def test_the_seeded_vpc_gets_an_endpoint_in_each_zone_within_the_permissions(aws: Any, ec2: Any) -> None:
    seeded = seed_one(aws, CONTROL, MEMBER_ACCOUNT, REGION)
    vpc_id = registry().playbooks[CONTROL].extract_resource_id(seeded.resource_id, MEMBER_ACCOUNT)
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    by_zone = {s["AvailabilityZone"]: s["SubnetId"] for s in subnets}
    assert sorted(by_zone) == [f"{REGION}a", f"{REGION}b"] and endpoints(ec2, vpc_id) == {}
    local.served_requests(clear=True)

    result, sent = fix(aws, vpc_id)
    assert result.status == Status.REMEDIATED, result.message
    [made] = endpoints(ec2, vpc_id)
    ours = group(ec2, vpc_id)
    assert ours is not None
    assert (result.before, result.after, result.caveat) == (
        {"Ec2ApiEndpoint": None, "EndpointGroup": None},
        {"Ec2ApiEndpoint": made, "EndpointGroup": ours["GroupId"]},
        "",
    )
    [request] = sent
    token = request.pop("ClientToken")
    assert token.startswith("asr-") and len(token) == 64
    assert request == {
        "VpcEndpointType": "Interface",
        "VpcId": vpc_id,
        "ServiceName": SERVICE,
        "SubnetIds": [by_zone[f"{REGION}a"], by_zone[f"{REGION}b"]],
        "SecurityGroupIds": [ours["GroupId"]],
        "IpAddressType": "ipv4",
        "PrivateDnsEnabled": True,
        "TagSpecifications": [{"ResourceType": "vpc-endpoint", "Tags": TAGS}],
    }
    assert [(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in ours["IpPermissions"]] == [
        ("tcp", 443, 443)
    ]
    assert [r["CidrIp"] for r in ours["IpPermissions"][0]["IpRanges"]] == ["10.0.0.0/16"]
    assert not ours["IpPermissions"][0]["Ipv6Ranges"] and not ours["IpPermissions"][0]["UserIdGroupPairs"]
    assert sorted(ours["Tags"], key=str) == sorted(TAGS, key=str)
    [described] = ec2.describe_vpc_endpoints(VpcEndpointIds=[made])["VpcEndpoints"]
    assert sorted(described["Tags"], key=str) == sorted(TAGS, key=str)
    assert [g["GroupName"] for g in described["Groups"]] == [GROUP_NAME], "never the VPC's default group"
    assert_permissions_cover_served_calls(CONTROL)


def test_a_second_run_changes_nothing(aws: Any, ec2: Any) -> None:
    vpc_id, _ = vpc(ec2, "a", "b")
    assert fix(aws, vpc_id)[0].status == Status.REMEDIATED
    local.served_requests(clear=True)
    result, sent = fix(aws, vpc_id)
    assert (result.status, result.before, sent, writes()) == (Status.ALREADY_COMPLIANT, None, [], [])
    assert len(endpoints(ec2, vpc_id)) == 1


def test_the_default_vpc_is_fixed_like_any_other(aws: Any, ec2: Any) -> None:
    """EC2.10 evaluates it too; it has both DNS attributes on and a default subnet in every zone."""
    [default] = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [default["VpcId"]]}])["Subnets"]
    result, [request] = fix(aws, default["VpcId"])
    assert result.status == Status.REMEDIATED, result.message
    assert request["PrivateDnsEnabled"] is True
    assert sorted(request["SubnetIds"]) == sorted(s["SubnetId"] for s in subnets)
    [rule] = group(ec2, default["VpcId"])["IpPermissions"]  # type: ignore[index]
    assert [r["CidrIp"] for r in rule["IpRanges"]] == [default["CidrBlock"]]


def test_an_endpoint_not_listed_yet_is_read_again(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """EC2's reads are eventually consistent: the read-back may not list the new endpoint at once."""
    result, read_backs, _ = fix_read_back_stale(aws, monkeypatch, CONTROL)
    assert (result.status, read_backs) == (Status.REMEDIATED, 3), result.message


def test_an_endpoint_someone_else_made_complies(aws: Any, ec2: Any) -> None:
    """Whoever made it, in whatever group, with or without private DNS: EC2.10 asks for one."""
    vpc_id, (a, _) = vpc(ec2, "a", "b", hostnames=False)
    theirs = by_hand(ec2, vpc_id, [a], PrivateDnsEnabled=False)
    local.served_requests(clear=True)
    result, sent = fix(aws, vpc_id)
    assert (result.status, sent, writes()) == (Status.ALREADY_COMPLIANT, [], [])
    assert (endpoints(ec2, vpc_id), group(ec2, vpc_id)) == ({theirs: "available"}, None)


def test_an_endpoint_ec2_is_still_making_is_left_to_it(aws: Any, ec2: Any) -> None:
    vpc_id, (a, b) = vpc(ec2, "a", "b")
    ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": STATE_TAG, "Value": "pending"}])
    theirs = by_hand(ec2, vpc_id, [a, b], PrivateDnsEnabled=True)
    local.served_requests(clear=True)
    result, sent = fix(aws, vpc_id)
    assert (result.status, sent, writes()) == (Status.FAILED, [], [])
    assert f"EC2 is still making {theirs} (pending)" in result.message
    assert result.message.endswith("nothing changed")
    assert (endpoints(ec2, vpc_id), group(ec2, vpc_id)) == ({theirs: "pending"}, None)


def test_endpoints_gone_or_failed_do_not_count(aws: Any, ec2: Any) -> None:
    vpc_id, (a, b) = vpc(ec2, "a", "b")
    deleted = by_hand(ec2, vpc_id, [a])
    ec2.delete_vpc_endpoints(VpcEndpointIds=[deleted])
    ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": STATE_TAG, "Value": "failed"}])
    failed = by_hand(ec2, vpc_id, [b], PrivateDnsEnabled=False)
    assert endpoints(ec2, vpc_id)[failed] == "failed"
    ec2.delete_tags(Resources=[vpc_id], Tags=[{"Key": STATE_TAG}])
    result, _ = fix(aws, vpc_id)
    assert result.status == Status.REMEDIATED, result.message
    made = result.after["Ec2ApiEndpoint"]  # type: ignore[index]
    assert endpoints(ec2, vpc_id) == {deleted: "deleted", failed: "failed", made: "available"}


@pytest.mark.parametrize(("support", "hostnames"), [(True, True), (True, False), (False, True)])
def test_private_dns_is_on_only_with_both_dns_attributes(
    aws: Any, ec2: Any, support: bool, hostnames: bool
) -> None:
    """EC2 refuses private DNS otherwise; the endpoint is made all the same, and the fix says
    that calls keep going to EC2's public endpoint (the VPC's attributes are left as they are)."""
    vpc_id, _ = vpc(ec2, "a", "b", support=support, hostnames=hostnames)
    result, [request] = fix(aws, vpc_id)
    assert result.status == Status.REMEDIATED, result.message
    both = support and hostnames
    assert request["PrivateDnsEnabled"] is both
    if both:
        assert result.caveat == ""
    else:
        assert result.caveat.startswith("the endpoint has no private DNS, since the VPC's enableDnsSupport")
        assert result.message.endswith(result.caveat)
    attributes = [
        ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=name)[key]["Value"]
        for name, key in (
            ("enableDnsSupport", "EnableDnsSupport"),
            ("enableDnsHostnames", "EnableDnsHostnames"),
        )
    ]
    assert attributes == [support, hostnames]


def test_one_subnet_per_zone_the_service_is_offered_in(aws: Any, ec2: Any) -> None:
    """Of two subnets in one zone the lower id; none in a zone EC2 offers no endpoint in."""
    offer_in(f"{REGION}a", f"{REGION}b")
    vpc_id, (a1, a2, b, c) = vpc(ec2, "a", "a", "b", "c")
    result, [request] = fix(aws, vpc_id)
    assert result.status == Status.REMEDIATED, result.message
    assert request["SubnetIds"] == [min(a1, a2), b]
    assert c not in request["SubnetIds"]


def test_subnets_named_are_used_in_their_own_vpc(aws: Any, ec2: Any) -> None:
    """A playbook may list subnets of many VPCs: each VPC takes those that are its own, and a
    VPC none of them is in gets one per zone as usual."""
    named_vpc, (a1, a2, _) = vpc(ec2, "a", "a", "b")
    other_vpc, (other_a, other_b) = vpc(ec2, "a", "b")
    chosen = max(a1, a2)
    result, [request] = fix(aws, named_vpc, subnet_ids=[chosen, other_a])
    assert result.status == Status.REMEDIATED, result.message
    assert request["SubnetIds"] == [chosen]
    result, [request] = fix(aws, other_vpc, subnet_ids=[chosen])
    assert result.status == Status.REMEDIATED, result.message
    assert request["SubnetIds"] == [other_a, other_b]


def test_subnets_that_cannot_hold_it_are_passed_over(aws: Any, ec2: Any) -> None:
    """An IPv6-only subnet (an IPv4 endpoint needs IPv4 addresses) and a full one are skipped."""
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]["VpcId"]
    [block] = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["Ipv6CidrBlockAssociationSet"]
    ipv6_only = ec2.create_subnet(
        VpcId=vpc_id,
        Ipv6Native=True,
        Ipv6CidrBlock=block["Ipv6CidrBlock"].replace("/56", "/64"),
        AvailabilityZone=f"{REGION}a",
    )["Subnet"]["SubnetId"]
    full = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.20.1.0/28", AvailabilityZone=f"{REGION}b")["Subnet"]
    for _ in range(full["AvailableIpAddressCount"]):
        ec2.create_network_interface(SubnetId=full["SubnetId"])
    free = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.20.2.0/24", AvailabilityZone=f"{REGION}c")["Subnet"]
    result, [request] = fix(aws, vpc_id)
    assert result.status == Status.REMEDIATED, result.message
    assert request["SubnetIds"] == [free["SubnetId"]]
    assert ipv6_only not in request["SubnetIds"]


@pytest.mark.parametrize("named", ["one-zone", "not-offered"])
def test_subnets_named_that_cannot_hold_it_are_refused(aws: Any, ec2: Any, named: str) -> None:
    offer_in(f"{REGION}a", f"{REGION}b")
    vpc_id, (a1, a2, c) = vpc(ec2, "a", "a", "c")
    subnet_ids = [a1, a2] if named == "one-zone" else [a1, c]
    local.served_requests(clear=True)
    result, sent = fix(aws, vpc_id, subnet_ids=subnet_ids)
    assert (result.status, sent, writes()) == (Status.FAILED, [], [])
    if named == "one-zone":
        assert f"subnet_ids names {', '.join(sorted([a1, a2]))} of the VPC, in one Availability Zone" in (
            result.message
        )
    else:
        assert f"cannot hold the endpoint: {c} (EC2 offers no endpoint in {REGION}c)" in result.message
    untouched(ec2, vpc_id)


@pytest.mark.parametrize("zones", [("c",), ()], ids=["elsewhere", "no-subnet"])
def test_a_vpc_without_a_subnet_where_ec2_offers_it_is_refused(
    aws: Any, ec2: Any, zones: tuple[str, ...]
) -> None:
    offer_in(f"{REGION}a", f"{REGION}b")
    vpc_id, _ = vpc(ec2, *zones)
    local.served_requests(clear=True)
    result, sent = fix(aws, vpc_id)
    assert (result.status, sent, writes()) == (Status.FAILED, [], [])
    assert (
        "the VPC has no subnet that can hold the endpoint (with IPv4 addresses, one of them free) in an "
        f"Availability Zone EC2 offers it in ({REGION}a, {REGION}b); nothing changed"
    ) in result.message
    untouched(ec2, vpc_id)


def test_a_group_under_the_fixed_name_that_admits_just_the_vpc_is_used(aws: Any, ec2: Any) -> None:
    vpc_id, _ = vpc(ec2, "a", "b")
    theirs = hand_made_group(ec2, vpc_id, https_from("10.20.0.0/16"))
    local.served_requests(clear=True)
    result, [request] = fix(aws, vpc_id)
    assert result.status == Status.REMEDIATED, result.message
    assert request["SecurityGroupIds"] == [theirs]
    assert "CreateSecurityGroup" not in writes() and "AuthorizeSecurityGroupIngress" not in writes()


@pytest.mark.parametrize(
    "rules",
    [
        https_from("0.0.0.0/0"),
        https_from("10.20.0.0/16", "192.168.0.0/16"),
        [{"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, "IpRanges": [{"CidrIp": "10.20.0.0/16"}]}],
        [{**https_from("10.20.0.0/16")[0], "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}],
        [{**https_from("10.20.0.0/16")[0], "UserIdGroupPairs": [{"GroupId": "itself"}]}],
        [{**https_from("10.20.0.0/16")[0], "PrefixListIds": [{"PrefixListId": "office"}]}],
        [],
    ],
    ids=["world", "more", "all-ports", "ipv6", "group", "prefix-list", "none"],
)
def test_a_group_under_the_fixed_name_that_admits_otherwise_is_refused(
    aws: Any, ec2: Any, rules: list[dict[str, Any]]
) -> None:
    """Anything more than HTTPS from the VPC's IPv4 ranges, or less, is no group this fix makes."""
    vpc_id, _ = vpc(ec2, "a", "b")
    theirs = ec2.create_security_group(GroupName=GROUP_NAME, Description="by hand", VpcId=vpc_id)["GroupId"]
    office = ec2.create_managed_prefix_list(
        PrefixListName="office", AddressFamily="IPv4", MaxEntries=1, Entries=[{"Cidr": "192.0.2.0/24"}]
    )["PrefixList"]["PrefixListId"]
    for rule in rules:
        for pair in rule.get("UserIdGroupPairs", []):
            pair["GroupId"] = theirs
        for listed in rule.get("PrefixListIds", []):
            listed["PrefixListId"] = office
    if rules:
        ec2.authorize_security_group_ingress(GroupId=theirs, IpPermissions=rules)
    local.served_requests(clear=True)
    result, sent = fix(aws, vpc_id)
    assert (result.status, sent, writes()) == (Status.FAILED, [], [])
    assert (
        f"a security group {GROUP_NAME} ({theirs}) is in the VPC but does not admit exactly HTTPS from the "
        "VPC's IPv4 ranges (10.20.0.0/16)"
    ) in result.message
    assert endpoints(ec2, vpc_id) == {}


def unfinished_group(ec2: Any, vpc_id: str) -> str:
    """The group a fix makes, tagged as its own, before the fix wrote its rule."""
    made = ec2.create_security_group(
        GroupName=GROUP_NAME,
        Description="made by a fix",
        VpcId=vpc_id,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": TAGS}],
    )
    return str(made["GroupId"])


@pytest.mark.parametrize("how", ["left-by-a-dead-fix", "made-by-a-resent-call"])
def test_a_group_a_fix_made_without_its_rule_is_finished_used_and_rolled_back(
    aws: Any, ec2: Any, tmp_path: Path, how: str
) -> None:
    """A fix that died between making its group and writing its rule (or whose
    CreateSecurityGroup botocore sent again after EC2 took it) left the tagged group with no
    rule: the next fix writes the rule and uses it, instead of refusing it for good, and
    counts it as made by the fix, so a rollback deletes it."""
    vpc_id, _ = vpc(ec2, "a", "b")
    made: list[str] = []

    def unfinished(**_: Any) -> None:
        if not made:
            made.append("")  # first: the call below comes through this hook too
            made[0] = unfinished_group(ec2, vpc_id)

    if how == "left-by-a-dead-fix":
        unfinished()
        root, [outcome] = _fixed(aws, tmp_path, vpc_id)
    else:
        with hooked(ec2, "before-call.ec2.CreateSecurityGroup", unfinished):
            root, [outcome] = _fixed(aws, tmp_path, vpc_id)
    assert outcome.status == Status.REMEDIATED, outcome.message
    [endpoint] = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"]
    assert [g["GroupId"] for g in endpoint["Groups"]] == made
    [rule] = group(ec2, vpc_id)["IpPermissions"]  # type: ignore[index]
    assert (rule["FromPort"], [r["CidrIp"] for r in rule["IpRanges"]]) == (443, ["10.20.0.0/16"])
    assert outcome.before["EndpointGroup"] is None  # type: ignore[index]
    reversal = _rollback(aws, root)[vpc_id]
    assert reversal.status == RollbackStatus.REVERTED, reversal.reason
    assert group(ec2, vpc_id) is None


def test_a_group_of_the_fix_s_own_with_a_rule_narrowed_since_is_refused(aws: Any, ec2: Any) -> None:
    """Only a group with no rule at all was left unfinished: one whose rule a person narrowed
    is theirs to correct, not widened again."""
    vpc_id, _ = vpc(ec2, "a", "b")
    ec2.associate_vpc_cidr_block(VpcId=vpc_id, CidrBlock="10.30.0.0/16")
    # Admits one of the VPC's two ranges: less than the fix writes, but not nothing.
    ec2.authorize_security_group_ingress(
        GroupId=unfinished_group(ec2, vpc_id), IpPermissions=https_from("10.20.0.0/16")
    )
    result, sent = fix(aws, vpc_id)
    assert (result.status, sent) == (Status.FAILED, [])
    assert "does not admit exactly HTTPS from the VPC's IPv4 ranges" in result.message


def test_every_ipv4_range_of_the_vpc_is_admitted_and_no_ipv6_one(aws: Any, ec2: Any) -> None:
    """The endpoint is IPv4: its interfaces have no IPv6 address, so no IPv6 rule is written."""
    vpc_id, _ = vpc(ec2, "a", "b")
    ec2.associate_vpc_cidr_block(VpcId=vpc_id, CidrBlock="100.64.0.0/16")
    ec2.associate_vpc_cidr_block(VpcId=vpc_id, AmazonProvidedIpv6CidrBlock=True)
    result, [request] = fix(aws, vpc_id)
    assert result.status == Status.REMEDIATED, result.message
    [rule] = group(ec2, vpc_id)["IpPermissions"]  # type: ignore[index]
    assert sorted(r["CidrIp"] for r in rule["IpRanges"]) == ["10.20.0.0/16", "100.64.0.0/16"]
    assert (rule["Ipv6Ranges"], request["IpAddressType"]) == ([], "ipv4")


def test_a_vpc_that_does_not_exist_is_refused(aws: Any, ec2: Any) -> None:
    local.served_requests(clear=True)
    result, sent = fix(aws, "vpc-0123456789abcdef0")
    assert (result.status, sent, writes()) == (Status.FAILED, [], [])
    assert result.message.startswith("InvalidVpcID.NotFound")


def test_a_region_where_ec2_offers_no_endpoint_is_refused(aws: Any, ec2: Any) -> None:
    vpc_id, _ = vpc(ec2, "a", "b")

    def none_offered(**_: Any) -> Any:
        return type("Answer", (), {"status_code": 200})(), {"ServiceDetails": []}

    with hooked(ec2, "before-call.ec2.DescribeVpcEndpointServices", none_offered):
        result, sent = fix(aws, vpc_id)
    assert (result.status, sent) == (Status.FAILED, [])
    assert (
        "lists no interface endpoint service for the EC2 API in this Region; nothing changed"
        in result.message
    )
    untouched(ec2, vpc_id)


def test_the_group_made_for_an_endpoint_ec2_refuses_is_deleted(aws: Any, ec2: Any) -> None:
    vpc_id, _ = vpc(ec2, "a", "b")
    refusals = Refusals(ec2, "CreateVpcEndpoint")
    conflict = (
        "private-dns-enabled cannot be set because there is already a conflicting DNS domain for "
        f"ec2.{REGION}.amazonaws.com in the VPC {vpc_id}"
    )
    refusals.next({"Code": "InvalidParameter", "Message": conflict})
    result, _ = fix(aws, vpc_id)
    assert (result.status, result.message) == (Status.FAILED, f"InvalidParameter: {conflict}")
    assert result.before == {"Ec2ApiEndpoint": None, "EndpointGroup": None}
    untouched(ec2, vpc_id)


def test_a_group_whose_rule_cannot_be_written_is_deleted(aws: Any, ec2: Any) -> None:
    vpc_id, _ = vpc(ec2, "a", "b")
    Refusals(ec2, "AuthorizeSecurityGroupIngress").next({"Code": "UnauthorizedOperation", "Message": "no"})
    result, sent = fix(aws, vpc_id)
    assert (result.status, result.message, sent) == (Status.FAILED, "UnauthorizedOperation: no", [])
    untouched(ec2, vpc_id)


def test_an_endpoint_ec2_could_not_make_is_deleted_with_its_group(aws: Any, ec2: Any) -> None:
    vpc_id, _ = vpc(ec2, "a", "b")
    ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": STATE_TAG, "Value": "failed"}])
    result, _ = fix(aws, vpc_id)
    assert result.status == Status.FAILED
    [made] = endpoints(ec2, vpc_id)
    assert result.message == (
        f"ChangeNotMade: EC2 could not make the endpoint {made}: it is failed (no reason); it was deleted, "
        "and so was the security group made for it"
    )
    assert (endpoints(ec2, vpc_id), group(ec2, vpc_id)) == ({made: "deleted"}, None)
    assert result.after == result.before == {"Ec2ApiEndpoint": None, "EndpointGroup": None}


def test_a_group_ec2_will_not_delete_yet_stays_for_the_next_run(aws: Any, ec2: Any) -> None:
    """Its network interfaces may hold it a while longer: it stays, as the fix makes it, and the
    next run uses it."""
    vpc_id, _ = vpc(ec2, "a", "b")
    ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": STATE_TAG, "Value": "failed"}])
    Refusals(ec2, "DeleteSecurityGroup").next({"Code": "DependencyViolation", "Message": "in use"})
    result, _ = fix(aws, vpc_id)
    kept = group(ec2, vpc_id)["GroupId"]  # type: ignore[index]
    assert result.status == Status.FAILED
    assert result.message.endswith(
        f"it was deleted; the security group made for it, {kept}, stays, for the next run to use"
    )
    ec2.delete_tags(Resources=[vpc_id], Tags=[{"Key": STATE_TAG}])
    result, sent = fix(aws, vpc_id)
    assert result.status == Status.REMEDIATED, result.message
    # The same request as before, whose token EC2 answers with the failed endpoint: sent again under another.
    assert [r["SecurityGroupIds"] for r in sent] == [[kept], [kept]]


def test_the_fix_waits_for_ec2_to_make_the_endpoint(aws: Any, ec2: Any) -> None:
    vpc_id, _ = vpc(ec2, "a", "b")
    ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": STATE_TAG, "Value": "pending"}])
    made = threading.Timer(1.0, lambda: ec2.delete_tags(Resources=[vpc_id], Tags=[{"Key": STATE_TAG}]))
    made.start()
    try:
        result, _ = fix(aws, vpc_id, wait_seconds=60)
    finally:
        made.join()
    assert result.status == Status.REMEDIATED, result.message
    assert list(endpoints(ec2, vpc_id).values()) == ["available"]


def test_an_endpoint_not_made_when_the_wait_is_up_is_left_to_ec2_and_rolled_back(
    aws: Any, ec2: Any, tmp_path: Path
) -> None:
    """FAILED, its endpoint left being made (with its group); once it is available it reads as
    this fix left it, and a rollback deletes both."""
    vpc_id, _ = vpc(ec2, "a", "b")
    ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": STATE_TAG, "Value": "pending"}])
    record = parse_finding(finding(_seeded(vpc_id)), registry())
    root = journal_root(str(tmp_path), "asr_sweep", "run-1")
    journal = AuditJournal(root, Origin("asr_sweep", "run-1", "b", 1, "s"))
    [outcome] = run_batch([record], registry(), aws, overrides={"wait_seconds": 0}, journal=journal)
    [made] = endpoints(ec2, vpc_id)
    made_group = group(ec2, vpc_id)["GroupId"]  # type: ignore[index]
    assert (outcome.status, outcome.after) == (
        Status.FAILED,
        {"Ec2ApiEndpoint": made, "EndpointGroup": made_group},
    )
    assert outcome.message == (
        f"ChangeNotMade: EC2 was still making the endpoint {made} after 0 s (wait_seconds): it is left to "
        "EC2, and the VPC complies once it is available"
    )
    ec2.delete_tags(Resources=[vpc_id], Tags=[{"Key": STATE_TAG}])

    [reversal] = Rollback(AuditJournal(root, Origin("asr_rollback", "r-1", "rollback", 1, "bob")), aws).run()
    assert reversal.status == RollbackStatus.REVERTED, reversal.reason
    assert (endpoints(ec2, vpc_id), group(ec2, vpc_id)) == ({made: "deleted"}, None)


def test_a_group_ec2_does_not_see_yet_is_asked_again(
    aws: Any, ec2: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EC2 is eventually consistent: a group just made may be unknown to the next call for a moment."""
    import time

    monkeypatch.setattr(time, "sleep", lambda _: None)
    vpc_id, _ = vpc(ec2, "a", "b")
    unknown = {"Code": "InvalidGroup.NotFound", "Message": "The security group does not exist"}
    authorize, create = Refusals(ec2, "AuthorizeSecurityGroupIngress"), Refusals(ec2, "CreateVpcEndpoint")
    authorize.next(unknown)
    create.next(unknown)
    result, _ = fix(aws, vpc_id)
    assert result.status == Status.REMEDIATED, result.message
    assert (authorize.calls, create.calls) == (2, 2)


def test_a_request_sent_again_makes_no_second_endpoint(aws: Any, ec2: Any) -> None:
    """What a retry whose first answer was lost sends: the same request, under the same token."""
    vpc_id, _ = vpc(ec2, "a", "b")
    result, [request] = fix(aws, vpc_id)
    again = ec2.create_vpc_endpoint(**request)["VpcEndpoint"]["VpcEndpointId"]
    assert again == result.after["Ec2ApiEndpoint"]  # type: ignore[index]
    assert len(endpoints(ec2, vpc_id)) == 1


def test_an_endpoint_deleted_by_hand_is_made_again(aws: Any, ec2: Any) -> None:
    """Its group stays, so the next fix sends the same request: EC2 answers the token with the
    deleted endpoint, and a request under another token makes a new one."""
    vpc_id, _ = vpc(ec2, "a", "b")
    first, [sent] = fix(aws, vpc_id)
    gone = first.after["Ec2ApiEndpoint"]  # type: ignore[index]
    ec2.delete_vpc_endpoints(VpcEndpointIds=[gone])
    result, requests_sent = fix(aws, vpc_id)
    assert result.status == Status.REMEDIATED, result.message
    made = result.after["Ec2ApiEndpoint"]  # type: ignore[index]
    assert endpoints(ec2, vpc_id) == {gone: "deleted", made: "available"}
    replayed, other = (r["ClientToken"] for r in requests_sent)
    assert replayed == sent["ClientToken"] != other


def test_an_endpoint_made_since_the_read_is_not_doubled(aws: Any, ec2: Any) -> None:
    vpc_id, (a, _) = vpc(ec2, "a", "b")
    action = registry().playbooks[CONTROL].build_action()
    state = action.read(clients(aws), vpc_id)
    theirs = by_hand(ec2, vpc_id, [a])
    with pytest.raises(ChangedMeanwhile):
        action.apply(clients(aws), vpc_id, state, action.plan(state))
    assert (endpoints(ec2, vpc_id), group(ec2, vpc_id)) == ({theirs: "available"}, None)


def test_a_group_made_since_the_read_is_used(aws: Any, ec2: Any) -> None:
    """CreateSecurityGroup answers InvalidGroup.Duplicate: the VPC is read again, and the group
    used, as it admits just the VPC."""
    vpc_id, _ = vpc(ec2, "a", "b")
    theirs: list[str] = []

    def made_meanwhile(**_: Any) -> None:
        if not theirs:  # the fix's own call: someone else's gets there first
            theirs.append("")
            theirs[0] = hand_made_group(ec2, vpc_id, https_from("10.20.0.0/16"))

    with hooked(ec2, "before-call.ec2.CreateSecurityGroup", made_meanwhile):
        result, [request] = fix(aws, vpc_id)
    assert result.status == Status.REMEDIATED, result.message
    assert request["SecurityGroupIds"] == theirs


def _seeded(vpc_id: str) -> Seeded:
    return Seeded(
        CONTROL, MEMBER_ACCOUNT, REGION, "AwsEc2Vpc", f"arn:aws:ec2:{REGION}:{MEMBER_ACCOUNT}:vpc/{vpc_id}"
    )


def _fixed(aws: Any, tmp_path: Path, *vpc_ids: str, **params: Any) -> tuple[Path, list[Any]]:
    """Each VPC fixed in one run (with these parameters), recorded in its journal: the journal's
    folder, the outcomes."""
    project = registry()
    root = journal_root(str(tmp_path), "asr_sweep", "run-1")
    journal = AuditJournal(root, Origin("asr_sweep", "run-1", "b", 1, "s"))
    records = [parse_finding(finding(_seeded(vpc_id)), project) for vpc_id in vpc_ids]
    outcomes = run_batch(records, project, aws, overrides=params, journal=journal)
    assert [o.status for o in outcomes] == [Status.REMEDIATED] * len(vpc_ids), [o.message for o in outcomes]
    return root, outcomes


def _rollback(aws: Any, root: Path, dry: bool = False) -> dict[str, Any]:
    reversals = Rollback(
        AuditJournal(root, Origin("asr_rollback", "r-1", "rollback", 1, "bob")), aws, dry=dry
    ).run()
    return {r.resource_id: r for r in reversals}


def test_a_rollback_deletes_the_endpoint_and_the_group_the_fix_made(
    aws: Any, ec2: Any, tmp_path: Path
) -> None:
    vpc_id, _ = vpc(ec2, "a", "b")
    root, [outcome] = _fixed(aws, tmp_path, vpc_id)
    made = outcome.after["Ec2ApiEndpoint"]
    assert _rollback(aws, root, dry=True)[vpc_id].status == RollbackStatus.WOULD_REVERT
    local.served_requests(clear=True)
    reversal = _rollback(aws, root)[vpc_id]
    assert reversal.status == RollbackStatus.REVERTED, reversal.reason
    assert (endpoints(ec2, vpc_id), group(ec2, vpc_id)) == ({made: "deleted"}, None)
    action = registry().playbooks[CONTROL].build_action()
    served = {f"ec2:{c['action']}" for c in local.served_requests() if c["service"] == "ec2"}
    assert {"ec2:DeleteVpcEndpoints", "ec2:DeleteSecurityGroup"} <= served
    assert served <= {*action.permissions, *action.revert_permissions}


def test_a_rollback_keeps_a_group_it_did_not_make_or_that_is_used_since(
    aws: Any, ec2: Any, tmp_path: Path
) -> None:
    """A group the fix found and used stays; one it made that an instance uses now stays too, and
    the rollback says it put back only the endpoint."""
    found_vpc, _ = vpc(ec2, "a", "b")
    found = hand_made_group(ec2, found_vpc, https_from("10.20.0.0/16"))
    used_vpc, (_, used_b) = vpc(ec2, "a", "b")
    root, outcomes = _fixed(aws, tmp_path, found_vpc, used_vpc)
    assert outcomes[0].before == {"Ec2ApiEndpoint": None}, "the group was there: not the fix's change"
    used = group(ec2, used_vpc)["GroupId"]  # type: ignore[index]
    ec2.run_instances(
        ImageId="ami-03cf127a", MinCount=1, MaxCount=1, SubnetId=used_b, SecurityGroupIds=[used]
    )
    reversals = _rollback(aws, root)
    assert reversals[found_vpc].status == RollbackStatus.REVERTED, reversals[found_vpc].reason
    assert (reversals[used_vpc].status, reversals[used_vpc].reason) == (
        RollbackStatus.PARTLY_REVERTED,
        "put back {'Ec2ApiEndpoint': None}; not EndpointGroup: the security group "
        f"{used} the fix made for the endpoint is used by something else since (DeleteSecurityGroup: "
        "DependencyViolation): it stays; delete it once nothing uses it",
    )
    for vpc_id, kept, outcome in ((found_vpc, found, outcomes[0]), (used_vpc, used, outcomes[1])):
        assert endpoints(ec2, vpc_id) == {outcome.after["Ec2ApiEndpoint"]: "deleted"}
        assert group(ec2, vpc_id)["GroupId"] == kept  # type: ignore[index]


def test_a_group_ec2_holds_while_it_deletes_the_endpoint_is_deleted_by_a_later_try(
    aws: Any, ec2: Any, tmp_path: Path
) -> None:
    """EC2 may take longer than ``wait_seconds`` to delete the endpoint, whose network interfaces
    hold the group: the rollback fails rather than call that put back, and a later try, once the
    endpoint is gone, deletes the group and says REVERTED."""
    vpc_id, _ = vpc(ec2, "a", "b")
    root, [outcome] = _fixed(aws, tmp_path, vpc_id, wait_seconds=0)  # the revert waits as its fix did
    made, made_group = outcome.after["Ec2ApiEndpoint"], outcome.after["EndpointGroup"]
    ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": STATE_TAG, "Value": "deleting"}])
    first = _rollback(aws, root)[vpc_id]
    assert (first.status, first.reason) == (
        RollbackStatus.FAILED,
        f"ChangeNotMade: EC2 was still deleting the endpoint {made} after 0 s (wait_seconds), whose "
        f"network interfaces hold the security group {made_group} the fix made: roll back again once it "
        "is gone",
    )
    assert (endpoints(ec2, vpc_id), group(ec2, vpc_id)["GroupId"]) == (  # type: ignore[index]
        {made: "deleting"},
        made_group,
    )
    ec2.delete_tags(Resources=[vpc_id], Tags=[{"Key": STATE_TAG}])
    again = _rollback(aws, root)[vpc_id]
    assert again.status == RollbackStatus.REVERTED, again.reason
    assert (endpoints(ec2, vpc_id), group(ec2, vpc_id)) == ({made: "deleted"}, None)


def test_a_rollback_leaves_an_endpoint_made_since_in_the_fix_s_stead(
    aws: Any, ec2: Any, tmp_path: Path
) -> None:
    vpc_id, (a, _) = vpc(ec2, "a", "b")
    root, [outcome] = _fixed(aws, tmp_path, vpc_id)
    ec2.delete_vpc_endpoints(VpcEndpointIds=[outcome.after["Ec2ApiEndpoint"]])
    theirs = by_hand(ec2, vpc_id, [a])
    reversal = _rollback(aws, root)[vpc_id]
    assert reversal.status == RollbackStatus.CHANGED_SINCE, reversal.reason
    assert endpoints(ec2, vpc_id)[theirs] == "available"


def test_a_revert_keeps_a_group_under_the_fixed_name_that_asr_did_not_make(aws: Any, ec2: Any) -> None:
    """One made by hand since the fix read the VPC (its before-state has none) does not carry
    ASR's tag: it stays."""
    vpc_id, _ = vpc(ec2, "a", "b")
    action = registry().playbooks[CONTROL].build_action()
    before = action.read(clients(aws), vpc_id)
    theirs = hand_made_group(ec2, vpc_id, https_from("10.20.0.0/16"))
    local.served_requests(clear=True)
    action.revert(clients(aws), vpc_id, before)
    assert writes() == []
    assert group(ec2, vpc_id)["GroupId"] == theirs  # type: ignore[index]


def test_a_dry_run_only_says_what_it_would_make(aws: Any, ec2: Any) -> None:
    vpc_id, (a, b) = vpc(ec2, "a", "b")
    record = parse_finding(finding(_seeded(vpc_id)), registry())
    local.served_requests(clear=True)
    [outcome] = run_batch([record], registry(), aws, dry=True)
    assert outcome.status == Status.DRY_RUN
    assert outcome.after == {
        "Ec2ApiEndpoint": f"a new interface endpoint for {SERVICE} in {a} ({REGION}a), {b} ({REGION}b), "
        f"private DNS on, with a new security group {GROUP_NAME}",
        "EndpointGroup": f"a new security group {GROUP_NAME}",
    }
    assert writes() == []
    untouched(ec2, vpc_id)


def test_the_playbook_asks_a_person_first() -> None:
    playbook = registry().playbooks[CONTROL]
    assert (playbook.disruptive, playbook.auto_remediate, playbook.resource_type) == (
        True,
        False,
        "AwsEc2Vpc",
    )
    assert "billed by the hour in each Availability Zone" in (playbook.risk or "")


@pytest.mark.parametrize(
    ("resource_arn", "expected"),
    [
        (f"arn:aws:ec2:{REGION}:{MEMBER_ACCOUNT}:vpc/vpc-0123456789abcdef0", "vpc-0123456789abcdef0"),
        (f"arn:aws-cn:ec2:cn-north-1:{MEMBER_ACCOUNT}:vpc/vpc-01234567", "vpc-01234567"),
        (f"arn:aws:ec2:{REGION}:{MEMBER_ACCOUNT}:subnet/subnet-01234567", None),
        (f"arn:aws:ec2:{REGION}:{MEMBER_ACCOUNT}:vpc/vpc-xyz", None),
    ],
)
def test_the_vpc_id_is_taken_from_the_arn(resource_arn: str, expected: str | None) -> None:
    assert_extracted_id(CONTROL, resource_arn, expected)
