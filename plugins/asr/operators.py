"""Operators for what a TaskFlow task cannot do: hand a wait over to the triggerer."""

from __future__ import annotations

import logging
import time
from typing import Any

from airflow.sdk import BaseOperator

from asr.playbooks import registry

log = logging.getLogger(__name__)


class AutomationFixOperator(BaseOperator):
    """Fix one batch through its playbook's SSM Automation document.

    Starts the executions, then defers to ``AutomationExecutionTrigger`` while they run
    (no worker slot is held), and on resuming verifies each resource and saves the
    batch's outcomes exactly as the direct fix task does.
    """

    template_fields = ("batch",)

    def __init__(self, *, batch: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch = batch

    def execute(self, context: Any) -> dict[str, int]:
        from asr import automation, sweep
        from asr.tasks import aws_context, run_context, unless_rolled_back
        from asr.triggers import AutomationExecutionTrigger

        settings, store, _ = run_context(context)
        journal = self._journal(settings, context)
        dry = sweep.is_dry_run(store, context["params"])
        records = sweep.batch_records(store, self.batch)
        # A retry after the wait failed (the triggerer lost AWS, say) waits again for the
        # executions the earlier try started: starting them again would run the document
        # twice on resources it is still changing.
        earlier = store.read_json(self._saved())["pending"] if store.path(self._saved()).exists() else []
        started = {r["finding_id"] for e in earlier for r in e["records"]}
        records = [r for r in records if r.finding_id not in started]
        shares = sweep.batch_plan(store, self.batch)["rate_shares"]
        aws = aws_context(settings, shares, context)
        claims = self._claims(settings, context)
        _reclaim(claims, earlier)
        under_way = list(earlier)

        def remember(execution: dict[str, Any]) -> None:
            """Save each execution as it starts: a try that dies in the (paced) loop must
            leave its retry the executions to wait for, not resources to start again."""
            under_way.append(execution)
            try:
                store.write_json(self._saved(), {"outcomes": [], "pending": under_way})
            except Exception:  # the save after the loop tries again, and fails the task if it must
                self.log.warning("Could not save the executions started so far", exc_info=True)

        with unless_rolled_back(journal):  # asked again in automation.start, once the claims are held
            outcomes, pending = (
                automation.start(
                    records,
                    registry(),
                    aws,
                    settings,
                    dry=dry,
                    journal=journal,
                    claims=claims,
                    started=remember,
                )
                if records
                else ([], [])
            )
        pending += earlier
        if not pending:
            return sweep.save_outcomes(store, self.batch, outcomes)
        document = registry().playbooks[self.batch["playbook"]].ssm_document
        assert document is not None
        try:
            store.write_json(self._saved(), {"outcomes": [o.to_dict() for o in outcomes], "pending": pending})
        except Exception:  # nothing will wait for these executions: their resources must not stay claimed
            _release(claims, pending)
            raise
        self.log.info("Waiting for %d SSM Automation executions of %s", len(pending), document.name)
        self.defer(
            trigger=AutomationExecutionTrigger(
                executions=[{k: e[k] for k in ("execution_id", "account_id", "region")} for e in pending],
                aws_conn_id=settings.aws_conn_id,
                member_role_name=settings.member_role_name,
                poll_seconds=document.poll_seconds,
                deadline=time.time() + document.timeout_minutes * 60,
                rate_limits=settings.rate_limits,
                rate_shares=shares,
                home_region=aws.home_region,
                session_name=aws.role_session_name,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, int]:
        from asr import automation, sweep
        from asr.remediate import Outcome
        from asr.tasks import aws_context, run_context

        settings, store, _ = run_context(context)
        saved = store.read_json(self._saved())
        journal = self._journal(settings, context)
        finished, running = automation.finish(
            saved["pending"],
            event["statuses"],
            registry(),
            aws_context(settings, sweep.batch_plan(store, self.batch)["rate_shares"], context),
            journal=journal,
        )
        outcomes = [Outcome(**o) for o in saved["outcomes"]] + finished
        counts = sweep.save_outcomes(store, self.batch, outcomes)
        # Finished: clearing the task later starts the document again, it does not wait on these.
        # One that could not be stopped may still be running: it keeps its claim, and a cleared
        # task waits for it again instead of starting the document a second time.
        unstopped = [e for e in saved["pending"] if e["execution_id"] in running]
        if unstopped:
            store.write_json(self._saved(), {"outcomes": [], "pending": unstopped})
        else:
            store.remove(self._saved())
        _release(
            self._claims(settings, context), [e for e in saved["pending"] if e["execution_id"] not in running]
        )
        return counts

    def _claims(self, settings: Any, context: Any) -> Any:
        """This task's claims. They are held while the executions run, so they may be held
        for the document's whole timeout besides the time a fix task may take."""
        from asr import claims

        document = registry().playbooks[self.batch["playbook"]].ssm_document
        assert document is not None
        ttl = claims.DEFAULT_TTL + document.timeout_minutes * 60
        dag_id, run_id = context["dag"].dag_id, context["run_id"]
        return claims.for_run(
            settings.audit_root, dag_id, run_id, settings.aws_conn_id, self.task_id, ttl, lapse_with_run=True
        )

    def _journal(self, settings: Any, context: Any) -> Any:
        """The run's audit journal; an execution's start and its end (after deferral, perhaps in
        another process) pair up there by resource."""
        from asr.audit import AuditJournal

        batch_id = self.batch["batch_id"]
        return AuditJournal.for_task(settings.audit_root, settings.aws_conn_id, context, batch_id)

    def _saved(self) -> str:
        return f"automations/{self.batch['batch_id']}.json"


def _reclaim(claims: Any, pending: list[dict[str, Any]]) -> None:
    """Claim anew the resources of executions an earlier try started, which this try waits
    for again: their claims count their age from that try, and would lapse mid-wait."""
    for execution in pending if claims is not None else []:
        where = [execution["account_id"], execution["region"], execution["resource_id"]]
        holder = claims.acquire(execution["claim"], {"resource": where}) if "claim" in execution else None
        if holder:
            log.warning("%s is held by %s meanwhile: both may change it", execution["resource_id"], holder)


def _release(claims: Any, pending: list[dict[str, Any]]) -> None:
    """Drop the claims the executions under way were started with (none without claims)."""
    if claims is not None:
        claims.release(e["claim"] for e in pending if "claim" in e)
