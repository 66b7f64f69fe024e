"""What a run did, as counters in Airflow's own metrics: StatsD, Datadog or OpenTelemetry,
as ``[metrics]`` in airflow.cfg sets them up; with none on, nothing is sent.

The run report says what one run did; a dashboard or an alert needs the same numbers over
time, from every run: findings remediated, failed or awaiting a person, by control, what
Security Hub took and refused, and what rollbacks put back. The report steps count them.
Each thing counted is one event of the run: a finding's outcome, an update Security Hub
took, one it refused, a change a rollback dealt with. A report made again (its failures
rerun, the task retried, the run cleared whole) sends only the events not sent before, as
``metrics.json`` in the run's folder records (a short digest each; for the findings of
controls no playbook fixes, counted but not named, a count per control). A finding that failed,
then was fixed by a rerun, counts once as each; so do its two updates in Security Hub.

Each counter goes out with tags (``asr.findings`` with ``dag_id``, ``control`` and
``status``), and, while ``[metrics] legacy_names_on`` holds, also under a name that spells
the tags out for backends without tags (``asr.findings.asr_sweep.EC2_13.REMEDIATED``), as
Airflow does with its own. Airflow adds its ``statsd_prefix``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from typing import Any

from asr.report import UNKNOWN, unlisted_rejections
from asr.store import RunStore
from asr.sweep import WRITTEN_BACK

FINDINGS = "asr.findings"
SECURITY_HUB = "asr.securityhub"
ROLLBACKS = "asr.rollbacks"
SENT = "metrics.json"
# The status of the findings of a control no playbook fixes (the report counts them by control).
UNSUPPORTED = "UNSUPPORTED"
# The n-th finding of a control no playbook fixes, an event counted but not named: recorded as
# the control's count sent, not a digest each (an organisation's backlog of them can be large).
_TALLIED = re.compile(r"^(unsupported\|.*)\|(\d+)$")
# What a tag value may hold: InfluxDB-style StatsD tags become part of the name, which
# Airflow checks against these characters and drops whole when one is outside them.
_NOT_IN_TAG = re.compile(r"[^A-Za-z0-9_.-]+")
log = logging.getLogger(__name__)

Tags = tuple[tuple[str, str], ...]


def tag(value: str) -> str:
    """A tag value as every backend takes it: ``(unknown)`` is ``unknown``."""
    return _NOT_IN_TAG.sub("_", value).strip("_") or "none"


def legacy_name(name: str, tags: Tags) -> str:
    """The name with its tags' values in it: ``EC2.13`` is ``EC2_13`` (a dot adds a level)."""
    return ".".join([name, *(value.replace(".", "_") for _, value in tags)])


def events(dag_id: str, report: dict[str, Any], writeback: dict[str, Any]) -> list[tuple[str, Tags, str]]:
    """Every event of the run, as (counter, tags, what makes it this one and no other): each
    finding's outcome, those rejected the report counts under ``UNKNOWN``, the findings of
    controls no playbook fixes (``UNSUPPORTED``, by control: what a new playbook would fix),
    each update Security Hub took (``writeback``: write-back's record, ``WRITTEN_BACK``), and
    each it refused for good."""

    def finding(control: str, status: str) -> Tags:
        return (("dag_id", tag(dag_id)), ("control", tag(control)), ("status", tag(status)))

    def security_hub(result: str) -> Tags:
        return (("dag_id", tag(dag_id)), ("result", result))

    outcomes = report["outcomes"]
    unchanged = set(writeback.get("unchanged", ()))
    return (
        [
            (FINDINGS, finding(o["playbook"] or o["control_id"], status), f"{o['finding_id']}|{status}")
            for o in outcomes
            for status in [o["status"]]
        ]
        + [
            (FINDINGS, finding(UNKNOWN, "REJECTED"), f"rejected|{json.dumps(r, sort_keys=True)}")
            for r in unlisted_rejections(report["rejected"], {o["finding_id"] for o in outcomes})
        ]
        + [
            # Counted by control, not named: the n-th of a control's is the same on a report made again.
            (FINDINGS, finding(control, UNSUPPORTED), f"unsupported|{control}|{n}")
            for control, count in (report.get("unsupported") or {}).items()
            for n in range(count)
        ]
        + [
            (SECURITY_HUB, security_hub("updated"), f"updated|{finding_id}|{text}")
            for finding_id, text in (writeback.get("settled") or {}).items()
            if finding_id not in unchanged
        ]
        + [
            (SECURITY_HUB, security_hub("not_taken"), f"refused|{json.dumps(x, sort_keys=True)}")
            for x in report["writeback_failures"]
        ]
    )


def rollback_events(dag_id: str, changes: list[dict[str, Any]]) -> list[tuple[str, Tags, str]]:
    """Every change a rollback run dealt with (``asr.rollback.Reversal``, as its report has
    them), by the fix's action and what became of it."""
    return [
        (
            ROLLBACKS,
            (("dag_id", tag(dag_id)), ("action", tag(c["action"])), ("status", tag(c["status"]))),
            f"{c['fix_id'] or json.dumps([c['account_id'], c['region'], c['resource_id'], c['action']])}"
            f"|{c['status']}",
        )
        for c in changes
    ]


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def count_run(store: RunStore, dag_id: str, report: dict[str, Any]) -> dict[str, int]:
    """Count a run's events from its report (``asr.report.build``) and its write-back."""
    writeback = store.read_json(WRITTEN_BACK) if store.path(WRITTEN_BACK).exists() else {}
    return send(store, events(dag_id, report, writeback))


def send(store: RunStore, found: list[tuple[str, Tags, str]]) -> dict[str, int]:
    """Count the events not sent before from the run's folder; return the counts sent, by
    legacy name. What is sent is recorded first: a failure between the two loses counts,
    never doubles them. Counting never fails what it counts: a store that refuses the record
    is logged, and nothing is sent."""
    from airflow.sdk.configuration import conf
    from airflow.sdk.observability.stats import Stats

    try:
        record = store.read_json(SENT) if store.path(SENT).exists() else {}
        sent, tallied = set(record.get("sent", ())), dict(record.get("tallied", {}))
        new: list[tuple[str, Tags]] = []
        counted = dict(tallied)
        for name, tags, key in found:
            if tally := _TALLIED.match(key):
                base, n = tally[1], int(tally[2])
                # (a digest: sent before counts were kept, so not twice after an upgrade)
                if n >= tallied.get(base, 0) and _digest(key) not in sent:
                    new.append((name, tags))
                    counted[base] = max(counted.get(base, 0), n + 1)
            elif (digest := _digest(key)) not in sent:
                new.append((name, tags))
                sent.add(digest)
        if not new:
            return {}
        store.write_json(SENT, {"sent": sorted(sent), "tallied": counted})
    except Exception:
        log.warning("Not counted in the metrics: %s could not be read or written", SENT, exc_info=True)
        return {}
    counts = Counter(new)
    legacy_too = conf.getboolean("metrics", "legacy_names_on", fallback=True)
    for (name, tags), count in counts.items():
        Stats.incr(name, count, tags=dict(tags))
        if legacy_too:
            Stats.incr(legacy_name(name, tags), count)
    added = {legacy_name(name, tags): count for (name, tags), count in counts.items()}
    log.info("Metrics sent: %s", ", ".join(f"{name} +{count}" for name, count in added.items()))
    return added
