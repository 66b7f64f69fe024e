"""The stand-in's own endpoints that backdate resources (``POST /moto-api/asr/...``).

No AWS call makes an access key a year old or a secret unread for 90 days, yet the fixes
that judge age need such resources to act on. Each extension that keeps a resource's
history registers one JSON endpoint for it here, and the seeders call them.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable
from typing import Any

from moto.moto_api._internal import urls as moto_api_urls

JSON = {"Content-Type": "application/json"}
Response = tuple[int, dict[str, str], str]


def past_time(value: Any, field: str) -> datetime.datetime:
    """An ISO-8601 time from a request body, in UTC (a time without a zone is taken as UTC),
    refused unless it is one and not in the future."""
    if not isinstance(value, str):
        raise ValueError(f"{field} must be an ISO-8601 time")
    try:
        when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{field} {value!r} is not an ISO-8601 time") from None
    when = when.astimezone(datetime.UTC) if when.tzinfo else when.replace(tzinfo=datetime.UTC)
    if when > datetime.datetime.now(datetime.UTC):
        raise ValueError(f"{field} {value} is in the future")
    return when


def _json_body(request: Any, headers: Any) -> Any:
    if hasattr(request, "environ"):  # werkzeug, as in server mode
        return json.loads(
            request.environ["wsgi.input"].read(int(headers.get("Content-Length") or 0)) or b"{}"
        )
    return json.loads(request.body or "{}")


def register(
    path: str,
    handle: Callable[[dict[str, Any]], Any],
    not_found: type[Exception],
    describe: Callable[[Any], str],
) -> None:
    """Serve ``POST path``: a JSON object naming ``account_id`` goes to ``handle``, whose answer is
    sent back; ``not_found`` (an unknown resource, said by ``describe``) answers 404, a bad body 400."""

    def respond(request: Any, full_url: str, headers: Any) -> Response:
        if request.method != "POST":
            return 405, JSON, json.dumps({"error": "use POST"})
        try:
            body = _json_body(request, headers)
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            if not re.fullmatch(r"\d{12}", str(body.get("account_id"))):
                raise ValueError("account_id must be a 12-digit account id")
            return 200, JSON, json.dumps(handle(body))
        except not_found as exc:
            return 404, JSON, json.dumps({"error": describe(exc)})
        except ValueError as exc:  # includes a body that is not JSON
            return 400, JSON, json.dumps({"error": str(exc)})

    moto_api_urls.url_paths["{0}" + path + "$"] = respond
