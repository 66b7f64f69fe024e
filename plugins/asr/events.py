"""What the Security Hub events that triggered an ``asr_events`` run ask for.

The triggerer hands each run the SQS messages it received (several events may fold
into one run, and a message may repeat). Each message body is an EventBridge event
from Security Hub. Events are hints: they only name findings, which the run re-reads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from asr.claims import Claims
from asr.config import REGION_RE, ConfigError, Settings, env_number
from asr.findings import RoutingRecord
from asr.playbooks import registry
from asr.store import remove_tree

log = logging.getLogger(__name__)
CUSTOM_ACTION = "Security Hub Findings - Custom Action"
IMPORTED = "Security Hub Findings - Imported"
# The run's window of left-out events: its end and those its first ingest found. In the run's
# folder: kept when ingest starts over.
EVENTS_UNTIL = "events-window.json"
LEFT_OUT_CLAIM_TTL = 7 * 24 * 3600.0
# How long the events queue keeps a message (``asr setup``; SQS's maximum): a message taken
# on its last day may still come back, so its claim must outlive the retention too.
QUEUE_RETENTION_SECONDS = 14 * 24 * 3600
# Where the claims on SQS messages go, a folder a day (``message_claim``), under the claims' root.
MESSAGE_CLAIMS = "messages"
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
SOURCE = "aws.securityhub"  # only Security Hub may send events with it (EventBridge refuses others)
SQS_LONGEST_WAIT = 20  # seconds: ReceiveMessage's WaitTimeSeconds is 0 to 20
# The region in an SQS queue URL: https://sqs.eu-west-1.amazonaws.com/..., its FIPS endpoint
# https://sqs-fips.us-east-1.amazonaws.com/..., or the legacy https://eu-west-1.queue.amazonaws.com/...
QUEUE_URL_REGION = re.compile(r"^https://(?:sqs(?:-fips)?\.([a-z0-9-]+)|([a-z0-9-]+)\.queue)\.amazonaws\.com")
# The oldest form names no region: it is us-east-1's.
OLDEST_QUEUE_URL = "https://queue.amazonaws.com/"


def queue_polling(environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """How the triggerer polls the events queue: (long-poll wait, pause after an empty
    poll), from ``ASR_EVENTS_WAIT_SECONDS`` (default 20) and ``ASR_EVENTS_POLL_SECONDS``
    (default 1). Without a long poll (wait 0) and without a pause, the triggerer would ask
    SQS nonstop and pay for every empty answer, so a short poll pauses a second at least."""
    env = os.environ if environ is None else environ
    wait = int(env_number("ASR_EVENTS_WAIT_SECONDS", SQS_LONGEST_WAIT, env))
    pause = int(env_number("ASR_EVENTS_POLL_SECONDS", 1, env))
    if wait > SQS_LONGEST_WAIT:
        raise ConfigError(
            f"ASR_EVENTS_WAIT_SECONDS={wait}: an SQS long poll waits {SQS_LONGEST_WAIT} s at most"
        )
    if wait == 0 and pause == 0:
        log.warning(
            "ASR_EVENTS_WAIT_SECONDS=0 and ASR_EVENTS_POLL_SECONDS=0 would poll SQS nonstop: pausing 1 s"
        )
        pause = 1
    return wait, pause


def queue_region(queue_url: str, environ: Mapping[str, str] | None = None) -> str:
    """The events queue's region: the one in its URL, else ``ASR_SECURITYHUB_REGION``, where
    ``asr setup`` makes it. SQS answers only in the queue's own region, and the connection's
    region may be another one, or none."""
    if queue_url.startswith(OLDEST_QUEUE_URL):
        return "us-east-1"
    match = QUEUE_URL_REGION.match(queue_url)
    region = next((part for part in match.groups() if part), "") if match else ""
    if REGION_RE.fullmatch(region):
        return region
    env = os.environ if environ is None else environ
    return env.get("ASR_SECURITYHUB_REGION") or Settings().securityhub_region


@dataclass
class FindingsAsked:
    by_person: set[str] = field(default_factory=set)
    by_import: set[str] = field(default_factory=set)
    # The messages no finding was taken from: {"message": its MessageId, "error": why}.
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def finding_ids(self) -> list[str]:
        return sorted(self.by_person | self.by_import)

    def keep(self, record: RoutingRecord) -> str | None:
        """A person's request may use any playbook; an import only an automatic one."""
        if record.finding_id in self.by_person:
            return None
        if not registry().playbooks[record.playbook].auto_remediate:
            return f"automatic remediation is off for {record.playbook}; use the custom action"
        return None


def run_events(
    triggering: Mapping[Any, Sequence[Any]],
    inlet_events: Any,
    inlets: Iterable[Any],
    store: Any,
    started: Any,
    dag_id: str,
) -> tuple[list[Any], list[Any]]:
    """The asset events of this run: those Airflow gave it, and those it left out of every run
    of ``dag_id`` (another DAG scheduled on the asset has runs of its own). Only events the
    events queue's trigger made count (``_batch``).

    Airflow 3.3 makes an asset-triggered run from the queue row of its first event, and
    gives it the events up to that one's time: one that arrives before the scheduler makes
    the run is in no run until another event comes (apache/airflow#70972), and its SQS
    message is gone. So a run also takes the asset's events from its earliest up to its
    first start (``window_end`` of ``started``) that no run has taken (``inlets``: the
    asset; ``inlet_events``: the task's accessor). When a later event does come, Airflow
    gives the next run every event since this run's first: ``take`` keeps it from those this
    run took. That run may be made before this run's ingest is tried again, so the first
    try keeps the left-out events it found beside the window's end (in ``store``), and a
    later try takes those, not the ones no run has by then.
    """
    given = [event for events in triggering.values() for event in events if _batch(event) is not None]
    until = window_end(store, started)
    if not given or until is None:
        return given, []
    window = store.read_json(EVENTS_UNTIL)
    if "left_out" in window:
        return given, [
            KeptEvent(datetime.fromisoformat(e["timestamp"]), e["extra"]) for e in window["left_out"]
        ]
    left_out = _left_out(inlet_events, inlets, min(event.timestamp for event in given), until, dag_id)
    if left_out is None:
        return given, []
    window["left_out"] = [{"timestamp": e.timestamp.isoformat(), "extra": e.extra} for e in left_out]
    store.write_json(EVENTS_UNTIL, window)  # before ``take`` claims any of them
    return given, left_out


@dataclass(frozen=True)
class KeptEvent:
    """A left-out event as ``EVENTS_UNTIL`` keeps it for the run's later tries."""

    timestamp: datetime
    extra: dict[str, Any]


def _left_out(
    inlet_events: Any, inlets: Iterable[Any], earliest: Any, until: Any, dag_id: str
) -> list[Any] | None:
    """The asset's events from ``earliest`` to ``until`` that no run of ``dag_id`` took; None
    when Airflow's API server answers the query with an internal error. Airflow 3.3.2 does
    while one of the events belongs to a queued run (apache/airflow#71360): the run goes on
    with its own events then, and the left-out ones go to the next run, which Airflow gives
    them. No answer at all (the API server down, a proxy's 502) fails the try, which is
    tried again."""
    from airflow.sdk.exceptions import AirflowRuntimeError

    try:
        window = [event for asset in inlets for event in inlet_events[asset].after(earliest).before(until)]
    except AirflowRuntimeError as exc:
        if (exc.error.detail or {}).get("status_code") != 500:
            raise
        log.warning("Airflow could not list the events up to this run's start; left to the next run: %s", exc)
        return None
    return [
        event
        for event in window
        if not any(run.dag_id == dag_id for run in event.created_dagruns) and _batch(event) is not None
    ]


def take(given: list[Any], left_out: list[Any], claims: Claims | None) -> list[Any]:
    """The events this run acts on, cut to the SQS messages no other run took: those Airflow
    gave it and the left-out ones, each message claimed by its MessageId (``message_claim``;
    ``claims``: the run's; without them, every one: a later run then reads the findings
    again, fixed by then or claimed by their fix). A message comes back to the queue, with
    the same MessageId, when its delete failed or the triggerer died between Airflow storing
    its event and deleting it: the run of that second event must not route its findings
    again and ask a person again to approve. Airflow also gives the next run every event
    since a run's first, left-out ones this run took included. A claim lasts a week: the
    next event, which brings a left-out one into another run, may come days later. A retry
    of this run takes its own claims again."""
    if claims is None:
        return given + left_out
    taken: list[Any] = []
    dropped = 0
    for event, why in [(e, "given") for e in given] + [(e, "left out") for e in left_out]:
        batch = _batch(event) or []
        kept = [
            m
            for m in batch
            if claims.acquire(
                message_claim(m, event.timestamp), {"event": why, "message": str(m.get("MessageId"))}
            )
            is None
        ]
        dropped += len(batch) - len(kept)
        if len(kept) == len(batch):
            taken.append(event)
        elif kept:
            payload = {**event.extra["payload"], "message_batch": kept}
            taken.append(KeptEvent(event.timestamp, {**event.extra, "payload": payload}))
    if dropped:
        log.info("%d messages were taken by another run: left to it", dropped)
    return taken


def message_claim(message: Mapping[str, Any], received: datetime) -> str:
    """A claim's name for an SQS message: from its MessageId alone, which stays the same when
    SQS delivers the message again (a new receive has a new receipt handle, and the message
    makes a new asset event at a new time), filed under the day SQS took it in
    (``SentTimestamp``, the same on every delivery; for a message stored without it, the day
    its event was ``received``), so that whole days of claims go when they lapse
    (``prune_message_claims``)."""
    key = json.dumps(["sqs-message", str(message.get("MessageId"))])
    try:
        day = datetime.fromtimestamp(int(message["SentTimestamp"]) / 1000, UTC).date()
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        day = received.astimezone(UTC).date()
    return f"{MESSAGE_CLAIMS}/{day.isoformat()}/message-{hashlib.sha256(key.encode()).hexdigest()[:40]}.json"


def prune_message_claims(claims: Claims, now: datetime) -> None:
    """Delete the days of message claims past the queue's retention, their ttl and a day: a
    claim per message would pile up for good (thousands a day when standards are turned on
    across accounts). A day is filed by when SQS took its messages in, and a message kept in
    the queue for most of its retention (a triggerer down, the DAG paused) is claimed only
    then, so a shorter wait would delete the claims of a backlog as it is taken. One listing
    of the days a run; a day that cannot be deleted now is left to the next run."""
    root = claims.root / MESSAGE_CLAIMS
    kept = timedelta(seconds=QUEUE_RETENTION_SECONDS + claims.ttl) + timedelta(days=1)
    oldest = (now - kept).astimezone(UTC).date()
    try:
        days = [
            path for path in root.iterdir() if DAY.fullmatch(path.name) and path.name < oldest.isoformat()
        ]
    except FileNotFoundError:
        return
    for path in days:
        try:
            remove_tree(path)
        except OSError as exc:
            log.warning("Could not delete the lapsed message claims of %s: %s", path.name, exc)


def window_end(store: Any, started: Any) -> Any:
    """The end of this run's window of left-out events: its start as its first ingest saw it.
    Clearing a run resets its start date to the time of the clear, and the window would then
    take every later run's events."""
    if store.path(EVENTS_UNTIL).exists():
        return datetime.fromisoformat(store.read_json(EVENTS_UNTIL)["until"])
    if started is not None:
        store.write_json(EVENTS_UNTIL, {"until": started.isoformat()})
    return started


def _messages(asset_events: Iterable[Any]) -> list[dict[str, Any]]:
    return [message for event in asset_events for message in _batch(event) or []]


def _batch(event: Any) -> list[dict[str, Any]] | None:
    """The SQS messages an asset event carries; None, with a warning naming the event, when
    the events queue's trigger did not make it or it holds no list of messages. Whoever may
    post asset events (``POST /api/v2/assets/events``) and any task with the asset as an
    outlet make events with any extra: taken as the queue's, they would have any finding
    fixed by any playbook, past the queue's policy. Airflow marks the first
    (``from_rest_api``) and names the second's task (``source_dag_id``)."""
    extra = getattr(event, "extra", None)
    extra = extra if isinstance(extra, dict) else {}
    payload = extra.get("payload")
    batch = payload.get("message_batch") if isinstance(payload, dict) else None
    if "from_rest_api" in extra:
        why = "posted through Airflow's REST API"
    elif getattr(event, "source_dag_id", None):
        why = f"made by task {event.source_task_id} of {event.source_dag_id} (run {event.source_run_id})"
    elif extra.get("from_trigger") is not True:
        why = "not made by the events queue's trigger"
    elif not isinstance(batch, list) or not all(isinstance(message, dict) for message in batch):
        why = "it holds no list of SQS messages"
    else:
        return batch
    log.warning("Skipping the asset event of %s: %s", getattr(event, "timestamp", None), why)
    return None


def security_hub_event(body: str) -> tuple[str, list[str]]:
    """An SQS message body's event type and finding ids; ValueError when it is not a
    Security Hub findings event (a body nested too deep for the JSON parser included)."""
    try:
        event = json.loads(body)
        kind, source = event["detail-type"], event.get("source")
        ids = [f["Id"] for f in event["detail"]["findings"]]
    except (KeyError, TypeError, RecursionError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}"[:300]) from None
    if source != SOURCE or not isinstance(kind, str) or not all(isinstance(i, str) and i for i in ids):
        raise ValueError(f"source {source!r:.100}, finding ids {ids!r:.200}")
    return kind, ids


def brief(message: Mapping[str, Any]) -> dict[str, Any]:
    """What a run needs of an SQS message: its id, and its event cut to the type and the
    finding ids. The triggerer stores each message in the asset event, and Airflow hands
    every task of the run all of them and shows them to whoever may read assets: whole
    findings (up to 256 KB a message) would cost every task's start and show findings'
    details beyond Security Hub's readers. A message that is no findings event keeps the
    reason in place of its body."""
    kept = {"MessageId": message.get("MessageId")}
    sent = (message.get("Attributes") or {}).get("SentTimestamp")
    if sent:  # the day its claim is filed under (``message_claim``): the same on every delivery
        kept["SentTimestamp"] = sent
    try:
        kind, ids = security_hub_event(message.get("Body") or "")
    except ValueError as exc:
        return {**kept, "NotAnEvent": str(exc)}
    event = {"detail-type": kind, "source": SOURCE, "detail": {"findings": [{"Id": i} for i in ids]}}
    return {**kept, "Body": json.dumps(event, separators=(",", ":"))}


def findings_asked(asset_events: Iterable[Any]) -> FindingsAsked:
    """The finding ids the events name, deduplicated, by who asked. A message that is not a
    Security Hub findings event is skipped with a warning, and listed in the run's report
    (``skipped``): one bad message must not stop the findings of the others (its neighbours'
    messages are deleted from the queue already), and nobody reads the triggerer's log."""
    asked = FindingsAsked()
    listed: set[str] = set()  # a message delivered again, in two of the run's events: once
    for message in _messages(asset_events):
        try:
            if "NotAnEvent" in message:
                raise ValueError(message["NotAnEvent"])
            kind, ids = security_hub_event(message.get("Body") or "")
        except ValueError as exc:
            why = f"not a Security Hub findings event: {exc}"
        else:
            if kind == CUSTOM_ACTION:
                asked.by_person.update(ids)
                continue
            if kind == IMPORTED:
                asked.by_import.update(ids)
                continue
            why = f"an event of type {kind[:100]!r}, which asr does not act on"
        message_id = str(message.get("MessageId"))
        log.warning("Skipping SQS message %s: %s", message_id, why)
        if message_id not in listed:
            listed.add(message_id)
            asked.skipped.append({"message": message_id, "error": why})
    return asked
