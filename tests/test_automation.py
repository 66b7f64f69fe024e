"""Fixes through SSM Automation: started in the resource's account, awaited, verified."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import hooked

from asr import automation
from asr.aws import Clients
from asr.claims import Claims, claim_name
from asr.config import Settings
from asr.findings import parse_finding
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import finding, import_findings, seed_one
from asr.playbooks import PlaybookError, default_dir, load_playbooks, registry
from asr.remediate import Status
from asr.triggers import AutomationExecutionTrigger

DOCUMENT = "AWS-DisablePublicAccessForSecurityGroup"
SSM_REMEDIATION = f"""remediation:
  action: ec2.revoke-public-admin-ingress
  parameters:
    ports: [22, 3389]
  ssm_document:
    name: {DOCUMENT}
    parameters:
      GroupId: "{{resource_id}}"
      AutomationAssumeRole: "{{automation_role_arn}}"
    timeout_minutes: 1
    poll_seconds: 1
"""


@pytest.fixture
def ssm_playbooks(tmp_path: Path) -> Path:
    """The project's playbooks, with EC2.13 applied through the AWS-managed SSM document."""
    directory = tmp_path / "playbooks"
    shutil.copytree(default_dir(), directory)
    path = directory / "EC2.13.yaml"
    text = path.read_text()
    start, end = text.index("remediation:"), text.index("disruptive:")
    path.write_text(text[:start] + SSM_REMEDIATION + text[end:])
    return directory


@pytest.fixture
def ssm_registry(ssm_playbooks: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The process's playbook registry, which tasks and operators load, is the SSM one."""
    monkeypatch.setenv("ASR_PLAYBOOK_DIR", str(ssm_playbooks))
    registry.cache_clear()
    yield registry()
    monkeypatch.delenv("ASR_PLAYBOOK_DIR")
    registry.cache_clear()


def seeded_records(aws, playbooks):  # type: ignore[no-untyped-def]
    seeded = seed_one(aws, "EC2.13", MEMBER_ACCOUNT, "us-east-1")
    return seeded, [parse_finding(finding(seeded), playbooks)]


def group_rules(aws, seeded) -> list[str]:  # type: ignore[no-untyped-def]
    group_id = seeded.resource_id.rsplit("/", 1)[1]
    groups = Clients(aws, MEMBER_ACCOUNT, "us-east-1").ec2.describe_security_groups(GroupIds=[group_id])
    rules = groups["SecurityGroups"][0]["IpPermissions"]
    return sorted(r["CidrIp"] for rule in rules for r in rule["IpRanges"])


def wait_in_the_trigger(pending: list[dict], deadline_seconds: float) -> tuple[dict, float]:
    """Run the trigger the operator defers to, polling every 0.2 s: its event, and how long it took."""
    trigger = AutomationExecutionTrigger(
        executions=[{k: e[k] for k in ("execution_id", "account_id", "region")} for e in pending],
        aws_conn_id="aws_default",
        member_role_name="ASRMemberRole",
        poll_seconds=0.2,
        deadline=time.time() + deadline_seconds,
    )

    async def first_event():  # type: ignore[no-untyped-def]
        async for event in trigger.run():
            return event.payload

    started = time.monotonic()
    payload = asyncio.run(first_event())
    return payload, time.monotonic() - started


def test_document_parameters_are_validated_when_loading(ssm_playbooks: Path) -> None:
    path = ssm_playbooks / "EC2.13.yaml"
    path.write_text(path.read_text().replace("{resource_id}", "{resource_name}"))
    with pytest.raises(PlaybookError, match=r"ssm_document\.parameters\.GroupId: unknown field"):
        load_playbooks(ssm_playbooks)


def test_automation_fixes_and_is_verified(aws, ssm_playbooks: Path) -> None:
    playbooks = load_playbooks(ssm_playbooks)
    seeded, records = seeded_records(aws, playbooks)
    done, pending = automation.start(records, playbooks, aws, Settings())
    assert done == [] and len(pending) == 1

    execution = Clients(aws, MEMBER_ACCOUNT, "us-east-1").ssm.get_automation_execution(
        AutomationExecutionId=pending[0]["execution_id"]
    )["AutomationExecution"]
    assert execution["DocumentName"] == DOCUMENT
    assert execution["Parameters"] == {
        "GroupId": [records[0].resource_id],
        "AutomationAssumeRole": [f"arn:aws:iam::{MEMBER_ACCOUNT}:role/ASRAutomationRole"],
    }

    statuses = automation.poll(pending, aws)
    [outcome], _ = automation.finish(pending, statuses, playbooks, aws)
    assert outcome.status == Status.REMEDIATED, outcome.message
    assert DOCUMENT in outcome.message
    assert outcome.before == {
        "public_admin_ingress": [
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                "Ipv6Ranges": [],
            }
        ]
    }
    assert group_rules(aws, seeded) == ["10.0.0.0/8"]


def test_an_automation_s_change_slow_to_show_is_read_again(
    aws, ssm_playbooks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EC2 may show a revoked rule for a few seconds after the document revoked it: the read-back
    after a Success waits for it as a batch's own read-back does, not FAILED at the first look."""
    playbooks = load_playbooks(ssm_playbooks)
    _, records = seeded_records(aws, playbooks)
    action = playbooks.playbooks[records[0].playbook].build_action()
    stale = action.read(Clients(aws, MEMBER_ACCOUNT, "us-east-1"), records[0].resource_id)
    _, pending = automation.start(records, playbooks, aws, Settings())
    statuses = automation.poll(pending, aws)
    real_read, answers, slept = type(action).read, [stale, stale], []

    def read(self: Any, clients: Clients, resource_id: str) -> dict[str, Any]:
        return answers.pop(0) if answers else real_read(self, clients, resource_id)

    monkeypatch.setattr(type(action), "read", read)
    monkeypatch.setattr(time, "sleep", slept.append)
    [outcome], _ = automation.finish(pending, statuses, playbooks, aws)
    assert outcome.status == Status.REMEDIATED, outcome.message
    assert slept == [1.0, 2.0] and not answers


def test_executions_verified_one_after_another_share_one_propagation_wait(
    aws, ssm_playbooks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All the executions had ended before their resources are read back: the time one waits
    for EC2 to show its change counts for the next, so 50 of them wait seconds, not minutes."""
    playbooks = load_playbooks(ssm_playbooks)
    seeded = [seed_one(aws, "EC2.13", MEMBER_ACCOUNT, "us-east-1", n) for n in range(2)]
    records = [parse_finding(finding(s), playbooks) for s in seeded]
    action = playbooks.playbooks[records[0].playbook].build_action()
    stale = action.read(Clients(aws, MEMBER_ACCOUNT, "us-east-1"), records[0].resource_id)
    _, pending = automation.start(records, playbooks, aws, Settings())
    statuses = automation.poll(pending, aws)
    clock, slept = [1000.0], []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(type(action), "read", lambda *_: stale)  # never shows the change
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(time, "sleep", sleep)
    outcomes, _ = automation.finish(pending, statuses, playbooks, aws)
    assert [o.status for o in outcomes] == [Status.FAILED, Status.FAILED]
    assert slept == [1.0, 2.0, 4.0, 8.0], "EC2's 10 s, waited once"


def test_compliant_resource_starts_no_automation(aws, ssm_playbooks: Path) -> None:
    playbooks = load_playbooks(ssm_playbooks)
    _, records = seeded_records(aws, playbooks)
    _, pending = automation.start(records, playbooks, aws, Settings())
    automation.finish(pending, automation.poll(pending, aws), playbooks, aws)
    done, pending = automation.start(records, playbooks, aws, Settings())
    assert pending == []
    assert [o.status for o in done] == [Status.ALREADY_COMPLIANT]


def test_a_resource_excluded_since_ingest_starts_no_document(aws, ssm_playbooks: Path) -> None:
    playbooks = load_playbooks(ssm_playbooks)
    seeded, records = seeded_records(aws, playbooks)
    done, pending = automation.start(records, playbooks, aws, Settings(exclude_accounts=(MEMBER_ACCOUNT,)))
    assert pending == [] and [o.status for o in done] == [Status.EXCLUDED]
    ssm = Clients(aws, MEMBER_ACCOUNT, "us-east-1").ssm
    assert ssm.describe_automation_executions()["AutomationExecutionMetadataList"] == []
    assert group_rules(aws, seeded) == ["0.0.0.0/0", "10.0.0.0/8"]  # as seeded


def started_to_end(aws, ssm_playbooks: Path, status: str):  # type: ignore[no-untyped-def]
    """A seeded group's fix started through SSM, its execution set to end ``status``: the
    playbooks, the seeded group and the pending executions."""
    playbooks = load_playbooks(ssm_playbooks)
    seeded, records = seeded_records(aws, playbooks)
    Clients(aws, MEMBER_ACCOUNT, "us-east-1").ssm.put_parameter(
        Name=f"/asr-local/automation/{DOCUMENT}", Value=status, Type="String"
    )
    _, pending = automation.start(records, playbooks, aws, Settings())
    return playbooks, seeded, pending


def test_failed_automation_fails_the_finding(aws, ssm_playbooks: Path) -> None:
    playbooks, seeded, pending = started_to_end(aws, ssm_playbooks, "Failed")
    [outcome], _ = automation.finish(pending, automation.poll(pending, aws), playbooks, aws)
    assert outcome.status == Status.FAILED
    assert "ended Failed" in outcome.message
    assert "0.0.0.0/0" in group_rules(aws, seeded)


def test_automation_that_never_ends_is_stopped_and_failed(aws, ssm_playbooks: Path) -> None:
    playbooks, _, pending = started_to_end(aws, ssm_playbooks, "InProgress")
    ssm = Clients(aws, MEMBER_ACCOUNT, "us-east-1").ssm

    payload, waited = wait_in_the_trigger(pending, deadline_seconds=1)
    assert 1 <= waited < 10
    assert payload == {"statuses": {}}

    [outcome], _ = automation.finish(pending, payload["statuses"], playbooks, aws)
    assert outcome.status == Status.FAILED
    assert "did not finish within 1 minutes and was stopped" in outcome.message
    execution = ssm.get_automation_execution(AutomationExecutionId=pending[0]["execution_id"])
    assert execution["AutomationExecution"]["AutomationExecutionStatus"] == "Cancelled"


def test_an_execution_that_ended_after_the_last_poll_is_judged_by_its_end(aws, ssm_playbooks: Path) -> None:
    """SSM refuses to stop an execution that has ended: it was called still running, its claim kept."""
    playbooks, seeded, pending = started_to_end(aws, ssm_playbooks, "Success:2")
    assert automation.poll(pending, aws)[pending[0]["execution_id"]]["status"] == "InProgress"  # the deadline
    Clients(aws, MEMBER_ACCOUNT, "us-east-1").ssm.get_automation_execution(
        AutomationExecutionId=pending[0]["execution_id"]
    )  # it ends now
    [outcome], running = automation.finish(pending, {}, playbooks, aws)
    assert outcome.status == Status.REMEDIATED, outcome.message
    assert running == set() and group_rules(aws, seeded) == ["10.0.0.0/8"]


def test_a_stop_refused_for_throttling_is_tried_again(aws, ssm_playbooks: Path) -> None:
    """A throttled StopAutomationExecution left the execution running and its resource free."""
    from botocore.exceptions import ClientError

    playbooks, _, pending = started_to_end(aws, ssm_playbooks, "InProgress")
    ssm = Clients(aws, MEMBER_ACCOUNT, "us-east-1").ssm
    refusals = [ClientError({"Error": {"Code": "ThrottlingException"}}, "StopAutomationExecution")]

    def throttled_once(**_: Any) -> None:
        if refusals:
            raise refusals.pop()

    ssm.meta.events.register("before-call.ssm.StopAutomationExecution", throttled_once)
    try:
        [outcome], running = automation.finish(pending, {}, playbooks, aws)
    finally:
        ssm.meta.events.unregister("before-call.ssm.StopAutomationExecution", throttled_once)
    assert refusals == [] and running == set()
    assert outcome.message.endswith("and was stopped")
    execution = ssm.get_automation_execution(AutomationExecutionId=pending[0]["execution_id"])
    assert execution["AutomationExecution"]["AutomationExecutionStatus"] == "Cancelled"


def test_a_throttled_poll_asks_for_its_client_again_on_each_try(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries under throttling can outlast the member credentials: each try asks the context
    for the client, which hands out one with fresh credentials near their expiry."""
    from botocore.exceptions import ClientError

    from asr import remediate

    monkeypatch.setattr(remediate.time, "sleep", lambda _: None)
    throttling = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
    handed: list[str] = []

    class Context:
        def client(self, service: str, account: str, region: str) -> Any:
            handed.append(service)
            if len(handed) == 1:  # the first client's credentials have expired meanwhile
                return SimpleNamespace(
                    get_automation_execution=lambda **_: (_ for _ in ()).throw(
                        ClientError(throttling, "GetAutomationExecution")  # type: ignore[arg-type]
                    )
                )
            found = {"AutomationExecutionStatus": "Success"}
            return SimpleNamespace(get_automation_execution=lambda **_: {"AutomationExecution": found})

    pending = [{"execution_id": "e-1", "account_id": MEMBER_ACCOUNT, "region": "us-east-1"}]
    assert automation.poll(pending, Context()) == {"e-1": {"status": "Success", "message": ""}}  # type: ignore[arg-type]
    assert handed == ["ssm", "ssm"]


def test_an_execution_ssm_is_still_stopping_is_called_running(aws, ssm_playbooks: Path) -> None:
    """A stop is not instant (SSM's Cancelling): a step under way may still change the
    resource, so the execution counts as running and the caller keeps its claim."""
    playbooks, _, pending = started_to_end(aws, ssm_playbooks, "InProgress")
    ssm = Clients(aws, MEMBER_ACCOUNT, "us-east-1").ssm

    def cancelling(parsed: dict[str, Any], **_: Any) -> None:
        parsed["AutomationExecution"]["AutomationExecutionStatus"] = "Cancelling"

    with hooked(ssm, "after-call.ssm.GetAutomationExecution", cancelling):
        [outcome], running = automation.finish(pending, {}, playbooks, aws)
    assert outcome.status == Status.FAILED
    assert outcome.message.endswith("and SSM is still stopping it (Cancelling): it may still be running")
    assert running == {pending[0]["execution_id"]}


def test_an_execution_stopped_but_not_readable_since_is_called_running(aws, ssm_playbooks: Path) -> None:
    """Asked to stop, and then unreadable (the role lost its grant, say): whether it stopped is
    not known, so it counts as running and keeps its claim."""
    from botocore.exceptions import ClientError

    playbooks, _, pending = started_to_end(aws, ssm_playbooks, "InProgress")
    ssm = Clients(aws, MEMBER_ACCOUNT, "us-east-1").ssm

    def denied(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetAutomationExecution")

    with hooked(ssm, "before-call.ssm.GetAutomationExecution", denied):
        [outcome], running = automation.finish(pending, {}, playbooks, aws)
    assert outcome.status == Status.FAILED
    assert outcome.message.endswith(
        "and was asked to stop, but could not be read since (AccessDenied: no): it may still be running"
    ), outcome.message
    assert running == {pending[0]["execution_id"]}


def test_a_start_sends_one_idempotency_token_on_every_try(aws, ssm_playbooks: Path) -> None:
    """A start whose answer was lost and is tried again must not start a second execution,
    which nothing would watch: every try carries the same ClientToken."""
    import uuid

    from botocore.exceptions import ClientError

    ssm = Clients(aws, MEMBER_ACCOUNT, "us-east-1").ssm
    sent: list[str] = []
    throttled = [ClientError({"Error": {"Code": "ThrottlingException"}}, "StartAutomationExecution")]

    def token(params: dict[str, Any], **_: Any) -> None:
        sent.append(params["ClientToken"])

    def once(**_: Any) -> None:
        if throttled:
            raise throttled.pop()

    events = [("provide-client-params.ssm.StartAutomationExecution", token)]
    events.append(("before-call.ssm.StartAutomationExecution", once))
    for event, handler in events:
        ssm.meta.events.register(event, handler)
    try:
        _, _, pending = started_to_end(aws, ssm_playbooks, "Success")
    finally:
        for event, handler in events:
            ssm.meta.events.unregister(event, handler)
    assert (len(pending), len(sent)) == (1, 2), (pending, sent)
    assert sent[0] == sent[1] and str(uuid.UUID(sent[0])) == sent[0]


def test_an_execution_that_could_not_be_stopped_keeps_its_claim(
    aws, ssm_registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It may still be changing the resource: it keeps its claim, and the task cleared later
    waits for it again rather than start the document a second time."""
    from airflow.sdk.exceptions import TaskDeferred

    _, records = seeded_records(aws, ssm_registry)
    ssm = Clients(aws, MEMBER_ACCOUNT, "us-east-1").ssm
    ssm.put_parameter(
        Name=f"/asr-local/automation/{DOCUMENT}", Value="InProgress", Type="String", Overwrite=True
    )
    operator, context, _ = operator_run(records, "unstoppable")
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    [execution] = [e["execution_id"] for e in deferred.value.trigger.executions]
    claims = Path(Settings.from_env().audit_root) / "claims"
    [claim] = held_by(claims, context["run_id"])
    first = json.loads(claim.read_text())
    assert first["ttl"] == 6 * 3600 + 60  # six hours and the document's timeout
    refused = "and could not be stopped (AccessDenied: not allowed): it may still be running"
    monkeypatch.setattr(automation, "_stop", lambda execution, aws: (refused, True))
    assert operator.execute_complete(context, {"statuses": {}}) == {"FAILED": 1}
    assert held_by(claims, context["run_id"]) == [claim]

    context["ti"] = SimpleNamespace(try_number=2)  # the task cleared
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    assert [e["execution_id"] for e in deferred.value.trigger.executions] == [execution]
    assert len(ssm.describe_automation_executions()["AutomationExecutionMetadataList"]) == 1
    assert json.loads(claim.read_text())["time"] > first["time"]  # claimed anew for this wait
    claim.unlink()


@pytest.mark.airflow
def test_sweep_defers_while_the_automation_runs(aws, airflow_db: None, ssm_registry: Any) -> None:
    from airflow.dag_processing.dagbag import DagBag

    seeded, _ = seeded_records(aws, ssm_registry)
    securityhub = aws.admin_client("securityhub", "us-east-1")
    import_findings(securityhub, [finding(seeded)])

    dag = DagBag(dag_folder=str(Path(__file__).resolve().parents[1] / "dags")).dags["asr_sweep"]
    through_ssm, direct = dag.task_dict["remediate_EC2_13.fix"], dag.task_dict["remediate_EC2_19.fix"]
    assert type(through_ssm).__name__ == "MappedOperator"
    assert (through_ssm.retries, through_ssm.retry_delay) == (direct.retries, direct.retry_delay)
    run = dag.test()
    assert run.state == "success"
    assert group_rules(aws, seeded) == ["10.0.0.0/8"]
    [found] = securityhub.get_findings()["Findings"]
    assert found["Workflow"]["Status"] == "RESOLVED"
    assert DOCUMENT in found["Note"]["Text"]


def test_an_execution_that_exited_is_an_end_not_a_wait_until_the_deadline(aws, ssm_playbooks: Path) -> None:
    """Exited (and ChangeCalendarOverrideRejected) are terminal too: waiting for them would
    hold the batch until the document's timeout, then stop an execution long over."""
    playbooks, _, pending = started_to_end(aws, ssm_playbooks, "Exited")
    payload, waited = wait_in_the_trigger(pending, deadline_seconds=60)
    assert waited < 10
    [outcome], _ = automation.finish(pending, payload["statuses"], playbooks, aws)
    assert outcome.status == Status.FAILED and "ended Exited" in outcome.message


def test_an_execution_that_cannot_be_read_fails_alone_and_a_passing_failure_is_waited_out(
    aws, ssm_playbooks: Path
) -> None:
    """The member role is refused for the first second (a passing fault): the execution is
    waited for all the same, and ends REMEDIATED. One that is gone fails its own finding at
    the deadline, with the error. Before, either error ended the whole batch's wait."""
    import threading

    from asr import local

    playbooks, seeded, pending = started_to_end(aws, ssm_playbooks, "Success:2")
    lost = {**pending[0], "execution_id": "00000000-0000-4000-8000-000000000000"}
    local.deny_accounts([MEMBER_ACCOUNT])
    lift = threading.Timer(1.0, local.deny_accounts, args=([],))
    lift.start()
    try:
        payload, waited = wait_in_the_trigger([lost, *pending], deadline_seconds=4)
    finally:
        lift.join()
        local.deny_accounts([])
    assert 4 <= waited < 15
    assert payload["statuses"][pending[0]["execution_id"]]["status"] == "Success"
    assert payload["statuses"][lost["execution_id"]]["status"] == automation.UNREADABLE
    (unreadable, done), running = automation.finish([lost, *pending], payload["statuses"], playbooks, aws)
    assert done.status == Status.REMEDIATED and group_rules(aws, seeded) == ["10.0.0.0/8"]
    assert unreadable.status == Status.FAILED
    assert running == set()  # nothing runs under the lost id: its claim may go
    assert f"{lost['execution_id']} could not be read within 1 minutes (" in unreadable.message
    assert "does not exist" in unreadable.message
    assert unreadable.message.endswith("and SSM has no such execution to stop")


def test_a_resource_another_run_holds_starts_no_execution(aws, ssm_playbooks: Path, tmp_path: Path) -> None:
    playbooks = load_playbooks(ssm_playbooks)
    _, records = seeded_records(aws, playbooks)
    ours, theirs = Claims(tmp_path, "asr_sweep/a"), Claims(tmp_path, "asr_events/b")
    done, pending = automation.start(records, playbooks, aws, Settings(), claims=theirs)
    assert done == [] and len(pending) == 1
    [claim] = {e["claim"] for e in pending}

    [ignored], none = automation.start(records, playbooks, aws, Settings(), claims=ours)
    assert none == [] and ignored.status == Status.IGNORED and "asr_events/b" in ignored.message
    ssm = Clients(aws, MEMBER_ACCOUNT, "us-east-1").ssm
    assert len(ssm.describe_automation_executions()["AutomationExecutionMetadataList"]) == 1

    Claims(tmp_path, "asr_events/b").release([claim])  # when its deferred task resumes and finishes
    assert ours.acquire(claim, {}) is None


def test_a_retried_task_waits_for_the_executions_its_earlier_try_started(aws, ssm_registry: Any) -> None:
    """The wait failed (the triggerer lost AWS, say) and the task is retried: the document is
    not started a second time on a resource it is still changing."""
    from airflow.sdk.exceptions import TaskDeferred

    seeded, records = seeded_records(aws, ssm_registry)
    ssm = Clients(aws, MEMBER_ACCOUNT, "us-east-1").ssm
    ssm.put_parameter(Name=f"/asr-local/automation/{DOCUMENT}", Value="Success:3", Type="String")
    operator, context, store = operator_run(records, "retry")
    operator.batch["rate_shares"] = {f"{MEMBER_ACCOUNT}/us-east-1": 4.0}
    run_id = context["run_id"]
    claims = Path(Settings.from_env().audit_root) / "claims"
    action = ssm_registry.playbooks["EC2.13"].action
    claim = claims / claim_name(MEMBER_ACCOUNT, "us-east-1", records[0].resource_id, action)
    waits = []
    for try_number in (1, 2):
        context["ti"] = SimpleNamespace(try_number=try_number)
        with pytest.raises(TaskDeferred) as deferred:
            operator.execute(context)
        waits.append([e["execution_id"] for e in deferred.value.trigger.executions])
        # Deferred: the resource stays claimed by this run while its execution runs.
        assert held_by(claims, run_id) == [claim], f"try {try_number}"
        assert json.loads(claim.read_text())["owner"] == f"asr_sweep/{run_id}/fix"  # the task's
    assert waits[0] == waits[1] and len(waits[0]) == 1
    trigger = deferred.value.trigger
    assert trigger.serialize()[1]["rate_limits"] == Settings.from_env().rate_limits  # polls are paced
    assert trigger.serialize()[1]["rate_shares"] == {f"{MEMBER_ACCOUNT}/us-east-1": 4.0}  # at its part
    # The triggerer assumes the member roles as the task did: same partition, same CloudTrail name.
    from asr.aws import session_name

    kwargs = trigger.serialize()[1]
    assert (kwargs["home_region"], kwargs["session_name"]) == ("us-east-1", session_name("asr_sweep", run_id))
    assert len(ssm.describe_automation_executions()["AutomationExecutionMetadataList"]) == 1

    statuses = {}
    while not statuses:
        statuses = {
            i: s
            for i, s in automation.poll([{"execution_id": waits[0][0], **where(records)}], aws).items()
            if s["status"] in automation.ENDED
        }
    assert operator.execute_complete(context, {"statuses": statuses}) == {"REMEDIATED": 1}
    assert group_rules(aws, seeded) == ["10.0.0.0/8"]
    # Finished: the task cleared later starts the document again instead of waiting on these.
    assert not store.path("automations/EC2.13-0000.json").exists()
    assert held_by(claims, run_id) == []


def test_a_task_retried_after_it_saved_its_outcomes_still_says_remediated(aws, ssm_registry: Any) -> None:
    """Killed after ``execute_complete`` saved its outcomes, before Airflow heard it succeeded:
    the retry starts from ``execute`` and reads the resource fixed. It is this run's fix,
    not ALREADY_COMPLIANT (a finding marked NOTIFIED "nothing changed" for a change made)."""
    from airflow.sdk.exceptions import TaskDeferred

    seeded, records = seeded_records(aws, ssm_registry)
    ssm = Clients(aws, MEMBER_ACCOUNT, "us-east-1").ssm
    ssm.put_parameter(Name=f"/asr-local/automation/{DOCUMENT}", Value="Success:1", Type="String")
    operator, context, store = operator_run(records, "saved")
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    started = deferred.value.trigger.executions
    pending = [{"execution_id": e["execution_id"], **where(records)} for e in started]
    statuses: dict[str, Any] = {}
    while not statuses:
        statuses = {i: s for i, s in automation.poll(pending, aws).items() if s["status"] in automation.ENDED}
    assert operator.execute_complete(context, {"statuses": statuses}) == {"REMEDIATED": 1}

    context["ti"] = SimpleNamespace(try_number=2)
    assert operator.execute(context) == {"REMEDIATED": 1}
    [outcome] = store.read_lines("outcomes/EC2.13-0000.jsonl")
    assert "by an earlier try" in outcome["message"]
    assert outcome["before"] and outcome["after"]
    assert group_rules(aws, seeded) == ["10.0.0.0/8"]
    assert len(ssm.describe_automation_executions()["AutomationExecutionMetadataList"]) == 1


def held_by(claims: Path, run_id: str) -> list[Path]:
    """The claims this run holds (an earlier test session's may lie beside them)."""
    return [c for c in claims.glob("*.json") if f"/{run_id}/" in json.loads(c.read_text())["owner"]]


def operator_run(records: list[Any], name: str) -> tuple[Any, dict[str, Any], Any]:
    """The SSM fix operator of one batch of these records in a new run, its task context
    (try 1) and the run's store."""
    from asr.operators import AutomationFixOperator
    from asr.store import RunStore

    run_id = f"manual__{name}-{time.time_ns()}"
    store = RunStore.for_run(Settings.from_env().data_dir, "asr_sweep", run_id)
    batch = {"batch_id": "EC2.13-0000", "playbook": "EC2.13", "count": len(records), "rate_shares": {}}
    store.write_lines("batches/EC2.13-0000.jsonl", [r.to_dict() for r in records])
    context = {
        "params": {},
        "run_id": run_id,
        "dag": SimpleNamespace(dag_id="asr_sweep"),
        "dag_run": SimpleNamespace(run_type="manual", triggering_user_name="alice"),
        "ti": SimpleNamespace(try_number=1),
    }
    return AutomationFixOperator(task_id="fix", batch=batch), context, store


def where(records) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"account_id": records[0].account_id, "region": records[0].region}


def two_groups(aws: Any, playbooks: Any, polls: int) -> tuple[list[Any], list[Any], Any]:
    """Two world-open groups, their routing records, and the member's SSM client, whose
    executions of the document succeed after ``polls`` polls."""
    seeded = [seed_one(aws, "EC2.13", MEMBER_ACCOUNT, "us-east-1", n) for n in range(2)]
    records = [parse_finding(finding(s), playbooks) for s in seeded]
    ssm = Clients(aws, MEMBER_ACCOUNT, "us-east-1").ssm
    ssm.put_parameter(Name=f"/asr-local/automation/{DOCUMENT}", Value=f"Success:{polls}", Type="String")
    return seeded, records, ssm


def test_a_try_that_dies_while_starting_leaves_its_retry_the_executions_it_started(
    aws, ssm_registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starts are paced (one a second), so a batch's loop takes minutes: a worker killed in it
    must not make the retry start the document again on resources it is still changing."""
    from airflow.sdk.exceptions import TaskDeferred

    _, records, ssm = two_groups(aws, ssm_registry, polls=30)
    operator, context, _ = operator_run(records, "died")
    starts = {"n": 0}
    real_start = automation.retry_throttled

    def dies_on_the_second_start(call):  # type: ignore[no-untyped-def]
        starts["n"] += 1
        if starts["n"] == 2:
            raise SystemExit("the worker was killed")
        return real_start(call)

    monkeypatch.setattr(automation, "retry_throttled", dies_on_the_second_start)
    with pytest.raises(SystemExit):
        operator.execute(context)
    monkeypatch.setattr(automation, "retry_throttled", real_start)

    context["ti"] = SimpleNamespace(try_number=2)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    waited = {e["execution_id"] for e in deferred.value.trigger.executions}
    executions = ssm.describe_automation_executions()["AutomationExecutionMetadataList"]
    assert len(executions) == 2, "one start per resource, the first try's included"
    assert waited == {e["AutomationExecutionId"] for e in executions}
    # Still waiting: its claims are held. Drop them, as the finished task would.
    owner = f"asr_sweep/{context['run_id']}/fix"
    for held in (Path(Settings.from_env().audit_root) / "claims").glob("*.json"):
        if json.loads(held.read_text())["owner"] == owner:
            held.unlink()


def ended(pending: list[dict[str, Any]], aws: Any) -> dict[str, Any]:
    """Poll the executions until each has ended: their statuses."""
    statuses: dict[str, Any] = {}
    while len(statuses) < len(pending):
        statuses = {i: s for i, s in automation.poll(pending, aws).items() if s["status"] in automation.ENDED}
    return statuses


@pytest.mark.parametrize("ended_before_the_retry", [False, True])
def test_a_try_killed_before_it_saved_a_start_leaves_its_retry_that_execution(
    aws, ssm_registry: Any, monkeypatch: pytest.MonkeyPatch, ended_before_the_retry: bool
) -> None:
    """SSM started the second document, and the worker was killed before the start was saved
    for the retry. The retry sends that start's ClientToken again and SSM answers with the
    execution it made: the retry waits for it (or, ended, credits it), and settles its intent."""
    from airflow.sdk.exceptions import TaskDeferred

    from asr.store import RunStore

    seeded, records, ssm = two_groups(aws, ssm_registry, polls=3)
    operator, context, store = operator_run(records, "unsaved")
    saves = {"n": 0}
    write_json = RunStore.write_json

    def killed_on_the_second_save(self: RunStore, name: str, data: Any) -> None:
        if name.startswith("automations/"):
            saves["n"] += 1
            if saves["n"] == 2:
                raise SystemExit("the worker was killed")
        write_json(self, name, data)

    monkeypatch.setattr(RunStore, "write_json", killed_on_the_second_save)
    with pytest.raises(SystemExit):
        operator.execute(context)
    monkeypatch.setattr(RunStore, "write_json", write_json)
    executions = [
        e["AutomationExecutionId"]
        for e in ssm.describe_automation_executions()["AutomationExecutionMetadataList"]
    ]
    assert len(executions) == 2, "both started before the kill"
    if ended_before_the_retry:  # the second resource reads fixed: the retry credits the first try
        ended([{"execution_id": e, **where(records)} for e in executions], aws)

    context["ti"] = SimpleNamespace(try_number=2)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    waited = [e["execution_id"] for e in deferred.value.trigger.executions]
    metadata = ssm.describe_automation_executions()["AutomationExecutionMetadataList"]
    assert sorted(e["AutomationExecutionId"] for e in metadata) == sorted(executions), "none started again"
    assert len(waited) == (1 if ended_before_the_retry else 2) and set(waited) <= set(executions)

    statuses = ended([{"execution_id": e, **where(records)} for e in waited], aws)
    assert operator.execute_complete(context, {"statuses": statuses}) == {"REMEDIATED": 2}
    assert not store.path("automations/EC2.13-0000.json").exists()
    credited = [o for o in store.read_lines("outcomes/EC2.13-0000.jsonl") if "earlier try" in o["message"]]
    assert len(credited) == ended_before_the_retry
    assert [group_rules(aws, s) for s in seeded] == [["10.0.0.0/8"]] * 2
    changes = operator._journal(Settings.from_env(), context).changes()
    assert [c.status for c in changes] == ["REMEDIATED"] * 2, "one intent per start, each settled"
