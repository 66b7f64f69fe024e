"""A resource's own tags, looked up instead of searched for.

moto 5.2 answers "the tags of this security group" (or instance, subnet, VPC...) by
running ``DescribeTags`` with a ``resource-id`` filter: it turns the id into a pattern
and tries it against every tag of every resource in the account-region. Each resource a
describe call returns asks once, so a ``DescribeSecurityGroups`` of 250 groups in a
region of 1,000 tagged resources tried the pattern 375,000 times: half of that call's
CPU. AWS has no such cost.

The tags live in a dict keyed by resource id, and the pattern moto makes from an id
without wildcards matches that id alone, so the answer is read from the dict: the same
tags, in the same order, as the same dicts. An id with a wildcard character (no EC2 id
has one) still goes through moto's search.
"""

from __future__ import annotations

from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

WILDCARDS = frozenset("*?[")

_search = TaggedEC2Resource.get_tags


def get_tags(self: TaggedEC2Resource) -> list[dict[str, str]]:
    """moto's answer for this resource, from the tags dict (moto's ``TagBackend.tags``)."""
    resource_id = self.id  # type: ignore[attr-defined]
    if not resource_id or not isinstance(resource_id, str) or WILDCARDS.intersection(resource_id):
        return _search(self)
    tags = self.ec2_backend.tags.get(resource_id)  # type: ignore[attr-defined]
    if not tags:
        return []
    kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
    return [
        {"resource_id": resource_id, "key": key, "value": value, "resource_type": kind}
        for key, value in list(tags.items())
    ]


def install() -> None:
    TaggedEC2Resource.get_tags = get_tags  # type: ignore[method-assign]
