"""Misconfigured resources in the stand-in, and the findings Security Hub would write for them.

Each seeder creates one misconfigured resource (or breaks one account-level setting)
and says which ASFF resource it is; ``finding`` turns that into a consolidated control
finding as Security Hub writes it. The default fleet is the seed scenarios of the README.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from asr.aws import AwsContext
from asr.local import ADMIN_ACCOUNT, MEMBER_ACCOUNT

DEFAULT_REGION = "us-east-1"
AFSBP = "standards/aws-foundational-security-best-practices/v/1.0.0"


@dataclass(frozen=True)
class Seeded:
    control_id: str
    account_id: str
    region: str
    resource_type: str
    resource_id: str
    severity: str = "MEDIUM"


Seeder = Callable[[AwsContext, str, str, str, int], Seeded]
SEEDERS: dict[str, Seeder] = {}
# Controls whose misconfiguration exists once per account (global) or per account-region.
ONCE_PER_ACCOUNT = {"IAM.7", "IAM.11", "IAM.12", "IAM.13", "IAM.14", "IAM.15", "IAM.16", "IAM.17", "S3.1"}
ONCE_PER_REGION = {"EC2.7"}


def seeder(*control_ids: str) -> Callable[[Seeder], Seeder]:
    def add(fn: Seeder) -> Seeder:
        for control_id in control_ids:
            SEEDERS[control_id] = fn
        return fn

    return add


def _account_resource(control_id: str, account: str, region: str) -> Seeded:
    return Seeded(control_id, account, region, "AwsAccount", f"AWS::::Account:{account}")


def _default_vpc(ec2: Any) -> str:
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    return vpcs[0]["VpcId"]


@seeder("EC2.13", "EC2.14")
def open_admin_port(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    ec2 = aws.client("ec2", account, region)
    port = 3389 if control_id == "EC2.14" else 22
    group_id = ec2.create_security_group(
        GroupName=f"asr-seed-open-{port}-{n}-{uuid.uuid4().hex[:6]}",
        Description="seeded: admin port open to the world",
        VpcId=_default_vpc(ec2),
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": port,
                "ToPort": port,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}, {"CidrIp": "10.0.0.0/8"}],
            }
        ],
    )
    arn = f"arn:aws:ec2:{region}:{account}:security-group/{group_id}"
    return Seeded(control_id, account, region, "AwsEc2SecurityGroup", arn, "HIGH")


@seeder("EC2.2")
def default_group_with_rules(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    ec2 = aws.client("ec2", account, region)
    vpc_id = _default_vpc(ec2) if n == 0 else ec2.create_vpc(CidrBlock=f"10.{n % 250}.0.0/16")["Vpc"]["VpcId"]
    group = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]
    if not group["IpPermissions"]:
        ec2.authorize_security_group_ingress(
            GroupId=group["GroupId"],
            IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group["GroupId"]}]}],
        )
    arn = f"arn:aws:ec2:{region}:{account}:security-group/{group['GroupId']}"
    return Seeded(control_id, account, region, "AwsEc2SecurityGroup", arn, "HIGH")


@seeder("IAM.7", "IAM.11", "IAM.12", "IAM.13", "IAM.14", "IAM.15", "IAM.16", "IAM.17")
def weak_password_policy(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    aws.client("iam", account, region).update_account_password_policy(
        MinimumPasswordLength=8,
        RequireNumbers=False,
        RequireSymbols=False,
        RequireUppercaseCharacters=True,
        RequireLowercaseCharacters=True,
        AllowUsersToChangePassword=True,
    )
    return _account_resource(control_id, account, region)


@seeder("RDS.5")
def single_az_database(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    name = f"asr-seed-db-{n}-{uuid.uuid4().hex[:6]}"
    instance = aws.client("rds", account, region).create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="seed",
        MasterUserPassword="seed-password-1",
        AllocatedStorage=20,
        MultiAZ=False,
    )["DBInstance"]
    return Seeded(control_id, account, region, "AwsRdsDbInstance", instance["DBInstanceArn"])


@seeder("EC2.7")
def ebs_default_encryption_off(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    aws.client("ec2", account, region).disable_ebs_encryption_by_default()
    return _account_resource(control_id, account, region)


@seeder("S3.1")
def account_public_access_open(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    aws.client("s3control", account, region).put_public_access_block(
        AccountId=account,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": False,
            "IgnorePublicAcls": False,
            "BlockPublicPolicy": False,
            "RestrictPublicBuckets": False,
        },
    )
    return _account_resource(control_id, account, region)


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
            if control in ONCE_PER_ACCOUNT:
                seeded.append(seed_one(aws, control, account, regions[0]))
                continue
            for region in regions:
                times = 1 if control in ONCE_PER_REGION else count
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
