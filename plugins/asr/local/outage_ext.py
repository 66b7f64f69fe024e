"""An outage of the stand-in, as callers see an AWS endpoint that is being restarted.

``POST /moto-api/asr/outage {"seconds": 5}`` makes every AWS call for the next five
seconds answer ``503 ServiceUnavailable`` in its service's own error format, state kept;
``DELETE`` ends it early. botocore retries a 503 as a transient error, so a run that
meets a short outage must carry on as if nothing happened.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from moto.core.authorization import ActionAuthenticatorMixin
from moto.moto_api._internal import urls as moto_api_urls

from asr.local.throttling_ext import Refusal, Throttled, _protocol, refusal_response

PATH = "/moto-api/asr/outage"
UNAVAILABLE = Refusal("ServiceUnavailable", 503, "Service is unavailable, try again")
_until = 0.0
_refused = 0
_lock = threading.Lock()


def _refusing(original: Any) -> Any:
    def check(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        global _refused
        with _lock:
            down = time.monotonic() < _until
            _refused += down
        if down:
            service = str(getattr(self, "boto3_service_name", "") or getattr(self, "service_name", ""))
            status, headers, body = refusal_response(service, *_protocol(self, service), UNAVAILABLE)
            if isinstance(getattr(self, "response_headers", None), dict):
                self.response_headers.update(headers)
            raise Throttled(status, headers, body)
        original(self, iam_request_cls, resource)

    return check


def outage_response(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    global _until, _refused
    with _lock:
        if request.method == "POST":
            seconds = json.loads(request.data or b"{}").get("seconds")
            if not isinstance(seconds, int | float) or not 0 < seconds <= 600:
                return 400, {}, json.dumps({"error": "seconds must be a number from 0 to 600"})
            _until, _refused = time.monotonic() + seconds, 0
        elif request.method == "DELETE":
            _until = 0.0
        left = max(0.0, _until - time.monotonic())
        return (
            200,
            {"Content-Type": "application/json"},
            json.dumps({"seconds_left": left, "refused": _refused}),
        )


def install() -> None:
    ActionAuthenticatorMixin._authenticate_and_authorize_action = _refusing(  # type: ignore[method-assign]
        ActionAuthenticatorMixin._authenticate_and_authorize_action
    )
    moto_api_urls.url_paths[f"{{0}}{PATH}$"] = outage_response
