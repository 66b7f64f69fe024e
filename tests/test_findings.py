"""Finding intake: the seed findings route to their playbooks; bad findings say why not."""

from __future__ import annotations

import copy

import pytest

from asr.config import ConfigError, Settings
from asr.findings import FindingError, parse_finding
from asr.local.seed import Seeded, finding
from asr.playbooks import registry

SG_ARN = "arn:aws:ec2:us-east-1:222222222222:security-group/sg-0123456789abcdef0"
SEEDED = {
    "EC2.13": Seeded("EC2.13", "222222222222", "us-east-1", "AwsEc2SecurityGroup", SG_ARN),
    "EC2.2": Seeded(
        "EC2.2", "222222222222", "eu-west-1", "AwsEc2SecurityGroup", SG_ARN.replace("us-east-1", "eu-west-1")
    ),
    "IAM.14": Seeded("IAM.14", "222222222222", "us-east-1", "AwsAccount", "AWS::::Account:222222222222"),
    "RDS.5": Seeded(
        "RDS.5",
        "111111111111",
        "us-west-2",
        "AwsRdsDbInstance",
        "arn:aws:rds:us-west-2:111111111111:db:orders-db",
    ),
    "EC2.7": Seeded("EC2.7", "222222222222", "ap-south-1", "AwsAccount", "AWS::::Account:222222222222"),
    "S3.1": Seeded("S3.1", "222222222222", "us-east-1", "AwsAccount", "AWS::::Account:222222222222"),
}


@pytest.mark.parametrize(
    ("control", "playbook", "account", "region", "resource_id"),
    [
        ("EC2.13", "EC2.13", "222222222222", "us-east-1", "sg-0123456789abcdef0"),
        ("EC2.2", "EC2.2", "222222222222", "eu-west-1", "sg-0123456789abcdef0"),
        ("IAM.14", "IAM.7", "222222222222", "us-east-1", "222222222222"),
        ("RDS.5", "RDS.5", "111111111111", "us-west-2", "orders-db"),
        ("EC2.7", "EC2.7", "222222222222", "ap-south-1", "222222222222"),
        ("S3.1", "S3.1", "222222222222", "us-east-1", "222222222222"),
    ],
)
def test_seed_findings_route_to_their_playbook(
    control: str, playbook: str, account: str, region: str, resource_id: str
) -> None:
    raw = finding(SEEDED[control])
    record = parse_finding(raw, registry())
    assert record.finding_id == raw["Id"]
    assert record.control_id == control
    assert record.playbook == playbook
    assert (record.account_id, record.region, record.resource_id) == (account, region, resource_id)
    assert record.product_arn == raw["ProductArn"]


def _broken(change) -> dict:  # type: ignore[no-untyped-def]
    raw = copy.deepcopy(finding(SEEDED["EC2.13"]))
    change(raw)
    return raw


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda f: f.update(ProductArn="arn:aws:securityhub:us-east-1::product/crowdstrike/falcon"),
            "not Security Hub's own product",
        ),
        (lambda f: f["Compliance"].update(SecurityControlId="EC2.2"), "disagree"),
        (lambda f: f["Compliance"].update(Status="PASSED"), "Compliance.Status is PASSED"),
        (lambda f: f.update(RecordState="ARCHIVED"), "RecordState is ARCHIVED"),
        (lambda f: f["Workflow"].update(Status="SUPPRESSED"), "Workflow.Status is SUPPRESSED"),
        (lambda f: f.update(AwsAccountId="2222"), "not a 12-digit account id"),
        (lambda f: f.update(AwsAccountId="222222222222\n"), "not a 12-digit account id"),
        (lambda f: f.update(AwsAccountId="٢٢٢٢٢٢٢٢٢٢٢٢"), "not a 12-digit account id"),
        (
            lambda f: f["Resources"][0].update(Id="arn:aws:ec2:us-east-1:222222222222:instance/i-1"),
            "does not match",
        ),
        (lambda f: f["Resources"][0].update(Id=f"{SG_ARN}\n"), "does not match"),
        (lambda f: f.update(ProductArn=f"{f['ProductArn']}\n"), "not Security Hub's own product"),
        (
            lambda f: f["Resources"][0].update(Id=SG_ARN.replace("222222222222", "333333333333")),
            "not AwsAccountId",
        ),
        (
            lambda f: f["Resources"][0].update(Id=SG_ARN.replace("arn:aws:", "arn:aws-cn:")),
            "is in partition aws-cn, not the finding's aws",
        ),
        (lambda f: f.update(Resources=[]), "no Resources"),
        (lambda f: f["Resources"][0].update(Type="AwsS3Bucket"), "resource type"),
    ],
)
def test_findings_that_must_be_rejected_say_why(change, reason: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FindingError, match=reason):
        parse_finding(_broken(change), registry())


def test_control_without_playbook_is_rejected() -> None:
    raw = finding(Seeded("EC2.9", "222222222222", "us-east-1", "AwsAccount", "AWS::::Account:222222222222"))
    with pytest.raises(FindingError, match=r"no playbook fixes control EC2\.9"):
        parse_finding(raw, registry())


@pytest.mark.parametrize("junk", [None, [], "finding", {"Id": ""}, {"Id": 5}])
def test_malformed_input_is_a_finding_error(junk: object) -> None:
    with pytest.raises(FindingError):
        parse_finding(junk, registry())


@pytest.mark.parametrize(
    "region", ["us-gov-west-1", "cn-northwest-1", "us-isob-east-1", "eu-isoe-west-1", "eusc-de-east-1"]
)
def test_regions_of_every_partition_are_accepted(region: str) -> None:
    """GovCloud, China, the isolated regions and the European Sovereign Cloud (eusc-de-east-1)
    name regions with longer prefixes than the commercial ones."""
    raw = finding(Seeded("EC2.7", "222222222222", region, "AwsAccount", "AWS::::Account:222222222222"))
    assert parse_finding(raw, registry()).region == region
    assert Settings(regions=(region,)).regions == (region,)


@pytest.mark.parametrize(
    "region", ["US-EAST-1", "us-east", "useast1", "us-east-1a", "u-east-1", "us-east-1\n"]
)
def test_what_is_not_a_region_name_is_refused(region: str) -> None:
    raw = finding(Seeded("EC2.7", "222222222222", "us-east-1", "AwsAccount", "AWS::::Account:222222222222"))
    raw["Region"] = raw["Resources"][0]["Region"] = region
    with pytest.raises(FindingError, match="region"):
        parse_finding(raw, registry())
    with pytest.raises(ConfigError, match="region"):
        Settings(regions=(region,))
