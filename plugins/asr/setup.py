"""``asr setup``: what carries Security Hub events to the ``asr_events`` DAG.

In the Security Hub administrator account and region it makes, or finds and corrects:

- the custom action "Remediate with ASR" a person chooses in the console for selected findings;
- an SQS queue for the events (``ASR_EVENTS_QUEUE_URL``), encrypted, with a dead-letter
  queue that keeps events EventBridge failed to deliver and messages received again and
  again without being deleted, each allowing only the two rules below to send. The
  trigger deletes a message as it receives it, before Airflow records the event: a
  triggerer killed in between loses that event, and the next sweep finds its finding;
- two EventBridge rules on the default bus, both targeting the queue: one for that custom
  action, one for newly imported failed findings of the controls whose playbook has
  ``auto_remediate: true``.

Every step reads first and writes only what differs, so a second run changes nothing, and
one after a step failed (``SetupIncomplete``) finishes the job.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from asr.aws import AwsContext
from asr.config import Settings
from asr.events import CUSTOM_ACTION, IMPORTED, QUEUE_RETENTION_SECONDS, SOURCE
from asr.findings import ACTIONABLE_COMPLIANCE, OWN_PRODUCT_ARN_END
from asr.playbooks import PlaybookRegistry, registry
from asr.remediate import describe_error

ACTION_ID = "ASRRemediate"
ACTION_NAME = "Remediate with ASR"  # Security Hub allows 20 characters
ACTION_DESCRIPTION = "Send the selected findings to ASR on Airflow to fix them with their playbooks"
DEFAULT_QUEUE_NAME = "asr-security-hub-events"
TARGET_ID = "asr-events-queue"
MAX_RECEIVE_COUNT = 5
DLQ_RETENTION_SECONDS = 14 * 24 * 3600  # SQS's maximum: time to look at what failed
# EventBridge's default event pattern size, in characters (a quota that can be raised to 4096).
PATTERN_LIMIT = 2048
# The longest rule name, "<queue>-custom-action", must fit EventBridge's 64 characters.
QUEUE_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,50}$")


@dataclass
class SetupResult:
    """Where the events arrive, and what this run created, updated, found as wanted or removed."""

    queue_url: str = ""
    queue_arn: str = ""
    dead_letter_queue_url: str = ""
    dead_letter_queue_arn: str = ""
    action_target_arn: str = ""
    rule_names: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed)

    def note(self, what: str, created: bool = False, updated: bool = False) -> None:
        (self.created if created else self.updated if updated else self.found).append(what)


class SetupIncomplete(RuntimeError):
    """A step failed, maybe after others made or changed things: ``result`` holds what this
    run did before it, so the person knows what is in place, and a second run, once the
    cause is mended, keeps it and does the rest."""

    def __init__(self, step: str, error: Exception, result: SetupResult) -> None:
        super().__init__(f"{step} failed: {error}")
        self.step, self.error, self.result = step, error, result


@contextmanager
def _step(what: str, result: SetupResult) -> Iterator[None]:
    """Name the step an AWS error (or EventBridge's refusal) stopped, with what came before it."""
    try:
        yield
    except (ClientError, BotoCoreError, RuntimeError) as exc:
        raise SetupIncomplete(what, exc, result) from exc


def auto_remediate_controls(playbooks: PlaybookRegistry | None = None) -> list[str]:
    """Consolidated control ids (``also_fixes`` included) whose playbook may run unattended."""
    return sorted(c for p in playbooks or registry() if p.auto_remediate for c in p.controls)


def custom_action_pattern(action_target_arn: str) -> dict[str, Any]:
    return {"source": [SOURCE], "detail-type": [CUSTOM_ACTION], "resources": [action_target_arn]}


def imported_pattern(
    controls: Iterable[str],
    accounts: Iterable[str] = (),
    excluded: Iterable[str] = (),
    regions: Iterable[str] = (),
) -> dict[str, Any]:
    """New, active, failed (FAILED or WARNING, as sweeps take them) findings of these
    controls, in these accounts (any, when none are named) but the excluded ones, and these
    regions (any, when none): a finding asr may not touch would start a run for nothing. The
    ``findings`` array is matched element by element (EventBridge crushes arrays out of the
    pattern path); Security Hub sends one finding per Imported event anyway."""
    findings: dict[str, Any] = {
        # Security Hub's own findings only, as sweeps read (a member account's own product may
        # import findings naming any control: each would start a run, listing its Id).
        "ProductArn": [{"suffix": OWN_PRODUCT_ARN_END}],
        "Compliance": {"Status": sorted(ACTIONABLE_COMPLIANCE), "SecurityControlId": sorted(set(controls))},
        "RecordState": ["ACTIVE"],
        "Workflow": {"Status": ["NEW"]},
    }
    allowed, excluded = set(accounts), set(excluded)
    if allowed:
        findings["AwsAccountId"] = sorted(allowed - excluded)
    elif excluded:
        findings["AwsAccountId"] = [{"anything-but": sorted(excluded)}]
    if regions:
        findings["Region"] = sorted(set(regions))
    return {"source": [SOURCE], "detail-type": [IMPORTED], "detail": {"findings": findings}}


def fitted_imported_pattern(scope: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The Imported rule's pattern for ``automatic_scope``, within EventBridge's default
    pattern size: past it, the accounts (then the regions) are left to ingest, which checks
    every finding's scope anyway; and a note saying so ("" when all of it fits)."""
    controls, accounts, excluded, regions = (
        scope[k] for k in ("controls", "accounts", "excluded", "regions")
    )
    candidates = [
        (imported_pattern(controls, accounts, excluded, regions), ""),
        (imported_pattern(controls, (), (), regions), "accounts"),
        (imported_pattern(controls), "accounts and regions"),
    ]
    fits = (c for c in candidates if len(json.dumps(c[0])) <= PATTERN_LIMIT)
    pattern, left_out = next(fits, candidates[-1])
    note = left_out and (
        f"the Imported rule leaves out the {left_out} (its pattern would pass EventBridge's "
        f"{PATTERN_LIMIT} characters): asr_events runs start for them, and ingest rejects or excludes them"
    )
    return pattern, note


def check_auto_controls(controls: Iterable[str], playbooks: PlaybookRegistry) -> None:
    """Refuse a control the Imported rule must not name: an unknown one (a typo, or not the
    consolidated id) would match nothing, and one whose playbook has ``auto_remediate`` off
    would start ``asr_events`` runs that only reject its findings (``FindingsAsked.keep``)."""
    for control in controls:
        owner = playbooks.for_control(control)
        if owner is None:
            raise ValueError(
                f"automatic control {control!r} is no control asr fixes "
                "(consolidated control ids as Security Hub writes them, e.g. EC2.7)"
            )
        if not owner.auto_remediate:
            raise ValueError(
                f"automatic control {control!r}: its playbook {owner.control_id} has auto_remediate off, "
                "so asr_events would reject its Imported findings (turn it on in the playbook, or send "
                "them with the custom action)"
            )


def automatic_scope(settings: Settings, auto_controls: Iterable[str] | None = None) -> dict[str, Any]:
    """The Imported rule's controls and accounts for these settings: the automatic controls
    (``auto_controls``, each checked, else the playbooks' ``auto_remediate`` ones) less
    ``ASR_EXCLUDE_CONTROLS``, and ``ASR_ACCOUNTS`` (unless the organization widens it) less
    ``ASR_EXCLUDE_ACCOUNTS``. Run ``asr setup`` again after changing them."""
    excluded, playbooks = set(settings.exclude_controls), registry()

    def wanted(control: str) -> bool:  # excluded by its own id, or by its playbook's
        owner = playbooks.for_control(control)
        return control not in excluded and not (owner and owner.control_id in excluded)

    if auto_controls is None:
        controls = auto_remediate_controls(playbooks)
    else:
        controls = list(auto_controls)
        check_auto_controls(controls, playbooks)
    return {
        "controls": sorted({c for c in controls if wanted(c)}),
        "accounts": () if settings.accounts_from_organization else settings.accounts,
        "excluded": settings.exclude_accounts,
        "regions": settings.regions,
    }


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _ensure_action_target(securityhub: Any, result: SetupResult) -> str:
    """Found by its Id (the ARN ends ``action/custom/<Id>``); renamed back if someone changed it."""
    suffix = f":action/custom/{ACTION_ID}"
    pages = securityhub.get_paginator("describe_action_targets").paginate()
    existing = next(
        (t for page in pages for t in page["ActionTargets"] if t["ActionTargetArn"].endswith(suffix)), None
    )
    what = f"Security Hub custom action {ACTION_NAME!r}"
    if existing is None:
        arn: str = securityhub.create_action_target(
            Name=ACTION_NAME, Description=ACTION_DESCRIPTION, Id=ACTION_ID
        )["ActionTargetArn"]
        result.note(what, created=True)
        return arn
    stale = (existing.get("Name"), existing.get("Description")) != (ACTION_NAME, ACTION_DESCRIPTION)
    if stale:
        securityhub.update_action_target(
            ActionTargetArn=existing["ActionTargetArn"], Name=ACTION_NAME, Description=ACTION_DESCRIPTION
        )
    result.note(what, updated=stale)
    return str(existing["ActionTargetArn"])


def _ensure_rule(
    events: Any, name: str, pattern: dict[str, Any], description: str, result: SetupResult
) -> str:
    """Put the rule unless it already has this pattern and description and is enabled."""
    try:
        current = events.describe_rule(Name=name)
    except ClientError as exc:
        if _error_code(exc) != "ResourceNotFoundException":
            raise
        current = None
    if current is not None:
        unchanged = (
            json.loads(current.get("EventPattern") or "null") == pattern
            and current.get("Description") == description
            and current.get("State") == "ENABLED"
        )
        if unchanged:
            result.note(f"EventBridge rule {name}")
            return str(current["Arn"])
    arn: str = events.put_rule(
        Name=name, EventPattern=json.dumps(pattern), Description=description, State="ENABLED"
    )["RuleArn"]
    result.note(f"EventBridge rule {name}", created=current is None, updated=current is not None)
    return arn


def _remove_rule(events: Any, name: str, result: SetupResult) -> None:
    """A rule with no control left to match: its targets go first, as EventBridge requires."""
    try:
        targets = events.list_targets_by_rule(Rule=name)["Targets"]
    except ClientError as exc:
        if _error_code(exc) == "ResourceNotFoundException":
            return
        raise
    if targets:
        events.remove_targets(Rule=name, Ids=[t["Id"] for t in targets])
    events.delete_rule(Name=name)
    result.removed.append(f"EventBridge rule {name}")


def _ensure_target(events: Any, rule: str, target: dict[str, Any], result: SetupResult) -> None:
    current = next(
        (t for t in events.list_targets_by_rule(Rule=rule)["Targets"] if t["Id"] == target["Id"]), None
    )
    what = f"target of {rule} -> queue"
    if current is not None and all(current.get(k) == v for k, v in target.items()):
        result.note(what)
        return
    response = events.put_targets(Rule=rule, Targets=[target])
    if response.get("FailedEntryCount"):
        raise RuntimeError(f"EventBridge refused the target of {rule}: {response['FailedEntries']}")
    result.note(what, created=current is None, updated=current is not None)


def _same_attribute(current: str | None, wanted: str) -> bool:
    """Policies come back as JSON text that may be spaced or ordered differently."""
    if current == wanted:
        return True
    try:
        return current is not None and json.loads(current) == json.loads(wanted)
    except ValueError:
        return False


def _ensure_queue(
    sqs: Any, name: str, attributes: Callable[[str], dict[str, str]], result: SetupResult
) -> tuple[str, str]:
    """The queue's URL and ARN; ``attributes`` gets the ARN (a policy names its queue)."""
    try:
        url: str = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        created = False
    except ClientError as exc:
        if _error_code(exc) not in ("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"):
            raise
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        created = True
    current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    arn: str = current["QueueArn"]
    stale = {k: v for k, v in attributes(arn).items() if not _same_attribute(current.get(k), v)}
    if stale:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=stale)
    result.note(f"SQS queue {name}", created=created, updated=bool(stale) and not created)
    return url, arn


def _queue_policy(queue_arn: str, rule_arns: list[str]) -> str:
    """EventBridge may send to the queue on behalf of our rules, and nobody else may send:
    a message there is taken for a person's click, so an identity policy allowing
    ``sqs:SendMessage`` in the administrator account must not be enough to forge one.
    (A request without ``aws:SourceArn`` matches the negated condition: it is denied.)"""
    rules = {"aws:SourceArn": sorted(rule_arns)}
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AsrSecurityHubEvents",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": rules},
                },
                {
                    "Sid": "AsrOnlyFromItsRules",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnNotEquals": rules},
                },
            ],
        }
    )


def _rule_arn(queue_arn: str, rule: str) -> str:
    """The ARN EventBridge gives a rule of the default bus in the queue's partition, region and
    account: the queue policies name the rules before they are made."""
    partition, _, region, account = queue_arn.split(":")[1:5]
    return f"arn:{partition}:events:{region}:{account}:rule/{rule}"


def _no_imported_rule(scope: dict[str, Any]) -> str:
    """Why no Imported rule is wanted ("" when one is): with no control or no account left, its
    pattern would match nothing, and EventBridge refuses an empty list."""
    if not scope["controls"]:
        return (
            "no automatic control is left "
            "(--auto-controls, else the auto_remediate playbooks, less ASR_EXCLUDE_CONTROLS)"
        )
    if scope["accounts"] and not set(scope["accounts"]) - set(scope["excluded"]):
        return "ASR_EXCLUDE_ACCOUNTS excludes every account of ASR_ACCOUNTS"
    return ""


def setup(
    aws_context: AwsContext,
    region: str,
    queue_name: str = DEFAULT_QUEUE_NAME,
    auto_controls: Iterable[str] | None = None,
    settings: Settings | None = None,
) -> SetupResult:
    """Make (or find) the custom action, queues and rules; ``auto_controls`` defaults to the
    playbooks' ``auto_remediate`` controls. The Imported rule follows the settings' scope
    (``automatic_scope``), and is removed when nothing is left in it. The queues come first
    and each rule gets its target as it is made, so a step that fails leaves no rule
    delivering nowhere; it raises ``SetupIncomplete``, naming it, with what was done before.
    A bad queue name or automatic control raises ``ValueError`` before anything is touched."""
    if not QUEUE_NAME_RE.match(queue_name):
        raise ValueError(f"queue name {queue_name!r}: use 1 to 50 letters, digits, '-' or '_'")
    settings = settings or Settings.from_env()
    scope = automatic_scope(settings, auto_controls)
    securityhub = aws_context.admin_client("securityhub", region)
    events = aws_context.admin_client("events", region)
    sqs = aws_context.admin_client("sqs", region)
    result = SetupResult()

    with _step(f"Security Hub custom action {ACTION_NAME!r}", result):
        result.action_target_arn = _ensure_action_target(securityhub, result)
    custom_rule, imported_rule = f"{queue_name}-custom-action", f"{queue_name}-imported"
    rules = {
        custom_rule: (
            custom_action_pattern(result.action_target_arn),
            f"ASR: findings a person sent with the Security Hub custom action {ACTION_NAME!r}",
        )
    }
    no_imported_rule = _no_imported_rule(scope)
    if not no_imported_rule:
        pattern, note = fitted_imported_pattern(scope)
        rules[imported_rule] = (
            pattern,
            "ASR: new failed findings of controls whose playbook has auto_remediate: true",
        )
        result.notes += [note] if note else []
    result.rule_names = list(rules)

    def policy(queue_arn: str) -> str:
        return _queue_policy(queue_arn, [_rule_arn(queue_arn, rule) for rule in rules])

    dead_letter_queue = f"{queue_name}-dlq"
    with _step(f"SQS queue {dead_letter_queue}", result):
        result.dead_letter_queue_url, result.dead_letter_queue_arn = _ensure_queue(
            sqs,
            dead_letter_queue,
            lambda arn: {
                "MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS),
                "SqsManagedSseEnabled": "true",
                "Policy": policy(arn),
            },
            result,
        )
    redrive = {"deadLetterTargetArn": result.dead_letter_queue_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
    with _step(f"SQS queue {queue_name}", result):
        result.queue_url, result.queue_arn = _ensure_queue(
            sqs,
            queue_name,
            lambda arn: {
                "MessageRetentionPeriod": str(QUEUE_RETENTION_SECONDS),
                "SqsManagedSseEnabled": "true",
                "RedrivePolicy": json.dumps(redrive),
                "Policy": policy(arn),
            },
            result,
        )
    target = {
        "Id": TARGET_ID,
        "Arn": result.queue_arn,
        "DeadLetterConfig": {"Arn": result.dead_letter_queue_arn},
    }
    for rule, (pattern, description) in rules.items():
        with _step(f"EventBridge rule {rule}", result):
            arn = _ensure_rule(events, rule, pattern, description, result)
            if arn != _rule_arn(result.queue_arn, rule):
                raise RuntimeError(
                    f"EventBridge named rule {rule} {arn}, which the queue policies do not allow"
                )
        with _step(f"target of {rule} -> queue", result):
            _ensure_target(events, rule, target, result)
    if no_imported_rule:
        with _step(f"removal of EventBridge rule {imported_rule}", result):
            _remove_rule(events, imported_rule, result)
        result.notes.append(f"no rule for Imported findings: {no_imported_rule}")
    administrator = result.queue_arn.split(":")[4]
    result.notes += not_members(securityhub, settings.accounts, administrator)
    return result


# Accounts one GetMembers call takes.
MEMBERS_PER_CALL = 50


def not_members(securityhub: Any, accounts: Iterable[str], administrator: str) -> list[str]:
    """Notes on the ASR_ACCOUNTS that are not enabled members of this Security Hub
    administrator: their findings never reach it, so asr never sees them, and nothing else
    would say so (a mistyped account id reads as a clean account). A check that cannot be
    made (no securityhub:GetMembers) is a note too: it changes nothing."""
    asked = sorted(set(accounts) - {administrator})
    notes = []
    try:
        for start in range(0, len(asked), MEMBERS_PER_CALL):
            answer = securityhub.get_members(AccountIds=asked[start : start + MEMBERS_PER_CALL])
            for member in answer.get("Members", []):
                if str(member.get("MemberStatus")).upper() != "ENABLED":  # AWS: Enabled; moto: ENABLED
                    notes.append(
                        f"ASR_ACCOUNTS names {member['AccountId']}, a Security Hub member whose status "
                        f"is {member.get('MemberStatus')}, not ENABLED: its findings may not reach the "
                        "administrator"
                    )
            for unprocessed in answer.get("UnprocessedAccounts", []):
                notes.append(
                    f"ASR_ACCOUNTS names {unprocessed.get('AccountId')}, which is no Security Hub member of "
                    f"{administrator} ({unprocessed.get('ProcessingResult')}): a typo? Its findings never "
                    "reach asr"
                )
    except ClientError as exc:
        notes.append(f"could not check that ASR_ACCOUNTS are Security Hub members: {describe_error(exc)}")
    return notes
