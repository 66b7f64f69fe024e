"""Remediation actions, registered by name.

An action is a small class that declares, next to its code, the AWS service it calls,
the IAM permissions it needs and the JSON schema of its parameters. Playbooks name
actions; the registry is how a name in YAML becomes code, and how a typo is caught
when playbooks load rather than when a fix runs.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any, ClassVar

import jsonschema

if TYPE_CHECKING:
    from asr.aws import Clients

REGISTRY: dict[str, type[Action]] = {}


class ActionError(ValueError):
    """An action name or its parameters are wrong."""


class Action:
    """Read a resource, say what must change, change it.

    ``read`` and ``apply`` get the clients of the resource's account and region
    (``clients.ec2``, ``clients["lambda"]``). ``plan`` returns the settings that must
    change, as ``{setting: value it will get}``; an empty plan means the resource
    already complies. The runner (``asr.remediate``)
    records the current value of exactly those settings before ``apply``, and reads the
    resource back afterwards to verify.
    """

    name: ClassVar[str]
    service: ClassVar[str]
    permissions: ClassVar[tuple[str, ...]]
    schema: ClassVar[dict[str, Any]] = {"type": "object", "additionalProperties": False}
    summary: ClassVar[str]

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        raise NotImplementedError


def register(cls: type[Action]) -> type[Action]:
    if cls.name in REGISTRY:
        raise ActionError(f"action {cls.name!r} is registered twice")
    REGISTRY[cls.name] = cls
    return cls


def get_action(name: str) -> type[Action]:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ActionError(f"unknown action {name!r} (known: {known})") from None


def validate_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Check parameters against the action's schema; return them with schema defaults filled."""
    cls = get_action(name)
    try:
        jsonschema.validate(params, cls.schema)
    except jsonschema.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "parameters"
        raise ActionError(f"action {name!r}: {where}: {exc.message}") from None
    defaults = {
        key: spec["default"] for key, spec in cls.schema.get("properties", {}).items() if "default" in spec
    }
    return {**defaults, **params}


def build(name: str, params: dict[str, Any]) -> Action:
    return get_action(name)(validate_params(name, params))


def _load_modules() -> None:
    """Import every module of this package: importing a module registers its actions."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_load_modules()
