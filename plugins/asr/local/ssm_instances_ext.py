"""SSM ``DescribeInstanceInformation``, which moto 5.2.5 lacks, added to moto's own SSM backend.

On AWS an EC2 instance is listed once its SSM agent has registered it: the agent must run,
reach the Systems Manager endpoints, and the instance's role must allow it (AWS's managed
policy AmazonSSMManagedInstanceCore). The stand-in runs no agent, so it derives the list: an
instance is registered while it is running and the role of its associated instance profile
has that policy attached, at once (AWS takes minutes). An instance tagged
``asr-local:ssm-agent`` = ``stopped`` never registers: the agent that is not running, or
cannot reach the endpoints, which only the instance itself can show.

Only the ``InstanceIds`` filter is modelled (in ``Filters`` or as ``instanceIds`` in
``InstanceInformationFilterList``); an id that is no instance of the account and region is
``InvalidInstanceId``, as AWS answers for ids that are not valid or not the caller's.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ec2.models import ec2_backends
from moto.ssm.exceptions import SSMException, ValidationException
from moto.ssm.models import SimpleSystemManagerBackend
from moto.ssm.responses import SimpleSystemManagerResponse

CORE_POLICY = "AmazonSSMManagedInstanceCore"
AGENT_TAG = "asr-local:ssm-agent"
AGENT_STOPPED = "stopped"
PAGE_LIMITS = (5, 50)


class InvalidInstanceId(SSMException):
    code = "InvalidInstanceId"


class InvalidFilterKey(SSMException):
    code = "InvalidFilterKey"


def _role_allows(association: Any) -> bool:
    """Whether the associated profile's role has AmazonSSMManagedInstanceCore attached."""
    if association is None or association.state != "associated":
        return False
    return any(
        arn.endswith(f":policy/{CORE_POLICY}")
        for role in association.iam_instance_profile.roles
        for arn in role.managed_policies
    )


def _registered(ec2: Any, instance: Any) -> bool:
    tags = {tag["key"]: tag["value"] for tag in instance.get_tags()}
    return (
        instance.state == "running"
        and tags.get(AGENT_TAG) != AGENT_STOPPED
        and _role_allows(ec2.iam_instance_profile_associations.get(instance.id))
    )


def _wanted_ids(
    filters: list[dict[str, Any]] | None, filter_list: list[dict[str, Any]] | None
) -> set[str] | None:
    """The instance ids asked for (None: every instance), from either filter form."""
    wanted: set[str] | None = None
    pairs = [(f.get("Key"), f.get("Values")) for f in filters or []]
    pairs += [(f.get("key"), f.get("valueSet")) for f in filter_list or []]
    for key, values in pairs:
        if key not in ("InstanceIds", "instanceIds"):
            raise InvalidFilterKey(f"the stand-in models only the InstanceIds filter, not {key}")
        if not values or len(values) > 100:
            raise ValidationException("a filter takes 1 to 100 values")
        wanted = set(values) if wanted is None else wanted & set(values)
    return wanted


def describe_instance_information(
    self: SimpleSystemManagerBackend,
    filters: list[dict[str, Any]] | None,
    filter_list: list[dict[str, Any]] | None,
    max_results: int | None,
    next_token: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    limit = max_results or PAGE_LIMITS[1]
    if not PAGE_LIMITS[0] <= limit <= PAGE_LIMITS[1]:
        raise ValidationException(f"MaxResults must be from {PAGE_LIMITS[0]} to {PAGE_LIMITS[1]}")
    ec2 = ec2_backends[self.account_id][self.region_name]
    instances = {i.id: i for i in ec2.all_instances()}
    wanted = _wanted_ids(filters, filter_list)
    unknown = sorted((wanted or set()) - set(instances))
    if unknown:
        raise InvalidInstanceId(f"Instances {unknown} are not valid or not in this account and region")
    listed = [
        {
            "InstanceId": instance.id,
            "PingStatus": "Online",
            "LastPingDateTime": utcnow(),
            "AgentVersion": "3.3.0.0",
            "IsLatestVersion": True,
            "PlatformType": "Linux",
            "ResourceType": "EC2Instance",
            "IPAddress": instance.private_ip,
            "ComputerName": instance.private_dns_name,
        }
        for instance_id, instance in sorted(instances.items())
        if (wanted is None or instance_id in wanted) and _registered(ec2, instance)
    ]
    start = int(next_token) if next_token and next_token.isdigit() else 0
    page = listed[start : start + limit]
    more = start + limit < len(listed)
    return page, str(start + limit) if more else None


def describe_instance_information_response(self: SimpleSystemManagerResponse) -> ActionResult:
    page, token = self.ssm_backend.describe_instance_information(
        self._get_param("Filters"),
        self._get_param("InstanceInformationFilterList"),
        self._get_param("MaxResults"),
        self._get_param("NextToken"),
    )
    return ActionResult({"InstanceInformationList": page, **({"NextToken": token} if token else {})})


def install() -> None:
    SimpleSystemManagerBackend.describe_instance_information = describe_instance_information  # type: ignore[attr-defined]
    SimpleSystemManagerResponse.describe_instance_information = describe_instance_information_response  # type: ignore[attr-defined]
