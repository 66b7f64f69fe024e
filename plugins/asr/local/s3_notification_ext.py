"""S3 bucket notification configurations read back with their EventBridge delivery.

moto 5.2.5 stores a configuration's ``EventBridgeConfiguration`` but leaves it out of
GetBucketNotificationConfiguration: a bucket delivering to EventBridge reads as one that
does not, and a fix that reads the configuration and puts it back with one more topic
(PutBucketNotificationConfiguration replaces the whole) would turn that delivery off
without anyone seeing it. Here it is returned as AWS returns it: an empty element.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.s3.responses import S3Response

EVENT_BRIDGE = "EventBridgeConfiguration"

_moto_get_bucket_notification = S3Response.get_bucket_notification


def get_bucket_notification(self: S3Response) -> Any:
    """moto's own answer, with the EventBridge element added when the bucket has it."""
    configuration = self.backend.get_bucket_notification_configuration(self.bucket_name)
    if configuration is None or configuration.event_bridge is None:
        return _moto_get_bucket_notification(self)
    serialize = self.serialized

    def serialized(result: ActionResult) -> Any:
        if isinstance(result.result, dict):
            result.result[EVENT_BRIDGE] = {}
        return serialize(result)

    self.serialized = serialized  # type: ignore[method-assign]  (one response object per request)
    try:
        return _moto_get_bucket_notification(self)
    finally:
        del self.serialized


def install() -> None:
    S3Response.get_bucket_notification = get_bucket_notification  # type: ignore[method-assign]
