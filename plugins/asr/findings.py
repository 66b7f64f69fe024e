"""Finding intake: an ASFF finding becomes a validated routing record, or a reason why not.

Everything downstream acts on the routing record alone, so every check that keeps
the product from acting on the wrong thing happens here, once.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from asr import actions
from asr.config import ACCOUNT_RE, REGION_RE
from asr.playbooks import Playbook, PlaybookRegistry
from asr.standards import CONSOLIDATED, STANDARDS, UNREADABLE, ControlRef, control_refs

# What every Region's ProductArn of Security Hub's own product ends with
# (arn:<partition>:securityhub:<region>::product/aws/securityhub). A custom integration in a
# member account may import findings under any ProductName, but only under its own product's
# ARN (arn:...:<account>:product/<account>/default), which never ends so.
OWN_PRODUCT_ARN_END = "::product/aws/securityhub"
SECURITYHUB_PRODUCT = re.compile(rf"^arn:aws[a-z-]*:securityhub:[a-z0-9-]+{re.escape(OWN_PRODUCT_ARN_END)}$")
ARN_PARTS = re.compile(r"^arn:(aws[a-z-]*):[a-z0-9-]+:([a-z0-9-]*):(\d*):")
ACTIONABLE_COMPLIANCE = {"FAILED", "WARNING"}
ACTIONABLE_WORKFLOW = {"NEW", "NOTIFIED"}


class FindingError(ValueError):
    """The finding cannot be acted on; the message says why, for a person."""

    def __init__(self, finding_id: str, reason: str) -> None:
        super().__init__(reason)
        self.finding_id = finding_id
        self.reason = reason


class NoPlaybook(FindingError):
    """A well-formed finding of a control no playbook fixes: most of Security Hub's controls.
    A sweep counts these by control rather than list each among the rejections."""

    def __init__(self, finding_id: str, control_id: str) -> None:
        super().__init__(finding_id, f"no playbook fixes control {control_id}")
        self.control_id = control_id


@dataclass(frozen=True)
class RoutingRecord:
    finding_id: str
    product_arn: str
    control_id: str
    standard: str
    standard_control_id: str
    playbook: str
    account_id: str
    region: str
    resource_type: str
    resource_arn: str
    resource_id: str
    parameters: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoutingRecord:
        return cls(**data)


def _str(finding: dict[str, Any], *path: str) -> str | None:
    node: Any = finding
    for step in path:
        if not isinstance(node, dict):
            return None
        node = node.get(step)
    return node if isinstance(node, str) else None


def _describe(ref: ControlRef) -> str:
    if ref.standard == UNREADABLE:
        return f"{ref.source} {ref.control!r} names no control asr can read"
    if ref.standard not in STANDARDS and ref.standard != CONSOLIDATED:
        return f"{ref.source} names standard {ref.standard}, which asr does not know"
    return f"{STANDARDS.get(ref.standard, ref.standard)} control {ref.control} is not routed by any playbook"


def control_of(
    finding: dict[str, Any], finding_id: str, playbooks: PlaybookRegistry
) -> tuple[str, ControlRef]:
    """The consolidated control id, read from every field that names one; they must agree.

    Returns it with the reference that names the standard (per-standard findings) or the
    consolidated one.
    """
    refs = control_refs(finding)
    if not refs:
        raise FindingError(
            finding_id,
            "no control id in Id, GeneratorId, ProductFields.StandardsControlArn "
            "or Compliance.SecurityControlId",
        )
    normalised = [(ref, playbooks.consolidated_id(ref)) for ref in refs]
    standards = {ref.standard for ref in refs if ref.standard not in (CONSOLIDATED, UNREADABLE)}
    controls = {control for _, control in normalised if control}
    by_standard = {control for ref, control in normalised if control and ref.standard != CONSOLIDATED}
    # The standard's id and Security Hub's consolidated one may differ where one playbook fixes
    # both (AWS's tables give CIS 1.4.0's 3.6 as CloudTrail.7 in one place and S3.9 in another;
    # the S3.9 playbook fixes both). Ids of one kind must agree among themselves.
    fixed_by = {getattr(playbooks.for_control(control), "control_id", control) for control in controls}
    if len(standards) > 1 or len(by_standard) > 1 or len(controls - by_standard) > 1 or len(fixed_by) > 1:
        named = ", ".join(str(ref) for ref in refs)
        raise FindingError(finding_id, f"the finding's control ids disagree: {named}")
    own = [c for ref, c in normalised if c and ref.source == "Compliance.SecurityControlId"]
    unknown = [ref for ref, control in normalised if control is None]
    if own:
        # Security Hub's own consolidated id routes it: a standard asr does not know yet (a
        # new version of CIS, say), or an id of a known one that no playbook lists (AWS's
        # tables disagree on some), does not make the finding unreadable. Ids that name
        # another control still do (above).
        unknown = [ref for ref in unknown if ref.standard in (CONSOLIDATED, UNREADABLE)]
    if unknown:
        reason = _describe(unknown[0])
        if controls:
            reason += f" (the finding also names {controls.pop()})"
        raise FindingError(finding_id, reason)
    named_by_standard = next((ref for ref in refs if ref.standard != CONSOLIDATED), refs[0])
    return (own or sorted(controls))[0], named_by_standard


def control_parameters(finding: dict[str, Any], finding_id: str, playbook: Playbook) -> dict[str, Any]:
    """The control's own Security Hub parameters, as the playbook's action parameters."""
    raw = finding.get("Compliance", {}).get("SecurityControlParameters") or []
    if not isinstance(raw, list):
        raise FindingError(finding_id, "Compliance.SecurityControlParameters is not a list")
    schema = actions.get_action(playbook.action).schema.get("properties", {})
    values: dict[str, Any] = {}
    for item in raw:
        name = item.get("Name") if isinstance(item, dict) else None
        target = playbook.control_parameters.get(name) if isinstance(name, str) else None
        if target is None:
            continue
        value = item.get("Value")
        if value is None:
            continue  # the API model makes Value optional: a parameter sent without one is unset
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise FindingError(finding_id, f"control parameter {name} has no list of string values")
        kind = schema[target].get("type")
        if not value and kind != "array":
            continue  # Security Hub sends a parameter left unset as []: the playbook's value stands
        values[target] = _convert(value, schema[target], name, finding_id)
    if values:  # the playbook's own parameters were validated when it was loaded
        try:
            _validate(playbook.action, json.dumps({**playbook.parameters, **values}, sort_keys=True))
        except actions.ActionError as exc:
            raise FindingError(finding_id, f"control parameters: {exc}") from None
    return values


@functools.lru_cache(maxsize=256)
def _validate(action: str, parameters: str) -> None:
    """Validate once per distinct set: a sweep's findings of one control mostly carry the same."""
    actions.validate_params(action, json.loads(parameters))


def _convert(value: list[str], spec: dict[str, Any], name: str, finding_id: str) -> Any:
    """Security Hub's list of strings as the type the action's schema gives the parameter: an
    array's items by the schema's item type, so a tag key "2024" stays a string."""
    kind = spec.get("type")
    try:
        if kind == "integer":
            return int(value[0])
        if kind == "boolean":
            if value[0].lower() not in ("true", "false"):
                raise ValueError(value[0])
            return value[0].lower() == "true"
        if kind == "array":
            return [int(v) for v in value] if spec.get("items", {}).get("type") == "integer" else list(value)
        return value[0]
    except ValueError:
        raise FindingError(finding_id, f"control parameter {name} value {value!r} is not a {kind}") from None


def check_actionable(finding: dict[str, Any], finding_id: str) -> None:
    compliance = _str(finding, "Compliance", "Status")
    if compliance not in ACTIONABLE_COMPLIANCE:
        raise FindingError(finding_id, f"Compliance.Status is {compliance}, not FAILED or WARNING")
    record_state = _str(finding, "RecordState")
    if record_state != "ACTIVE":
        raise FindingError(finding_id, f"RecordState is {record_state}, not ACTIVE")
    workflow = _str(finding, "Workflow", "Status")
    if workflow not in ACTIONABLE_WORKFLOW:
        raise FindingError(finding_id, f"Workflow.Status is {workflow}, not NEW or NOTIFIED")


def one_line(value: Any) -> str:
    """A finding's own text (a control id, a message) on one line: a newline in it would
    start a line of its own in the Markdown, a heading or a list item nobody wrote; a
    control character (an escape sequence) would reach a terminal or a notification."""
    return " ".join("".join(c if c.isprintable() else " " for c in str(value)).split())


def of_security_hub(finding: dict[str, Any]) -> bool:
    """Whether a finding is of Security Hub's own product, by its ARN: its name may be taken
    by a custom integration in any member account."""
    return bool(SECURITYHUB_PRODUCT.fullmatch(_str(finding, "ProductArn") or ""))


def parse_finding(finding: Any, playbooks: PlaybookRegistry) -> RoutingRecord:
    """Validate one ASFF finding and route it to its playbook; raise FindingError otherwise."""
    if not isinstance(finding, dict):
        raise FindingError("", f"a finding must be a JSON object, not {type(finding).__name__}")
    finding_id = _str(finding, "Id")
    if not finding_id:
        raise FindingError("", "the finding has no Id")
    product_arn = _str(finding, "ProductArn") or ""
    if not of_security_hub(finding):
        raise FindingError(finding_id, f"ProductArn {product_arn!r} is not Security Hub's own product")
    check_actionable(finding, finding_id)
    control_id, named = control_of(finding, finding_id, playbooks)
    playbook = playbooks.for_control(control_id)
    if playbook is None:
        raise NoPlaybook(finding_id, control_id)

    account_id = _str(finding, "AwsAccountId") or ""
    if not ACCOUNT_RE.fullmatch(account_id):
        raise FindingError(finding_id, f"AwsAccountId {account_id!r} is not a 12-digit account id")
    resources = finding.get("Resources")
    if not isinstance(resources, list) or not resources or not isinstance(resources[0], dict):
        raise FindingError(finding_id, "the finding has no Resources")
    resource = resources[0]
    resource_arn = _str(resource, "Id") or ""
    resource_type = _str(resource, "Type") or ""
    if resource_type not in playbook.resource_types:
        raise FindingError(
            finding_id,
            f"resource type {resource_type!r} is not the {' or '.join(playbook.resource_types)} the "
            f"{playbook.control_id} playbook fixes",
        )
    try:
        resource_id = playbook.extract_resource_id(resource_arn, account_id)
    except ValueError as exc:
        raise FindingError(finding_id, str(exc)) from None

    arn = ARN_PARTS.match(resource_arn)
    partition = product_arn.split(":")[1]
    if arn and arn.group(1) != partition:
        # Security Hub keeps each partition's findings apart: a mix is a forged or broken finding.
        raise FindingError(
            finding_id,
            f"resource {resource_arn!r} is in partition {arn.group(1)}, not the finding's {partition}",
        )
    if arn and arn.group(3) and arn.group(3) != account_id:
        raise FindingError(
            finding_id,
            f"resource {resource_arn!r} is in account {arn.group(3)}, not AwsAccountId {account_id}",
        )
    region = (arn.group(2) if arn else None) or _str(resource, "Region") or _str(finding, "Region") or ""
    if not REGION_RE.fullmatch(region):
        raise FindingError(finding_id, f"cannot tell the resource's region (got {region!r})")
    return RoutingRecord(
        finding_id=finding_id,
        product_arn=product_arn,
        control_id=control_id,
        standard=named.standard,
        standard_control_id=named.control,
        playbook=playbook.control_id,
        account_id=account_id,
        region=region,
        resource_type=resource_type,
        resource_arn=resource_arn,
        resource_id=resource_id,
        parameters=control_parameters(finding, finding_id, playbook),
    )


def findings_in(document: Any) -> list[Any]:
    """The findings a JSON document carries: one finding, a list of them, a GetFindings
    response, or an EventBridge Security Hub event (``detail.findings``)."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        detail = document.get("detail")
        if isinstance(detail, dict) and "findings" in detail:
            found = detail["findings"]
            return found if isinstance(found, list) else [found]
        if "Findings" in document and "Id" not in document:
            found = document["Findings"]
            return found if isinstance(found, list) else [found]
    return [document]


def explain(finding: Any, playbooks: PlaybookRegistry) -> dict[str, Any]:
    """What asr would do with a finding, as one JSON-able object."""
    try:
        record = parse_finding(finding, playbooks)
    except FindingError as exc:
        return {"finding_id": exc.finding_id or None, "error": exc.reason}
    playbook = playbooks.playbooks[record.playbook]
    return record.to_dict() | {"action": playbook.action, "scope": playbook.scope}
