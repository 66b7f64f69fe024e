"""Security Hub custom actions (action targets), which moto 5.2.5 answers with 404.

``asr setup`` creates the "Remediate with ASR" custom action and points an EventBridge
rule at its ARN, so the stand-in needs Create/Describe/Update/DeleteActionTarget with
AWS's shapes: ARN ``arn:<partition>:securityhub:<region>:<account>:action/custom/<Id>``,
Name up to 20 characters, Id up to 20 alphanumerics, 50 per account and region, a second
create of the same Id refused with ResourceConflictException.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from moto.securityhub import urls
from moto.securityhub.exceptions import SecurityHubClientError
from moto.securityhub.models import SecurityHubBackend
from moto.securityhub.responses import SecurityHubResponse
from moto.utilities.paginator import paginate
from moto.utilities.utils import get_partition

MAX_NAME = 20
MAX_ACTION_TARGETS = 50
ACTION_ID = re.compile(r"^[A-Za-z0-9]{1,20}$")


def _invalid(message: str) -> SecurityHubClientError:
    return SecurityHubClientError("InvalidInputException", message)


def _targets(backend: SecurityHubBackend) -> dict[str, dict[str, str]]:
    """Action targets by ARN, kept on the backend so moto's reset forgets them."""
    if not hasattr(backend, "action_targets"):
        backend.action_targets = {}  # type: ignore[attr-defined]
    return backend.action_targets  # type: ignore[attr-defined,no-any-return]


def _check_text(field: str, value: Any, limit: int | None = None) -> None:
    if not isinstance(value, str) or not value.strip():
        raise _invalid(f"{field} is required and must not be blank")
    if limit is not None and len(value) > limit:
        raise _invalid(f"{field} can contain up to {limit} characters")


def _existing(backend: SecurityHubBackend, arn: str) -> dict[str, str]:
    target = _targets(backend).get(arn)
    if target is None:
        raise SecurityHubClientError("ResourceNotFoundException", f"Action target {arn} not found")
    return target


def create_action_target(self: SecurityHubBackend, name: Any, description: Any, action_id: Any) -> str:
    _check_text("Name", name, MAX_NAME)
    _check_text("Description", description)
    if not isinstance(action_id, str) or not ACTION_ID.match(action_id):
        raise _invalid("Id must be 1 to 20 alphanumeric characters")
    targets = _targets(self)
    arn = (
        f"arn:{get_partition(self.region_name)}:securityhub:{self.region_name}:{self.account_id}"
        f":action/custom/{action_id}"
    )
    if arn in targets:
        raise SecurityHubClientError("ResourceConflictException", f"Action target {arn} already exists")
    if len(targets) >= MAX_ACTION_TARGETS:
        raise SecurityHubClientError(
            "LimitExceededException", f"At most {MAX_ACTION_TARGETS} custom actions are allowed"
        )
    targets[arn] = {"ActionTargetArn": arn, "Name": name, "Description": description}
    return arn


PAGINATION = {
    "describe_action_targets": {
        "input_token": "next_token",
        "limit_key": "max_results",
        "limit_default": 100,
        "unique_attribute": "ActionTargetArn",
        "fail_on_invalid_token": True,
    }
}


@paginate(pagination_model=PAGINATION)
def describe_action_targets(
    self: SecurityHubBackend, arns: list[str] | None = None, max_results: int | None = None
) -> list[dict[str, str]]:
    """Every custom action, or those named; naming an unknown one is an error."""
    if max_results is not None and not 1 <= int(max_results) <= 100:
        raise _invalid("MaxResults must be between 1 and 100")
    if arns:
        return [dict(_existing(self, arn)) for arn in arns]
    return [dict(target) for target in _targets(self).values()]


def update_action_target(self: SecurityHubBackend, arn: str, name: Any, description: Any) -> None:
    target = _existing(self, arn)
    if name is not None:
        _check_text("Name", name, MAX_NAME)
        target["Name"] = name
    if description is not None:
        _check_text("Description", description)
        target["Description"] = description


def delete_action_target(self: SecurityHubBackend, arn: str) -> str:
    _existing(self, arn)
    del _targets(self)[arn]
    return arn


def _body(response: SecurityHubResponse) -> dict[str, Any]:
    raw = response.body or "{}"
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)  # type: ignore[no-any-return]


def _arn_in_path(response: SecurityHubResponse) -> str:
    """The ARN is a greedy URI label (``/actionTargets/{ActionTargetArn+}``), percent-encoded."""
    return unquote(response.path.split("/actionTargets/", 1)[1])


def create_action_target_response(self: SecurityHubResponse) -> str:
    body = _body(self)
    arn = self.securityhub_backend.create_action_target(  # type: ignore[attr-defined]
        name=body.get("Name"), description=body.get("Description"), action_id=body.get("Id")
    )
    return json.dumps({"ActionTargetArn": arn})


def describe_action_targets_response(self: SecurityHubResponse) -> str:
    body = _body(self)
    targets, next_token = self.securityhub_backend.describe_action_targets(  # type: ignore[attr-defined]
        arns=body.get("ActionTargetArns"),
        max_results=body.get("MaxResults"),
        next_token=body.get("NextToken"),
    )
    result: dict[str, Any] = {"ActionTargets": targets}
    if next_token:
        result["NextToken"] = next_token
    return json.dumps(result)


def update_action_target_response(self: SecurityHubResponse) -> str:
    body = _body(self)
    self.securityhub_backend.update_action_target(  # type: ignore[attr-defined]
        arn=_arn_in_path(self), name=body.get("Name"), description=body.get("Description")
    )
    return json.dumps({})


def delete_action_target_response(self: SecurityHubResponse) -> str:
    arn = self.securityhub_backend.delete_action_target(arn=_arn_in_path(self))  # type: ignore[attr-defined]
    return json.dumps({"ActionTargetArn": arn})


def install() -> None:
    SecurityHubBackend.create_action_target = create_action_target  # type: ignore[attr-defined]
    SecurityHubBackend.describe_action_targets = describe_action_targets  # type: ignore[attr-defined]
    SecurityHubBackend.update_action_target = update_action_target  # type: ignore[attr-defined]
    SecurityHubBackend.delete_action_target = delete_action_target  # type: ignore[attr-defined]
    SecurityHubResponse.create_action_target = create_action_target_response  # type: ignore[attr-defined]
    SecurityHubResponse.describe_action_targets = describe_action_targets_response  # type: ignore[attr-defined]
    SecurityHubResponse.update_action_target = update_action_target_response  # type: ignore[attr-defined]
    SecurityHubResponse.delete_action_target = delete_action_target_response  # type: ignore[attr-defined]
    urls.url_paths["{0}/actionTargets$"] = SecurityHubResponse.dispatch
    urls.url_paths["{0}/actionTargets/get$"] = SecurityHubResponse.dispatch
    urls.url_paths["{0}/actionTargets/(?P<ActionTargetArn>.+)$"] = SecurityHubResponse.dispatch
