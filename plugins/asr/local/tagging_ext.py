"""The Resource Groups Tagging API answering for one Region's buckets, as AWS does.

AWS's ``GetResources`` returns the tagged resources "located in the specified Region": an S3
bucket is listed by the tagging API of the Region it was made in, and by no other. moto 5.2.5
lists every bucket of the account from every Region's endpoint, so a caller asking the wrong
Region for a bucket's tags (and so reading it as untagged) went unnoticed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from moto.resourcegroupstaggingapi.models import ResourceGroupsTaggingAPIBackend
from moto.s3.models import s3_backends
from moto.utilities.arns import parse_arn
from moto.utilities.utils import get_partition

_moto_resources = ResourceGroupsTaggingAPIBackend._get_resources_generator


def _bucket_region(account_id: str, region: str, arn: str) -> str | None:
    bucket = s3_backends[account_id][get_partition(region)].buckets.get(parse_arn(arn).resource_id)
    return bucket.region_name if bucket is not None else None


def _resources_of_its_region(
    self: ResourceGroupsTaggingAPIBackend, *args: Any, **kwargs: Any
) -> Iterator[Any]:
    for resource in _moto_resources(self, *args, **kwargs):
        if resource.resource_type == "s3:bucket" and _bucket_region(
            self.account_id, self.region_name, resource.arn
        ) not in (None, self.region_name):
            continue
        yield resource


def install() -> None:
    ResourceGroupsTaggingAPIBackend._get_resources_generator = _resources_of_its_region  # type: ignore[method-assign]
