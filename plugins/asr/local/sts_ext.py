"""Accounts whose member role cannot be assumed, so a denied account is tested for real.

moto's STS hands out credentials for any role in any account. ``POST
/moto-api/asr/sts {"deny_accounts": ["333333333333"]}`` makes AssumeRole into those accounts
answer ``AccessDenied`` as AWS does when a role is missing or does not trust the caller;
``GET`` shows the list and ``DELETE`` empties it.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from moto.moto_api._internal import urls as moto_api_urls
from moto.sts.exceptions import STSClientError
from moto.sts.models import STSBackend

PATH = "/moto-api/asr/sts"
DENIED: set[str] = set()
_LOCK = threading.Lock()


class AccessDenied(STSClientError):
    def __init__(self, role_arn: str) -> None:
        super().__init__(
            "AccessDenied",
            f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
        )


def _denying(original: Any) -> Any:
    def assume_role(self: Any, *args: Any, **kwargs: Any) -> Any:
        role_arn = str(kwargs.get("role_arn") or "")
        account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ""
        with _LOCK:
            denied = account in DENIED
        if denied:
            raise AccessDenied(role_arn)
        return original(self, *args, **kwargs)

    return assume_role


def sts_response(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    with _LOCK:
        if request.method == "POST":
            body = json.loads(request.data or b"{}")
            accounts = body.get("deny_accounts", [])
            if not isinstance(accounts, list) or not all(isinstance(a, str) for a in accounts):
                return 400, {}, json.dumps({"error": "deny_accounts must be a list of account ids"})
            DENIED.clear()
            DENIED.update(accounts)
        elif request.method == "DELETE":
            DENIED.clear()
        return 200, {"Content-Type": "application/json"}, json.dumps({"deny_accounts": sorted(DENIED)})


def install() -> None:
    STSBackend.assume_role = _denying(STSBackend.assume_role)  # type: ignore[method-assign]
    moto_api_urls.url_paths[f"{{0}}{PATH}$"] = sts_response
