"""CloudTrail event selectors as AWS reports them, added to moto's own CloudTrail models.

AWS gives every new trail a default event selector (all read and write management
events), and GetEventSelectors returns it, also for a multi-Region trail asked about by
ARN from another Region (a shadow trail); moto 5.2.5 returns no selector and knows only
the home Region's trails, so a trail that logs management events looks as if it logged
nothing. Putting basic selectors also replaces advanced ones (a trail has one kind or
the other), which moto does not do.
"""

from __future__ import annotations

from typing import Any

from moto.cloudtrail.exceptions import TrailNotFoundException
from moto.cloudtrail.models import CloudTrailBackend, Trail

DEFAULT_EVENT_SELECTOR: dict[str, Any] = {
    "ReadWriteType": "All",
    "IncludeManagementEvents": True,
    "DataResources": [],
    "ExcludeManagementEventSources": [],
}

_original_init = Trail.__init__
_original_put = Trail.put_event_selectors


def _init(self: Trail, *args: Any, **kwargs: Any) -> None:
    _original_init(self, *args, **kwargs)
    self.event_selectors = [dict(DEFAULT_EVENT_SELECTOR)]


def _put_event_selectors(
    self: Trail, event_selectors: list[dict[str, Any]], advanced_event_selectors: list[dict[str, Any]]
) -> None:
    _original_put(self, event_selectors, advanced_event_selectors)
    if event_selectors:
        self.advanced_event_selectors = []


def get_event_selectors(
    self: CloudTrailBackend, trail_name: str
) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """By name for this Region's trails, by ARN also for multi-Region trails homed elsewhere."""
    for trail in self.describe_trails(include_shadow_trails=True):
        if trail_name == trail.arn or (
            trail_name == trail.trail_name and trail.region_name == self.region_name
        ):
            return trail.arn, trail.event_selectors, trail.advanced_event_selectors
    raise TrailNotFoundException(account_id=self.account_id, name=trail_name)


def install() -> None:
    Trail.__init__ = _init  # type: ignore[method-assign]
    Trail.put_event_selectors = _put_event_selectors  # type: ignore[method-assign]
    CloudTrailBackend.get_event_selectors = get_event_selectors  # type: ignore[method-assign]
