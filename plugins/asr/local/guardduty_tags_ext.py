"""Tags on GuardDuty detectors and filters, which moto 5.2.5 cannot read or change.

- moto has no ``TagResource``, ``UntagResource`` or ``ListTagsForResource`` for GuardDuty.
  Here it has them, for the resources GuardDuty.2 and GuardDuty.4 tag: a detector
  (``arn:<partition>:guardduty:<region>:<account>:detector/<id>``) and a filter (that ARN,
  then ``/filter/<name>``). As AWS does, ``TagResource`` adds to the tags a resource has and
  replaces the value of a key it has, ``UntagResource`` ignores keys the resource lacks, both
  refuse keys beginning with ``aws:`` (AWS's own tags, which do not count toward the 50 a
  resource may hold), and an ARN that names no detector or filter of the caller's account and
  Region is a ``BadRequestException``.
- moto keeps the tags ``CreateDetector`` is given, and ``GetDetector`` answers them; its
  ``CreateFilter`` dropped them. Here a filter keeps them, and ``GetFilter`` answers them,
  as AWS does.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from moto.guardduty import urls
from moto.guardduty.exceptions import GuardDutyException
from moto.guardduty.models import Detector, Filter, GuardDutyBackend
from moto.guardduty.responses import GuardDutyResponse

# GuardDuty's documented limit: "a limit of 50 tags per resource" (ListTagsForResource), AWS's
# own not counted, as AWS's tagging guide says of them.
MAX_TAGS = 50
RESOURCE_ARN = re.compile(
    r"^arn:[A-Za-z_.-]{1,20}:guardduty:(?P<region>[a-z0-9-]+):(?P<account>\d{12})"
    r":detector/(?P<detector>[A-Za-z0-9]+)(?:/filter/(?P<filter>[^/]+))?$"
)


class BadRequestException(GuardDutyException):
    """GuardDuty's client error: the error type in the header, as moto's own errors send it."""

    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("BadRequestException", message)

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [("X-Amzn-ErrorType", "BadRequestException")]


def _tagged(backend: GuardDutyBackend, arn: str) -> Detector | Filter:
    """The detector or filter ``arn`` names in this account and Region."""
    match = RESOURCE_ARN.match(arn)
    if not match or (match["account"], match["region"]) != (backend.account_id, backend.region_name):
        raise BadRequestException(f"The request is rejected because the resource ARN {arn} is not valid.")
    detector = backend.get_detector(match["detector"])  # moto's BadRequestException when unknown
    return detector.get_filter(match["filter"]) if match["filter"] else detector


def _refuse_reserved(keys: list[str]) -> None:
    """GuardDuty's key pattern, ``(?!aws:)...``: AWS's own tags are neither set nor removed by callers."""
    reserved = sorted(key for key in keys if key.startswith("aws:"))
    if reserved:
        raise BadRequestException(f"The tag keys {', '.join(reserved)} use the reserved prefix aws:.")


def tag_resource(self: GuardDutyBackend, arn: str, tags: dict[str, str]) -> None:
    resource = _tagged(self, arn)
    _refuse_reserved(list(tags))
    merged = {**resource.tags, **tags}
    own = [key for key in merged if not key.startswith("aws:")]
    if len(own) > MAX_TAGS:
        raise BadRequestException(f"A resource can have at most {MAX_TAGS} tags; this would make {len(own)}.")
    resource.tags = merged


def untag_resource(self: GuardDutyBackend, arn: str, keys: list[str]) -> None:
    resource = _tagged(self, arn)
    _refuse_reserved(keys)
    resource.tags = {key: value for key, value in resource.tags.items() if key not in keys}


def list_tags_for_resource(self: GuardDutyBackend, arn: str) -> dict[str, str]:
    return dict(_tagged(self, arn).tags)


def _arn(response: GuardDutyResponse) -> str:
    """The ARN is the last label of the path (``/tags/{ResourceArn}``), percent-encoded."""
    return unquote(response.path.split("/tags/", 1)[1])


def install() -> None:
    made = Filter.__init__
    described = Filter.to_json
    create_filter = GuardDutyResponse.create_filter

    def __init__(self: Filter, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        self.tags: dict[str, str] = {}

    def to_json(self: Filter) -> dict[str, Any]:
        return {**described(self), "tags": dict(self.tags)}

    def create_filter_response(self: GuardDutyResponse) -> str:
        answer = create_filter(self)
        detector_id = self.path.split("/")[-2]
        made_filter = self.guardduty_backend.get_filter(detector_id, self._get_param("name"))
        made_filter.tags = dict(self._get_param("tags") or {})
        return answer

    def tag_resource_response(self: GuardDutyResponse) -> str:
        self.guardduty_backend.tag_resource(_arn(self), self._get_param("tags") or {})  # type: ignore[attr-defined]
        return "{}"

    def untag_resource_response(self: GuardDutyResponse) -> str:
        keys = self.querystring.get("tagKeys") or []
        self.guardduty_backend.untag_resource(_arn(self), keys)  # type: ignore[attr-defined]
        return "{}"

    def list_tags_for_resource_response(self: GuardDutyResponse) -> str:
        tags = self.guardduty_backend.list_tags_for_resource(_arn(self))  # type: ignore[attr-defined]
        return json.dumps({"tags": tags})

    Filter.__init__ = __init__  # type: ignore[method-assign]
    Filter.to_json = to_json  # type: ignore[method-assign]
    GuardDutyBackend.tag_resource = tag_resource  # type: ignore[attr-defined]
    GuardDutyBackend.untag_resource = untag_resource  # type: ignore[attr-defined]
    GuardDutyBackend.list_tags_for_resource = list_tags_for_resource  # type: ignore[attr-defined]
    GuardDutyResponse.create_filter = create_filter_response  # type: ignore[method-assign]
    GuardDutyResponse.tag_resource = tag_resource_response  # type: ignore[attr-defined]
    GuardDutyResponse.untag_resource = untag_resource_response  # type: ignore[attr-defined]
    GuardDutyResponse.list_tags_for_resource = list_tags_for_resource_response  # type: ignore[attr-defined]
    urls.url_paths["{0}/tags/(?P<resource_arn>.+)$"] = GuardDutyResponse.dispatch
