"""Auto Scaling describes at most 50 groups by name a call, which moto 5.2.5 does not check.

``DescribeAutoScalingGroups`` refuses a longer ``AutoScalingGroupNames`` with a
ValidationError; moto answered any number, so a bulk read of more passed here and fell back
to a call per group on AWS.
"""

from __future__ import annotations

from typing import Any

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.models import AutoScalingBackend

NAMES_PER_CALL = 50


def install() -> None:
    describe = AutoScalingBackend.describe_auto_scaling_groups

    def limited(self: AutoScalingBackend, names: list[str], *args: Any, **kwargs: Any) -> Any:
        if len(names) > NAMES_PER_CALL:
            raise ValidationError(
                f"The number of group names that may be passed in is limited to {NAMES_PER_CALL}"
            )
        return describe(self, names, *args, **kwargs)

    AutoScalingBackend.describe_auto_scaling_groups = limited  # type: ignore[method-assign]
