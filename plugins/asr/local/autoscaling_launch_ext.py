"""Launch configurations as Auto Scaling keeps them, where moto 5.2.5 is looser.

- ``CreateLaunchConfiguration`` refuses a name in use (``AlreadyExists``); moto replaced the
  configuration of that name, so a copy made under a name someone else holds overwrote theirs.
- ``DeleteLaunchConfiguration`` refuses a configuration a group uses (``ResourceInUse``); moto
  deleted it and left the group naming nothing.
- ``DescribeLaunchConfigurations`` takes at most 50 names, as its API reference says.
- A configuration keeps its ``PlacementTenancy`` (moto dropped it), leaves
  ``AssociatePublicIpAddress`` out when it was not given (the subnet's setting then applies; moto
  answered false), and describes its block devices as they were given: moto added an ``Ebs`` to an
  instance store volume and lost ``NoDevice``.
- An instance keeps the launch configuration it was launched from when its group moves to another
  ("Existing instances continue to run with the configuration that they were originally launched
  with", UpdateAutoScalingGroup's reference); moto answered the group's current one.

The AutoScaling.3 and Autoscaling.5 fix (``autoscaling.replace-launch-configuration``) relies on
all of it: it copies every attribute, under a name that may be taken, deletes the original only
once no group uses it, and names the instances still running the original's settings.
"""

from __future__ import annotations

import copy
from typing import Any

from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.autoscaling.models import AutoScalingBackend, FakeLaunchConfiguration, InstanceState
from moto.autoscaling.responses import AutoScalingResponse

NAMES_PER_CALL = 50


def _group_names_using(backend: AutoScalingBackend, name: str) -> list[str]:
    return sorted(
        group.name
        for group in backend.autoscaling_groups.values()
        if getattr(group, "launch_configuration_name", None) == name
    )


def install() -> None:
    create = AutoScalingBackend.create_launch_configuration
    delete = AutoScalingBackend.delete_launch_configuration
    describe = AutoScalingBackend.describe_launch_configurations
    respond_create = AutoScalingResponse.create_launch_configuration
    instance_state_init = InstanceState.__init__

    def create_unless_taken(self: AutoScalingBackend, name: str, *args: Any, **kwargs: Any) -> Any:
        if name in self.launch_configurations:
            raise AutoscalingClientError(
                "AlreadyExists",
                "Launch Configuration by this name already exists - A launch configuration "
                f"already exists with the name {name}",
            )
        return create(self, name, *args, **kwargs)

    def delete_unless_used(self: AutoScalingBackend, name: str) -> None:
        users = _group_names_using(self, name)
        if users:
            raise AutoscalingClientError(
                "ResourceInUse",
                f"Cannot delete launch configuration {name} because it is attached to "
                f"AutoScalingGroup {users[0]}",
            )
        delete(self, name)

    def describe_limited(self: AutoScalingBackend, names: list[str] | None) -> Any:
        if names and len(names) > NAMES_PER_CALL:
            raise ValidationError(
                "The number of launch configuration names that may be passed in is limited to "
                f"{NAMES_PER_CALL}"
            )
        return describe(self, names)

    def create_as_given(self: AutoScalingResponse) -> Any:
        answer = respond_create(self)
        params = self._get_params()
        made = self.autoscaling_backend.launch_configurations[params["LaunchConfigurationName"]]
        made.placement_tenancy = params.get("PlacementTenancy")
        if "AssociatePublicIpAddress" not in params:
            made.associate_public_ip_address = None
        return answer

    def block_devices_as_given(self: FakeLaunchConfiguration) -> list[dict[str, Any]]:
        return copy.deepcopy(self.block_device_mapping_dict or [])

    def remember_launch_configuration(self: InstanceState, *args: Any, **kwargs: Any) -> None:
        instance_state_init(self, *args, **kwargs)
        group = self.auto_scaling_group
        self.asr_launched_from = getattr(group, "launch_configuration_name", None) if group else None

    def launched_from(self: InstanceState) -> str | None:
        return self.asr_launched_from  # type: ignore[no-any-return]

    AutoScalingBackend.create_launch_configuration = create_unless_taken  # type: ignore[method-assign]
    AutoScalingBackend.delete_launch_configuration = delete_unless_used  # type: ignore[method-assign]
    AutoScalingBackend.describe_launch_configurations = describe_limited  # type: ignore[method-assign]
    AutoScalingResponse.create_launch_configuration = create_as_given  # type: ignore[method-assign]
    FakeLaunchConfiguration.block_device_mappings = property(block_devices_as_given)  # type: ignore[assignment,method-assign]
    InstanceState.__init__ = remember_launch_configuration  # type: ignore[method-assign]
    InstanceState.launch_configuration_name = property(launched_from)  # type: ignore[assignment,method-assign]
