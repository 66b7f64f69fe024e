"""When an instance was stopped, which moto cannot backdate.

EC2 reports a user's stop in ``StateTransitionReason`` as ``User initiated (YYYY-MM-DD
HH:MM:SS GMT)``. moto writes the time of the ``StopInstances`` call (and says ``UTC``), so an
instance stopped "months ago", which EC2.4 is about, cannot be made. The stand-in writes
``GMT``, as AWS does, and an instance tagged ``asr-local:stopped-at`` reads, while it is
stopped, as stopped at that tag's ISO date or time (UTC unless it names a zone, such as
``2025-01-31`` or ``2025-01-31T08:00:00+02:00``); any other value gives an empty reason, as
EC2 reports an instance whose stop it cannot date. A started or terminated instance reads as
moto has it: the tag dates a stop only.
"""

from __future__ import annotations

import datetime

from moto.ec2.models.instances import Instance

STOPPED_AT_TAG = "asr-local:stopped-at"


def stopped_at(value: str) -> datetime.datetime | None:
    """The tag's time in UTC, or None when it is no ISO date or time."""
    try:
        when = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.astimezone(datetime.UTC)


def install() -> None:
    moto_reason = Instance.state_transition_reason.fget
    assert moto_reason is not None

    def state_transition_reason(self: Instance) -> str | None:
        reason = moto_reason(self)
        tag = self.ec2_backend.tags.get(self.id, {}).get(STOPPED_AT_TAG)
        if tag is not None and self.state == "stopped":
            when = stopped_at(tag)
            return f"User initiated ({when:%Y-%m-%d %H:%M:%S} GMT)" if when else ""
        return reason.replace(" UTC)", " GMT)") if reason else reason

    Instance.state_transition_reason = property(state_transition_reason)  # type: ignore[method-assign,assignment]
