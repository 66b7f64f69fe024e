"""API Gateway execution logging as AWS allows it, which moto 5.2.5 cannot or does loosely.

- moto has no ``UpdateStage`` for API Gateway V2 (WebSocket and HTTP APIs). Here it has: the
  stage's ``DefaultRouteSettings`` and each route's ``RouteSettings`` given are merged into
  the stage's, field by field; what is not given is kept.
- AWS turns on execution logging (a stage's, a method's or a route's level ERROR or INFO)
  only in an account and Region whose API Gateway setting ``cloudwatchRoleArn`` names a
  role; otherwise UpdateStage answers BadRequestException. moto takes any level.
- AWS sets ``cloudwatchRoleArn`` only to a role API Gateway can assume; moto takes any ARN.
  Here the role must exist and trust ``apigateway.amazonaws.com``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from moto.apigateway.exceptions import BadRequestException
from moto.apigateway.models import Account, APIGatewayBackend, Stage, apigateway_backends
from moto.apigatewayv2.exceptions import BadRequestException as V2BadRequestException
from moto.apigatewayv2.models import ApiGatewayV2Backend
from moto.apigatewayv2.models import Stage as V2Stage
from moto.apigatewayv2.responses import ApiGatewayV2Response
from moto.core.responses import TYPE_RESPONSE
from moto.iam.models import iam_backends

NO_ROLE = "CloudWatch Logs role ARN must be set in account settings to enable logging"
ROLE_REFUSED = "The role ARN does not have required permissions set to API Gateway"
PRINCIPAL = "apigateway.amazonaws.com"


def _logging(level: Any) -> bool:
    return str(level).upper() in ("ERROR", "INFO")


def _can_log(account_id: str, region: str) -> bool:
    return bool(apigateway_backends[account_id][region].account.cloudwatch_role_arn)


def _trusted(role_arn: str) -> bool:
    """Whether the role exists and its trust policy lets API Gateway assume it."""
    parts = role_arn.split(":")
    if len(parts) != 6:
        return False
    try:
        role = iam_backends[parts[4]][parts[1]].get_role_by_arn(role_arn)
    except Exception:  # no such role (or account)
        return False
    document = json.loads(unquote(role.assume_role_policy_document))
    statements = document.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        services = statement.get("Principal", {}).get("Service", [])
        actions = statement.get("Action", [])
        if (
            statement.get("Effect") == "Allow"
            and PRINCIPAL in ([services] if isinstance(services, str) else services)
            and "sts:AssumeRole" in ([actions] if isinstance(actions, str) else actions)
        ):
            return True
    return False


_original_update_stage = APIGatewayBackend.update_stage
_original_account_patch = Account.apply_patch_operations


def update_stage(self: APIGatewayBackend, function_id: str, stage_name: str, patch_operations: Any) -> Stage:
    turning_on = any(
        op.get("path", "").endswith("/logging/loglevel") and _logging(op.get("value"))
        for op in patch_operations or []
    )
    if turning_on and not _can_log(self.account_id, self.region_name):
        raise BadRequestException(NO_ROLE)
    return _original_update_stage(self, function_id, stage_name, patch_operations)


def apply_patch_operations(self: Account, patch_operations: list[dict[str, Any]]) -> Account:
    for op in patch_operations:
        if op.get("path") == "/cloudwatchRoleArn" and op.get("value") and not _trusted(op["value"]):
            raise BadRequestException(ROLE_REFUSED)
    return _original_account_patch(self, patch_operations)


def update_v2_stage(
    self: ApiGatewayV2Backend, api_id: str, stage_name: str, config: dict[str, Any]
) -> V2Stage:
    stage = self.get_stage(api_id, stage_name)
    default = config.get("defaultRouteSettings") or {}
    routes = config.get("routeSettings") or {}
    levels = [default.get("loggingLevel"), *(r.get("loggingLevel") for r in routes.values())]
    if any(_logging(level) for level in levels) and not _can_log(self.account_id, self.region_name):
        raise V2BadRequestException(NO_ROLE)
    stage.default_route_settings = {**(stage.default_route_settings or {}), **default}
    for key, settings in routes.items():
        stage.route_settings[key] = {**stage.route_settings.get(key, {}), **settings}
    stage.updated = datetime.now()
    return stage


def update_v2_stage_response(self: ApiGatewayV2Response) -> TYPE_RESPONSE:
    api_id = self.path.split("/")[-3]
    stage_name = unquote(self.path.split("/")[-1])
    stage = self.apigatewayv2_backend.update_stage(api_id, stage_name, json.loads(self.body or "{}"))  # type: ignore[attr-defined]
    return 200, {}, json.dumps(stage.to_json())


def install() -> None:
    APIGatewayBackend.update_stage = update_stage  # type: ignore[method-assign]
    Account.apply_patch_operations = apply_patch_operations  # type: ignore[method-assign]
    ApiGatewayV2Backend.update_stage = update_v2_stage  # type: ignore[attr-defined]
    ApiGatewayV2Response.update_stage = update_v2_stage_response  # type: ignore[attr-defined]
