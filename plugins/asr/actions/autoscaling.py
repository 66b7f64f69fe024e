"""EC2 Auto Scaling fixes: load-balanced groups that ignore their load balancer's health checks, and
launch configurations that let instances use IMDSv1 or give them public IP addresses."""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asr.actions import (
    Action,
    BulkRead,
    ChangedMeanwhile,
    ChangeNotMade,
    NotReversible,
    answered,
    register,
)

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


# --- Launch configurations (AutoScaling.3, Autoscaling.5) ---------------------------------------

NAME_MAX = 255  # characters of a launch configuration's name
NAMES_PER_DESCRIBE = 50  # DescribeLaunchConfigurations' LaunchConfigurationNames
GROUPS_PER_PAGE = 100  # DescribeAutoScalingGroups' MaxRecords
# CreateLaunchConfiguration's answer in accounts made on or after 1 October 2024, which may make
# none ("The Launch Configuration creation operation is not available in your account").
NOT_AVAILABLE = "UnsupportedOperation"
# What an instance gets for the metadata options its launch configuration leaves out
# (InstanceMetadataOptions in the API reference).
METADATA_DEFAULTS = {"HttpTokens": "optional", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled"}
# CreateLaunchConfiguration members not copied as read: InstanceId is never described (a
# configuration made from an instance reads as what it took), UserData is read back decoded.
NOT_COPIED = ("InstanceId", "UserData")
USER_DATA_DIGEST = "UserDataSha256"


def _metadata(configuration: dict[str, Any]) -> dict[str, Any]:
    return dict(configuration.get("MetadataOptions") or {})


@dataclass(frozen=True)
class LaunchSetting:
    """What one control wants of a launch configuration, and what its copy gets for it."""

    suffix: str  # the copy is named after the original, with this at the end
    wanted: str  # the copy's setting, in words
    kept: str  # what instances launched from the original keep, in words
    complies: Callable[[dict[str, Any]], bool]
    made: Callable[[dict[str, Any]], dict[str, Any]]  # the members the copy gets, from the original's


LAUNCH_SETTINGS = {
    # AutoScaling.3 fails a configuration without metadata options, or with HttpTokens optional
    # (AWS Config's autoscaling-launchconfig-requires-imdsv2). The endpoint and hop limit stay.
    "imdsv2-required": LaunchSetting(
        suffix="-imdsv2",
        wanted="IMDSv2 required (HttpTokens required)",
        kept="IMDSv1",
        complies=lambda c: _metadata(c).get("HttpTokens") == "required",
        made=lambda c: {"MetadataOptions": {**METADATA_DEFAULTS, **_metadata(c), "HttpTokens": "required"}},
    ),
    # Autoscaling.5 (so Security Hub spells it) fails AssociatePublicIpAddress true only
    # (autoscaling-launch-config-public-ip-disabled): left out, the subnet decides, and it passes.
    "no-public-ip": LaunchSetting(
        suffix="-no-public-ip",
        wanted="no public IPv4 address (AssociatePublicIpAddress false)",
        kept="their public IPv4 addresses",
        complies=lambda c: c.get("AssociatePublicIpAddress") is not True,
        made=lambda c: {"AssociatePublicIpAddress": False},
    ),
}


def launch_configurations(autoscaling: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    """The launch configurations of these names that exist, as DescribeLaunchConfigurations answers,
    by name (50 names a call)."""
    names = list(dict.fromkeys(names))
    paginator = autoscaling.get_paginator("describe_launch_configurations")
    return {
        found["LaunchConfigurationName"]: found
        for start in range(0, len(names), NAMES_PER_DESCRIBE)
        for page in paginator.paginate(LaunchConfigurationNames=names[start : start + NAMES_PER_DESCRIBE])
        for found in page["LaunchConfigurations"]
    }


def users(autoscaling: Any) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The groups that name each launch configuration, and the instances launched from each
    (``id (group)``), sorted. DescribeAutoScalingGroups filters by tags only: every group of the
    Region is read, once for all the launch configurations of a read."""
    groups: dict[str, list[str]] = defaultdict(list)
    launched: dict[str, list[str]] = defaultdict(list)
    pages = autoscaling.get_paginator("describe_auto_scaling_groups").paginate(
        PaginationConfig={"PageSize": GROUPS_PER_PAGE}
    )
    for group in (group for page in pages for group in page["AutoScalingGroups"]):
        name = group["AutoScalingGroupName"]
        if group.get("LaunchConfigurationName"):
            groups[group["LaunchConfigurationName"]].append(name)
        for instance in group.get("Instances") or ():
            if instance.get("LaunchConfigurationName"):
                launched[instance["LaunchConfigurationName"]].append(f"{instance['InstanceId']} ({name})")
    return {k: sorted(v) for k, v in groups.items()}, {k: sorted(v) for k, v in launched.items()}


def user_data(found: dict[str, Any]) -> bytes:
    """A launch configuration's user data, as its instances get it. DescribeLaunchConfigurations
    answers the base64 text it was given (lines may be wrapped), and botocore base64-encodes
    CreateLaunchConfiguration's UserData itself: sent back as read, it would reach instances
    encoded twice."""
    try:
        return base64.b64decode("".join((found.get("UserData") or "").split()), validate=True)
    except binascii.Error:
        raise ValueError(
            f"the user data of {found['LaunchConfigurationName']} reads as no base64 text, which its "
            "copy could not be sent: replace it yourself"
        ) from None


def configuration(autoscaling: Any, found: dict[str, Any]) -> dict[str, Any]:
    """What a launch configuration is made of: each member CreateLaunchConfiguration takes
    (botocore's model) that it has, as described (AWS answers "" or [] for some it has not, and
    refuses "" for them), and a digest of its user data. Not the user data itself: it often holds
    secrets, and what is read goes to the audit journal and the run's report."""
    members = autoscaling.meta.service_model.operation_model("CreateLaunchConfiguration").input_shape.members
    made = {
        key: copy.deepcopy(value)
        for key, value in found.items()
        if key in members and key not in NOT_COPIED and value not in ("", [], {}, None)
    }
    data = user_data(found)
    if data:
        made[USER_DATA_DIGEST] = hashlib.sha256(data).hexdigest()
    return made


def creation(made: dict[str, Any], data: bytes) -> dict[str, Any]:
    """CreateLaunchConfiguration's parameters for a configuration as ``configuration`` describes
    it, with its user data."""
    sent = {key: value for key, value in made.items() if key != USER_DATA_DIGEST}
    return {**sent, "UserData": data} if data else sent


def _differing(one: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """The members two launch configurations (as ``configuration`` describes them) differ in."""
    return sorted(key for key in {*one, *other} if one.get(key) != other.get(key))


@register
class ReplaceLaunchConfiguration(Action):
    """Replace a launch configuration with a copy that differs in one setting only, and move its
    Auto Scaling groups to the copy.

    A launch configuration cannot be changed. The copy gets every attribute CreateLaunchConfiguration
    takes, as read (user data byte for byte, block devices, instance profile, metadata options...),
    and the setting the playbook names: ``imdsv2-required`` (AutoScaling.3: HttpTokens required, the
    endpoint and hop limit kept) or ``no-public-ip`` (Autoscaling.5: AssociatePublicIpAddress false).
    It is named after the original, ``<name>-imdsv2`` or ``<name>-no-public-ip`` (a name past 255
    characters is cut and given a digest of the whole), so a later run finds it rather than make
    another. Every group that names the original then names the copy, and the original is deleted:
    the finding is about it, and stays FAILED while it exists. One used by no group is replaced too,
    and whoever meant to use it finds the copy.

    Instances already running keep what they were launched with, until they are replaced (an
    instance refresh of their groups: the owners' call, once instances with the new setting work);
    the fix says which. A run that stopped part way (the copy made, some groups moved) is taken up
    where it stopped. Refused, changing nothing: a name the copy would take that holds anything but
    this copy; user data that is no base64 text; an account that may make no launch configuration
    (AWS stopped them for accounts made on or after 1 October 2024: move the groups to a launch
    template instead). A group that starts
    using the original while the fix runs keeps it from being deleted: the fix fails, and its next run
    moves that group too.

    Reverting makes the original again under its name (another ARN), its user data taken from the
    copy, moves the groups back and deletes the copy. ASR keeps no user data, which may hold secrets:
    a copy deleted since leaves nothing to make the original from.

        remediation:
          action: autoscaling.replace-launch-configuration
          parameters: {setting: imdsv2-required}
    """

    name = "autoscaling.replace-launch-configuration"
    service = "autoscaling"
    permissions = (
        "autoscaling:DescribeLaunchConfigurations",
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:CreateLaunchConfiguration",
        "autoscaling:UpdateAutoScalingGroup",
        "autoscaling:DeleteLaunchConfiguration",
        # What CreateLaunchConfiguration asks its caller for besides ("Amazon EC2 Auto Scaling API
        # permissions"): it checks the image, key pair, security groups... the copy names, and
        # PassRole on the role of the instance profile it names.
        "ec2:DescribeImages",
        "ec2:DescribeInstances",
        "ec2:DescribeInstanceAttribute",
        "ec2:DescribeKeyPairs",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSpotInstanceRequests",
        "ec2:DescribeVpcClassicLink",
        "iam:PassRole",
    )
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["setting"],
        "properties": {"setting": {"enum": sorted(LAUNCH_SETTINGS)}},
    }
    summary = (
        "replaced the launch configuration by a copy named after it ({setting}), moved its Auto "
        "Scaling groups to the copy and deleted it; running instances keep the old setting until replaced"
    )

    @property
    def setting(self) -> LaunchSetting:
        return LAUNCH_SETTINGS[self.params["setting"]]

    def copy_name(self, name: str) -> str:
        """The copy's name, the same every run: a later run finds the copy an earlier one made."""
        suffix = self.setting.suffix
        if len(name) + len(suffix) <= NAME_MAX:
            return f"{name}{suffix}"
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        return f"{name[: NAME_MAX - len(suffix) - len(digest) - 1]}-{digest}{suffix}"

    def copy_of(self, original: dict[str, Any]) -> dict[str, Any]:
        """The copy a fix makes of ``original`` (as ``configuration`` describes it)."""
        name = self.copy_name(original["LaunchConfigurationName"])
        return {**original, **self.setting.made(original), "LaunchConfigurationName": name}

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        state = self.read_many(clients, [resource_id])[resource_id]
        if isinstance(state, Exception):
            raise state
        return state

    def read_many(self, clients: Clients, resource_ids: list[str]) -> dict[str, dict[str, Any] | Exception]:
        """Each launch configuration (``LaunchConfiguration``, as ``configuration`` describes it; None
        once deleted), its ``Copy``, the groups naming either (``Groups``, ``CopyGroups``) and the
        instances ``LaunchedFromIt``: one DescribeLaunchConfigurations per 25 of them, and one
        listing of the Region's groups for all."""
        autoscaling = clients.autoscaling
        copies = {name: self.copy_name(name) for name in resource_ids}
        found = launch_configurations(autoscaling, [*resource_ids, *copies.values()])
        groups, launched = users(autoscaling)
        states: dict[str, dict[str, Any] | Exception] = {}
        for name in resource_ids:
            try:
                original, made = (found.get(n) for n in (name, copies[name]))
                state = {
                    "LaunchConfiguration": configuration(autoscaling, original) if original else None,
                    "Groups": groups.get(name, []),
                    "Copy": configuration(autoscaling, made) if made else None,
                    "CopyGroups": groups.get(copies[name], []),
                    "LaunchedFromIt": launched.get(name, []),
                }
                if original is None and not (state["Copy"] and self.setting.complies(state["Copy"])):
                    raise LookupError(f"launch configuration {name} was not found")
                states[name] = state
            except Exception as exc:  # this one cannot be fixed; the others still can
                states[name] = exc
        return states

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        """Nothing once the original is gone (the read found its copy) or complies."""
        original = state["LaunchConfiguration"]
        if original is None or self.setting.complies(original):
            return {}
        wanted, found = self.copy_of(original), state["Copy"]
        if found is not None and found != wanted:
            differs = _differing(found, wanted)
            used = f", groups {', '.join(state['CopyGroups'])} use it," if state["CopyGroups"] else ""
            raise ValueError(
                f"a launch configuration {found['LaunchConfigurationName']} exists{used} and is not "
                f"{original['LaunchConfigurationName']} with {self.setting.wanted} (it differs in "
                f"{', '.join(differs)}): the fix makes its copy under that name; delete it once no group "
                "uses it and run the fix again, or replace the launch configuration yourself"
            )
        return {
            "LaunchConfiguration": None,
            "Groups": [],
            "Copy": wanted,
            "CopyGroups": sorted({*state["Groups"], *state["CopyGroups"]}),
        }

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        """Make the copy (unless a run that stopped part way made it), move the groups, delete the
        original: Auto Scaling refuses that while a group names it (ResourceInUse)."""
        autoscaling, target = clients.autoscaling, plan["Copy"]["LaunchConfigurationName"]
        if state["Copy"] is None:
            self._make_copy(autoscaling, resource_id, state, plan["Copy"])
        for group in state["Groups"]:
            autoscaling.update_auto_scaling_group(AutoScalingGroupName=group, LaunchConfigurationName=target)
        try:
            autoscaling.delete_launch_configuration(LaunchConfigurationName=resource_id)
        except autoscaling.exceptions.ResourceInUseFault as exc:
            raise ValueError(
                f"a group started using {resource_id} after it was read "
                f"({exc.response['Error'].get('Message')}): the groups read use {target} now, and "
                f"{resource_id} is kept; run the fix again to move that group too"
            ) from None

    def _make_copy(self, autoscaling: Any, name: str, state: dict[str, Any], wanted: dict[str, Any]) -> None:
        """Create the copy with the original's user data (read again: the state keeps its digest),
        then read it back: a copy that reads otherwise than sent is deleted, nothing else changed."""
        target = wanted["LaunchConfigurationName"]
        found = launch_configurations(autoscaling, [name]).get(name)
        if found is None or configuration(autoscaling, found) != state["LaunchConfiguration"]:
            raise ChangedMeanwhile(f"{name} was deleted, or made again, since it was read")
        try:
            autoscaling.create_launch_configuration(**creation(wanted, user_data(found)))
        except autoscaling.exceptions.AlreadyExistsFault:
            raise ChangedMeanwhile(
                f"a launch configuration {target} was made since {name} was read"
            ) from None
        except autoscaling.exceptions.ClientError as exc:
            if not answered(NOT_AVAILABLE)(exc):
                raise
            groups = (
                f"the groups using it ({', '.join(state['Groups'])})"
                if state["Groups"]
                else "what would use it"
            )
            raise ValueError(
                f"Auto Scaling makes no launch configuration in this account ({exc}): AWS stopped them "
                f"for accounts made on or after 1 October 2024. Nothing was changed. Move {groups} to a "
                f"launch template with {self.setting.wanted} (the EC2 console copies a launch configuration "
                f"to a launch template), then delete {name}"
            ) from None
        made = launch_configurations(autoscaling, [target]).get(target)
        if made is None:
            raise ChangeNotMade(f"the copy {target} is not listed yet: a later run takes it from there")
        got = configuration(autoscaling, made)
        if got != wanted:
            autoscaling.delete_launch_configuration(LaunchConfigurationName=target)
            differs = _differing(got, wanted)
            raise ValueError(
                f"the copy {target} read back otherwise than it was made (in {', '.join(differs)}): it was "
                f"deleted, and {name} and its groups left as they were"
            )

    def caveat(self, state: dict[str, Any]) -> str | None:
        running = state["LaunchedFromIt"]
        if not running:
            return None
        shown = ", ".join(running[:5]) + (f" and {len(running) - 5} more" if len(running) > 5 else "")
        return (
            f"{len(running)} running instance(s) launched from the replaced launch configuration keep "
            f"{self.setting.kept} until replaced ({shown}): refresh their groups' instances once instances "
            f"with {self.setting.wanted} work"
        )

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Make the original again (unless a revert that stopped part way did), move the groups back,
        and delete the copy, unless it was there before the fix."""
        autoscaling, original = clients.autoscaling, before["LaunchConfiguration"]
        target = self.copy_name(resource_id)
        found = launch_configurations(autoscaling, [resource_id, target])
        if resource_id not in found:
            data = self._user_data_back(found.get(target), original, autoscaling)
            autoscaling.create_launch_configuration(**creation(original, data))
        for group in before["Groups"]:
            autoscaling.update_auto_scaling_group(
                AutoScalingGroupName=group, LaunchConfigurationName=resource_id
            )
        if before["Copy"] is None and target in found:
            autoscaling.delete_launch_configuration(LaunchConfigurationName=target)

    def check_revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        autoscaling = clients.autoscaling
        target = self.copy_name(resource_id)
        found = launch_configurations(autoscaling, [resource_id, target])
        if resource_id not in found:
            self._user_data_back(found.get(target), before["LaunchConfiguration"], autoscaling)

    @staticmethod
    def _user_data_back(made: dict[str, Any] | None, original: dict[str, Any], autoscaling: Any) -> bytes:
        """The original's user data, from its copy: NotReversible when the copy is gone, or holds
        other user data."""
        digest = original.get(USER_DATA_DIGEST)
        if digest is None:
            return b""
        data = user_data(made) if made else None
        if data is None or hashlib.sha256(data).hexdigest() != digest:
            name = original["LaunchConfigurationName"]
            raise NotReversible(
                f"{name}'s user data is nowhere now: its copy, which held it, is gone or holds other user "
                f"data, and ASR keeps no user data (it may hold secrets); make {name} again yourself"
            )
        return data
