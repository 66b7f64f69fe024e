"""EC2 behaviour moto 5.2.5 gets wrong, fixed on moto's own EC2 backend and responses.

- ``DescribeSnapshots`` ignores ``OwnerIds`` and ``RestorableByUserIds``: every snapshot
  in the region (including the ~1,300 behind moto's default AMIs) comes back whatever
  is asked. AWS narrows to the owners given (``self`` or account ids) and to the
  snapshots the given accounts may restore (``all``: the public ones).
- ``ModifyInstanceMetadataOptions`` replaces every metadata option, resetting the
  ones the call leaves out (hop limit, endpoint, tags). AWS changes only the options
  given.
- Filters take any number of values. AWS refuses a call whose filters hold more than 200
  values in all (``FilterLimitExceeded``), which a bulk read of 200 ids plus one more
  filter reaches.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError, InvalidParameterValueError
from moto.ec2.models.elastic_block_store import Snapshot
from moto.ec2.models.instances import InstanceBackend, MetadataOptions
from moto.ec2.responses._base_response import EC2BaseResponse
from moto.ec2.responses.elastic_block_store import ElasticBlockStore

PUBLIC = "all"
# Filter values one EC2 call may carry, over all its filters.
FILTER_VALUE_LIMIT = 200

_moto_filters = EC2BaseResponse._filters_from_querystring


def _filters_within_limit(self: EC2BaseResponse) -> dict[str, Any]:
    filters = _moto_filters(self)
    if sum(len(values) for values in filters.values()) > FILTER_VALUE_LIMIT:
        raise EC2ClientError(
            "FilterLimitExceeded",
            f"The maximum number of filter values specified on a single call is {FILTER_VALUE_LIMIT}",
        )
    return filters


def _owned_by(snapshot: Snapshot, owners: list[str], caller: str) -> bool:
    wanted = set()
    for owner in owners:
        if owner == "self":
            wanted.add(caller)
        elif owner.isdigit() and len(owner) == 12:
            wanted.add(owner)
        else:
            # Owner aliases (amazon, aws-marketplace) would need moto to know snapshot aliases.
            raise InvalidParameterValueError(
                f"OwnerIds {owner!r}: the stand-in supports self and account ids"
            )
    return snapshot.owner_id in wanted


def _restorable_by(snapshot: Snapshot, users: list[str]) -> bool:
    """Anyone may restore a public snapshot; an account also one shared with it by id."""
    if PUBLIC in snapshot.create_volume_permission_groups:
        return True
    return any(user in snapshot.create_volume_permission_userids for user in users)


def describe_snapshots(self: ElasticBlockStore) -> ActionResult:
    filters = self._filters_from_querystring()
    snapshots = self.ec2_backend.describe_snapshots(
        snapshot_ids=self._get_param("SnapshotIds", []), filters=filters
    )
    owners = self._get_param("OwnerIds", [])
    if owners:
        snapshots = [s for s in snapshots if _owned_by(s, owners, self.ec2_backend.account_id)]
    users = self._get_param("RestorableByUserIds", [])
    if users:
        snapshots = [s for s in snapshots if _restorable_by(s, users)]
    return ActionResult({"Snapshots": snapshots})


def modify_instance_metadata_options(
    self: InstanceBackend,
    instance_id: str,
    http_tokens: str | None = None,
    hop_limit: int | None = None,
    http_endpoint: str | None = None,
    dry_run: bool | None = False,
    http_protocol: str | None = None,
    metadata_tags: str | None = None,
) -> MetadataOptions:
    """Change the options given; keep the others as they are."""
    instance: Any = self.get_instance(instance_id)
    current: MetadataOptions = instance.metadata_options
    hops = current.http_put_response_hop_limit if hop_limit is None else hop_limit
    instance.metadata_options = MetadataOptions(
        {
            "State": "applied",
            "HttpTokens": http_tokens or current.http_tokens,
            "HttpPutResponseHopLimit": hops,
            "HttpEndpoint": http_endpoint or current.http_endpoint,
            "HttpProtocolIpv6": http_protocol or current.http_protocol_ipv6,
            "InstanceMetadataTags": metadata_tags or current.instance_metadata_tags,
        }
    )
    return instance.metadata_options


def install() -> None:
    EC2BaseResponse._filters_from_querystring = _filters_within_limit  # type: ignore[method-assign]
    ElasticBlockStore.describe_snapshots = describe_snapshots  # type: ignore[method-assign]
    InstanceBackend.modify_instance_metadata_options = modify_instance_metadata_options  # type: ignore[method-assign]
