"""API Gateway fixes: REST API stages that cache responses unencrypted."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients

# What a playbook's pattern takes from a stage's ARN:
# arn:aws:apigateway:<region>::/restapis/<api>/stages/<stage>.
STAGE_PATH = re.compile(r"^/restapis/([A-Za-z0-9]+)/stages/([A-Za-z0-9_-]+)$")


def stage_of(resource_id: str) -> tuple[str, str]:
    """The REST API id and stage name of ``/restapis/<api>/stages/<stage>``."""
    match = STAGE_PATH.match(resource_id)
    if not match:
        raise ValueError(f"{resource_id!r} is not a REST API stage (/restapis/<api id>/stages/<stage name>)")
    return match.group(1), match.group(2)


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
        api, stage = stage_of(resource_id)
        settings = clients.apigateway.get_stage(restApiId=api, stageName=stage).get("methodSettings") or {}
        unencrypted = [
            method
            for method, setting in settings.items()
            if setting.get("cachingEnabled") and not setting.get("cacheDataEncrypted")
        ]
        return {"UnencryptedCaches": sorted(unencrypted)}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"UnencryptedCaches": []} if state["UnencryptedCaches"] else {}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        self._set(clients, resource_id, state["UnencryptedCaches"], encrypted=True)

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        self._set(clients, resource_id, before["UnencryptedCaches"], encrypted=False)

    @staticmethod
    def _set(clients: Clients, resource_id: str, methods: list[str], encrypted: bool) -> None:
        api, stage = stage_of(resource_id)
        value = "true" if encrypted else "false"
        operations = [
            {"op": "replace", "path": f"/{method}/caching/dataEncrypted", "value": value}
            for method in methods
        ]
        clients.apigateway.update_stage(restApiId=api, stageName=stage, patchOperations=operations)
