"""ECS.5: a read-only copy of a task definition registered as its family's latest, the old one kept."""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from helpers import assert_extracted_id
from test_fixes_data import assert_permissions_cover_served_calls, parameters_sent
from test_iam_policy import _decision, statements_of

from asr import iam_policy, local
from asr.actions import ChangedMeanwhile, NotReversible
from asr.audit import AuditJournal, Origin, journal_root
from asr.aws import Clients
from asr.config import Settings
from asr.findings import parse_finding
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import finding, seed_one
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource, run_batch
from asr.rollback import Rollback, RollbackStatus

REGION = "us-east-1"
CONTROL = "ECS.5"
ARN = f"arn:aws:ecs:{REGION}:{MEMBER_ACCOUNT}:task-definition"
ROLE = f"arn:aws:iam::{MEMBER_ACCOUNT}:role"
# What tells two revisions apart, and all that ECS reports of one but RegisterTaskDefinition does not take.
IDENTITY = ("taskDefinitionArn", "revision")
REPORTED = (*IDENTITY, "status", "compatibilities", "requiresAttributes", "registeredAt", "registeredBy")
# An EC2 task definition with most of what RegisterTaskDefinition takes; one of its three
# containers is read-only already.
WIDE: dict[str, Any] = {
    "family": "orders",
    "taskRoleArn": f"{ROLE}/orders-task",
    "executionRoleArn": f"{ROLE}/orders-execution",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["EC2"],
    "cpu": "512",
    "memory": "1024",
    "pidMode": "host",
    "ipcMode": "task",
    "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ m6g.*"}],
    "proxyConfiguration": {
        "type": "APPMESH",
        "containerName": "envoy",
        "properties": [{"name": "AppPorts", "value": "8080"}, {"name": "ProxyIngressPort", "value": "15000"}],
    },
    "inferenceAccelerators": [{"deviceName": "device1", "deviceType": "eia2.medium"}],
    "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": "ARM64"},
    "volumes": [
        {"name": "data", "host": {"sourcePath": "/srv/orders"}},
        {"name": "cache", "dockerVolumeConfiguration": {"scope": "task", "driver": "local"}},
    ],
    "containerDefinitions": [
        {
            "name": "app",
            "image": f"{MEMBER_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/orders:4.1",
            "memory": 512,
            "readonlyRootFilesystem": False,
            "mountPoints": [{"sourceVolume": "cache", "containerPath": "/tmp"}],
            "secrets": [{"name": "DB_PASSWORD", "valueFrom": "/orders/db-password"}],
            "linuxParameters": {"capabilities": {"drop": ["ALL"]}, "initProcessEnabled": True},
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/orders"}},
            "dependsOn": [{"containerName": "envoy", "condition": "HEALTHY"}],
        },
        {
            "name": "envoy",
            "image": "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29.5.0-prod",
            "memory": 256,
            "healthCheck": {"command": ["CMD-SHELL", "curl -s http://localhost:9901/ready"]},
        },
        {
            "name": "metrics",
            "image": "public.ecr.aws/cloudwatch-agent/cloudwatch-agent:1.3",
            "memory": 128,
            "readonlyRootFilesystem": True,
        },
    ],
    "tags": [{"key": "team", "value": "orders"}, {"key": "cost-center", "value": "4711"}],
}


def clients(aws: Any) -> Clients:
    return Clients(aws, MEMBER_ACCOUNT, REGION)


def action() -> Any:
    return registry().playbooks[CONTROL].build_action()


def fix(aws: Any, resource_arn: str) -> tuple[Result, list[dict[str, Any]]]:
    """The fix of the revision the finding names, and each RegisterTaskDefinition it sent."""
    playbook = registry().playbooks[CONTROL]
    resource_id = playbook.extract_resource_id(resource_arn, MEMBER_ACCOUNT)
    with parameters_sent(clients(aws).ecs, "RegisterTaskDefinition") as sent:
        result = remediate_resource(playbook.build_action(), clients(aws), resource_id)
    return result, sent


def register(aws: Any, definition: dict[str, Any]) -> str:
    return str(clients(aws).ecs.register_task_definition(**definition)["taskDefinition"]["taskDefinitionArn"])


def described(aws: Any, arn: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    answer = clients(aws).ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    return dict(answer["taskDefinition"]), list(answer.get("tags") or ())


def read_only_copy(definition: dict[str, Any]) -> dict[str, Any]:
    """The revision as the fix should register it: every container read-only, another ARN."""
    containers = [{**c, "readonlyRootFilesystem": True} for c in definition["containerDefinitions"]]
    return {k: v for k, v in definition.items() if k not in IDENTITY} | {"containerDefinitions": containers}


def sendable(definition: dict[str, Any], tags: list[dict[str, str]]) -> dict[str, Any]:
    """What the fix should send to register that copy."""
    return {k: v for k, v in read_only_copy(definition).items() if k not in REPORTED} | {"tags": tags}


def single(family: str, **container: Any) -> dict[str, Any]:
    """A one-container Fargate task definition of this family."""
    return {
        "family": family,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [{"name": "app", "image": "public.ecr.aws/nginx/nginx:1.27", **container}],
    }


def statuses(aws: Any, *arns: str) -> list[str]:
    return [described(aws, arn)[0]["status"] for arn in arns]


def test_the_seeded_revision_is_copied_read_only_within_the_permissions(aws: Any) -> None:
    arn = seed_one(aws, CONTROL, MEMBER_ACCOUNT, REGION).resource_id
    old, tags = described(aws, arn)
    local.served_requests(clear=True)
    result, sent = fix(aws, arn)
    new_arn = f"{arn.rsplit(':', 1)[0]}:2"
    assert (result.status, result.before, result.after) == (
        Status.REMEDIATED,
        {"WritableContainers": ["app", "log-router"], "ReadOnlyRevision": None, "LatestActiveRevision": arn},
        {"WritableContainers": [], "ReadOnlyRevision": new_arn, "LatestActiveRevision": new_arn},
    ), result.message
    assert "no service was moved to it and the revision found stays ACTIVE" in result.message
    assert sent == [sendable(old, tags)]
    new, new_tags = described(aws, new_arn)
    assert {k: v for k, v in new.items() if k not in IDENTITY} == read_only_copy(old)
    assert new_tags == tags == [{"key": "team", "value": "web"}]
    assert described(aws, arn) == (old, tags), "the finding's revision is untouched, and ACTIVE"
    assert_permissions_cover_served_calls(CONTROL)


def test_every_registerable_member_and_container_is_copied(aws: Any) -> None:
    arn = register(aws, WIDE)
    old, tags = described(aws, arn)
    result, sent = fix(aws, arn)
    assert result.status == Status.REMEDIATED, result.message
    assert result.before == {
        "WritableContainers": ["app", "envoy"],
        "ReadOnlyRevision": None,
        "LatestActiveRevision": arn,
    }
    assert sent == [sendable(old, tags)]
    new, new_tags = described(aws, result.after["ReadOnlyRevision"])  # type: ignore[index]
    assert {k: v for k, v in new.items() if k not in IDENTITY} == read_only_copy(old)
    assert [c["readonlyRootFilesystem"] for c in new["containerDefinitions"]] == [True, True, True]
    assert new_tags == tags == WIDE["tags"]
    assert [arn, new["taskDefinitionArn"]] == [f"{ARN}/orders:1", f"{ARN}/orders:2"]
    assert statuses(aws, arn) == ["ACTIVE"]


def test_what_ecs_only_reports_and_aws_reserved_tags_are_not_sent_back() -> None:
    """As AWS answers (the stand-in leaves some out): registeredAt and By, requiresAttributes,
    compatibilities go; enableFaultInjection stays; CloudFormation's own tags cannot be set."""
    client = boto3.client(
        "ecs", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    arn = f"{ARN}/web:3"
    definition = {
        **single("web"),
        "taskDefinitionArn": arn,
        "revision": 3,
        "status": "ACTIVE",
        "compatibilities": ["EC2", "FARGATE"],
        "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.task-eni"}],
        "registeredAt": datetime.datetime(2026, 1, 5, tzinfo=datetime.UTC),
        "registeredBy": f"{ROLE}/deployer",
        "enableFaultInjection": True,
    }
    tags = [{"key": "aws:cloudformation:stack-name", "value": "web"}, {"key": "team", "value": "web"}]
    stubber = Stubber(client)
    stubber.add_response(
        "describe_task_definition", {"taskDefinition": definition}, {"taskDefinition": "web"}
    )
    by_family = {"taskDefinition": "web", "include": ["TAGS"]}
    stubber.add_response("describe_task_definition", {"taskDefinition": definition, "tags": tags}, by_family)
    sent = {
        **single("web", readonlyRootFilesystem=True),
        "enableFaultInjection": True,
        "tags": [{"key": "team", "value": "web"}],
    }
    new = {**definition, "taskDefinitionArn": f"{ARN}/web:4", "revision": 4, **sent}
    del new["tags"]
    stubber.add_response("register_task_definition", {"taskDefinition": new}, sent)
    stubber.add_response("describe_task_definition", {"taskDefinition": new}, {"taskDefinition": "web"})
    stubber.activate()
    ecs = SimpleNamespace(ecs=client, account_id=MEMBER_ACCOUNT, region=REGION)
    result = remediate_resource(action(), ecs, arn)  # type: ignore[arg-type]
    assert (result.status, result.after) == (
        Status.REMEDIATED,
        {
            "WritableContainers": [],
            "ReadOnlyRevision": f"{ARN}/web:4",
            "LatestActiveRevision": f"{ARN}/web:4",
        },
    ), result.message
    stubber.assert_no_pending_responses()


def test_a_second_run_registers_nothing(aws: Any) -> None:
    arn = seed_one(aws, CONTROL, MEMBER_ACCOUNT, REGION).resource_id
    assert fix(aws, arn)[0].status == Status.REMEDIATED
    local.served_requests(clear=True)
    result, sent = fix(aws, arn)
    assert (result.status, result.before, sent) == (Status.ALREADY_COMPLIANT, None, [])
    assert [call["action"] for call in local.served_requests()] == ["DescribeTaskDefinition"]


@pytest.mark.parametrize("named", [1, 2], ids=["older", "latest"])
def test_a_family_whose_latest_revision_is_read_only_complies(aws: Any, named: int) -> None:
    """Whoever registered it: ECS.5 evaluates that revision alone."""
    writable = register(aws, single("web"))
    read_only = register(aws, single("web", readonlyRootFilesystem=True))
    result, sent = fix(aws, [writable, read_only][named - 1])
    assert (result.status, sent) == (Status.ALREADY_COMPLIANT, [])
    assert statuses(aws, writable, read_only) == ["ACTIVE", "ACTIVE"]


def test_a_revision_no_longer_the_latest_is_refused(aws: Any) -> None:
    older = register(aws, single("web"))
    newer = register(aws, single("web", image="public.ecr.aws/nginx/nginx:1.28"))
    result, sent = fix(aws, older)
    assert (result.status, sent) == (Status.FAILED, [])
    assert f"{older} is no longer its family's latest ACTIVE revision" in result.message
    assert f"fix {newer}'s own finding" in result.message


def test_a_latest_revision_deregistered_makes_the_one_before_it_the_latest(aws: Any) -> None:
    """The stand-in resolves a family to its latest ACTIVE revision, as ECS does."""
    older = register(aws, single("web"))
    newer = register(aws, single("web", image="public.ecr.aws/nginx/nginx:1.28"))
    clients(aws).ecs.deregister_task_definition(taskDefinition=newer)
    result, sent = fix(aws, older)
    assert result.status == Status.REMEDIATED, result.message
    assert [s["containerDefinitions"][0]["image"] for s in sent] == ["public.ecr.aws/nginx/nginx:1.27"]
    assert result.after == {
        "WritableContainers": [],
        "ReadOnlyRevision": f"{ARN}/web:3",
        "LatestActiveRevision": f"{ARN}/web:3",
    }


def test_a_family_with_no_active_revision_is_refused(aws: Any) -> None:
    arn = register(aws, single("web"))
    clients(aws).ecs.deregister_task_definition(taskDefinition=arn)
    result, sent = fix(aws, arn)
    assert (result.status, sent) == (Status.FAILED, [])
    assert f"no revision of web is ACTIVE, {arn} included (or the family never was)" in result.message


def test_a_family_that_never_existed_is_refused_the_same_way(aws: Any) -> None:
    """ECS answers both alike, and describes an INACTIVE revision only while something runs it."""
    result, sent = fix(aws, f"{ARN}/gone:1")
    assert (result.status, sent) == (Status.FAILED, [])
    assert "no revision of gone is ACTIVE" in result.message


@pytest.mark.parametrize(
    ("windows", "sign"),
    [
        (
            {"runtimePlatform": {"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE"}},
            "WINDOWS_SERVER_2022_CORE",
        ),
        (
            {"runtimePlatform": {"operatingSystemFamily": "WINDOWS_SERVER_2019_FULL"}},
            "WINDOWS_SERVER_2019_FULL",
        ),
        # EC2 task definitions often leave runtimePlatform out: what else says Windows.
        (
            {
                "placementConstraints": [
                    {"type": "memberOf", "expression": "attribute:ecs.os-type == windows"}
                ]
            },
            "placement constraint 'attribute:ecs.os-type == windows'",
        ),
        (
            {
                "placementConstraints": [
                    {
                        "type": "memberOf",
                        "expression": "attribute:ecs.os-family in [LINUX, WINDOWS_SERVER_2022_FULL]",
                    }
                ]
            },
            "placement constraint",
        ),
        (
            {
                "containerDefinitions": [
                    {"name": "app", "image": "mcr.microsoft.com/windows/servercore/iis:latest"}
                ]
            },
            "image mcr.microsoft.com/windows/servercore/iis:latest",
        ),
        (
            {
                "volumes": [
                    {
                        "name": "share",
                        "fsxWindowsFileServerVolumeConfiguration": {
                            "fileSystemId": "fs-0123456789abcdef0",
                            "rootDirectory": "share",
                            "authorizationConfig": {
                                "credentialsParameter": "arn:aws:ssm:us-east-1:111111111111:parameter/fsx",
                                "domain": "corp",
                            },
                        },
                    }
                ]
            },
            "FSx for Windows File Server volume share",
        ),
    ],
)
def test_windows_containers_are_refused_in_the_plan(aws: Any, windows: dict[str, Any], sign: str) -> None:
    arn = register(aws, single("iis") | {"cpu": "1024", "memory": "2048"} | windows)
    state = action().read(clients(aws), arn)
    with pytest.raises(ValueError, match=f"runs Windows containers \\({re.escape(sign)}"):
        action().plan(state)
    result, sent = fix(aws, arn)
    assert (result.status, sent) == (Status.FAILED, [])


def test_a_linux_definition_that_keeps_off_windows_hosts_is_fixed(aws: Any) -> None:
    constraint = {"type": "memberOf", "expression": "attribute:ecs.os-type != windows"}
    arn = register(aws, single("web") | {"placementConstraints": [constraint]})
    assert fix(aws, arn)[0].status == Status.REMEDIATED


@pytest.mark.parametrize("newer", [False, True], ids=["writable", "read-only"])
def test_a_revision_registered_after_the_read_is_not_overtaken(aws: Any, newer: bool) -> None:
    """Planned again, the finding's revision is refused (writable) or the family complies."""
    arn = register(aws, single("web"))
    fixer = action()
    state = fixer.read(clients(aws), arn)
    register(aws, single("web", image="nginx:1.28", readonlyRootFilesystem=newer))
    with parameters_sent(clients(aws).ecs, "RegisterTaskDefinition") as sent, pytest.raises(ChangedMeanwhile):
        fixer.apply(clients(aws), arn, state, fixer.plan(state))
    assert sent == []


def test_revert_deregisters_exactly_the_fix_s_revision(aws: Any) -> None:
    arn = seed_one(aws, CONTROL, MEMBER_ACCOUNT, REGION).resource_id
    fixer = action()
    before = fixer.read(clients(aws), arn)
    result = fix(aws, arn)[0]
    assert result.status == Status.REMEDIATED, result.message
    ours = result.after["ReadOnlyRevision"]  # type: ignore[index]
    fixer.check_revert(clients(aws), arn, before)  # a dry rollback's check: nothing refused
    with parameters_sent(clients(aws).ecs, "DeregisterTaskDefinition") as sent:
        fixer.revert(clients(aws), arn, before)
    assert sent == [{"taskDefinition": ours}]
    assert fixer.read(clients(aws), arn) == before
    assert statuses(aws, arn, ours) == ["ACTIVE", "INACTIVE"]


@pytest.mark.parametrize("since", ["deregistered", "overtaken", "an-older-copy-left"])
def test_revert_leaves_alone_what_is_no_longer_the_fix_s_revision(aws: Any, since: str) -> None:
    """Ours deregistered by its owners; a read-only revision of another image registered after
    it; ours and the finding's deregistered, leaving a read-only revision older than both that
    registers just what the fix did."""
    older = register(aws, single("web", readonlyRootFilesystem=True))
    arn = register(aws, single("web"))
    fixer = action()
    before = fixer.read(clients(aws), arn)
    ours = fix(aws, arn)[0].after["ReadOnlyRevision"]  # type: ignore[index]
    if since == "overtaken":
        register(aws, single("web", image="nginx:1.28", readonlyRootFilesystem=True))
    else:
        clients(aws).ecs.deregister_task_definition(taskDefinition=ours)
    if since == "an-older-copy-left":
        clients(aws).ecs.deregister_task_definition(taskDefinition=arn)
    with parameters_sent(clients(aws).ecs, "DeregisterTaskDefinition") as sent:
        if since == "overtaken":  # newer than the copied one, read-only, but not what the fix made
            for check in (fixer.check_revert, fixer.revert):
                with pytest.raises(NotReversible, match="web:4, is not what the fix made of"):
                    check(clients(aws), arn, before)
        else:
            fixer.check_revert(clients(aws), arn, before)
            fixer.revert(clients(aws), arn, before)
    assert sent == []
    assert statuses(aws, older)[0] == "ACTIVE"


def test_revert_keeps_the_fix_s_revision_once_the_one_it_copied_is_deregistered(aws: Any) -> None:
    """Deregistering ours would make the family's latest an older revision (an older image)."""
    older = register(aws, single("web", image="public.ecr.aws/nginx/nginx:1.20"))
    arn = register(aws, single("web"))
    fixer = action()
    before = fixer.read(clients(aws), arn)
    ours = fix(aws, arn)[0].after["ReadOnlyRevision"]  # type: ignore[index]
    clients(aws).ecs.deregister_task_definition(taskDefinition=arn)  # the owners' clean-up
    with parameters_sent(clients(aws).ecs, "DeregisterTaskDefinition") as sent:
        for check in (fixer.check_revert, fixer.revert):
            with pytest.raises(
                NotReversible, match=f"{arn}, the revision the fix copied, is deregistered since"
            ):
                check(clients(aws), arn, before)
    assert sent == []
    assert statuses(aws, older, arn, ours) == ["ACTIVE", "INACTIVE", "ACTIVE"]


def test_a_fix_whose_task_died_after_registering_is_rolled_back_once_its_retry_saw_it(
    aws: Any, tmp_path: Path
) -> None:
    """The dead try's journal holds its plan ("a new revision of web"), not the ARN ECS gave:
    a rollback cannot tell that revision from one registered since, and leaves it. The retry
    finds the family compliant and settles the change with the revision it reads."""
    record = parse_finding(finding(seed_one(aws, CONTROL, MEMBER_ACCOUNT, REGION)), registry())
    arn = record.resource_id
    fixer = action()
    state = fixer.read(clients(aws), arn)
    plan = fixer.plan(state)
    root = journal_root(str(tmp_path), "asr_sweep", "run-1")
    AuditJournal(root, Origin("asr_sweep", "run-1", "b", 1, "s")).record(
        {"event": "intent", "kind": "fix", "id": "died", "account_id": MEMBER_ACCOUNT, "region": REGION}
        | {"resource_id": arn, "action": fixer.name, "playbook": CONTROL, "params": fixer.params}
        | {"before": {k: state[k] for k in plan}, "plan": plan, "state": state}
        | {"finding_ids": [record.finding_id], "control_ids": [CONTROL]}
    )
    fixer.apply(clients(aws), arn, state, plan)  # then the worker went away
    ours = f"{arn.rsplit(':', 1)[0]}:2"
    rollback = AuditJournal(root, Origin("asr_rollback", "r-1", "rollback", 1, "bob"))
    [unsure] = Rollback(rollback, aws, dry=True).run()
    assert unsure.status == RollbackStatus.CHANGED_SINCE, unsure.reason

    retry = AuditJournal(root, Origin("asr_sweep", "run-1", "b", 2, "s"))
    [outcome] = run_batch([record], registry(), aws, journal=retry)
    assert (outcome.status, outcome.after) == (
        "REMEDIATED",
        {"WritableContainers": [], "ReadOnlyRevision": ours, "LatestActiveRevision": ours},
    ), outcome.message
    [reversal] = Rollback(rollback, aws).run()
    assert reversal.status == RollbackStatus.REVERTED, reversal.reason
    assert statuses(aws, arn, ours) == ["ACTIVE", "INACTIVE"]


def test_a_rollback_deregisters_the_fix_s_revision_unless_deregistered_since(
    aws: Any, tmp_path: Path
) -> None:
    """A rollback compares the family with the fix's after-state first: a revision the owners
    deregistered themselves is a change since, left alone."""
    project = registry()
    kept, undone = (seed_one(aws, CONTROL, MEMBER_ACCOUNT, REGION, n) for n in (1, 2))
    root = journal_root(str(tmp_path), "asr_sweep", "run-1")
    journal = AuditJournal(root, Origin("asr_sweep", "run-1", "b", 1, "s"))
    outcomes = [
        run_batch([parse_finding(finding(s), project)], project, aws, journal=journal)[0]
        for s in (kept, undone)
    ]
    assert [o.status for o in outcomes] == ["REMEDIATED", "REMEDIATED"], outcomes
    ours = [o.after["ReadOnlyRevision"] for o in outcomes]  # type: ignore[index]
    clients(aws).ecs.deregister_task_definition(taskDefinition=ours[0])
    with parameters_sent(clients(aws).ecs, "DeregisterTaskDefinition") as sent:
        reversals = Rollback(
            AuditJournal(root, Origin("asr_rollback", "r-1", "rollback", 1, "bob")), aws
        ).run()
    by_resource = {r.resource_id: r.status for r in reversals}
    assert by_resource == {
        kept.resource_id: RollbackStatus.CHANGED_SINCE,
        undone.resource_id: RollbackStatus.REVERTED,
    }, [(r.resource_id, r.status, r.reason) for r in reversals]
    assert sent == [{"taskDefinition": ours[1]}]
    assert statuses(aws, undone.resource_id, ours[1]) == ["ACTIVE", "INACTIVE"]


@pytest.mark.parametrize("copied", ["kept", "deregistered"])
def test_a_dry_rollback_promises_only_what_the_real_one_puts_back(
    aws: Any, tmp_path: Path, copied: str
) -> None:
    """The family reads as the fix left it either way; with the copied revision deregistered
    since, the revert would refuse, and the check before an approval says so (NOT_REVERSIBLE),
    rather than asking a person to approve a revert that will not be made."""
    project = registry()
    seeded = seed_one(aws, CONTROL, MEMBER_ACCOUNT, REGION)
    root = journal_root(str(tmp_path), "asr_sweep", "run-1")
    journal = AuditJournal(root, Origin("asr_sweep", "run-1", "b", 1, "s"))
    [outcome] = run_batch([parse_finding(finding(seeded), project)], project, aws, journal=journal)
    assert outcome.status == "REMEDIATED", outcome.message
    if copied == "deregistered":
        clients(aws).ecs.deregister_task_definition(taskDefinition=seeded.resource_id)
    rollback = AuditJournal(root, Origin("asr_rollback", "r-1", "rollback", 1, "bob"))
    [checked] = Rollback(rollback, aws, dry=True).run()
    [made] = Rollback(rollback, aws).run()
    if copied == "kept":
        assert (checked.status, made.status) == (RollbackStatus.WOULD_REVERT, RollbackStatus.REVERTED)
    else:
        assert checked.status == made.status == RollbackStatus.NOT_REVERSIBLE, checked.reason
        assert checked.reason == made.reason
        assert "the revision the fix copied, is deregistered since" in checked.reason


def test_roles_are_passed_to_ecs_tasks_only_and_tags_written_by_the_registration_only() -> None:
    """RegisterTaskDefinition asks for iam:PassRole on the copied revision's roles, whichever they
    are, and for ecs:TagResource when it is sent tags."""
    values = iam_policy.plain_values(Settings()) | {"AWS::AccountId": MEMBER_ACCOUNT}
    policies = iam_policy.render(iam_policy.member_policies(registry()), values)
    [passing] = [
        s
        for s in statements_of(policies, "iam:PassRole")
        if s["Condition"]["StringEquals"]["iam:PassedToService"] == "ecs-tasks.amazonaws.com"
    ]
    assert passing["Resource"] == f"arn:aws:iam::{MEMBER_ACCOUNT}:role/*"
    assert _decision({"p": {"Statement": [passing]}}, "iam:PassRole", f"{ROLE}/orders-task") == "Allow"
    elsewhere = "arn:aws:iam::999999999999:role/orders-task"
    assert _decision({"p": {"Statement": [passing]}}, "iam:PassRole", elsewhere) == "implicit deny"
    [tagging] = statements_of(policies, "ecs:TagResource")
    assert tagging["Condition"] == {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}}
    assert _decision(policies, "ecs:TagResource", f"{ARN}/orders:2") == "Allow"
    cluster = f"arn:aws:ecs:{REGION}:{MEMBER_ACCOUNT}:cluster/orders"
    assert _decision(policies, "ecs:TagResource", cluster) == "implicit deny"


def test_the_playbook_asks_a_person_first() -> None:
    playbook = registry().playbooks[CONTROL]
    assert (playbook.disruptive, playbook.auto_remediate) == (True, False)
    assert "the revision the finding names stays" in " ".join((playbook.risk or "").split())


@pytest.mark.parametrize(
    ("resource_arn", "matches"),
    [
        (f"{ARN}/orders-web:7", True),
        (f"{ARN}/Orders_Web-2:1234567890", True),
        (f"arn:aws-cn:ecs:cn-north-1:{MEMBER_ACCOUNT}:task-definition/orders:1", True),
        (f"{ARN}/{'f' * 255}:1", True),
        (f"{ARN}/{'f' * 256}:1", False),
        (f"{ARN}/orders", False),
        (f"{ARN}/orders:0", False),
        (f"{ARN}/orders:latest", False),
        (f"{ARN}/orders.web:1", False),
        (f"arn:aws:ecs:{REGION}:{MEMBER_ACCOUNT}:service/prod/orders", False),
    ],
)
def test_the_whole_arn_is_the_resource_id(resource_arn: str, matches: bool) -> None:
    assert_extracted_id(CONTROL, resource_arn, resource_arn if matches else None)
