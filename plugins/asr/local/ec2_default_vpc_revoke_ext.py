"""Revoking security group rules that are not there, in a default VPC, as EC2 answers it.

In a default VPC, RevokeSecurityGroupIngress and RevokeSecurityGroupEgress revoke the rules
of the request that match and list the others in ``UnknownIpPermissions``, with no error;
in any other VPC the request fails with ``InvalidPermission.NotFound``. moto 5.2.5 refuses
in every VPC. Here a default VPC's group is answered as EC2 answers it: each source of a
permission (an IP range, a group, a prefix list) is revoked on its own, and those not there
come back as unknown.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import InvalidPermissionNotFoundError
from moto.ec2.responses.security_groups import SecurityGroups

SOURCES = ("ip_ranges", "source_groups", "prefix_list_ids")

_moto_revoke_ingress = SecurityGroups.revoke_security_group_ingress
_moto_revoke_egress = SecurityGroups.revoke_security_group_egress


def in_default_vpc(backend: Any, group_name_or_id: str) -> bool:
    group = backend.get_security_group_by_name_or_id(group_name_or_id, None)
    vpc = backend.vpcs.get(getattr(group, "vpc_id", None)) if group is not None else None
    return bool(vpc is not None and vpc.is_default)


def one_source_each(args: dict[str, Any]) -> list[dict[str, Any]]:
    """The permission split so that each part names one source."""
    empty: dict[str, list[Any]] = {field: [] for field in SOURCES}
    parts = [{**args, **empty, field: [source]} for field in SOURCES for source in args.get(field) or []]
    return parts or [args]


def as_permission(args: dict[str, Any]) -> dict[str, Any]:
    """A part that was not there, as UnknownIpPermissions lists it."""
    permission: dict[str, Any] = {"IpProtocol": args["ip_protocol"]}
    for name, field in (("FromPort", "from_port"), ("ToPort", "to_port")):
        if args.get(field) is not None:
            permission[name] = int(args[field])
    ranges = args.get("ip_ranges") or []
    permission["IpRanges"] = [r for r in ranges if "CidrIp" in r]
    permission["Ipv6Ranges"] = [r for r in ranges if "CidrIpv6" in r]
    permission["UserIdGroupPairs"] = list(args.get("source_groups") or [])
    permission["PrefixListIds"] = list(args.get("prefix_list_ids") or [])
    return permission


def _revoke(self: SecurityGroups, egress: bool) -> Any:
    group = self._get_param("GroupName") or self._get_param("GroupId")
    # Revokes by rule id are moto's (asr names rules by what they allow).
    if self._get_param("SecurityGroupRuleIds") or not in_default_vpc(self.ec2_backend, group):
        return (_moto_revoke_egress if egress else _moto_revoke_ingress)(self)
    self.error_on_dryrun()
    backend = self.ec2_backend
    revoke = backend.revoke_security_group_egress if egress else backend.revoke_security_group_ingress
    unknown: list[dict[str, Any]] = []
    for args in self._process_rules_from_querystring():
        del args["sgrule_tags"]
        for part in one_source_each(args):
            try:
                revoke(**part)
            except InvalidPermissionNotFoundError:
                unknown.append(as_permission(part))
    result: dict[str, Any] = {"Return": True}
    if unknown:
        result["UnknownIpPermissions"] = unknown
    return ActionResult(result)


def revoke_security_group_ingress(self: SecurityGroups) -> Any:
    return _revoke(self, egress=False)


def revoke_security_group_egress(self: SecurityGroups) -> Any:
    return _revoke(self, egress=True)


def install() -> None:
    SecurityGroups.revoke_security_group_ingress = revoke_security_group_ingress  # type: ignore[method-assign]
    SecurityGroups.revoke_security_group_egress = revoke_security_group_egress  # type: ignore[method-assign]
