"""Fixes applied through SSM Automation: assess, start, wait, verify.

The playbook's action still decides whether a resource needs fixing (and records its
before-state) and verifies it afterwards; only the change itself is made by the SSM
document, in the resource's account and region, with the automation role passed as
``AutomationAssumeRole`` where the document asks for it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from asr.aws import AwsContext, Clients
from asr.config import Settings
from asr.findings import RoutingRecord
from asr.playbooks import PlaybookRegistry
from asr.remediate import (
    Outcome,
    Planned,
    Result,
    Status,
    Target,
    by_earlier_try,
    claim,
    describe_error,
    dry_run,
    error_code,
    judge,
    read_resource,
    resolve_targets,
    retry_throttled,
    settle,
    short_of_control,
    verify,
)

if TYPE_CHECKING:
    from asr.claims import Claims
    from asr.remediate import Journal

SUCCEEDED = {"Success", "CompletedWithSuccess"}
# Every terminal AutomationExecutionStatus; any other is still going (or waiting for a person).
ENDED = SUCCEEDED | {
    "Failed",
    "TimedOut",
    "Cancelled",
    "CompletedWithFailure",
    "Rejected",
    "ChangeCalendarOverrideRejected",
    "Exited",
}
# asr's own status for an execution its last poll could not read: still waited for.
UNREADABLE = "Unreadable"


def start(
    records: list[RoutingRecord],
    playbooks: PlaybookRegistry,
    aws: AwsContext,
    settings: Settings,
    overrides: dict[str, Any] | None = None,
    dry: bool = False,
    journal: Journal | None = None,
    claims: Claims | None = None,
    started: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[list[Outcome], list[dict[str, Any]]]:
    """Start the playbook's document for each resource that needs it.

    Returns the outcomes already known (compliant, or failed before starting) and the
    executions under way, as JSON-able records to wait for and finish later. Each start
    is recorded in the ``journal`` first; ``finish`` records how it ended. A start an earlier
    try recorded and never settled is made again under that intent, with the same
    ``ClientToken``: SSM answers with the execution that try started, if it got that far,
    instead of running the document a second time. With ``claims``, a resource another run
    holds is left to it (IGNORED); the claim of each execution under way is kept (its
    ``claim``) for the caller to drop when it has finished.
    ``started`` is told of each execution as soon as it runs, so that a try that dies in
    the loop (paced, it takes minutes) leaves a retry the executions to wait for.
    """
    document = playbooks.playbooks[records[0].playbook].ssm_document
    assert document is not None, "start() is for playbooks with an ssm_document"
    from asr.guard import Scope

    records, held = Scope.of_settings(settings).hold_back(records)
    targets, outcomes = resolve_targets(records, playbooks, aws, overrides, settings.exclusion_tag)
    outcomes = held + outcomes
    if claims is not None and not dry:
        try:
            mine, ignored = claim(targets, claims)
            if journal:
                journal.refuse_if_rolled_back()
        except Exception:  # a claim store that fails part way, or a rollback began: drop what was taken
            claims.release_all()
            raise
        outcomes += [o for index, result in ignored.items() for o in targets[index].outcomes(result)]
        targets = [targets[index] for index in mine]
    pending: list[dict[str, Any]] = []
    earlier: dict[tuple[str, ...], dict[str, Any]] | None = None  # the journal's, read when needed
    for target in targets:
        planned: Planned | None = None
        intended: str | None = None  # the intent's id, once recorded
        try:
            if journal and earlier is None:  # what earlier tries began: made since, or to start again
                earlier = journal.made_earlier()
            state = read_resource(target.action, target.clients, target.resource_id)
            assessed = judge(target.action, state)
            if isinstance(assessed, Result):
                # An earlier try's execution may have made it so, and died after.
                if journal and earlier is not None:
                    assessed = by_earlier_try(target, assessed, state, earlier, journal)
                outcomes += target.outcomes(short_of_control(target, assessed, state))
                continue
            planned = assessed
            if dry:
                outcomes += target.outcomes(dry_run(planned))
                continue
            account, region = target.clients.account_id, target.clients.region
            values = {
                "resource_id": target.resource_id,
                "resource_arn": target.records[0].resource_arn,
                "account_id": account,
                "region": region,
                "automation_role_arn": (
                    f"arn:{target.clients.ssm.meta.partition}:iam::{account}:role/{settings.automation_role_name}"
                ),
            }
            if journal and earlier is not None:
                intended = _unsettled(target, earlier) or journal.intend(target, planned)
            request: dict[str, Any] = {
                "DocumentName": document.name,
                "Parameters": document.render(values),
                "ClientToken": _client_token(intended),
            }
            if document.version:
                request["DocumentVersion"] = document.version
            # The client is asked for on each try: throttled retries can outlast the member
            # credentials, and Clients hands out one made with fresh ones near their expiry.
            execution = retry_throttled(
                lambda t=target, r=request: t.clients.ssm.start_automation_execution(**r)
            )
        except Exception as exc:
            before = planned.before if planned else None
            failed = Result(Status.FAILED, describe_error(exc), before)
            if journal and intended:
                settle(journal, target, failed, intended)
            outcomes += target.outcomes(failed)
            continue
        pending.append(
            {
                "execution_id": execution["AutomationExecutionId"],
                "account_id": account,
                "region": region,
                "resource_id": target.resource_id,
                "records": [r.to_dict() for r in target.records],
                "state": planned.state,
                "plan": planned.plan,
                "claim": target.claim,
                "intent_id": intended,
                "client_token": request["ClientToken"],
            }
        )
        if started:
            started(pending[-1])
    if claims is not None and not dry:
        claims.release({t.claim for t in targets} - {e["claim"] for e in pending})
    return outcomes, pending


# The namespace of the ClientTokens made from intent ids (``_client_token``).
TOKEN_NAMESPACE = uuid.UUID("0d6f3c2e-5b8a-4f1e-9c47-2a8e61b0d3f5")


def _client_token(intent_id: str | None) -> str:
    """The idempotency token of the start recorded as ``intent_id``: the same for every try
    that makes that start, so SSM answers a start an earlier try made with its execution
    instead of running the document again. Without a journal, a new one (throttled retries
    within one call still send it each time)."""
    return str(uuid.uuid5(TOKEN_NAMESPACE, intent_id)) if intent_id else str(uuid.uuid4())


def _unsettled(target: Target, earlier: dict[tuple[str, ...], dict[str, Any]]) -> str | None:
    """The intent of an earlier try's start of this fix that never settled, if any: that try
    died after recording it, perhaps after SSM started the execution but before it was saved
    for the retry to wait on. The retry makes that start again, under that intent."""
    change = earlier.get(target.fix_key)
    return change["intent_id"] if change and not change["settled"] else None


def poll(pending: list[dict[str, Any]], aws: AwsContext) -> dict[str, dict[str, str]]:
    """The status of each execution: ``{execution_id: {"status", "message"}}``; UNREADABLE,
    with the error, for one that could not be read (its account's role, say): one
    execution's error must not end the wait for the others, nor its own (it may be
    passing)."""
    statuses: dict[str, dict[str, str]] = {}
    for execution in pending:
        try:
            found = retry_throttled(
                lambda e=execution: aws.client("ssm", e["account_id"], e["region"]).get_automation_execution(
                    AutomationExecutionId=e["execution_id"]
                )
            )["AutomationExecution"]
        except Exception as exc:  # botocore has retried what a retry can mend
            statuses[execution["execution_id"]] = {"status": UNREADABLE, "message": describe_error(exc)}
            continue
        statuses[execution["execution_id"]] = {
            "status": found["AutomationExecutionStatus"],
            "message": found.get("FailureMessage", ""),
        }
    return statuses


ENDED_MEANWHILE = "InvalidAutomationStatusUpdateException"  # SSM's answer: it has ended since the last poll


def _stop(execution: dict[str, Any], aws: AwsContext) -> tuple[str, bool]:
    """Stop an execution out of time: what became of it (the end of "... did not finish"),
    or ``ENDED_MEANWHILE``; and whether it may still be running."""
    execution_id = execution["execution_id"]
    try:
        retry_throttled(
            lambda: aws.client("ssm", execution["account_id"], execution["region"]).stop_automation_execution(
                AutomationExecutionId=execution_id
            )
        )
    except Exception as exc:
        code = error_code(exc) if isinstance(exc, ClientError) else ""
        if code == ENDED_MEANWHILE:
            return code, False
        if code == "AutomationExecutionNotFoundException":
            return "and SSM has no such execution to stop", False
        return f"and could not be stopped ({describe_error(exc)}): it may still be running", True
    found = poll([execution], aws)[execution_id]
    if found["status"] == UNREADABLE:
        return (
            f"and was asked to stop, but could not be read since ({found['message']}): "
            "it may still be running",
            True,
        )
    if found["status"] not in ENDED:  # Cancelling: a step under way may still change the resource
        return f"and SSM is still stopping it ({found['status']}): it may still be running", True
    return "and was stopped", False


def finish(
    pending: list[dict[str, Any]],
    statuses: dict[str, dict[str, str]],
    playbooks: PlaybookRegistry,
    aws: AwsContext,
    overrides: dict[str, Any] | None = None,
    journal: Journal | None = None,
) -> tuple[list[Outcome], set[str]]:
    """Turn each execution's end into outcomes; verify the resource where it succeeded.

    An execution with no terminal status here ran out of time: it is stopped, and its
    findings fail with that reason (with the error, when it could not even be read); one
    that SSM says ended after the last poll is judged by its end. Also returns the ids of
    those that could not be stopped: they may still be changing their resources, which the
    caller keeps claimed.
    """
    outcomes: list[Outcome] = []
    running: set[str] = set()
    # The executions that succeeded had ended by now (or, polled again while being stopped,
    # just after): their resources' propagation waits share one clock, not one wait each.
    ended_by = time.monotonic()
    for execution in pending:
        records = [RoutingRecord.from_dict(r) for r in execution["records"]]
        playbook = playbooks.playbooks[records[0].playbook]
        document = playbook.ssm_document
        assert document is not None
        clients = Clients(aws, execution["account_id"], execution["region"])
        action = playbook.build_action({**records[0].parameters, **(overrides or {})})
        planned = Planned(execution["state"], execution["plan"])
        execution_id = execution["execution_id"]
        ended = statuses.get(execution_id, {"status": "InProgress", "message": ""})
        run = f"SSM Automation {document.name} {execution_id}"
        try:
            stopped = ""
            if ended["status"] not in ENDED:  # out of time
                stopped, may_run = _stop(execution, aws)
                if stopped == ENDED_MEANWHILE:  # judged by its end, which the last poll missed
                    ended = poll([execution], aws)[execution_id]
                    # SSM also refuses to stop one it is already stopping (Cancelling).
                    may_run = ended["status"] not in ENDED | {UNREADABLE}
                if may_run:
                    running.add(execution_id)
            if ended["status"] in SUCCEEDED:
                done = f"{run} succeeded"
                result = verify(action, clients, execution["resource_id"], planned, done, ended_by)
            elif ended["status"] in ENDED:
                reason = f"{run} ended {ended['status']}: {ended['message']}".rstrip(": ")
                result = Result(Status.FAILED, reason, planned.before)
            else:
                within = f"within {document.timeout_minutes} minutes"
                reason = f"{run} did not finish {within}"
                if ended["status"] == UNREADABLE:
                    reason = f"{run} could not be read {within} ({ended['message']})"
                if stopped == ENDED_MEANWHILE:  # and its end could not be read
                    stopped = "and SSM would not stop it, as it had ended"
                result = Result(Status.FAILED, f"{reason} {stopped}", planned.before)
        except Exception as exc:
            result = Result(Status.FAILED, describe_error(exc), planned.before)
        if journal:
            where = Target(clients, execution["resource_id"], tuple(records), action)
            settle(journal, where, result, execution.get("intent_id"))
        outcomes += [Outcome.of(record, result) for record in records]
    return outcomes, running
