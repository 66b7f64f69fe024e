"""AWS-style throttling for the stand-in, off by default, so pacing is tested, not assumed.

moto answers every call at once; AWS refills a token bucket per account, region and API
(class) and refuses a call when its bucket is empty. When this is on, every call is
checked where the request log sees it (service, action, account and region resolved)
and an empty bucket answers with the throttling error that service really returns, in
its protocol's shape, so botocore's retry handlers (legacy, standard, adaptive) see
throttling and the product's own pacing and retries are exercised.

``POST /moto-api/asr/throttling`` with ``{"enabled": true, "buckets": {...}}`` turns it on
(the defaults below, overridden per rule); ``GET`` returns the configuration and per-bucket
counts; ``DELETE`` returns the same and turns it off with the defaults restored. At server
start, ``ASR_LOCAL_THROTTLING=on`` (or a JSON object like the POST body) turns it on.
See docs/stand-in-throttling.md.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from botocore.retries.standard import ThrottledRetryableChecker
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.utils import get_service_model
from moto.moto_api._internal import urls as moto_api_urls
from werkzeug.exceptions import HTTPException

# The action name is resolved exactly as the request log does it (S3 keeps its own).
from asr.local.request_log_ext import _action_name, is_write

PATH = "/moto-api/asr/throttling"
ENV = "ASR_LOCAL_THROTTLING"
PER = ("class", "action")
# The error codes botocore's standard and adaptive modes count as throttling.
BOTOCORE_THROTTLING_CODES = frozenset(ThrottledRetryableChecker._THROTTLED_ERROR_CODES)
# Global services: one endpoint, so one budget per account, whichever region a client names
# (with a custom endpoint botocore signs them for the client's region). Their buckets are
# kept under the region their endpoint lives in. STS is not here: botocore calls its
# regional endpoints, each with its own quota.
GLOBAL_SERVICES = frozenset({"iam", "organizations", "route53", "cloudfront"})
GLOBAL_REGION = "us-east-1"


@dataclass(frozen=True)
class Limit:
    """A token bucket: ``burst`` tokens at most, ``rate`` added a second. ``per`` says
    whether every call a rule covers shares one bucket (``class``) or each API has its own
    (``action``), as AWS does for most per-API quotas."""

    burst: float
    rate: float
    per: str = "class"

    @classmethod
    def parse(cls, value: Any) -> Limit | None:
        """A rule's value as given in JSON: ``null`` for unlimited, or an object."""
        if value is None:
            return None
        if not isinstance(value, dict) or not {"burst", "rate"} <= value.keys():
            raise ValueError(f"a bucket must be null or an object with burst and rate, not {value!r}")
        if value.keys() - {"burst", "rate", "per"}:
            raise ValueError(f"unknown bucket fields: {sorted(value.keys() - {'burst', 'rate', 'per'})}")
        burst, rate, per = value["burst"], value["rate"], value.get("per", "class")
        for name, number in (("burst", burst), ("rate", rate)):
            if isinstance(number, bool) or not isinstance(number, int | float) or number < 0:
                raise ValueError(f"{name} must be a number >= 0, not {number!r}")
        if per not in PER:
            raise ValueError(f"per must be one of {PER}, not {per!r}")
        return cls(float(burst), float(rate), per)

    def to_dict(self) -> dict[str, Any]:
        return {"burst": self.burst, "rate": self.rate, "per": self.per}


# Rule keys: "<service>:<Action>[,<Action>...]" (those APIs), "<service>:read|write" (its
# non-mutating / mutating calls, by request_log_ext.is_write), "<service>:*" (its other
# calls), "*:read|write|*" (any other service). The first that matches a call wins, in
# that order. Services are named as boto3 names them ("lambda", not moto's "awslambda").
DEFAULT_BUCKETS: dict[str, Limit | None] = {
    # EC2 API throttling: mutating bucket 200 refill 5/s, non-mutating 100 refill 20/s.
    "ec2:write": Limit(200, 5),
    "ec2:read": Limit(100, 20),
    # Security Hub API reference (botocore's securityhub model documentation).
    "securityhub:GetFindings": Limit(6, 3),
    "securityhub:BatchImportFindings": Limit(30, 10),
    "securityhub:BatchUpdateFindings": Limit(30, 10),
    "securityhub:BatchEnableStandards": Limit(1, 1),
    "securityhub:UpdateStandardsControl": Limit(5, 1),
    "securityhub:*": Limit(30, 10, "action"),
    # Systems Manager quotas (no burst published: the burst is one second's worth).
    "ssm:StartAutomationExecution": Limit(1, 1),
    "ssm:GetAutomationExecution": Limit(3, 3),
    "ssm:DescribeAutomationExecutions": Limit(3, 3),
    "ssm:GetParameter,GetParameters,GetParametersByPath": Limit(40, 40),
    # S3: 3,500 writes and 5,500 reads a second per prefix; SQS standard queues: nearly
    # unlimited. Neither is what bounds a remediation run.
    "s3:write": Limit(3500, 3500),
    "s3:read": Limit(5500, 5500),
    "sqs:*": None,
    # Anything else (IAM, STS, KMS, RDS, CloudTrail, ...): no figures AWS publishes for
    # all of them; most AWS quotas are per API, so the Security Hub "all other
    # operations" figure is used per API: 10 a second, burst 30.
    "*:*": Limit(30, 10, "action"),
}


def parse_buckets(raw: Any) -> dict[str, Limit | None]:
    """Validated overrides: a rule key to its Limit (None: unlimited)."""
    if not isinstance(raw, dict):
        raise ValueError("buckets must be an object of rule keys to buckets")
    parsed: dict[str, Limit | None] = {}
    for key, value in raw.items():
        service, _, actions = str(key).partition(":")
        specific = re.fullmatch(r"[A-Za-z0-9]+(,[A-Za-z0-9]+)*", actions) and actions not in ("read", "write")
        if not re.fullmatch(r"[a-z0-9-]+|\*", service) or not (actions in ("read", "write", "*") or specific):
            raise ValueError(f"bad rule key {key!r}: use <service>:<Action>[,<Action>], :read, :write or :*")
        if service == "*" and specific:
            raise ValueError(f"bad rule key {key!r}: '*' takes only :read, :write or :*")
        parsed[key] = Limit.parse(value)
    return parsed


@dataclass
class Bucket:
    limit: Limit
    tokens: float
    stamp: float
    served: int = 0
    throttled: int = 0

    def refill(self, now: float) -> None:
        self.tokens = min(self.limit.burst, self.tokens + (now - self.stamp) * self.limit.rate)
        self.stamp = now


class Throttle:
    """The buckets of every (account, region, service, API class), behind one lock: the
    server answers calls on several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.enabled = False
        self._configure(False, {})

    def _configure(self, enabled: bool, overrides: dict[str, Limit | None]) -> None:
        self.rules: dict[str, Limit | None] = {**DEFAULT_BUCKETS, **overrides}
        self._named: dict[tuple[str, str], str] = {}
        for key in self.rules:
            service, _, actions = key.partition(":")
            if actions not in ("read", "write", "*"):
                for action in actions.split(","):
                    self._named[(service, action)] = key
        self._buckets: dict[tuple[str, str, str, str, str], Bucket] = {}
        self.enabled = enabled

    def configure(self, enabled: bool, overrides: dict[str, Limit | None]) -> None:
        """Replace the configuration: defaults plus overrides, every bucket full, counts zero."""
        with self._lock:
            self._configure(enabled, overrides)

    def rule_for(self, service: str, action: str) -> str:
        """The rule key a call falls under (call with the lock held)."""
        kind = "write" if is_write({"service": service, "action": action}) else "read"
        for key in (
            self._named.get((service, action)),
            f"{service}:{kind}",
            f"{service}:*",
            f"*:{kind}",
        ):
            if key and key in self.rules:
                return key
        return "*:*"

    def admit(self, account: str, region: str, service: str, action: str) -> bool:
        """Take a token for this call; False when its bucket is empty (a refused call takes none)."""
        with self._lock:
            key = self.rule_for(service, action)
            limit = self.rules.get(key)
            if limit is None:
                return True
            api = action if limit.per == "action" else key.partition(":")[2]
            ident = (account, GLOBAL_REGION if service in GLOBAL_SERVICES else region, service, key, api)
            now = time.monotonic()
            bucket = self._buckets.get(ident)
            if bucket is None:
                bucket = self._buckets[ident] = Bucket(limit, limit.burst, now)
            bucket.refill(now)
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                bucket.served += 1
                return True
            bucket.throttled += 1
            return False

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            now = time.monotonic()
            counts = []
            for (account, region, service, key, api), bucket in sorted(self._buckets.items()):
                bucket.refill(now)
                counts.append(
                    {
                        "account": account,
                        "region": region,
                        "service": service,
                        "api_class": api,
                        "rule": key,
                        "tokens": round(bucket.tokens, 3),
                        "served": bucket.served,
                        "throttled": bucket.throttled,
                    }
                )
            return {
                "enabled": self.enabled,
                "buckets": {key: limit and limit.to_dict() for key, limit in self.rules.items()},
                "counts": counts,
                "served": sum(entry["served"] for entry in counts),
                "throttled": sum(entry["throttled"] for entry in counts),
            }


STATE = Throttle()


@dataclass(frozen=True)
class Refusal:
    """What a service answers when throttling: error code, HTTP status, message."""

    code: str
    status: int
    message: str


# Confirmed from AWS documentation and real responses (docs/stand-in-throttling.md).
SERVICE_REFUSALS = {
    "ec2": Refusal("RequestLimitExceeded", 503, "Request limit exceeded."),
    "securityhub": Refusal("TooManyRequestsException", 429, "Too Many Requests"),
    "ssm": Refusal("ThrottlingException", 400, "Rate exceeded"),
    "iam": Refusal("Throttling", 400, "Rate exceeded"),
    "sts": Refusal("Throttling", 400, "Rate exceeded"),
    "s3": Refusal("SlowDown", 503, "Please reduce your request rate."),
    # botocore's legacy retry mode knows SQS's throttling by this code and status only.
    "sqs": Refusal("RequestThrottled", 403, "Request is throttled."),
}
# Otherwise: the service's modeled throttling error (first of these), else its protocol's usual one.
MODELED_PREFERENCE = (
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestThrottled",
    "ThrottledException",
    "RequestThrottledException",
)
PROTOCOL_REFUSALS = {
    "ec2": SERVICE_REFUSALS["ec2"],
    "query": Refusal("Throttling", 400, "Rate exceeded"),
    "json": Refusal("ThrottlingException", 400, "Rate exceeded"),
    "rest-json": Refusal("ThrottlingException", 429, "Rate exceeded"),
    "rest-xml": Refusal("Throttling", 400, "Rate exceeded"),
}
# A modeled error without a status: these codes' usual one, else 429 over REST-JSON and 400 over
# JSON or Query (Organizations answers TooManyRequestsException with 400, as botocore's legacy
# retry mode expects).
DEFAULT_STATUS = {"SlowDown": 503, "RequestLimitExceeded": 503}


@functools.cache
def refusal_for(service: str, protocol: str) -> Refusal:
    if service in SERVICE_REFUSALS:
        return SERVICE_REFUSALS[service]
    fallback = PROTOCOL_REFUSALS.get(protocol, PROTOCOL_REFUSALS["json"])
    try:
        shapes = {shape.name: shape for shape in get_service_model(service).error_shapes}
    except Exception:  # a service botocore has no model for: its protocol's usual error
        return fallback
    for name in MODELED_PREFERENCE:
        shape = shapes.get(name)
        code = shape and (shape.metadata.get("error", {}).get("code") or name)
        if shape is not None and code in BOTOCORE_THROTTLING_CODES:
            status = shape.metadata.get("error", {}).get("httpStatusCode") or DEFAULT_STATUS.get(
                code, 429 if protocol == "rest-json" else 400
            )
            return Refusal(code, int(status), "Rate exceeded")
    return fallback


def refusal_response(
    service: str, protocol: str, metadata: dict[str, Any], refusal: Refusal | None = None
) -> tuple[int, dict[str, str], str]:
    """The throttling error (or another ``refusal``) as the service sends it: status, headers, body."""
    refusal = refusal or refusal_for(service, protocol)
    code, message, request_id = escape(refusal.code), escape(refusal.message), str(uuid.uuid4())
    headers = {"x-amzn-requestid": request_id}  # moto replaces it with its own, as on any answer
    if protocol == "ec2":
        headers["Content-Type"] = "text/xml;charset=UTF-8"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
    elif protocol == "rest-xml" and service == "s3":
        headers = {"Content-Type": "application/xml", "x-amz-request-id": request_id}
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<RequestId>{request_id}</RequestId><HostId>{uuid.uuid4().hex}</HostId></Error>"
        )
    elif protocol in ("query", "rest-xml"):
        headers["Content-Type"] = "text/xml"
        namespace = metadata.get("xmlNamespace")
        xmlns = f' xmlns="{escape(namespace)}"' if isinstance(namespace, str) else ""
        body = (
            f"<ErrorResponse{xmlns}><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    elif protocol == "rest-json":
        headers.update({"Content-Type": "application/json", "x-amzn-ErrorType": refusal.code})
        body = json.dumps({"message": refusal.message})
    else:  # json (and anything newer: botocore reads the code from __type)
        headers["Content-Type"] = f"application/x-amz-json-{metadata.get('jsonVersion', '1.1')}"
        if "awsQueryCompatible" in metadata:
            headers["x-amzn-query-error"] = f"{refusal.code};Sender"
        body = json.dumps({"__type": refusal.code, "message": refusal.message})
    return refusal.status, headers, body


class Throttled(HTTPException):
    """Raised before moto handles a call: moto's call_action answers an HTTPException's
    status and description with the response's own headers (set alongside), and Flask
    (S3's path) answers it with get_headers/get_body."""

    def __init__(self, status: int, headers: dict[str, str], body: str) -> None:
        super().__init__(description=body)
        self.code = status
        self._headers = headers

    def get_body(self, environ: Any = None, scope: Any = None) -> str:
        return self.description or ""

    def get_headers(self, environ: Any = None, scope: Any = None) -> list[tuple[str, str]]:
        return list(self._headers.items())


def _protocol(response: Any, service: str) -> tuple[str, dict[str, Any]]:
    try:
        model = get_service_model(service)
        protocol = str(response.determine_response_protocol(model))
        return ("json" if protocol == "query-json" else protocol), dict(model.metadata)
    except Exception:  # no model: answer in JSON, which botocore reads for most services
        return "json", {}


def _throttling(original: Any) -> Any:
    def check(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        if STATE.enabled:
            service = str(getattr(self, "boto3_service_name", "") or getattr(self, "service_name", ""))
            action = _action_name(self)
            account = str(getattr(self, "current_account", ""))
            if not STATE.admit(account, str(getattr(self, "region", "")), service, action):
                status, headers, body = refusal_response(service, *_protocol(self, service))
                if isinstance(getattr(self, "response_headers", None), dict):
                    self.response_headers.update(headers)
                raise Throttled(status, headers, body)
        original(self, iam_request_cls, resource)

    return check


def _request_json(request: Any, headers: Any) -> Any:
    if hasattr(request, "environ"):  # werkzeug, as in server mode
        length = int(headers.get("Content-Length") or 0)
        raw = request.environ["wsgi.input"].read(length) if length else b""
    else:
        raw = request.body or b""
    return json.loads(raw or b"{}")


def configure_from(body: Any) -> None:
    """Apply a POST body (or the environment variable's JSON): enabled, and bucket overrides."""
    if not isinstance(body, dict) or body.keys() - {"enabled", "buckets"}:
        raise ValueError('the body must be an object with "enabled" and/or "buckets"')
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValueError("enabled must be true or false")
    STATE.configure(enabled, parse_buckets(body.get("buckets", {})))


def throttling_response(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    json_type = {"Content-Type": "application/json"}
    if request.method == "GET":
        return 200, json_type, json.dumps(STATE.snapshot())
    if request.method == "DELETE":
        before = STATE.snapshot()
        STATE.configure(False, {})
        return 200, json_type, json.dumps(before)
    if request.method != "POST":
        return 405, json_type, json.dumps({"error": "use GET, POST or DELETE"})
    try:
        configure_from(_request_json(request, headers))
    except ValueError as exc:  # includes a body that is not JSON
        return 400, json_type, json.dumps({"error": str(exc)})
    return 200, json_type, json.dumps(STATE.snapshot())


def configure_from_environment(value: str | None) -> None:
    """``on``/``off`` (and the usual synonyms) or a JSON object like the POST body."""
    text = (value or "").strip()
    if text.lower() in ("", "0", "off", "false", "no"):
        return
    if text.lower() in ("1", "on", "true", "yes"):
        STATE.configure(True, {})
        return
    try:
        configure_from(json.loads(text))
    except ValueError as exc:
        raise ValueError(f"{ENV} must be on, off or a JSON object like the POST body: {exc}") from exc


def install() -> None:
    ActionAuthenticatorMixin._authenticate_and_authorize_action = _throttling(  # type: ignore[method-assign]
        ActionAuthenticatorMixin._authenticate_and_authorize_action
    )
    moto_api_urls.url_paths["{0}" + PATH + "$"] = throttling_response
    configure_from_environment(os.environ.get(ENV))
