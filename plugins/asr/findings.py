"""Finding intake: an ASFF finding becomes a validated routing record, or a reason why not.

Everything downstream acts on the routing record alone, so every check that keeps
the product from acting on the wrong thing happens here, once.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from asr.playbooks import PlaybookRegistry

ACCOUNT_RE = re.compile(r"^\d{12}$")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
SECURITYHUB_PRODUCT = re.compile(r"^arn:aws[a-z-]*:securityhub:[a-z0-9-]+::product/aws/securityhub$")
ARN_PARTS = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:([a-z0-9-]*):(\d*):")
CONSOLIDATED_ID = re.compile(r":security-control/([^/]+)/finding/")
CONSOLIDATED_GENERATOR = re.compile(r"^security-control/([^/]+)$")

ACTIONABLE_COMPLIANCE = {"FAILED", "WARNING"}
ACTIONABLE_WORKFLOW = {"NEW", "NOTIFIED"}


class FindingError(ValueError):
    """The finding cannot be acted on; the message says why, for a person."""

    def __init__(self, finding_id: str, reason: str) -> None:
        super().__init__(reason)
        self.finding_id = finding_id
        self.reason = reason


@dataclass(frozen=True)
class RoutingRecord:
    finding_id: str
    product_arn: str
    control_id: str
    playbook: str
    account_id: str
    region: str
    resource_type: str
    resource_arn: str
    resource_id: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> RoutingRecord:
        return cls(**data)


def _str(finding: dict[str, Any], *path: str) -> str | None:
    node: Any = finding
    for step in path:
        if not isinstance(node, dict):
            return None
        node = node.get(step)
    return node if isinstance(node, str) else None


def control_id_of(finding: dict[str, Any], finding_id: str) -> str:
    """The control, read from every field that names it; they must agree."""
    named: dict[str, str] = {}
    compliance = _str(finding, "Compliance", "SecurityControlId")
    if compliance:
        named["Compliance.SecurityControlId"] = compliance
    generator = CONSOLIDATED_GENERATOR.match(_str(finding, "GeneratorId") or "")
    if generator:
        named["GeneratorId"] = generator.group(1)
    in_id = CONSOLIDATED_ID.search(finding_id)
    if in_id:
        named["Id"] = in_id.group(1)
    if not named:
        raise FindingError(finding_id, "no control id in Compliance.SecurityControlId, GeneratorId or Id")
    if len(set(named.values())) > 1:
        sources = ", ".join(f"{k}={v}" for k, v in named.items())
        raise FindingError(finding_id, f"the finding's control ids disagree: {sources}")
    return next(iter(named.values()))


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


def parse_finding(finding: Any, playbooks: PlaybookRegistry) -> RoutingRecord:
    """Validate one ASFF finding and route it to its playbook; raise FindingError otherwise."""
    if not isinstance(finding, dict):
        raise FindingError("", f"a finding must be a JSON object, not {type(finding).__name__}")
    finding_id = _str(finding, "Id")
    if not finding_id:
        raise FindingError("", "the finding has no Id")
    product_arn = _str(finding, "ProductArn") or ""
    if not SECURITYHUB_PRODUCT.match(product_arn):
        raise FindingError(finding_id, f"ProductArn {product_arn!r} is not Security Hub's own product")
    check_actionable(finding, finding_id)
    control_id = control_id_of(finding, finding_id)
    playbook = playbooks.for_control(control_id)
    if playbook is None:
        raise FindingError(finding_id, f"no playbook fixes control {control_id}")

    account_id = _str(finding, "AwsAccountId") or ""
    if not ACCOUNT_RE.match(account_id):
        raise FindingError(finding_id, f"AwsAccountId {account_id!r} is not a 12-digit account id")
    resources = finding.get("Resources")
    if not isinstance(resources, list) or not resources or not isinstance(resources[0], dict):
        raise FindingError(finding_id, "the finding has no Resources")
    resource = resources[0]
    resource_arn = _str(resource, "Id") or ""
    resource_type = _str(resource, "Type") or ""
    if resource_type != playbook.resource_type:
        raise FindingError(
            finding_id,
            f"resource type {resource_type!r} is not the {playbook.resource_type} the "
            f"{playbook.control_id} playbook fixes",
        )
    try:
        resource_id = playbook.extract_resource_id(resource_arn, account_id)
    except ValueError as exc:
        raise FindingError(finding_id, str(exc)) from None

    arn = ARN_PARTS.match(resource_arn)
    if arn and arn.group(2) and arn.group(2) != account_id:
        raise FindingError(
            finding_id,
            f"resource {resource_arn!r} is in account {arn.group(2)}, not AwsAccountId {account_id}",
        )
    region = (arn.group(1) if arn else None) or _str(resource, "Region") or _str(finding, "Region") or ""
    if not REGION_RE.match(region):
        raise FindingError(finding_id, f"cannot tell the resource's region (got {region!r})")
    return RoutingRecord(
        finding_id=finding_id,
        product_arn=product_arn,
        control_id=control_id,
        playbook=playbook.control_id,
        account_id=account_id,
        region=region,
        resource_type=resource_type,
        resource_arn=resource_arn,
        resource_id=resource_id,
    )
