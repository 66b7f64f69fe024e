"""Benchmark: ``asr_sweep`` end to end through Airflow, against the floor and the naive loop.

Seeds a fleet of misconfigured resources and their findings in a private stand-in (a free
port, never a developer's running one), then measures on that same fleet, re-seeded before
each measurement:

- the sweep: ``asr_sweep`` run by Airflow's own scheduler with the LocalExecutor (real task
  processes, as in production; ``dag.test()`` would run tasks one at a time), timed per
  stage from the task instances Airflow records, with the AWS calls the stand-in served and
  the peak RSS of every process;
- the floor: only the write calls the fixes need, issued concurrently straight at the
  stand-in (what no orchestration can beat there);
- the naive loop: what a person would script, one finding after another: read, fix, mark
  that finding RESOLVED in Security Hub.

``--throttle`` instead runs the sweep with the stand-in's AWS-style throttling on, over one
account-region of security-group findings, and compares it with the EC2 write bucket's bound.
``--chaos`` runs it with throttling on, one account's role refused and the fix tasks killed
mid-batch, and checks that every finding still ends with a reason and nothing is done twice.

    .venv/bin/python bench/sweep.py --findings 10000 --accounts 10 --regions 2
    .venv/bin/python bench/sweep.py --throttle
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from harness import (
    PROJECT,
    SECURITYHUB_REGION,
    AirflowApi,
    admin_context,
    free_port,
    product_version,
    save,
    stand_in,
    when,
)

from asr import local
from asr.actions import Action
from asr.aws import AwsContext, Clients
from asr.findings import RoutingRecord, parse_finding
from asr.local import chaos, throttling
from asr.local import seed as seeding
from asr.local.airflow import LocalAirflow
from asr.local.request_log_ext import is_write
from asr.local.seed import FLEET_REGIONS, FleetSpec, account_ids, parse_mix
from asr.pacing import THROTTLING
from asr.playbooks import registry
from asr.report import table
from asr.securityhub import actionable_filters, iter_findings
from asr.store import RunStore

DAG_ID = "asr_sweep"
# Controls whose fix is one EC2 write per resource, so N findings need exactly N writes.
ONE_WRITE_CONTROLS = ("EC2.13", "EC2.18", "EC2.19")
THROTTLE_BURST, THROTTLE_RATE = 200, 5.0
STAGES = ("ingest", "plan", "remediate", "write-back", "report")
RAN = ("success", "failed")  # task instances that ran; skipped ones also get start and end dates


def fleet(args: argparse.Namespace, default_mix: str | None = None) -> FleetSpec:
    """The fleet the options ask for: ``--findings`` over ``--accounts`` x ``--regions``."""
    try:
        return seeding.fleet_spec(
            args.findings,
            account_ids(args.accounts),
            FLEET_REGIONS[: args.regions],
            parse_mix(args.controls or default_mix),
        )
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


def seed(port: int, spec: FleetSpec, rng_seed: int, threads: int) -> tuple[float, list[dict[str, Any]]]:
    """Empty the stand-in, create the fleet and import its findings; seconds taken and the findings."""
    started = time.monotonic()
    local.reset(port)
    aws = admin_context(port)
    findings = seeding.seed_spec(aws, spec, rng_seed, threads)
    seeding.import_findings(aws.admin_client("securityhub", SECURITYHUB_REGION), findings)
    local.served_requests(port, clear=True)
    return time.monotonic() - started, findings


# ------------------------------------------------------------------- floor and naive loop


@dataclass
class Fixer:
    """Routes findings and builds each playbook's action once, as a script would."""

    aws: AwsContext
    actions: dict[str, Action] = field(default_factory=dict)

    def target(self, finding: dict[str, Any]) -> tuple[RoutingRecord, Action, Clients]:
        record = parse_finding(finding, registry())
        key = f"{record.playbook}:{json.dumps(record.parameters, sort_keys=True)}"
        if key not in self.actions:
            self.actions[key] = registry().playbooks[record.playbook].build_action(record.parameters)
        return record, self.actions[key], Clients(self.aws, record.account_id, record.region)


def standin_cpu(port: int) -> float:
    """CPU seconds the stand-in process has used so far (it serves one request at a time per
    core it can get: moto holds the GIL, so its CPU is what bounds any run against it)."""
    pid = local.pid(port)
    if pid is None:
        raise RuntimeError(f"no stand-in started by this project on port {port}")
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def measure_floor(port: int, findings: list[dict[str, Any]], threads: int) -> dict[str, Any]:
    """Read and plan every resource untimed; then time only the apply calls, issued concurrently."""
    fixer = Fixer(admin_context(port))
    work: dict[str, list[Callable[[], None]]] = defaultdict(list)
    seen: set[tuple[str, str, str, str]] = set()
    for finding in findings:
        record, action, clients = fixer.target(finding)
        key = (record.playbook, record.account_id, record.region, record.resource_id)
        if key in seen:
            continue
        seen.add(key)
        state = action.read(clients, record.resource_id)
        plan = action.plan(state)
        if plan:
            work[f"{record.account_id}/{record.region}"].append(
                functools.partial(action.apply, clients, record.resource_id, state, plan)
            )
    # Interleave account-regions so concurrent calls spread over clients, as a fleet-wide fix would.
    queues = list(work.values())
    ordered = [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]
    local.served_requests(port, clear=True)
    errors: Counter[str] = Counter()

    def call(apply: Callable[[], None]) -> None:
        try:
            apply()
        except Exception as exc:
            errors[type(exc).__name__] += 1

    started, cpu = time.monotonic(), standin_cpu(port)
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(call, ordered))
    seconds, cpu = time.monotonic() - started, standin_cpu(port) - cpu
    calls = local.served_requests(port, clear=True)
    return {
        "seconds": seconds,
        "standin_cpu_seconds": cpu,
        "resources_fixed": len(ordered),
        "write_calls": sum(map(is_write, calls)),
        "calls": len(calls),
        "by_call": count_calls(calls),
        "threads": threads,
        "errors": dict(errors),
    }


def measure_naive(port: int) -> dict[str, Any]:
    """One finding after another, as a person would script it: list, read, fix, resolve."""
    aws = admin_context(port)
    fixer = Fixer(aws)
    securityhub = aws.admin_client("securityhub", SECURITYHUB_REGION)
    local.served_requests(port, clear=True)
    errors: Counter[str] = Counter()
    started = time.monotonic()
    findings = list(iter_findings(securityhub, actionable_filters()))
    for finding in findings:
        try:
            record, action, clients = fixer.target(finding)
            state = action.read(clients, record.resource_id)
            plan = action.plan(state)
            if plan:
                action.apply(clients, record.resource_id, state, plan)
            securityhub.batch_update_findings(
                FindingIdentifiers=[{"Id": finding["Id"], "ProductArn": finding["ProductArn"]}],
                Workflow={"Status": "RESOLVED"},
                Note={"Text": f"fixed by a script: {action.summary}", "UpdatedBy": "naive-loop"},
            )
        except Exception as exc:
            errors[type(exc).__name__] += 1
    seconds = time.monotonic() - started
    calls = local.served_requests(port, clear=True)
    return {
        "seconds": seconds,
        "findings": len(findings),
        "calls": len(calls),
        "write_calls": sum(map(is_write, calls)),
        "errors": dict(errors),
    }


# ---------------------------------------------------------------------------- processes


class ProcessSampler:
    """Peak RSS and CPU time of every process this bench started, by role, sampled on a thread.

    Roles come from the process tree: each top-level child (the stand-in, the scheduler,
    the dag-processor, the API server) is one role; below the scheduler, the LocalExecutor
    workers (which supervise tasks) and the task processes they fork are roles of their own.
    CPU counts from ``mark()``; a process that exits between samples loses at most one
    interval of it. On a 2-core machine the roles share two cores, so their CPU seconds
    show what the run's wall time is made of.
    """

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peaks: dict[str, int] = defaultdict(int)
        self.processes: dict[str, set[int]] = defaultdict(set)
        self._roles: dict[int, str] = {}
        self._cpu: dict[int, float] = {}
        self._cpu_at_mark: dict[int, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _role(self, proc: psutil.Process, me: int) -> str:
        if proc.pid in self._roles:
            return self._roles[proc.pid]
        chain = [proc]
        while chain[-1].ppid() != me:
            if chain[-1].ppid() <= 1:  # orphaned: no longer under this bench
                return "orphaned"
            chain.append(psutil.Process(chain[-1].ppid()))
        top = " ".join(chain[-1].cmdline())
        if "asr.local.server" in top:
            role = "stand-in"
        elif "scheduler" in top:
            role = ("scheduler", "executor workers", "task processes")[min(len(chain) - 1, 2)]
        else:
            role = next((r for r in ("dag-processor", "api-server") if r in top), "other")
        self._roles[proc.pid] = role
        return role

    def sample(self) -> None:
        me = os.getpid()
        for proc in psutil.Process(me).children(recursive=True):
            try:
                role = self._role(proc, me)
                rss = proc.memory_info().rss
                times = proc.cpu_times()
            except psutil.Error:  # exited between listing and reading
                continue
            with self._lock:
                self.peaks[role] = max(self.peaks[role], rss)
                self.processes[role].add(proc.pid)
                self._cpu[proc.pid] = times.user + times.system

    def mark(self) -> None:
        """Count CPU from now on."""
        self.sample()
        with self._lock:
            self._cpu_at_mark = dict(self._cpu)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> ProcessSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def result(self) -> dict[str, dict[str, Any]]:
        cpu: dict[str, float] = defaultdict(float)
        for pid, seconds in self._cpu.items():
            cpu[self._roles.get(pid, "other")] += seconds - self._cpu_at_mark.get(pid, 0.0)
        return {
            role: {
                "peak_rss_mib": round(self.peaks[role] / 2**20),
                "cpu_seconds": round(cpu[role], 1),
                "processes": len(self.processes[role]),
            }
            for role in sorted(self.peaks)
        }


# -------------------------------------------------------------------------------- sweep


def stage_of(task_id: str) -> str | None:
    """The stage a task belongs to; None for the glue between stages (``select_batches``, the watcher)."""
    if task_id == "ingest":
        return "ingest"
    if task_id == "plan":
        return "plan"
    if task_id.endswith(".fix"):
        return "remediate"
    return {"write_back": "write-back", "report": "report"}.get(task_id)


def stage_times(instances: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per stage: first start to last end, the task-seconds inside, and how many ran."""
    spans: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        ran = [ti for ti in instances if stage_of(ti["task_id"]) == stage and ti["state"] in RAN]
        if not ran:
            continue
        first = min(when(ti["start_date"]) for ti in ran)
        last = max(when(ti["end_date"]) for ti in ran)
        busy = sum((when(ti["end_date"]) - when(ti["start_date"])).total_seconds() for ti in ran)
        spans[stage] = {"seconds": (last - first).total_seconds(), "task_seconds": busy, "tasks": len(ran)}
    return spans


def count_calls(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """The stand-in's request log summed up: calls by kind, and the CPU it spent on them
    (``cpu_seconds`` of each logged request; see ``request_log_ext``)."""
    cpu: Counter[str] = Counter()
    for call in calls:
        cpu[f"{call['service']}:{call['action']}"] += call.get("cpu_seconds", 0.0)
    return {
        "total": len(calls),
        "writes": sum(map(is_write, calls)),
        "securityhub": sum(c["service"] == "securityhub" for c in calls),
        "writes_by_service": dict(Counter(c["service"] for c in calls if is_write(c))),
        "by_action": dict(Counter(f"{c['service']}:{c['action']}" for c in calls).most_common()),
        "standin_cpu_by_action": dict(cpu.most_common()),
        "standin_cpu_writes": sum(c.get("cpu_seconds", 0.0) for c in calls if is_write(c)),
        "standin_cpu_unmeasured_calls": sum("cpu_seconds" not in c for c in calls),
    }


def print_standin_cpu(label: str, calls: dict[str, Any], standin_cpu: float) -> None:
    """Where the stand-in's CPU went, by call: the requests' own CPU, the most costly first."""
    spent = calls["standin_cpu_by_action"]
    unmeasured = calls["standin_cpu_unmeasured_calls"]
    print(
        f"  stand-in CPU in moto for {label}'s calls: {sum(spent.values()):.1f} s of the {standin_cpu:.1f} s "
        f"it used, writes {calls['standin_cpu_writes']:.1f} s (the rest: connections and threads, "
        "parsing and writing HTTP, throttled or refused calls)"
        + (f"; {unmeasured} calls without a figure" if unmeasured else "")
    )
    print(
        "    "
        + ", ".join(
            f"{action} {seconds:.1f} s ({1000 * seconds / calls['by_action'][action]:.1f} ms a call)"
            for action, seconds in list(spent.items())[:8]
        )
    )


def outcomes(data_dir: Path, run_id: str) -> dict[str, Any]:
    """The run's outcomes as the product stored them: counts by status, and throttling failures."""
    store = RunStore.for_run(str(data_dir), DAG_ID, run_id)
    rows = [row for name in store.names("outcomes") for row in store.read_lines(name)]
    failed = [r for r in rows if r["status"] == "FAILED"]
    throttled = [
        r
        for r in failed
        if any(code in r["message"] for code in THROTTLING) or "ate exceeded" in r["message"]
    ]
    return {
        "by_status": dict(Counter(r["status"] for r in rows)),
        "failed_for_throttling": len(throttled),
        "failed_examples": sorted({r["message"] for r in failed})[:5],
    }


def measure_sweep(
    port: int,
    home: Path,
    args: argparse.Namespace,
    environment: dict[str, str],
    findings: int,
    during: Callable[[Path, int], Any] | None = None,
) -> dict[str, Any]:
    """Run asr_sweep through the scheduler with the LocalExecutor; read back what Airflow recorded.
    ``during`` runs beside the run, given the run's data folder and the scheduler's pid (the
    chaos mode kills the fix tasks under it)."""
    data_dir = home / "runs"
    env = {
        "AIRFLOW_CONN_AWS_DEFAULT": local.airflow_connection(port, SECURITYHUB_REGION),
        "ASR_LOCAL_PORT": str(port),
        "ASR_DATA_DIR": str(data_dir),
        "ASR_DRY_RUN": "false",
        "ASR_AUTO_APPROVE": "*",  # disruptive playbooks would otherwise wait for a person
        "AIRFLOW__CORE__PARALLELISM": str(args.parallelism),
        **({"ASR_FIX_THREADS": str(args.fix_threads)} if args.fix_threads else {}),
        **environment,
    }
    run_id = f"bench__{time.strftime('%Y%m%dT%H%M%S')}"
    conf = {"batch_size": args.batch_size} if args.batch_size else {}
    with LocalAirflow(home / "airflow", free_port(), env) as airflow:
        started = time.monotonic()
        airflow.prepare(DAG_ID)
        with ProcessSampler() as processes:
            since = datetime.datetime.now(datetime.UTC)
            airflow.start("api-server", "scheduler", "dag-processor")
            api = AirflowApi(airflow.api_url, DAG_ID)
            api.wait_for_parsing(since)
            startup = time.monotonic() - started
            local.served_requests(port, clear=True)
            triggered, cpu = time.monotonic(), standin_cpu(port)
            processes.mark()
            api.trigger(run_id, conf)
            meddler = (
                threading.Thread(target=during, args=(data_dir, airflow.pids["scheduler"]), daemon=True)
                if during
                else None
            )
            if meddler:
                meddler.start()
            run = api.wait(run_id, args.timeout)
            if meddler:
                meddler.join(timeout=5)
            observed, cpu = time.monotonic() - triggered, standin_cpu(port) - cpu
            calls = local.served_requests(port, clear=True)
            instances = api.task_instances(run_id)
    ran = [ti for ti in instances if ti["state"] in RAN]
    seconds = (when(run["end_date"]) - when(run["start_date"])).total_seconds()
    stages = stage_times(instances)
    return {
        "run_id": run_id,
        "state": run["state"],
        "seconds": seconds,
        "trigger_to_end_seconds": observed,
        "standin_cpu_seconds": cpu,
        "airflow_startup_seconds": startup,
        "findings_per_second": findings / seconds,
        "stages": stages,
        "between_stages_seconds": seconds - sum(s["seconds"] for s in stages.values()),
        "task_instances": {
            "ran": len(ran),
            "mapped_ran": sum(ti["map_index"] >= 0 for ti in ran),
            "all": len(instances),
            "by_state": dict(Counter(str(ti["state"]) for ti in instances)),
        },
        "calls": count_calls(calls),
        "served": calls,
        "calls_per_finding": len(calls) / findings,
        "securityhub_calls_per_100_findings": 100
        * sum(c["service"] == "securityhub" for c in calls)
        / findings,
        "processes": processes.result(),
        "outcomes": outcomes(data_dir, run_id),
        "parallelism": args.parallelism,
        "airflow_home": str(home / "airflow"),
    }


# ------------------------------------------------------------------------------- report


def print_sweep(sweep: dict[str, Any]) -> None:
    rows = [
        [
            stage,
            f"{s['seconds']:.1f}",
            f"{s['task_seconds']:.1f}",
            f"{s['task_seconds'] / s['seconds']:.1f}" if s["seconds"] else "",
            str(s["tasks"]),
        ]
        for stage, s in sweep["stages"].items()
    ]
    rows.append(["(gaps: scheduling, select_batches)", f"{sweep['between_stages_seconds']:.1f}", "", "", ""])
    rows.append(["whole run", f"{sweep['seconds']:.1f}", "", "", str(sweep["task_instances"]["ran"])])
    print(table(rows, ("stage", "wall s", "task s", "concurrency", "task instances run")))
    calls = sweep["calls"]
    print(
        f"run {sweep['run_id']}: {sweep['state']}; {sweep['findings_per_second']:.1f} findings/s; "
        f"trigger to end {sweep['trigger_to_end_seconds']:.1f} s (Airflow start-up before it, untimed: "
        f"{sweep['airflow_startup_seconds']:.0f} s)"
    )
    ti = sweep["task_instances"]
    print(
        f"task instances: {ti['ran']} ran ({ti['mapped_ran']} mapped), {ti['all']} in all, {ti['by_state']}"
    )
    print(
        f"AWS calls: {calls['total']} ({sweep['calls_per_finding']:.2f} per finding), "
        f"{calls['writes']} writes, Security Hub {calls['securityhub']} "
        f"({sweep['securityhub_calls_per_100_findings']:.2f} per 100 findings)"
    )
    print("  by action: " + ", ".join(f"{a} {n}" for a, n in list(calls["by_action"].items())[:12]))
    print_standin_cpu("the sweep", calls, sweep["standin_cpu_seconds"])
    print(f"outcomes: {sweep['outcomes']['by_status']}")
    for message in sweep["outcomes"]["failed_examples"]:
        print(f"  failed: {message[:160]}")
    rows = [
        [role, str(v["peak_rss_mib"]), f"{v['cpu_seconds']:.1f}", str(v["processes"])]
        for role, v in sweep["processes"].items()
    ]
    print(table(rows, ("process", "peak RSS MiB", "CPU s in the run", "processes seen")))


def measure_pair(
    args: argparse.Namespace, port: int, home: Path, spec: FleetSpec, label: str = ""
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The sweep through Airflow, then the floor, each on the fleet seeded afresh; each result
    carries its ``seeding_seconds``."""
    seconds, findings = seed(port, spec, args.seed, args.seed_threads)
    print(
        f"\nSeeded in {seconds:.1f} s (not counted). "
        f"Sweep through Airflow (parallelism {args.parallelism}){label} ..."
    )
    sweep = measure_sweep(port, home, args, {"ASR_RATE_LIMITS": "off"}, len(findings))
    sweep["seeding_seconds"] = seconds
    print_sweep(sweep)

    seconds, findings = seed(port, spec, args.seed, args.seed_threads)
    print(
        f"\nSeeded again in {seconds:.1f} s. "
        f"Floor: the fixes' write calls alone, {args.floor_threads} threads{label} ..."
    )
    floor = measure_floor(port, findings, args.floor_threads)
    floor["seeding_seconds"] = seconds
    print(
        f"floor: {floor['seconds']:.1f} s for {floor['resources_fixed']} resources, "
        f"{floor['write_calls']} write calls ({floor['write_calls'] / floor['seconds']:.0f}/s); "
        f"errors {floor['errors'] or 'none'}"
    )
    print_standin_cpu("the floor", floor["by_call"], floor["standin_cpu_seconds"])
    print(
        f"stand-in CPU: {sweep['standin_cpu_seconds']:.1f} s for the sweep, "
        f"{floor['standin_cpu_seconds']:.1f} s for the floor; the sweep's stand-in work alone "
        f"is {sweep['standin_cpu_seconds'] / floor['seconds']:.2f}x the floor's time"
    )
    return sweep, floor


def run_default(args: argparse.Namespace, port: int, home: Path, results: dict[str, Any]) -> None:
    spec = fleet(args)
    results["fleet"] = {
        "findings": spec.total,
        "accounts": list(spec.accounts),
        "regions": list(spec.regions),
        "regional": spec.regional,
        "account_regional": list(spec.account_regional),
        "account_wide": list(spec.account_wide),
    }
    print(f"Fleet: {spec.total} findings over {len(spec.accounts)} accounts x {len(spec.regions)} regions")
    print(
        f"  regional controls over the fleet: {spec.regional}, plus {spec.account_regional} per "
        f"account-region, {spec.account_wide} per account"
    )
    results["seeding_seconds"] = []
    pairs = []
    for number in range(1, args.pairs + 1):
        label = f" (pair {number} of {args.pairs})" if args.pairs > 1 else ""
        # Each pair's Airflow in its own folder: a run of an earlier pair is no part of this one.
        sweep, floor = measure_pair(args, port, home / f"pair-{number}" if number > 1 else home, spec, label)
        results["seeding_seconds"] += [sweep.pop("seeding_seconds"), floor.pop("seeding_seconds")]
        pairs.append(
            {"sweep": sweep, "floor": floor, "sweep_over_floor": sweep["seconds"] / floor["seconds"]}
        )
    # The median pair's figures (the middle ratio): a machine's uneven speed moves one pair's
    # sweep or floor alone, and the ratio of one pair with it.
    middle = sorted(pairs, key=lambda pair: pair["sweep_over_floor"])[(len(pairs) - 1) // 2]
    sweep, floor = middle["sweep"], middle["floor"]
    results["sweep"], results["floor"] = sweep, floor
    ratios = {"sweep_over_floor": middle["sweep_over_floor"]}
    ratios["sweep_standin_cpu_over_floor"] = sweep["standin_cpu_seconds"] / floor["seconds"]
    if args.pairs > 1:
        results["pairs"] = [
            {
                "sweep_seconds": p["sweep"]["seconds"],
                "floor_seconds": p["floor"]["seconds"],
                "ratio": p["sweep_over_floor"],
            }
            for p in pairs
        ]
        rows = [
            [
                str(n),
                f"{p['sweep']['seconds']:.1f}",
                f"{p['floor']['seconds']:.1f}",
                f"{p['sweep_over_floor']:.2f}x",
            ]
            for n, p in enumerate(pairs, 1)
        ]
        print("\n" + table(rows, ("pair", "sweep s", "floor s", "sweep/floor")))
        print(f"median pair: {pairs.index(middle) + 1} (its figures are the results')")
    if not args.skip_naive:
        seconds, _ = seed(port, spec, args.seed, args.seed_threads)
        results["seeding_seconds"].append(seconds)
        print(f"\nSeeded again in {seconds:.1f} s. Naive loop: one finding after another ...")
        naive = measure_naive(port)
        results["naive"] = naive
        print(
            f"naive loop: {naive['seconds']:.1f} s for {naive['findings']} findings, {naive['calls']} calls "
            f"({naive['calls'] / max(naive['findings'], 1):.2f} per finding); "
            f"errors {naive['errors'] or 'none'}"
        )
        ratios["naive_over_sweep"] = naive["seconds"] / sweep["seconds"]
    results["ratios"] = ratios
    print(
        "\nRatios: " + ", ".join(f"{name.replace('_', ' ')} {value:.2f}x" for name, value in ratios.items())
    )


def run_throttle(args: argparse.Namespace, port: int, home: Path, results: dict[str, Any]) -> None:
    spec = fleet(args, "EC2.19")
    controls = [*spec.regional, *spec.account_regional, *spec.account_wide]
    if len(controls) != 1 or controls[0] not in ONE_WRITE_CONTROLS:
        raise SystemExit(f"--throttle takes one control of {', '.join(ONE_WRITE_CONTROLS)} (one write each)")
    control = controls[0]
    seconds, findings = seed(port, spec, args.seed, args.seed_threads)
    writes_needed = len(findings)
    bound = max(0, writes_needed - THROTTLE_BURST) / THROTTLE_RATE
    results["fleet"] = {
        "findings": len(findings),
        "control": control,
        "account_regions": len(spec.jobs()),
    }
    results["seeding_seconds"] = [seconds]
    print(f"Seeded {len(findings)} {control} findings in {seconds:.1f} s (not counted)")
    throttling.enable(port, ec2_write=(THROTTLE_BURST, THROTTLE_RATE))
    try:
        print(
            f"Throttling on: EC2 writes bucket {THROTTLE_BURST}, {THROTTLE_RATE:g}/s per account-region; "
            f"bound for {writes_needed} writes: {bound:.0f} s. Sweep ..."
        )
        sweep = measure_sweep(port, home, args, {}, len(findings))
        stats = throttling.stats(port)
    finally:
        throttling.disable(port)
    remediate = sweep["stages"].get("remediate", {}).get("seconds", 0.0)
    ec2_writes = sweep["calls"]["writes_by_service"].get("ec2", 0)
    throttled: Counter[str] = Counter()
    for count in stats["counts"]:
        throttled[count["rule"]] += count["throttled"]
    results["sweep"] = sweep
    results["throttle"] = {
        "bound_seconds": bound,
        "sweep_over_bound": sweep["seconds"] / bound if bound else None,
        "ec2_writes": ec2_writes,
        "writes_per_second_during_remediate": ec2_writes / remediate if remediate else None,
        "writes_per_second_at_bound": writes_needed / bound if bound else None,
        "throttled_responses": stats["throttled"],
        "throttled_by_rule": {rule: n for rule, n in throttled.items() if n},
        "failed_for_throttling": sweep["outcomes"]["failed_for_throttling"],
    }
    print_sweep(sweep)
    t = results["throttle"]
    print(
        f"\nThrottled: sweep {sweep['seconds']:.1f} s vs bound {bound:.0f} s = {t['sweep_over_bound']:.2f}x; "
        f"{ec2_writes} EC2 writes over remediate's {remediate:.1f} s "
        f"= {t['writes_per_second_during_remediate']:.2f}/s (refill {THROTTLE_RATE:g}/s; "
        f"{t['writes_per_second_at_bound']:.2f}/s averaged at the bound, burst included)"
    )
    print(
        f"throttled responses: {t['throttled_responses']} {t['throttled_by_rule']}; "
        f"findings FAILED for throttling: {t['failed_for_throttling']}"
    )


def run_chaos(args: argparse.Namespace, port: int, home: Path, results: dict[str, Any]) -> None:
    """The chaos mode: security-group findings over several accounts with the stand-in's
    throttling on (AWS's defaults), the last account's member role refused, and the fix
    tasks' processes killed once the first changes are recorded. Then the chaos account:
    every finding RESOLVED or NOTIFIED with a reason, nothing changed twice, nothing
    missing from the report or the audit journal."""
    spec = fleet(args, "EC2.19")
    seconds, findings = seed(port, spec, args.seed, args.seed_threads)
    denied = spec.accounts[-1]
    results["fleet"] = {"findings": len(findings), "accounts": list(spec.accounts), "denied": denied}
    results["seeding_seconds"] = [seconds]
    print(
        f"Seeded {len(findings)} findings over {len(spec.accounts)} accounts in {seconds:.1f} s (not counted)"
    )
    print(
        f"Chaos: throttling on (AWS defaults), account {denied} denied, fix tasks killed mid-batch. Sweep ..."
    )
    local.deny_accounts([denied], port)
    throttling.enable(port)
    killed: list[int] = []
    try:
        sweep = measure_sweep(
            port,
            home,
            args,
            {"ASR_RETRY_DELAY_SECONDS": "5"},
            len(findings),
            during=lambda data_dir, scheduler: killed.extend(
                chaos.kill_fix_mid_batch(data_dir / "audit", scheduler)
            ),
        )
        stats = throttling.stats(port)
    finally:
        throttling.disable(port)
        local.deny_accounts([], port)
    verdict = chaos.judge(
        admin_context(port),
        home / "runs",
        DAG_ID,
        sweep["run_id"],
        [f["Id"] for f in findings],
        sweep["served"],
    )
    results["sweep"] = sweep
    results["chaos"] = {
        "killed_processes": len(killed),
        "throttled_responses": stats["throttled"],
        **verdict.to_dict(),
    }
    print_sweep(sweep)
    print(
        f"\nChaos: {len(killed)} task process(es) killed, {stats['throttled']} throttled responses; "
        f"findings now {verdict.workflow}; NOTIFIED without a reason {verdict.notified_without_reason}; "
        f"resources changed twice {verdict.changed_twice}; outcomes missing from the report "
        f"{verdict.missing_from_report}; remediated but missing from the audit "
        f"{verdict.remediated_missing_from_audit}; tries {verdict.tries_seen}"
    )
    print("The chaos account holds." if verdict.holds else "THE CHAOS ACCOUNT DOES NOT HOLD.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--findings", type=int, help="findings in the fleet (default 10000; --throttle: 1000)"
    )
    parser.add_argument("--accounts", type=int, help="accounts (default 10; --throttle: 1)")
    parser.add_argument(
        "--regions", type=int, help=f"regions, at most {len(FLEET_REGIONS)} (default 2; --throttle: 1)"
    )
    parser.add_argument("--controls", help="CONTROL[:WEIGHT],... (default: a mix weighted like real fleets)")
    parser.add_argument("--batch-size", type=int, help="the run's batch size (default: the product's)")
    parser.add_argument("--seed", type=int, default=1, help="order the findings are imported in")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--throttle", action="store_true", help="the throttled mode (see above)")
    mode.add_argument(
        "--chaos",
        action="store_true",
        help="throttling on, one account denied, fix tasks killed mid-batch (default 1000 over 3 accounts)",
    )
    parser.add_argument("--skip-naive", action="store_true", help="leave out the naive loop (the slow part)")
    parser.add_argument(
        "--pairs",
        type=int,
        default=1,
        help="default mode: measure the sweep and the floor this many times, one after the other, "
        "and report the pair of the median ratio (default 1)",
    )
    parser.add_argument("--parallelism", type=int, default=4, help="AIRFLOW__CORE__PARALLELISM (default 4)")
    parser.add_argument(
        "--fix-threads", type=int, help="ASR_FIX_THREADS for the fix tasks (default: the product's)"
    )
    parser.add_argument("--floor-threads", type=int, default=8, help="threads issuing the floor's writes")
    parser.add_argument("--seed-threads", type=int, default=4, help="threads seeding the stand-in")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the sweep")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    defaults = (1000, 1, 1) if args.throttle else (1000, 3, 1) if args.chaos else (10000, 10, 2)
    for name, default in zip(("findings", "accounts", "regions"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
    if not 1 <= args.regions <= len(FLEET_REGIONS):
        parser.error(f"--regions must be 1 to {len(FLEET_REGIONS)}")
    if args.accounts < 1:
        parser.error("--accounts must be at least 1")
    if args.pairs < 1 or (args.pairs > 1 and (args.throttle or args.chaos)):
        parser.error("--pairs must be at least 1, and more than 1 only in the default mode")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    local.use_test_credentials()
    started = time.monotonic()
    home = PROJECT / ".asr" / "bench" / time.strftime("%Y%m%dT%H%M%S")
    results: dict[str, Any] = {
        "mode": "throttle" if args.throttle else "chaos" if args.chaos else "default",
        "date": datetime.date.today().isoformat(),
        "commit": product_version(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "cpus": os.cpu_count(),
    }
    print(f"bench/sweep.py at {results['commit']} on {os.cpu_count()} CPUs; work under {home}")
    with stand_in() as port:
        runner = run_throttle if args.throttle else run_chaos if args.chaos else run_default
        runner(args, port, home, results)
    results["bench_seconds"] = time.monotonic() - started
    print(f"\nWhole bench: {results['bench_seconds']:.0f} s")
    results.get("sweep", {}).pop("served", None)  # every request: too long to keep
    save(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
