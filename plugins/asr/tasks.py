"""The TaskFlow tasks the DAGs wire together: thin adapters from Airflow to ``asr``.

Each task builds its settings (environment, overridden by the run's params), its AWS
context (the Airflow connection) and the run's store, then calls one library step.
Heavy imports (boto3, the steps) happen inside the tasks, never at DAG parse time.
Tasks that return a dict of counts say ``multiple_outputs=False``: Airflow would otherwise
push each key as an XCom of its own, one more Execution API call per key and task.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import TriggerRule, get_current_context, task

from asr.config import Settings, env_number, env_value
from asr.playbooks import registry

if TYPE_CHECKING:
    from asr.audit import AuditJournal
    from asr.playbooks import Playbook
    from asr.securityhub import QueryPlan

log = logging.getLogger(__name__)
# What a run's params may set: only narrowing and sizing. Any key of a run's conf reaches its
# params, so the role asr assumes in member accounts must never be one of them.
OVERRIDABLE = ("accounts", "regions", "batch_size")
# Fix tasks of one playbook in one run that may run at once (each runs ASR_FIX_THREADS threads); read when
# the DAG is parsed. An Airflow pool (ASR_FIX_POOL) can bound them across runs and DAGs.
MAX_ACTIVE_FIXES = int(env_number("ASR_MAX_ACTIVE_FIXES", 8, minimum=1))
FIX_POOL = env_value("ASR_FIX_POOL", "default_pool")
# A fix or write-back try that died (worker killed, AWS unreachable) is tried again: fixes
# are idempotent and claimed, outcomes are saved before write-back, which re-reads first.
RETRIES = int(env_number("ASR_TASK_RETRIES", 2))
RETRY_DELAY = timedelta(seconds=env_number("ASR_RETRY_DELAY_SECONDS", 30.0))


BATCHES = "batches"  # plan's XCom key for the batch list
# Why a run sent no summary (report.json): it only left findings alone (``report.worth_telling``).
NOTHING_TO_TELL = "nothing to tell: every finding was left alone"


def remediate_group(group_id: str) -> str:
    """The task group id of a playbook (``Playbook.group_id``) in every DAG."""
    return f"remediate_{group_id}"


def branch_target(playbook: Playbook) -> str:
    """The first task of a playbook's group, what ``plan`` branches to when it has work:
    the approval of a disruptive playbook, else the task that picks its batches."""
    return f"{remediate_group(playbook.group_id)}.{'approve' if playbook.disruptive else 'select_batches'}"


def run_context(context: Any = None) -> tuple[Settings, Any, str]:
    """This run's settings (environment < the run's params), store and run id. Refused in a
    run whose files were deleted for age (``asr.housekeeping``): a task of it cleared later
    would read no batch and no outcome and report success for nothing, and its ingest cleared
    would start over without the decisions its first one recorded (dry run or not)."""
    from asr.store import RunStore

    context = context or get_current_context()
    params = context["params"]
    with _asked_wrong():
        _refuse_unknown_fields(context)
    settings = Settings.from_env().with_overrides({k: params.get(k) for k in OVERRIDABLE})
    run_id = context["run_id"]
    store = RunStore.for_run(settings.data_dir, context["dag"].dag_id, run_id, settings.aws_conn_id)
    with _asked_wrong():  # no step of a run may go on in another run's folder
        owner = store.refuse_another(context["dag"].dag_id, run_id, run_after(context))
        if pruned := owner.get("pruned"):
            raise ValueError(
                f"the files of run {run_id} were deleted on {pruned[:10]}, ASR_KEEP_RUNS_DAYS after it "
                "ended: trigger a new run"
            )
    return settings, store, run_id


def _refuse_unknown_fields(context: Any) -> None:
    """A run's conf naming a field its DAG's form does not have (``finding_ids`` sent to
    asr_sweep through the API, say): Airflow keeps it and nothing reads it, so the run would
    act on all its form does select, not what the person meant."""
    conf = getattr(context.get("dag_run"), "conf", None)
    unknown = sorted(set(conf) - set(context["dag"].params)) if conf else []
    if unknown:
        dag_id = context["dag"].dag_id
        hint = " (to pick findings, use asr_remediate)" if dag_id == "asr_sweep" else ""
        raise ValueError(
            f"{dag_id} has no field {', '.join(map(repr, unknown))}{hint}: its fields are "
            f"{', '.join(sorted(context['dag'].params))}. Nothing was done: trigger it again without them"
        )


def own_run(context: Any) -> tuple[Settings, Any, str]:
    """``run_context``, with the run's folder marked as this run's: ingest, each run's first step."""
    with _asked_wrong():
        settings, store, run_id = run_context(context)
        store.own(context["dag"].dag_id, run_id, run_after(context))
    return settings, store, run_id


def run_after(context: Any) -> str | None:
    """When Airflow made the run (``DagRun.run_after``), kept when it is cleared: it tells a run
    from an earlier one of the same id, deleted since."""
    made = getattr(context.get("dag_run"), "run_after", None)
    return made.isoformat() if made is not None else None


def airflow_max_map_length() -> int:
    """The most task instances Airflow maps from one value (``[core] max_map_length``): a
    longer batch list is refused when pushed, so the plan cuts no more batches than this."""
    from airflow.configuration import conf

    return conf.getint("core", "max_map_length", fallback=1024)


def aws_context(
    settings: Settings, rate_shares: float | dict[str, float] = 1, context: Any = None, role_name: str = ""
) -> Any:
    """The run's AWS access, its clients paced at a part of the configured budget: divided
    by ``rate_shares`` (one number, or one per ``"account/region"``). The member role's (or
    ``role_name``'s) session is named after the run (``context``: the running task's), for
    CloudTrail."""
    from asr.aws import AwsContext, session_name
    from asr.pacing import RateBudget, parse_limits

    context = context or get_current_context()
    who = session_name(context["dag"].dag_id, context["run_id"])
    aws = AwsContext.from_airflow(
        settings.aws_conn_id, role_name or settings.member_role_name, settings.securityhub_region, who
    )
    limits = parse_limits(settings.rate_limits)
    if limits:
        aws.budget = RateBudget(limits, rate_shares)
    return aws


def fix_parallelism() -> int:
    """How many fix tasks of one playbook in a run can run at once: the fewer of Airflow's
    slots and ours."""
    from airflow.configuration import conf

    return max(1, min(conf.getint("core", "parallelism"), MAX_ACTIVE_FIXES))


def run_parallelism() -> int:
    """How many tasks of a run, fix tasks of every playbook together, can run at once."""
    from airflow.configuration import conf

    return max(1, min(conf.getint("core", "parallelism"), conf.getint("core", "max_active_tasks_per_dag")))


def _control_ids(playbook_ids: list[str]) -> list[str]:
    """Every consolidated control id the chosen playbooks fix."""
    return [c for p in registry() if p.control_id in playbook_ids for c in p.controls]


def _ingest(
    plan: QueryPlan,
    keep: Any = None,
    named: Iterable[str] = (),
    resources: Iterable[str] = (),
    skipped: Iterable[dict[str, str]] = (),
) -> dict[str, int]:
    """Route the findings the plan selects, within who asr may act on (``asr.guard``);
    ``named``, ``resources``: the ids and resources a person named (``asr.sweep.ingest``
    tells them what became of each); ``skipped``: the events' messages that named none."""
    from asr import sweep
    from asr.guard import Scope

    context = get_current_context()
    settings, store, _ = own_run(context)
    aws = aws_context(settings)
    scope = Scope.for_aws(settings, aws)
    # A run cleared whole keeps the decision its first ingest recorded: a scheduled run's
    # params follow ASR_DRY_RUN as it is now, and a dry sweep cleared later must stay dry.
    dry_run = sweep.is_dry_run(store, context["params"])
    counts = sweep.ingest(
        settings, aws, registry(), store, plan, keep, scope, named, dry_run, resources, skipped
    )
    log.info(
        "Read %(findings)d findings: %(routed)d routed, %(rejected)d rejected, %(ignored)d ignored, "
        "%(excluded)d excluded; %(picks_not_found)d picks not found, %(messages_not_read)d messages not read",
        counts,
    )
    return counts


@contextmanager
def _asked_wrong() -> Iterator[None]:
    """A run that asks for something asr cannot do (its form, its run id) fails at once: a
    retry would ask the same. Anything else ingest meets (AWS, the organization) is retried."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except ValueError as exc:  # ConfigError, SelectionError, a run folder another run has
        raise AirflowFailException(str(exc)) from exc


# Ingest is retried like the fixes (it starts over each try): an asr_events run's messages
# are gone from the queue by then, so one failed read must not lose its findings.
INGEST = {"multiple_outputs": False, "retries": RETRIES, "retry_delay": RETRY_DELAY}


def _start_over() -> None:
    """``sweep.start_over`` in this run's folder, and the run's dry-run decision recorded, before
    anything an ingest does can fail: the report of a dry run whose ingest failed says dry."""
    from asr import sweep

    context = get_current_context()
    store = own_run(context)[1]
    sweep.start_over(store)
    sweep.keep_decision(store, sweep.is_dry_run(store, context["params"]))


@task(**INGEST)
def ingest() -> dict[str, int]:
    """Read the administrator's failed, active, unresolved findings and route them."""
    from asr.securityhub import actionable_plan

    _start_over()
    with _asked_wrong():
        settings, _, _ = run_context()
    wanted = _control_ids(get_current_context()["params"].get("controls") or [])
    return _ingest(actionable_plan(settings.query_accounts, settings.regions, wanted))


@task(**INGEST)
def ingest_selected() -> dict[str, int]:
    """The findings a person picked: by id, by a failed earlier run, or by control,
    account, region and resource. Each is re-read from Security Hub and must still be
    FAILED, ACTIVE and NEW or NOTIFIED."""
    from asr import selection
    from asr.securityhub import actionable_plan

    _start_over()
    with _asked_wrong():
        settings, _, _ = run_context()
        choice = selection.Selection.from_params(get_current_context()["params"], settings)
    plan = actionable_plan(
        settings.query_accounts,
        settings.regions,
        _control_ids(choice.controls),
        choice.finding_ids,
        choice.resource_filter,
    )
    return _ingest(plan, keep=choice.keep, named=choice.named, resources=choice.resources)


@task(**INGEST)
def ingest_events() -> dict[str, int]:
    """The findings named by the Security Hub events that triggered this run.

    Events are only hints: each finding is re-read and acted on only if it is still
    FAILED or WARNING, ACTIVE, NEW or NOTIFIED. A custom action ("Remediate with ASR") may act on
    any playbook; an "Imported" event only on playbooks with automatic remediation on.
    """
    from asr import claims, events
    from asr.securityhub import QueryPlan, actionable_plan

    _start_over()
    with _asked_wrong():
        settings, store, run_id = run_context()
    context = get_current_context()
    dag_id, conn_id = context["dag"].dag_id, settings.aws_conn_id
    given, left_out = events.run_events(
        context["triggering_asset_events"],
        context["inlet_events"],
        context["task"].inlets,
        store,
        context["dag_run"].start_date,
        dag_id,
    )
    held = claims.for_run(settings.audit_root, dag_id, run_id, conn_id, ttl=events.LEFT_OUT_CLAIM_TTL)
    asked = events.findings_asked(events.take(given, left_out, held))
    if held is not None:
        events.prune_message_claims(held, context["dag_run"].start_date)
    if not asked.finding_ids:
        log.info("The events named no findings")
        return _ingest(QueryPlan(), skipped=asked.skipped)
    plan = actionable_plan(settings.query_accounts, settings.regions, (), asked.finding_ids)
    return _ingest(plan, keep=asked.keep, named=asked.by_person, skipped=asked.skipped)


# A worker lost, or a store write refused, must not end the run: both steps are safe to run
# again (a plan made again rewrites the batches; nothing after it has run yet).
@task.branch(retries=RETRIES, retry_delay=RETRY_DELAY)
def plan(ingested: dict[str, int]) -> list[str]:
    """Batch the routed findings per playbook, account and region, and go on with the
    task groups of the playbooks that have work. The batch list goes to XCom as ``batches``."""
    from asr import sweep

    settings, store, _ = run_context()
    batches = sweep.plan(
        store, registry(), settings, fix_parallelism(), run_parallelism(), airflow_max_map_length()
    )
    get_current_context()["ti"].xcom_push(key=BATCHES, value=batches)
    log.info("%d findings in %d batches", ingested["routed"], len(batches))
    playbooks = registry()
    return sorted({branch_target(playbooks.playbooks[b["playbook"]]) for b in batches})


@task(retries=RETRIES, retry_delay=RETRY_DELAY)
def select_batches(batches: list[dict[str, Any]], playbook: str) -> list[dict[str, Any]]:
    return [b for b in batches if b["playbook"] == playbook]


@task(
    multiple_outputs=False,
    map_index_template="{{ task.op_kwargs['batch']['batch_id'] }}",
    max_active_tis_per_dagrun=MAX_ACTIVE_FIXES,
    pool=FIX_POOL,
    retries=RETRIES,
    retry_delay=RETRY_DELAY,
)
def fix(batch: dict[str, Any]) -> dict[str, int]:
    """Fix one batch: assume the member role, fix each resource, verify, record."""
    from asr import claims, sweep
    from asr.audit import AuditJournal
    from asr.guard import Scope

    settings, store, run_id = run_context()
    context = get_current_context()
    dry = sweep.is_dry_run(store, context["params"])
    journal = AuditJournal.for_task(settings.audit_root, settings.aws_conn_id, context, batch["batch_id"])
    with unless_rolled_back(journal):  # asked again in remediate, once the claims are held
        counts = sweep.remediate(
            batch,
            store,
            registry(),
            aws_context(settings, sweep.batch_plan(store, batch)["rate_shares"]),
            dry=dry,
            exclude_tag=settings.exclusion_tag,
            threads=settings.fix_threads,
            journal=journal,
            claims=claims.for_run(
                settings.audit_root,
                context["dag"].dag_id,
                run_id,
                settings.aws_conn_id,
                context["ti"].task_id,
                lapse_with_run=True,
            ),
            scope=Scope.of_settings(settings),
        )
    log.info("Batch %s: %s", batch["batch_id"], counts)
    return counts


@task(trigger_rule=TriggerRule.ALL_DONE, retries=RETRIES, retry_delay=RETRY_DELAY, multiple_outputs=False)
def write_back() -> dict[str, int]:
    """Mark findings RESOLVED or NOTIFIED in Security Hub, with what was done or why not."""
    from asr import sweep
    from asr.audit import AuditJournal

    settings, store, run_id = run_context()
    context = get_current_context()
    journal = AuditJournal.for_task(settings.audit_root, settings.aws_conn_id, context, "write_back")
    outcomes = sweep.load_outcomes(store)
    counts: dict[str, int] = {}
    if sweep.is_dry_run(store, context["params"]):
        log.info("Dry run: Security Hub is left as it is")
    else:
        with unless_rolled_back(journal):  # its outcomes would mark RESOLVED what the rollback marked
            counts = sweep.write_back(settings, aws_context(settings), store, run_id, outcomes)
        log.info(
            "Security Hub: %(updated)d updated, %(unchanged)d already so, %(left_alone)d closed, changed or "
            "not found meanwhile and left alone, %(failed)d not taken",
            counts,
        )
    not_run = len(sweep.without_outcome(store, outcomes))
    fail_if_unfinished(sweep.unfinished(store, not_run), "what there was is written back")
    return counts


@task(trigger_rule=TriggerRule.ALL_DONE)
def report() -> str:
    """Write the run report (JSON, Markdown, HTML), show it in the log, count it in Airflow's
    metrics, send the summary."""
    from asr import metrics, notify, report_view
    from asr import report as run_report

    context = get_current_context()
    settings, store, run_id = run_context(context)
    built, text = run_report.write(store, run_id)
    log.info("Run report:\n%s", text)
    metrics.count_run(store, context["dag"].dag_id, built)
    where = run_report.location(store)
    topic = settings.sns_topic_arn
    if topic:  # whether the summary went out, for whoever wonders why none came (report.json)
        told = run_report.worth_telling(built)
        page = notify.run_page(context["dag"].dag_id, run_id, report_view.TAB)
        sent = told and notify.send_run_summary(topic, settings.aws_conn_id, built, where, page)
        said = {"topic": topic, "sent": sent} | ({} if told else {"skipped": NOTHING_TO_TELL})
        store.write_json("report.json", built | {"summary": said})
    fail_if_unfinished(built["unfinished"], "the report shows what there was")
    return where


@contextmanager
def unless_rolled_back(journal: AuditJournal) -> Iterator[None]:
    """Fail for good (a retry would find the same) the fix or write-back of a run a rollback
    began to put back, before it starts and once it holds its claims
    (``AuditJournal.refuse_if_rolled_back``). A person approved undoing the run's changes,
    after whatever the run was approved for: its failed tasks cleared, they would fix the
    resources again and mark their findings RESOLVED over the rollback's mark. A new run reads
    Security Hub afresh and leaves what was rolled back alone, unless a person picks it by id."""
    from airflow.sdk.exceptions import AirflowFailException

    from asr.audit import RolledBack

    try:
        journal.refuse_if_rolled_back()
        yield
    except RolledBack as exc:
        raise AirflowFailException(str(exc)) from exc


def fail_if_unfinished(reason: str | None, done: str) -> None:
    """Fail (without retries: trying again changes nothing) when a step before did not
    finish (``reason``: ``sweep.unfinished``'s), so that clearing the run's failed tasks
    reruns this one too."""
    from airflow.sdk.exceptions import AirflowFailException

    if reason:
        raise AirflowFailException(
            f"{reason}; {done}. Clear the failed tasks ('failed tasks only' will do): "
            "what did not finish runs again, and then this step"
        )


# Tried again: a change it could not read fails it, before anyone is asked.
@task(retries=RETRIES, retry_delay=RETRY_DELAY)
def check_rollback() -> dict[str, int]:
    """Read what asr_rollback would put back, changing nothing: what its approval request
    lists, and all its revert may put back (a dry run's report)."""
    from asr import rollback

    with _asked_wrong():  # a run that cannot be found, has not ended, or named nothing it changed
        return rollback.check_chosen_run(get_current_context())


# Tried again like the fixes: a retry reports the reverts its earlier try made (and marks
# their findings in Security Hub), and tries again those that failed.
@task(retries=RETRIES, retry_delay=RETRY_DELAY)
def revert_run() -> dict[str, int]:
    """Revert what the check found to put back (asr_rollback), write the rollback report;
    fail if any revert failed, or Security Hub was not told of every one."""
    from asr import rollback

    with _asked_wrong():
        return rollback.revert_chosen_run(get_current_context())


@task(trigger_rule=TriggerRule.ONE_FAILED)
def watcher() -> None:
    """Fail the run when any task failed, even though write-back and report still ran."""
    raise RuntimeError("a task of this run failed; see the failed task's log")


@task(multiple_outputs=False, retries=RETRIES, retry_delay=RETRY_DELAY)
def prune_runs() -> dict[str, int]:
    """Delete the files of runs that ended and wrote nothing for ``ASR_KEEP_RUNS_DAYS``
    (``asr.housekeeping``); with the form's dry run, only list them."""
    import pendulum

    from asr.housekeeping import prune_runs as prune
    from asr.store import data_root

    context = get_current_context()
    with _asked_wrong():  # a mistyped setting: trying again reads the same
        settings = Settings.from_env()
    if not settings.keep_runs_days:
        log.info("ASR_KEEP_RUNS_DAYS is 0: runs' files are kept for ever")
        return {}
    dry = bool(context["params"].get("dry_run"))
    keep = timedelta(days=settings.keep_runs_days)
    done = prune(data_root(settings.data_dir, settings.aws_conn_id), keep, pendulum.now("UTC"), dry)
    verb = "would delete" if dry else "deleted"
    log.info(
        "Runs older than %d days under %s: %s the files of %d%s",
        settings.keep_runs_days,
        settings.data_dir,
        verb,
        len(done.deleted),
        "".join(f"\n  {name}" for name in done.deleted),
    )
    if done.not_ended:
        log.info("Left, not known to have ended: %s", ", ".join(done.not_ended))
    if done.failed:
        raise RuntimeError(f"could not delete the files of {', '.join(done.failed)}: the log says why")
    return done.counts()
