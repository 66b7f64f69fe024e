"""The stand-in's ECS extension: a family named without a revision is its latest ACTIVE revision."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

CONTAINERS = [{"name": "app", "image": "public.ecr.aws/nginx/nginx:1.27", "memory": 128}]


@pytest.fixture
def ecs(clean_aws: str) -> Any:
    return boto3.client("ecs", endpoint_url=clean_aws, region_name="eu-west-1")


def register(ecs: Any, image: str) -> str:
    containers = [{**CONTAINERS[0], "image": image}]
    answer = ecs.register_task_definition(
        family="web", containerDefinitions=containers, tags=[{"key": "team", "value": "web"}]
    )
    return str(answer["taskDefinition"]["taskDefinitionArn"])


def latest(ecs: Any) -> tuple[str, list[dict[str, str]]]:
    answer = ecs.describe_task_definition(taskDefinition="web", include=["TAGS"])
    return answer["taskDefinition"]["taskDefinitionArn"], answer["tags"]


def test_a_family_is_its_latest_active_revision(ecs: Any) -> None:
    first, second, third = (register(ecs, f"nginx:1.{minor}") for minor in (26, 27, 28))
    assert latest(ecs) == (third, [{"key": "team", "value": "web"}])
    ecs.deregister_task_definition(taskDefinition=third)
    assert latest(ecs)[0] == second
    ecs.deregister_task_definition(taskDefinition=first)
    assert latest(ecs)[0] == second, "an older revision deregistered changes nothing"
    described = ecs.describe_task_definition(taskDefinition=third)["taskDefinition"]
    assert (described["revision"], described["status"]) == (3, "INACTIVE"), "still found by revision"
    assert register(ecs, "nginx:1.29").endswith(":4"), "revision numbers are never reused"
    assert latest(ecs)[0].endswith(":4")


def test_a_family_with_no_active_revision_is_not_found(ecs: Any) -> None:
    ecs.deregister_task_definition(taskDefinition=register(ecs, "nginx:1.27"))
    for name in ("web", "gone"):
        with pytest.raises(ClientError) as error:
            ecs.describe_task_definition(taskDefinition=name)
        assert error.value.response["Error"] == {
            "Code": "ClientException",
            "Message": "Unable to describe task definition.",
        }
