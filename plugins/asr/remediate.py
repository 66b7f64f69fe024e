"""The contract every fix follows, and the batch runner that applies it.

Read; if compliant, change nothing. Otherwise record the settings about to change,
apply, read back, and call it remediated only if the read-back complies. A failure
is reported for its resource and never stops the rest of the batch.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from asr.actions import Action
from asr.aws import AwsContext, Clients
from asr.findings import RoutingRecord
from asr.playbooks import PlaybookRegistry

THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "SlowDown",
}
T = TypeVar("T")


class Status(StrEnum):
    REMEDIATED = "REMEDIATED"
    ALREADY_COMPLIANT = "ALREADY_COMPLIANT"
    FAILED = "FAILED"
    # Not acted on, with a reason a person should see (no playbook, not remediable).
    REJECTED = "REJECTED"
    # Not acted on, by rule, with nothing to tell Security Hub (e.g. automatic remediation off).
    IGNORED = "IGNORED"
    # A dry run: what the fix would change, with nothing changed.
    DRY_RUN = "DRY_RUN"
    # Ours to act on, but an exclusion (account, OU, control, resource tag) says never.
    EXCLUDED = "EXCLUDED"


@dataclass(frozen=True)
class Result:
    status: Status
    message: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


@dataclass(frozen=True)
class Outcome:
    """What happened to one finding: its routing record plus the result for its resource."""

    finding_id: str
    product_arn: str
    control_id: str
    playbook: str
    account_id: str
    region: str
    resource_arn: str
    resource_id: str
    status: str
    message: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None

    @classmethod
    def of(cls, record: RoutingRecord, result: Result) -> Outcome:
        return cls(
            finding_id=record.finding_id,
            product_arn=record.product_arn,
            control_id=record.control_id,
            playbook=record.playbook,
            account_id=record.account_id,
            region=record.region,
            resource_arn=record.resource_arn,
            resource_id=record.resource_id,
            status=str(result.status),
            message=result.message,
            before=result.before,
            after=result.after,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def not_acted(cls, finding: dict[str, Any], status: Status, reason: str) -> Outcome:
        """An outcome for a finding no fix ran for, from what the raw finding says of itself."""
        resources = finding.get("Resources") if isinstance(finding.get("Resources"), list) else []
        resource = resources[0] if resources and isinstance(resources[0], dict) else {}
        compliance = finding.get("Compliance") if isinstance(finding.get("Compliance"), dict) else {}
        text = {
            "control_id": compliance.get("SecurityControlId"),
            "account_id": finding.get("AwsAccountId"),
            "region": resource.get("Region") or finding.get("Region"),
            "resource_arn": resource.get("Id"),
        }
        return cls(
            finding_id=str(finding.get("Id", "")),
            product_arn=str(finding.get("ProductArn", "")),
            playbook="",
            resource_id="",
            status=str(status),
            message=reason,
            **{key: value if isinstance(value, str) else "" for key, value in text.items()},
        )


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "Unknown")


def describe_error(exc: Exception) -> str:
    """One line a person can act on: the AWS error code and message, or the exception."""
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message", "")
        text = f"{error_code(exc)}: {message}".rstrip(": ")
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def retry_throttled(
    call: Callable[[], T], attempts: int = 6, sleep: Callable[[float], None] = time.sleep
) -> T:
    """Retry a call refused for throttling, on top of botocore's own retries."""
    for attempt in range(attempts):
        try:
            return call()
        except ClientError as exc:
            if error_code(exc) not in THROTTLING or attempt == attempts - 1:
                raise
            sleep(min(2**attempt, 30) * (0.5 + random.random() / 2))
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Planned:
    """A non-compliant resource: its current settings and the ones the fix will change."""

    state: dict[str, Any]
    plan: dict[str, Any]

    @property
    def before(self) -> dict[str, Any]:
        return {key: self.state.get(key) for key in self.plan}


def assess(action: Action, clients: Clients, resource_id: str) -> Result | Planned:
    """Read the resource: a Result when there is nothing to do, else what must change."""
    state = retry_throttled(lambda: action.read(clients, resource_id))
    plan = action.plan(state)
    if not plan:
        return Result(Status.ALREADY_COMPLIANT, "already compliant; nothing changed")
    return Planned(state, plan)


def verify(action: Action, clients: Clients, resource_id: str, planned: Planned, done: str) -> Result:
    """Read the resource back: REMEDIATED only if it now complies."""
    state = retry_throttled(lambda: action.read(clients, resource_id))
    after = {key: state.get(key) for key in planned.plan}
    still = action.plan(state)
    if still:
        return Result(Status.FAILED, f"verification failed: still needs {still}", planned.before, after)
    return Result(Status.REMEDIATED, done, planned.before, after)


def dry_run(planned: Planned) -> Result:
    return Result(
        Status.DRY_RUN, f"would change {planned.before} to {planned.plan}", planned.before, planned.plan
    )


def remediate_resource(action: Action, clients: Clients, resource_id: str, dry: bool = False) -> Result:
    planned: Planned | None = None
    try:
        assessed = assess(action, clients, resource_id)
        if isinstance(assessed, Result):
            return assessed
        planned = assessed
        if dry:
            return dry_run(planned)
        retry_throttled(lambda: action.apply(clients, resource_id, assessed.state, assessed.plan))
        return verify(action, clients, resource_id, planned, action.summary.format(**action.params))
    except Exception as exc:  # one resource's failure must not stop its batch
        return Result(Status.FAILED, describe_error(exc), planned.before if planned else None)


@dataclass(frozen=True)
class Target:
    """One resource of a batch, every finding that names it, and how to reach and fix it."""

    clients: Clients
    resource_id: str
    records: tuple[RoutingRecord, ...]
    action: Action

    def outcomes(self, result: Result) -> list[Outcome]:
        return [Outcome.of(record, result) for record in self.records]


def resolve_targets(
    records: list[RoutingRecord],
    playbooks: PlaybookRegistry,
    aws: AwsContext,
    overrides: dict[str, Any] | None = None,
    exclude_tag: tuple[str, str | None] | None = None,
) -> tuple[list[Target], list[Outcome]]:
    """One target per resource (account, region, id), however many findings name it.

    Findings in an account whose member role cannot be assumed come back as FAILED
    outcomes instead, so the other accounts of the batch still proceed. With an
    exclusion tag, resources that carry it come back EXCLUDED; if the tags cannot be
    read, the account-region's resources fail untouched.
    """
    if not records:
        return [], []
    playbook = playbooks.playbooks[records[0].playbook]
    built: dict[str, Action] = {}

    def action_for(record: RoutingRecord) -> Action:
        """Playbook defaults < the control's parameters in the finding < this run's overrides."""
        key = json.dumps(record.parameters, sort_keys=True)
        if key not in built:
            built[key] = playbook.build_action({**record.parameters, **(overrides or {})})
        return built[key]

    grouped: dict[tuple[str, str], dict[str, list[RoutingRecord]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        region = record.region if playbook.regional else records[0].region
        grouped[(record.account_id, region)][record.resource_id].append(record)

    targets: list[Target] = []
    failed: list[Outcome] = []
    for (account_id, region), by_resource in grouped.items():
        try:
            aws.session(account_id)
        except Exception as exc:
            reason = Result(Status.FAILED, f"cannot assume {aws.role_arn(account_id)}: {describe_error(exc)}")
            failed += [Outcome.of(r, reason) for rs in by_resource.values() for r in rs]
            continue
        clients = Clients(aws, account_id, region)
        excluded: dict[str, str] = {}
        if exclude_tag:
            from asr.guard import excluded_by_tag

            arns = sorted(
                {
                    r.resource_arn
                    for rs in by_resource.values()
                    for r in rs
                    if r.resource_arn.startswith("arn:")
                }
            )
            try:
                excluded = (
                    excluded_by_tag(clients.resourcegroupstaggingapi, arns, exclude_tag) if arns else {}
                )
            except Exception as exc:
                reason = Result(
                    Status.FAILED, f"cannot read tags to check exclusions, not touched: {describe_error(exc)}"
                )
                failed += [Outcome.of(r, reason) for rs in by_resource.values() for r in rs]
                continue
        for resource_id, same in by_resource.items():
            tagged = excluded.get(same[0].resource_arn)
            if tagged:
                failed += [Outcome.of(r, Result(Status.EXCLUDED, tagged)) for r in same]
            else:
                targets.append(Target(clients, resource_id, tuple(same), action_for(same[0])))
    return targets, failed


def run_batch(
    records: list[RoutingRecord],
    playbooks: PlaybookRegistry,
    aws: AwsContext,
    overrides: dict[str, Any] | None = None,
    dry: bool = False,
    exclude_tag: tuple[str, str | None] | None = None,
) -> list[Outcome]:
    """Fix every resource of one playbook's batch with the action's own API calls
    (with ``dry``, only read and say what would change)."""
    targets, outcomes = resolve_targets(records, playbooks, aws, overrides, exclude_tag)
    for target in targets:
        result = remediate_resource(target.action, target.clients, target.resource_id, dry)
        outcomes += target.outcomes(result)
    return outcomes
