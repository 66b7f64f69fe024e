"""EC2 fixes: security group ingress, default security groups, EBS encryption by default."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients

OPEN_IPV4 = "0.0.0.0/0"
OPEN_IPV6 = "::/0"
ALL_PROTOCOLS = "-1"


def _describe_group(client: Any, group_id: str) -> dict[str, Any]:
    return client.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]


def _covers(permission: dict[str, Any], ports: list[int]) -> bool:
    protocol = str(permission.get("IpProtocol"))
    if protocol == ALL_PROTOCOLS:
        return True
    if protocol not in ("tcp", "6"):
        return False
    low, high = permission.get("FromPort", 0), permission.get("ToPort", 65535)
    return any(low <= port <= high for port in ports)


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


@register
class RevokePublicAdminIngress(Action):
    """Remove rules that let 0.0.0.0/0 or ::/0 reach remote-administration ports.

    Only the world-open ranges of a matching rule are revoked: narrower ranges on the
    same rule stay, so administrators keep the access they scoped on purpose.

        remediation:
          action: ec2.revoke-public-admin-ingress
          parameters: {ports: [22, 3389]}
    """

    name = "ec2.revoke-public-admin-ingress"
    service = "ec2"
    permissions = ("ec2:DescribeSecurityGroups", "ec2:RevokeSecurityGroupIngress")
    summary = "removed ingress from 0.0.0.0/0 and ::/0 to ports {ports}"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "ports": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0, "maximum": 65535},
                "minItems": 1,
                "default": [22, 3389],
            }
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        group = _describe_group(clients.ec2, resource_id)
        open_rules = [
            rule
            for rule in map(_only_open_ranges, group.get("IpPermissions", []))
            if rule and _covers(rule, self.params["ports"])
        ]
        return {"public_admin_ingress": open_rules}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"public_admin_ingress": []} if state["public_admin_ingress"] else {}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.ec2.revoke_security_group_ingress(
            GroupId=resource_id, IpPermissions=_strip_empty(state["public_admin_ingress"])
        )


@register
class RemoveDefaultSecurityGroupRules(Action):
    """Empty a VPC's default security group, inbound and outbound.

    Refuses a group that is not named ``default``: a wrong resource id must not empty a
    group that something depends on.

        remediation:
          action: ec2.remove-default-security-group-rules
    """

    name = "ec2.remove-default-security-group-rules"
    service = "ec2"
    permissions = (
        "ec2:DescribeSecurityGroups",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:RevokeSecurityGroupEgress",
    )
    summary = "removed every inbound and outbound rule of the default security group"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        group = _describe_group(clients.ec2, resource_id)
        if group.get("GroupName") != "default":
            raise ValueError(f"{resource_id} is not a default security group")
        return {
            "IpPermissions": group.get("IpPermissions", []),
            "IpPermissionsEgress": group.get("IpPermissionsEgress", []),
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {key: [] for key, rules in state.items() if rules}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        if "IpPermissions" in plan:
            clients.ec2.revoke_security_group_ingress(
                GroupId=resource_id, IpPermissions=_strip_empty(state["IpPermissions"])
            )
        if "IpPermissionsEgress" in plan:
            clients.ec2.revoke_security_group_egress(
                GroupId=resource_id, IpPermissions=_strip_empty(state["IpPermissionsEgress"])
            )


@register
class EnableEbsEncryptionByDefault(Action):
    """Turn on EBS encryption by default for the account in one region.

    remediation:
      action: ec2.enable-ebs-encryption-by-default
    """

    name = "ec2.enable-ebs-encryption-by-default"
    service = "ec2"
    permissions = ("ec2:GetEbsEncryptionByDefault", "ec2:EnableEbsEncryptionByDefault")
    summary = "enabled EBS encryption by default"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        return {
            "EbsEncryptionByDefault": clients.ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"]
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["EbsEncryptionByDefault"] else {"EbsEncryptionByDefault": True}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.ec2.enable_ebs_encryption_by_default()
