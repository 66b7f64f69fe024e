"""What a person picked in the asr_remediate form, checked before anything runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asr.config import Settings
from asr.findings import RoutingRecord
from asr.remediate import Status
from asr.store import RunStore

# The DAGs whose runs a rerun may name.
RUN_DAGS = ("asr_sweep", "asr_remediate", "asr_events")
# What a rerun of failures takes up again: not NOT_APPROVED, which a person decided.
RERUN = (Status.FAILED, Status.NOT_RUN)


class SelectionError(ValueError):
    """The form names nothing to act on, or a run that cannot be found."""


def failed_in_run(settings: Settings, run: str) -> list[str]:
    """The findings of an earlier run, named ``<dag_id>/<run_id>`` or by run id, that ended FAILED
    or NOT_RUN (their fix task failed all its tries, so they have no outcome of their own)."""
    from asr.sweep import every_outcome

    dag_id, _, run_id = run.rpartition("/")
    candidates = [dag_id] if dag_id else list(RUN_DAGS)
    stores = {
        candidate: store
        for candidate in candidates
        for store in [RunStore.for_run(settings.data_dir, candidate, run_id, settings.aws_conn_id)]
        if store.path("outcomes").exists() and store.belongs_to(candidate, run_id)
    }
    if len(stores) > 1:
        named = " or ".join(f"{candidate}/{run_id}" for candidate in stores)
        raise SelectionError(f"runs of several DAGs are called {run_id!r}: name one, {named}")
    if not stores:
        raise SelectionError(
            f"no outcomes of run {run!r} under {settings.data_dir} (dags: {', '.join(candidates)})"
        )
    [store] = stores.values()
    failed = [o.finding_id for o in every_outcome(store) if o.status in RERUN]
    if not failed:
        raise SelectionError(f"run {run} has no failed findings to rerun")
    return sorted(set(failed))


@dataclass(frozen=True)
class Selection:
    finding_ids: list[str]
    controls: list[str]
    resources: list[str]

    @classmethod
    def from_params(cls, params: dict[str, Any], settings: Settings) -> Selection:
        finding_ids = list(params.get("finding_ids") or [])
        if params.get("rerun_failures_of"):
            finding_ids += failed_in_run(settings, params["rerun_failures_of"])
        choice = cls(
            sorted(set(finding_ids)), list(params.get("controls") or []), list(params.get("resources") or [])
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
