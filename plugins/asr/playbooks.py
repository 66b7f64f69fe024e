"""Playbooks: one YAML file per control, validated when loaded.

A playbook is data a security engineer can read and extend: which control ids it
fixes, how the resource id is taken from a finding, and which registered action
(with which parameters) fixes it. A file that does not validate stops loading with
an error naming the file, the field and the problem.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

import jsonschema
import yaml

from asr import actions
from asr.config import ConfigError, env_value
from asr.standards import CONSOLIDATED, CONTROL_PARAMETERS, SAME_IDS, STANDARDS, ControlRef

CONTROL_ID = r"^[A-Za-z][A-Za-z0-9]*\.\d+$"
SCOPES = {
    "regional": "a resource in one region",
    "global": "a global resource (an IAM user, an S3 bucket)",
    "account": "an account-wide setting, once per account",
    "account-regional": "an account setting of one region, once per account and region",
}

# libyaml's safe loader where PyYAML was built with it: the same documents, parsed faster.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class PlaybookLoader(_SAFE_LOADER):  # type: ignore[misc,valid-type]
    """The safe loader, refusing a repeated key: PyYAML keeps the last one, so a second
    ``disruptive: false`` would drop a fix's approval, or a second ``EC2.13:`` a block of
    standard ids, without a word."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return dict(super().construct_mapping(node, deep=deep))


SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["control_id", "title", "severity", "scope", "resource", "remediation"],
    "properties": {
        "control_id": {"type": "string", "pattern": CONTROL_ID},
        "title": {"type": "string", "minLength": 1},
        "also_fixes": {"type": "array", "items": {"type": "string", "pattern": CONTROL_ID}},
        "standards": {
            "type": "object",
            "propertyNames": {"pattern": CONTROL_ID},
            "additionalProperties": {
                "type": "object",
                "propertyNames": {"enum": sorted(STANDARDS)},
                "additionalProperties": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "pattern": r"^[A-Za-z0-9.]+$"},
                },
            },
        },
        "severity": {"enum": ["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"]},
        "scope": {"enum": sorted(SCOPES)},
        "control_parameters": {
            "type": "object",
            "additionalProperties": {"type": "string", "pattern": r"^[a-z_]+$"},
        },
        "resource": {
            "type": "object",
            "additionalProperties": False,
            "required": ["type", "id"],
            "properties": {
                "type": {
                    "oneOf": [
                        {"type": "string", "minLength": 1},
                        {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
                    ]
                },
                "id": {
                    "oneOf": [
                        {"enum": ["arn", "account"]},
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["pattern"],
                            "properties": {"pattern": {"type": "string", "minLength": 1}},
                        },
                    ]
                },
            },
        },
        "remediation": {
            "type": "object",
            "additionalProperties": False,
            "required": ["action"],
            "properties": {
                "action": {"type": "string"},
                "parameters": {"type": "object"},
                "ssm_document": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name", "parameters"],
                    "properties": {
                        "name": {"type": "string", "pattern": r"^[A-Za-z0-9_.:/-]{3,128}$"},
                        "version": {"type": "string"},
                        "parameters": {"type": "object", "additionalProperties": {"type": "string"}},
                        "timeout_minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
                        "poll_seconds": {"type": "integer", "minimum": 1, "maximum": 600},
                    },
                },
            },
        },
        "disruptive": {"type": "boolean"},
        # What a disruptive fix may break, for the person asked to approve it.
        "risk": {"type": "string", "minLength": 20, "maxLength": 600},
        "auto_remediate": {"type": "boolean"},
    },
}

ACCOUNT_RESOURCE = re.compile(r"^AWS::::Account:(\d{12})$")
# What an SSM document parameter may be built from, e.g. "{resource_id}".
DOCUMENT_FIELDS = {"resource_id", "resource_arn", "account_id", "region", "automation_role_arn"}


@dataclass(frozen=True)
class SsmDocument:
    """Apply a fix by running this SSM Automation document instead of the action's own apply.

    The action still reads the resource before (nothing to do? the before-state) and after
    (verification), so both executors report the same outcomes.
    """

    name: str
    parameters: dict[str, str]
    version: str | None = None
    timeout_minutes: int = 30
    poll_seconds: int = 15

    def render(self, values: dict[str, str]) -> dict[str, list[str]]:
        return {key: [template.format(**values)] for key, template in self.parameters.items()}


class PlaybookError(ValueError):
    """A playbook file is invalid or conflicts with another."""


@dataclass(frozen=True)
class Playbook:
    control_id: str
    title: str
    severity: str
    scope: str
    resource_types: tuple[str, ...]
    resource_id: str | re.Pattern[str]
    action: str
    parameters: dict[str, Any]
    also_fixes: tuple[str, ...] = ()
    standards: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    control_parameters: dict[str, str] = field(default_factory=dict)
    ssm_document: SsmDocument | None = None
    disruptive: bool = False
    risk: str = ""
    auto_remediate: bool = False
    source: str = ""
    group_id: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "group_id", self.control_id.replace(".", "_"))

    @property
    def resource_type(self) -> str:
        """The main ASFF resource type (a playbook may accept several, e.g. DB and cluster snapshots)."""
        return self.resource_types[0]

    @property
    def controls(self) -> tuple[str, ...]:
        """Every consolidated control id this playbook fixes."""
        return (self.control_id, *self.also_fixes)

    @property
    def regional(self) -> bool:
        """Whether the fix acts per region (else once, in any region)."""
        return self.scope in ("regional", "account-regional")

    def extract_resource_id(self, resource_arn: str, account_id: str) -> str:
        """The id the action acts on, or a ValueError saying why the finding's resource does not fit."""
        if self.resource_id == "arn":
            return resource_arn
        if self.resource_id == "account":
            match = ACCOUNT_RESOURCE.fullmatch(resource_arn)
            if not match or match.group(1) != account_id:
                raise ValueError(f"resource {resource_arn!r} is not the account AWS::::Account:{account_id}")
            return account_id
        assert isinstance(self.resource_id, re.Pattern)
        match = self.resource_id.fullmatch(resource_arn)
        if not match:
            raise ValueError(
                f"resource {resource_arn!r} does not match the {self.control_id} playbook's "
                f"pattern {self.resource_id.pattern!r}"
            )
        return match.group(1)

    def build_action(self, overrides: dict[str, Any] | None = None) -> actions.Action:
        return actions.build(self.action, {**self.parameters, **(overrides or {})})


def _error_path(exc: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in exc.absolute_path) or "(top level)"


def parse_playbook(data: Any, source: str) -> Playbook:
    try:
        actions.validate_against(data, SCHEMA)
    except jsonschema.ValidationError as exc:
        raise PlaybookError(f"{source}: {_error_path(exc)}: {exc.message}") from None
    resource_id: str | re.Pattern[str] = data["resource"]["id"]
    if isinstance(resource_id, dict):
        try:
            resource_id = re.compile(resource_id["pattern"])
        except re.error as exc:
            raise PlaybookError(f"{source}: resource.id.pattern: invalid regex: {exc}") from None
        if resource_id.groups != 1:
            raise PlaybookError(
                f"{source}: resource.id.pattern: needs exactly one capture group, has {resource_id.groups}"
            )
    account_level = data["scope"].startswith("account")
    if account_level != (data["resource"]["id"] == "account"):
        raise PlaybookError(
            f"{source}: resource.id: scope {data['scope']} needs "
            + ("id: account" if account_level else "a pattern or arn, not account")
        )
    controls = {data["control_id"], *data.get("also_fixes", ())}
    for control in data.get("standards", {}):
        if control not in controls:
            raise PlaybookError(
                f"{source}: standards.{control}: not this playbook's control_id or one of also_fixes"
            )
    remediation = data["remediation"]
    try:
        parameters = actions.validate_params(remediation["action"], remediation.get("parameters", {}))
    except actions.ActionError as exc:
        raise PlaybookError(f"{source}: remediation: {exc}") from None
    document = remediation.get("ssm_document")
    for key, template in (document or {}).get("parameters", {}).items():
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        except ValueError as exc:
            raise PlaybookError(f"{source}: remediation.ssm_document.parameters.{key}: {exc}") from None
        if fields - DOCUMENT_FIELDS:
            raise PlaybookError(
                f"{source}: remediation.ssm_document.parameters.{key}: unknown field(s) "
                f"{sorted(fields - DOCUMENT_FIELDS)}; allowed: {sorted(DOCUMENT_FIELDS)}"
            )
    if data.get("disruptive") and not data.get("risk"):
        raise PlaybookError(
            f"{source}: risk: a disruptive playbook says what its fix may break "
            "(the approval request shows it)"
        )
    accepted = actions.get_action(remediation["action"]).schema.get("properties", {})
    known = set().union(*(CONTROL_PARAMETERS.get(control, ()) for control in sorted(controls)))
    for name, target in data.get("control_parameters", {}).items():
        if name not in known:
            has = f"it has {sorted(known)}" if known else "asr knows none (asr.standards.CONTROL_PARAMETERS)"
            raise PlaybookError(
                f"{source}: control_parameters.{name}: not a Security Hub parameter of "
                f"{', '.join(sorted(controls))}; {has}"
            )
        if target not in accepted:
            raise PlaybookError(
                f"{source}: control_parameters.{name}: action {remediation['action']} "
                f"has no parameter {target!r}"
            )
    return Playbook(
        control_id=data["control_id"],
        title=data["title"],
        severity=data["severity"],
        scope=data["scope"],
        resource_types=tuple(
            [data["resource"]["type"]]
            if isinstance(data["resource"]["type"], str)
            else data["resource"]["type"]
        ),
        resource_id=resource_id,
        action=remediation["action"],
        parameters=parameters,
        also_fixes=tuple(data.get("also_fixes", ())),
        standards={
            control: {std: tuple(ids) for std, ids in per_standard.items()}
            for control, per_standard in data.get("standards", {}).items()
        },
        control_parameters=dict(data.get("control_parameters", {})),
        ssm_document=SsmDocument(**document) if document else None,
        disruptive=data.get("disruptive", False),
        risk=" ".join(str(data.get("risk", "")).split()),
        auto_remediate=data.get("auto_remediate", False),
        source=source,
    )


class PlaybookRegistry:
    """Every playbook, and the routing table they declare together.

    ``routes`` maps each consolidated control id to its playbook; ``standard_ids`` maps
    each (standard, id in that standard) to the consolidated id. A control id claimed by
    two playbooks, or a standard id mapped to two controls, is a load error.
    """

    def __init__(self, playbooks: list[Playbook]) -> None:
        self.playbooks = {p.control_id: p for p in playbooks}
        self.routes: dict[str, Playbook] = {}
        self.standard_ids: dict[tuple[str, str], str] = {}
        claimed_by: dict[tuple[str, str], Playbook] = {}
        for playbook in playbooks:
            for control in playbook.controls:
                other = self.routes.get(control)
                if other is not None:
                    raise PlaybookError(
                        f"{playbook.source}: control {control} is already routed by {other.source}"
                    )
                self.routes[control] = playbook
            for control, per_standard in playbook.standards.items():
                for standard, ids in per_standard.items():
                    for standard_id in ids:
                        key = (standard, standard_id)
                        if key in claimed_by:
                            raise PlaybookError(
                                f"{playbook.source}: standards.{control}: {STANDARDS[standard]} "
                                f"{standard_id} is already mapped by {claimed_by[key].source}"
                            )
                        claimed_by[key] = playbook
                        self.standard_ids[key] = control

    def consolidated_id(self, ref: ControlRef) -> str | None:
        """The consolidated control id a reference names, or None when it cannot be told."""
        if ref.standard == CONSOLIDATED:
            return ref.control
        mapped = self.standard_ids.get((ref.standard, ref.control))
        if mapped is None and ref.standard in SAME_IDS:
            return ref.control
        return mapped

    def for_control(self, control_id: str) -> Playbook | None:
        return self.routes.get(control_id)

    def __iter__(self) -> Iterator[Playbook]:
        return iter(sorted(self.playbooks.values(), key=lambda p: p.control_id))

    def __len__(self) -> int:
        return len(self.playbooks)


PROJECT_DIR = Path(__file__).resolve().parents[2] / "playbooks"


def default_dir() -> Path:
    """``ASR_PLAYBOOK_DIR``, else the project's ``playbooks/`` folder."""
    configured = env_value("ASR_PLAYBOOK_DIR", "")
    return Path(configured) if configured else PROJECT_DIR


def _refuse_default_dir(directory: Path, problem: str) -> NoReturn:
    """The folder every DAG and task loads its playbooks from must exist and hold some: an empty
    or mistyped one would load none, and every finding would read "no playbook fixes control"."""
    configured = env_value("ASR_PLAYBOOK_DIR", "")
    if configured:
        raise ConfigError(f"ASR_PLAYBOOK_DIR {configured!r} {problem}")
    raise PlaybookError(f"{directory}: the playbook folder {problem} (set ASR_PLAYBOOK_DIR)")


# Each playbook file's text when it was last loaded in this process, and what it gave. Every
# load reads every file again (an edit counts from the next task on), but parses and checks
# only a file whose text changed: 40-odd files cost a task process about 40 ms of CPU, and
# the preload plugin's load before the fork leaves this filled for every task.
_loaded: dict[str, tuple[str, Playbook]] = {}


def load_playbooks(directory: Path | None = None) -> PlaybookRegistry:
    """The playbooks of ``directory`` (a folder of none gives none), else those of the folder
    ``ASR_PLAYBOOK_DIR`` names, which must hold some."""
    configured = directory is None
    directory = default_dir() if directory is None else directory
    if not directory.is_dir():
        if configured:
            _refuse_default_dir(directory, "is not a folder")
        raise PlaybookError(f"{directory}: playbook directory not found (set ASR_PLAYBOOK_DIR)")
    misnamed = sorted(p.name for p in directory.glob("*.yml"))
    if misnamed:  # not loaded, and so never fixed, with nothing said
        raise PlaybookError(f"{directory}: playbook files end in .yaml, not .yml: {', '.join(misnamed)}")
    paths = sorted(directory.glob("*.yaml"))
    if not paths and configured:
        _refuse_default_dir(directory, "holds no playbooks (*.yaml files)")
    playbooks = []
    for path in paths:
        text = path.read_text()
        known = _loaded.get(str(path))
        if known is not None and known[0] == text:
            playbooks.append(known[1])
            continue
        try:
            data = yaml.load(text, Loader=PlaybookLoader)
        except yaml.YAMLError as exc:
            raise PlaybookError(f"{path}: not valid YAML: {exc}") from None
        playbook = parse_playbook(data, str(path))
        if path.stem != playbook.control_id:
            raise PlaybookError(f"{path}: control_id: {playbook.control_id} must match the file name")
        _loaded[str(path)] = (text, playbook)
        playbooks.append(playbook)
    return PlaybookRegistry(playbooks)


@cache
def registry() -> PlaybookRegistry:
    """The default playbooks, loaded once per process."""
    return load_playbooks()
