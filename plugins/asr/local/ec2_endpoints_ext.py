"""Interface VPC endpoints as EC2 makes them, which moto 5.2.5 does loosely.

moto makes any endpoint asked for, at once: two subnets in one Availability Zone, a subnet in
a zone the service is not offered in, private DNS in a VPC without DNS hostnames; a request
sent again with its ``ClientToken`` makes a second endpoint; and a security group in use is
deleted all the same. EC2.10's fix relies on AWS's rules, so the stand-in keeps them:

- ``CreateVpcEndpoint`` (Interface) refuses two subnets in one zone
  (``DuplicateSubnetsInSameZone``), a subnet in a zone the service is not offered in, and
  private DNS unless the VPC has both ``enableDnsSupport`` and ``enableDnsHostnames``
  (``InvalidParameter``; the API reference says private DNS needs both). A request sent
  again with the same ``ClientToken`` answers the endpoint the first made (whatever its state
  now), and with other parameters ``IdempotentParameterMismatch``, as EC2 documents for
  client tokens. The endpoint's network interfaces carry its security groups (the VPC's
  default group when none is named), as in EC2.
- ``DeleteSecurityGroup`` answers ``DependencyViolation`` while a network interface (an
  instance's, an endpoint's) uses the group.
- An endpoint takes EC2 minutes to make, moto none: one made in a VPC tagged
  ``asr-local:endpoint-state`` = ``pending`` is made ``pending`` and reads so until the tag is
  removed, then ``available``; with ``failed`` it is made ``pending`` and then reads ``failed``,
  for good. EC2 takes a while to delete one too: with ``deleting``, a deleted endpoint reads
  ``deleting``, its network interfaces kept (holding its groups), until the tag is removed.
- AWS offers a service in some of a Region's zones only; moto in all.
  ``POST /moto-api/asr/ec2/endpoint-service-zones`` with ``{"account_id", "region",
  "service_name", "zones"}`` narrows the zones ``DescribeVpcEndpointServices`` lists for that
  service, and so where an endpoint may be made. It is kept on the account-region's EC2
  backend: moto's reset forgets it.
- ``DescribeVpcEndpointServices`` with ``Filters`` failed with a server error (moto reads a
  filter's values under a key its own server does not write); it filters, as EC2 does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from moto.ec2.exceptions import DependencyViolationError, EC2ClientError, InvalidParameter
from moto.ec2.models import ec2_backends
from moto.ec2.models.security_groups import SecurityGroupBackend
from moto.ec2.models.vpcs import VPCBackend, VPCEndPoint
from moto.moto_api._internal import urls as moto_api_urls

STATE_TAG = "asr-local:endpoint-state"
DELETING = "deleting"
# moto's own delete, which drops an endpoint's network interfaces: for the slow one, once it ends.
MOTO_DELETE = VPCBackend.delete_vpc_endpoints
PATH = "/moto-api/asr/ec2/endpoint-service-zones"
# Where each backend keeps what it was told: the narrowed zones, and the endpoint each token made.
ZONES = "asr_endpoint_service_zones"
TOKENS = "asr_endpoint_tokens"


def _kept(backend: Any, name: str) -> dict[str, Any]:
    return vars(backend).setdefault(name, {})  # type: ignore[no-any-return]


def _narrowed(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    def describe_vpc_endpoint_services(
        self: Any, service_names: list[str], filters: list[dict[str, Any]], **more: Any
    ) -> dict[str, Any]:
        # moto reads a filter's values from "Value", and its server parses them into "Values".
        filters = [{**f, "Value": f.get("Value", f.get("Values", []))} for f in filters]
        found = original(self, service_names=service_names, filters=filters, **more)
        zones = _kept(self, ZONES)
        found["servicesDetails"] = [
            {**service, "AvailabilityZones": zones[service["ServiceName"]]}
            if service["ServiceName"] in zones
            else service
            for service in found["servicesDetails"]
        ]
        return found

    return describe_vpc_endpoint_services


def _offered_zones(backend: Any, service_name: str) -> list[str]:
    """The zones the service is offered in (an unknown service answers InvalidServiceName, as in EC2)."""
    [service] = backend.describe_vpc_endpoint_services(
        service_names=[service_name],
        filters=[],
        max_results=None,
        next_token=None,
        region=backend.region_name,
    )["servicesDetails"]
    return list(service["AvailabilityZones"])


def _check_interface(backend: Any, vpc_id: str, service_name: str, subnet_ids: list[str], dns: bool) -> None:
    """Refuse what EC2 refuses of an interface endpoint's subnets and private DNS."""
    zones = _offered_zones(backend, service_name)
    seen: set[str] = set()
    for subnet_id in subnet_ids:
        zone = backend.get_subnet(subnet_id).availability_zone
        if zone in seen:
            raise EC2ClientError(
                "DuplicateSubnetsInSameZone",
                f"Found another VPC endpoint subnet in the availability zone of {subnet_id}. VPC endpoint "
                "subnets should be in different availability zones supported by the VPC endpoint service.",
            )
        seen.add(zone)
        if zone not in zones:
            raise InvalidParameter(
                f"The VPC endpoint service {service_name} does not support the availability zone of "
                f"the subnet: {subnet_id}."
            )
    vpc = backend.get_vpc(vpc_id)
    if dns and not (vpc.enable_dns_support and vpc.enable_dns_hostnames):
        raise InvalidParameter(
            f"Enabling private DNS requires the VPC attributes enableDnsSupport and enableDnsHostnames "
            f"to be true for {vpc_id}."
        )


def _request_key(kwargs: dict[str, Any]) -> str:
    """What a request asks, to tell a request sent again from another under the same token."""
    return json.dumps(
        {key: sorted(value) if isinstance(value, list) else value for key, value in kwargs.items()},
        sort_keys=True,
        default=str,
    )


def _creating(original: Callable[..., VPCEndPoint]) -> Callable[..., VPCEndPoint]:
    def create_vpc_endpoint(self: Any, **kwargs: Any) -> VPCEndPoint:
        token, asked = kwargs.get("client_token"), _request_key({**kwargs, "client_token": None})
        tokens = _kept(self, TOKENS)
        if token and token in tokens:
            key, endpoint = tokens[token]
            if key != asked:
                raise EC2ClientError(
                    "IdempotentParameterMismatch", f"Client token {token} was used with other parameters."
                )
            return endpoint  # type: ignore[no-any-return]
        interface = (kwargs.get("endpoint_type") or "").lower() == "interface"
        if interface:
            _check_interface(
                self,
                kwargs["vpc_id"],
                kwargs["service_name"],
                kwargs.get("subnet_ids") or [],
                bool(kwargs.get("private_dns_enabled")),
            )
        endpoint = original(self, **kwargs)
        if interface:
            groups = endpoint.security_group_ids or [self.get_default_security_group(endpoint.vpc_id).id]
            for eni_id in endpoint.network_interface_ids:
                found = (self.get_security_group_from_id(group_id) for group_id in groups)
                self.enis[eni_id]._group_set = [group for group in found if group]
            if self.tags.get(endpoint.vpc_id, {}).get(STATE_TAG) in ("pending", "failed"):
                endpoint.state = "pending"
        if token:
            tokens[token] = (asked, endpoint)
        return endpoint

    return create_vpc_endpoint


def _describing(original: Callable[..., list[VPCEndPoint]]) -> Callable[..., list[VPCEndPoint]]:
    def describe_vpc_endpoints(self: Any, *args: Any, **kwargs: Any) -> list[VPCEndPoint]:
        """A pending endpoint stays so while its VPC's state tag says pending, fails when it says
        failed, and is available once the tag is gone; one deleting is deleted once the tag no
        longer says so."""
        for endpoint in self.vpc_end_points.values():
            told = self.tags.get(endpoint.vpc_id, {}).get(STATE_TAG)
            if endpoint.state == "pending":
                endpoint.state = told if told in ("pending", "failed") else "available"
            elif endpoint.state == DELETING and told != DELETING:
                MOTO_DELETE(self, [endpoint.id])
        return original(self, *args, **kwargs)

    return describe_vpc_endpoints


def _deleting(original: Callable[..., None]) -> Callable[..., None]:
    def delete_vpc_endpoints(self: Any, vpce_ids: list[str] | None = None) -> None:
        """An interface endpoint in a VPC whose state tag says deleting is only marked so."""
        slow = [
            i
            for i in vpce_ids or []
            if (endpoint := self.vpc_end_points.get(i)) is not None
            and endpoint.vpc_endpoint_type.lower() == "interface"
            and self.tags.get(endpoint.vpc_id, {}).get(STATE_TAG) == DELETING
        ]
        original(self, [i for i in vpce_ids or [] if i not in slow])
        for endpoint_id in slow:
            self.vpc_end_points[endpoint_id].state = DELETING

    return delete_vpc_endpoints


def _guarded(original: Callable[..., None]) -> Callable[..., None]:
    def delete_security_group(self: Any, name: str | None = None, group_id: str | None = None) -> None:
        if group_id and any(group_id in {g.id for g in eni.group_set} for eni in self.enis.values()):
            raise DependencyViolationError(f"resource {group_id} has a dependent object")
        original(self, name=name, group_id=group_id)

    return delete_security_group


def zones_response(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    body = json.loads(request.data or b"{}")
    zones = body.get("zones")
    if not isinstance(zones, list) or not all(isinstance(z, str) for z in zones):
        return 400, {}, json.dumps({"error": "zones must be a list of Availability Zone names"})
    backend = ec2_backends[body["account_id"]][body["region"]]
    _kept(backend, ZONES)[body["service_name"]] = zones
    return 200, {"Content-Type": "application/json"}, json.dumps(_kept(backend, ZONES))


def install() -> None:
    VPCBackend.describe_vpc_endpoint_services = _narrowed(VPCBackend.describe_vpc_endpoint_services)  # type: ignore[method-assign]
    VPCBackend.create_vpc_endpoint = _creating(VPCBackend.create_vpc_endpoint)  # type: ignore[method-assign]
    VPCBackend.describe_vpc_endpoints = _describing(VPCBackend.describe_vpc_endpoints)  # type: ignore[method-assign]
    VPCBackend.delete_vpc_endpoints = _deleting(VPCBackend.delete_vpc_endpoints)  # type: ignore[method-assign]
    SecurityGroupBackend.delete_security_group = _guarded(SecurityGroupBackend.delete_security_group)  # type: ignore[method-assign]
    moto_api_urls.url_paths[f"{{0}}{PATH}$"] = zones_response
