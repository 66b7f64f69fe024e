"""What a run did, as counters in Airflow's own metrics: StatsD, Datadog or OpenTelemetry,
as ``[metrics]`` in airflow.cfg sets them up; with none on, nothing is sent.

The run report says what one run did; a dashboard or an alert needs the same numbers over
time, from every run: findings remediated, failed or awaiting a person, by control, and
Security Hub updates not taken. The report task counts them, each once per run: a report
made again (its run's failures rerun, the task cleared) sends only what grew since it last
sent, as ``metrics.json`` in the run's folder records. A finding that failed, then was fixed
by a rerun, counts once in each.

Each counter goes out as Airflow sends its own: a name with tags (``asr.findings`` with
``dag_id``, ``control`` and ``status``), and, while ``[metrics] legacy_names_on`` holds, a
name that spells the tags out for backends without them
(``asr.findings.asr_sweep.EC2_13.REMEDIATED``). Airflow adds its ``statsd_prefix``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from asr.store import RunStore

FINDINGS = "asr.findings"
SECURITY_HUB = "asr.securityhub"
SENT = "metrics.json"
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_-]+")
log = logging.getLogger(__name__)


def counters(dag_id: str, report: dict[str, Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], int]:
    """The run's counters from its report (``asr.report.build``): findings by playbook and
    status, and Security Hub's updates taken and not taken. Zeros are left out."""
    found = {
        (FINDINGS, (("dag_id", dag_id), ("control", control), ("status", status))): count
        for control, row in report["by_control"].items()
        for status, count in row.items()
    }
    written = {
        (SECURITY_HUB, (("dag_id", dag_id), ("result", "updated"))): report["findings_updated"],
        (SECURITY_HUB, (("dag_id", dag_id), ("result", "not_taken"))): len(report["writeback_failures"]),
    }
    return {key: count for key, count in (found | written).items() if count > 0}


def legacy_name(name: str, tags: tuple[tuple[str, str], ...]) -> str:
    """The name with its tags' values in it, each cut to what a metric name may hold:
    ``EC2.13`` is ``EC2_13`` (a dot would add a level), ``(unknown)`` is ``unknown``."""
    return ".".join([name, *(_NOT_IN_NAME.sub("_", value).strip("_") or "none" for _, value in tags)])


def send(store: RunStore, dag_id: str, report: dict[str, Any]) -> dict[str, int]:
    """Send what grew since this run's last report; return it, by legacy name. What is sent is
    recorded first: a failure between the two loses a count rather than doubling it."""
    from airflow.sdk.configuration import conf
    from airflow.sdk.observability.stats import Stats

    sent: dict[str, int] = store.read_json(SENT) if store.path(SENT).exists() else {}
    named = {legacy_name(*key): (key, count) for key, count in counters(dag_id, report).items()}
    grown = {legacy: (key, count - sent.get(legacy, 0)) for legacy, (key, count) in named.items()}
    grown = {legacy: (key, more) for legacy, (key, more) in grown.items() if more > 0}
    if not grown:
        return {}
    store.write_json(SENT, sent | {legacy: named[legacy][1] for legacy in grown})
    legacy_too = conf.getboolean("metrics", "legacy_names_on", fallback=True)
    for legacy, ((name, tags), more) in grown.items():
        Stats.incr(name, more, tags=dict(tags))
        if legacy_too:
            Stats.incr(legacy, more)
    added = {legacy: more for legacy, (_, more) in grown.items()}
    log.info("Metrics sent: %s", ", ".join(f"{legacy} +{more}" for legacy, more in added.items()))
    return added
