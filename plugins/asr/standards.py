"""Security Hub standards, and where a finding names its control in each of them.

A finding may name its control in up to four places (``Id``, ``GeneratorId``,
``ProductFields.StandardsControlArn``, ``Compliance.SecurityControlId``), in the
standard's own numbering (CIS ``4.1``, PCI ``PCI.EC2.5``) or the consolidated one
(``EC2.13``). This module reads those places; playbooks say how a standard's ids map
to consolidated ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

CONSOLIDATED = "security-control"
UNREADABLE = "unreadable"

# Standard key (as it appears in finding ids and ARNs) -> short name people know it by.
STANDARDS: dict[str, str] = {
    "aws-foundational-security-best-practices/v/1.0.0": "AFSBP 1.0.0",
    "cis-aws-foundations-benchmark/v/1.2.0": "CIS 1.2.0",
    "cis-aws-foundations-benchmark/v/1.4.0": "CIS 1.4.0",
    "cis-aws-foundations-benchmark/v/3.0.0": "CIS 3.0.0",
    "pci-dss/v/3.2.1": "PCI DSS 3.2.1",
    "nist-800-53/v/5.0.0": "NIST 800-53 5.0.0",
}
# Standards that number their controls as the consolidated control ids do.
SAME_IDS = {"aws-foundational-security-best-practices/v/1.0.0", "nist-800-53/v/5.0.0"}
# Security Hub's own names of the parameters a control takes
# (``Compliance.SecurityControlParameters[].Name``). A playbook may map only these, so a
# misspelt name fails its load instead of never matching a finding.
CONTROL_PARAMETERS: dict[str, frozenset[str]] = {
    "APIGateway.1": frozenset({"loggingLevel"}),
    "CloudWatch.16": frozenset({"minRetentionTime"}),
    "Config.1": frozenset({"includeConfigServiceLinkedRoleCheck"}),
    "ElastiCache.1": frozenset({"snapshotRetentionPeriod"}),
    "DynamoDB.1": frozenset(
        {
            "minProvisionedReadCapacity",
            "minProvisionedWriteCapacity",
            "targetReadUtilization",
            "targetWriteUtilization",
        }
    ),
    "DynamoDB.5": frozenset({"requiredTagKeys"}),
    "EC2.4": frozenset({"AllowedDays"}),
    "EC2.18": frozenset({"authorizedTcpPorts", "authorizedUdpPorts"}),
    "GuardDuty.2": frozenset({"requiredTagKeys"}),
    "GuardDuty.4": frozenset({"requiredTagKeys"}),
    "IAM.7": frozenset(
        {
            "MaxPasswordAge",
            "MinimumPasswordLength",
            "PasswordReusePrevention",
            "RequireLowercaseCharacters",
            "RequireNumbers",
            "RequireSymbols",
            "RequireUppercaseCharacters",
        }
    ),
    "RDS.6": frozenset({"monitoringInterval"}),
    "Redshift.3": frozenset({"MinRetentionPeriod"}),
    "S3.11": frozenset({"eventTypes"}),
    "S3.13": frozenset({"targetExpirationDays", "targetTransitionDays", "targetTransitionStorageClass"}),
    "SecretsManager.1": frozenset({"maximumAllowedRotationFrequency"}),
    "SecretsManager.3": frozenset({"unusedForDays"}),
    "SecretsManager.4": frozenset({"maxDaysSinceRotation"}),
}

_STD = r"(?P<standard>[a-z0-9-]+/v/[0-9.]+)"
_CTL = r"(?P<control>[A-Za-z0-9.]+)"
_ARN = r"arn:aws[a-z-]*:securityhub"
SOURCES: dict[str, tuple[re.Pattern[str], ...]] = {
    "Id": (
        re.compile(rf"^{_ARN}:[a-z0-9-]+:\d{{12}}:security-control/{_CTL}/finding/[^/]+$"),
        re.compile(rf"^{_ARN}:[a-z0-9-]+:\d{{12}}:subscription/{_STD}/{_CTL}/finding/[^/]+$"),
    ),
    "GeneratorId": (
        re.compile(rf"^security-control/{_CTL}$"),
        re.compile(rf"^{_ARN}:::ruleset/{_STD}/rule/{_CTL}$"),
        re.compile(rf"^{_STD}/{_CTL}$"),
    ),
    "ProductFields.StandardsControlArn": (
        re.compile(rf"^{_ARN}:[a-z0-9-]+:\d{{12}}:control/{_STD}/{_CTL}$"),
    ),
}


@dataclass(frozen=True)
class ControlRef:
    """One place in a finding that names a control: in which standard, under which id."""

    source: str
    standard: str  # a STANDARDS key, or CONSOLIDATED
    control: str

    def __str__(self) -> str:
        if self.standard == CONSOLIDATED:
            return f"{self.source}={self.control}"
        if self.standard == UNREADABLE:
            return f"{self.source}={self.control!r}"
        return f"{self.source}={STANDARDS.get(self.standard, self.standard)} {self.control}"


def _field(finding: dict[str, Any], path: str) -> Any:
    node: Any = finding
    for step in path.split("."):
        node = node.get(step) if isinstance(node, dict) else None
    return node


def control_refs(finding: dict[str, Any]) -> list[ControlRef]:
    """Every control reference the finding carries. A field that is present but does not
    read as a control reference is kept as UNREADABLE, so that it can never be ignored."""
    refs: list[ControlRef] = []
    for source, patterns in SOURCES.items():
        value = _field(finding, source)
        if value is None:
            continue
        text = value if isinstance(value, str) else repr(value)
        match = next((m for p in patterns if (m := p.match(text))), None)
        if match is None:
            refs.append(ControlRef(source, UNREADABLE, text))
            continue
        groups = match.groupdict()
        refs.append(ControlRef(source, groups.get("standard") or CONSOLIDATED, groups["control"]))
    consolidated = _field(finding, "Compliance.SecurityControlId")
    if consolidated is not None:
        text = consolidated if isinstance(consolidated, str) else repr(consolidated)
        refs.append(ControlRef("Compliance.SecurityControlId", CONSOLIDATED, text))
    return refs
