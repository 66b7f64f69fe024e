"""Fleets of misconfigured resources in the stand-in, and the findings Security Hub would write.

The seeders (``asr.local.seeders``) make one misconfiguration each; this module builds
fleets from them and turns each into a control finding in the shape Security Hub writes
it. The default fleet is the seed scenarios of the README; ``fleet_spec`` and
``seed_spec`` make a fleet of exactly N findings in a mix of controls weighted like real
fleets, over many accounts and regions (``asr local seed --findings``, the benchmarks).
"""

from __future__ import annotations

import datetime
import functools
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.loaders import create_loader
from botocore.regions import EndpointResolver

from asr.actions import get_action
from asr.aws import AwsContext
from asr.config import ACCOUNT_RE
from asr.local import ADMIN_ACCOUNT, MEMBER_ACCOUNT, member_stack
from asr.local.seeders import SEEDERS, Seeded
from asr.playbooks import registry

DEFAULT_REGION = "us-east-1"
AFSBP = "standards/aws-foundational-security-best-practices/v/1.0.0"
# The control parameters a finding carries when nobody has tuned the control: Security Hub
# sends each parameter with its default value, and [] for one without a default (the IAM
# controls reference; a real EC2.18 finding).
DEFAULT_CONTROL_PARAMETERS: dict[str, dict[str, list[str]]] = {
    "IAM.7": {
        "RequireUppercaseCharacters": ["true"],
        "RequireLowercaseCharacters": ["true"],
        "RequireSymbols": ["true"],
        "RequireNumbers": ["true"],
        "MinimumPasswordLength": ["8"],
        "PasswordReusePrevention": [],
        "MaxPasswordAge": [],
    },
    "EC2.18": {"authorizedTcpPorts": ["80", "443"], "authorizedUdpPorts": []},
    **{control: {"requiredTagKeys": []} for control in ("DynamoDB.5", "GuardDuty.2", "GuardDuty.4")},
}


def seed_one(aws: AwsContext, control_id: str, account: str, region: str, n: int = 0) -> Seeded:
    """One misconfigured resource; in an account the member-role stack is deployed in first
    when the control's fix uses a role that stack makes, as in a real deployment."""
    make = SEEDERS.get(control_id)
    if make is None:
        raise ValueError(f"no seeder for control {control_id} (known: {', '.join(sorted(SEEDERS))})")
    playbook = registry().for_control(control_id)
    if playbook is not None and get_action(playbook.action).service_role is not None:
        member_stack.deploy(aws, account)
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


FLEET_REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2", "ca-central-1")
# Weights of the default mix, per account-region: real fleets are mostly security groups,
# then instances and subnets, then a little of everything else. Account-wide controls
# (EC2.7 per region, S3.1 per account) are added once each, whatever N.
DEFAULT_MIX = {
    "EC2.19": 28,
    "EC2.13": 20,
    "EC2.18": 14,
    "EC2.2": 4,
    "EC2.8": 16,
    "EC2.15": 10,
    "S3.4": 4,
    "S3.5": 2,
    "EC2.7": 0,
    "S3.1": 0,
}


@functools.cache
def stand_in_regions() -> frozenset[str]:
    """The regions a fleet can be seeded in: those of the ``aws`` partition (the findings'
    ARNs name it, and Security Hub never gathers findings across partitions) where every
    service the fixes use is served. moto's backend of a service answers 500 in a region
    botocore does not list for it (Macie is in fewer regions than EC2), after a ``--reset``
    has already emptied the stand-in. Read as moto reads them, but without a session, which
    a bad ``AWS_PROFILE`` would break."""
    from asr.actions import REGISTRY
    from asr.playbooks import registry

    registry()  # the playbooks load the actions they name
    loader = create_loader()
    resolver = EndpointResolver(loader.load_data("endpoints"))
    regions = set(resolver.get_available_endpoints("ec2", "aws"))
    for service in {action.service for action in REGISTRY.values()}:
        prefix = loader.load_service_model(service, "service-2")["metadata"]["endpointPrefix"]
        served = set(resolver.get_available_endpoints(prefix, "aws"))
        if "us-east-1" in served:  # a global service (IAM, CloudFront) lists its global endpoint only
            regions &= served
    return frozenset(regions)


@dataclass(frozen=True)
class FleetSpec:
    """How many resources of which control in each account-region: the same every seeding."""

    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    regional: dict[str, int]  # regional controls: resources over the whole fleet
    account_regional: tuple[str, ...]  # one per account-region
    account_wide: tuple[str, ...]  # one per account, in the first region

    def per_cell(self) -> list[dict[str, int]]:
        """Each regional control's resources per account-region, as even as they divide; the
        few left over land in different account-regions for each control."""
        cells = len(self.accounts) * len(self.regions)
        counts: list[dict[str, int]] = [{} for _ in range(cells)]
        offset = 0
        for control, total in self.regional.items():
            share, left = divmod(total, cells)
            for cell in range(cells):
                counts[cell][control] = share + ((cell - offset) % cells < left)
            offset += left
        return counts

    def jobs(self) -> list[tuple[str, str, str, int]]:
        """(control, account, region, count): what seeding creates, in a stable order."""
        jobs = []
        where = [(account, region) for account in self.accounts for region in self.regions]
        for (account, region), regional in zip(where, self.per_cell(), strict=True):
            counts = regional | dict.fromkeys(self.account_regional, 1)
            if region == self.regions[0]:
                counts |= dict.fromkeys(self.account_wide, 1)
            jobs += [(c, account, region, n) for c, n in counts.items() if n]
        return jobs

    @property
    def total(self) -> int:
        return sum(n for *_, n in self.jobs())


def account_ids(count: int) -> tuple[str, ...]:
    """The stand-in's member account first, then 222222222001, 222222222002, ... (up to 999)."""
    others = [f"{MEMBER_ACCOUNT[:-3]}{i:03d}" for i in range(1, 1000)]
    others.remove(MEMBER_ACCOUNT)
    if not 1 <= count <= len(others) + 1:
        raise ValueError(f"a fleet has 1 to {len(others) + 1} generated accounts, not {count}")
    return (MEMBER_ACCOUNT, *others[: count - 1])


def parse_mix(text: str | Iterable[str] | None) -> dict[str, int]:
    """``EC2.19:28,EC2.13:20,EC2.7`` (or those items as a list): a weight per control
    (default 1); nothing means ``DEFAULT_MIX``."""
    items = text.split(",") if isinstance(text, str) else list(text or [])
    mix = {}
    for item in filter(None, (i.strip() for i in items)):
        control, _, weight = item.partition(":")
        if weight and not weight.isdecimal():
            raise ValueError(f"mix item {item!r}: the weight after ':' must be a whole number")
        mix[control] = int(weight or 1)
    return mix or dict(DEFAULT_MIX)


def _scopes(controls: Iterable[str]) -> dict[str, str]:
    """Each control's playbook scope, or a refusal naming a control the stand-in cannot seed."""
    scopes = {}
    for control in controls:
        playbook = registry().for_control(control)
        if playbook is None or control not in SEEDERS:
            raise ValueError(
                f"no playbook or no seeder for control {control} (seeders: {', '.join(sorted(SEEDERS))})"
            )
        scopes[control] = playbook.scope
    return scopes


def _distinct(names: Sequence[str]) -> tuple[str, ...]:
    """Each once, in the order given: an account or region named twice would seed its cells
    twice over, two findings for one resource."""
    return tuple(dict.fromkeys(names))


def fleet_spec(
    findings: int, accounts: Sequence[str], regions: Sequence[str], mix: dict[str, int]
) -> FleetSpec:
    """Exactly ``findings``: one per account-regional or account-wide control where it applies,
    the rest shared by the mix's weights (largest remainder) and spread over the account-regions."""
    accounts, regions = _distinct(accounts), _distinct(regions)
    if findings < 1 or not accounts or not regions:
        raise ValueError("a fleet needs at least one finding, one account and one region")
    scopes = _scopes(mix)
    account_regional = tuple(c for c in mix if scopes[c] == "account-regional")
    account_wide = tuple(c for c in mix if scopes[c] == "account")
    weights = {c: w for c, w in mix.items() if scopes[c] in ("regional", "global") and w > 0}
    budget = findings - len(accounts) * (len(regions) * len(account_regional) + len(account_wide))
    if budget < 0:
        raise ValueError(
            f"{findings} findings are too few for {len(accounts)} accounts x {len(regions)} regions: "
            f"the mix's account-wide and account-regional controls alone make {findings - budget}"
        )
    if budget and not weights:
        raise ValueError(f"the mix has no regional control to make up {findings} findings")
    total = sum(weights.values())
    exact = {c: budget * w / total for c, w in weights.items()}
    counts = {c: int(v) for c, v in exact.items()}
    for control in sorted(exact, key=lambda c: exact[c] - counts[c], reverse=True)[
        : budget - sum(counts.values())
    ]:
        counts[control] += 1
    return FleetSpec(accounts, regions, counts, account_regional, account_wide)


def count_spec(
    accounts: Sequence[str], regions: Sequence[str], controls: Iterable[str], count: int
) -> FleetSpec:
    """``count`` resources per control, account and region; one per account-region or per
    account for the controls of those settings."""
    accounts, regions = _distinct(accounts), _distinct(regions)
    if count < 1 or not accounts or not regions:
        raise ValueError("a fleet needs a count of at least 1, one account and one region")
    scope = _scopes(controls)
    cells = len(accounts) * len(regions)
    return FleetSpec(
        accounts,
        regions,
        {c: count * cells for c in scope if scope[c] in ("regional", "global")},
        tuple(c for c in scope if scope[c] == "account-regional"),
        tuple(c for c in scope if scope[c] == "account"),
    )


def seed_spec(aws: AwsContext, spec: FleetSpec, rng_seed: int = 1, threads: int = 4) -> list[dict[str, Any]]:
    """Make the fleet's resources and return their findings, in an order ``rng_seed`` fixes
    (Security Hub does not hand findings out grouped by control or account)."""
    # One thread per account: moto is not thread-safe within one backend (two creates at once
    # can fail with "dictionary changed size during iteration"), and S3 and IAM span regions.
    by_account: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for control, account, region, count in spec.jobs():
        by_account[account].append((control, region, count))

    def one_account(account: str) -> list[Seeded]:
        return [
            seed_one(aws, control, account, region, n)
            for control, region, count in by_account[account]
            for n in range(count)
        ]

    with ThreadPoolExecutor(max(1, threads)) as pool:
        seeded = [s for made in pool.map(one_account, list(by_account)) for s in made]
    findings = [finding(s) for s in seeded]
    random.Random(rng_seed).shuffle(findings)
    return findings


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
        "Id": f"{arn}:subscription/{standard}/{standard_control}/finding/{_finding_uuid(standard, seeded)}",
        "GeneratorId": (
            f"arn:aws:securityhub:::ruleset/{standard}/rule/{standard_control}"
            if ruleset
            else f"{standard}/{standard_control}"
        ),
        "ProductFields": fields,
        "StandardsId": f"{kind}/{standard}",
    }


def _finding_uuid(standard: str, seeded: Seeded) -> uuid.UUID:
    """Security Hub keeps one finding per control and resource, under the same id at every
    evaluation: so does the stand-in, for a resource seeded once and imported again. (A fleet
    seeded again makes new resources, whose names and ids are new: ``--seed`` repeats the
    mix and the order, not the ids.)"""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{standard}|{seeded.control_id}|{seeded.resource_id}")


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
    same = _finding_uuid("", seeded)
    finding_id = f"arn:aws:securityhub:{region}:{account}:security-control/{control}/finding/{same}"
    product_arn = f"arn:aws:securityhub:{region}::product/aws/securityhub"
    result = {
        "SchemaVersion": "2018-10-08",
        "Id": finding_id,
        "ProductArn": product_arn,
        "ProductName": "Security Hub CSPM",  # as AWS names it since 2025
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
            "aws/securityhub/ProductName": "Security Hub CSPM",
            "aws/securityhub/CompanyName": "AWS",
            # Security Hub writes the product's ARN, a slash, and the finding's own id.
            "aws/securityhub/FindingId": f"{product_arn}/{finding_id}",
        },
        "Resources": [
            {"Type": seeded.resource_type, "Id": seeded.resource_id, "Partition": "aws", "Region": region}
        ],
        "Compliance": {
            "Status": "FAILED",
            "SecurityControlId": control,
            "AssociatedStandards": [{"StandardsId": AFSBP}],
            **(
                {"SecurityControlParameters": [{"Name": k, "Value": v} for k, v in defaults.items()]}
                if (defaults := DEFAULT_CONTROL_PARAMETERS.get(control))
                else {}
            ),
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
        result["ProductFields"] = {
            **result["ProductFields"],
            **per_standard["ProductFields"],
            "aws/securityhub/FindingId": f"{product_arn}/{result['Id']}",
        }
        result["Compliance"]["AssociatedStandards"] = [{"StandardsId": per_standard["StandardsId"]}]
    if not security_control_id:
        del result["Compliance"]["SecurityControlId"]
    return result


def import_findings(securityhub: Any, findings: list[dict[str, Any]]) -> int:
    """BatchImportFindings, 100 a call; raise if Security Hub refused any, saying how many
    went in before. The findings' other accounts become the administrator's members first,
    as only a member's findings reach an administrator on AWS (``asr setup`` checks it)."""
    accounts = {f.get("AwsAccountId") for f in findings}
    others = sorted(
        a for a in accounts if isinstance(a, str) and ACCOUNT_RE.fullmatch(a) and a != ADMIN_ACCOUNT
    )
    for start in range(0, len(others), 50):  # CreateMembers: 50 accounts a call
        securityhub.create_members(AccountDetails=[{"AccountId": a} for a in others[start : start + 50]])
    imported = 0
    for start in range(0, len(findings), 100):
        response = securityhub.batch_import_findings(Findings=findings[start : start + 100])
        if response["FailedCount"]:
            raise RuntimeError(
                f"Security Hub refused findings ({imported + response['SuccessCount']} of "
                f"{len(findings)} imported): {response['FailedFindings'][:3]}"
            )
        imported += response["SuccessCount"]
    return imported
