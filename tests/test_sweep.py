"""The sweep: DAG integrity, batching limits, write-back, and a whole run through ``dag.test()``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from asr.aws import Clients
from asr.config import Settings
from asr.local import ADMIN_ACCOUNT, MEMBER_ACCOUNT
from asr.local.seed import finding, import_findings, seed_scenarios
from asr.playbooks import registry
from asr.remediate import retry_throttled
from asr.securityhub import update_findings
from asr.store import RunStore
from asr.sweep import NOT_ACTED, RECORDS, batch_plan, plan

DAGS = Path(__file__).resolve().parents[1] / "dags"


def dag_bag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_every_dag_imports_cleanly(airflow_db: None) -> None:
    bag = dag_bag()
    assert bag.import_errors == {}
    assert "asr_sweep" in bag.dag_ids
    for dag_id in bag.dag_ids:
        assert bag.dags[dag_id].doc_md, f"{dag_id} has no doc_md"


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_parsing_a_dag_file_imports_no_aws_sdk(airflow_db: None, dag_file: str) -> None:
    """DAG files are parsed often, in processes of their own: boto3 and the library's steps
    are imported by the tasks that use them, not by the DAG files."""
    probe = (
        "import sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(DAGS / dag_file)!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "heavy = ('boto3', 'botocore.client', 'asr.aws', 'asr.rollback')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


def test_sweep_has_one_task_group_per_playbook(airflow_db: None) -> None:
    dag = dag_bag().dags["asr_sweep"]
    for playbook in registry():
        assert f"remediate_{playbook.group_id}.fix" in dag.task_ids


def _parsed_to_run(monkeypatch: pytest.MonkeyPatch, dag_id: str, task_id: str) -> Any:
    """asr_sweep as a task process parses it: Airflow's task runner names the task it is
    about to run in these two variables (``get_parsing_context``)."""
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", dag_id)
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_TASK_ID", task_id)
    return dag_bag().dags["asr_sweep"]


def test_every_step_safe_to_run_again_is_retried(airflow_db: None) -> None:
    """A worker lost mid-step must not end the run: every task is tried again but the report
    (a second try could send its summary twice), the watcher (trying again changes nothing)
    and the approvals (a person's request, asked once)."""
    from asr.tasks import RETRIES

    assert RETRIES > 0
    sweep = dag_bag().dags["asr_sweep"]
    once = {t.task_id for t in sweep.tasks if t.retries != RETRIES and not t.task_id.endswith(".approve")}
    assert once == {"report", "watcher"}, once
    assert {"ingest", "plan", "write_back"} <= {t.task_id for t in sweep.tasks if t.retries == RETRIES}
    rollback = dag_bag().dags["asr_rollback"]
    assert {t.task_id for t in rollback.tasks if t.retries == RETRIES} == {"check_rollback", "revert_run"}


def test_a_task_of_a_remediate_group_parses_only_its_group(
    airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = dag_bag().dags["asr_sweep"]
    group = "remediate_EC2_19"  # disruptive: approve, fix
    dag = _parsed_to_run(monkeypatch, "asr_sweep", f"{group}.fix")
    own = {f"{group}.{task}" for task in ("approve", "fix")}
    assert set(dag.task_ids) == {"ingest", "plan", *own}
    assert len(full.task_ids) > 3 * len(dag.task_ids)
    for task_id in dag.task_ids:
        task, same = dag.get_task(task_id), full.get_task(task_id)
        assert task.upstream_task_ids == same.upstream_task_ids
        assert [t.task_id for t in task.iter_mapped_dependants()] == [
            t.task_id for t in same.iter_mapped_dependants()
        ]
    assert dag.params.dump() == full.params.dump()


@pytest.mark.parametrize(
    ("dag_id", "task_id"),
    [
        ("asr_sweep", "plan"),  # a task of no group: plan branches over every group
        ("asr_sweep", "remediate_EC2_19"),  # a group's name alone names no task in it
        ("asr_sweep", "report.fix"),  # a task of a group that is not a playbook's
        ("asr_remediate", "remediate_EC2_19.fix"),  # another DAG's task
    ],
)
def test_every_other_task_parses_the_whole_dag(
    airflow_db: None, monkeypatch: pytest.MonkeyPatch, dag_id: str, task_id: str
) -> None:
    full = dag_bag().dags["asr_sweep"]
    assert set(_parsed_to_run(monkeypatch, dag_id, task_id).task_ids) == set(full.task_ids)


def _records(n: int, playbook: str = "EC2.13", account: str = MEMBER_ACCOUNT) -> list[dict[str, str]]:
    return [
        {
            "finding_id": f"f-{account}-{i}",
            "product_arn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
            "control_id": playbook,
            "standard": "security-control",
            "standard_control_id": playbook,
            "playbook": playbook,
            "account_id": account,
            "region": "us-east-1",
            "resource_type": "AwsEc2SecurityGroup",
            "resource_arn": f"arn:aws:ec2:us-east-1:{account}:security-group/sg-{i:017x}",
            "resource_id": f"sg-{i:017x}",
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("where", ["disk", "s3"])
def test_ingest_of_a_cleared_run_starts_it_over(aws, tmp_path: Path, where: str) -> None:
    """Airflow reruns a cleared run in its own folder: an earlier pass's batches, outcomes
    and write-back must not count again."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from asr import sweep
    from asr.securityhub import actionable_plan

    if where == "s3":
        S3Hook(aws_conn_id="aws_default").create_bucket("asr-cleared-runs")
    data_dir = "s3://asr-cleared-runs/asr" if where == "s3" else str(tmp_path)
    store = RunStore.for_run(data_dir, "asr_sweep", "manual__1", "aws_default")
    for name in ("batches/EC2.13-0009.jsonl", "outcomes/EC2.13-0009.jsonl"):
        store.write_lines(name, [{"from": "the first pass"}])
    store.write_json("writeback.json", {"updated": 5})
    sweep.ingest(Settings.from_env(), aws, registry(), store, actionable_plan())
    assert (store.names("batches"), store.names("outcomes")) == ([], ["outcomes/not-acted.jsonl"])
    assert not store.path("writeback.json").exists()


def test_an_ingest_that_fails_leaves_nothing_of_an_earlier_pass(aws, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A cleared run whose ingest then fails: the report must not list the earlier pass's
    findings (as not run) nor its rejections as this pass's."""
    from asr import sweep
    from asr.securityhub import actionable_plan

    store = RunStore(tmp_path)
    earlier = (sweep.RECORDS, sweep.REJECTED, sweep.QUERIES, sweep.SEEN, sweep.INGESTED)
    for name in earlier:
        store.write_lines(name, [{"from": "the first pass"}])

    def unreachable(*_: Any) -> Any:
        raise ConnectionError("Security Hub did not answer")

    monkeypatch.setattr(sweep, "iter_findings", unreachable)
    with pytest.raises(ConnectionError):
        sweep.ingest(Settings.from_env(), aws, registry(), store, actionable_plan())
    assert [name for name in earlier if store.path(name).exists()] == []


def test_write_back_and_the_report_learn_what_before_them_did_not_finish(tmp_path: Path) -> None:
    """They run whatever happened before them, then fail on it: a "failed tasks only" clear
    must rerun them with what it reruns."""
    from asr import sweep
    from asr.findings import RoutingRecord
    from asr.remediate import Outcome, Result, Status

    store = RunStore(tmp_path)
    assert sweep.unfinished(store, 0) == "ingest did not finish"
    rows = _records(2)
    store.write_lines(RECORDS, rows)
    store.write_json(sweep.INGESTED, {"began": "2026-12-04T00:00:00+00:00"})
    done = Outcome.of(RoutingRecord.from_dict(rows[0]), Result(Status.REMEDIATED, "done"))
    store.write_lines("outcomes/a.jsonl", [done.to_dict()])
    [missing] = sweep.without_outcome(store, sweep.load_outcomes(store))
    assert missing.finding_id == rows[1]["finding_id"]
    assert [o.status for o in sweep.every_outcome(store)] == [Status.REMEDIATED, Status.NOT_RUN]
    assert sweep.unfinished(store, 1) == (
        "1 routed findings have no outcome: their fix tasks (or a step before) did not finish"
    )
    assert sweep.unfinished(store, 0) is None
    assert sweep.unfinished(store, 0, written_back=True) == "write-back did not finish"
    store.write_json(sweep.WRITTEN_BACK, {})
    assert sweep.unfinished(store, 0, written_back=True) is None


def test_findings_of_controls_no_playbook_fixes_are_counted_not_listed_as_rejected(
    aws, tmp_path: Path
) -> None:
    """A sweep reads every failed control, and most have no playbook: each was listed among
    the rejections, burying in the report and the notification the ones a person must act
    on. Named by id, such a finding is still rejected with the reason."""
    from asr import report, sweep
    from asr.local.seed import Seeded, seed_one
    from asr.securityhub import actionable_plan

    unfixable = [
        finding(
            Seeded(control, MEMBER_ACCOUNT, "us-east-1", "AwsAccount", f"AWS::::Account:{MEMBER_ACCOUNT}")
        )
        for control in ("EC2.9", "EC2.9", "IAM.5")
    ]
    unfixable[1]["Id"] += "-2"
    malformed = {**finding(seed_one(aws, "EC2.13", MEMBER_ACCOUNT, "us-east-1")), "AwsAccountId": "nope"}
    import_findings(aws.admin_client("securityhub", "us-east-1"), [*unfixable, malformed])
    store = RunStore(tmp_path)
    counts = sweep.ingest(Settings.from_env(), aws, registry(), store, actionable_plan())
    assert (counts["rejected"], counts["unsupported"]) == (1, 3)
    assert store.read_json(sweep.UNSUPPORTED) == {"EC2.9": 2, "IAM.5": 1}
    built = report.build(store, "r1")
    assert built["totals"] == {"REJECTED": 1}
    summary = report.summary(built)
    assert "3 findings of 2 controls no playbook fixes, left as they are" in summary
    assert "EC2.9" not in summary.split("Not acted on", 1)[1].split("3 findings")[0]

    named = sweep.ingest(
        Settings.from_env(),
        aws,
        registry(),
        RunStore(tmp_path / "b"),
        actionable_plan(),
        named=[unfixable[2]["Id"]],
    )
    assert (named["rejected"], named["unsupported"]) == (2, 2)

    # A pick no finding answers and an events message that named none are no findings.
    picked = sweep.ingest(
        Settings.from_env(),
        aws,
        registry(),
        RunStore(tmp_path / "c"),
        actionable_plan(),
        named=[unfixable[2]["Id"], "no-such-finding"],
        skipped=[{"message": "m-1", "error": "not a Security Hub findings event"}],
    )
    assert (picked["rejected"], picked["picks_not_found"], picked["messages_not_read"]) == (2, 1, 1)


def test_a_sweep_reads_only_security_hub_s_own_findings(aws, tmp_path: Path) -> None:
    """AWS Config's and partners' findings carry a compliance status too: no playbook is for
    them, and reading them cost GetFindings pages and filled the report with rejections.
    Security Hub's own are named "Security Hub CSPM" since its 2025 rename, and "Security
    Hub" from before: both are read. The name is not enough: a custom integration may take it."""
    from asr import sweep
    from asr.local.seed import seed_one
    from asr.securityhub import actionable_plan

    ours = finding(seed_one(aws, "EC2.13", MEMBER_ACCOUNT, "us-east-1"))
    assert ours["ProductName"] == "Security Hub CSPM"
    older = {
        **finding(seed_one(aws, "EC2.13", MEMBER_ACCOUNT, "us-east-1", 2)),
        "ProductName": "Security Hub",
    }
    theirs = {
        **finding(seed_one(aws, "EC2.13", MEMBER_ACCOUNT, "us-east-1", 1)),
        "Id": "arn:aws:config:us-east-1:222222222222:config-rule/restricted-ssh/finding/1",
        "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/config",
        "ProductName": "Config",
    }
    # A member account's own product may name itself Security Hub: not its product's ARN.
    forged = {
        **finding(seed_one(aws, "EC2.13", MEMBER_ACCOUNT, "us-east-1", 3)),
        "Id": "ACTION REQUIRED: approve at https://example.net/approve",
        "ProductArn": f"arn:aws:securityhub:us-east-1:{MEMBER_ACCOUNT}:product/{MEMBER_ACCOUNT}/default",
    }
    assert forged["ProductName"] == "Security Hub CSPM"
    import_findings(aws.admin_client("securityhub", "us-east-1"), [ours, older, theirs, forged])
    store = RunStore(tmp_path)
    counts = sweep.ingest(Settings.from_env(), aws, registry(), store, actionable_plan())
    assert (counts["findings"], counts["routed"], counts["rejected"]) == (2, 2, 0)
    assert counts["other_products"] == 1
    assert forged["Id"] not in str([store.read_lines(sweep.REJECTED), store.read_json(sweep.SEEN)])
    # Named by id, it is told why it is not fixed, as any pick asr cannot take.
    named = sweep.ingest(
        Settings.from_env(),
        aws,
        registry(),
        RunStore(tmp_path / "n"),
        actionable_plan(),
        named=[forged["Id"]],
    )
    assert (named["rejected"], named["other_products"]) == (1, 0)


def test_ingest_leaves_findings_a_person_decided_about_unless_named(aws, tmp_path: Path) -> None:
    """A rejection's hold until it ends, only while the finding stays NOTIFIED as asr left it
    (NEW again: its control passed, then failed anew); a rollback's mark for good, NEW again
    too (the rollback itself makes the control fail anew); a person's pick by id fixes them."""
    from asr import sweep
    from asr.local.seed import seed_one
    from asr.securityhub import actionable_plan

    raws = [finding(seed_one(aws, "EC2.13", MEMBER_ACCOUNT, "us-east-1", n)) for n in range(7)]
    securityhub = aws.admin_client("securityhub", "us-east-1")
    import_findings(securityhub, raws)
    held = {"asr:rejected-until": "2099-01-01T00:00:00+00:00"}
    marks = [
        (held, "NOTIFIED"),
        (held, "NOTIFIED"),  # named below
        ({"asr:rejected-until": "2020-01-01T00:00:00+00:00"}, "NOTIFIED"),  # the hold has ended
        ({"asr:reverted": "asr_rollback/r1"}, "NOTIFIED"),
        (held, "NEW"),  # reopened by Security Hub
        ({"asr:reverted": "asr_rollback/r2"}, "NEW"),  # reopened by Security Hub after the rollback
    ]
    for raw, (mark, workflow) in zip(raws, marks, strict=False):
        identifier = {"Id": raw["Id"], "ProductArn": raw["ProductArn"]}
        securityhub.batch_update_findings(
            FindingIdentifiers=[identifier], UserDefinedFields=mark, Workflow={"Status": workflow}
        )

    store = RunStore(tmp_path)
    named = [raws[1]["Id"]]
    counts = sweep.ingest(Settings.from_env(), aws, registry(), store, actionable_plan(), named=named)
    assert (counts["routed"], counts["ignored"]) == (4, 3)
    routed = {r["finding_id"] for r in store.read_lines(RECORDS)}
    assert routed == {raws[i]["Id"] for i in (1, 2, 4, 6)}
    ignored = {o["finding_id"]: o["message"] for o in store.read_lines("outcomes/not-acted.jsonl")}
    assert ignored[raws[0]["Id"]].startswith(
        "a person rejected its fix; left alone until 2099-01-01 00:00 UTC"
    )
    assert ignored[raws[3]["Id"]].startswith("a person rolled back asr's fix of it (asr_rollback/r1)")
    assert ignored[raws[5]["Id"]].startswith("a person rolled back asr's fix of it (asr_rollback/r2)")
    # Routed before it was set aside: the report names its resource and playbook.
    [one] = [o for o in store.read_lines("outcomes/not-acted.jsonl") if o["finding_id"] == raws[0]["Id"]]
    assert one["resource_id"].startswith("sg-") and one["playbook"] == "EC2.13"


def test_plan_packs_batches_per_playbook_in_account_region_order(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.write_lines(RECORDS, _records(120) + _records(10, account=ADMIN_ACCOUNT))
    settings = Settings(batch_size=50, data_dir=str(tmp_path), rate_limits="off")
    batches = plan(store, registry(), settings)
    assert [b["count"] for b in batches] == [50, 50, 30]
    assert [len(batch_plan(store, b)["targets"]) for b in batches] == [2, 1, 1]
    assert all(set(b) == {"batch_id", "playbook", "count"} for b in batches)  # what XCom carries
    assert sum(len(list(store.read_lines(f"batches/{b['batch_id']}.jsonl"))) for b in batches) == 130


def test_a_plan_made_again_leaves_no_files_of_its_earlier_batches(tmp_path: Path) -> None:
    """Cleared and run with another batch size, plan cuts other batches: an earlier batch's
    outcomes would count its findings twice in the report and write-back."""
    store = RunStore(tmp_path)
    store.write_lines(RECORDS, _records(120))
    store.write_lines(NOT_ACTED, [{"finding_id": "held"}])
    first = plan(store, registry(), Settings(batch_size=50, data_dir=str(tmp_path), rate_limits="off"))
    for batch in first:
        store.write_lines(f"outcomes/{batch['batch_id']}.jsonl", [{"finding_id": batch["batch_id"]}])
    again = plan(store, registry(), Settings(batch_size=100, data_dir=str(tmp_path), rate_limits="off"))
    # Batch ...-0000 is cut again, with other findings: its old outcomes must go too.
    assert {b["batch_id"] for b in first} & {b["batch_id"] for b in again}
    assert store.names("outcomes") == [NOT_ACTED]
    assert {n.split("/")[1].rsplit(".", 1)[0] for n in store.names("batches")} == {
        b["batch_id"] for b in again
    }


def test_plan_never_exceeds_the_map_limit(tmp_path: Path) -> None:
    """Unpaced, batch_size=1 would ask for 5000 mapped tasks; the map limit (1024) must grow
    the batches to ceil(5000 / 1024) = 5 rows instead. Pacing is off: with it on, the
    ``parallel`` clause alone makes one batch and the map-limit clause is never reached."""
    store = RunStore(tmp_path)
    store.write_lines(RECORDS, _records(5000))
    settings = Settings(batch_size=1, data_dir=str(tmp_path), rate_limits="off")
    batches = plan(store, registry(), settings)
    assert len(batches) == 1000 <= 1024
    assert {b["count"] for b in batches} == {5}
    assert sum(b["count"] for b in batches) == 5000


def test_throttled_calls_are_retried_then_succeed() -> None:
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ClientError({"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}}, "X")
        return "done"

    assert retry_throttled(flaky, sleep=lambda _: None) == "done"
    assert len(attempts) == 3


def test_access_denied_is_not_retried() -> None:
    attempts: list[int] = []

    def denied() -> None:
        attempts.append(1)
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "X")

    with pytest.raises(ClientError):
        retry_throttled(denied, sleep=lambda _: None)
    assert len(attempts) == 1


class FlakySecurityHub:
    """Refuses some updates once, as Security Hub may: "busy" with InternalFailure, "person"
    with ConcurrentUpdateError (another update of it was under way)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.refused: set[str] = set()

    def batch_update_findings(self, FindingIdentifiers: list[dict[str, str]], **_: Any) -> dict[str, Any]:
        self.calls.append([i["Id"] for i in FindingIdentifiers])
        codes = {"busy": "InternalFailure", "person": "ConcurrentUpdateError"}
        refused = [i for i in FindingIdentifiers if i["Id"] in codes and i["Id"] not in self.refused]
        self.refused |= {i["Id"] for i in refused}
        return {
            "ProcessedFindings": [i for i in FindingIdentifiers if i not in refused],
            "UnprocessedFindings": [
                {"FindingIdentifier": i, "ErrorCode": codes[i["Id"]], "ErrorMessage": "refused"}
                for i in refused
            ],
        }


def test_write_back_batches_by_100_and_retries_unprocessed() -> None:
    """Retried, but not one refused while another update was under way: sent again as it was,
    it might undo a person's; it is returned, for the caller to read it again."""
    client = FlakySecurityHub()
    updates = [({"Id": f"f{i}", "ProductArn": "p"}, "RESOLVED", "fixed") for i in range(150)]
    updates.append(({"Id": "busy", "ProductArn": "p"}, "RESOLVED", "fixed"))
    updates.append(({"Id": "person", "ProductArn": "p"}, "RESOLVED", "fixed"))
    done, failed = update_findings(client, updates, pause=0)
    assert done == 151
    assert [(f["FindingIdentifier"]["Id"], f["ErrorCode"]) for f in failed] == [
        ("person", "ConcurrentUpdateError")
    ]
    # The two calls run at once, so either may come first; the retry follows its own call.
    assert sorted(len(c) for c in client.calls) == [1, 52, 100]
    assert client.calls.index(["busy"]) > next(i for i, c in enumerate(client.calls) if len(c) == 52)
    with pytest.raises(ValueError, match="attempts must be at least 1"):
        update_findings(client, updates, attempts=0)


@pytest.mark.airflow
def test_sweep_fixes_the_seed_scenarios_through_airflow(aws, airflow_db: None) -> None:
    seeded = seed_scenarios(aws)
    securityhub = aws.admin_client("securityhub", "us-east-1")
    import_findings(securityhub, [finding(s) for s in seeded])

    dag = dag_bag().get_dag("asr_sweep")
    run = dag.test()
    assert run.state == "success"

    findings = securityhub.get_findings()["Findings"]
    assert len(findings) == 7
    assert {f["Workflow"]["Status"] for f in findings} == {"RESOLVED"}
    assert all(f["Note"]["Text"].startswith("ASR ") for f in findings)

    for playbook_id, account, resource_arn in (
        (registry().for_control(s.control_id).control_id, s.account_id, s.resource_id) for s in seeded
    ):
        playbook = registry().playbooks[playbook_id]
        action = playbook.build_action()
        clients = Clients(aws, account, "us-east-1")
        resource_id = playbook.extract_resource_id(resource_arn, account)
        assert not action.plan(action.read(clients, resource_id)), f"{playbook_id} {resource_id} not fixed"

    report = RunStore.for_run(Settings.from_env().data_dir, "asr_sweep", run.run_id).read_json("report.json")
    assert report["totals"] == {"REMEDIATED": 7}
    assert report["findings_updated"] == 7

    second = dag.test()
    assert second.state == "success"
    again = RunStore.for_run(Settings.from_env().data_dir, "asr_sweep", second.run_id).read_json(
        "report.json"
    )
    assert again["totals"] == {}, "resolved findings must not be swept again"


@pytest.mark.airflow
def test_a_sweep_cuts_no_more_batches_than_airflow_maps(
    aws, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow refuses to map a list longer than ``[core] max_map_length``: a deployment that
    lowers it gets fewer, larger batches, not a failed run."""
    from asr.local.seed import seed_one

    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "2")
    monkeypatch.setenv("ASR_BATCH_SIZE", "1")
    seeded = [seed_one(aws, "EC2.19", MEMBER_ACCOUNT, "us-east-1", n) for n in range(3)]
    import_findings(aws.admin_client("securityhub", "us-east-1"), [finding(s) for s in seeded])
    run = dag_bag().get_dag("asr_sweep").test()
    assert run.state == "success"
    fixes = [ti for ti in run.get_task_instances() if ti.task_id == "remediate_EC2_19.fix"]
    assert len(fixes) == 2 and {ti.state for ti in fixes} == {"success"}


def test_broken_playbook_is_a_dag_import_error(
    airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "playbooks"
    broken.mkdir()
    for source in Path(registry().playbooks["S3.1"].source).parent.glob("*.yaml"):
        (broken / source.name).write_text(source.read_text())
    (broken / "S3.1.yaml").write_text((broken / "S3.1.yaml").read_text().replace("severity:", "severty:"))
    errors = _import_errors_with_playbooks_in(broken, monkeypatch)
    assert sorted(Path(name).name for name in errors) == PLAYBOOK_DAG_FILES
    for message in errors.values():
        assert "S3.1.yaml" in message
        assert "'severty' was unexpected" in message


# Every DAG that routes findings; housekeeping reads no playbook, and goes on deleting old runs.
PLAYBOOK_DAG_FILES = sorted(p.name for p in DAGS.glob("*.py") if p.name != "asr_housekeeping.py")


def _import_errors_with_playbooks_in(folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The DAG files' import errors with ASR_PLAYBOOK_DIR naming ``folder``."""
    monkeypatch.setenv("ASR_PLAYBOOK_DIR", str(folder))
    registry.cache_clear()
    try:
        return dict(dag_bag().import_errors)
    finally:
        monkeypatch.delenv("ASR_PLAYBOOK_DIR")
        registry.cache_clear()


def test_a_playbook_folder_without_playbooks_is_a_dag_import_error_naming_the_setting(
    airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loaded as no playbooks, every finding read "no playbook fixes control ..." instead."""
    errors = _import_errors_with_playbooks_in(tmp_path, monkeypatch)
    assert sorted(Path(name).name for name in errors) == PLAYBOOK_DAG_FILES
    for message in errors.values():
        assert message.strip().splitlines()[-1] == (
            f"asr.config.ConfigError: ASR_PLAYBOOK_DIR {str(tmp_path)!r} holds no playbooks (*.yaml files)"
        )


def test_long_value_lists_become_several_queries_within_limits() -> None:
    from asr.securityhub import actionable_filters

    accounts = [f"{n:012d}" for n in range(45)]
    controls = [f"EC2.{n}" for n in range(25)]
    queries = actionable_filters(accounts=accounts, control_ids=controls)
    assert len(queries) == 3 * 2
    assert all(len(values) <= 20 for query in queries for values in query.values())
    pairs = {
        (a["Value"], c["Value"])
        for query in queries
        for a in query["AwsAccountId"]
        for c in query["ComplianceSecurityControlId"]
    }
    assert len(pairs) == 45 * 25
    assert actionable_filters()[0]["WorkflowStatus"] == [
        {"Value": "NEW", "Comparison": "EQUALS"},
        {"Value": "NOTIFIED", "Comparison": "EQUALS"},
    ]


def test_a_task_killed_while_saving_outcomes_leaves_the_earlier_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Write-back and the report read every outcomes file: a torn one would stop both."""
    import os

    store = RunStore(tmp_path)
    store.write_lines("outcomes/b-0000.jsonl", [{"finding_id": "a", "status": "REMEDIATED"}])

    def killed(*_: Any) -> None:
        raise KeyboardInterrupt("SIGKILL between the write and the rename")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        store.write_lines("outcomes/b-0000.jsonl", [{"finding_id": "b", "status": "FAILED"}] * 1000)
    assert list(store.read_lines("outcomes/b-0000.jsonl")) == [{"finding_id": "a", "status": "REMEDIATED"}]
    assert store.names("outcomes") == ["outcomes/b-0000.jsonl"]


def test_a_region_botocore_does_not_know_is_swept_as_named_and_the_report_says_so(
    aws, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A typo in ASR_REGIONS (us-eest-1) reads nothing there, and nothing else would say so;
    refused, a region newer than the installed botocore could not be swept at all."""
    from asr import report, sweep
    from asr.securityhub import actionable_plan

    store = RunStore(tmp_path)
    settings = Settings.from_env({**os.environ, "ASR_REGIONS": "us-eest-1,us-east-1"})
    assert settings.regions == ("us-eest-1", "us-east-1")  # kept as named, not dropped
    assert settings.warnings() == [
        "region 'us-eest-1' (ASR_REGIONS, or the run's regions) is no region botocore knows: no finding "
        "came from it. A typo? (A region newer than botocore is read as named.)"
    ]
    sweep.ingest(settings, aws, registry(), store, actionable_plan(regions=settings.regions))
    assert "us-eest-1" in caplog.text
    asked = {f["Value"] for query in store.read_json(sweep.QUERIES) for f in query.get("ResourceRegion", [])}
    assert asked == {"us-eest-1", "us-east-1"}  # Security Hub is asked for it
    built = report.build(store, "run")
    for view in (report.markdown(built), report.summary(built), report.html_page(built)):
        assert report.SETTINGS_TO_CHECK in view and "us-eest-1" in view and "us-east-1" not in view

    sweep.ingest(Settings.from_env(), aws, registry(), store, actionable_plan())  # the run cleared, mended
    assert report.build(store, "run")["warnings"] == []


@pytest.mark.airflow
def test_a_sweep_given_a_field_it_does_not_have_changes_nothing(aws, airflow_db: None) -> None:
    """``finding_ids`` sent to asr_sweep (the API, the CLI's --conf, the form's JSON box):
    Airflow keeps the key, nothing reads it, and the sweep would fix every finding."""
    from asr.local.seed import seed_one

    seeded = [seed_one(aws, "EC2.19", MEMBER_ACCOUNT, "us-east-1", n) for n in range(2)]
    securityhub = aws.admin_client("securityhub", "us-east-1")
    import_findings(securityhub, [finding(s) for s in seeded])

    run = dag_bag().get_dag("asr_sweep").test(run_conf={"finding_ids": [finding(seeded[0])["Id"]]})
    assert run.state == "failed"
    [ingest] = [ti for ti in run.get_task_instances() if ti.task_id == "ingest"]
    assert ingest.state == "failed"
    assert {f["Workflow"]["Status"] for f in securityhub.get_findings()["Findings"]} == {"NEW"}
    assert all(_group_open(aws, s) for s in seeded), "no resource was changed"


def _group_open(aws: Any, seeded: Any) -> bool:
    """Whether the seeded security group still lets the world in."""
    ec2 = Clients(aws, MEMBER_ACCOUNT, "us-east-1").ec2
    [group] = ec2.describe_security_groups(GroupIds=[seeded.resource_id.rsplit("/", 1)[-1]])["SecurityGroups"]
    return any(r.get("CidrIp") == "0.0.0.0/0" for p in group["IpPermissions"] for r in p.get("IpRanges", []))
