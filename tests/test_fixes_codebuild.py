"""CodeBuild.5: privileged mode off, the rest of the project's environment sent back as read."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from helpers import assert_extracted_id
from test_fixes_data import assert_permissions_cover_served_calls, parameters_sent

from asr import local
from asr.actions import ChangedMeanwhile
from asr.actions.codebuild import sendable_environment
from asr.aws import Clients
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import seed_one
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource

REGION = "us-east-1"
CONTROL = "CodeBuild.5"
ARN = f"arn:aws:codebuild:{REGION}:{MEMBER_ACCOUNT}:project"
ROLE = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/service-role/builder"
SOURCE = {"type": "CODECOMMIT", "location": f"https://git-codecommit.{REGION}.amazonaws.com/v1/repos/app"}
# Every member of the environment a project may have, as BatchGetProjects answers them.
ENVIRONMENT: dict[str, Any] = {
    "type": "LINUX_CONTAINER",
    "image": f"{MEMBER_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/builder:3",
    "computeType": "BUILD_GENERAL1_MEDIUM",
    "privilegedMode": True,
    "imagePullCredentialsType": "SERVICE_ROLE",
    "certificate": "build-certs/corporate-ca.pem",
    "registryCredential": {"credential": "registry/builder", "credentialProvider": "SECRETS_MANAGER"},
    "environmentVariables": [
        {"name": "STAGE", "value": "prod", "type": "PLAINTEXT"},
        {"name": "DB_PASSWORD", "value": "/app/db-password", "type": "PARAMETER_STORE"},
    ],
}


def clients(aws: Any) -> Clients:
    return Clients(aws, MEMBER_ACCOUNT, REGION)


def make(aws: Any, name: str, environment: dict[str, Any], role: str = ROLE) -> str:
    project = clients(aws).codebuild.create_project(
        name=name,
        description="builds the images",
        source=SOURCE,
        artifacts={"type": "NO_ARTIFACTS"},
        environment=environment,
        serviceRole=role,
        timeoutInMinutes=45,
    )["project"]
    return str(project["arn"])


def project(aws: Any, name: str) -> dict[str, Any]:
    return dict(clients(aws).codebuild.batch_get_projects(names=[name])["projects"][0])


def action() -> Any:
    return registry().playbooks[CONTROL].build_action()


def fix(aws: Any, resource_arn: str) -> tuple[Result, list[dict[str, Any]]]:
    """The fix of the project the finding names, and the parameters of each UpdateProject it sent."""
    playbook = registry().playbooks[CONTROL]
    resource_id = playbook.extract_resource_id(resource_arn, MEMBER_ACCOUNT)
    codebuild = clients(aws).codebuild
    with parameters_sent(codebuild, "UpdateProject") as sent:
        result = remediate_resource(playbook.build_action(), clients(aws), resource_id)
    return result, sent


def test_the_seeded_project_is_fixed_within_the_permissions(aws: Any) -> None:
    arn = seed_one(aws, CONTROL, MEMBER_ACCOUNT, REGION).resource_id
    read = project(aws, arn)["environment"]
    local.served_requests(clear=True)
    result, sent = fix(aws, arn)
    assert (result.status, result.before, result.after) == (
        Status.REMEDIATED,
        {"PrivilegedMode": True},
        {"PrivilegedMode": False},
    ), result.message
    assert result.message == "turned off privileged mode in the CodeBuild project's environment"
    assert sent == [{"name": arn.rsplit("/", 1)[1], "environment": {**read, "privilegedMode": False}}]
    assert_permissions_cover_served_calls(CONTROL)


def test_every_other_setting_is_kept(aws: Any) -> None:
    """The environment goes back whole with one member changed; nothing outside it is sent."""
    arn = make(aws, "images", ENVIRONMENT)
    before = project(aws, "images")
    result, sent = fix(aws, arn)
    assert result.status == Status.REMEDIATED, result.message
    assert sent == [{"name": "images", "environment": {**ENVIRONMENT, "privilegedMode": False}}]
    after = project(aws, "images")
    assert after["environment"] == {**ENVIRONMENT, "privilegedMode": False}
    for member in ("source", "artifacts", "serviceRole", "description", "timeoutInMinutes"):
        assert after[member] == before[member], member


def test_the_docker_servers_status_is_not_sent_back(aws: Any) -> None:
    """CodeBuild reports a Docker server's status but takes none: the rest of it goes back."""
    server = {"computeType": "BUILD_GENERAL1_SMALL", "securityGroupIds": ["sg-0123456789abcdef0"]}
    reported = {**server, "status": {"status": "RUNNING", "message": "ready"}}
    arn = make(aws, "remote-docker", {**ENVIRONMENT, "dockerServer": reported})
    result, sent = fix(aws, arn)
    assert result.status == Status.REMEDIATED, result.message
    assert sent[0]["environment"]["dockerServer"] == server
    assert sent[0]["environment"]["privilegedMode"] is False


def test_sendable_environment_leaves_what_it_was_given_alone() -> None:
    read = {
        **ENVIRONMENT,
        "dockerServer": {"computeType": "BUILD_GENERAL1_SMALL", "status": {"status": "OK"}},
    }
    kept = copy.deepcopy(read)
    sent = sendable_environment(read, privilegedMode=False)
    assert read == kept
    assert sent == {
        **ENVIRONMENT,
        "privilegedMode": False,
        "dockerServer": {"computeType": "BUILD_GENERAL1_SMALL"},
    }


@pytest.mark.parametrize("privileged", [False, None], ids=["off", "unset"])
def test_a_project_not_privileged_gets_no_write(aws: Any, privileged: bool | None) -> None:
    environment = {key: value for key, value in ENVIRONMENT.items() if key != "privilegedMode"}
    if privileged is not None:
        environment["privilegedMode"] = privileged
    arn = make(aws, "unit-tests", environment)
    local.served_requests(clear=True)
    result, sent = fix(aws, arn)
    assert (result.status, result.before, sent) == (Status.ALREADY_COMPLIANT, None, [])
    assert [call["action"] for call in local.served_requests()] == ["BatchGetProjects"]


def test_an_edit_made_after_the_read_is_kept(aws: Any) -> None:
    """The change is built from a read made just before it, not from the fix's first read."""
    arn = make(aws, "images", ENVIRONMENT)
    fixer, codebuild = action(), clients(aws).codebuild
    state = fixer.read(clients(aws), arn)
    newer = {**ENVIRONMENT, "image": "aws/codebuild/standard:7.0", "computeType": "BUILD_GENERAL1_LARGE"}
    codebuild.update_project(name="images", environment=newer)
    fixer.apply(clients(aws), arn, state, fixer.plan(state))
    assert project(aws, "images")["environment"] == {**newer, "privilegedMode": False}


def test_privileged_mode_turned_off_meanwhile_is_no_change_of_the_fix(aws: Any) -> None:
    arn = make(aws, "images", ENVIRONMENT)
    fixer, codebuild = action(), clients(aws).codebuild
    state = fixer.read(clients(aws), arn)
    codebuild.update_project(name="images", environment={**ENVIRONMENT, "privilegedMode": False})
    with parameters_sent(codebuild, "UpdateProject") as sent, pytest.raises(ChangedMeanwhile):
        fixer.apply(clients(aws), arn, state, fixer.plan(state))
    assert sent == []


def test_a_missing_project_fails_saying_so(aws: Any) -> None:
    result, sent = fix(aws, f"{ARN}/gone")
    assert (result.status, sent) == (Status.FAILED, [])
    assert f"{ARN}/gone was not found" in result.message


def test_an_id_that_is_no_project_arn_is_refused_without_a_call(aws: Any) -> None:
    local.served_requests(clear=True)
    result = remediate_resource(action(), clients(aws), "images")
    assert result.status == Status.FAILED
    assert "'images' is not the ARN of a CodeBuild project" in result.message
    assert [call for call in local.served_requests() if call["service"] == "codebuild"] == []


def test_projects_are_read_in_one_call_and_a_missing_one_left_to_its_own_read(aws: Any) -> None:
    arns = [make(aws, "images", ENVIRONMENT), make(aws, "docs", {**ENVIRONMENT, "privilegedMode": False})]
    local.served_requests(clear=True)
    states = action().read_many(clients(aws), [*arns, f"{ARN}/gone"])
    assert states == {arns[0]: {"PrivilegedMode": True}, arns[1]: {"PrivilegedMode": False}}
    assert [call["action"] for call in local.served_requests()] == ["BatchGetProjects"]


def test_revert_turns_privileged_mode_back_on_keeping_an_edit_made_since(aws: Any) -> None:
    arn = make(aws, "images", ENVIRONMENT)
    fixer = action()
    before = fixer.read(clients(aws), arn)
    assert fix(aws, arn)[0].status == Status.REMEDIATED
    newer = {**ENVIRONMENT, "privilegedMode": False, "image": "aws/codebuild/standard:7.0"}
    clients(aws).codebuild.update_project(name="images", environment=newer)
    fixer.revert(clients(aws), arn, before)
    assert fixer.read(clients(aws), arn) == before
    assert project(aws, "images")["environment"] == {**newer, "privilegedMode": True}
    with parameters_sent(clients(aws).codebuild, "UpdateProject") as sent:
        fixer.revert(clients(aws), arn, before)  # on already: nothing sent
    assert sent == []


def test_the_playbook_asks_a_person_first() -> None:
    playbook = registry().playbooks[CONTROL]
    assert (playbook.disruptive, playbook.auto_remediate) == (True, False)
    assert "Docker daemon" in (playbook.risk or "")


@pytest.mark.parametrize(
    ("resource_arn", "matches"),
    [
        (f"{ARN}/images", True),
        (f"{ARN}/Build_images-2", True),
        (f"arn:aws-cn:codebuild:cn-north-1:{MEMBER_ACCOUNT}:project/images", True),
        (f"{ARN}/{'p' * 150}", True),
        (f"{ARN}/{'p' * 151}", False),
        (f"{ARN}/-images", False),
        (f"{ARN}/a", False),
        (f"arn:aws:codebuild:{REGION}:{MEMBER_ACCOUNT}:build/images:0b4f", False),
        (f"arn:aws:codebuild:{REGION}:{MEMBER_ACCOUNT}:report-group/images", False),
    ],
)
def test_the_whole_arn_is_the_resource_id(resource_arn: str, matches: bool) -> None:
    assert_extracted_id(CONTROL, resource_arn, resource_arn if matches else None)
