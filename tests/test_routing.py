"""Routing across standards: every standard's findings reach the right playbook.

EXPECTED is the mapping table of the reference catalogue (shared/reference/controls.md),
written out independently of the playbooks so that a wrong or missing entry in a
playbook file fails here.
"""

from __future__ import annotations

import copy
import io
import json
from contextlib import redirect_stdout

import pytest

from asr.cli import main
from asr.findings import FindingError, parse_finding
from asr.local.seed import Seeded, finding
from asr.playbooks import registry
from asr.standards import SAME_IDS

CIS12 = "cis-aws-foundations-benchmark/v/1.2.0"
CIS14 = "cis-aws-foundations-benchmark/v/1.4.0"
CIS30 = "cis-aws-foundations-benchmark/v/3.0.0"
PCI = "pci-dss/v/3.2.1"
AFSBP = "aws-foundational-security-best-practices/v/1.0.0"
NIST = "nist-800-53/v/5.0.0"

# (standard, the control's id in it) -> consolidated control id
EXPECTED: dict[tuple[str, str], str] = {
    (CIS12, "4.1"): "EC2.13",
    (CIS12, "4.2"): "EC2.14",
    (PCI, "PCI.EC2.5"): "EC2.13",
    (CIS12, "4.3"): "EC2.2",
    (CIS14, "5.3"): "EC2.2",
    (CIS30, "5.4"): "EC2.2",
    (PCI, "PCI.EC2.2"): "EC2.2",
    (CIS14, "2.2.1"): "EC2.7",
    (CIS30, "2.2.1"): "EC2.7",
    # The reference table groups PCI.IAM.8 and PCI.CloudTrail.2 by the fix that runs; the
    # findings carry the consolidated ids IAM.10 and CloudTrail.3 (AWS's controls reference).
    (PCI, "PCI.IAM.8"): "IAM.10",
    (CIS12, "1.5"): "IAM.11",
    (CIS12, "1.6"): "IAM.12",
    (CIS12, "1.7"): "IAM.13",
    (CIS12, "1.8"): "IAM.14",
    (CIS12, "1.9"): "IAM.15",
    (CIS12, "1.10"): "IAM.16",
    (CIS12, "1.11"): "IAM.17",
    (CIS14, "1.8"): "IAM.15",
    (CIS14, "1.9"): "IAM.16",
    (CIS30, "1.8"): "IAM.15",
    (CIS30, "1.9"): "IAM.16",
    (CIS14, "2.1.5.1"): "S3.1",
    (CIS30, "2.1.4.1"): "S3.1",
    (PCI, "PCI.S3.6"): "S3.1",
    (CIS14, "2.1.5.2"): "S3.8",
    (CIS30, "2.1.4.2"): "S3.8",
    (PCI, "PCI.S3.1"): "S3.3",
    (PCI, "PCI.S3.2"): "S3.2",
    (CIS14, "2.1.1"): "S3.4",
    (PCI, "PCI.S3.4"): "S3.4",
    (CIS14, "2.1.2"): "S3.5",
    (CIS30, "2.1.1"): "S3.5",
    (PCI, "PCI.S3.5"): "S3.5",
    (CIS12, "2.6"): "CloudTrail.7",
    (CIS14, "3.6"): "CloudTrail.7",
    (CIS30, "3.4"): "CloudTrail.7",
    (CIS12, "2.1"): "CloudTrail.1",
    (CIS14, "3.1"): "CloudTrail.1",
    (CIS30, "3.1"): "CloudTrail.1",
    (PCI, "PCI.CloudTrail.2"): "CloudTrail.3",
    (CIS12, "2.7"): "CloudTrail.2",
    (CIS14, "3.7"): "CloudTrail.2",
    (CIS30, "3.5"): "CloudTrail.2",
    (PCI, "PCI.CloudTrail.1"): "CloudTrail.2",
    (PCI, "PCI.CodeBuild.2"): "CodeBuild.2",
    (CIS12, "2.2"): "CloudTrail.4",
    (CIS14, "3.2"): "CloudTrail.4",
    (CIS30, "3.2"): "CloudTrail.4",
    (PCI, "PCI.CloudTrail.3"): "CloudTrail.4",
    (CIS12, "2.4"): "CloudTrail.5",
    (CIS14, "3.4"): "CloudTrail.5",
    (PCI, "PCI.CloudTrail.4"): "CloudTrail.5",
    (CIS12, "2.5"): "Config.1",
    (CIS14, "3.5"): "Config.1",
    (CIS30, "3.3"): "Config.1",
    (PCI, "PCI.Config.1"): "Config.1",
    (CIS12, "2.8"): "KMS.4",
    (CIS14, "3.8"): "KMS.4",
    (CIS30, "3.6"): "KMS.4",
    (PCI, "PCI.KMS.1"): "KMS.4",
    (CIS12, "2.9"): "EC2.6",
    (CIS14, "3.9"): "EC2.6",
    (CIS30, "3.7"): "EC2.6",
    (PCI, "PCI.EC2.6"): "EC2.6",
    (CIS30, "5.6"): "EC2.8",
    (PCI, "PCI.EC2.1"): "EC2.1",
    (PCI, "PCI.SSM.3"): "SSM.1",
    (AFSBP, "ELBv2.1"): "ELB.1",
    (PCI, "PCI.ELBv2.1"): "ELB.1",
    (CIS12, "1.4"): "IAM.3",
    (CIS14, "1.14"): "IAM.3",
    (CIS30, "1.14"): "IAM.3",
    (CIS12, "1.3"): "IAM.8",
    (PCI, "PCI.IAM.7"): "IAM.8",
    (CIS14, "1.12"): "IAM.22",
    (CIS30, "1.12"): "IAM.22",
    (CIS12, "1.20"): "IAM.18",
    (CIS14, "1.17"): "IAM.18",
    (CIS30, "1.17"): "IAM.18",
    (CIS30, "2.3.3"): "RDS.2",
    (PCI, "PCI.RDS.2"): "RDS.2",
    (CIS30, "2.3.2"): "RDS.13",
    (PCI, "PCI.RDS.1"): "RDS.1",
    (PCI, "PCI.GuardDuty.1"): "GuardDuty.1",
    (PCI, "PCI.Lambda.1"): "Lambda.1",
    (CIS12, "2.3"): "CloudTrail.6",
    (CIS14, "3.3"): "CloudTrail.6",
    (PCI, "PCI.AutoScaling.1"): "AutoScaling.1",
    (PCI, "PCI.Redshift.1"): "Redshift.1",
    # AWS's controls reference (CloudWatch controls): CIS 1.2.0 section 3 and 1.4.0 section 4,
    # where 3.3 and 4.3 are the root user's alarm; the reference catalogue routes them all to one fix.
    (CIS12, "1.1"): "CloudWatch.1",
    (CIS12, "3.3"): "CloudWatch.1",
    (CIS14, "1.7"): "CloudWatch.1",
    (CIS14, "4.3"): "CloudWatch.1",
    (PCI, "PCI.CW.1"): "CloudWatch.1",
    (CIS12, "3.1"): "CloudWatch.2",
    (CIS14, "4.1"): "CloudWatch.2",
    (CIS12, "3.2"): "CloudWatch.3",
    (CIS14, "4.2"): "CloudWatch.3",
    (CIS12, "3.4"): "CloudWatch.4",
    (CIS14, "4.4"): "CloudWatch.4",
    (CIS12, "3.5"): "CloudWatch.5",
    (CIS14, "4.5"): "CloudWatch.5",
    (CIS12, "3.6"): "CloudWatch.6",
    (CIS14, "4.6"): "CloudWatch.6",
    (CIS12, "3.7"): "CloudWatch.7",
    (CIS14, "4.7"): "CloudWatch.7",
    (CIS12, "3.8"): "CloudWatch.8",
    (CIS14, "4.8"): "CloudWatch.8",
    (CIS12, "3.9"): "CloudWatch.9",
    (CIS14, "4.9"): "CloudWatch.9",
    (CIS12, "3.10"): "CloudWatch.10",
    (CIS14, "4.10"): "CloudWatch.10",
    (CIS12, "3.11"): "CloudWatch.11",
    (CIS14, "4.11"): "CloudWatch.11",
    (CIS12, "3.12"): "CloudWatch.12",
    (CIS14, "4.12"): "CloudWatch.12",
    (CIS12, "3.13"): "CloudWatch.13",
    (CIS14, "4.13"): "CloudWatch.13",
    (CIS12, "3.14"): "CloudWatch.14",
    (CIS14, "4.14"): "CloudWatch.14",
}

ACCOUNT = "222222222222"
RESOURCES = {
    "AwsEc2SecurityGroup": (
        "arn:aws:ec2:eu-west-1:222222222222:security-group/sg-0123456789abcdef0",
        "sg-0123456789abcdef0",
    ),
    "AwsAccount": ("AWS::::Account:222222222222", ACCOUNT),
    "AwsRdsDbInstance": ("arn:aws:rds:eu-west-1:222222222222:db:orders", "orders"),
    "AwsRdsDbSnapshot": (
        "arn:aws:rds:eu-west-1:222222222222:snapshot:orders-snap",
        "arn:aws:rds:eu-west-1:222222222222:snapshot:orders-snap",
    ),
    "AwsRdsDbCluster": ("arn:aws:rds:eu-west-1:222222222222:cluster:orders", "orders"),
    "AwsDynamoDbTable": ("arn:aws:dynamodb:eu-west-1:222222222222:table/orders", "orders"),
    "AwsLambdaFunction": ("arn:aws:lambda:eu-west-1:222222222222:function:orders-handler", "orders-handler"),
    "AwsSnsTopic": ("arn:aws:sns:eu-west-1:222222222222:orders", "arn:aws:sns:eu-west-1:222222222222:orders"),
    "AwsSqsQueue": ("arn:aws:sqs:eu-west-1:222222222222:orders", "orders"),
    "AwsEcrRepository": ("arn:aws:ecr:eu-west-1:222222222222:repository/team/orders", "team/orders"),
    "AwsS3Bucket": ("arn:aws:s3:::asr-example-bucket", "asr-example-bucket"),
    "AwsEc2Vpc": ("arn:aws:ec2:eu-west-1:222222222222:vpc/vpc-0123456789abcdef0", "vpc-0123456789abcdef0"),
    "AwsEc2Instance": (
        "arn:aws:ec2:eu-west-1:222222222222:instance/i-0123456789abcdef0",
        "i-0123456789abcdef0",
    ),
    "AwsEc2Subnet": (
        "arn:aws:ec2:eu-west-1:222222222222:subnet/subnet-0123456789abcdef0",
        "subnet-0123456789abcdef0",
    ),
    "AwsIamUser": ("arn:aws:iam::222222222222:user/ops/alice", "alice"),
    "AwsCloudTrailTrail": (
        "arn:aws:cloudtrail:eu-west-1:222222222222:trail/org-trail",
        "arn:aws:cloudtrail:eu-west-1:222222222222:trail/org-trail",
    ),
    "AwsLogsLogGroup": ("arn:aws:logs:eu-west-1:222222222222:log-group:/app/orders:*", "/app/orders"),
    "AwsKmsKey": (
        "arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
    ),
    "AwsRedshiftCluster": ("arn:aws:redshift:eu-west-1:222222222222:cluster:orders", "orders"),
    "AwsAutoScalingAutoScalingGroup": (
        "arn:aws:autoscaling:eu-west-1:222222222222:autoScalingGroup:"
        "14c4be82-bb3a-47ef-a33a-868696444d6a:autoScalingGroupName/orders-web",
        "orders-web",
    ),
    "AwsSsmDocument": ("arn:aws:ssm:eu-west-1:222222222222:document/orders-runbook", "orders-runbook"),
    "AwsEc2TransitGateway": (
        "arn:aws:ec2:eu-west-1:222222222222:transit-gateway/tgw-0123456789abcdef0",
        "tgw-0123456789abcdef0",
    ),
    "AwsCloudFormationStack": (
        "arn:aws:cloudformation:eu-west-1:222222222222:stack/orders/8f0e5b90-1c2d-11ef-9f1a-0a1b2c3d4e5f",
        "arn:aws:cloudformation:eu-west-1:222222222222:stack/orders/8f0e5b90-1c2d-11ef-9f1a-0a1b2c3d4e5f",
    ),
    "AwsElastiCacheCacheCluster": (
        "arn:aws:elasticache:eu-west-1:222222222222:cluster:orders-cache",
        "arn:aws:elasticache:eu-west-1:222222222222:cluster:orders-cache",
    ),
    "AwsElastiCacheReplicationGroup": (
        "arn:aws:elasticache:eu-west-1:222222222222:replicationgroup:orders-cache",
        "orders-cache",
    ),
    "AwsElbv2LoadBalancer": (
        "arn:aws:elasticloadbalancing:eu-west-1:222222222222:loadbalancer/app/orders-web/50dc6c495c0c9188",
        "arn:aws:elasticloadbalancing:eu-west-1:222222222222:loadbalancer/app/orders-web/50dc6c495c0c9188",
    ),
    "AwsCloudFrontDistribution": (
        "arn:aws:cloudfront::222222222222:distribution/E2QWRUHAPOMQZL",
        "E2QWRUHAPOMQZL",
    ),
    "AwsApiGatewayStage": (
        "arn:aws:apigateway:eu-west-1::/restapis/a1b2c3d4e5/stages/prod",
        "/restapis/a1b2c3d4e5/stages/prod",
    ),
    "AwsAthenaWorkGroup": ("arn:aws:athena:eu-west-1:222222222222:workgroup/orders", "orders"),
    "AwsSecretsManagerSecret": (
        "arn:aws:secretsmanager:eu-west-1:222222222222:secret:orders/db-password-AbC123",
        "arn:aws:secretsmanager:eu-west-1:222222222222:secret:orders/db-password-AbC123",
    ),
    "AwsCodeBuildProject": (
        "arn:aws:codebuild:eu-west-1:222222222222:project/images",
        "arn:aws:codebuild:eu-west-1:222222222222:project/images",
    ),
    "AwsAutoScalingLaunchConfiguration": (
        "arn:aws:autoscaling:eu-west-1:222222222222:launchConfiguration:"
        "4e1a2b3c-5d6e-4f80-9a1b-2c3d4e5f6a7b:launchConfigurationName/orders-web",
        "orders-web",
    ),
    "AwsGuardDutyDetector": (
        "arn:aws:guardduty:eu-west-1:222222222222:detector/12abc34d567e8fa901bc2d34e56789f0",
        "arn:aws:guardduty:eu-west-1:222222222222:detector/12abc34d567e8fa901bc2d34e56789f0",
    ),
    "AwsGuardDutyFilter": (
        "arn:aws:guardduty:eu-west-1:222222222222:detector/12abc34d567e8fa901bc2d34e56789f0/filter/noisy-scans",
        "arn:aws:guardduty:eu-west-1:222222222222:detector/12abc34d567e8fa901bc2d34e56789f0/filter/noisy-scans",
    ),
    "AwsEcsTaskDefinition": (
        "arn:aws:ecs:eu-west-1:222222222222:task-definition/orders-web:7",
        "arn:aws:ecs:eu-west-1:222222222222:task-definition/orders-web:7",
    ),
}


def seeded(control: str) -> Seeded:
    playbook = registry().for_control(control)
    arn, _ = RESOURCES[playbook.resource_type]
    return Seeded(control, ACCOUNT, "eu-west-1", playbook.resource_type, arn)


def every_standard_id() -> list[tuple[str, str, str]]:
    """(standard, id in it, consolidated id) for every control a playbook fixes."""
    fixed = {c for p in registry() for c in p.controls}
    cases = [(std, std_id, control) for (std, std_id), control in EXPECTED.items() if control in fixed]
    for playbook in registry():
        cases += [(std, control, control) for control in playbook.controls for std in sorted(SAME_IDS)]
    return cases


def test_playbooks_declare_exactly_the_reference_mapping() -> None:
    fixed = {c for p in registry() for c in p.controls}
    expected = {key: control for key, control in EXPECTED.items() if control in fixed}
    assert registry().standard_ids == expected


@pytest.mark.parametrize("with_consolidated_id", [True, False], ids=["with-SecurityControlId", "legacy"])
@pytest.mark.parametrize(("standard", "standard_id", "control"), every_standard_id())
def test_standard_finding_routes_to_its_playbook(
    standard: str, standard_id: str, control: str, with_consolidated_id: bool
) -> None:
    raw = finding(
        seeded(control),
        standard=standard,
        standard_control=standard_id,
        security_control_id=with_consolidated_id,
    )
    record = parse_finding(raw, registry())
    playbook = registry().for_control(control)
    assert record.control_id == control
    assert record.playbook == playbook.control_id
    assert (record.standard, record.standard_control_id) == (standard, standard_id)
    assert record.account_id == ACCOUNT
    assert record.resource_id == RESOURCES[playbook.resource_type][1]
    expected_region = "eu-west-1"
    assert record.region == expected_region


@pytest.mark.parametrize("control", sorted({c for p in registry() for c in p.controls}))
def test_consolidated_finding_routes_to_its_playbook(control: str) -> None:
    record = parse_finding(finding(seeded(control)), registry())
    assert (record.control_id, record.standard) == (control, "security-control")
    assert record.playbook == registry().for_control(control).control_id


def test_region_comes_from_the_resource_arn_not_the_finding() -> None:
    raw = finding(seeded("EC2.13"))
    raw["Region"] = "us-east-1"
    raw["Resources"][0]["Region"] = "us-east-1"
    assert parse_finding(raw, registry()).region == "eu-west-1"


def _cis_finding() -> dict:
    return finding(seeded("EC2.14"), standard=CIS12, standard_control="4.2")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda f: f["Compliance"].update(SecurityControlId="S3.1"), "disagree"),
        (
            lambda f: f["ProductFields"].update(
                StandardsControlArn=f["ProductFields"]["StandardsControlArn"][:-1] + "1"
            ),
            "disagree",
        ),
        (lambda f: f.update(GeneratorId="pci-dss/v/3.2.1/PCI.EC2.5"), "disagree"),
        (lambda f: f.update(GeneratorId="something-else"), "names no control asr can read"),
        (
            lambda f: f.update(
                GeneratorId="made-up-standard/v/1.0.0/4.2",
                Id=f["Id"].replace(CIS12, "made-up-standard/v/1.0.0"),
            ),
            "disagree",
        ),
        (lambda f: f["ProductFields"].update(StandardsControlArn=7), "names no control asr can read"),
    ],
)
def test_per_standard_findings_that_must_be_rejected(change, reason: str) -> None:  # type: ignore[no-untyped-def]
    raw = copy.deepcopy(_cis_finding())
    change(raw)
    with pytest.raises(FindingError, match=reason):
        parse_finding(raw, registry())


def test_standard_id_no_playbook_routes_is_rejected_by_its_consolidated_id() -> None:
    raw = finding(seeded("EC2.13"), standard=CIS12, standard_control="1.2")
    raw["Compliance"]["SecurityControlId"] = "IAM.5"
    with pytest.raises(FindingError, match=r"no playbook fixes control IAM\.5"):
        parse_finding(raw, registry())
    del raw["Compliance"]["SecurityControlId"]  # without it, the standard's own id is named
    with pytest.raises(FindingError, match=r"CIS 1\.2\.0 control 1\.2 is not routed by any playbook"):
        parse_finding(raw, registry())


def test_two_ids_one_playbook_fixes_agree_and_security_hub_s_own_id_names_the_control() -> None:
    """AWS's tables give CIS 1.4.0's 3.6 as CloudTrail.7 in one place and S3.9 in another; the
    S3.9 playbook fixes both, so a finding naming both is not refused."""
    raw = finding(seeded("S3.9"), standard="cis-aws-foundations-benchmark/v/1.4.0", standard_control="3.6")
    record = parse_finding(raw, registry())
    assert (record.control_id, record.playbook) == ("S3.9", "S3.9")
    raw["Compliance"]["SecurityControlId"] = "EC2.13"  # another playbook's: they disagree
    with pytest.raises(FindingError, match="control ids disagree"):
        parse_finding(raw, registry())


def test_a_known_standard_s_id_no_playbook_lists_routes_by_security_hub_s_consolidated_id() -> None:
    """AWS's tables name CIS 3.0.0's S3.1 as 2.1.4 in one place and 2.1.4.1 in another: the
    finding's SecurityControlId decides, rather than the finding being refused."""
    raw = finding(seeded("S3.1"), standard="cis-aws-foundations-benchmark/v/3.0.0", standard_control="2.1.4")
    record = parse_finding(raw, registry())
    assert (record.control_id, record.playbook, record.standard_control_id) == ("S3.1", "S3.1", "2.1.4")


@pytest.mark.parametrize("with_consolidated_id", [True, False])
def test_a_standard_asr_does_not_know_routes_by_security_hub_s_consolidated_id(
    with_consolidated_id: bool,
) -> None:
    """A new version of a standard (CIS 9.9.9 here) names its own control ids; Security Hub's
    SecurityControlId still says which control it is. Without it, the finding cannot be read."""
    raw = finding(
        seeded("EC2.13"),
        standard="cis-aws-foundations-benchmark/v/9.9.9",
        standard_control="5.2",
        security_control_id=with_consolidated_id,
    )
    if with_consolidated_id:
        record = parse_finding(raw, registry())
        assert (record.control_id, record.playbook) == ("EC2.13", "EC2.13")
        assert (record.standard, record.standard_control_id) == (
            "cis-aws-foundations-benchmark/v/9.9.9",
            "5.2",
        )
    else:
        with pytest.raises(FindingError, match="which asr does not know"):
            parse_finding(raw, registry())


def test_control_parameters_from_the_finding_override_the_playbook() -> None:
    raw = finding(seeded("IAM.7"))
    raw["Compliance"]["SecurityControlParameters"] = [
        {"Name": "MinimumPasswordLength", "Value": ["16"]},
        {"Name": "RequireSymbols", "Value": ["false"]},
        {"Name": "SomethingElse", "Value": ["x"]},
    ]
    record = parse_finding(raw, registry())
    assert record.parameters == {"minimum_password_length": 16, "require_symbols": False}


def test_a_control_parameter_security_hub_sends_empty_is_an_empty_list_or_the_playbook_s_value() -> None:
    """A real EC2.18 finding carries authorizedUdpPorts as [] (no UDP port authorized); a
    parameter left unset comes as [] too: it was rejected, so EC2.18 was never fixed."""
    raw = finding(seeded("EC2.18"))
    raw["Compliance"]["SecurityControlParameters"] = [
        {"Name": "authorizedTcpPorts", "Value": ["80", "443"]},
        {"Name": "authorizedUdpPorts", "Value": []},
    ]
    record = parse_finding(raw, registry())
    assert record.parameters == {"authorized_tcp_ports": [80, 443], "authorized_udp_ports": []}
    raw = finding(seeded("IAM.7"))
    raw["Compliance"]["SecurityControlParameters"] = [{"Name": "MinimumPasswordLength", "Value": []}]
    assert parse_finding(raw, registry()).parameters == {}


def test_array_parameters_take_their_item_type_from_the_action_s_schema() -> None:
    """A tag key may be all digits: it stays a string, where a port list gets integers."""
    raw = finding(seeded("DynamoDB.5"))
    raw["Compliance"]["SecurityControlParameters"] = [{"Name": "requiredTagKeys", "Value": ["2024", "Owner"]}]
    assert parse_finding(raw, registry()).parameters == {"required_tag_keys": ["2024", "Owner"]}
    raw = finding(seeded("EC2.18"))
    raw["Compliance"]["SecurityControlParameters"] = [{"Name": "authorizedTcpPorts", "Value": ["443", "ssh"]}]
    with pytest.raises(FindingError, match=r"authorizedTcpPorts value .* is not a array"):
        parse_finding(raw, registry())


def test_a_control_parameter_without_a_value_is_unset() -> None:
    """Value is optional in Security Hub's API model: a parameter without one leaves the
    playbook's value, and the finding is still fixed, not refused as malformed."""
    raw = finding(seeded("EC2.18"))
    raw["Compliance"]["SecurityControlParameters"] = [
        {"Name": "authorizedTcpPorts"},
        {"Name": "authorizedUdpPorts", "Value": ["53"]},
    ]
    assert parse_finding(raw, registry()).parameters == {"authorized_udp_ports": [53]}


@pytest.mark.parametrize(
    ("value", "reason"),
    [(["many"], "is not a integer"), (["3"], "minimum_password_length: 3 is less than"), ("16", "list")],
)
def test_invalid_control_parameters_are_rejected(value: object, reason: str) -> None:
    raw = finding(seeded("IAM.7"))
    raw["Compliance"]["SecurityControlParameters"] = [{"Name": "MinimumPasswordLength", "Value": value}]
    with pytest.raises(FindingError, match=reason):
        parse_finding(raw, registry())


def test_control_parameters_are_checked_for_every_finding_not_only_the_first() -> None:
    """Validation is remembered per distinct set of parameters: a bad set is refused each time."""
    playbooks = registry()
    for value, accepted in ((["3"], False), (["16"], True), (["3"], False), (["16"], True)):
        raw = finding(seeded("IAM.7"))
        raw["Compliance"]["SecurityControlParameters"] = [{"Name": "MinimumPasswordLength", "Value": value}]
        if accepted:
            assert parse_finding(raw, playbooks).parameters == {"minimum_password_length": 16}
        else:
            with pytest.raises(FindingError, match="minimum_password_length: 3 is less than"):
                parse_finding(raw, playbooks)


def explain(document: object, tmp_path) -> tuple[int, list[dict]]:  # type: ignore[no-untyped-def]
    path = tmp_path / "findings.json"
    path.write_text(json.dumps(document))
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["explain", str(path)])
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def test_explain_prints_one_line_per_finding_in_order(tmp_path) -> None:  # type: ignore[no-untyped-def]
    findings = [
        _cis_finding(),
        finding(seeded("IAM.14")),
        finding(seeded("S3.1"), standard=PCI, standard_control="PCI.S3.6"),
    ]
    code, lines = explain(findings, tmp_path)
    assert code == 0
    assert [line["finding_id"] for line in lines] == [f["Id"] for f in findings]
    assert [(line["control_id"], line["playbook"]) for line in lines] == [
        ("EC2.14", "EC2.13"),
        ("IAM.14", "IAM.7"),
        ("S3.1", "S3.1"),
    ]
    assert lines[0]["resource_id"] == "sg-0123456789abcdef0"
    assert lines[0]["region"] == "eu-west-1"


def test_explain_reads_eventbridge_events_and_fails_on_rejections(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = finding(seeded("EC2.13"))
    bad["AwsAccountId"] = "12"
    event = {
        "detail-type": "Security Hub Findings - Custom Action",
        "detail": {"findings": [finding(seeded("EC2.13")), bad]},
    }
    code, lines = explain(event, tmp_path)
    assert code == 1
    assert "error" not in lines[0]
    assert lines[1] == {"finding_id": bad["Id"], "error": "AwsAccountId '12' is not a 12-digit account id"}


def test_explain_single_finding_and_unreadable_input(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code, lines = explain(finding(seeded("RDS.5")), tmp_path)
    assert code == 0 and lines[0]["resource_id"] == "orders"
    (tmp_path / "broken.json").write_text("{not json")
    assert main(["explain", str(tmp_path / "broken.json")]) == 2
    (tmp_path / "latin1.json").write_bytes(b'{"Id": "caf\xe9"}')  # not UTF-8
    assert main(["explain", str(tmp_path / "latin1.json")]) == 2


def test_a_playbook_may_accept_several_resource_types() -> None:
    arn = "arn:aws:rds:eu-west-1:222222222222:cluster-snapshot:orders-snap"
    raw = finding(Seeded("RDS.1", ACCOUNT, "eu-west-1", "AwsRdsDbClusterSnapshot", arn))
    record = parse_finding(raw, registry())
    assert (record.playbook, record.resource_id) == ("RDS.1", arn)


@pytest.mark.parametrize(
    ("resource_type", "arn"),
    [
        ("AwsRdsDbClusterSnapshot", "arn:aws:rds:eu-west-1:222222222222:cluster-snapshot:orders-snap"),
        ("AwsRdsDbSnapshot", "arn:aws:rds:eu-west-1:222222222222:snapshot:rds:orders-2026-01-31-08-05"),
        ("AwsRdsDbSnapshot", "arn:aws:rds:eu-west-1:222222222222:snapshot:awsbackup:job-1a2b3c4d-0000"),
    ],
    ids=["cluster", "automated", "aws-backup"],
)
def test_snapshots_the_encryption_fix_refuses_reach_it_to_be_told_why(resource_type: str, arn: str) -> None:
    """RDS.4 copies only manual DB snapshots; the others come to its fix, which says why not,
    rather than being rejected as an id its pattern does not know."""
    record = parse_finding(finding(Seeded("RDS.4", ACCOUNT, "eu-west-1", resource_type, arn)), registry())
    assert (record.playbook, record.resource_id) == ("RDS.4", arn)
