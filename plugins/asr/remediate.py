"""The contract every fix follows, and the batch runner that applies it.

Read; if compliant, change nothing. Otherwise record the settings about to change,
apply, read back, and call it remediated only if the read-back complies. A failure
is reported for its resource and never stops the rest of the batch.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from botocore.exceptions import ClientError

from asr.actions import Action, ChangedMeanwhile, ChangeNotMade, MadeInPart
from asr.aws import AwsContext, Clients
from asr.claims import Claims, claim_name
from asr.findings import RoutingRecord
from asr.pacing import throttled
from asr.playbooks import PlaybookRegistry

T = TypeVar("T")
log = logging.getLogger(__name__)
# How often one apply plans again from a new read when the resource changed under it.
STALE_PLAN_REPLANS = 3


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
    # A disruptive playbook's fix a person rejected, or nobody approved in time: nothing changed.
    NOT_APPROVED = "NOT_APPROVED"
    # Routed, but the task that was to fix it did not finish: the report's word, never written back.
    NOT_RUN = "NOT_RUN"


@dataclass(frozen=True)
class Result:
    status: Status
    message: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    # A fix made, with something it left for a person to check (``Action.caveat``), else "".
    caveat: str = ""
    # A fix made whose effect Security Hub's check cannot see yet (``Action.awaits``).
    awaits_check: bool = False


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
    # A fix a person rejected: until when sweeps leave the finding alone (ISO 8601), else "".
    held_until: str = ""
    # A fix made, with something it left for a person to check (``Action.caveat``), else "".
    caveat: str = ""
    # NOT_APPROVED with nobody deciding (the approval request timed out): a rerun of the run's
    # failures takes it up again. False in outcomes written before the field was.
    undecided: bool = False
    # REMEDIATED, but Security Hub's check waits for more than the change (``Action.awaits``):
    # written back NOTIFIED, for Security Hub to resolve. False in outcomes written before.
    awaits_check: bool = False

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
            caveat=result.caveat,
            awaits_check=result.awaits_check,
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


# Answers that say another operation on the resource is under way, and to try again: fixes of
# different controls may write one bucket, trail, stage or log group at the same moment.
# botocore retries none of them. S3: "A conflicting conditional operation is currently in
# progress"; CloudWatch Logs: concurrent requests in conflict; IAM and CloudWatch: concurrent
# modification. (A service whose own code means it whatever the message, CloudTrail's
# ConflictException, says so in ``Action.busy_errors``.)
BUSY = frozenset(
    {
        "OperationAborted",
        "OperationAbortedException",
        "ConcurrentModificationException",
        "ConcurrentModification",
    }
)
# A conflict is busy only when it says so: the same codes also mean a lasting conflict elsewhere
# (API Gateway's "already exists"). API Gateway: "concurrent modification. Please try again
# later"; Lambda: "An update is in progress".
CONFLICTS = frozenset({"ConflictException", "ResourceConflictException"})
BUSY_WORDS = re.compile(r"concurrent|not ready|in progress|currently being|try again", re.IGNORECASE)


def busy(response: dict[str, Any], codes: Collection[str] = ()) -> bool:
    """Whether an AWS error answer refuses the call because the resource is busy with another
    operation, for a moment; ``codes``: those the calling action's service means so."""
    error = response.get("Error") or {}
    code = error.get("Code")
    if code in BUSY or code in codes:
        return True
    return code in CONFLICTS and bool(BUSY_WORDS.search(error.get("Message") or ""))


def retry_throttled(
    call: Callable[[], T],
    attempts: int = 10,
    sleep: Callable[[float], None] = time.sleep,
    busy_codes: Collection[str] = (),
) -> T:
    """Retry a call refused for throttling, on top of botocore's own retries, or because the
    resource was busy with another operation (``busy``, with ``busy_codes``), backing off up
    to about two minutes."""
    for attempt in range(attempts):
        try:
            return call()
        except ClientError as exc:
            if not (throttled(exc.response) or busy(exc.response, busy_codes)) or attempt == attempts - 1:
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
    return judge(action, read_resource(action, clients, resource_id))


def read_resource(action: Action, clients: Clients, resource_id: str) -> dict[str, Any]:
    return retry_throttled(lambda: action.read(clients, resource_id))


def judge(action: Action, state: dict[str, Any]) -> Result | Planned:
    plan = action.plan(state)
    if not plan:
        return Result(Status.ALREADY_COMPLIANT, "already compliant; nothing changed")
    return Planned(state, plan)


def verify(
    action: Action,
    clients: Clients,
    resource_id: str,
    planned: Planned,
    done: str,
    since: float | None = None,
) -> Result:
    """Read the resource back: REMEDIATED only if it now complies. Read again, backing off,
    while it does not and the service may not show the change yet, as a batch's read-back
    is (``_await_propagation``); ``since``: when (``time.monotonic``) the change was made at
    the latest, so that resources verified one after another do not each wait it all."""
    waited = time.monotonic() - since if since is not None else 0.0
    state = read_again_while(
        lambda: read_resource(action, clients, resource_id),
        lambda state: _still_to_change(action, state),
        action.propagation_seconds - waited,
    )
    return checked(action, state, planned, done)


def read_again_while(read: Callable[[], T], lagging: Callable[[T], bool], limit: float) -> T:
    """``read()``, read again, backing off (``propagation_waits``), while what it read looks
    ``lagging`` and a service may take up to ``limit`` seconds to show a change."""
    found = read()
    for delay in propagation_waits(limit):
        if not lagging(found):
            break
        time.sleep(delay)
        found = read()
    return found


def _still_to_change(action: Action, state: dict[str, Any]) -> bool:
    """Whether a read-back shows the change still to make (worth reading again while the
    service may lag); a plan that refuses says why it cannot be fixed: nothing to wait for."""
    try:
        return bool(action.plan(state))
    except Exception:
        return False


def checked(action: Action, state: dict[str, Any], planned: Planned, done: str) -> Result:
    after = {key: state.get(key) for key in planned.plan}
    try:
        still = action.plan(state)
    except Exception as exc:  # the read-back shows a reason to refuse: that resource's failure alone
        return Result(Status.FAILED, f"verification failed: {describe_error(exc)}", planned.before, after)
    if still:
        return Result(Status.FAILED, f"verification failed: still needs {still}", planned.before, after)
    return _remediated(action, state, done, planned.before, after)


def _remediated(
    action: Action,
    state: dict[str, Any],
    message: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> Result:
    """REMEDIATED, with what the read-back ``state`` shows the fix left for a person to check
    (``Action.caveat``) and what Security Hub's check still waits for (``Action.awaits``):
    in the message, which Security Hub's note carries, and apart, for the report and
    notification to list (a RESOLVED finding is not where people look)."""
    waits = (action.awaits(state) if state else None) or ""
    caveat = "; ".join(filter(None, [(action.caveat(state) if state else None) or "", waits]))
    text = f"{message}; {caveat}" if caveat else message
    return Result(Status.REMEDIATED, text, before, after, caveat, awaits_check=bool(waits))


def dry_run(planned: Planned) -> Result:
    return Result(
        Status.DRY_RUN, f"would change {planned.before} to {planned.plan}", planned.before, planned.plan
    )


@dataclass(frozen=True)
class Target:
    """One resource of a batch, every finding that names it, and how to reach and fix it."""

    clients: Clients
    resource_id: str
    records: tuple[RoutingRecord, ...]
    action: Action
    regional: bool = True  # False: a global playbook's resource, reached through any region

    def outcomes(self, result: Result) -> list[Outcome]:
        return [Outcome.of(record, result) for record in self.records]

    @property
    def fix_key(self) -> tuple[str, ...]:
        """This fix as the journal keys it (``audit.fix_key``, ``Journal.made_earlier``)."""
        playbook = self.records[0].playbook if self.records else ""
        return (self.clients.account_id, self.clients.region, self.resource_id, self.action.name, playbook)

    @property
    def resource_region(self) -> str:
        """The Region the resource is in, as its (first) finding says: a global playbook's
        clients are those of its batch's first finding's Region (``resolve_targets``), which
        may be another (a bucket in eu-west-1 fixed in a us-east-1 batch)."""
        return self.records[0].region if self.records else self.clients.region

    @property
    def claim(self) -> str:
        """The claim a run takes before changing this resource (``asr.claims``): a global
        resource has one, whichever region's findings (and clients) led to it."""
        region = self.clients.region if self.regional else "global"
        return claim_name(
            self.clients.account_id, region, self.resource_id, self.action.claims_as or self.action.name
        )


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
        """Playbook defaults < the control's parameters in the finding < this run's overrides;
        for an action whose parameters are a baseline, the finding's only where stricter."""
        key = json.dumps(record.parameters, sort_keys=True)
        if key not in built:
            action = playbook.build_action({**record.parameters, **(overrides or {})})
            if record.parameters and action.parameters_only_tighten:
                baseline = playbook.build_action(overrides or {})
                action = playbook.build_action(type(action).strictest([baseline.params, action.params]))
            built[key] = action
        return built[key]

    def resource_action(same: list[RoutingRecord]) -> Action:
        """One action for a resource's findings: the strictest of their parameters when they
        differ (``Action.strictest``, which may refuse)."""
        actions = list({json.dumps(a.params, sort_keys=True): a for a in map(action_for, same)}.values())
        if len(actions) == 1:
            return actions[0]
        return playbook.build_action(type(actions[0]).strictest([a.params for a in actions]))

    grouped: dict[tuple[str, str], dict[str, list[RoutingRecord]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        region = record.region if playbook.regional else records[0].region
        grouped[(record.account_id, region)][record.resource_id].append(record)

    targets: list[Target] = []
    failed: list[Outcome] = []
    for (account_id, region), by_resource in grouped.items():
        try:
            retry_throttled(lambda a=account_id: aws.credentials(a))  # STS throttles too
        except Exception as exc:
            reason = Result(Status.FAILED, f"cannot assume {aws.role_arn(account_id)}: {describe_error(exc)}")
            failed += [Outcome.of(r, reason) for rs in by_resource.values() for r in rs]
            continue
        clients = Clients(aws, account_id, region)
        excluded: dict[str, str] = {}
        if exclude_tag:
            from asr.guard import excluded_by_tag

            # The tagging API answers for the resources of its own region: a global playbook's
            # buckets are looked up where each finding says the bucket is.
            arns: dict[str, set[str]] = defaultdict(set)
            for r in (r for rs in by_resource.values() for r in rs if r.resource_arn.startswith("arn:")):
                arns[r.region].add(r.resource_arn)
            try:
                for tag_region, in_region in sorted(arns.items()):
                    where, which = clients.in_region(tag_region), sorted(in_region)
                    excluded |= retry_throttled(lambda w=where, a=which: excluded_by_tag(w, a, exclude_tag))
            except Exception as exc:
                reason = Result(
                    Status.FAILED, f"cannot read tags to check exclusions, not touched: {describe_error(exc)}"
                )
                failed += [Outcome.of(r, reason) for rs in by_resource.values() for r in rs]
                continue
        for resource_id, same in by_resource.items():
            # Findings of one resource may name it by different ARNs: any excluded excludes it.
            tagged = next((excluded[r.resource_arn] for r in same if r.resource_arn in excluded), None)
            if tagged:
                failed += [Outcome.of(r, Result(Status.EXCLUDED, tagged)) for r in same]
                continue
            try:
                action = resource_action(same)
            except ValueError as exc:
                failed += [Outcome.of(r, Result(Status.FAILED, f"not touched: {exc}")) for r in same]
                continue
            targets.append(Target(clients, resource_id, tuple(same), action, playbook.regional))
    return targets, failed


class Journal(Protocol):
    """Where every change is recorded before it is made (``asr.audit``)."""

    def intend(self, target: Target, planned: Planned) -> str:
        """Record the change about to be made; raising stops it from being made. Returns the
        intent's id."""

    def settle(self, target: Target, result: Result, intent: str | None = None) -> None:
        """Record how the change ended (of the intent ``intent``, else the writer's latest for
        the target)."""

    def made_earlier(self) -> dict[tuple[str, ...], dict[str, Any]]:
        """Fixes an earlier try of this run began or made (``before``, ``after``, ``settled``),
        by (account, region, resource, action)."""

    def refuse_if_rolled_back(self) -> None:
        """Raise if a rollback began to undo this run: asked once its claims are held."""


def _attempt(call: Callable[[], T]) -> T | Exception:
    try:
        return call()
    except Exception as exc:  # kept as this resource's result; the others go on
        return exc


def read_states(
    action: Action, clients: Clients, resource_ids: list[str], pool: ThreadPoolExecutor
) -> dict[str, dict[str, Any] | Exception]:
    """Every resource's state: in bulk where the action can, else one read each, concurrently."""
    states: dict[str, dict[str, Any] | Exception] = {}
    if len(resource_ids) > 1:
        bulk = _attempt(lambda: retry_throttled(lambda: action.read_many(clients, resource_ids)))
        states = {} if isinstance(bulk, Exception) else dict(bulk)
    rest = [rid for rid in resource_ids if rid not in states]
    singles = pool.map(lambda rid: _attempt(lambda: retry_throttled(lambda: action.read(clients, rid))), rest)
    states.update(zip(rest, singles, strict=True))
    return states


def _read_grouped(targets: list[Target], pool: ThreadPoolExecutor) -> list[dict[str, Any] | Exception]:
    """The state of each target, read per action and account-region (one Clients each) so
    reads can be batched."""
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, target in enumerate(targets):
        groups[(id(target.action), id(target.clients))].append(index)
    states: list[dict[str, Any] | Exception] = [{}] * len(targets)
    for indexes in groups.values():
        first = targets[indexes[0]]
        ids = list(dict.fromkeys(targets[i].resource_id for i in indexes))
        read = read_states(first.action, first.clients, ids, pool)
        for i in indexes:
            states[i] = read[targets[i].resource_id]
    return states


def fix_targets(
    targets: list[Target],
    dry: bool = False,
    journal: Journal | None = None,
    threads: int = 8,
    claims: Claims | None = None,
) -> list[Result]:
    """Fix the targets this run can claim (``asr.claims``); a resource another run is
    fixing right now is left to it (IGNORED). Dry runs change nothing and claim nothing."""
    if claims is None or dry:
        return _fix(targets, dry, journal, threads)
    try:
        mine, results = claim(targets, claims)
        if journal:
            journal.refuse_if_rolled_back()
        fixed = _fix([targets[index] for index in mine], dry, journal, threads)
        results.update(zip(mine, fixed, strict=True))
    finally:
        claims.release_all()
    return [results[index] for index in range(len(targets))]


def claim(targets: list[Target], claims: Claims) -> tuple[list[int], dict[int, Result]]:
    """The targets this run holds now (by index), and IGNORED for those another run holds."""
    mine: list[int] = []
    ignored: dict[int, Result] = {}
    for index, target in enumerate(targets):
        where = (target.clients.account_id, target.clients.region, target.resource_id, target.action.name)
        holder = claims.acquire(target.claim, {"resource": list(where)})
        if holder:
            ignored[index] = Result(Status.IGNORED, f"another task ({holder}) is fixing it now; left to it")
        else:
            mine.append(index)
    return mine, ignored


def _fix(targets: list[Target], dry: bool, journal: Journal | None, threads: int) -> list[Result]:
    """Read every target, apply the fixes concurrently, read back to verify: one Result each.

    Reads and read-backs are batched per action, account and region; the writes run on
    ``threads`` threads, paced by the clients' rate budget (``asr.pacing``). One
    resource's failure never stops the others.
    """
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="asr-fix") as pool:
        results, planned, read = _assess(targets, pool)
        if journal:
            _finish_earlier_tries(targets, results, journal, read)
        _unmet(targets, results, read)
        if dry:
            results.update({index: dry_run(plan) for index, plan in planned.items()})
            planned = {}
        errors, compliant = _apply(targets, planned, journal, pool)
        states = dict(zip(planned, _read_grouped([targets[i] for i in planned], pool), strict=True))
        _await_propagation(targets, states, errors, pool)
        for index, state in states.items():
            ended = _ended(targets[index].action, planned[index], state, errors.get(index))
            results[index] = (
                compliant[index] if index in compliant and ended.status == Status.REMEDIATED else ended
            )
        # Made compliant by another change: judged as a resource read compliant is, by what reads now.
        _unmet(targets, results, {i: s for i, s in states.items() if i in compliant and isinstance(s, dict)})
        if journal:
            list(pool.map(lambda index: settle(journal, targets[index], results[index]), planned))
    return [results[index] for index in range(len(targets))]


def _await_propagation(
    targets: list[Target],
    states: dict[int, dict[str, Any] | Exception],
    errors: dict[int, Exception],
    pool: ThreadPoolExecutor,
) -> None:
    """Read again, backing off, the resources whose change the service may take a while to
    show (``Action.propagation_seconds``), until they read changed or that time is up: an
    answer read too soon would call a change that was made FAILED."""

    def unsettled(index: int, waited: float) -> bool:
        action, state = targets[index].action, states[index]
        if errors.get(index) or isinstance(state, Exception) or waited >= action.propagation_seconds:
            return False
        return _still_to_change(action, state)

    waited = 0.0
    waiting = [index for index in states if unsettled(index, waited)]
    for delay in propagation_waits(max((targets[i].action.propagation_seconds for i in waiting), default=0)):
        time.sleep(delay)
        waited += delay
        for index, state in zip(waiting, _read_grouped([targets[i] for i in waiting], pool), strict=True):
            states[index] = state
        waiting = [index for index in waiting if unsettled(index, waited)]
        if not waiting:
            return


def propagation_waits(limit: float) -> Iterator[float]:
    """The pauses before each new read of a change a service may take up to ``limit``
    seconds to show: 1, 2, 4, 8, 8 ... seconds, until that long has been waited."""
    waited, delay = 0.0, 1.0
    while waited < limit:
        yield delay
        waited, delay = waited + delay, min(delay * 2, 8.0)


def settle(journal: Journal, target: Target, result: Result, intent: str | None = None) -> None:
    """Record how a change ended, or log why it could not be: the intent is already durable
    (a rollback finds it), and one failed write must not cost the batch its outcomes."""
    try:
        journal.settle(target, result, intent)
    except Exception:
        log.exception("Could not record how the change to %s ended", target.resource_id)


def _assess(
    targets: list[Target], pool: ThreadPoolExecutor
) -> tuple[dict[int, Result], dict[int, Planned], dict[int, dict[str, Any]]]:
    """Each target's Result when there is nothing to do (or it cannot be read), else its plan;
    and the states read, by target."""
    results: dict[int, Result] = {}
    planned: dict[int, Planned] = {}
    states: dict[int, dict[str, Any]] = {}
    for index, state in enumerate(_read_grouped(targets, pool)):
        if not isinstance(state, Exception):
            states[index] = state
        action = targets[index].action
        verdict = state if isinstance(state, Exception) else _attempt(lambda s=state, a=action: judge(a, s))
        if isinstance(verdict, Exception):
            results[index] = Result(Status.FAILED, describe_error(verdict))
        elif isinstance(verdict, Result):
            results[index] = verdict
        else:
            planned[index] = verdict
    return results, planned, states


def _unmet(targets: list[Target], results: dict[int, Result], states: dict[int, dict[str, Any]]) -> None:
    """``short_of_control`` for each compliant result whose state was read."""
    for index, result in results.items():
        if index in states:
            results[index] = short_of_control(targets[index], result, states[index])


def short_of_control(target: Target, result: Result, state: dict[str, Any]) -> Result:
    """A resource found compliant whose control still checks something no change of its action
    reaches (``Action.unmet``) is FAILED with why: reported compliant, the finding would stay
    FAILED in Security Hub with a note saying nothing was wrong. Judged after an earlier
    try's change is credited (that fix is this run's; what it set may not show yet)."""
    if result.status != Status.ALREADY_COMPLIANT:
        return result
    why = target.action.unmet(state)
    return Result(Status.FAILED, f"{why}; nothing changed") if why else result


def _finish_earlier_tries(
    targets: list[Target], results: dict[int, Result], journal: Journal, states: dict[int, dict[str, Any]]
) -> None:
    """``by_earlier_try`` for each compliant result, reading the journal once."""
    compliant = [i for i, r in results.items() if r.status == Status.ALREADY_COMPLIANT]
    earlier = journal.made_earlier() if compliant else {}
    for index in compliant:
        state = states.get(index) or {}
        results[index] = by_earlier_try(targets[index], results[index], state, earlier, journal)


def by_earlier_try(
    target: Target,
    result: Result,
    state: dict[str, Any],
    earlier: dict[tuple[str, ...], dict[str, Any]],
    journal: Journal,
) -> Result:
    """A compliant resource an earlier try of this run changed (``earlier``: the journal's
    ``made_earlier``), and died before saving its outcome, or before even recording the end,
    was fixed by that try: REMEDIATED, not ALREADY_COMPLIANT, and the record settled if the
    try could not, with what reads now (``state``) as its after-state: the plan may only
    describe what the change made (an ID the service gave it), and a rollback compares the
    after-state with what it reads."""
    if result.status != Status.ALREADY_COMPLIANT:
        return result
    change = earlier.get(target.fix_key)
    if not change:
        return result
    after = dict(change["after"] or {})
    if not change["settled"] and state:
        after = {name: state.get(name) for name in after}
    summary = target.action.summary.format(**target.action.params)
    message = f"{summary} (by an earlier try; verified now)"
    remediated = _remediated(target.action, state, message, change["before"], after)
    if not change["settled"]:  # another try's intent, perhaps on another host's clock
        settle(journal, target, remediated, change.get("intent_id"))
    return remediated


def _apply(
    targets: list[Target], planned: dict[int, Planned], journal: Journal | None, pool: ThreadPoolExecutor
) -> tuple[dict[int, Exception], dict[int, Result]]:
    """Record and apply each plan on the pool; return the errors, and the targets another
    change made compliant first, by target. A plan made again from a new read (the resource
    changed under it) replaces the first, in ``planned`` and in the journal: its before-state
    is what this fix changed, not what another fix did."""
    compliant: dict[int, Result] = {}

    def change(index: int) -> Exception | None:
        target, plan = targets[index], planned[index]

        def replanned(now: Planned | Result) -> None:
            if isinstance(now, Result):
                compliant[index] = Result(
                    Status.ALREADY_COMPLIANT, "made compliant by another change first; nothing changed"
                )
                return
            planned[index] = now
            if journal:
                journal.intend(target, now)

        try:
            if journal:
                journal.intend(target, plan)
            retry_throttled(_applier(target, plan, replanned), busy_codes=target.action.busy_errors)
        except Exception as exc:
            return exc
        return None

    errors = {index: error for index, error in zip(planned, pool.map(change, planned), strict=True) if error}
    return errors, compliant


def _applier(
    target: Target, planned: Planned, replanned: Callable[[Planned | Result], None]
) -> Callable[[], None]:
    """The apply to retry when throttled. A throttled apply may have made part of its change
    (one call of several went through), so a retry reads the resource again and applies only
    what is still needed: the first plan would redo the part made, and AWS refuses some of
    that (revoking a rule twice answers InvalidPermission.NotFound). A call refused because
    the resource changed since it was read (``Action.stale_plan_errors``), or an apply that
    finds the change made already (``ChangedMeanwhile``), is planned again from a new read, a
    few times at most, and that plan is handed to ``replanned``; so is the before-state of a
    change made only in part (``MadeInPart``), to be recorded as what the fix changed."""
    action, clients, resource_id = target.action, target.clients, target.resource_id
    tries = 0

    def apply() -> None:
        nonlocal tries
        tries += 1
        now = planned if tries == 1 else assess(action, clients, resource_id)
        for replans in range(STALE_PLAN_REPLANS + 1):
            if not isinstance(now, Planned):
                return
            try:
                action.apply(clients, resource_id, now.state, now.plan)
                return
            except MadeInPart as part:
                replanned(Planned(part.state, now.plan))
                return
            except ChangedMeanwhile:
                if replans == STALE_PLAN_REPLANS:
                    raise
            except ClientError as exc:
                if error_code(exc) not in action.stale_plan_errors or replans == STALE_PLAN_REPLANS:
                    raise
            now = assess(action, clients, resource_id)
            replanned(now)

    return apply


def _ended(
    action: Action, plan: Planned, state: dict[str, Any] | Exception, error: Exception | None
) -> Result:
    """What a fix came to, judged by its read-back. A change call that failed may still have
    made the change: a throttled call retried after an earlier attempt went through, or
    another control's fix of the same resource got there first (a rule already revoked
    answers NotFound). And a failure that changed part of the resource is recorded with
    what it left, so a rollback can put that part back."""
    if isinstance(state, Exception):
        why = describe_error(error) if error else f"read-back failed: {describe_error(state)}"
        return Result(Status.FAILED, why, plan.before)
    summary = action.summary.format(**action.params)
    result = checked(action, state, plan, summary)
    if error is None:
        return result
    if result.status == Status.REMEDIATED and not isinstance(error, ChangeNotMade):
        answered = f"a change call answered {describe_error(error)}, but it reads compliant now"
        return replace(result, message=f"{result.message} ({answered})")
    return Result(Status.FAILED, describe_error(error), plan.before, result.after)


def remediate_resource(action: Action, clients: Clients, resource_id: str, dry: bool = False) -> Result:
    """Fix one resource (the batch runner with a batch of one)."""
    [result] = fix_targets([Target(clients, resource_id, (), action)], dry, threads=1)
    return result


def run_batch(
    records: list[RoutingRecord],
    playbooks: PlaybookRegistry,
    aws: AwsContext,
    overrides: dict[str, Any] | None = None,
    dry: bool = False,
    exclude_tag: tuple[str, str | None] | None = None,
    journal: Journal | None = None,
    threads: int = 8,
    claims: Claims | None = None,
) -> list[Outcome]:
    """Fix every resource of one playbook's batch with the action's own API calls
    (with ``dry``, only read and say what would change)."""
    targets, outcomes = resolve_targets(records, playbooks, aws, overrides, exclude_tag)
    for target, result in zip(targets, fix_targets(targets, dry, journal, threads, claims), strict=True):
        outcomes += target.outcomes(result)
    return outcomes
