"""Approvals for disruptive playbooks: one person's decision per playbook per run.

A disruptive fix (it cuts network access, deactivates credentials, fails a database
over) waits before its batches run on Airflow's human-in-the-loop approval, whose
request shows the resources and what the fix changes. Approve, and the batches run.
Reject, or leave it unanswered until ``ASR_APPROVAL_TIMEOUT`` (in a scheduled sweep, at
most until shortly before the next one is due: ``wait_for_decision``), and nothing changes:
every finding of the playbook in the run gets a NOT_APPROVED outcome with the reason
(who rejected, or that it timed out), which write-back marks NOTIFIED and the report lists.
A rejection is a decision, not an error: the run still writes back, reports and succeeds.
A person's rejection holds for ``ASR_REJECTION_HOLD`` (``hold_until``): without it the next
hourly sweep would ask again about the same resources; a timeout holds nothing.

With ``ASR_APPROVERS``, only those Airflow users may answer (Airflow's ``assigned_users``):
whoever may trigger a run need not be who may let its disruptive fixes through.

asr_rollback asks too (``RollbackApproval``), before it puts back what fixes closed, with the
same approvers and timeout; ``ASR_ROLLBACK_APPROVAL`` turns that off.

Dry runs and playbooks in ``ASR_AUTO_APPROVE`` never wait. Both are decided when the run
reaches the step, not when the DAG is parsed, so a configuration change applies to the
next run without redeploying.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from asr.findings import one_line
from asr.playbooks import Playbook, registry

log = logging.getLogger(__name__)

# Resources listed in an approval request; the rest are counted. Thousands of rows would
# make the request unreadable, and it is stored in the metadata database.
SHOWN_RESOURCES = 25
SHOWN_PARAMETER_SETS = 5
CELL_WIDTH = 120


def _cell(value: Any) -> str:
    """Text safe inside a Markdown table cell and code span, at most CELL_WIDTH characters: on
    one line, with no control or format character (an escape sequence, a right-to-left
    override that shows a resource name backwards) to mislead the approver."""
    text = one_line(value).replace("`", "'").replace("|", "/")
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 3] + "..."


def changes(playbook: Playbook, records: Iterable[dict[str, Any]]) -> list[str]:
    """What the fix does, once per distinct parameter set (a finding's control parameters
    may override the playbook's), as the note each fixed finding will carry."""
    parameter_sets = Counter(json.dumps(r.get("parameters") or {}, sort_keys=True) for r in records)
    lines = []
    for key, count in parameter_sets.most_common(SHOWN_PARAMETER_SETS):
        try:
            action = playbook.build_action(json.loads(key))
            summary = action.summary.format(**action.params)
            what = f"{_cell(summary)} (parameters `{_cell(json.dumps(action.params))}`)"
        except ValueError as exc:  # an invalid control parameter: the fix will fail and say so
            what = f"cannot be built: {_cell(exc)}"
        lines.append(f"- {what}" + (f", for {count} findings" if len(parameter_sets) > 1 else ""))
    if len(parameter_sets) > SHOWN_PARAMETER_SETS:
        lines.append(f"- ...and {len(parameter_sets) - SHOWN_PARAMETER_SETS} other parameter sets")
    if playbook.ssm_document:
        lines.append(f"- applied by the SSM Automation document `{_cell(playbook.ssm_document.name)}`")
    return lines


def subject(playbook: Playbook, records: list[dict[str, Any]]) -> str:
    resources = {(r["account_id"], r["region"], r["resource_id"]) for r in records}
    return f"Approve the {playbook.control_id} fix: {len(resources)} resources, {len(records)} findings"


def body(
    playbook: Playbook,
    records: list[dict[str, Any]],
    shown: int = SHOWN_RESOURCES,
    approvers: tuple[str, ...] = (),
) -> str:
    """The approval request in Markdown: what the fix changes and on which resources,
    the first ``shown`` resources listed and the rest counted, so its size is bounded;
    and who may answer, when ``ASR_APPROVERS`` names them."""
    resources = Counter((r["account_id"], r["region"], r["resource_id"]) for r in records)
    accounts = {account for account, _, _ in resources}
    lines = [
        f"**{_cell(playbook.control_id)}**: {_cell(playbook.title)}",
        "",
        f"{len(records)} findings on {len(resources)} resources in {len(accounts)} accounts.",
        "",
        "**What the fix changes** (the note each fixed finding gets):",
        "",
        *changes(playbook, records),
        "",
        f"**What it may break:** {_cell(playbook.risk)}",
        "",
        "| account | region | resource | findings |",
        "|---|---|---|---|",
        *(
            f"| {_cell(account)} | {_cell(region)} | `{_cell(resource)}` | {count} |"
            for (account, region, resource), count in sorted(resources.items())[:shown]
        ),
    ]
    if len(resources) > shown:
        lines.append(
            f"\n...and {len(resources) - shown} more resources (the run's batch files list them all)."
        )
    lines += [
        "",
        "**Approve** runs the fix. **Reject**, or no answer before the timeout, changes nothing "
        "and marks these findings NOTIFIED in Security Hub with the reason; after a **Reject**, "
        "sweeps leave them alone for ASR_REJECTION_HOLD hours.",
    ]
    return "\n".join(lines + _answerers(approvers))


def _answerers(approvers: tuple[str, ...]) -> list[str]:
    """The request's closing lines naming who may answer, when ``ASR_APPROVERS`` does."""
    if not approvers:
        return []
    return ["", f"Only these Airflow users may answer (ASR_APPROVERS): {_cell(', '.join(approvers))}."]


def rollback_subject(run: str, changes: list[dict[str, Any]]) -> str:
    """``changes``: the check's reversals a rollback would put back."""
    resources = {(c["account_id"], c["region"], c["resource_id"]) for c in changes}
    return f"Approve rolling back {_cell(run)}: {len(changes)} changes on {len(resources)} resources"


def rollback_body(
    run: str, checked: list[dict[str, Any]], shown: int = SHOWN_RESOURCES, approvers: tuple[str, ...] = ()
) -> str:
    """The rollback's request in Markdown: what would be put back and where, the first
    ``shown`` changes listed and the rest counted; what would not, counted by why."""
    from asr.rollback import RollbackStatus

    back = [c for c in checked if c["status"] == RollbackStatus.WOULD_REVERT]
    left = Counter(c["status"] for c in checked if c["status"] != RollbackStatus.WOULD_REVERT)
    accounts = {c["account_id"] for c in back}
    lines = [
        f"**Roll back {_cell(run)}**: put back what its fixes changed.",
        "",
        f"{len(back)} changes in {len(accounts)} accounts would be put back. Each re-opens what "
        "the fix closed: its findings go NOTIFIED in Security Hub, and sweeps leave them alone "
        "until a person picks them by id.",
        "",
        "| account | region | resource | control | what is put back |",
        "|---|---|---|---|---|",
        *(
            f"| {_cell(c['account_id'])} | {_cell(c['region'])} | `{_cell(c['resource_id'])}` "
            f"| {_cell(','.join(c['control_ids']))} | {_cell(c['reason'])} |"
            for c in back[:shown]
        ),
    ]
    if len(back) > shown:
        lines.append(f"\n...and {len(back) - shown} more changes.")
    lines += [
        "",
        f"Long values are cut to {CELL_WIDTH} characters: rollback-check.json, in this run's folder, "
        "has each change whole.",
    ]
    if left:
        why = ", ".join(f"{n} {status}" for status, n in sorted(left.items()))
        lines += ["", f"Not put back, whatever the answer (the report says why): {why}."]
    lines += [
        "",
        "**Approve** puts these back, each only if it still reads as the fix left it. **Reject**, "
        "or no answer before the timeout (ASR_APPROVAL_TIMEOUT), puts nothing back.",
    ]
    return "\n".join(lines + _answerers(approvers))


def refusal(answer: dict[str, Any], timed_out: bool, before_next_sweep: bool = False) -> str:
    """Why the fix did not run, as the finding's note will say it; ``before_next_sweep``: the
    request expired ahead of the next scheduled sweep (``wait_for_decision``), not after
    ASR_APPROVAL_TIMEOUT, which an operator would otherwise look for in vain."""
    when = answer.get("responded_at")
    at = f" at {when:%Y-%m-%d %H:%M} UTC" if isinstance(when, datetime) else ""
    user = answer.get("responded_by_user") or {}
    nobody = not decided_by_person(answer, timed_out)
    if nobody and before_next_sweep:
        return (
            f"no one approved it before the approval request expired{at}, ahead of the next "
            "scheduled sweep (ASR_SWEEP_SCHEDULE), which asks again"
        )
    if nobody:
        return f"no one approved it before the approval request timed out{at} (ASR_APPROVAL_TIMEOUT)"
    return f"rejected by {user.get('name') or user.get('id')}{at}"


def record_not_approved(
    store: Any, batches: list[dict[str, Any]], reason: str, held_until: str = "", undecided: bool = False
) -> int:
    """A NOT_APPROVED outcome for every finding of these batches, in the run's outcome files
    (where the fix would have put its own), for write-back and the report. A batch the fix
    already ran (a person approved, then cleared the step and rejected) keeps what the fix did.
    ``held_until``: a person rejected the fix, and write-back holds the findings until then;
    ``undecided``: nobody answered, and a rerun of the run's failures asks again."""
    from asr.remediate import Outcome, Result, Status
    from asr.sweep import batch_records, save_outcomes

    result = Result(Status.NOT_APPROVED, reason)
    return sum(
        sum(
            save_outcomes(
                store,
                batch,
                [
                    replace(Outcome.of(r, result), held_until=held_until, undecided=undecided)
                    for r in batch_records(store, batch)
                ],
            ).values()
        )
        for batch in batches
        if not _fixed(store, batch)
    )


def decided_by_person(answer: dict[str, Any], timed_out: bool) -> bool:
    """Whether a person gave the answer: a request that timed out, or one answered by no user
    (the request's default), was decided by nobody."""
    return not timed_out and bool(answer.get("responded_by_user"))


def hold_until(answer: dict[str, Any], timed_out: bool, hold: timedelta) -> str:
    """Until when a refusal holds (ISO 8601), or "" when it does not: a request that timed
    out was decided by nobody, and the next sweep asks again."""
    if not decided_by_person(answer, timed_out) or hold <= timedelta(0):
        return ""
    when = answer.get("responded_at")
    start = when.astimezone(UTC) if isinstance(when, datetime) and when.tzinfo else datetime.now(UTC)
    return (start + hold).isoformat(timespec="seconds")


def forget_decision(store: Any, batches: list[dict[str, Any]]) -> None:
    """Drop the NOT_APPROVED outcomes of an earlier decision on these batches: the step runs
    again (a person cleared it), and a batch whose fix then fails must be NOT_RUN, not
    reported refused."""
    for batch in batches:
        if store.path(_outcomes(batch)).exists() and not _fixed(store, batch):
            store.remove(_outcomes(batch))


def _unsent(task_id: str) -> str:
    """Where an approval step notes that its request could not be sent to the topic."""
    return f"approvals/{task_id}.unsent.json"


def _cut_short(task_id: str) -> str:
    """Where an approval step notes that its request waits only until the next sweep is due."""
    return f"approvals/{task_id}.cut-short.json"


def _outcomes(batch: dict[str, Any]) -> str:
    return f"outcomes/{batch['batch_id']}.jsonl"


def _fixed(store: Any, batch: dict[str, Any]) -> bool:
    """Whether the batch's outcomes are the fix's own (any but NOT_APPROVED)."""
    return any(row.get("status") != "NOT_APPROVED" for row in store.read_lines(_outcomes(batch)))


# A sweep's request expires this long before the next scheduled run is due (write-back and the
# report still have to run), but is open for this long at least.
NEXT_RUN_MARGIN = timedelta(minutes=5)
SHORTEST_WAIT = timedelta(minutes=5)


def wait_for_decision(timeout: timedelta, context: Any) -> timedelta:
    """How long a request waits: ``ASR_APPROVAL_TIMEOUT``, but in a run of a scheduled DAG
    (a sweep, started by the schedule or by hand) only until shortly before the next
    scheduled run is due. A sweep runs one at a time, so a request nobody answers for a day
    would hold back the scheduled sweeps, every other control's fixes and the run's
    write-back for that day; the next sweep asks again, with what is still open then."""
    dag_run = context["dag_run"]
    due = next_run_due(context["dag"], dag_run)
    if due is None:
        return timeout
    return min(timeout, max(SHORTEST_WAIT, due - datetime.now(UTC) - NEXT_RUN_MARGIN))


def next_run_due(dag: Any, dag_run: Any) -> datetime | None:
    """When the scheduler will start the DAG's next run, by the DAG's own timetable."""
    import pendulum
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import DataInterval, TimeRestriction

    try:
        start = pendulum.instance(getattr(dag_run, "data_interval_start", None) or dag_run.run_after)
        end = pendulum.instance(getattr(dag_run, "data_interval_end", None) or dag_run.run_after)
        restriction = TimeRestriction(earliest=dag.start_date, latest=dag.end_date, catchup=False)
        timetable = coerce_to_core_timetable(dag.timetable)
        info = timetable.next_dagrun_info(
            last_automated_data_interval=DataInterval(start, end), restriction=restriction
        )
    except Exception:  # an unusual timetable: the configured timeout stands
        log.warning(
            "Cannot tell when %s runs next; waiting the full ASR_APPROVAL_TIMEOUT", dag.dag_id, exc_info=True
        )
        return None
    return info.run_after if info else None


def same_request(
    store: Any, task_id: str, title: str, text: str, records: list[dict[str, Any]], about: str = ""
) -> None:
    """Fail unless the request is the one this step showed before, if it showed one.

    Airflow 3.3 keeps one request per task instance: cleared and asked again, it shows the
    first try's subject and body (the execution API does not update them), while the
    answer applies to this try's batches. A run cleared after its findings changed would
    then fix resources the person was never shown; it is stopped instead."""
    from airflow.sdk.exceptions import AirflowFailException

    resources = sorted({f"{r['account_id']}/{r['region']}/{r['resource_id']}" for r in records})
    asked = {"subject": title, "body": text, "resources": resources} | ({"about": about} if about else {})
    name = f"approvals/{task_id}.json"
    was = store.read_json(name) if store.path(name).exists() else None
    if was is None:
        store.write_json(name, asked)
    elif was != asked:
        differs = (
            "for resources other than this try's batches"
            if was.get("resources") != resources
            else "with approvers (ASR_APPROVERS) or words other than this try's"
        )
        raise AirflowFailException(
            f"this run's approval request was made by an earlier try, {differs}, and Airflow "
            "shows that one: an answer would apply to what nobody was shown, or come from whom the "
            "settings no longer name. Trigger a new run (a new run asks afresh)"
        )


class AskingApproval(ApprovalOperator):
    """What asr's approval steps share: the request goes only to ``ASR_APPROVERS`` when it
    names them, is the one an earlier try showed or nothing, waits ``ASR_APPROVAL_TIMEOUT``
    (a sweep's less: ``wait_for_decision``), and is published to ``ASR_SNS_TOPIC_ARN``; a
    refusal says who refused, or why nobody did."""

    def ask(
        self, context: Any, settings: Any, store: Any, records: list[dict[str, Any]], about: str = ""
    ) -> Any:
        """Ask ``self.subject`` and ``self.body`` about ``records`` (each names its account,
        region and resource; ``about``: what else names what is asked, beyond what the request
        shows); the task waits, deferred, for the answer."""
        if settings.approvers:  # Airflow then refuses anyone else's answer (403)
            self.assigned_users = [{"id": user, "name": user} for user in settings.approvers]
        same_request(store, self.task_id, self.subject, self.body, records, about)
        self.response_timeout = wait_for_decision(settings.approval_timeout, context)
        if self.response_timeout < settings.approval_timeout:
            store.write_json(_cut_short(self.task_id), {"wait": str(self.response_timeout)})
        else:
            store.remove(_cut_short(self.task_id))
        from asr import notify

        where = f"Required actions, DAG {context['dag'].dag_id}, run {context['run_id']}, task {self.task_id}"
        if page := notify.run_page(context["dag"].dag_id, context["run_id"]):
            where += f": {page}"
        log.info(
            "%s; waiting up to %s for a decision: answer in the Airflow UI (%s) or through the REST API "
            "(hitlDetails), or set ASR_AUTO_APPROVE for this playbook",
            self.subject,
            self.response_timeout,
            where,
        )
        topic = settings.sns_topic_arn
        sent = notify.send_approval_request(topic, settings.aws_conn_id, self.subject, self.body, where)
        if topic and not sent:
            # Unheard, the request times out (and the next sweep asks again, unheard again):
            # the reason the refusal gives must say so.
            store.write_json(_unsent(self.task_id), {"topic": topic})
        else:
            store.remove(_unsent(self.task_id))
        return super().execute(context)

    def refused(self, event: dict[str, Any], store: Any, what: str) -> str | None:
        """Why the answer refuses ``what`` (a person rejected, or nobody answered in time), or
        None: approved, or an error event (the ApprovalOperator fails the task)."""
        if "error" in event or event.get("chosen_options") == [self.APPROVE]:
            user = (event.get("responded_by_user") or {}).get("name")
            log.info("%s: %s", what, f"approved by {user}" if user else f"no decision ({event.get('error')})")
            return None
        timed_out = bool(event.get("timedout"))
        reason = refusal(event, timed_out, store.path(_cut_short(self.task_id)).exists())
        if timed_out and store.path(_unsent(self.task_id)).exists():
            reason += "; the request could not be sent to ASR_SNS_TOPIC_ARN (see the approval task's log)"
        return reason


class ControlApproval(AskingApproval):
    """The approval step of one disruptive playbook's task group, before its mapped fix.

    Approve: it returns the playbook's batches of the run's plan, which the fix is mapped
    over (so the group needs no task of its own to pick them). Reject or timeout (the
    request's default is Reject): the ApprovalOperator skips the fix, and every finding of
    the batches is recorded NOT_APPROVED with the reason.
    """

    def __init__(self, *, playbook: str, plan_task_id: str, **kwargs: Any) -> None:
        super().__init__(subject=f"Approve the {playbook} fix", defaults=self.REJECT, **kwargs)
        self.playbook = playbook
        self.plan_task_id = plan_task_id

    def _batches(self, context: Any) -> list[dict[str, Any]]:
        """This playbook's batches of the run's plan (``tasks.BATCHES``)."""
        from asr.tasks import BATCHES

        planned = context["ti"].xcom_pull(task_ids=self.plan_task_id, key=BATCHES) or []
        return [b for b in planned if b["playbook"] == self.playbook]

    def execute(self, context: Any) -> Any:
        from asr.sweep import is_dry_run
        from asr.tasks import run_context

        settings, store, _ = run_context(context)
        batches = self._batches(context)
        forget_decision(store, batches)
        if is_dry_run(store, context["params"]):
            log.info("Dry run: nothing will change, so no approval is asked for")
            return batches
        if settings.auto_approves(self.playbook):
            log.info("%s is auto-approved (ASR_AUTO_APPROVE)", self.playbook)
            return batches
        playbook = registry().playbooks[self.playbook]
        records = [row for batch in batches for row in store.read_lines(f"batches/{batch['batch_id']}.jsonl")]
        self.subject = subject(playbook, records)
        self.body = body(playbook, records, approvers=settings.approvers)
        return self.ask(context, settings, store, records)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        """Record a refusal first: on Reject the ApprovalOperator skips the fix and ends the
        task there (skipping is raised, not returned), so nothing after it would run."""
        from asr.tasks import run_context

        settings, store, _ = run_context(context)
        reason = self.refused(event, store, self.playbook)
        if reason is not None:
            timed_out = bool(event.get("timedout"))
            held = hold_until(event, timed_out, settings.rejection_hold)
            if held:
                reason += f"; sweeps leave these findings alone until {held[:16].replace('T', ' ')} UTC"
            undecided = not decided_by_person(event, timed_out)
            count = record_not_approved(store, self._batches(context), reason, held, undecided)
            log.info(
                "%s not approved (%s): %d findings will be marked NOTIFIED", self.playbook, reason, count
            )
        super().execute_complete(context, event)
        return self._batches(context)


class RollbackApproval(AskingApproval):
    """asr_rollback's step between its check and its revert: undoing a fix re-opens the hole
    it closed, so whoever may trigger the DAG must not do it alone when ``ASR_APPROVERS``
    names who decides. The request lists what the check would put back; Approve, and the
    revert runs (and puts back only that); Reject or timeout (the default is Reject), and
    the revert is skipped, the report saying why nothing was put back. Dry runs, runs with
    nothing to put back and ``ASR_ROLLBACK_APPROVAL`` off do not ask."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(subject="Approve the rollback", defaults=self.REJECT, **kwargs)

    def execute(self, context: Any) -> Any:
        from asr import rollback
        from asr.tasks import run_context

        settings, store, _ = run_context(context)
        if context["params"].get("dry_run"):
            log.info("Dry run: nothing will be put back, so no approval is asked for")
            return None
        checked = store.read_json(rollback.CHECK)
        back = [c for c in checked["changes"] if c["status"] == rollback.RollbackStatus.WOULD_REVERT]
        if not settings.rollback_approval or not back:
            why = "ASR_ROLLBACK_APPROVAL is off" if back else "the check found nothing to put back"
            log.info("%s: the rollback goes ahead without asking", why)
            rollback.decide(store, rollback.NOT_ASKED, check=checked)
            return None
        self.subject = rollback_subject(checked["run"], back)
        self.body = rollback_body(checked["run"], checked["changes"], approvers=settings.approvers)
        rollback.decide(store, rollback.ASKED, check=checked)  # the answer applies to this check alone
        return self.ask(context, settings, store, back, rollback.check_digest(checked))

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        """Record the decision about the check the request showed, and on a refusal write
        the report first: on Reject the ApprovalOperator skips the revert and ends the task
        there, so nothing after it would run."""
        from asr import rollback
        from asr.tasks import run_context

        _, store, _ = run_context(context)
        # An error event fails the step (the ApprovalOperator raises it): the report says so.
        reason = (
            f"no decision: {event['error']}"
            if "error" in event
            else self.refused(event, store, "the rollback")
        )
        if reason is not None:
            totals = rollback.record_not_approved(store, reason)
            log.info("Rollback not approved (%s): %s", reason, totals)
        else:
            rollback.approved(store, (event.get("responded_by_user") or {}).get("name") or "")
        return super().execute_complete(context, event)
