"""AWS Config recorders keep their recording mode, which moto 5.2.5 accepts but drops.

``PutConfigurationRecorder`` takes a ``recordingMode`` (continuous, or daily, with
per-type overrides); moto stores the name, role and recording group only, so a recorder
set to record daily reads back as one without a mode. Here the mode is kept on moto's own
recorder object, and ``DescribeConfigurationRecorders`` returns it as AWS does: continuous
when the put named none (each put replaces the whole recorder).
"""

from __future__ import annotations

from typing import Any

from moto.config.models import ConfigBackend

CONTINUOUS = {"recordingFrequency": "CONTINUOUS", "recordingModeOverrides": []}

_moto_put_configuration_recorder = ConfigBackend.put_configuration_recorder


def put_configuration_recorder(self: ConfigBackend, config_recorder: dict[str, Any]) -> None:
    _moto_put_configuration_recorder(self, config_recorder)
    # moto serializes every public attribute that is not None, under its camel-case name.
    self.recorders[config_recorder["name"]].recording_mode = (
        config_recorder.get("recordingMode") or CONTINUOUS
    )


def install() -> None:
    ConfigBackend.put_configuration_recorder = put_configuration_recorder  # type: ignore[method-assign]
