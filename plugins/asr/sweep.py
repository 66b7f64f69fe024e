"""The steps of a sweep, each a plain function the DAG's tasks call.

ingest -> plan -> remediate (per batch) -> write back -> report. Each step reads what
the one before wrote to the run's store and returns only references and counts.
"""

from __future__ import annotations

import datetime
import itertools
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from asr import writeback
from asr.actions import get_action
from asr.aws import AwsContext
from asr.claims import Claims
from asr.config import Settings
from asr.findings import FindingError, NoPlaybook, RoutingRecord, of_security_hub, parse_finding
from asr.guard import Scope
from asr.pacing import parse_limits
from asr.playbooks import PlaybookRegistry
from asr.remediate import Journal, Outcome, Result, Status, run_batch
from asr.securityhub import QueryPlan, held_until, iter_findings, reverted_by
from asr.store import RunStore

log = logging.getLogger(__name__)

RECORDS = "records.jsonl"
REJECTED = "rejected.jsonl"
QUERIES = "queries.json"
SEEN = "seen.json"
INGESTED = "ingest.json"  # when ingest began to read; written last, so it also says ingest finished
UNSUPPORTED = "unsupported.json"  # findings of controls no playbook fixes, counted by control
WARNINGS = "warnings.json"  # what the settings let through that is likely a mistake (Settings.warnings)
DECIDED = "dry-run.json"  # whether the run is dry, as its first ingest decided; never removed
WRITTEN_BACK = "writeback.json"
# What the steps after ingest write: batches, outcomes, what write-back did. Not the SSM
# executions a fix task started and waits for (``automations/``): a run cleared whole while one
# runs must wait for it again, not start the document a second time on the same resource.
LATER_STEPS = ("batches", "outcomes", WRITTEN_BACK)
NOT_ACTED = "outcomes/not-acted.jsonl"
NOT_FOUND = (
    "not found as a finding asr may act on: no such id, or no longer FAILED or WARNING, ACTIVE "
    "and NEW or NOTIFIED, or outside ASR_ACCOUNTS and ASR_REGIONS or the run's other choices (controls, "
    "accounts, regions)"
)
# In rejected.jsonl: an id or a resource a person picked that no finding answers.
PICK = "pick_not_found"
# In rejected.jsonl: the MessageId of an SQS message an events run took no finding from.
MESSAGE = "sqs_message"
NO_SUCH_RESOURCE = (
    "chosen, but no FAILED or WARNING, ACTIVE, NEW or NOTIFIED finding of a control asr fixes names "
    "it within ASR_ACCOUNTS, ASR_REGIONS and the form's other choices: check its ARN or id"
)

# Decides whether to act on a routed finding: None to act, else why not (it is then IGNORED).
Keep = Callable[[RoutingRecord], "str | None"]


def chunks(rows: list[dict[str, Any]], size: int, regional: bool = True) -> list[list[dict[str, Any]]]:
    """Batches of at least ``size`` rows (but the last), sorted by account and region, that never
    split one resource's rows: two fix tasks of one run would change it at once. A batch grows
    past ``size`` by the rest of its last resource's findings, so the count stays within
    len(rows) / size. A global resource (an IAM user, a bucket) is one resource whatever
    region's finding names it."""

    def resource(row: dict[str, Any]) -> tuple[str, str, str]:
        return row["account_id"], row["region"] if regional else "", row["resource_id"]

    batches: list[list[dict[str, Any]]] = [[]]
    for _, same in itertools.groupby(sorted(rows, key=resource), key=resource):
        if len(batches[-1]) >= size:
            batches.append([])
        batches[-1] += same
    return batches if batches[0] else []


def ingest(
    settings: Settings,
    aws: AwsContext,
    playbooks: PlaybookRegistry,
    store: RunStore,
    plan: QueryPlan,
    keep: Keep | None = None,
    scope: Scope | None = None,
    named: Iterable[str] = (),
    dry_run: bool = False,
    resources: Iterable[str] = (),
    skipped: Iterable[dict[str, str]] = (),
) -> dict[str, int]:
    """Read the findings the plan selects and route each one.

    A finding outside the plan's residual narrowing is dropped as if Security Hub had not
    returned it: not counted, not reported, not seen. The queries are saved as they were
    sent, broader than that: write-back only looks for the run's own findings among what
    they match.
    Findings of another product under Security Hub's name are passed over, counted by
    ProductArn in the task log. Findings of controls no playbook fixes are counted by control
    (``UNSUPPORTED``): a sweep reads every failed control, and listing each would bury the
    rejections a person should act on. Other rejected findings are always reported; those a
    person ``named`` by id (a finding of a control no playbook fixes too) are also marked
    NOTIFIED with the reason, and a named id the queries did not find is reported as
    rejected, and so is each of the ``resources`` a person chose that no finding read names.
    Findings ``keep`` turns down are reported as IGNORED and left alone in Security Hub.
    ``scope`` rejects findings in accounts asr may not act in and excludes what the
    exclusions name (EXCLUDED, marked NOTIFIED), before any member role is assumed.
    The events' messages that named no finding (``skipped``) are reported with the rejections.
    """
    named = set(named)
    unmatched = set(resources)  # the chosen resources no finding read names yet
    client = aws.admin_client("securityhub", settings.securityhub_region)
    keep_decision(store, dry_run)
    start_over(store)
    warnings = settings.warnings()
    for warning in warnings:
        log.warning("Settings: %s", warning)
    if warnings:
        store.write_json(WARNINGS, warnings)
    began = datetime.datetime.now(datetime.UTC).isoformat()
    records: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    not_acted: list[Outcome] = []
    unsupported: Counter[str] = Counter()
    others: Counter[str] = Counter()
    seen: dict[str, dict[str, Any]] = {}
    for finding in iter_findings(client, plan.queries):
        if finding.get("Id") in seen or not plan.matches(finding):
            continue
        if not of_security_hub(finding) and finding.get("Id") not in named:
            # Another product's, under Security Hub's name (a custom integration may take it):
            # passed over as the query means to, counted by product, never listed by the Id
            # its importer chose, which the report and the summary would have carried.
            others[str(finding.get("ProductArn"))] += 1
            continue
        seen[finding.get("Id")] = writeback.seen_state(finding)
        try:
            record = parse_finding(finding, playbooks)
            if unmatched:
                unmatched -= {record.resource_id, record.resource_arn}
            verdict = scope.check(record) if scope else None
            if verdict and verdict[0] == Status.REJECTED:
                raise FindingError(record.finding_id, verdict[1])
        except NoPlaybook as exc:
            if exc.finding_id not in named:  # a person named it: told why, as any rejection
                unsupported[exc.control_id] += 1
                continue
            rejected.append({"finding_id": exc.finding_id, "error": exc.reason})
            not_acted.append(Outcome.not_acted(finding, Status.REJECTED, exc.reason))
            continue
        except FindingError as exc:
            rejected.append({"finding_id": exc.finding_id, "error": exc.reason})
            if exc.finding_id in named:
                not_acted.append(Outcome.not_acted(finding, Status.REJECTED, exc.reason))
            continue
        if verdict:
            not_acted.append(Outcome.of(record, Result(verdict[0], verdict[1])))
            continue
        reason = (keep(record) if keep else None) or (None if record.finding_id in named else held(finding))
        if reason:
            not_acted.append(Outcome.of(record, Result(Status.IGNORED, reason)))
        else:
            records.append(record.to_dict())
    # Picks no finding answers (``PICK``) and messages that named none: not findings, the
    # report counts them apart, and so do these counts.
    findings_rejected = len(rejected)
    picks = [{"finding_id": i, "error": NOT_FOUND, PICK: True} for i in sorted(named - seen.keys())]
    picks += [
        {"finding_id": "", "resource": r, "error": f"resource {r}: {NO_SUCH_RESOURCE}", PICK: True}
        for r in sorted(unmatched)
    ]
    messages = [{"finding_id": "", MESSAGE: m["message"], "error": m["error"]} for m in skipped]
    rejected += picks + messages
    store.write_json(QUERIES, list(plan.queries))
    store.write_json(SEEN, seen)
    store.write_lines(RECORDS, records)
    store.write_lines(REJECTED, rejected)
    store.write_json(UNSUPPORTED, dict(sorted(unsupported.items())))
    store.write_lines(NOT_ACTED, (o.to_dict() for o in not_acted))
    store.write_json(INGESTED, {"began": began, "dry_run": dry_run})
    if others:
        log.warning(
            "Passed over %d findings named Security Hub's but of other products, by ProductArn: %s",
            sum(others.values()),
            dict(others.most_common(10)),
        )
    return {
        "findings": len(seen),
        "routed": len(records),
        "rejected": findings_rejected,
        "unsupported": sum(unsupported.values()),
        "ignored": sum(o.status == Status.IGNORED for o in not_acted),
        "excluded": sum(o.status == Status.EXCLUDED for o in not_acted),
        "picks_not_found": len(picks),
        "messages_not_read": len(messages),
        "other_products": sum(others.values()),
    }


def held(finding: dict[str, Any]) -> str | None:
    """Why a sweep or an automatic event leaves a finding a person decided about, if it does.

    A rollback's mark holds whatever the workflow status: putting the resource back is
    what makes its control go from PASSED to FAILED, and Security Hub then makes the
    finding NEW again, which must not undo the rollback. A rejection's hold only while the
    finding stays NOTIFIED, as asr left it: NEW again means its control passed and then
    fails anew, a failure nobody decided about."""
    if rollback := reverted_by(finding):
        return f"a person rolled back asr's fix of it ({rollback}); pick it by id to fix it again"
    workflow = finding.get("Workflow") if isinstance(finding.get("Workflow"), dict) else {}
    if workflow.get("Status") != "NOTIFIED":
        return None
    if until := held_until(finding):
        return (
            f"a person rejected its fix; left alone until {until:%Y-%m-%d %H:%M} UTC (ASR_REJECTION_HOLD),"
            " or pick it by id to fix it now"
        )
    return None


def plan(
    store: RunStore,
    playbooks: PlaybookRegistry,
    settings: Settings,
    parallel: int = 1,
    running: int | None = None,
    max_map_length: int = 1024,
) -> list[dict[str, Any]]:
    """Pack each playbook's routed findings into batches of ``batch_size``, or larger when
    pacing or Airflow's ``max_map_length`` (which the caller reads) asks for fewer batches
    (below).

    Findings are sorted by account and region (and one resource's stay together), so a
    batch holds one account-region, or the tail of one and the head of the next: map
    counts grow with findings divided by the batch size, and small account-regions do not
    each cost a task. With pacing on,
    the API budget, not the task count, bounds the speed: a playbook then gets no more
    batches than ``parallel`` fix tasks can run at once, since a batch waiting for a slot
    would start with a fresh budget the ones before it have already spent. Each batch says
    what part of each of its account-regions' budgets it may spend (``rate_shares``: the
    budget there is divided by it; see ``_rate_shares``), given that at most ``running``
    fix tasks of the run (of any playbook; ``parallel`` when not given) run at once; that
    goes to the store beside the batch's records (``batch_plan``).
    """
    rows_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in store.read_lines(RECORDS):
        rows_of[row["playbook"]].append(row)
    paced = parse_limits(settings.rate_limits) is not None

    batches: list[tuple[str, list[dict[str, Any]]]] = []
    for playbook_id, rows in sorted(rows_of.items()):
        size = settings.batch_size
        if paced:
            size = max(size, -(-len(rows) // max(1, parallel)))
        size = max(size, -(-len(rows) // max_map_length))
        regional = playbooks.playbooks[playbook_id].regional
        batches += [(playbook_id, chunk) for chunk in chunks(rows, size, regional)]

    places = [_budget_places(playbooks, playbook_id, chunk) for playbook_id, chunk in batches]
    shares = _rate_shares(places, max(1, running or parallel))
    numbers: Counter[str] = Counter()
    refs: list[dict[str, Any]] = []
    for (playbook_id, chunk), share in zip(batches, shares, strict=True):
        first = chunk[0]
        batch_id = f"{playbook_id}-{first['account_id']}-{first['region']}-{numbers[playbook_id]:04d}"
        numbers[playbook_id] += 1
        store.write_lines(f"batches/{batch_id}.jsonl", chunk)
        targets = sorted({f"{r['account_id']}/{r['region']}" for r in chunk})
        store.write_json(f"batches/{batch_id}.json", {"targets": targets, "rate_shares": share})
        refs.append({"batch_id": batch_id, "playbook": playbook_id, "count": len(chunk)})
    # A plan made again (a person cleared it, and the fixes after it) may cut other batches,
    # or others under the same ids: the earlier ones' files must go, or the report and
    # write-back would count a finding twice, or one whose new batch did not finish as done.
    ids = {ref["batch_id"] for ref in refs}
    stale = [n for n in store.names("batches") if n.split("/", 1)[1].rsplit(".", 1)[0] not in ids]
    for name in stale + [n for n in store.names("outcomes") if n != NOT_ACTED]:
        store.remove(name)
    return refs


def batch_plan(store: RunStore, batch: dict[str, Any]) -> dict[str, Any]:
    """What ``plan`` decided for a batch beyond its reference: its account-regions
    (``targets``) and the part of each one's budget it may spend (``rate_shares``). Kept in
    the store, not in the reference XCom carries, since it names every account-region the
    batch touches: a paced plan of a large fleet has few batches, each over many."""
    path = f"batches/{batch['batch_id']}.json"
    if store.path(path).exists():
        return dict(store.read_json(path))
    # A reference from before this (a run under way at an upgrade) carried them itself.
    return {
        "targets": batch.get("targets", []),
        "rate_shares": batch.get("rate_shares") or batch.get("rate_share", 1),
    }


def _budget_places(
    playbooks: PlaybookRegistry, playbook_id: str, rows: list[dict[str, Any]]
) -> Counter[tuple[str, str, str]]:
    """The (account, region, service) budgets a batch spends, with how many resources each."""
    service = get_action(playbooks.playbooks[playbook_id].action).service
    return Counter((r["account_id"], r["region"], service) for r in rows)


def _rate_shares(places: list[Counter[tuple[str, str, str]]], running: int) -> list[dict[str, float]]:
    """What each batch divides each of its budgets by (``"account/region"`` -> divisor), so
    that the batches that can run at once never spend more than a budget holds, and each
    gets a part as large as its work there.

    In each budget a batch's part is its resources over theirs plus those of the largest
    ``running - 1`` other batches in it: at most ``running`` run at once, and however they
    are picked, their parts add up to no more than the whole. An even split would leave a
    big batch beside a small one pacing most of its work at half the rate while the small
    one's half lies idle. Each budget is divided on its own: a batch with one resource in a
    busy account-region and the rest in a quiet one takes a sliver of the first and all of
    the second.
    """
    users: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for place in places:
        for key, count in place.items():
            users[key].append(count)
    for counts in users.values():
        counts.sort(reverse=True)
    shares = []
    for place in places:
        divisors: dict[str, float] = {}
        for (account, region, service), count in place.items():
            others = list(users[(account, region, service)])
            others.remove(count)
            divisor = (count + sum(others[: max(1, running) - 1])) / count
            where = f"{account}/{region}"
            divisors[where] = max(divisors.get(where, 1.0), divisor)
        shares.append(divisors)
    return shares


def remediate(
    batch: dict[str, Any],
    store: RunStore,
    playbooks: PlaybookRegistry,
    aws: AwsContext,
    overrides: dict[str, Any] | None = None,
    dry: bool = False,
    exclude_tag: tuple[str, str | None] | None = None,
    journal: Journal | None = None,
    threads: int = 8,
    claims: Claims | None = None,
    scope: Scope | None = None,
) -> dict[str, int]:
    """Fix one batch and persist its outcomes before anything is written back. ``scope``: who
    may be acted on now (``Scope.of_settings``); ingest checked the findings, but the
    settings may have changed since."""
    records, held = batch_records(store, batch), []
    if scope:
        records, held = scope.hold_back(records)
    outcomes = run_batch(records, playbooks, aws, overrides, dry, exclude_tag, journal, threads, claims)
    return save_outcomes(store, batch, held + outcomes)


def batch_records(store: RunStore, batch: dict[str, Any]) -> list[RoutingRecord]:
    return [RoutingRecord.from_dict(r) for r in store.read_lines(f"batches/{batch['batch_id']}.jsonl")]


def save_outcomes(store: RunStore, batch: dict[str, Any], outcomes: list[Outcome]) -> dict[str, int]:
    """Persist a batch's outcomes (write-back and the report read them); return counts by status."""
    store.write_lines(f"outcomes/{batch['batch_id']}.jsonl", (o.to_dict() for o in outcomes))
    return dict(Counter(o.status for o in outcomes))


def load_outcomes(store: RunStore) -> list[Outcome]:
    return [Outcome(**row) for name in store.names("outcomes") for row in store.read_lines(name)]


NOT_RUN_MESSAGE = (
    "no outcome: the task that was to fix it did not finish (see its log in Airflow); "
    "the finding is as it was in Security Hub"
)


def without_outcome(store: RunStore, outcomes: list[Outcome]) -> list[RoutingRecord]:
    """The routed findings that have none of these outcomes: their fix task did not finish."""
    if not store.path(RECORDS).exists():
        return []
    done = {o.finding_id for o in outcomes}
    records = (RoutingRecord.from_dict(row) for row in store.read_lines(RECORDS))
    return [r for r in records if r.finding_id not in done]


def every_outcome(store: RunStore) -> list[Outcome]:
    """The outcomes the fix tasks saved, and NOT_RUN for each routed finding that got none (its
    task failed all its tries): the report and a rerun of failures leave no finding out."""
    outcomes = load_outcomes(store)
    result = Result(Status.NOT_RUN, NOT_RUN_MESSAGE)
    return outcomes + [Outcome.of(r, result) for r in without_outcome(store, outcomes)]


def start_over(store: RunStore) -> None:
    """Forget what an earlier pass of the run left (a run cleared whole): nothing of it may
    count. Each ingest does this first, before anything that can fail (the organization's
    accounts, the earlier run a rerun names): write-back and the report of a pass whose ingest
    failed must say so, not pass the earlier pass's files off as this one's. The dry-run
    decision stays (older runs kept it in ``INGESTED`` only)."""
    if not store.path(DECIDED).exists() and store.path(INGESTED).exists():
        decided = store.read_json(INGESTED).get("dry_run")
        if decided is not None:
            store.write_json(DECIDED, {"dry_run": decided})
    for stale in (INGESTED, RECORDS, REJECTED, UNSUPPORTED, WARNINGS, QUERIES, SEEN, *LATER_STEPS):
        store.remove(stale)


def keep_decision(store: RunStore, dry_run: bool) -> None:
    """Record whether the run is dry, the first time: kept however often it is cleared, or
    fails part way (``is_dry_run``)."""
    if not store.path(DECIDED).exists():
        store.write_json(DECIDED, {"dry_run": dry_run})


def is_dry_run(store: RunStore, params: Any) -> bool:
    """Whether the run is a dry run, as ingest recorded it. Each task takes its params from
    its own parse of the DAG file, whose default follows ``ASR_DRY_RUN``: changed mid-run,
    the approval step could skip asking (dry) and a fix then change things (not dry)."""
    for decided in (DECIDED, INGESTED):  # the first ingest's decision; older runs have the second
        if store.path(decided).exists():
            recorded = store.read_json(decided).get("dry_run")
            if recorded is not None:
                return bool(recorded)
    return bool(params.get("dry_run"))


def unfinished(store: RunStore, not_run: int, written_back: bool = False, unwritten: int = 0) -> str | None:
    """What of the run before this step did not finish, if anything: ingest; the fixes of
    ``not_run`` routed findings (they have no outcome); write-back, when ``written_back``
    (the report, unless the run is dry), of ``unwritten`` outcomes (``report.build``) too.

    Write-back and the report run whatever happened before them, and then fail on this:
    a failed step stays failed, so Airflow's "failed tasks only" clear reruns them with the
    fixes it reruns, and Security Hub and the report hear of those fixes.
    """
    if not store.path(INGESTED).exists():
        return "ingest did not finish"
    if not_run:
        return f"{not_run} routed findings have no outcome: their fix tasks (or a step before) did not finish"
    if written_back and not store.path(WRITTEN_BACK).exists():
        return "write-back did not finish"
    if written_back and unwritten:
        return f"{unwritten} outcomes are not written to Security Hub: write-back did not finish"
    return None


def write_back(
    settings: Settings, aws: AwsContext, store: RunStore, run_id: str, outcomes: list[Outcome]
) -> dict[str, int]:
    """The run's ``outcomes`` (``load_outcomes``) to Security Hub, under the rules of ``asr.writeback``.

    A second pass in the same run (a cleared write-back after rerun fixes) takes what the
    first one settled as done, unless what it would write changed since: it writes only
    the fixes rerun, and its counts stay the run's, not "left alone" for findings it resolved.
    A settled finding that has no outcome now (a cleared approval dropped it, and its fix
    did not finish) stays settled: Security Hub still shows what the earlier pass wrote.
    """
    client = aws.admin_client("securityhub", settings.securityhub_region)
    queries = store.read_json(QUERIES) if store.path(QUERIES).exists() else None
    seen = store.read_json(SEEN) if store.path(SEEN).exists() else None
    since = store.read_json(INGESTED)["began"] if store.path(INGESTED).exists() else None
    earlier = store.read_json(WRITTEN_BACK) if store.path(WRITTEN_BACK).exists() else {}
    settled = earlier.get("settled", {})
    carried = {o.finding_id for o in outcomes if settled.get(o.finding_id) == writeback.written(o, run_id)}
    carried |= settled.keys() - {o.finding_id for o in outcomes}
    rest = [o for o in outcomes if o.finding_id not in carried]
    result = writeback.write_back(client, rest, run_id, queries, seen, since)
    result.carry(earlier, carried)
    store.write_json(WRITTEN_BACK, result.to_dict())
    busy = result.refused_for_now
    if busy:  # Airflow tries the step again; its next pass writes only these
        codes = ", ".join(sorted({str(x.get("ErrorCode")) for x in busy}))
        raise WriteBackIncomplete(
            f"Security Hub refused {len(busy)} updates for now ({codes}), even after retries"
        )
    return result.counts()


class WriteBackIncomplete(RuntimeError):
    """Security Hub refused updates with errors a later try may mend: the step fails, and is tried again."""
