"""The remediation half every ASR DAG shares, and the form fields they share.

A DAG file picks how findings come in (a sweep, a person's selection, events) and
hands the ingest task here: plan (which also picks the playbooks with work) -> one task
group per playbook with work (a mapped fix task over its batches, which a disruptive
playbook's approval hands on once a person approves) -> write back -> report, with a
watcher that fails the run if any task failed. Write-back and report run whatever
happened before them, and fail too when it did not finish (``sweep.unfinished``), so that
clearing the run's failed tasks reruns them. A task process of one playbook's group builds
that group alone (``task_group_to_run``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Param, TaskGroup, get_parsing_context

from asr import tasks
from asr.approvals import ControlApproval
from asr.config import ACCOUNT_PATTERN, REGION_PATTERN, Settings
from asr.operators import AutomationFixOperator
from asr.playbooks import registry

# A run, as "<dag_id>/<run_id>" or its run id: Airflow's own run id characters (its default
# allowed_run_id_pattern), but not "." or ".." alone, which would name a folder of runs; no
# final newline (see config.ACCOUNT_PATTERN).
RUN = r"([a-z_]+/)?(?!\.{1,2}$)[A-Za-z0-9_.~:+-]+"
RUN_PATTERN = rf"^{RUN}(?!\n)$"


def task_group_to_run(dag_id: str) -> str | None:
    """The one remediate group a task process needs, or None when it needs the whole DAG.

    Airflow parses the DAG file again in every task process, and building all the
    playbooks' operators cost each task about 0.1 s of CPU (most of its parse): at 10,000
    findings, tens of tasks. A task of a remediate group needs only its group and the
    tasks upstream of it (ingest, plan); ``plan`` branches over every group and
    write-back, report and the watcher follow them all, so they get the whole DAG.
    """
    context = get_parsing_context()
    task_id = context.task_id or ""
    group = task_id.split(".", 1)[0]
    if context.dag_id != dag_id or group == task_id or not group.startswith(tasks.remediate_group("")):
        return None
    return group


def remediation(ingested: Any) -> None:
    planned = tasks.plan(ingested)
    batches = planned[tasks.BATCHES]
    only = task_group_to_run(planned.operator.dag_id)
    groups = []
    for playbook in registry():
        group_id = tasks.remediate_group(playbook.group_id)
        if only and only != group_id:
            continue
        with TaskGroup(group_id=group_id, tooltip=playbook.title) as group:
            if playbook.disruptive:
                # Once per playbook per run, before any batch: approved, it hands the fix the
                # playbook's batches; rejected, it skips the fix.
                selected = ControlApproval(
                    task_id="approve", playbook=playbook.control_id, plan_task_id=planned.operator.task_id
                ).output
            else:
                selected = tasks.select_batches(batches, playbook.control_id)
            if playbook.ssm_document:
                AutomationFixOperator.partial(
                    task_id="fix",
                    map_index_template="{{ task.batch['batch_id'] }}",
                    max_active_tis_per_dagrun=tasks.MAX_ACTIVE_FIXES,
                    pool=tasks.FIX_POOL,
                    # A retry re-reads every resource first: only those still open start again.
                    retries=tasks.RETRIES,
                    retry_delay=tasks.RETRY_DELAY,
                ).expand(batch=selected)
            else:
                tasks.fix.expand(batch=selected)
        planned >> group
        groups.append(group)
    if only:
        return
    written = tasks.write_back()
    reported = tasks.report()
    groups >> written >> reported
    [*groups, written, reported] >> tasks.watcher()


def string_list(title: str, description: str, choices: Sequence[str] = (), **item: Any) -> Param:
    """An optional form field of strings, one per line; ``item`` constrains each string.
    With ``choices`` the form offers those to pick from (a multi-select), and a trigger
    naming any other value is refused before the run is made."""
    if choices:
        item = {**item, "enum": list(choices)}
    pick = {"examples": list(choices)} if choices else {}
    items = {"type": "string", **item}
    return Param([], type=["array", "null"], items=items, title=title, description=description, **pick)


def run_reference(title: str, description: str, required: bool = False) -> Param:
    """A form field naming an earlier run: ``<dag_id>/<run_id>``, or its run id (an optional
    one may be left empty)."""
    text = {"maxLength": 300, "title": title, "description": description}
    if required:
        return Param(type="string", minLength=1, pattern=RUN_PATTERN, **text)
    return Param(None, type=["null", "string"], pattern=rf"^({RUN})?(?!\n)$", **text)


def finding_id_list(description: str) -> Param:
    return string_list("Finding ids", description, minLength=1, maxLength=512)


def playbook_choice(description: str) -> Param:
    return string_list("Controls", description, [p.control_id for p in registry()])


def common_params() -> dict[str, Param]:
    """Form fields every ASR DAG offers: where to act, how wide the batches, dry run.

    Where the allow-lists are known when the DAG is parsed (``ASR_ACCOUNTS``, unless the
    organization's members count too; ``ASR_REGIONS``), the form offers only their values
    (less the excluded accounts), and a trigger naming another is refused."""
    settings = Settings.from_env()
    accounts = () if settings.accounts_from_organization else settings.accounts
    return {
        "accounts": string_list(
            "Accounts",
            "Only these 12-digit account ids (empty: ASR_ACCOUNTS, or every account).",
            [a for a in accounts if a not in settings.exclude_accounts],
            pattern=ACCOUNT_PATTERN,
        ),
        "regions": string_list(
            "Regions",
            "Only resources in these regions (empty: ASR_REGIONS, or every region).",
            settings.regions,
            pattern=REGION_PATTERN,
        ),
        "batch_size": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=1000,
            title="Batch size",
            description="Findings per mapped fix task, at most 1,000 (empty: ASR_BATCH_SIZE, default 250).",
        ),
        "dry_run": Param(
            settings.dry_run,
            type="boolean",
            title="Dry run",
            description="Read everything and report what would change; change nothing, "
            "in the resources or in Security Hub (default: ASR_DRY_RUN).",
        ),
    }
