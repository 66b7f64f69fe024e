"""DynamoDB table tags as AWS changes them, which moto 5.2.5 does loosely.

- ``TagResource`` with a key the table has replaces that tag's value, as AWS documents ("the
  existing tag value will be updated to the new value"); moto added a second tag of the same
  key, so a table listed two values for it.
- ``TagResource`` and ``UntagResource`` on an ARN that names no table of the account and Region
  answer ``ResourceNotFoundException``, as AWS documents (moto answered success, having
  changed nothing, where ``ListTagsOfResource`` already refused).
"""

from __future__ import annotations

from moto.dynamodb.exceptions import ResourceNotFoundException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table


def _table(backend: DynamoDBBackend, arn: str) -> Table:
    for table in backend.tables.values():
        if table.table_arn == arn:
            return table
    raise ResourceNotFoundException


def tag_resource(self: DynamoDBBackend, arn: str, tags: dict[str, str]) -> None:
    table = _table(self, arn)
    kept = [tag for tag in table.tags if tag["Key"] not in tags]
    table.tags = kept + [{"Key": key, "Value": value} for key, value in tags.items()]


def untag_resource(self: DynamoDBBackend, arn: str, tag_keys: list[str]) -> None:
    table = _table(self, arn)
    table.tags = [tag for tag in table.tags if tag["Key"] not in tag_keys]


def install() -> None:
    DynamoDBBackend.tag_resource = tag_resource  # type: ignore[method-assign]
    DynamoDBBackend.untag_resource = untag_resource  # type: ignore[method-assign]
