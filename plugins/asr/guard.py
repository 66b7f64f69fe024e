"""Who may be acted on, and what never is: checked before any member role is assumed.

Accounts: the configured allow-list (``ASR_ACCOUNTS``), plus, when
``ASR_ACCOUNTS_FROM_ORGANIZATION`` is on, the organization's active members. Exclusions
by account, organizational unit and control are resolved here once per run; exclusion
by resource tag is checked in the resource's own account (``excluded_by_tag``). Every
check fails closed: if it cannot be evaluated, nothing is touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from asr.aws import AwsContext, Clients
from asr.config import Settings
from asr.findings import RoutingRecord
from asr.remediate import Outcome, Result, Status, describe_error

IAM_USER_OR_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(user|role)/(?:[^/]+/)*([\w+=,.@-]+)$")
AUTO_SCALING_GROUP = re.compile(
    r"^arn:aws[a-z-]*:autoscaling:[^:]+:\d{12}:autoScalingGroup:[^:]*:autoScalingGroupName/(.+)$"
)
GROUPS_PER_TAG_READ = 50


class GuardError(RuntimeError):
    """The rules of who may be acted on could not be evaluated; the run must not act."""


@dataclass(frozen=True)
class Scope:
    allowed: frozenset[str] | None
    excluded_accounts: dict[str, str]
    excluded_controls: frozenset[str]
    # ASR_REGIONS (or the run's narrower choice): the query asks for it, but by any resource's
    # Region, while asr acts where the resource's ARN says.
    regions: frozenset[str] = frozenset()

    @classmethod
    def resolve(cls, settings: Settings, organizations: Any = None) -> Scope:
        """Read the organization where the settings need it; raise GuardError if it cannot be read."""
        allowed: set[str] | None = set(settings.accounts) if settings.accounts else None
        excluded = {
            account: "the account is excluded (ASR_EXCLUDE_ACCOUNTS)" for account in settings.exclude_accounts
        }
        needs_organization = settings.accounts_from_organization or settings.exclude_ous
        if needs_organization and organizations is None:
            raise GuardError("Organizations is needed to resolve the allow-list or OU exclusions")
        try:
            if settings.accounts_from_organization:
                members = {
                    a["Id"]
                    for page in organizations.get_paginator("list_accounts").paginate()
                    for a in page["Accounts"]
                    # State replaced Status (retired by AWS on 2026-09-09).
                    if a.get("State", a.get("Status")) == "ACTIVE"
                }
                allowed = (allowed or set()) | members
            for ou in settings.exclude_ous:
                for account in accounts_under(organizations, ou):
                    excluded.setdefault(account, f"the account is in excluded organizational unit {ou}")
        except Exception as exc:
            raise GuardError(f"cannot read the organization: {describe_error(exc)}") from exc
        if settings.run_accounts:  # a run's choice narrows, never widens
            chosen = set(settings.run_accounts)
            allowed = chosen if allowed is None else allowed & chosen
        return cls(
            allowed=frozenset(allowed) if allowed is not None else None,
            excluded_accounts=excluded,
            excluded_controls=frozenset(settings.exclude_controls),
            regions=frozenset(settings.regions),
        )

    @classmethod
    def for_aws(cls, settings: Settings, aws: AwsContext) -> Scope:
        """``resolve``, reading the organization as the administrator where the settings need it."""
        needs_organization = settings.accounts_from_organization or settings.exclude_ous
        organizations = (
            aws.admin_client("organizations", settings.securityhub_region) if needs_organization else None
        )
        return cls.resolve(settings, organizations)

    @classmethod
    def of_settings(cls, settings: Settings) -> Scope:
        """What the settings say now, without the organization's part (its members, the
        accounts of excluded OUs), which ingest read: a fix task checks its findings again
        with it, as settings may have changed since (a run waits up to a day for an approval,
        and a person may clear a failed task days later), without each task reading the
        organization."""
        scope = cls.resolve(replace(settings, accounts_from_organization=False, exclude_ous=()))
        if settings.accounts_from_organization:  # members were checked at ingest
            scope = replace(
                scope, allowed=frozenset(settings.run_accounts) if settings.run_accounts else None
            )
        return scope

    def hold_back(self, records: list[RoutingRecord]) -> tuple[list[RoutingRecord], list[Outcome]]:
        """The records still in scope, and an outcome for each other: EXCLUDED (written back, as
        at ingest), or IGNORED when outside what asr may act on now (not written back: ingest
        writes nothing to a finding it rejects, unless a person named it), with why."""
        kept: list[RoutingRecord] = []
        held: list[Outcome] = []
        for record in records:
            verdict = self.check(record)
            if verdict:
                status = Status.IGNORED if verdict[0] == Status.REJECTED else verdict[0]
                held.append(Outcome.of(record, Result(status, f"{verdict[1]}; not touched")))
            else:
                kept.append(record)
        return kept, held

    def check(self, record: RoutingRecord) -> tuple[Status, str] | None:
        """None to act; else REJECTED (not ours to touch) or EXCLUDED (ours, but never), and why."""
        return self.why_not(record.account_id, record.region, (record.control_id, record.playbook))

    def why_not(self, account_id: str, region: str, controls: Iterable[str]) -> tuple[Status, str] | None:
        """``check`` for a change in this account and region, of these controls."""
        if self.allowed is not None and account_id not in self.allowed:
            return Status.REJECTED, f"account {account_id} is not one asr may act in"
        if self.regions and region not in self.regions:
            return Status.REJECTED, f"region {region} is not one asr may act in (ASR_REGIONS)"
        if account_id in self.excluded_accounts:
            return Status.EXCLUDED, self.excluded_accounts[account_id]
        for control in controls:
            if control in self.excluded_controls:
                return Status.EXCLUDED, f"control {control} is excluded (ASR_EXCLUDE_CONTROLS)"
        return None


def accounts_under(organizations: Any, parent_id: str) -> set[str]:
    """Every account in an OU and the OUs below it."""
    accounts = {
        a["Id"]
        for page in organizations.get_paginator("list_accounts_for_parent").paginate(ParentId=parent_id)
        for a in page["Accounts"]
    }
    for page in organizations.get_paginator("list_organizational_units_for_parent").paginate(
        ParentId=parent_id
    ):
        for child in page["OrganizationalUnits"]:
            accounts |= accounts_under(organizations, child["Id"])
    return accounts


def excluded_by_tag(clients: Clients, arns: list[str], tag: tuple[str, str | None]) -> dict[str, str]:
    """The ARNs that carry the exclusion tag, with the reason. The tagging API reads 100 ARNs a
    call, but AWS documents that it does not answer for IAM users and roles, nor for Auto
    Scaling groups (an empty answer, which would read as "not tagged"): their tags come from
    IAM, one resource at a time, and from Auto Scaling's DescribeTags, by group name."""
    key, value = tag
    shown = key if value is None else f"{key}={value}"
    excluded: dict[str, str] = {}

    def check(arn: str, tags: Iterable[dict[str, str]]) -> None:
        found = {t["Key"]: t["Value"] for t in tags}
        if key in found and (value is None or found[key] == value):
            excluded[arn] = f"the resource is tagged {shown} (ASR_EXCLUDE_TAG)"

    others = []
    # By name: two findings may name one group by different ARNs (the UUID of a group deleted
    # and made again under its name), and its tags answer for both.
    groups: dict[str, list[str]] = {}
    for arn in arns:
        group = AUTO_SCALING_GROUP.fullmatch(arn)
        if group:
            groups.setdefault(group.group(1), []).append(arn)
            continue
        iam = IAM_USER_OR_ROLE.fullmatch(arn)
        if iam is None:
            others.append(arn)
            continue
        kind, name = iam.groups()
        pages = clients.iam.get_paginator(f"list_{kind}_tags").paginate(**{f"{kind.title()}Name": name})
        try:
            check(arn, [t for page in pages for t in page["Tags"]])
        except ClientError as exc:  # deleted since the finding: nothing to exclude (nor to fix)
            if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
                raise
    names = sorted(groups)
    for start in range(0, len(names), GROUPS_PER_TAG_READ):
        filters = [
            {"Name": "auto-scaling-group", "Values": names[start : start + GROUPS_PER_TAG_READ]},
            {"Name": "key", "Values": [key]},
        ]
        for page in clients.autoscaling.get_paginator("describe_tags").paginate(Filters=filters):
            for found in page["Tags"]:
                for arn in groups[found["ResourceId"]]:
                    check(arn, [found])
    # A log group's ARN as AWS Config and DescribeLogGroups write it ends in ":*", which the
    # tagging API neither takes nor answers with: asked without it, and answered for the finding's.
    asked: dict[str, list[str]] = {}
    for arn in others:
        asked.setdefault(arn.removesuffix(":*"), []).append(arn)
    listed = sorted(asked)
    for start in range(0, len(listed), 100):
        pages = clients.resourcegroupstaggingapi.get_paginator("get_resources").paginate(
            ResourceARNList=listed[start : start + 100]
        )
        for page in pages:
            for resource in page["ResourceTagMappingList"]:
                for arn in asked.get(resource["ResourceARN"], [resource["ResourceARN"]]):
                    check(arn, resource.get("Tags", []))
    return excluded
