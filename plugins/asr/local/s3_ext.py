"""S3 lifecycle object-size filters and default, which moto 5.2.5 accepts but drops.

moto stores a lifecycle rule's prefix and tags but loses ``ObjectSizeGreaterThan`` and
``ObjectSizeLessThan`` (in ``Filter`` and in ``Filter.And``): a rule limited to large
objects reads back as one for every object, and re-putting the rules drops the limit. Here
the sizes are kept beside moto's own rule objects and returned where AWS returns them.
A top-level ``Filter`` with more than one condition is refused as AWS does (they must go
in ``And``), and so is a configuration that mixes rules of the old form (a rule-level
``Prefix``) with rules that have a ``Filter`` ("Filter element can only be used in
Lifecycle V2"). The configuration's ``TransitionDefaultMinimumObjectSize`` (a header of the
put) is kept on the bucket too; moto always answers AWS's default.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.s3.exceptions import MalformedXML, S3ClientError
from moto.s3.models import FakeBucket
from moto.s3.responses import S3Response

SIZE_FIELDS = ("ObjectSizeGreaterThan", "ObjectSizeLessThan")
TRANSITION_DEFAULT = "TransitionDefaultMinimumObjectSize"
TRANSITION_DEFAULT_HEADER = "x-amz-transition-default-minimum-object-size"
FILTER_CONDITIONS = ("Prefix", "Tag", "And", *SIZE_FIELDS)

_moto_set_lifecycle = FakeBucket.set_lifecycle
_moto_get_bucket_lifecycle = S3Response.get_bucket_lifecycle
_moto_bucket_response_put = S3Response._bucket_response_put


def _sizes(node: Any) -> dict[str, int]:
    if not isinstance(node, dict):
        return {}
    return {field: int(node[field]) for field in SIZE_FIELDS if node.get(field) is not None}


class MixedLifecycleVersions(S3ClientError):
    def __init__(self) -> None:
        super().__init__("InvalidRequest", "Filter element can only be used in Lifecycle V2.")


def set_lifecycle(self: FakeBucket, rules: list[dict[str, Any]]) -> None:
    if any("Prefix" in rule for rule in rules) and any("Filter" in rule for rule in rules):
        raise MixedLifecycleVersions()
    for rule in rules:
        top = rule.get("Filter")
        if isinstance(top, dict) and sum(key in top for key in FILTER_CONDITIONS) > 1:
            raise MalformedXML()
    _moto_set_lifecycle(self, rules)
    for stored, given in zip(self.rules, rules, strict=True):
        top = given.get("Filter") if isinstance(given.get("Filter"), dict) else {}
        stored.asr_sizes = {"Filter": _sizes(top), "And": _sizes(top.get("And"))}  # type: ignore[attr-defined]


def _with_sizes(payload: dict[str, Any], stored_rules: list[Any]) -> None:
    for stored, rule in zip(stored_rules, payload.get("Rules", []), strict=False):
        sizes = getattr(stored, "asr_sizes", {})
        if sizes.get("Filter"):
            rule.setdefault("Filter", {}).update(sizes["Filter"])
        if sizes.get("And"):
            rule.setdefault("Filter", {}).setdefault("And", {}).update(sizes["And"])


def bucket_response_put(self: S3Response, request: Any, bucket_name: str, querystring: dict[str, Any]) -> Any:
    """moto's own put; a lifecycle configuration's default minimum size is kept as sent."""
    response = _moto_bucket_response_put(self, request, bucket_name, querystring)
    if "lifecycle" in querystring:
        bucket = self.backend.get_bucket(bucket_name)
        bucket.asr_transition_default = request.headers.get(TRANSITION_DEFAULT_HEADER)  # type: ignore[attr-defined]
    return response


def get_bucket_lifecycle(self: S3Response) -> Any:
    """moto's own response, with the sizes added to the rules before it is serialized, and the
    configuration's default minimum size as it was put."""
    stored_rules = self.backend.get_bucket_lifecycle(self.bucket_name) or []
    kept = getattr(self.backend.get_bucket(self.bucket_name), "asr_transition_default", None)
    serialize = self.serialized

    def serialized(result: ActionResult) -> Any:
        if isinstance(result.result, dict):
            _with_sizes(result.result, stored_rules)
            if kept:
                result.result[TRANSITION_DEFAULT] = kept
        return serialize(result)

    self.serialized = serialized  # type: ignore[method-assign]  (one response object per request)
    try:
        return _moto_get_bucket_lifecycle(self)
    finally:
        del self.serialized


def install() -> None:
    FakeBucket.set_lifecycle = set_lifecycle  # type: ignore[method-assign]
    S3Response.get_bucket_lifecycle = get_bucket_lifecycle  # type: ignore[method-assign]
    S3Response._bucket_response_put = bucket_response_put  # type: ignore[method-assign]
