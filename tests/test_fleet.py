"""The fleet generator: exactly N findings in a realistic mix, over many accounts and regions."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from asr import cli
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import (
    DEFAULT_MIX,
    FLEET_REGIONS,
    account_ids,
    finding,
    fleet_spec,
    import_findings,
    parse_mix,
    seed_one,
    seed_spec,
)
from asr.securityhub import iter_findings


@pytest.mark.parametrize(
    ("findings", "accounts", "regions"), [(10_000, 10, 2), (4_000, 10, 2), (1_000, 3, 1), (61, 2, 2)]
)
def test_a_fleet_has_exactly_the_findings_asked_for_spread_evenly(
    findings: int, accounts: int, regions: int
) -> None:
    spec = fleet_spec(findings, account_ids(accounts), FLEET_REGIONS[:regions], dict(DEFAULT_MIX))
    assert spec.total == findings
    cells = spec.per_cell()
    assert len(cells) == accounts * regions
    for control, total in spec.regional.items():
        counts = [cell[control] for cell in cells]
        assert sum(counts) == total and max(counts) - min(counts) <= 1, (control, counts)
    jobs = spec.jobs()
    assert {(c, a) for c, a, _, _ in jobs if c == "S3.1"} == {("S3.1", a) for a in spec.accounts}
    assert sum(1 for c, *_ in jobs if c == "EC2.7") == accounts * regions


def test_the_mix_weights_the_controls() -> None:
    spec = fleet_spec(1_000, account_ids(1), FLEET_REGIONS[:1], parse_mix("EC2.19:3,EC2.13:1,EC2.7"))
    assert spec.regional == {"EC2.19": 749, "EC2.13": 250}
    assert spec.account_regional == ("EC2.7",)
    assert parse_mix(["EC2.19:28", "EC2.13"]) == {"EC2.19": 28, "EC2.13": 1}
    assert parse_mix(None) == DEFAULT_MIX


@pytest.mark.parametrize(
    ("findings", "mix", "error"),
    [
        (10, dict(DEFAULT_MIX), "10 findings are too few for 10 accounts x 2 regions"),
        (100, {"EC2.7": 1}, "the mix has no regional control to make up 100 findings"),
        (100, {"XYZ.1": 1}, "no playbook or no seeder for control XYZ.1"),
    ],
)
def test_a_fleet_that_cannot_be_made_says_why(findings: int, mix: dict[str, int], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        fleet_spec(findings, account_ids(10), FLEET_REGIONS[:2], mix)


def test_a_mix_or_an_account_count_that_makes_no_sense_is_refused() -> None:
    with pytest.raises(ValueError, match="the weight after ':' must be a whole number"):
        parse_mix("EC2.19:many")
    with pytest.raises(ValueError, match="1 to 999 generated accounts, not 0"):
        account_ids(0)
    ids = account_ids(999)
    assert len(set(ids)) == 999 and ids[0] == MEMBER_ACCOUNT and all(len(i) == 12 for i in ids)


def _where(findings: list[dict]) -> list[tuple[str, str, str]]:
    return [(f["Compliance"]["SecurityControlId"], f["AwsAccountId"], f["Region"]) for f in findings]


def test_seeding_the_same_fleet_with_the_same_seed_gives_the_same_findings_in_the_same_order(aws) -> None:  # type: ignore[no-untyped-def]
    from asr import local

    spec = fleet_spec(40, account_ids(2), FLEET_REGIONS[:2], parse_mix("EC2.19:2,EC2.13:1,EC2.7"))
    first = _where(seed_spec(aws, spec, rng_seed=7))
    local.reset()
    again = _where(seed_spec(aws, spec, rng_seed=7))
    local.reset()
    other = _where(seed_spec(aws, spec, rng_seed=8))
    assert first == again and sorted(first) == sorted(other) and first != other
    assert len(first) == 40


def test_asr_local_seed_makes_a_mixed_fleet_of_exactly_n_findings(aws, capsys) -> None:  # type: ignore[no-untyped-def]
    assert (
        cli.main(
            [
                "local",
                "seed",
                "--findings",
                "60",
                "--account-count",
                "2",
                "--regions",
                "us-east-1,us-west-2",
                "--controls",
                "EC2.19:2,EC2.13:1,EC2.7,S3.1",
            ]
        )
        == 0
    )
    assert "seeded 60 misconfigured resources over 2 accounts x 2 regions" in capsys.readouterr().out
    securityhub = aws.admin_client("securityhub", "us-east-1")
    found = list(iter_findings(securityhub, [{}]))
    assert len(found) == 60
    by_control = Counter(f["Compliance"]["SecurityControlId"] for f in found)
    assert by_control == {"EC2.19": 36, "EC2.13": 18, "EC2.7": 4, "S3.1": 2}  # 54 regional, 2:1
    assert {f["AwsAccountId"] for f in found} == {MEMBER_ACCOUNT, account_ids(2)[1]}
    assert {f["Region"] for f in found} == {"us-east-1", "us-west-2"}


def test_asr_local_seed_refuses_a_fleet_it_cannot_make_before_it_resets_anything(aws) -> None:  # type: ignore[no-untyped-def]
    cli.main(["local", "seed", "--findings", "5", "--controls", "EC2.19"])
    with pytest.raises(SystemExit, match="--findings takes no --count"):
        cli.main(["local", "seed", "--reset", "--findings", "5", "--count", "2"])
    assert len(list(iter_findings(aws.admin_client("securityhub", "us-east-1"), [{}]))) == 5
    with pytest.raises(SystemExit, match="asr local seed: 3 findings are too few"):
        cli.main(
            ["local", "seed", "--findings", "3", "--account-count", "2", "--controls", "EC2.19,EC2.7,S3.1"]
        )


def test_asr_local_seed_count_makes_that_many_of_each_control_per_account_region(aws, capsys) -> None:  # type: ignore[no-untyped-def]
    accounts = ",".join(account_ids(2))
    argv = ["local", "seed", "--accounts", accounts, "--regions", "us-east-1,us-west-2", "--count", "2"]
    assert cli.main([*argv, "--controls", "EC2.19,EC2.7,S3.1"]) == 0
    assert "seeded 14 misconfigured resources over 2 accounts x 2 regions" in capsys.readouterr().out
    found = list(iter_findings(aws.admin_client("securityhub", "us-east-1"), [{}]))
    # 2 per account-region for a regional control, 1 per account-region (EC2.7), 1 per account (S3.1)
    assert Counter(f["Compliance"]["SecurityControlId"] for f in found) == {
        "EC2.19": 8,
        "EC2.7": 4,
        "S3.1": 2,
    }
    assert Counter((f["AwsAccountId"], f["Region"]) for f in found if f["Region"] == "us-west-2") == {
        (account, "us-west-2"): 3 for account in account_ids(2)
    }
    with pytest.raises(SystemExit, match=r"asr local seed: no playbook or no seeder for control EC2\.99"):
        cli.main([*argv, "--controls", "EC2.99"])


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--regions", "us-east-1,xx-bogus-1"),
        ("--accounts", "abc,12345"),
        ("--securityhub-region", "xx-bogus-1"),
    ],
)
def test_asr_local_seed_refuses_an_account_or_region_before_it_resets_anything(
    aws, option: str, value: str
) -> None:  # type: ignore[no-untyped-def]
    """A fleet that cannot be made changes nothing, and nothing asr would refuse is imported."""
    cli.main(["local", "seed", "--controls", "EC2.13"])
    with pytest.raises(SystemExit):
        cli.main(["local", "seed", "--reset", "--controls", "EC2.13", option, value])
    assert len(list(iter_findings(aws.admin_client("securityhub", "us-east-1"), [{}]))) == 1


def test_asr_local_seed_with_a_bad_setting_resets_nothing_and_says_what_is_wrong(
    aws, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    cli.main(["local", "seed", "--controls", "EC2.13"])
    monkeypatch.setenv("ASR_MEMBER_ROLE_NAME", "bad role!")
    assert cli.main(["local", "seed", "--reset", "--controls", "EC2.13"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("asr local seed: ConfigError: ASR_MEMBER_ROLE_NAME 'bad role!'")
    assert "Traceback" not in error
    assert len(list(iter_findings(aws.admin_client("securityhub", "us-east-1"), [{}]))) == 1


def test_asr_local_seed_names_an_aws_error_in_one_line(aws, capsys, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from asr.local import seed as seeding

    def refused(*_: Any, **__: Any) -> Any:
        raise RuntimeError("Security Hub refused findings (100 of 250 imported): [...]")

    monkeypatch.setattr(seeding, "import_findings", refused)
    assert cli.main(["local", "seed", "--controls", "EC2.13"]) == 1
    assert capsys.readouterr().err == (
        "asr local seed: RuntimeError: Security Hub refused findings (100 of 250 imported): [...]\n"
    )


def test_an_account_or_region_named_twice_makes_one_fleet_cell(aws, capsys) -> None:  # type: ignore[no-untyped-def]
    twice = ["--accounts", f"{MEMBER_ACCOUNT},{MEMBER_ACCOUNT}", "--regions", "us-east-1,us-east-1"]
    assert cli.main(["local", "seed", *twice, "--controls", "EC2.7,S3.1"]) == 0
    assert capsys.readouterr().out.startswith(
        "seeded 2 misconfigured resources over 1 accounts x 1 regions "
        "(EC2.7 one per account-region, S3.1 one per account); imported 2 findings"
    )
    found = list(iter_findings(aws.admin_client("securityhub", "us-east-1"), [{}]))
    assert sorted(f["Compliance"]["SecurityControlId"] for f in found) == ["EC2.7", "S3.1"]
    spec = fleet_spec(12, ["111111111111", "111111111111"], ["us-east-1"] * 2, {"EC2.19": 1})
    assert (spec.accounts, spec.regions, spec.total) == (("111111111111",), ("us-east-1",), 12)


def test_a_finding_keeps_its_id_for_its_control_and_resource(aws) -> None:  # type: ignore[no-untyped-def]
    """Security Hub keeps one finding per control and resource: seeded again, it is updated,
    not doubled."""
    seeded = seed_one(aws, "EC2.13", MEMBER_ACCOUNT, "us-east-1")
    other = seed_one(aws, "EC2.13", MEMBER_ACCOUNT, "us-east-1", 1)
    assert finding(seeded)["Id"] == finding(seeded)["Id"] != finding(other)["Id"]
    legacy = finding(seeded, standard="pci-dss/v/3.2.1", standard_control="PCI.EC2.5")
    assert legacy["Id"] != finding(seeded)["Id"]
    securityhub = aws.admin_client("securityhub", "us-east-1")
    import_findings(securityhub, [finding(seeded)])
    import_findings(securityhub, [finding(seeded)])
    assert len(securityhub.get_findings()["Findings"]) == 1


@pytest.mark.parametrize("standard", [None, "pci-dss/v/3.2.1"])
def test_a_seeded_finding_names_itself_as_security_hub_does(standard: str | None) -> None:
    """ProductFields' FindingId is the product's ARN, a slash and the finding's id; a
    per-standard finding keeps the control's Config rule among its ProductFields."""
    from asr.local.seeders import Seeded

    arn = f"arn:aws:ec2:us-east-1:{MEMBER_ACCOUNT}:security-group/sg-0123"
    seeded = Seeded("EC2.19", MEMBER_ACCOUNT, "us-east-1", "AwsEc2SecurityGroup", arn)
    made = finding(seeded, standard=standard, standard_control="1.2")
    fields = made["ProductFields"]
    assert fields["aws/securityhub/FindingId"] == f"{made['ProductArn']}/{made['Id']}"
    assert fields["RelatedAWSResources:0/type"] == "AWS::Config::ConfigRule"
