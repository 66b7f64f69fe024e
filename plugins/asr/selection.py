"""What a person picked in the asr_remediate form, checked before anything runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asr.config import Settings
from asr.findings import RoutingRecord
from asr.remediate import Status
from asr.store import ENDED, RUN_DAGS, RunStore, named_run, run_state

# What a rerun of failures takes up again: not NOT_APPROVED, which a person decided, unless
# nobody did (the approval request timed out: ``Outcome.undecided``).
RERUN = (Status.FAILED, Status.NOT_RUN)
HOW_TO_NAME = (
    f"name a run of {', '.join(RUN_DAGS[:-1])} or {RUN_DAGS[-1]} as <dag_id>/<run_id>, or by its run "
    "id alone, as Airflow shows it or as its folder reads"
)


class SelectionError(ValueError):
    """The form names nothing to act on, or a run that cannot be found."""


def failed_in_run(settings: Settings, run: str) -> list[str]:
    """The findings of an earlier run, named ``<dag_id>/<run_id>`` or by run id (either as its
    folder reads: ``RunStore.run_named``), that ended FAILED or NOT_RUN (their fix task failed
    all its tries, so they have no outcome of their own), or NOT_APPROVED with nobody deciding."""
    from asr.sweep import every_outcome

    def store_of(dag_id: str, run_id: str) -> RunStore:
        return RunStore.for_run(settings.data_dir, dag_id, run_id, settings.aws_conn_id)

    def found(dag_id: str, run_id: str) -> bool:
        store = store_of(dag_id, run_id)
        return bool(
            (store.path("outcomes").exists() or store.pruned())
            and store.belongs_to(dag_id, store.run_named(dag_id, run_id))
        )

    dag_id, named_id = named_run(run, found)
    if dag_id is None:
        raise SelectionError(f"no outcomes of run {run!r} under {settings.data_dir}: {HOW_TO_NAME}")
    store = store_of(dag_id, named_id)
    if pruned := store.pruned():
        raise SelectionError(
            f"the files of run {run} were deleted on {pruned[:10]}, ASR_KEEP_RUNS_DAYS after it ended: "
            "its failures are no longer known; pick its findings by id, or let a sweep find them"
        )
    if not run_finished(dag_id, store.run_named(dag_id, named_id), store):
        # Its findings still queued count as NOT_RUN.
        raise SelectionError(f"run {run} has not finished: rerun its failures once it has")
    outcomes = every_outcome(store)
    failed = {
        o.finding_id
        for o in outcomes
        if o.status in RERUN or (o.status == Status.NOT_APPROVED and o.undecided)
    }
    if not failed:
        refused = {o.finding_id for o in outcomes if o.status == Status.NOT_APPROVED}
        why = (
            f": {len(refused)} findings were not approved by a person; pick them by id (finding_ids) "
            "to fix them now"
            if refused
            else ""
        )
        raise SelectionError(f"run {run} has no failed findings to rerun{why}")
    return sorted(failed)


def typed(values: Any) -> list[str]:
    """A form's list as a person meant it: a line pasted with a trailing space or a Windows
    line end (\\r) named no finding, and was reported not found."""
    return sorted({value.strip() for value in values or [] if value.strip()})


def run_finished(dag_id: str, run_id: str, store: RunStore) -> bool:
    """Whether Airflow says the run has ended; outside a worker (``dag.test``, the CLI), whether
    its report was written. A report alone is not enough where Airflow can be asked: a run
    cleared since keeps its earlier report while its fixes run again."""
    state = run_state(dag_id, run_id)
    if state is None:
        return store.path("report.json").exists() or store.pruned() is not None
    return state in ENDED


@dataclass(frozen=True)
class Selection:
    finding_ids: list[str]
    controls: list[str]
    resources: list[str]
    # The ids a person typed: each passes a rejection's hold, and one not found is reported.
    # An earlier run's failures were not looked at one by one, so a hold still keeps them.
    named: list[str]

    @classmethod
    def from_params(cls, params: dict[str, Any], settings: Settings) -> Selection:
        named = typed(params.get("finding_ids"))
        rerun = (
            failed_in_run(settings, params["rerun_failures_of"]) if params.get("rerun_failures_of") else []
        )
        choice = cls(
            sorted({*named, *rerun}),
            typed(params.get("controls")),
            typed(params.get("resources")),
            named,
        )
        narrowed = choice.controls or choice.resources or params.get("accounts") or params.get("regions")
        if not choice.finding_ids and not narrowed:
            raise SelectionError(
                "pick findings: finding ids, a run whose failures to rerun, or at least one of "
                "controls, accounts, regions, resources"
            )
        return choice

    @property
    def resource_filter(self) -> list[str]:
        """The chosen resources as Security Hub names them (``Resources[].Id``), when they are
        all given so (ARNs, ``AWS::::Account:...``): the query then reads only their findings,
        not every finding in scope. A bare id (``sg-...``) is matched after reading."""
        if self.resources and all(r.startswith(("arn:", "AWS::")) for r in self.resources):
            return self.resources
        return []

    def keep(self, record: RoutingRecord) -> str | None:
        """Only the chosen resources, when resources were chosen."""
        if self.resources and not {record.resource_id, record.resource_arn} & set(self.resources):
            return "not one of the chosen resources"
        return None
