"""CloudTrail event selectors as AWS reports them, added to moto's own CloudTrail models.

AWS gives every new trail a default event selector (all read and write management
events), and GetEventSelectors returns it, also for a multi-Region trail asked about by
ARN from another Region (a shadow trail); moto 5.2.5 returns no selector and knows only
the home Region's trails, so a trail that logs management events looks as if it logged
nothing. Putting basic selectors also replaces advanced ones (a trail has one kind or
the other), which moto does not do. And DescribeTrails honours ``trailNameList``, which
moto ignores: a name matches only a trail homed in the Region asked, an ARN any trail the
Region sees (the model: "To return information about a trail in another Region, you must
specify its trail ARN").
"""

from __future__ import annotations

import json
from typing import Any

from moto.cloudtrail.exceptions import TrailNotFoundException
from moto.cloudtrail.models import CloudTrailBackend, Trail
from moto.cloudtrail.responses import CloudTrailResponse

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


def describe_trails(self: CloudTrailResponse) -> str:
    include_shadow_trails = self._get_bool_param("includeShadowTrails", True)
    trails = list(self.cloudtrail_backend.describe_trails(include_shadow_trails))
    asked = self._get_param("trailNameList") or []
    if asked:
        region = self.cloudtrail_backend.region_name
        trails = [t for t in trails if t.arn in asked or (t.trail_name in asked and t.region_name == region)]
    return json.dumps({"trailList": [t.description(include_region=True) for t in trails]})


def install() -> None:
    CloudTrailResponse.describe_trails = describe_trails  # type: ignore[method-assign]
    Trail.__init__ = _init  # type: ignore[method-assign]
    Trail.put_event_selectors = _put_event_selectors  # type: ignore[method-assign]
    CloudTrailBackend.get_event_selectors = get_event_selectors  # type: ignore[method-assign]
