"""EC2 Auto Scaling fixes: load-balanced groups that ignore their load balancer's health checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asr.actions import BulkRead, register

if TYPE_CHECKING:
    from asr.aws import Clients

ELB = "ELB"
# Always on, whatever HealthCheckType says: Auto Scaling never lists it among the others.
EC2 = "EC2"


def health_check_types(value: str | None) -> list[str]:
    """The health check types of a group (HealthCheckType is a comma-separated list), EC2 left out."""
    return [kind.strip() for kind in (value or EC2).split(",") if kind.strip() and kind.strip() != EC2]


@register
class UseLoadBalancerHealthChecks(BulkRead):
    """Let a load-balanced Auto Scaling group replace instances its load balancer finds unhealthy.

    ``ELB`` joins the group's health check types (EBS or VPC Lattice checks stay). An
    instance that fails the load balancer's check is then replaced, where before it stayed
    in service as long as EC2 saw it running. A group without a grace period would check new
    instances before their software starts, and replace them again and again: such a group
    also gets ``grace_period_seconds``. A group with no load balancer or target group is
    outside the control: there is nothing to change.

        remediation:
          action: autoscaling.use-load-balancer-health-checks
          parameters: {grace_period_seconds: 300}
    """

    name = "autoscaling.use-load-balancer-health-checks"
    service = "autoscaling"
    permissions = ("autoscaling:DescribeAutoScalingGroups", "autoscaling:UpdateAutoScalingGroup")
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "grace_period_seconds": {"type": "integer", "minimum": 1, "maximum": 7200, "default": 300}
        },
    }
    summary = "added the load balancer's health checks (ELB) to the Auto Scaling group"
    bulk_size = 50  # DescribeAutoScalingGroups takes at most 50 names

    def describe(self, clients: Clients, resource_ids: list[str]) -> list[dict[str, Any]]:
        pages = clients.autoscaling.get_paginator("describe_auto_scaling_groups").paginate(
            AutoScalingGroupNames=resource_ids
        )
        return [group for page in pages for group in page["AutoScalingGroups"]]

    def item_id(self, item: dict[str, Any]) -> str:
        return item["AutoScalingGroupName"]

    def state_of(self, group: dict[str, Any]) -> dict[str, Any]:
        return {
            "HealthCheckType": group.get("HealthCheckType") or EC2,
            "HealthCheckGracePeriod": group.get("HealthCheckGracePeriod") or 0,
            "LoadBalanced": bool(group.get("LoadBalancerNames") or group.get("TargetGroupARNs")),
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        kinds = health_check_types(state["HealthCheckType"])
        if not state["LoadBalanced"] or ELB in kinds:
            return {}
        plan: dict[str, Any] = {"HealthCheckType": ",".join([*kinds, ELB])}
        if not state["HealthCheckGracePeriod"]:
            plan["HealthCheckGracePeriod"] = self.params["grace_period_seconds"]
        return plan

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.autoscaling.update_auto_scaling_group(AutoScalingGroupName=resource_id, **plan)

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Only what the fix set: a grace period it did not set, changed since, stays."""
        clients.autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=resource_id, **{key: before[key] for key in self.plan(before)}
        )
