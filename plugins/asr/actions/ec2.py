"""EC2 fixes: security group ingress, default security groups, EBS encryption by default and
public snapshots, VPC flow logs, instance metadata (IMDSv2), subnet public IPs, transit
gateways that accept shared attachments by themselves."""

from __future__ import annotations

import contextlib
import datetime
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from asr.actions import (
    Action,
    BulkRead,
    ChangedMeanwhile,
    MadeInPart,
    ServiceRole,
    grant_name,
    register,
    role_name_parameter,
    service_trust,
    with_new_role,
)

if TYPE_CHECKING:
    from asr.aws import Clients

OPEN_IPV4 = "0.0.0.0/0"
OPEN_IPV6 = "::/0"
ALL_PROTOCOLS = "-1"


# EC2's API is eventually consistent (AWS: a change "might not be immediately visible" to
# the describe calls that follow): a read-back too soon is repeated for this long.
EC2_PROPAGATION = 10.0


class SecurityGroupAction(BulkRead):
    """Security group fixes read many groups with one DescribeSecurityGroups.

    EC2.2, EC2.13, EC2.18 and EC2.19 run in parallel task groups and may revoke rules of
    one group at once. A revoke naming a rule already gone fails whole in a non-default VPC
    (InvalidPermission.NotFound: nothing is revoked), so the fix reads the group again; in a
    default VPC it revokes the rest and names the rule as unknown, so only what it revoked is
    recorded as the fix's (``_made``)."""

    service = "ec2"
    propagation_seconds = EC2_PROPAGATION
    stale_plan_errors = frozenset({"InvalidPermission.NotFound"})

    def describe(self, clients: Clients, resource_ids: list[str]) -> list[dict[str, Any]]:
        return clients.ec2.describe_security_groups(GroupIds=resource_ids)["SecurityGroups"]

    def item_id(self, item: dict[str, Any]) -> str:
        return item["GroupId"]


# IpProtocol as DescribeSecurityGroups may report it -> the name the port rules use.
PROTOCOL_NAMES = {
    "tcp": "tcp",
    "6": "tcp",
    "udp": "udp",
    "17": "udp",
    "icmp": "icmp",
    "1": "icmp",
    "icmpv6": "icmpv6",
    "58": "icmpv6",
    ALL_PROTOCOLS: ALL_PROTOCOLS,
    "all": ALL_PROTOCOLS,
}
TCP = ("tcp",)
TCP_UDP = ("tcp", "udp")
# EC2.19: databases, file sharing, mail, remote administration and admin consoles.
HIGH_RISK_PORTS = (
    20, 21, 22, 23, 25, 110, 135, 143, 445, 1433, 1434, 3000,
    3306, 3389, 4333, 5000, 5432, 5500, 5601, 8080, 8088, 8888, 9200, 9300,
)  # fmt: skip
PORT_LIST = {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 65535}}


def _protocol(permission: dict[str, Any]) -> str:
    """tcp, udp, -1 (every protocol), or the protocol as given (icmp, 50, ...)."""
    protocol = str(permission.get("IpProtocol"))
    return PROTOCOL_NAMES.get(protocol.lower(), protocol)


def _port_range(permission: dict[str, Any]) -> tuple[int, int]:
    return permission.get("FromPort", 0), permission.get("ToPort", 65535)


def _covers(permission: dict[str, Any], ports: list[int], protocols: tuple[str, ...] = TCP) -> bool:
    """Whether the rule lets traffic reach any of the ports over one of the protocols."""
    protocol = _protocol(permission)
    if protocol == ALL_PROTOCOLS:
        return True
    if protocol not in protocols:
        return False
    low, high = _port_range(permission)
    return any(low <= port <= high for port in ports)


def _within(permission: dict[str, Any], ports: list[int]) -> bool:
    """Whether every port the rule opens is one of the ports."""
    low, high = _port_range(permission)
    allowed = set(ports)
    return high - low < len(allowed) and all(port in allowed for port in range(low, high + 1))


def _only_open_ranges(permission: dict[str, Any]) -> dict[str, Any] | None:
    """The part of a rule that opens it to the world, or None when no part does."""
    v4 = [r for r in permission.get("IpRanges", []) if r.get("CidrIp") == OPEN_IPV4]
    v6 = [r for r in permission.get("Ipv6Ranges", []) if r.get("CidrIpv6") == OPEN_IPV6]
    if not v4 and not v6:
        return None
    rule = {k: permission[k] for k in ("IpProtocol", "FromPort", "ToPort") if k in permission}
    return {**rule, "IpRanges": v4, "Ipv6Ranges": v6}


def _strip_empty(permissions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in p.items() if v != []} for p in permissions]


# The sources of a rule, and what names each one.
SOURCES = {
    "IpRanges": "CidrIp",
    "Ipv6Ranges": "CidrIpv6",
    "UserIdGroupPairs": "GroupId",
    "PrefixListIds": "PrefixListId",
}


def _rule_key(permission: dict[str, Any]) -> tuple[Any, ...]:
    protocol = _protocol(permission)
    return (
        (protocol,)
        if protocol == ALL_PROTOCOLS
        else (protocol, permission.get("FromPort"), permission.get("ToPort"))
    )


def _sources(permission: dict[str, Any]) -> set[tuple[Any, ...]]:
    """Each source of a rule (range, group, prefix list), with the protocol and ports it opens."""
    return {
        (_rule_key(permission), field, source.get(name))
        for field, name in SOURCES.items()
        for source in permission.get(field) or []
    }


def _less(rules: list[dict[str, Any]], unknown: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The rules without the sources EC2 answered as unknown; a rule left with none goes.
    None when an unknown entry names no source, or one none of the rules has (EC2 warns the
    list may differ in form from the request): what was revoked is then not known."""
    named = [_sources(p) for p in unknown]
    gone = set().union(*named)
    if not all(named) or not gone <= set().union(*map(_sources, rules)):
        return None
    left = []
    for rule in rules:
        kept = {
            field: [s for s in rule[field] if (_rule_key(rule), field, s.get(name)) not in gone]
            for field, name in SOURCES.items()
            if field in rule
        }
        if any(kept.values()) or not _sources(rule):
            left.append({**rule, **kept})
    return left


def _revoke(call: Any, group_id: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Revoke the rules; return those EC2 revoked. Outside a default VPC that is all of them
    or none (a rule gone meanwhile fails the call: InvalidPermission.NotFound); in a default
    VPC, EC2 revokes those still there and lists the others as unknown, with no error. When
    that list cannot be told apart from the request, the fix reads and plans again
    (``ChangedMeanwhile``): what this call revoked is then not recorded as the fix's, so a
    rollback leaves it revoked rather than reopen what another fix closed."""
    unknown = call(GroupId=group_id, IpPermissions=_strip_empty(rules)).get("UnknownIpPermissions")
    if not unknown:
        return rules
    revoked = _less(rules, unknown)
    if revoked is None:
        raise ChangedMeanwhile()
    return revoked


def _made(state: dict[str, Any], revoked: dict[str, list[dict[str, Any]]]) -> None:
    """Raise unless the revokes made the whole plan: none of it is ``ChangedMeanwhile`` (read
    and plan again), part of it ``MadeInPart`` (only that part is recorded as the fix's)."""
    if all(revoked[key] == state[key] for key in revoked):
        return
    if not any(revoked.values()):
        raise ChangedMeanwhile()
    raise MadeInPart({**state, **revoked})


class RevokeOpenIngress(SecurityGroupAction):
    """Revoke the 0.0.0.0/0 and ::/0 ranges of the inbound rules a port rule forbids.

    One mechanism for EC2.13/14, EC2.18 and EC2.19: subclasses say which world-open
    rules are forbidden (``forbids``) and under which state key they are recorded.
    Only the world-open ranges of a forbidden rule are revoked: narrower ranges and
    group references on the same rule stay, so access scoped on purpose is kept.
    """

    permissions = ("ec2:DescribeSecurityGroups", "ec2:RevokeSecurityGroupIngress")
    state_key: ClassVar[str]
    revert_permissions = ("ec2:AuthorizeSecurityGroupIngress",)

    def forbids(self, rule: dict[str, Any]) -> bool:
        raise NotImplementedError

    def state_of(self, group: dict[str, Any]) -> dict[str, Any]:
        open_rules = [
            rule
            for rule in map(_only_open_ranges, group.get("IpPermissions", []))
            if rule and self.forbids(rule)
        ]
        return {self.state_key: open_rules}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {self.state_key: []} if state[self.state_key] else {}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        revoked = _revoke(clients.ec2.revoke_security_group_ingress, resource_id, state[self.state_key])
        _made(state, {self.state_key: revoked})

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        clients.ec2.authorize_security_group_ingress(
            GroupId=resource_id, IpPermissions=_strip_empty(before[self.state_key])
        )


@register
class RevokePublicAdminIngress(RevokeOpenIngress):
    """Remove rules that let 0.0.0.0/0 or ::/0 reach remote-administration ports (TCP).

    Only the world-open ranges of a matching rule are revoked: narrower ranges on the
    same rule stay, so administrators keep the access they scoped on purpose.

        remediation:
          action: ec2.revoke-public-admin-ingress
          parameters: {ports: [22, 3389]}
    """

    name = "ec2.revoke-public-admin-ingress"
    summary = "removed ingress from 0.0.0.0/0 and ::/0 to ports {ports}"
    state_key = "public_admin_ingress"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"ports": {**PORT_LIST, "minItems": 1, "default": [22, 3389]}},
    }

    def forbids(self, rule: dict[str, Any]) -> bool:
        return _covers(rule, self.params["ports"])


@register
class RevokePublicHighRiskIngress(RevokeOpenIngress):
    """Remove rules that let 0.0.0.0/0 or ::/0 reach high-risk ports over TCP or UDP.

    Databases, file sharing, mail and admin consoles should never face the internet;
    a rule for every protocol (-1) counts as reaching them.

        remediation:
          action: ec2.revoke-public-high-risk-ingress
          parameters: {ports: [22, 3306, 3389, 5432]}
    """

    name = "ec2.revoke-public-high-risk-ingress"
    summary = "removed ingress from 0.0.0.0/0 and ::/0 to the high-risk ports {ports}"
    state_key = "public_high_risk_ingress"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"ports": {**PORT_LIST, "minItems": 1, "default": list(HIGH_RISK_PORTS)}},
    }

    def forbids(self, rule: dict[str, Any]) -> bool:
        return _covers(rule, self.params["ports"], TCP_UDP)


@register
class RevokeUnauthorizedPublicIngress(RevokeOpenIngress):
    """Remove rules that open to 0.0.0.0/0 or ::/0 any TCP or UDP port not authorized.

    A rule is kept only when every port it opens is authorized for its protocol; a
    range that is partly authorized (0-65535 with 443 authorized) is revoked whole,
    not split. A rule for every protocol (-1) is never authorized. Rules of other
    protocols (ICMP, ...) have no ports and are outside the control.

        remediation:
          action: ec2.revoke-unauthorized-public-ingress
          parameters: {authorized_tcp_ports: [80, 443], authorized_udp_ports: []}
    """

    name = "ec2.revoke-unauthorized-public-ingress"
    summary = (
        "removed ingress from 0.0.0.0/0 and ::/0 except to the authorized TCP ports "
        "{authorized_tcp_ports} and UDP ports {authorized_udp_ports}"
    )
    state_key = "unauthorized_public_ingress"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "authorized_tcp_ports": {**PORT_LIST, "default": [80, 443]},
            "authorized_udp_ports": {**PORT_LIST, "default": []},
        },
    }

    def forbids(self, rule: dict[str, Any]) -> bool:
        protocol = _protocol(rule)
        if protocol == ALL_PROTOCOLS:
            return True
        if protocol not in TCP_UDP:
            return False
        return not _within(rule, self.params[f"authorized_{protocol}_ports"])


@register
class RemoveDefaultSecurityGroupRules(SecurityGroupAction):
    """Empty a VPC's default security group, inbound and outbound.

    Refuses a group that is not named ``default``: a wrong resource id must not empty a
    group that something depends on.

        remediation:
          action: ec2.remove-default-security-group-rules
    """

    name = "ec2.remove-default-security-group-rules"
    permissions = (
        "ec2:DescribeSecurityGroups",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:RevokeSecurityGroupEgress",
    )
    summary = "removed every inbound and outbound rule of the default security group"
    revert_permissions = ("ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress")

    def state_of(self, group: dict[str, Any]) -> dict[str, Any]:
        if group.get("GroupName") != "default":
            raise ValueError(f"{group['GroupId']} is not a default security group")
        return {
            "IpPermissions": group.get("IpPermissions", []),
            "IpPermissionsEgress": group.get("IpPermissionsEgress", []),
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {key: [] for key, rules in state.items() if rules}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        calls = {
            "IpPermissions": clients.ec2.revoke_security_group_ingress,
            "IpPermissionsEgress": clients.ec2.revoke_security_group_egress,
        }
        _made(state, {key: _revoke(calls[key], resource_id, state[key]) for key in calls if key in plan})

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Put back each direction the fix emptied; one it did not get to (it failed part way)
        still has its rules, and authorizing them again would be refused as duplicates."""
        now = self.read(clients, resource_id)
        authorize = {
            "IpPermissions": clients.ec2.authorize_security_group_ingress,
            "IpPermissionsEgress": clients.ec2.authorize_security_group_egress,
        }
        for key, call in authorize.items():
            if before[key] and not now[key]:
                call(GroupId=resource_id, IpPermissions=_strip_empty(before[key]))


@register
class EnableEbsEncryptionByDefault(Action):
    """Turn on EBS encryption by default for the account in one region.

    remediation:
      action: ec2.enable-ebs-encryption-by-default
    """

    name = "ec2.enable-ebs-encryption-by-default"
    service = "ec2"
    propagation_seconds = EC2_PROPAGATION
    permissions = ("ec2:GetEbsEncryptionByDefault", "ec2:EnableEbsEncryptionByDefault")
    summary = "enabled EBS encryption by default"
    revert_permissions = ("ec2:DisableEbsEncryptionByDefault",)

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        return {
            "EbsEncryptionByDefault": clients.ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"]
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["EbsEncryptionByDefault"] else {"EbsEncryptionByDefault": True}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.ec2.enable_ebs_encryption_by_default()

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        clients.ec2.disable_ebs_encryption_by_default()


@register
class MakeEbsSnapshotsPrivate(Action):
    """Make every public EBS snapshot the account owns in one region private.

    A public snapshot lets any AWS account create a volume holding its data. Only the
    public permission (group ``all``) is removed; sharing with named accounts stays.

        remediation:
          action: ec2.make-ebs-snapshots-private
    """

    name = "ec2.make-ebs-snapshots-private"
    service = "ec2"
    propagation_seconds = EC2_PROPAGATION
    permissions = ("ec2:DescribeSnapshots", "ec2:ModifySnapshotAttribute")
    summary = "removed public access from the account's EBS snapshots in this region"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        pages = clients.ec2.get_paginator("describe_snapshots").paginate(
            OwnerIds=["self"], RestorableByUserIds=["all"]
        )
        return {"PublicSnapshots": sorted(s["SnapshotId"] for page in pages for s in page["Snapshots"])}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"PublicSnapshots": []} if state["PublicSnapshots"] else {}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        _share_with_everyone(clients, state["PublicSnapshots"], "remove")

    def check_revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """LookupError when every snapshot the fix made private was deleted since: a revert would
        make none public again, and a rollback must not call that put back."""
        ids, size = before["PublicSnapshots"], BulkRead.bulk_size  # as many ids a call as a bulk read
        paginator = clients.ec2.get_paginator("describe_snapshots")
        there = (
            page["Snapshots"]
            for start in range(0, len(ids), size)
            for page in paginator.paginate(
                OwnerIds=["self"], Filters=[{"Name": "snapshot-id", "Values": ids[start : start + size]}]
            )
        )
        if ids and not any(there):
            raise LookupError(f"the snapshots {', '.join(ids)} were not found")

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> dict[str, Any] | None:
        gone = _share_with_everyone(clients, before["PublicSnapshots"], "add")
        if not gone:
            return None
        return {**before, "PublicSnapshots": [s for s in before["PublicSnapshots"] if s not in gone]}


def _share_with_everyone(clients: Clients, snapshot_ids: list[str], operation: str) -> list[str]:
    """Add or remove each snapshot's public restore permission. One snapshot that cannot be
    changed must not stop the others: try each, then raise the first error. A snapshot
    deleted meanwhile is skipped, and returned: it is neither public nor to be made public
    again."""
    errors: list[ClientError] = []
    gone: list[str] = []
    for snapshot_id in snapshot_ids:
        try:
            clients.ec2.modify_snapshot_attribute(
                SnapshotId=snapshot_id,
                Attribute="createVolumePermission",
                OperationType=operation,
                GroupNames=["all"],
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "InvalidSnapshot.NotFound":
                errors.append(exc)
            else:
                gone.append(snapshot_id)
    if errors:
        raise errors[0]
    return gone


def _flow_logs_grants(params: Mapping[str, Any], partition: str, account: str) -> dict[str, dict[str, Any]]:
    """What delivery to CloudWatch Logs needs: write streams of the one log group (any region),
    as an inline policy named after the group (a playbook naming another group adds its own)."""
    log_group = params["log_group_name"]
    return {grant_name("flow-logs-to", log_group): _flow_logs_policy(partition, account, log_group)}


def _flow_logs_policy(partition: str, account: str, log_group: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                "Resource": f"arn:{partition}:logs:*:{account}:log-group:{log_group}:*",
            },
            {"Effect": "Allow", "Action": "logs:DescribeLogGroups", "Resource": "*"},
        ],
    }


@register
class EnableVpcFlowLogs(Action):
    """Send a VPC's flow logs to CloudWatch Logs.

    Flow logs are the record of who talked to what in the VPC, needed to investigate
    an incident. The log group is created when missing; it and the delivery role
    ``role_name`` (trusted by the flow-logs service of this account only, with an inline
    policy to write to that group), which the member-role stack makes, are shared by every
    VPC of the account. A VPC already logging the traffic type (or ALL) to any destination
    complies.

        remediation:
          action: ec2.enable-vpc-flow-logs
          parameters: {traffic_type: REJECT, log_group_name: asr-vpc-flow-logs}
    """

    name = "ec2.enable-vpc-flow-logs"
    service = "ec2"
    propagation_seconds = EC2_PROPAGATION
    permissions = (
        "ec2:DescribeVpcs",
        "ec2:DescribeFlowLogs",
        "ec2:CreateFlowLogs",
        "logs:DescribeLogGroups",
        "logs:CreateLogGroup",
        "iam:GetRole",
        "iam:GetRolePolicy",
        "iam:PassRole",
    )
    service_role = ServiceRole(
        service_trust("vpc-flow-logs.amazonaws.com", source_account=True),
        "Delivers VPC flow logs to CloudWatch Logs (ASR, for EC2.6)",
        grants=_flow_logs_grants,
    )
    summary = "enabled VPC flow logs ({traffic_type}) to the CloudWatch Logs group {log_group_name}"
    revert_permissions = ("ec2:DeleteFlowLogs",)
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "traffic_type": {"enum": ["REJECT", "ALL", "ACCEPT"], "default": "REJECT"},
            "log_group_name": {
                "type": "string",
                "pattern": r"^[A-Za-z0-9_./#-]{1,512}$",
                "default": "asr-vpc-flow-logs",
            },
            "role_name": role_name_parameter("asr-service-vpc-flow-logs"),
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        clients.ec2.describe_vpcs(VpcIds=[resource_id])  # raises when missing
        pages = clients.ec2.get_paginator("describe_flow_logs").paginate(
            Filters=[{"Name": "resource-id", "Values": [resource_id]}]
        )
        flow_logs = [
            {
                key: log[key]
                for key in (
                    "FlowLogId",
                    "TrafficType",
                    "LogDestinationType",
                    "LogGroupName",
                    "FlowLogStatus",
                    "CreationTime",
                )
                if key in log
            }
            for page in pages
            for log in page["FlowLogs"]
        ]
        wanted = {self.params["traffic_type"], "ALL"}
        enabled = any(
            log.get("FlowLogStatus") == "ACTIVE" and log["TrafficType"] in wanted for log in flow_logs
        )
        return {"FlowLogsEnabled": enabled, "FlowLogs": flow_logs}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["FlowLogsEnabled"] else {"FlowLogsEnabled": True}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        role, fresh = self.ready_role(clients)  # first: a fix that cannot deliver makes no group
        log_group = self.params["log_group_name"]
        groups = clients.logs.describe_log_groups(logGroupNamePrefix=log_group)["logGroups"]
        if not any(g["logGroupName"] == log_group for g in groups):
            # Another VPC's fix may create it meanwhile.
            with contextlib.suppress(clients.logs.exceptions.ResourceAlreadyExistsException):
                clients.logs.create_log_group(logGroupName=log_group)

        def create() -> None:
            response = clients.ec2.create_flow_logs(
                ResourceIds=[resource_id],
                ResourceType="VPC",
                TrafficType=self.params["traffic_type"],
                LogDestinationType="cloud-watch-logs",
                LogGroupName=log_group,
                DeliverLogsPermissionArn=role["Arn"],
            )
            for failed in response.get("Unsuccessful", []):
                raise ClientError({"Error": failed.get("Error", {})}, "CreateFlowLogs")

        # EC2 checks that it can assume the role, and answers InvalidParameter while it cannot.
        with_new_role(create, fresh, lambda exc: "unable to assume given iam role" in str(exc).lower())

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Delete the flow log the fix made: the first one made since, of its traffic type to its
        log group. Any made after it (by someone else, or a later fix) stays, and so do the
        log group and the delivery role: other VPCs of the account share them."""
        had = {log["FlowLogId"] for log in before["FlowLogs"]}
        made = [
            log
            for log in self.read(clients, resource_id)["FlowLogs"]
            if log["FlowLogId"] not in had
            and log.get("LogGroupName") == self.params["log_group_name"]
            and log.get("TrafficType") == self.params["traffic_type"]
        ]
        if made:
            first = min(made, key=lambda log: (str(log.get("CreationTime", "")), log["FlowLogId"]))
            clients.ec2.delete_flow_logs(FlowLogIds=[first["FlowLogId"]])


# Queries a GetMetricData call may carry.
METRIC_QUERIES_PER_CALL = 500


def imdsv1_calls(cloudwatch: Any, instance_ids: list[str], days: int) -> dict[str, int]:
    """How many IMDSv1 calls each instance answered in the last ``days`` days: EC2 counts
    them in the free metric ``MetadataNoToken``, read here 500 instances a call."""
    end = datetime.datetime.now(datetime.UTC).replace(second=0, microsecond=0)
    start = end - datetime.timedelta(days=days)
    counts = dict.fromkeys(instance_ids, 0)
    for first in range(0, len(instance_ids), METRIC_QUERIES_PER_CALL):
        chunk = instance_ids[first : first + METRIC_QUERIES_PER_CALL]
        queries = [
            {
                "Id": f"i{n}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/EC2",
                        "MetricName": "MetadataNoToken",
                        "Dimensions": [{"Name": "InstanceId", "Value": instance_id}],
                    },
                    "Period": 86400,
                    "Stat": "Sum",
                },
            }
            for n, instance_id in enumerate(chunk)
        ]
        pages = cloudwatch.get_paginator("get_metric_data").paginate(
            MetricDataQueries=queries, StartTime=start, EndTime=end
        )
        for page in pages:
            for result in page["MetricDataResults"]:
                counts[chunk[int(result["Id"][1:])]] += int(sum(result.get("Values", [])))
    return counts


class InstanceAction(BulkRead):
    """Instance fixes read many instances with one paginated DescribeInstances."""

    service = "ec2"
    propagation_seconds = EC2_PROPAGATION

    def describe(self, clients: Clients, resource_ids: list[str]) -> list[dict[str, Any]]:
        pages = clients.ec2.get_paginator("describe_instances").paginate(InstanceIds=resource_ids)
        return [i for page in pages for reservation in page["Reservations"] for i in reservation["Instances"]]

    def item_id(self, item: dict[str, Any]) -> str:
        return item["InstanceId"]


@register
class RequireImdsv2(InstanceAction):
    """Require session tokens (IMDSv2) for an instance's metadata service.

    IMDSv1 answers plain GETs, so an SSRF flaw in an application can read the instance
    role's credentials. Only ``HttpTokens`` changes; the endpoint, hop limit and tags
    settings stay. Software on the instance that still uses IMDSv1 would lose metadata
    access, the role's credentials included: so an instance that answered IMDSv1 calls in
    the last ``imdsv1_quiet_days`` (EC2's metric ``MetadataNoToken``, as AWS advises before
    requiring IMDSv2) is refused with the count; 0 days skips that check.

        remediation:
          action: ec2.require-imdsv2
          parameters: {imdsv1_quiet_days: 14}
    """

    name = "ec2.require-imdsv2"
    permissions = ("ec2:DescribeInstances", "ec2:ModifyInstanceMetadataOptions", "cloudwatch:GetMetricData")
    summary = "required IMDSv2 (HttpTokens=required) on the instance"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            # CloudWatch keeps hourly data for 455 days.
            "imdsv1_quiet_days": {"type": "integer", "minimum": 0, "maximum": 455, "default": 14}
        },
    }

    def state_of(self, instance: dict[str, Any]) -> dict[str, Any]:
        return {"HttpTokens": instance.get("MetadataOptions", {}).get("HttpTokens")}

    def complete(self, clients: Clients, states: dict[str, dict[str, Any] | Exception]) -> None:
        """Add the IMDSv1 call count to the states of instances still to fix (not to a read-back)."""
        to_fix = [i for i, s in states.items() if isinstance(s, dict) and s["HttpTokens"] != "required"]
        if to_fix and self.params["imdsv1_quiet_days"]:
            counts = imdsv1_calls(clients.cloudwatch, to_fix, self.params["imdsv1_quiet_days"])
            for instance_id in to_fix:
                states[instance_id]["Imdsv1Calls"] = counts[instance_id]

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        if state["HttpTokens"] == "required":
            return {}
        if state.get("Imdsv1Calls"):
            days = self.params["imdsv1_quiet_days"]
            raise ValueError(
                f"the instance answered {state['Imdsv1Calls']} IMDSv1 metadata calls in the last {days} "
                "days (CloudWatch metric MetadataNoToken): requiring IMDSv2 would cut that software off "
                "the instance metadata, its role's credentials included; update it to IMDSv2 (AWS SDKs "
                "have used it since 2019), or set imdsv1_quiet_days to 0 in the EC2.8 playbook"
            )
        return {"HttpTokens": "required"}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.ec2.modify_instance_metadata_options(InstanceId=resource_id, HttpTokens="required")

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        # No metadata options reported means EC2's default, which accepts IMDSv1.
        tokens = before["HttpTokens"] or "optional"
        clients.ec2.modify_instance_metadata_options(InstanceId=resource_id, HttpTokens=tokens)


# How EC2 dates a user's stop in StateTransitionReason: "User initiated (2025-01-31 08:00:00 GMT)".
STOPPED_AT = re.compile(r"\((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?:GMT|UTC)\)")
# Tags AWS puts on an instance another service launched and keeps at its count: terminated by
# hand, it is replaced (or the service's own count goes wrong), so it is not for this fix.
MANAGER_TAGS = {
    "aws:autoscaling:groupName": "the Auto Scaling group",
    "aws:ec2spot:fleet-request-id": "the Spot Fleet request",
    "aws:ec2:fleet-id": "the EC2 Fleet",
    # Cloud9 stops an idle environment's instance by itself, and its root volume holds the
    # developer's workspace; a stack's instance would leave the stack drifted, its updates failing.
    "aws:cloud9:environment": "the Cloud9 environment",
    "aws:cloudformation:stack-id": "the CloudFormation stack",
}


def _stopped_at(reason: str) -> str | None:
    """The stop time in a StateTransitionReason, as an ISO UTC time; None when it names none."""
    found = STOPPED_AT.search(reason or "")
    if not found:
        return None
    when = datetime.datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.UTC)
    return when.isoformat()


def _manager(instance: dict[str, Any]) -> str | None:
    """What launched the instance and would replace it or lose count if it were terminated."""
    tags = {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}
    for key, manager in MANAGER_TAGS.items():
        if key in tags:
            return f"{manager} {tags[key]}"
    if instance.get("InstanceLifecycle") == "spot" and instance.get("SpotInstanceRequestId"):
        # Only a persistent request's Spot Instance can be stopped, and terminating it opens the
        # request again, which launches another.
        return f"the persistent Spot request {instance['SpotInstanceRequestId']}"
    operator = instance.get("Operator") or {}
    if operator.get("Managed"):
        return f"the service {operator.get('Principal') or 'that operates it'}"
    return None


@register
class TerminateLongStoppedInstance(InstanceAction):
    """Terminate an instance that has been stopped for more than ``allowed_days``.

    A stopped instance still pays for its EBS volumes and misses every patch while it sleeps:
    started months later, it comes back out of date. Termination cannot be undone, so
    the fix terminates only what the evidence at fix time supports: an instance still
    ``stopped``, stopped (as EC2's StateTransitionReason dates it) more than ``allowed_days``
    ago. One started since, or stopped again more recently, passes EC2.4 and is left alone. One
    whose stop EC2 does not date is refused (AWS Config calls it NON_COMPLIANT, but a guess is
    no ground for a deletion), and so is one with termination protection (the owner's "keep
    this"; the fix does not turn it off) and one that an Auto Scaling group, a fleet or a
    persistent Spot request launched (it would be replaced, or its group miscounted). The
    EBS volumes the termination deletes (``DeleteOnTermination``) are recorded in the
    before-state; the others are left detached.

        remediation:
          action: ec2.terminate-long-stopped-instance
          parameters: {allowed_days: 30}
    """

    name = "ec2.terminate-long-stopped-instance"
    permissions = ("ec2:DescribeInstances", "ec2:DescribeInstanceAttribute", "ec2:TerminateInstances")
    summary = "terminated the instance, stopped for more than {allowed_days} days"
    irreversible = (
        "it terminates the instance: EC2 cannot bring a terminated instance back, and the EBS "
        "volumes deleted with it are gone (a new instance from the same AMI is not the same one)"
    )
    schema = {
        "type": "object",
        "additionalProperties": False,
        # Security Hub's AllowedDays takes 1 to 365.
        "properties": {"allowed_days": {"type": "integer", "minimum": 1, "maximum": 365, "default": 30}},
    }

    def state_of(self, instance: dict[str, Any]) -> dict[str, Any]:
        volumes = [m["Ebs"] for m in instance.get("BlockDeviceMappings", []) if "Ebs" in m]
        reason = instance.get("StateTransitionReason", "")
        return {
            "State": instance["State"]["Name"],
            "StateTransitionReason": reason,
            "StoppedAt": _stopped_at(reason),
            "ManagedBy": _manager(instance),
            "VolumesDeletedOnTermination": sorted(
                v["VolumeId"] for v in volumes if v.get("DeleteOnTermination")
            ),
            "VolumesKept": sorted(v["VolumeId"] for v in volumes if not v.get("DeleteOnTermination")),
        }

    def complete(self, clients: Clients, states: dict[str, dict[str, Any] | Exception]) -> None:
        """Replace the state of an instance the fix must not terminate with the reason, as a read
        error: refused in the read, not in ``plan``, because termination protection takes a call
        of its own (DescribeInstances does not report it), made only for instances due to go."""
        from asr.pacing import throttled

        for instance_id, state in states.items():
            if not isinstance(state, dict) or state["State"] != "stopped":
                continue
            try:
                why = self._refusal(clients, instance_id, state)
            except ClientError as exc:
                if throttled(exc.response):  # the whole read is tried again, as for its other calls
                    raise
                states[instance_id] = exc
                continue
            if why:
                states[instance_id] = ValueError(why)

    def _refusal(self, clients: Clients, instance_id: str, state: dict[str, Any]) -> str | None:
        """Why this stopped instance must not be terminated, or None. Termination protection is
        asked only of an instance due to go: DescribeInstances does not report it."""
        if state["StoppedAt"] is None:
            return (
                f"EC2 does not say when the instance was stopped (StateTransitionReason "
                f"{state['StateTransitionReason']!r}), so it is not terminated on a guess: check its "
                "history in AWS Config or CloudTrail, and terminate it yourself if it is unused"
            )
        if not self._overdue(state):
            return None
        found = clients.ec2.describe_instance_attribute(
            InstanceId=instance_id, Attribute="disableApiTermination"
        )
        state["DisableApiTermination"] = bool(found["DisableApiTermination"].get("Value"))
        if state["DisableApiTermination"]:
            return (
                "the instance has termination protection (DisableApiTermination), its owner's word to "
                "keep it: the fix does not turn that off; turn it off yourself to let the instance go"
            )
        if state["ManagedBy"]:
            return (
                f"the instance belongs to {state['ManagedBy']}, which would replace it or lose count if "
                "it were terminated: change that instead (scale it in, or cancel the request)"
            )
        return None

    def _overdue(self, state: dict[str, Any]) -> bool:
        """Stopped, for more than ``allowed_days`` by EC2's date (an undated stop is refused)."""
        if state["State"] != "stopped" or state["StoppedAt"] is None:
            return False
        stopped = datetime.datetime.fromisoformat(state["StoppedAt"])
        return datetime.datetime.now(datetime.UTC) - stopped > datetime.timedelta(
            days=self.params["allowed_days"]
        )

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        # Running, starting, stopping just now, stopped again within the days, or gone: EC2.4 passes.
        return {"State": "terminated", "VolumesDeletedOnTermination": []} if self._overdue(state) else {}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        """Read the instance again just before: TerminateInstances takes a running instance too,
        and one started (or protected) since the batch read it must not go on that read."""
        if self.plan(self.read(clients, resource_id)) != plan:
            raise ChangedMeanwhile(f"{resource_id} changed since it was read")
        clients.ec2.terminate_instances(InstanceIds=[resource_id])


@register
class DisableSubnetPublicIp(BulkRead):
    """Stop a subnet from giving instances launched in it a public IPv4 address.

    Instances that already have one keep it; launches that ask for one explicitly
    still get it.

        remediation:
          action: ec2.disable-subnet-public-ip
    """

    name = "ec2.disable-subnet-public-ip"
    service = "ec2"
    propagation_seconds = EC2_PROPAGATION
    permissions = ("ec2:DescribeSubnets", "ec2:ModifySubnetAttribute")
    summary = "turned off MapPublicIpOnLaunch on the subnet"

    def describe(self, clients: Clients, resource_ids: list[str]) -> list[dict[str, Any]]:
        return clients.ec2.describe_subnets(SubnetIds=resource_ids)["Subnets"]

    def item_id(self, item: dict[str, Any]) -> str:
        return item["SubnetId"]

    def state_of(self, subnet: dict[str, Any]) -> dict[str, Any]:
        return {"MapPublicIpOnLaunch": bool(subnet.get("MapPublicIpOnLaunch"))}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"MapPublicIpOnLaunch": False} if state["MapPublicIpOnLaunch"] else {}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.ec2.modify_subnet_attribute(SubnetId=resource_id, MapPublicIpOnLaunch={"Value": False})

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        clients.ec2.modify_subnet_attribute(
            SubnetId=resource_id, MapPublicIpOnLaunch={"Value": before["MapPublicIpOnLaunch"]}
        )


@register
class DisableTransitGatewayAutoAccept(BulkRead):
    """Make a transit gateway wait for its owner to accept each attachment another account asks for.

    With auto-accept on, any account the gateway is shared with (through AWS RAM) can attach
    a VPC and route into every network behind it. Attachments already made stay; new
    requests wait in ``pendingAcceptance``.

        remediation:
          action: ec2.disable-transit-gateway-auto-accept
    """

    name = "ec2.disable-transit-gateway-auto-accept"
    service = "ec2"
    propagation_seconds = EC2_PROPAGATION
    permissions = ("ec2:DescribeTransitGateways", "ec2:ModifyTransitGateway")
    summary = "turned off automatic acceptance of shared attachments on the transit gateway"

    def describe(self, clients: Clients, resource_ids: list[str]) -> list[dict[str, Any]]:
        pages = clients.ec2.get_paginator("describe_transit_gateways").paginate(
            TransitGatewayIds=resource_ids
        )
        return [gateway for page in pages for gateway in page["TransitGateways"]]

    def item_id(self, item: dict[str, Any]) -> str:
        return item["TransitGatewayId"]

    def state_of(self, gateway: dict[str, Any]) -> dict[str, Any]:
        return {"AutoAcceptSharedAttachments": gateway.get("Options", {}).get("AutoAcceptSharedAttachments")}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return (
            {}
            if state["AutoAcceptSharedAttachments"] == "disable"
            else {"AutoAcceptSharedAttachments": "disable"}
        )

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.ec2.modify_transit_gateway(TransitGatewayId=resource_id, Options=plan)

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        setting = before["AutoAcceptSharedAttachments"] or "disable"
        clients.ec2.modify_transit_gateway(
            TransitGatewayId=resource_id, Options={"AutoAcceptSharedAttachments": setting}
        )
