"""ECS misconfigurations."""

from __future__ import annotations

import uuid

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder, service_role

TASK_ROLE = "asr-seed-ecs-task"
EXECUTION_ROLE = "asr-seed-ecs-task-execution"


@seeder("ECS.5")
def writable_task_definition(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A Fargate task definition whose containers may write to their root filesystem (one says
    so, one leaves it out), with roles, a volume and tags beside them the fix must copy."""
    iam = aws.client("iam", account, region)
    definition = aws.client("ecs", account, region).register_task_definition(
        family=f"asr-seed-writable-{n}-{uuid.uuid4().hex[:6]}",
        taskRoleArn=service_role(iam, TASK_ROLE, "ecs-tasks.amazonaws.com"),
        executionRoleArn=service_role(iam, EXECUTION_ROLE, "ecs-tasks.amazonaws.com"),
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        runtimePlatform={"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
        ephemeralStorage={"sizeInGiB": 30},
        volumes=[{"name": "scratch"}],
        containerDefinitions=[
            {
                "name": "app",
                "image": "public.ecr.aws/nginx/nginx:1.27",
                "readonlyRootFilesystem": False,
                "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
                "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/var/cache/nginx"}],
                "environment": [{"name": "STAGE", "value": "seeded"}],
            },
            {"name": "log-router", "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.0"},
        ],
        tags=[{"key": "team", "value": "web"}],
    )["taskDefinition"]
    return Seeded(
        control_id, account, region, "AwsEcsTaskDefinition", definition["taskDefinitionArn"], "HIGH"
    )
