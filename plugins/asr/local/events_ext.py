"""EventBridge pattern matching into arrays of objects, and TestEventPattern, for moto 5.2.5.

Security Hub puts findings in an array (``detail.findings``), and a rule filters them
with ``{"detail": {"findings": {"Compliance": {"Status": ["FAILED"]}}}}``. moto flattens
only nested objects, so such a pattern never matches and a rule filtering findings
delivers nothing. EventBridge (its Event Ruler) "crushes" arrays out of the path: a
field inside array elements matches if it matches in any element, and the fields of one
pattern object must all match within the same element ("array-consistent" matching,
``rulesForJSONEvent``). The leaf filters (exact, prefix, anything-but, numeric, exists,
...) stay moto's own. ``TestEventPattern``, which moto leaves unimplemented, answers with
the same matcher, so a rule's pattern can be checked without a queue. And a target
without an input transformer receives the whole event, ``account`` included (moto's
default template leaves it out).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from moto.events.exceptions import ValidationException
from moto.events.models import UNDEFINED, EventPattern
from moto.events.responses import EventsHandler
from moto.events.utils import EventTemplateParser

# The event as EventBridge delivers it to a target, in AWS's field order; moto fills in the <names>.
WHOLE_EVENT_TEMPLATE = (
    '{"version": "0", "id": "<id>", "detail-type": "<detail-type>", "source": "<source>", '
    '"account": "<account>", "time": <time>, "region": "<region>", "resources": <resources>, '
    '"detail": <detail>}'
)
# TestEventPattern refuses an event without these (AWS API reference).
REQUIRED_EVENT_FIELDS = ("id", "account", "source", "time", "region", "resources", "detail-type")


def _flat(values: list[Any]) -> Iterator[Any]:
    """The elements of an array with nested arrays crushed out, as Event Ruler sees them."""
    for value in values:
        if isinstance(value, list):
            yield from _flat(value)
        else:
            yield value


def _leaf(value: Any) -> Any:
    """The value leaf filters see: scalars, a list of scalars, or UNDEFINED (objects are not leaves)."""
    if isinstance(value, dict):
        return UNDEFINED
    if isinstance(value, list):
        return [v for v in _flat(value) if not isinstance(v, dict)]
    return value


def _matches(pattern: EventPattern, rule: dict[str, Any], node: Any) -> bool:
    """Every field of ``rule`` matches ``node``; a sub-pattern over an array must match one element."""
    fields = node if isinstance(node, dict) else {}
    for key, wanted in rule.items():
        if key == "$or" and isinstance(wanted, list):
            matched = any(_matches(pattern, alternative, node) for alternative in wanted)
        elif isinstance(wanted, dict):
            value = fields.get(key, UNDEFINED)
            elements = (
                [v for v in _flat(value) if isinstance(v, dict)] if isinstance(value, list) else [value]
            )
            matched = any(_matches(pattern, wanted, element) for element in elements or [{}])
        elif isinstance(wanted, list):
            matched = pattern._does_item_match_filters(_leaf(fields.get(key, UNDEFINED)), wanted)
        else:
            matched = False
        if not matched:
            return False
    return True


def matches_event(self: EventPattern, event: dict[str, Any]) -> bool:
    if not self._pattern:
        return True
    return _matches(self, self._pattern, json.loads(json.dumps(event)))


def test_event_pattern(self: EventsHandler) -> tuple[str, dict[str, Any]]:
    pattern = EventPattern.load(self._get_param("EventPattern"))
    try:
        event = json.loads(self._get_param("Event") or "")
    except json.JSONDecodeError:
        raise ValidationException("Parameter Event is not valid.") from None
    missing = [f for f in REQUIRED_EVENT_FIELDS if not isinstance(event, dict) or f not in event]
    if missing:
        raise ValidationException(f"Parameter Event is not valid: missing {', '.join(missing)}.")
    return json.dumps({"Result": pattern.matches_event(event)}), self.response_headers


def install() -> None:
    EventPattern.matches_event = matches_event  # type: ignore[method-assign]
    EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = WHOLE_EVENT_TEMPLATE
    EventsHandler.test_event_pattern = test_event_pattern  # type: ignore[assignment,method-assign]
