"""EC2.10: an interface VPC endpoint for the EC2 API in a VPC that has none.

Security Hub's EC2.10 is AWS Config's ``service-vpc-endpoint-enabled`` rule with serviceName
``ec2``: a VPC fails while no VPC endpoint for the EC2 service is created in it. With one, the
VPC's calls to the EC2 API stay on the AWS network, without an internet gateway or NAT device.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from asr.actions import (
    Action,
    ChangedMeanwhile,
    ChangeNotMade,
    RevertedInPart,
    answered,
    register,
    with_new_role,
)
from asr.actions.ec2 import EC2_PROPAGATION, _port_range, _protocol

if TYPE_CHECKING:
    from asr.aws import Clients

GROUP_NAME = "asr-ec2-endpoint"
# On what the fix makes: a person sees ASR made it, and the member role's policy may confine
# its writes to what carries it.
MADE_FOR = {"Key": "asr:made-for", "Value": "EC2.10"}
TAGS = [{"Key": "Name", "Value": GROUP_NAME}, MADE_FOR]
HTTPS = 443
# The EC2 API's endpoint service is com.amazonaws.<region>.ec2, in the China Regions
# cn.com.amazonaws.<region>.ec2: DescribeVpcEndpointServices says which the Region has.
SERVICE_PREFIXES = ("com.amazonaws", "cn.com.amazonaws")
DNS_ATTRIBUTES = (("enableDnsSupport", "EnableDnsSupport"), ("enableDnsHostnames", "EnableDnsHostnames"))
# Endpoint states, lowercased (EC2 writes pendingAcceptance): serving calls, and still being made.
AVAILABLE = "available"
BEING_MADE = frozenset({"pending", "pendingacceptance"})
DELETING = "deleting"
# How many endpoints, gone since, EC2 may answer a request's token with before a new one is made.
REPLAYS = 5
# EC2 may not know a security group for a moment after making it (eventual consistency).
GROUP_NOT_SEEN = answered("InvalidGroup.NotFound")


def ec2_endpoint_service(ec2: Any, region: str) -> dict[str, Any] | None:
    """The EC2 API's interface endpoint service in this Region as DescribeVpcEndpointServices
    lists it: its name and the Availability Zones it is offered in; None where it lists none."""
    names = [f"{prefix}.{region}.ec2" for prefix in SERVICE_PREFIXES]
    found = ec2.describe_vpc_endpoint_services(Filters=[{"Name": "service-name", "Values": names}])
    for service in found["ServiceDetails"]:
        if any(kind.get("ServiceType") == "Interface" for kind in service.get("ServiceType", [])):
            return {
                "ServiceName": service["ServiceName"],
                "Zones": sorted(service.get("AvailabilityZones", [])),
            }
    return None


def client_token(request: dict[str, Any], replayed: list[str]) -> str:
    """The ClientToken of a CreateVpcEndpoint request: the same for the same request, so that one
    sent again (a retry whose first answer was lost) makes no second endpoint. EC2 answers a
    token used before with the endpoint it made then, however it is now: ``replayed`` are those
    it answered with that are gone, which the next token must differ by."""
    text = json.dumps([request, replayed], sort_keys=True)
    return f"asr-{hashlib.sha256(text.encode()).hexdigest()[:60]}"


def _state_of(endpoint: dict[str, Any] | None) -> str | None:
    return str(endpoint["State"]).lower() if endpoint else None


def _endpoints(ec2: Any, vpc_id: str, service_name: str | None) -> list[dict[str, Any]]:
    """The VPC's endpoints for the service, in any state."""
    if not service_name:
        return []
    pages = ec2.get_paginator("describe_vpc_endpoints").paginate(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "service-name", "Values": [service_name]},
        ]
    )
    return [endpoint for page in pages for endpoint in page["VpcEndpoints"]]


def _serving(endpoints: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The endpoint that gives the VPC the service: the first made of those available, else of
    those EC2 is still making; None when each is gone, failed or refused."""
    live = [e for e in endpoints if _state_of(e) == AVAILABLE or _state_of(e) in BEING_MADE]
    ranked = sorted(
        live, key=lambda e: (_state_of(e) != AVAILABLE, str(e.get("CreationTimestamp")), e["VpcEndpointId"])
    )
    return ranked[0] if ranked else None


def _group(ec2: Any, vpc_id: str) -> dict[str, Any] | None:
    """The VPC's security group under the fixed name (names are unique in a VPC)."""
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [GROUP_NAME]}]
    )["SecurityGroups"]
    return groups[0] if groups else None


def _https_from(cidrs: list[str]) -> set[tuple[str, int, int, str]]:
    return {("tcp", HTTPS, HTTPS, cidr) for cidr in cidrs}


def _admitted(group: dict[str, Any]) -> set[tuple[str, int, int, str]] | None:
    """What the group's inbound rules let in, as (protocol, ports, IPv4 range); None when a rule
    admits by anything else (an IPv6 range, a group, a prefix list)."""
    admitted: set[tuple[str, int, int, str]] = set()
    for rule in group.get("IpPermissions", []):
        if rule.get("Ipv6Ranges") or rule.get("UserIdGroupPairs") or rule.get("PrefixListIds"):
            return None
        admitted |= {(_protocol(rule), *_port_range(rule), r["CidrIp"]) for r in rule.get("IpRanges", [])}
    return admitted


def _admit_https(ec2: Any, group_id: str, cidrs: list[str]) -> None:
    """Let HTTPS in from ``cidrs`` to the endpoint's group; a group made moments ago that EC2
    does not know yet is asked again (the mechanism that waits for a new role)."""
    rule = {
        "IpProtocol": "tcp",
        "FromPort": HTTPS,
        "ToPort": HTTPS,
        "IpRanges": [{"CidrIp": cidr, "Description": "HTTPS to the EC2 API endpoint"} for cidr in cidrs],
    }
    with_new_role(
        lambda: ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[rule]),
        True,
        GROUP_NOT_SEEN,
    )


def _unfit(subnet: dict[str, Any], zones: list[str]) -> str | None:
    """Why the subnet cannot hold an endpoint network interface, or None."""
    if not subnet.get("CidrBlock") or subnet.get("Ipv6Native"):
        return "it has no IPv4 range"
    if not subnet.get("AvailableIpAddressCount"):
        return "it has no free IPv4 address"
    if subnet["AvailabilityZone"] not in zones:
        return f"EC2 offers no endpoint in {subnet['AvailabilityZone']}"
    return None


def _delete_group(ec2: Any, group_id: str) -> bool:
    """Delete the group; False when something uses it still (DependencyViolation): it stays."""
    try:
        ec2.delete_security_group(GroupId=group_id)
    except ClientError as exc:
        if not answered("DependencyViolation")(exc):
            raise
        return False
    return True


def _discard_group(ec2: Any, group_id: str) -> bool:
    """Delete a group the fix made for an endpoint it could not make; False when it stays (in use,
    or refused: the next run uses it as it is). Never raises: the error that stopped the fix is
    the one to report."""
    try:
        return _delete_group(ec2, group_id)
    except ClientError:
        return False


@register
class CreateEc2ApiEndpoint(Action):
    """Give a VPC an interface endpoint for the EC2 API (``com.amazonaws.<region>.ec2``).

    The endpoint takes one subnet in each Availability Zone of the VPC where EC2 offers it (an
    interface endpoint takes one per zone at most, and DescribeVpcEndpointServices lists the
    zones): the VPC's subnets among ``subnet_ids`` if any is, else in each zone the one with the
    lowest id among those with IPv4 addresses, one of them free. Its network interfaces
    get the security group ``asr-ec2-endpoint``, which admits HTTPS from the VPC's IPv4 ranges
    and nothing else: made in the VPC, or used as it is when one by that name admits exactly
    that. Not the VPC's default group: with private DNS, every EC2 API call made in the VPC goes
    to the endpoint, and a group that does not admit the callers would cut them off. The
    endpoint is IPv4 (its interfaces have no IPv6 address, so the group has no IPv6 rule).

    Private DNS is on when the VPC has ``enableDnsSupport`` and ``enableDnsHostnames`` (EC2
    refuses it otherwise): EC2's usual name then resolves, in the VPC, to the endpoint. Without
    them the endpoint is made without private DNS, and the fix says so (a caveat): EC2.10 asks
    for the endpoint only, and callers keep using EC2's public endpoint. The fix does not turn
    the attributes on: that changes how the whole VPC resolves names.

    The endpoint and a group the fix makes are tagged ``asr:made-for`` = ``EC2.10``. The fix
    waits up to ``wait_seconds`` for EC2 to make the endpoint available; one that fails is
    deleted with the group made for it. A VPC with an available endpoint for the service
    complies, whoever made it; one EC2 is still making is refused, left to EC2. Refused, with
    nothing changed: a Region where EC2 offers no endpoint, a VPC with no subnet that can hold
    one, a group ``asr-ec2-endpoint`` that admits anything else (but one with ASR's tag and no
    rule at all, which a fix that died left, is finished and used as the fix's own),
    ``subnet_ids`` naming two subnets of one zone or one that cannot hold it. Each endpoint
    costs an hourly fee per zone and a fee per GB. A rollback deletes the endpoint the fix made
    and, once it is gone, the group if the fix made it; one something else uses since stays
    (PARTLY_REVERTED).

        remediation:
          action: ec2.create-ec2-api-endpoint
          parameters: {subnet_ids: [], wait_seconds: 300}
    """

    name = "ec2.create-ec2-api-endpoint"
    service = "ec2"
    propagation_seconds = EC2_PROPAGATION
    permissions = (
        "ec2:DescribeVpcs",
        "ec2:DescribeVpcAttribute",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeVpcEndpointServices",
        "ec2:DescribeVpcEndpoints",
        "ec2:CreateSecurityGroup",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:CreateVpcEndpoint",
        # Asked of a caller whose request tags what it makes (TagSpecifications).
        "ec2:CreateTags",
        # CreateVpcEndpoint asks it of its caller to give the VPC the endpoint's private DNS.
        "route53:AssociateVPCWithHostedZone",
        # What the fix made for an endpoint EC2 could not make is deleted again.
        "ec2:DeleteVpcEndpoints",
        "ec2:DeleteSecurityGroup",
    )
    # (The fix's own clean-up calls them too.)
    revert_permissions = ("ec2:DeleteVpcEndpoints", "ec2:DeleteSecurityGroup")
    # Made by an earlier read's eventual consistency, or by someone meanwhile: read again.
    stale_plan_errors = frozenset({"InvalidGroup.Duplicate"})
    summary = (
        "made an interface endpoint for the EC2 API in the VPC, one subnet per Availability Zone, "
        f"admitting HTTPS from the VPC's IPv4 ranges (security group {GROUP_NAME})"
    )
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "subnet_ids": {
                "type": "array",
                "items": {"type": "string", "pattern": r"^subnet-[0-9a-f]{8,17}$"},
                "uniqueItems": True,
                "default": [],
            },
            "wait_seconds": {"type": "integer", "minimum": 0, "maximum": 3600, "default": 300},
        },
    }
    # How often DescribeVpcEndpoints is asked whether EC2 has made (or deleted) the endpoint.
    poll_seconds: ClassVar[float] = 5.0

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        ec2 = clients.ec2
        [vpc] = ec2.describe_vpcs(VpcIds=[resource_id])["Vpcs"]
        # The same for every VPC of the batch's account and Region: read once.
        service = clients.once((self.name, "service"), lambda: ec2_endpoint_service(ec2, clients.region))
        serving = _serving(_endpoints(ec2, resource_id, service and service["ServiceName"]))
        group = _group(ec2, resource_id)
        # Tagged as the fix's own with no rule at all: a fix died (or botocore sent its
        # CreateSecurityGroup again after EC2 took it) before writing the rule. Still the fix's
        # to make: finished and used, and deleted by a rollback as a group made now would be.
        unfinished = (
            group if group and MADE_FOR in group.get("Tags", []) and not group.get("IpPermissions") else None
        )
        state: dict[str, Any] = {
            "ServiceName": service and service["ServiceName"],
            "Ec2ApiEndpoint": serving and serving["VpcEndpointId"],
            "EndpointState": _state_of(serving),
            "EndpointPrivateDns": serving and bool(serving.get("PrivateDnsEnabled")),
            "EndpointGroup": group["GroupId"] if group and not unfinished else None,
            "UnfinishedGroup": unfinished and unfinished["GroupId"],
        }
        if service and serving is None:
            state |= self._placement(ec2, vpc, service["Zones"], None if unfinished else group)
        return state

    def _placement(
        self, ec2: Any, vpc: dict[str, Any], zones: list[str], group: dict[str, Any] | None
    ) -> dict[str, Any]:
        """What making the endpoint takes: the VPC's IPv4 ranges, a subnet per zone, whether
        private DNS may be on, and whether the group under the fixed name may be used."""
        cidrs = sorted(
            block["CidrBlock"]
            for block in vpc.get("CidrBlockAssociationSet", [])
            if block.get("CidrBlockState", {}).get("State") == "associated"
        )
        pages = ec2.get_paginator("describe_subnets").paginate(
            Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}]
        )
        subnets, subnet_problem = self._subnets([s for page in pages for s in page["Subnets"]], zones)
        admitted = _admitted(group) if group else None
        group_problem = (
            f"a security group {GROUP_NAME} ({group['GroupId']}) is in the VPC but does not admit exactly "
            f"HTTPS from the VPC's IPv4 ranges ({', '.join(cidrs)}): it is no group this fix made, or it "
            "was changed since; correct its inbound rules or delete it, and the next run uses or makes it"
            if group and admitted != _https_from(cidrs)
            else None
        )
        dns = all(
            ec2.describe_vpc_attribute(VpcId=vpc["VpcId"], Attribute=attribute)[key]["Value"]
            for attribute, key in DNS_ATTRIBUTES
        )
        return {
            "VpcCidrs": cidrs,
            "Subnets": subnets,
            "SubnetProblem": subnet_problem,
            "GroupProblem": group_problem,
            "PrivateDns": dns,
        }

    def _subnets(self, subnets: list[dict[str, Any]], zones: list[str]) -> tuple[dict[str, str], str | None]:
        """The subnet for each zone, by zone, or why there is none to use."""
        named = [s for s in subnets if s["SubnetId"] in self.params["subnet_ids"]]
        if named:
            crowded = [
                s["SubnetId"]
                for s in named
                if sum(other["AvailabilityZone"] == s["AvailabilityZone"] for other in named) > 1
            ]
            if crowded:
                return {}, (
                    f"subnet_ids names {', '.join(sorted(crowded))} of the VPC, in one Availability Zone: an "
                    "interface endpoint takes one subnet per zone"
                )
            unfit = [f"{s['SubnetId']} ({why})" for s in named if (why := _unfit(s, zones))]
            if unfit:
                return {}, f"the subnets subnet_ids names cannot hold the endpoint: {', '.join(unfit)}"
            return dict(sorted((s["AvailabilityZone"], s["SubnetId"]) for s in named)), None
        chosen: dict[str, str] = {}
        for subnet in sorted(subnets, key=lambda s: s["SubnetId"]):
            if not _unfit(subnet, zones):
                chosen.setdefault(subnet["AvailabilityZone"], subnet["SubnetId"])
        if not chosen:
            return {}, (
                "the VPC has no subnet that can hold the endpoint (with IPv4 addresses, one of them free) "
                f"in an Availability Zone EC2 offers it in ({', '.join(zones)})"
            )
        return dict(sorted(chosen.items())), None

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        if state["EndpointState"] == AVAILABLE:
            return {}
        if state["Ec2ApiEndpoint"]:
            raise ValueError(
                f"EC2 is still making {state['Ec2ApiEndpoint']} ({state['EndpointState']}), an endpoint for "
                "the EC2 API in the VPC: the VPC complies once it is available; nothing changed"
            )
        if not state["ServiceName"]:
            raise ValueError(
                "DescribeVpcEndpointServices lists no interface endpoint service for the EC2 API in this "
                "Region; nothing changed"
            )
        why = state["GroupProblem"] or state["SubnetProblem"]
        if why:
            raise ValueError(f"{why}; nothing changed")
        where = ", ".join(f"{subnet} ({zone})" for zone, subnet in state["Subnets"].items())
        dns = "private DNS on" if state["PrivateDns"] else "no private DNS (the VPC's DNS attributes are off)"
        group = state["EndpointGroup"] or f"a new security group {GROUP_NAME}"
        if state.get("UnfinishedGroup"):
            group = f"the security group {state['UnfinishedGroup']} an earlier fix made, its HTTPS rule added"
        made = f"a new interface endpoint for {state['ServiceName']} in {where}, {dns}, with {group}"
        # A group the fix makes is part of its change: a rollback that could not delete it yet
        # (EC2 still deleting the endpoint) then reads as unfinished, and a later try deletes it.
        return {"Ec2ApiEndpoint": made} | ({} if state["EndpointGroup"] else {"EndpointGroup": group})

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        """Make the group (unless there is one to use), then the endpoint, and wait for EC2 to
        make it available; the endpoints are read again first: one made since is not doubled."""
        ec2 = clients.ec2
        if _serving(_endpoints(ec2, resource_id, state["ServiceName"])):
            raise ChangedMeanwhile(f"{resource_id} got an endpoint for the EC2 API since it was read")
        made_group = state["EndpointGroup"] is None
        if not made_group:
            group = state["EndpointGroup"]
        elif state.get("UnfinishedGroup"):
            group = state["UnfinishedGroup"]
            _admit_https(ec2, group, state["VpcCidrs"])
        else:
            group = self._make_group(ec2, resource_id, state["VpcCidrs"])
        try:
            endpoint_id = self._create(ec2, resource_id, state, group, made_group)
        except Exception:
            if made_group:
                _discard_group(ec2, group)
            raise
        endpoint = self._await(ec2, endpoint_id, {None, *BEING_MADE})
        ended = _state_of(endpoint)
        if ended == AVAILABLE:
            return
        if endpoint is None or ended in BEING_MADE:
            raise ChangeNotMade(
                f"EC2 was still making the endpoint {endpoint_id} after {self.params['wait_seconds']} s "
                "(wait_seconds): it is left to EC2, and the VPC complies once it is available"
            )
        why = endpoint.get("FailureReason") or (endpoint.get("LastError") or {}).get("Message") or "no reason"
        self._delete_endpoint(ec2, endpoint_id)
        cleared = ""
        if made_group:
            self._await(ec2, endpoint_id, {DELETING})  # its network interfaces hold the group till then
            cleared = (
                ", and so was the security group made for it"
                if _discard_group(ec2, group)
                else f"; the security group made for it, {group}, stays, for the next run to use"
            )
        raise ChangeNotMade(
            f"EC2 could not make the endpoint {endpoint_id}: it is {ended} ({why}); it was deleted{cleared}"
        )

    def _make_group(self, ec2: Any, vpc_id: str, cidrs: list[str]) -> str:
        """The endpoint's group, admitting HTTPS from the VPC's IPv4 ranges; deleted again if its
        rule cannot be written."""
        group_id: str = ec2.create_security_group(
            GroupName=GROUP_NAME,
            Description="HTTPS from the VPC to its interface endpoint for the EC2 API (ASR, EC2.10)",
            VpcId=vpc_id,
            TagSpecifications=[{"ResourceType": "security-group", "Tags": TAGS}],
        )["GroupId"]
        try:
            _admit_https(ec2, group_id, cidrs)
        except Exception:
            _discard_group(ec2, group_id)
            raise
        return group_id

    def _create(self, ec2: Any, vpc_id: str, state: dict[str, Any], group: str, fresh_group: bool) -> str:
        """CreateVpcEndpoint under the request's own token; the id of the endpoint it made."""
        request = {
            "VpcEndpointType": "Interface",
            "VpcId": vpc_id,
            "ServiceName": state["ServiceName"],
            "SubnetIds": list(state["Subnets"].values()),
            "SecurityGroupIds": [group],
            "IpAddressType": "ipv4",
            "PrivateDnsEnabled": state["PrivateDns"],
            "TagSpecifications": [{"ResourceType": "vpc-endpoint", "Tags": TAGS}],
        }
        replayed: list[str] = []
        for _ in range(REPLAYS):
            token = client_token(request, replayed)
            made = with_new_role(
                lambda token=token: ec2.create_vpc_endpoint(**request, ClientToken=token)["VpcEndpoint"],
                fresh_group,
                GROUP_NOT_SEEN,
            )
            if _state_of(made) == AVAILABLE or _state_of(made) in BEING_MADE:
                return str(made["VpcEndpointId"])
            replayed.append(made["VpcEndpointId"])  # this request made it before, and it is gone since
        raise ChangeNotMade(
            f"EC2 answered each request with an endpoint it made before, gone since: {', '.join(replayed)}"
        )

    def _await(self, ec2: Any, endpoint_id: str, passing: set[str | None]) -> dict[str, Any] | None:
        """The endpoint once its state is no longer one of ``passing`` (None: not listed), or as it
        reads when ``wait_seconds`` are up; None when EC2 does not list it."""
        deadline = time.monotonic() + self.params["wait_seconds"]
        while True:
            try:
                found = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"]
            except ClientError as exc:
                if not answered("InvalidVpcEndpointId.NotFound")(exc):
                    raise
                found = []
            endpoint = found[0] if found else None
            left = deadline - time.monotonic()
            if _state_of(endpoint) not in passing or left <= 0:
                return endpoint
            time.sleep(min(self.poll_seconds, left))

    @staticmethod
    def _delete_endpoint(ec2: Any, endpoint_id: str) -> None:
        answer = ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint_id])
        for failed in answer.get("Unsuccessful", []):
            raise ClientError({"Error": failed.get("Error", {})}, "DeleteVpcEndpoints")

    def caveat(self, state: dict[str, Any]) -> str | None:
        if state["Ec2ApiEndpoint"] and state["EndpointPrivateDns"] is False:
            return (
                "the endpoint has no private DNS, since the VPC's enableDnsSupport or enableDnsHostnames "
                "is off: calls made in the VPC to EC2's usual name still go to its public endpoint; turn "
                "both on, then the endpoint's private DNS, to send them through it"
            )
        return None

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Delete the VPC's endpoint for the service (a rollback has read it as the one the fix
        made), then, once EC2 has deleted it (and any an earlier try deleted), the group under
        the fixed name if the fix made it (there was none before, and it carries ASR's tag).
        Fails while EC2 is still deleting an endpoint, whose network interfaces hold the group,
        for a later try to finish; a group something else uses since stays, and says so."""
        ec2 = clients.ec2
        found = _endpoints(ec2, resource_id, before["ServiceName"])
        serving = _serving(found)
        if serving:
            self._delete_endpoint(ec2, serving["VpcEndpointId"])
        going = [e["VpcEndpointId"] for e in found if e is serving or _state_of(e) == DELETING]
        still = [i for i in going if _state_of(self._await(ec2, i, {DELETING})) == DELETING]
        group = _group(ec2, resource_id)
        if before["EndpointGroup"] or not group or MADE_FOR not in group.get("Tags", []):
            return
        if _delete_group(ec2, group["GroupId"]):
            return
        if still:
            raise ChangeNotMade(
                f"EC2 was still deleting the endpoint {', '.join(still)} after "
                f"{self.params['wait_seconds']} s (wait_seconds), whose network interfaces hold the security "
                f"group {group['GroupId']} the fix made: roll back again once it is gone"
            )
        raise RevertedInPart(
            {
                "EndpointGroup": f"the security group {group['GroupId']} the fix made for the endpoint is "
                "used by something else since (DeleteSecurityGroup: DependencyViolation): it stays; delete "
                "it once nothing uses it"
            }
        )
