"""Finding queries over long lists: the slices of one list, the rest checked after reading."""

from __future__ import annotations

import copy
import datetime
from pathlib import Path
from typing import Any

import pytest

from asr import securityhub, sweep, writeback
from asr.config import Settings
from asr.findings import RoutingRecord
from asr.guard import Scope
from asr.local import MEMBER_ACCOUNT
from asr.local.securityhub_ext import filter_findings
from asr.local.seed import Seeded, finding, import_findings
from asr.playbooks import registry
from asr.remediate import Outcome, Result, Status
from asr.securityhub import FILTER_VALUES, NARROWING, QueryPlan, actionable_filters, actionable_plan, equals
from asr.store import RunStore

REGION = "us-east-1"
OUTSIDER = "999999999999"
# An allow-list of more slices than the query budget, with MEMBER_ACCOUNT and without OUTSIDER.
ALLOWED = [MEMBER_ACCOUNT, *(f"{n:012d}" for n in range(300000000000, 300000000424))]


def ids(n: int) -> list[str]:
    return [f"finding-{i}" for i in range(n)]


def accounts(n: int) -> list[str]:
    return [f"{i:012d}" for i in range(n)]


def regions(n: int) -> list[str]:
    return [f"xx-test-{i}" for i in range(n)]


@pytest.mark.parametrize(
    ("lists", "leading", "queries", "checked"),
    [
        # The asr_remediate form: 400 ids while ASR_ACCOUNTS lists 300 accounts (was 20 x 15).
        ({"finding_ids": ids(400), "accounts": accounts(300)}, "finding_ids", 20, {"AwsAccountId"}),
        # A sweep of hundreds of accounts in more than 20 regions (was 15 x 2).
        ({"accounts": accounts(300), "regions": regions(25)}, "accounts", 15, {"ResourceRegion"}),
        (
            {
                "finding_ids": ids(25),
                "resource_ids": [f"arn:aws:s3:::b{i}" for i in range(30)],
                "control_ids": [f"EC2.{i}" for i in range(21)],
                "accounts": accounts(45),
                "regions": regions(2),  # fits the budget: sent
            },
            "finding_ids",
            8,  # 2 x 2 x 2: the accounts' 3 slices would take 24
            {"AwsAccountId"},
        ),
        # The most selective list is sent in full however short; one that would pass the budget is checked.
        ({"control_ids": ["EC2.13"], "accounts": accounts(450)}, "control_ids", 1, {"AwsAccountId"}),
    ],
)
def test_long_lists_of_several_kinds_cost_the_slices_of_the_most_selective_one(
    lists: dict[str, list[str]], leading: str, queries: int, checked: set[str]
) -> None:
    plan = actionable_plan(**lists)
    assert len(plan.queries) == queries
    assert all(len(values) <= FILTER_VALUES for query in plan.queries for values in query.values())
    assert dict(plan.residual) == {
        NARROWING[k][0]: frozenset(v) for k, v in lists.items() if NARROWING[k][0] in checked
    }
    sent = {NARROWING[k][0] for k in lists} - checked
    assert {name for query in plan.queries for name in query} - set(actionable_filters()[0]) == sent
    attribute = NARROWING[leading][0]
    values = [c["Value"] for query in plan.queries for c in query[attribute]]
    assert set(values) == set(lists[leading])
    # Each value in one slice, which every combination of the other lists sent repeats.
    assert len(values) == len(lists[leading]) * queries // -(-len(lists[leading]) // FILTER_VALUES)


@pytest.mark.parametrize(
    "lists",
    [
        {},
        {"accounts": accounts(10), "regions": regions(2)},  # the benchmark's sweep: one query
        {"accounts": accounts(45), "regions": regions(2)},
        {"control_ids": ["EC2.13"], "accounts": accounts(300)},  # 15 queries, as before
        {"control_ids": ["EC2.13", "S3.1"], "accounts": accounts(20), "regions": regions(20)},
        {"finding_ids": ids(45), "accounts": accounts(20), "resource_ids": ["arn:aws:s3:::b"]},
    ],
)
def test_within_the_budget_nothing_changes(lists: dict[str, list[str]]) -> None:
    plan = actionable_plan(**lists)
    assert list(plan.queries) == actionable_filters(**lists)
    assert plan.residual == ()
    assert plan.matches({})


def matched_by_security_hub(raw: dict[str, Any], name: str, values: list[str]) -> bool:
    """Whether the local stand-in matches this finding to an EQUALS filter on these values."""
    return bool(filter_findings([raw], {name: equals(values)}))


SG_FINDING = finding(Seeded("EC2.13", MEMBER_ACCOUNT, REGION, "AwsEc2SecurityGroup", "arn:aws:ec2:sg-1"))


def variants() -> list[dict[str, Any]]:
    """Findings in the shapes a residual check must read as GetFindings does."""
    second = {"Type": "AwsEc2Vpc", "Id": "arn:aws:ec2:vpc-1", "Region": "eu-west-1"}
    changes = [
        lambda f: None,
        lambda f: f.update(AwsAccountId=MEMBER_ACCOUNT + " "),
        lambda f: f.update(AwsAccountId=int(MEMBER_ACCOUNT)),
        lambda f: f.pop("AwsAccountId"),
        lambda f: f["Resources"].append(second),
        lambda f: f.update(Resources=[second]),
        lambda f: f["Resources"][0].update(Region="US-EAST-1", Id="ARN:AWS:EC2:SG-1"),
        lambda f: f["Resources"][0].pop("Region"),
        lambda f: f.update(Resources={"Id": "arn:aws:ec2:sg-1", "Region": REGION}),
        lambda f: f["Compliance"].update(SecurityControlId="ec2.13"),
        lambda f: f.update(Compliance="EC2.13"),
        lambda f: f.update(Id=f["Id"].upper()),
    ]
    found = []
    for change in changes:
        raw = copy.deepcopy(SG_FINDING)
        change(raw)
        found.append(raw)
    return found


def test_the_check_after_reading_reads_each_shape_of_finding() -> None:
    """Written out, since the stand-in's filters read values as the check does (values_at):
    a value of another type, a resource map instead of a list, or another case matches
    nothing; any resource of several may match."""
    region = QueryPlan((), (("ResourceRegion", frozenset({"eu-west-1"})),))
    account = QueryPlan((), (("AwsAccountId", frozenset({MEMBER_ACCOUNT})),))
    no, yes = False, True
    assert [region.matches(raw) for raw in variants()] == [no] * 4 + [yes, yes] + [no] * 6
    assert [account.matches(raw) for raw in variants()] == [yes, no, no, no] + [yes] * 8


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("AwsAccountId", [MEMBER_ACCOUNT, OUTSIDER]),
        ("ResourceRegion", [REGION]),
        ("ResourceRegion", ["eu-west-1"]),
        ("ComplianceSecurityControlId", ["EC2.13"]),
        ("ResourceId", ["arn:aws:ec2:sg-1"]),
        ("ResourceId", ["arn:aws:ec2:vpc-1"]),
        ("Id", [SG_FINDING["Id"], "finding-1"]),
    ],
)
def test_the_check_after_reading_matches_as_security_hub_does(name: str, values: list[str]) -> None:
    plan = QueryPlan((), ((name, frozenset(values)),))
    outcomes = [(plan.matches(raw), matched_by_security_hub(raw, name, values)) for raw in variants()]
    assert [mine for mine, _ in outcomes] == [theirs for _, theirs in outcomes]
    assert any(mine for mine, _ in outcomes) and not all(mine for mine, _ in outcomes)


def sg(account: str, n: int) -> dict[str, Any]:
    arn = f"arn:aws:ec2:{REGION}:{account}:security-group/sg-{n:017x}"
    return finding(Seeded("EC2.13", account, REGION, "AwsEc2SecurityGroup", arn))


def ingested(
    aws: Any, store: RunStore, settings: Settings, plan: QueryPlan, named: list[str]
) -> dict[str, Any]:
    counts = sweep.ingest(settings, aws, registry(), store, plan, scope=Scope.resolve(settings), named=named)
    return {
        "counts": counts,
        "records": list(store.read_lines(sweep.RECORDS)),
        "rejected": list(store.read_lines(sweep.REJECTED)),
        "not_acted": list(store.read_lines(sweep.NOT_ACTED)),
        "seen": store.read_json(sweep.SEEN),
    }


@pytest.mark.parametrize("picked", ["by-id", "by-control"])
def test_findings_outside_a_checked_list_are_neither_routed_reported_nor_written_back(
    aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, picked: str
) -> None:
    """More allowed accounts than the query budget takes beside more than 20 ids (or a
    control): the accounts are checked after reading. A finding in another account comes
    back from Security Hub, but the run goes on exactly as if it had not: asr may not act
    there (the scope would report it REJECTED, and mark a named one NOTIFIED), and it must
    not even hear of it."""
    ours = [sg(MEMBER_ACCOUNT, n) for n in range(12)]
    theirs = [sg(OUTSIDER, n) for n in range(12)]
    securityhub_client = aws.admin_client("securityhub", REGION)
    import_findings(securityhub_client, ours + theirs)
    settings = Settings(accounts=tuple(ALLOWED), data_dir=str(tmp_path))
    named = [f["Id"] for f in ours + theirs] if picked == "by-id" else []
    lists: dict[str, Any] = {"accounts": ALLOWED}
    lists |= {"finding_ids": named} if named else {"control_ids": ["EC2.13"]}

    plan = actionable_plan(**lists)
    assert [name for name, _ in plan.residual] == ["AwsAccountId"]
    assert len(plan.queries) == (2 if named else 1)  # sent in full: 44 queries by id, 22 by control
    run = ingested(aws, RunStore(tmp_path / "run"), settings, plan, named)
    exact_plan = QueryPlan(tuple(actionable_filters(**lists)))
    exact = ingested(aws, RunStore(tmp_path / "exact"), settings, exact_plan, named)

    assert run == exact
    assert {r["finding_id"] for r in run["records"]} == {f["Id"] for f in ours}
    assert run["not_acted"] == [] and run["seen"].keys() == {f["Id"] for f in ours}
    # A named id the queries select no finding for is said to be so, whatever the reason.
    assert {r["finding_id"] for r in run["rejected"]} == {f["Id"] for f in theirs if f["Id"] in named}
    assert run["counts"] == {
        "findings": 12,
        "routed": 12,
        "rejected": 0,
        "ignored": 0,
        "excluded": 0,
        "unsupported": 0,
        "picks_not_found": len(named) // 2,  # the other account's: not findings of the run
        "messages_not_read": 0,
        "other_products": 0,
    }

    # Write-back pages the run's own queries (broader than the accounts kept) and touches
    # only the run's findings.
    monkeypatch.setattr(writeback, "RECHECK_BY_ID_LIMIT", 0)
    store = RunStore(tmp_path / "run")
    failed = Result(Status.FAILED, "AccessDenied: no")
    outcomes = [Outcome.of(RoutingRecord.from_dict(row), failed) for row in run["records"]]
    counts = sweep.write_back(settings, aws, store, "run-1", outcomes)
    assert counts == {"updated": 12, "unchanged": 0, "left_alone": 0, "failed": 0}
    now = {f["Id"]: f["Workflow"]["Status"] for f in securityhub.iter_findings(securityhub_client, [{}])}
    assert {i: s for i, s in now.items() if s != "NEW"} == {f["Id"]: "NOTIFIED" for f in ours}


def test_write_back_looks_only_for_the_run_s_findings_in_a_broader_query(aws: Any) -> None:
    """A large run's cheap re-read: what its queries find closed outside the run (another
    account's finding, suppressed) is never taken for one of the run's."""
    securityhub_client = aws.admin_client("securityhub", REGION)
    ours, theirs = sg(MEMBER_ACCOUNT, 0), sg(OUTSIDER, 0)
    import_findings(securityhub_client, [ours, theirs])
    since = datetime.datetime.now(datetime.UTC).isoformat()
    plan = actionable_plan(accounts=ALLOWED, control_ids=["EC2.13"])
    securityhub_client.batch_update_findings(
        FindingIdentifiers=[{"Id": f["Id"], "ProductArn": f["ProductArn"]} for f in (ours, theirs)],
        Workflow={"Status": "SUPPRESSED"},
    )
    # 800 findings headed for RESOLVED: a re-read budget of 2 pages, the two queries of closed ones.
    planned = {ours["Id"]: "RESOLVED"} | {f"gone-{n}": "RESOLVED" for n in range(799)}
    seen = {finding_id: writeback.seen_state(ours) for finding_id in planned}
    calls = get_findings_calls(securityhub_client)
    now = writeback.current_state(securityhub_client, planned, list(plan.queries), seen, since)
    assert [call["WorkflowStatus"] for call in calls] == [
        equals(["RESOLVED", "SUPPRESSED"]),
        equals(["RESOLVED", "SUPPRESSED"]),
    ]
    assert now.keys() == planned.keys()
    assert now[ours["Id"]]["Workflow"]["Status"] == "SUPPRESSED"


def get_findings_calls(client: Any) -> list[dict[str, Any]]:
    """The filters of each GetFindings call the client sends from now on."""
    calls: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.securityhub.GetFindings", lambda params, **_: calls.append(params["Filters"])
    )
    return calls


def dag(dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(Path(__file__).resolve().parents[1] / "dags")).dags[dag_id]


@pytest.mark.airflow
@pytest.mark.parametrize(
    ("dag_id", "environ", "conf", "queries"),
    [
        # 425 accounts (22 slices) in 25 regions (2): 22 queries, not 44.
        ("asr_sweep", {"ASR_ACCOUNTS": ALLOWED, "ASR_REGIONS": [REGION, *regions(24)]}, {}, 22),
        # 25 finding ids (2 slices) in 425 accounts: 2 queries, not 44.
        ("asr_remediate", {"ASR_ACCOUNTS": ALLOWED}, {"finding_ids": ids(25)}, 2),
    ],
)
def test_a_run_over_long_lists_reads_the_slices_of_one(
    aws: Any,
    airflow_db: None,
    monkeypatch: pytest.MonkeyPatch,
    dag_id: str,
    environ: dict,
    conf: dict,
    queries: int,
) -> None:
    """A run through Airflow sends the plan's queries, not the product of its lists' slices."""
    for name, values in environ.items():
        monkeypatch.setenv(name, ",".join(values))
    import_findings(aws.admin_client("securityhub", REGION), [sg(MEMBER_ACCOUNT, 0), sg(OUTSIDER, 0)])
    sent: list[dict[str, Any]] = []
    pages = securityhub._pages

    def recorded(client: Any, filters: dict[str, Any]) -> Any:
        sent.append(filters)
        return pages(client, filters)

    monkeypatch.setattr(securityhub, "_pages", recorded)
    run = dag(dag_id).test(run_conf={**conf, "dry_run": True})
    assert run.state == "success"
    assert len(sent) == queries, sent
