"""Fleets of misconfigured resources in the stand-in, and the findings Security Hub would write.

The seeders (``asr.local.seeders``) make one misconfiguration each; this module builds
fleets from them and turns each into a control finding in the shape Security Hub writes
it. The default fleet is the seed scenarios of the README.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable
from typing import Any

from asr.aws import AwsContext
from asr.local import ADMIN_ACCOUNT, MEMBER_ACCOUNT
from asr.local.seeders import SEEDERS, Seeded
from asr.playbooks import registry

DEFAULT_REGION = "us-east-1"
AFSBP = "standards/aws-foundational-security-best-practices/v/1.0.0"


def seed_one(aws: AwsContext, control_id: str, account: str, region: str, n: int = 0) -> Seeded:
    make = SEEDERS.get(control_id)
    if make is None:
        raise ValueError(f"no seeder for control {control_id} (known: {', '.join(sorted(SEEDERS))})")
    return make(aws, control_id, account, region, n)


SCENARIOS = (
    ("EC2.13", MEMBER_ACCOUNT),
    ("EC2.13", ADMIN_ACCOUNT),
    ("IAM.14", MEMBER_ACCOUNT),
    ("RDS.5", MEMBER_ACCOUNT),
    ("EC2.7", MEMBER_ACCOUNT),
    ("S3.1", MEMBER_ACCOUNT),
    ("EC2.2", MEMBER_ACCOUNT),
)


def seed_scenarios(aws: AwsContext, region: str = DEFAULT_REGION) -> list[Seeded]:
    return [seed_one(aws, control, account, region) for control, account in SCENARIOS]


def seed_fleet(
    aws: AwsContext, accounts: Iterable[str], regions: Iterable[str], controls: Iterable[str], count: int
) -> list[Seeded]:
    """``count`` misconfigured resources per control, account and region (one for account settings)."""
    seeded = []
    regions = list(regions)
    for account in accounts:
        for control in controls:
            playbook = registry().for_control(control)
            scope = playbook.scope if playbook else "regional"
            if scope == "account":
                seeded.append(seed_one(aws, control, account, regions[0]))
                continue
            for region in regions:
                times = 1 if scope == "account-regional" else count
                seeded += [seed_one(aws, control, account, region, n) for n in range(times)]
    return seeded


def _standard_fields(seeded: Seeded, standard: str, standard_control: str) -> dict[str, Any]:
    """Id, GeneratorId and ProductFields of a per-standard (legacy) control finding."""
    region, account = seeded.region, seeded.account_id
    name = standard.split("/v/")[0]
    ruleset = name == "cis-aws-foundations-benchmark" and standard.endswith("/1.2.0")
    kind = "ruleset" if ruleset else "standards"
    arn = f"arn:aws:securityhub:{region}:{account}"
    fields: dict[str, Any] = {
        "StandardsControlArn": f"{arn}:control/{standard}/{standard_control}",
        "RecommendationUrl": f"https://docs.aws.amazon.com/console/securityhub/{standard_control}/remediation",
    }
    if ruleset:
        fields |= {
            "StandardsGuideArn": f"arn:aws:securityhub:::ruleset/{standard}",
            "StandardsGuideSubscriptionArn": f"{arn}:subscription/{standard}",
            "RuleId": standard_control,
        }
    else:
        fields |= {
            "StandardsArn": f"arn:aws:securityhub:::standards/{standard}",
            "StandardsSubscriptionArn": f"{arn}:subscription/{standard}",
            "ControlId": standard_control,
        }
    return {
        "Id": f"{arn}:subscription/{standard}/{standard_control}/finding/{uuid.uuid4()}",
        "GeneratorId": (
            f"arn:aws:securityhub:::ruleset/{standard}/rule/{standard_control}"
            if ruleset
            else f"{standard}/{standard_control}"
        ),
        "ProductFields": fields,
        "StandardsId": f"{kind}/{standard}",
    }


def finding(
    seeded: Seeded,
    now: datetime.datetime | None = None,
    standard: str | None = None,
    standard_control: str | None = None,
    security_control_id: bool = True,
) -> dict[str, Any]:
    """A control finding in the exact shape Security Hub writes it.

    Consolidated by default; with ``standard`` (e.g. ``pci-dss/v/3.2.1``) and the control's
    id in that standard, the per-standard shape an account without consolidated control
    findings receives. ``security_control_id=False`` leaves out
    ``Compliance.SecurityControlId``, as findings from before consolidation did.
    """
    stamp = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    region, account, control = seeded.region, seeded.account_id, seeded.control_id
    finding_id = f"arn:aws:securityhub:{region}:{account}:security-control/{control}/finding/{uuid.uuid4()}"
    product_arn = f"arn:aws:securityhub:{region}::product/aws/securityhub"
    result = {
        "SchemaVersion": "2018-10-08",
        "Id": finding_id,
        "ProductArn": product_arn,
        "ProductName": "Security Hub",
        "CompanyName": "AWS",
        "Region": region,
        "GeneratorId": f"security-control/{control}",
        "AwsAccountId": account,
        "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
        "FirstObservedAt": stamp,
        "LastObservedAt": stamp,
        "CreatedAt": stamp,
        "UpdatedAt": stamp,
        "Severity": {"Label": seeded.severity, "Original": seeded.severity},
        "Title": f"{control} control check failed",
        "Description": f"Seeded misconfiguration for {control}.",
        "Remediation": {
            "Recommendation": {
                "Text": f"See the AWS Security Hub controls reference for {control}.",
                "Url": f"https://docs.aws.amazon.com/console/securityhub/{control}/remediation",
            }
        },
        "ProductFields": {
            "RelatedAWSResources:0/name": f"securityhub-{control.lower().replace('.', '-')}",
            "RelatedAWSResources:0/type": "AWS::Config::ConfigRule",
            "aws/securityhub/ProductName": "Security Hub",
            "aws/securityhub/CompanyName": "AWS",
            "aws/securityhub/FindingId": finding_id,
        },
        "Resources": [
            {"Type": seeded.resource_type, "Id": seeded.resource_id, "Partition": "aws", "Region": region}
        ],
        "Compliance": {
            "Status": "FAILED",
            "SecurityControlId": control,
            "AssociatedStandards": [{"StandardsId": AFSBP}],
        },
        "WorkflowState": "NEW",
        "Workflow": {"Status": "NEW"},
        "RecordState": "ACTIVE",
        "FindingProviderFields": {
            "Severity": {"Label": seeded.severity, "Original": seeded.severity},
            "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
        },
    }
    if standard:
        per_standard = _standard_fields(seeded, standard, standard_control or control)
        result["Id"] = per_standard["Id"]
        result["GeneratorId"] = per_standard["GeneratorId"]
        result["ProductFields"] = {**per_standard["ProductFields"], "aws/securityhub/FindingId": result["Id"]}
        result["Compliance"]["AssociatedStandards"] = [{"StandardsId": per_standard["StandardsId"]}]
    if not security_control_id:
        del result["Compliance"]["SecurityControlId"]
    return result


def import_findings(securityhub: Any, findings: list[dict[str, Any]]) -> int:
    """BatchImportFindings, 100 a call; raise if Security Hub refused any."""
    imported = 0
    for start in range(0, len(findings), 100):
        response = securityhub.batch_import_findings(Findings=findings[start : start + 100])
        if response["FailedCount"]:
            raise RuntimeError(f"Security Hub refused findings: {response['FailedFindings'][:3]}")
        imported += response["SuccessCount"]
    return imported
