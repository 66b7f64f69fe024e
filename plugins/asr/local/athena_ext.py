"""Athena workgroups as AWS changes and describes them, which moto 5.2.5 cannot or does loosely.

- moto has no ``UpdateWorkGroup``. Here it has, for what the product changes and its tests set
  up: ``State``, ``Description`` and, of ``ConfigurationUpdates``, the plain switches
  ``PublishCloudWatchMetricsEnabled``, ``RequesterPaysEnabled`` and
  ``EnforceWorkGroupConfiguration``; what is not given is kept. A disabled workgroup is
  changed as an enabled one is (AWS keeps its settings editable, and re-enables it this way).
  Any other member of ``ConfigurationUpdates`` is refused, not dropped: the stand-in does not
  model it, and a change that silently did nothing would pass for made.
- AWS answers ``GetWorkGroup`` and ``UpdateWorkGroup`` for a workgroup that does not exist
  with ``InvalidRequestException`` "WorkGroup <name> is not found."; moto's ``GetWorkGroup``
  answers ``{"WorkGroup": null}``, which a caller would read as a workgroup with no settings.
"""

from __future__ import annotations

import json
from typing import Any

from moto.athena.models import AthenaBackend, WorkGroup
from moto.athena.responses import AthenaResponse
from moto.core.exceptions import JsonRESTError

# ConfigurationUpdates members the stand-in applies: each sets the configuration key of its name.
SWITCHES = ("PublishCloudWatchMetricsEnabled", "RequesterPaysEnabled", "EnforceWorkGroupConfiguration")
STATES = ("ENABLED", "DISABLED")


class InvalidRequestException(JsonRESTError):
    """Athena's one client error (a 400): what is wrong is in the message."""

    def __init__(self, message: str) -> None:
        super().__init__("InvalidRequestException", message)


def _work_group(backend: AthenaBackend, name: str) -> WorkGroup:
    group = backend.work_groups.get(name)
    if group is None:
        raise InvalidRequestException(f"WorkGroup {name} is not found.")
    return group


def update_work_group(
    self: AthenaBackend,
    name: str,
    description: str | None,
    configuration_updates: dict[str, Any] | None,
    state: str | None,
) -> None:
    group = _work_group(self, name)
    updates = dict(configuration_updates or {})
    unknown = sorted(set(updates) - set(SWITCHES))
    if unknown:
        raise InvalidRequestException(
            f"the stand-in's UpdateWorkGroup does not model ConfigurationUpdates.{', '.join(unknown)}"
        )
    if state is not None and state not in STATES:
        raise InvalidRequestException(f"State must be one of {', '.join(STATES)}, not {state}")
    for key in SWITCHES:
        if updates.get(key) is not None:
            group.configuration[key] = bool(updates[key])
    if description is not None:
        group.description = description
    if state is not None:
        group.state = state


def install() -> None:
    get_work_group = AthenaResponse.get_work_group

    def get_work_group_response(self: AthenaResponse) -> str:
        _work_group(self.athena_backend, self._get_param("WorkGroup"))
        return str(get_work_group(self))

    def update_work_group_response(self: AthenaResponse) -> str:
        self.athena_backend.update_work_group(  # type: ignore[attr-defined]
            self._get_param("WorkGroup"),
            self._get_param("Description"),
            self._get_param("ConfigurationUpdates"),
            self._get_param("State"),
        )
        return json.dumps({})

    AthenaBackend.update_work_group = update_work_group  # type: ignore[attr-defined]
    AthenaResponse.get_work_group = get_work_group_response  # type: ignore[method-assign]
    AthenaResponse.update_work_group = update_work_group_response  # type: ignore[attr-defined]
