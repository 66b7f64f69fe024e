"""EC2 Auto Scaling fixes: load-balanced groups that ignore their load balancer's health checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from asr.actions import BulkRead, register

if TYPE_CHECKING:
    from asr.aws import Clients

ELB = "ELB"
# Always on, whatever HealthCheckType says: Auto Scaling never lists it among the others.
EC2 = "EC2"
# What an instance failing its load balancer's health check reads as: the state of a target
# (Application, Network and Gateway Load Balancers) and of a Classic Load Balancer's instance.
UNHEALTHY_TARGET = "unhealthy"
OUT_OF_SERVICE = "OutOfService"


def health_check_types(value: str | None) -> list[str]:
    """The health check types of a group (HealthCheckType is a comma-separated list), EC2 left out."""
    return [kind.strip() for kind in (value or EC2).split(",") if kind.strip() and kind.strip() != EC2]


def needs_elb_checks(state: dict[str, Any]) -> bool:
    """Whether a group (as ``state_of`` reads it) is load balanced and ignores its load balancer."""
    return state["LoadBalanced"] and ELB not in health_check_types(state["HealthCheckType"])


def failing_targets(elbv2: Any, target_group_arn: str) -> dict[str, str]:
    """The instances a target group finds unhealthy, each with why (its reason code)."""
    name = target_group_arn.split("/")[-2] if target_group_arn.count("/") >= 2 else target_group_arn
    found = elbv2.describe_target_health(TargetGroupArn=target_group_arn)["TargetHealthDescriptions"]
    return {
        item["Target"]["Id"]: f"unhealthy in target group {name}: {item['TargetHealth'].get('Reason', '?')}"
        for item in found
        if item["TargetHealth"]["State"] == UNHEALTHY_TARGET
    }


def failing_instances(elb: Any, load_balancer_name: str) -> dict[str, str]:
    """The instances a Classic Load Balancer has taken out of service, each with why."""
    found = elb.describe_instance_health(LoadBalancerName=load_balancer_name)["InstanceStates"]
    return {
        item["InstanceId"]: f"{OUT_OF_SERVICE} behind load balancer {load_balancer_name}"
        + (f": {item['Description']}" if item.get("Description") not in (None, "", "N/A") else "")
        for item in found
        if item["State"] == OUT_OF_SERVICE
    }


HealthRead = Callable[[Any, str], dict[str, str]]
# Where a group names its load balancers, the client that reads their health, and how.
HEALTH_READS: tuple[tuple[str, str, HealthRead], ...] = (
    ("TargetGroupARNs", "elbv2", failing_targets),
    ("LoadBalancerNames", "elb", failing_instances),
)


@register
class UseLoadBalancerHealthChecks(BulkRead):
    """Let a load-balanced Auto Scaling group replace instances its load balancer finds unhealthy.

    ``ELB`` joins the group's health check types (EBS or VPC Lattice checks stay). An
    instance that fails the load balancer's check is then replaced, where before it stayed
    in service as long as EC2 saw it running. A group without a grace period would check new
    instances before their software starts, and replace them again and again: such a group
    also gets ``grace_period_seconds``. A group with no load balancer or target group is
    outside the control: there is nothing to change.

    A group with instances its load balancers find unhealthy right now is refused, naming
    them: with ELB checks Auto Scaling would replace them at once, and their replacements
    too, again and again, while the check itself is wrong (a bad path or port).

        remediation:
          action: autoscaling.use-load-balancer-health-checks
          parameters: {grace_period_seconds: 300}
    """

    name = "autoscaling.use-load-balancer-health-checks"
    service = "autoscaling"
    permissions = (
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:UpdateAutoScalingGroup",
        "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:DescribeInstanceHealth",
    )
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
            "LoadBalancerNames": sorted(group.get("LoadBalancerNames") or []),
            "TargetGroupARNs": sorted(group.get("TargetGroupARNs") or []),
            "Instances": sorted(i["InstanceId"] for i in group.get("Instances") or []),
        }

    def complete(self, clients: Clients, states: dict[str, dict[str, Any] | Exception]) -> None:
        """Add, to each group about to get ELB checks, its instances its load balancers find
        unhealthy now (``Unhealthy``): one read per target group or Classic Load Balancer of
        the batch, however many groups share it. A group with no instance needs none."""
        from botocore.exceptions import ClientError

        from asr.pacing import throttled

        verdicts: dict[tuple[str, str], dict[str, str] | ClientError] = {}

        def verdict(service: str, read: HealthRead, balancer: str) -> dict[str, str]:
            if (service, balancer) not in verdicts:
                try:
                    verdicts[service, balancer] = read(clients[service], balancer)
                except ClientError as exc:
                    if throttled(exc.response):
                        raise
                    verdicts[service, balancer] = exc
            found = verdicts[service, balancer]
            if isinstance(found, ClientError):
                raise found
            return found

        for group, state in states.items():
            if not isinstance(state, dict) or not state["Instances"] or not needs_elb_checks(state):
                continue
            failing: dict[str, list[str]] = {}
            try:
                for field, service, read in HEALTH_READS:
                    for balancer in state[field]:
                        for instance, why in verdict(service, read, balancer).items():
                            failing.setdefault(instance, []).append(why)
            except ClientError as exc:  # this group cannot be judged; the others still can
                states[group] = exc
                continue
            state["Unhealthy"] = [
                f"{i} ({'; '.join(failing[i])})" for i in state["Instances"] if i in failing
            ]

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        if not needs_elb_checks(state):
            return {}
        if state.get("Unhealthy"):
            unhealthy = state["Unhealthy"]
            shown = "; ".join(unhealthy[:5]) + (f"; {len(unhealthy) - 5} more" if len(unhealthy) > 5 else "")
            raise ValueError(
                f"{len(unhealthy)} of the group's {len(state['Instances'])} instances fail its load "
                f"balancer's health check now ({shown}): with ELB health checks Auto Scaling would "
                "replace them, and their replacements too while the check fails; make the targets pass "
                "it (the check's path and port, the application), then fix the group, or exclude it"
            )
        kinds = health_check_types(state["HealthCheckType"])
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
