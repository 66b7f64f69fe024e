"""DynamoDB fixes: table deletion protection, and provisioned capacity that scales with demand."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from asr.actions import Action, answered, register, with_new_role

if TYPE_CHECKING:
    from asr.aws import Clients


@register
class EnableTableDeletionProtection(Action):
    """Turn on deletion protection for a DynamoDB table, so that deleting it needs a deliberate change first.

    Only ``DeletionProtectionEnabled`` is sent; capacity, streams and indexes stay as
    they are. A table that is being updated refuses the call, and is reported with
    AWS's reason.

        remediation:
          action: dynamodb.enable-deletion-protection
    """

    name = "dynamodb.enable-deletion-protection"
    service = "dynamodb"
    permissions = ("dynamodb:DescribeTable", "dynamodb:UpdateTable")
    summary = "enabled deletion protection on the table"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        table = clients.dynamodb.describe_table(TableName=resource_id)["Table"]
        return {"DeletionProtectionEnabled": bool(table.get("DeletionProtectionEnabled"))}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["DeletionProtectionEnabled"] else {"DeletionProtectionEnabled": True}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.dynamodb.update_table(TableName=resource_id, DeletionProtectionEnabled=True)

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        clients.dynamodb.update_table(
            TableName=resource_id, DeletionProtectionEnabled=before["DeletionProtectionEnabled"]
        )


# Application Auto Scaling names DynamoDB's scalable targets "table/<table>" and
# "table/<table>/index/<index>"; each has a read and a write dimension.
NAMESPACE = "dynamodb"
KINDS = ("Read", "Write")
OWN_SCALING = "asr keeps the auto scaling a table has, change it in Application Auto Scaling"


def _key(resource: str, kind: str) -> str:
    """The state key of one capacity dimension, e.g. ``table/orders/index/by-day:ReadCapacityUnits``."""
    return f"{resource}:{kind}CapacityUnits"


def _kind(key: str) -> str:
    return "read" if key.endswith(":ReadCapacityUnits") else "write"


def _scalable(key: str) -> tuple[str, str]:
    """The resource id and scalable dimension Application Auto Scaling knows a dimension by."""
    resource, units = key.rsplit(":", 1)
    level = "index" if "/index/" in resource else "table"
    return resource, f"{NAMESPACE}:{level}:{units}"


def _policy_name(key: str) -> str:
    """The name of the target-tracking policy the fix adds (one per dimension, so one name each)."""
    return f"asr-{_metric(key)}"


def _metric(key: str) -> str:
    return f"DynamoDB{_kind(key).capitalize()}CapacityUtilization"


def _described(key: str) -> str:
    """``the read capacity of table orders``, ``the write capacity of index by-day``."""
    resource = key.rsplit(":", 1)[0].split("/")
    where = f"index {resource[3]}" if len(resource) > 2 else f"table {resource[1]}"
    return f"the {_kind(key)} capacity of {where}"


def _scaling(autoscaling: Any, resources: list[str]) -> dict[str, dict[str, Any]]:
    """How Application Auto Scaling scales each dimension of these resources that it scales: the
    range and the target-tracking policies (name -> target utilization), by state key."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(resources), 50):  # DescribeScalableTargets takes 50 ids a call
        chunk = resources[start : start + 50]
        pages = autoscaling.get_paginator("describe_scalable_targets").paginate(
            ServiceNamespace=NAMESPACE, ResourceIds=chunk
        )
        for target in (t for page in pages for t in page["ScalableTargets"]):
            if target["ResourceId"] in chunk:
                key = f"{target['ResourceId']}:{target['ScalableDimension'].rsplit(':', 1)[1]}"
                found[key] = {
                    "MinCapacity": target["MinCapacity"],
                    "MaxCapacity": target["MaxCapacity"],
                    "Policies": {},
                }
    for resource in sorted({key.rsplit(":", 1)[0] for key in found}):
        pages = autoscaling.get_paginator("describe_scaling_policies").paginate(
            ServiceNamespace=NAMESPACE, ResourceId=resource
        )
        for policy in (p for page in pages for p in page["ScalingPolicies"]):
            key = f"{policy['ResourceId']}:{policy['ScalableDimension'].rsplit(':', 1)[1]}"
            if policy["ResourceId"] == resource and key in found:
                tracking = policy.get("TargetTrackingScalingPolicyConfiguration") or {}
                found[key]["Policies"][policy["PolicyName"]] = tracking.get("TargetValue")
    return found


def _track(autoscaling: Any, key: str, target: float) -> None:
    """Give one dimension the fix's target-tracking policy."""
    resource, dimension = _scalable(key)
    autoscaling.put_scaling_policy(
        PolicyName=_policy_name(key),
        ServiceNamespace=NAMESPACE,
        ResourceId=resource,
        ScalableDimension=dimension,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": target,
            "PredefinedMetricSpecification": {"PredefinedMetricType": _metric(key)},
        },
    )


@register
class EnableAutoScaling(Action):
    """Let a provisioned DynamoDB table's capacity follow its load: Application Auto Scaling
    tracks a utilization target for the read and the write capacity of the table and of each
    global secondary index.

    A table in on-demand mode already scales and is left alone. Each dimension not scaled yet
    gets a scalable target from its capacity now (never less, so no throughput is lost; or the
    control's ``min_read_capacity`` / ``min_write_capacity`` when higher) up to
    ``max_capacity_factor`` times that, but never above ``max_capacity``: auto scaling adds
    cost as it adds capacity, and the ceiling bounds it. A dimension already provisioned at the
    ceiling is refused, as scaling could not grow it. The target-tracking policy aims at
    ``target_utilization`` percent (or the control's ``read_target_utilization`` /
    ``write_target_utilization``).

    Scaling someone already set up is kept as it is: a dimension with a target and a policy
    complies, and a target without a policy only gets the policy. When such scaling falls
    short of the control's parameters (a lower minimum, another target), the table is refused
    with what differs, rather than changed behind its owner. A global table's replicas share
    their write scaling, which this one Region's fix cannot set: it is refused too.

    Application Auto Scaling makes its service-linked role
    AWSServiceRoleForApplicationAutoScaling_DynamoDBTable on first use, and checks that the
    caller may itself change the table and its CloudWatch alarms. A rollback removes only the
    policies and targets the fix made; the capacity stays where scaling last set it (up to
    the ceiling), as DynamoDB allows only a few decreases a day: lower it by hand if it grew.

        remediation:
          action: dynamodb.enable-auto-scaling
          parameters: {target_utilization: 70, max_capacity_factor: 4, max_capacity: 10000}
    """

    name = "dynamodb.enable-auto-scaling"
    service = "application-autoscaling"
    permissions = (
        "dynamodb:DescribeTable",
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:DescribeScalingPolicies",
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:PutScalingPolicy",
        # Not called by asr: Application Auto Scaling checks that its caller holds what the
        # service-linked role does (change the table, manage the policy's alarms), and makes
        # that role on first use.
        "dynamodb:UpdateTable",
        "cloudwatch:PutMetricAlarm",
        "cloudwatch:DescribeAlarms",
        "iam:CreateServiceLinkedRole",
    )
    revert_permissions = (
        "application-autoscaling:DeleteScalingPolicy",
        "application-autoscaling:DeregisterScalableTarget",
        "cloudwatch:DeleteAlarms",
    )
    summary = (
        "made the table's provisioned capacity scale with demand (Application Auto Scaling, "
        "target tracking, up to {max_capacity_factor}x its capacity and {max_capacity} units)"
    )
    # RegisterScalableTarget and PutScalingPolicy are eventually consistent.
    propagation_seconds = 15.0
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "target_utilization": {"type": "integer", "minimum": 20, "maximum": 90, "default": 70},
            "read_target_utilization": {"type": "integer", "minimum": 20, "maximum": 90},
            "write_target_utilization": {"type": "integer", "minimum": 20, "maximum": 90},
            "min_read_capacity": {"type": "integer", "minimum": 1, "maximum": 40000},
            "min_write_capacity": {"type": "integer", "minimum": 1, "maximum": 40000},
            "max_capacity_factor": {"type": "integer", "minimum": 2, "maximum": 100, "default": 4},
            "max_capacity": {"type": "integer", "minimum": 2, "default": 10000},
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        table = clients.dynamodb.describe_table(TableName=resource_id)["Table"]
        # Tables made before on-demand mode existed have no BillingModeSummary: provisioned.
        mode = (table.get("BillingModeSummary") or {}).get("BillingMode") or "PROVISIONED"
        state: dict[str, Any] = {
            "BillingMode": mode,
            "Replicas": sorted(replica["RegionName"] for replica in table.get("Replicas") or []),
        }
        if mode != "PROVISIONED":
            return state
        name = table["TableName"]
        throughputs = {f"table/{name}": table.get("ProvisionedThroughput") or {}}
        for index in table.get("GlobalSecondaryIndexes") or []:
            if index.get("IndexStatus") != "DELETING":
                throughputs[f"table/{name}/index/{index['IndexName']}"] = (
                    index.get("ProvisionedThroughput") or {}
                )
        capacity = {
            _key(resource, kind): int(throughput.get(f"{kind}CapacityUnits") or 0)
            for resource, throughput in throughputs.items()
            for kind in KINDS
        }
        scaling = _scaling(clients["application-autoscaling"], list(throughputs))
        # The capacity auto scaling changes is kept apart from the scaling the fix sets, so
        # that a rollback does not see the table's own scaling as a change made since.
        return {**state, "ProvisionedCapacity": capacity, **{key: scaling.get(key) for key in capacity}}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        if state["BillingMode"] != "PROVISIONED":
            return {}  # on-demand capacity follows the load by itself
        plan: dict[str, Any] = {}
        refused: list[str] = []
        for key, units in state["ProvisionedCapacity"].items():
            kind, scaling = _kind(key), state[key]
            least = self.params.get(f"min_{kind}_capacity")
            target = self.params.get(f"{kind}_target_utilization")
            policy = {_policy_name(key): float(target or self.params["target_utilization"])}
            if scaling is None:
                low = max(units, least or 1)
                high = min(low * self.params["max_capacity_factor"], self.params["max_capacity"])
                if high > low:
                    plan[key] = {"MinCapacity": low, "MaxCapacity": high, "Policies": policy}
                else:
                    refused.append(
                        f"{_described(key)} would scale from {low} units, not below max_capacity "
                        f"{self.params['max_capacity']}: raise max_capacity to give it room to grow"
                    )
            elif least and scaling["MinCapacity"] < least:
                refused.append(
                    f"{_described(key)} already scales with MinCapacity {scaling['MinCapacity']}, "
                    f"below min_{kind}_capacity {least}: {OWN_SCALING}"
                )
            elif not scaling["Policies"]:
                plan[key] = {**scaling, "Policies": policy}
            elif target and target not in scaling["Policies"].values():
                tracked = ", ".join(f"{v:g}%" for v in sorted(v for v in scaling["Policies"].values() if v))
                refused.append(
                    f"{_described(key)} already tracks {tracked or 'no'} utilization, not "
                    f"{kind}_target_utilization {target}%: {OWN_SCALING}"
                )
        if refused:
            raise ValueError("; ".join(refused))
        if plan and state["Replicas"]:
            raise ValueError(
                f"the table is a global table (replicas in {', '.join(state['Replicas'])}): its replicas "
                "share their write scaling, which is set for all of them at once "
                "(UpdateTableReplicaAutoScaling), not by a fix in one Region"
            )
        return plan

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        autoscaling = clients["application-autoscaling"]
        registered = False
        for key, wanted in plan.items():
            if state[key] is None:
                resource, dimension = _scalable(key)
                autoscaling.register_scalable_target(
                    ServiceNamespace=NAMESPACE,
                    ResourceId=resource,
                    ScalableDimension=dimension,
                    MinCapacity=wanted["MinCapacity"],
                    MaxCapacity=wanted["MaxCapacity"],
                )
                registered = True
        for key, wanted in plan.items():
            # A target registered just now may not be found at once: waited for as a new role is.
            track = partial(_track, autoscaling, key, wanted["Policies"][_policy_name(key)])
            with_new_role(track, registered, answered("ObjectNotFoundException"))

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Delete the policies the fix added and deregister the targets it registered, reading
        first so that a revert retried after a throttled call does what is left."""
        autoscaling = clients["application-autoscaling"]
        now = self.read(clients, resource_id)
        for key in self.plan(before):
            scaling = now.get(key)
            if not scaling:
                continue
            resource, dimension = _scalable(key)
            where = {"ServiceNamespace": NAMESPACE, "ResourceId": resource, "ScalableDimension": dimension}
            if _policy_name(key) in scaling["Policies"]:
                autoscaling.delete_scaling_policy(PolicyName=_policy_name(key), **where)
            if before[key] is None:
                autoscaling.deregister_scalable_target(**where)
