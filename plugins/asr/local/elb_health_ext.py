"""Load balancer health checks that fail, which moto cannot run.

moto has no application to probe, so every registered running instance reads healthy in a
target group and ``InService`` behind a Classic Load Balancer. A fix that must not switch an
Auto Scaling group to ELB health checks while its instances fail them needs instances that
do: an EC2 instance tagged ``asr-local:health`` = ``unhealthy`` (or ``unhealthy:<reason>``,
such as ``unhealthy:Target.Timeout``) reads ``unhealthy`` in each target group it is
registered with (reason ``Target.FailedHealthChecks`` unless named), and ``OutOfService``
behind each Classic Load Balancer, as AWS reports an instance failing the check.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.models import EC2Backend, ec2_backends
from moto.elb.models import ELBBackend
from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup

HEALTH_TAG = "asr-local:health"
UNHEALTHY = "unhealthy"
DEFAULT_REASON = "Target.FailedHealthChecks"
# How AWS describes each reason an instance fails a target group's health check.
DESCRIPTIONS = {
    "Target.FailedHealthChecks": "Health checks failed",
    "Target.Timeout": "Request timed out",
    "Target.ResponseCodeMismatch": "Health checks failed with these codes: [502]",
}


def failing_reason(ec2_backend: EC2Backend, instance_id: str) -> str | None:
    """The reason code an instance tagged to fail its health checks fails them with, else None."""
    tag = ec2_backend.tags.get(instance_id, {}).get(HEALTH_TAG, "")
    state, _, reason = tag.partition(":")
    return (reason or DEFAULT_REASON) if state == UNHEALTHY else None


def install() -> None:
    health_for = FakeTargetGroup.health_for

    def tagged_health(self: FakeTargetGroup, target: dict[str, Any], ec2_backend: EC2Backend) -> Any:
        status = health_for(self, target, ec2_backend)
        reason = failing_reason(ec2_backend, target["Id"]) if status.status == "healthy" else None
        if reason is None:
            return status
        return FakeHealthStatus(
            status.instance_id,
            status.port,
            status.health_check_port,
            UNHEALTHY,
            reason,
            DESCRIPTIONS.get(reason, "Health checks failed"),
        )

    FakeTargetGroup.health_for = tagged_health  # type: ignore[method-assign]

    describe_instance_health = ELBBackend.describe_instance_health

    def tagged_instance_health(self: ELBBackend, lb_name: str, instances: list[dict[str, str]]) -> Any:
        found = describe_instance_health(self, lb_name, instances)
        ec2_backend = ec2_backends[self.account_id][self.region_name]
        for item in found:
            if item["State"] == "InService" and failing_reason(ec2_backend, item["InstanceId"]):
                item["State"] = "OutOfService"
        return found

    ELBBackend.describe_instance_health = tagged_instance_health  # type: ignore[method-assign]
