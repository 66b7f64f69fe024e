"""ECS task definitions named by family as AWS resolves them, which moto 5.2.5 does loosely.

``DescribeTaskDefinition`` (and every call that takes a task definition) given a family
without a revision uses the family's latest ACTIVE revision, and a family with none answers
``ClientException`` "Unable to describe task definition.", as for a revision that does not
exist. moto took the highest revision whatever its status, so a family whose newest revision
was deregistered resolved to that INACTIVE revision. ECS.5 relies on it: Security Hub
evaluates only a family's latest ACTIVE revision, and its fix registers a new one.
"""

from __future__ import annotations

from moto.ecs.exceptions import TaskDefinitionNotFoundException
from moto.ecs.models import EC2ContainerServiceBackend, TaskDefinition

_moto_describe_task_definition = EC2ContainerServiceBackend.describe_task_definition


def describe_task_definition(self: EC2ContainerServiceBackend, task_definition_str: str) -> TaskDefinition:
    """A revision by ``family:revision`` or ARN as moto finds it; a bare family, by its latest
    ACTIVE revision."""
    name = task_definition_str.split("/")[-1]
    if ":" in name:
        return _moto_describe_task_definition(self, task_definition_str)
    revisions = self.task_definitions.get(name, {})
    active = [number for number, revision in revisions.items() if revision.status == "ACTIVE"]
    if not active:
        raise TaskDefinitionNotFoundException()
    return revisions[max(active)]


def install() -> None:
    EC2ContainerServiceBackend.describe_task_definition = describe_task_definition  # type: ignore[method-assign]
