"""API Gateway fixes: REST API stages that cache responses unencrypted, and REST and WebSocket
API stages that do not log their execution."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from asr.actions import (
    Action,
    ServiceRole,
    answered,
    register,
    role_name_parameter,
    service_trust,
    with_new_role,
)

if TYPE_CHECKING:
    from asr.aws import Clients

# What a playbook's pattern takes from a stage's ARN:
# arn:aws:apigateway:<region>::/restapis/<api>/stages/<stage> (REST),
# arn:aws:apigateway:<region>::/apis/<api>/stages/<stage> (WebSocket and HTTP).
STAGE_PATH = re.compile(r"^/restapis/([A-Za-z0-9]+)/stages/([A-Za-z0-9_-]+)$")
V2_STAGE_PATH = re.compile(r"^/apis/([A-Za-z0-9]+)/stages/(\$default|[A-Za-z0-9_-]+)$")


def stage_of(resource_id: str) -> tuple[str, str]:
    """The REST API id and stage name of ``/restapis/<api>/stages/<stage>``."""
    match = STAGE_PATH.match(resource_id)
    if not match:
        raise ValueError(f"{resource_id!r} is not a REST API stage (/restapis/<api id>/stages/<stage name>)")
    return match.group(1), match.group(2)


def v2_stage_of(resource_id: str) -> tuple[str, str]:
    """The API id and stage name of ``/apis/<api>/stages/<stage>`` (a WebSocket or HTTP API)."""
    match = V2_STAGE_PATH.match(resource_id)
    if not match:
        raise ValueError(
            f"{resource_id!r} is not a REST or WebSocket API stage "
            "(/restapis/<api id>/stages/<stage name> or /apis/<api id>/stages/<stage name>)"
        )
    return match.group(1), match.group(2)


def method_settings(clients: Clients, resource_id: str) -> dict[str, dict[str, Any]]:
    """A REST stage's ``methodSettings``: ``*/*`` holds the stage-wide settings, and each
    method's overrides (``~1pets/GET``) replace them for that method."""
    api, stage = stage_of(resource_id)
    return clients.apigateway.get_stage(restApiId=api, stageName=stage).get("methodSettings") or {}


def patch_method_settings(clients: Clients, resource_id: str, setting: str, values: dict[str, str]) -> None:
    """Set one ``setting`` (``caching/dataEncrypted``) of these methods (``*/*``: the whole
    stage) of a REST stage, in one UpdateStage; nothing else of theirs changes."""
    api, stage = stage_of(resource_id)
    operations = [
        {"op": "replace", "path": f"/{method}/{setting}", "value": value} for method, value in values.items()
    ]
    clients.apigateway.update_stage(restApiId=api, stageName=stage, patchOperations=operations)


@register
class EncryptCacheData(Action):
    """Encrypt the cached responses of every method of a REST API stage that caches them.

    A stage's ``methodSettings`` hold the stage-wide settings (``*/*``) and each method's
    overrides (``~1pets/GET``): each that caches without encryption gets
    ``caching/dataEncrypted``, and nothing else changes. Methods that do not cache are left
    as they are.

        remediation:
          action: apigateway.encrypt-cache-data
    """

    name = "apigateway.encrypt-cache-data"
    service = "apigateway"
    permissions = ("apigateway:GET", "apigateway:PATCH")
    summary = "encrypted the cache data of the stage's caching methods"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        unencrypted = [
            method
            for method, setting in method_settings(clients, resource_id).items()
            if setting.get("cachingEnabled") and not setting.get("cacheDataEncrypted")
        ]
        return {"UnencryptedCaches": sorted(unencrypted)}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"UnencryptedCaches": []} if state["UnencryptedCaches"] else {}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        self._set(clients, resource_id, state["UnencryptedCaches"], encrypted=True)

    def check_revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        if before["UnencryptedCaches"] and not self._present(clients, resource_id, before):
            raise LookupError(f"the method settings {', '.join(before['UnencryptedCaches'])} were not found")

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> dict[str, Any] | None:
        """Decrypt again the methods the fix encrypted that are still there: patching an override
        deleted since would make it anew, with default settings (no logging, say)."""
        methods = self._present(clients, resource_id, before)
        self._set(clients, resource_id, methods, encrypted=False)
        return (
            None
            if len(methods) == len(before["UnencryptedCaches"])
            else {**before, "UnencryptedCaches": methods}
        )

    @staticmethod
    def _present(clients: Clients, resource_id: str, before: dict[str, Any]) -> list[str]:
        """The methods the fix encrypted that the stage still has."""
        present = method_settings(clients, resource_id)
        return [method for method in before["UnencryptedCaches"] if method in present]

    @staticmethod
    def _set(clients: Clients, resource_id: str, methods: list[str], encrypted: bool) -> None:
        if not methods:
            return
        value = "true" if encrypted else "false"
        patch_method_settings(clients, resource_id, "caching/dataEncrypted", dict.fromkeys(methods, value))


# The levels of execution logging that log; OFF (or no level) logs nothing.
LOGGING_LEVELS = ["ERROR", "INFO"]
OFF = "OFF"
STAGE_WIDE = "*/*"
CLOUDWATCH_POLICY = "service-role/AmazonAPIGatewayPushToCloudWatchLogs"


def _rest_levels(clients: Clients, resource_id: str) -> tuple[str, dict[str, str]]:
    """A REST stage's level (``*/*``; none set logs nothing) and each method override's own."""
    levels = {
        method: s.get("loggingLevel") or OFF for method, s in method_settings(clients, resource_id).items()
    }
    return levels.pop(STAGE_WIDE, OFF), levels


def _set_rest_levels(
    clients: Clients, resource_id: str, stage: str | None, overrides: dict[str, str]
) -> None:
    values = {STAGE_WIDE: stage} if stage else {}
    patch_method_settings(clients, resource_id, "logging/loglevel", {**values, **overrides})


def _websocket_levels(clients: Clients, resource_id: str) -> tuple[str, dict[str, str]]:
    """A WebSocket stage's default route level and each route's own. An HTTP API's stage (same
    ARN form) is refused: HTTP APIs have access logging only."""
    api, stage = v2_stage_of(resource_id)
    protocol = clients.apigatewayv2.get_api(ApiId=api)["ProtocolType"]
    if protocol != "WEBSOCKET":
        raise ValueError(
            f"{resource_id} is a stage of an {protocol} API, which has no execution logging "
            "(only access logging): APIGateway.1 is for REST and WebSocket stages"
        )
    found = clients.apigatewayv2.get_stage(ApiId=api, StageName=stage)
    routes = found.get("RouteSettings") or {}
    default = (found.get("DefaultRouteSettings") or {}).get("LoggingLevel") or OFF
    return default, {route: settings.get("LoggingLevel") or OFF for route, settings in routes.items()}


def _set_websocket_levels(
    clients: Clients, resource_id: str, stage: str | None, overrides: dict[str, str]
) -> None:
    """Each settings object changed is sent whole, with its other fields as read: whether
    UpdateStage merges a route's settings or replaces them, only its level changes."""
    api, name = v2_stage_of(resource_id)
    found = clients.apigatewayv2.get_stage(ApiId=api, StageName=name)
    changes: dict[str, Any] = {}
    if stage:
        changes["DefaultRouteSettings"] = {**(found.get("DefaultRouteSettings") or {}), "LoggingLevel": stage}
    if overrides:
        routes = found.get("RouteSettings") or {}
        changes["RouteSettings"] = {
            route: {**routes.get(route, {}), "LoggingLevel": level} for route, level in overrides.items()
        }
    clients.apigatewayv2.update_stage(ApiId=api, StageName=name, **changes)


def _is_rest(resource_id: str) -> bool:
    return resource_id.startswith("/restapis/")


def _change_levels(clients: Clients, resource_id: str, now: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Write the levels of ``wanted`` that differ from ``now``, in one UpdateStage. A method's
    or route's override that is gone now is not made again."""
    stage = wanted["LoggingLevel"] if wanted["LoggingLevel"] != now["LoggingLevel"] else None
    current = now["OverrideLoggingLevels"]
    overrides = {
        key: level
        for key, level in wanted["OverrideLoggingLevels"].items()
        if key in current and current[key] != level
    }
    if stage is None and not overrides:
        return
    write = _set_rest_levels if _is_rest(resource_id) else _set_websocket_levels
    write(clients, resource_id, stage, overrides)


@register
class EnableExecutionLogging(Action):
    """Turn on execution logging of a REST or WebSocket API stage: API Gateway writes how it
    handled each request (its errors, or with INFO everything) to CloudWatch Logs.

    Security Hub passes ERROR or INFO unless the control is given ``loggingLevel``; then only
    that one passes. The playbook maps it to ``required_level``; without it a stage that does
    not log gets ``level``. The level is the stage's (a REST stage's ``*/*`` method settings, a
    WebSocket stage's default route settings) and each method's or route's own, which replaces
    it for that method or route: every one that does not pass gets the level, one that passes
    is kept (a method logging INFO stays so). Only levels change: data tracing, metrics,
    throttling and caching stay as they are.

    API Gateway logs through one role per account and Region (its ``cloudwatchRoleArn``
    setting) and refuses to turn logging on without one. A role already set is kept.
    Otherwise the role ``role_name``, trusted by API Gateway and holding the AWS managed policy
    AmazonAPIGatewayPushToCloudWatchLogs, is set: the member-role stack makes it. Stages of HTTP APIs,
    which have no execution logging, are refused.

        remediation:
          action: apigateway.enable-execution-logging
          parameters: {level: ERROR}
    """

    name = "apigateway.enable-execution-logging"
    service = "apigateway"
    permissions = (
        "apigateway:GET",
        "apigateway:PATCH",
        "iam:GetRole",
        "iam:ListAttachedRolePolicies",
        "iam:PassRole",
    )
    service_role = ServiceRole(
        service_trust("apigateway.amazonaws.com"),
        "Lets API Gateway write execution and access logs to CloudWatch Logs (ASR, for APIGateway.1)",
        (CLOUDWATCH_POLICY,),
    )
    summary = (
        "turned on the stage's execution logging (API Gateway got its CloudWatch Logs role in the "
        "account and Region if it had none)"
    )
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "level": {"type": "string", "enum": LOGGING_LEVELS, "default": "ERROR"},
            "required_level": {"type": "string", "enum": LOGGING_LEVELS},
            "role_name": role_name_parameter("asr-service-apigateway-logs"),
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        read = _rest_levels if _is_rest(resource_id) else _websocket_levels
        stage, overrides = read(clients, resource_id)
        return {"LoggingLevel": stage, "OverrideLoggingLevels": overrides}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        required = self.params.get("required_level")
        passing = {required} if required else set(LOGGING_LEVELS)
        wanted = required or self.params["level"]
        plan: dict[str, Any] = {}
        if state["LoggingLevel"] not in passing:
            plan["LoggingLevel"] = wanted
        overrides = {
            key: level if level in passing else wanted
            for key, level in state["OverrideLoggingLevels"].items()
        }
        if overrides != state["OverrideLoggingLevels"]:
            plan["OverrideLoggingLevels"] = overrides
        return plan

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        self._give_logging_role(clients)
        _change_levels(clients, resource_id, state, {**state, **plan})

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Put back the levels the fix changed (the stage's, each method's or route's), on top
        of the levels as they are now: one the fix did not change, changed since, stays. API
        Gateway's CloudWatch Logs role setting and the role stay: every stage of the account
        and Region logs through them."""
        now = self.read(clients, resource_id)
        plan, wanted = self.plan(before), dict(now)
        if "LoggingLevel" in plan:
            wanted["LoggingLevel"] = before["LoggingLevel"]
        if "OverrideLoggingLevels" in plan:
            was = before["OverrideLoggingLevels"]
            changed = {
                key: was[key] for key, level in plan["OverrideLoggingLevels"].items() if level != was[key]
            }
            wanted["OverrideLoggingLevels"] = now["OverrideLoggingLevels"] | changed
        _change_levels(clients, resource_id, now, wanted)

    def _give_logging_role(self, clients: Clients) -> None:
        """Set the account and Region's CloudWatch Logs role when it has none. API Gateway
        refuses a role IAM made moments ago: tried again."""
        if clients.apigateway.get_account().get("cloudwatchRoleArn"):
            return
        role, fresh = self.ready_role(clients)
        operation = {"op": "replace", "path": "/cloudwatchRoleArn", "value": role["Arn"]}
        with_new_role(
            lambda: clients.apigateway.update_account(patchOperations=[operation]),
            fresh,
            answered("BadRequestException", saying="role ARN does not have required permissions"),
        )
