"""A log of the API calls the stand-in served, so tests can prove what was (not) changed.

Every moto request passes ``_authenticate_and_authorize_action`` with its service and
action resolved; that is where each call is recorded as ``{service, action, account,
region, resource}`` (the resource when a parameter names one, e.g. ``GroupId``, or the
ARN of the S3 bucket or object authorized).
``GET /moto-api/asr/requests`` returns the log; ``DELETE`` returns it and empties it.

Each entry also gets ``cpu_seconds``: the CPU its server thread spent in moto on the
request (routing, the backend's work, building the answer), set before the answer leaves,
so whoever reads the log after a call finds it. moto runs on one core (it holds the GIL),
so this says where a benchmark's stand-in time goes, call by call; parsing the request's
headers and writing the answer to the socket are not in it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from moto.core.authorization import ActionAuthenticatorMixin
from moto.moto_api._internal import urls as moto_api_urls
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

READ_PREFIXES = (
    "Describe",
    "Get",
    "List",
    "Head",
    "Lookup",
    "Search",
    "BatchGet",
    "Query",
    "Scan",
    "Select",
)
# Request parameters that name the resource a call acts on, recorded when present.
RESOURCE_PARAMS = (
    "GroupId",
    "InstanceId",
    "SubnetId",
    "VpcId",
    "SnapshotId",
    "DBInstanceIdentifier",
    "RoleArn",
)
LOG: list[dict[str, Any]] = []
_LOCK = threading.Lock()
_SERVING = threading.local()  # the log entry of the request this server thread is answering


def is_write(call: dict[str, str]) -> bool:
    """A call that can change state (sts calls only hand out credentials)."""
    return call["service"] != "sts" and not call["action"].startswith(READ_PREFIXES)


def _action_name(response: Any) -> str:
    data = getattr(response, "data", None)
    if response.service_name == "s3" and isinstance(data, dict) and data.get("Action"):
        return str(data["Action"])
    try:
        return str(response._get_action())
    except Exception:  # an unroutable request is still a request
        return "Unknown"


def _resource(response: Any) -> str:
    for name in RESOURCE_PARAMS:
        try:
            value = response._get_param(name)
        except Exception:  # a protocol without such parameters
            return ""
        if isinstance(value, str) and value:
            return value
    return ""


def _recording(original: Any) -> Any:
    def record(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        entry = {
            "service": getattr(self, "service_name", "") or "",
            "action": _action_name(self),
            "account": getattr(self, "current_account", ""),
            "region": getattr(self, "region", ""),
            # S3 names the object (or bucket) it authorizes: ``arn:aws:s3:::bucket/key``.
            "resource": _resource(self) or (resource if resource.startswith("arn:aws:s3:::") else ""),
        }
        original(self, iam_request_cls, resource)  # a call refused here (outage) was not served
        _SERVING.entry = entry
        with _LOCK:
            LOG.append(entry)

    return record


WsgiApp = Callable[[DomainDispatcherApplication, dict[str, Any], Any], Any]


def _timing(app: WsgiApp) -> WsgiApp:
    def timed(self: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any) -> Any:
        _SERVING.entry = None
        started = time.thread_time()
        try:
            return app(self, environ, start_response)  # the answer, built; werkzeug writes it after
        finally:
            entry = _SERVING.entry
            if entry is not None:
                with _LOCK:  # the log may be being read: never change an entry outside the lock
                    entry["cpu_seconds"] = time.thread_time() - started

    return timed


def requests_response(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    with _LOCK:
        body = json.dumps(LOG)
        if request.method == "DELETE":
            LOG.clear()
    return 200, {"Content-Type": "application/json"}, body


def install() -> None:
    DomainDispatcherApplication.__call__ = _timing(DomainDispatcherApplication.__call__)  # type: ignore[method-assign]
    ActionAuthenticatorMixin._authenticate_and_authorize_action = _recording(  # type: ignore[method-assign]
        ActionAuthenticatorMixin._authenticate_and_authorize_action
    )
    moto_api_urls.url_paths["{0}/moto-api/asr/requests$"] = requests_response
