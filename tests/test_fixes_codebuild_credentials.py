"""CodeBuild.2: clear-text AWS credentials moved to SecureString parameters the project's role
can read, never a value in a state, and never someone's parameter overwritten."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import test_fixes_codebuild
from helpers import assert_extracted_id, routing_record
from test_fixes_data import parameters_sent
from test_iam_policy import _decision

from asr import iam_policy, local, report
from asr.actions import ActionError, ChangedMeanwhile, NotReversible, validate_params
from asr.actions.codebuild import CREDENTIALS, PLAINTEXT, PREFIX_MAX, STORED
from asr.audit import AuditJournal, Origin, journal_root
from asr.aws import Clients
from asr.config import Settings
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import seed_one
from asr.playbooks import registry
from asr.remediate import Outcome, Result, Status, remediate_resource, run_batch
from asr.store import RunStore
from asr.writeback import note_for

REGION = "us-east-1"
CONTROL = "CodeBuild.2"
ACTION = "codebuild.store-credentials-in-parameter-store"
ARN = f"arn:aws:codebuild:{REGION}:{MEMBER_ACCOUNT}:project"
PREFIX = "/asr/codebuild"
KEY_ID = "AKIAZZZZTESTKEYID0001"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzTESTSECRET"
OTHERS = [
    {"name": "STAGE", "value": "prod", "type": "PLAINTEXT"},
    {"name": "DB_PASSWORD", "value": "/app/db-password", "type": "PARAMETER_STORE"},
    {"name": "TOKEN", "value": "app/token", "type": "SECRETS_MANAGER"},
]
ENVIRONMENT: dict[str, Any] = {
    "type": "LINUX_CONTAINER",
    "image": "aws/codebuild/standard:7.0",
    "computeType": "BUILD_GENERAL1_MEDIUM",
    "privilegedMode": True,
    "imagePullCredentialsType": "CODEBUILD",
    "certificate": "build-certs/corporate-ca.pem",
    "environmentVariables": [
        OTHERS[0],
        {"name": "AWS_ACCESS_KEY_ID", "value": KEY_ID, "type": "PLAINTEXT"},
        OTHERS[1],
        {"name": "AWS_SECRET_ACCESS_KEY", "value": SECRET, "type": "PLAINTEXT"},
        OTHERS[2],
    ],
}


def clients(aws: Any) -> Clients:
    return Clients(aws, MEMBER_ACCOUNT, REGION)


def role(aws: Any, name: str = "builder", readable: str | None = f"{PREFIX}/*") -> str:
    """A CodeBuild service role that may read the parameters under ``readable`` (None: none)."""
    iam = clients(aws).iam
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "codebuild.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    arn = iam.create_role(RoleName=name, Path="/service-role/", AssumeRolePolicyDocument=json.dumps(trust))
    if readable:
        grant = {
            "Effect": "Allow",
            "Action": "ssm:GetParameters",
            "Resource": f"arn:aws:ssm:*:*:parameter{readable}",
        }
        document = {"Version": "2012-10-17", "Statement": [grant]}
        iam.put_role_policy(RoleName=name, PolicyName="read", PolicyDocument=json.dumps(document))
    return str(arn["Role"]["Arn"])


def make(aws: Any, name: str = "images", environment: dict[str, Any] = ENVIRONMENT, **role_args: Any) -> str:
    return test_fixes_codebuild.make(aws, name, environment, role(aws, **role_args))


def project(aws: Any, name: str = "images") -> dict[str, Any]:
    return dict(clients(aws).codebuild.batch_get_projects(names=[name])["projects"][0])


def variables(aws: Any, name: str = "images") -> dict[str, tuple[str, str]]:
    listed = project(aws, name)["environment"]["environmentVariables"]
    return {v["name"]: (v["type"], v["value"]) for v in listed}


def parameters(aws: Any) -> dict[str, tuple[str, str]]:
    found = clients(aws).ssm.get_parameters_by_path(Path="/", Recursive=True, WithDecryption=True)
    return {p["Name"]: (p["Type"], p["Value"]) for p in found["Parameters"]}


def action(**params: Any) -> Any:
    playbook = registry().playbooks[CONTROL]
    return (
        playbook.build_action()
        if not params
        else type(playbook.build_action())(validate_params(ACTION, params))
    )


def fix(aws: Any, arn: str) -> tuple[Result, list[dict[str, Any]]]:
    """The fix, and the parameters of each UpdateProject it sent."""
    with parameters_sent(clients(aws).codebuild, "UpdateProject") as sent:
        result = remediate_resource(action(), clients(aws), arn)
    return result, sent


def names(project_name: str = "images") -> dict[str, str]:
    return {variable: f"{PREFIX}/{project_name}/{variable}" for variable in CREDENTIALS}


def test_the_seeded_project_is_fixed_within_the_permissions(aws: Any) -> None:
    arn = seed_one(aws, CONTROL, MEMBER_ACCOUNT, REGION).resource_id
    name = arn.rsplit("/", 1)[1]
    local.served_requests(clear=True)
    result, _ = fix(aws, arn)
    served = {f"{call['service']}:{call['action']}" for call in local.served_requests()}
    assert result.status == Status.REMEDIATED, result.message
    assert result.before == {PLAINTEXT: result.before[PLAINTEXT], STORED: {}}
    assert set(result.before[PLAINTEXT]) == set(CREDENTIALS)
    assert result.after == {PLAINTEXT: {}, STORED: names(name)}
    assert "rotate that access key" in result.caveat and result.caveat in result.message
    assert {n: t for n, (t, _) in parameters(aws).items()} == dict.fromkeys(
        names(name).values(), "SecureString"
    )
    permissions = set(action().permissions)
    assert served <= permissions
    assert {"iam:SimulatePrincipalPolicy", "ssm:PutParameter", "codebuild:UpdateProject"} <= served
    policies = iam_policy.render(iam_policy.member_policies(registry()), iam_policy.plain_values(Settings()))
    parameter = f"arn:aws:ssm:{REGION}:{MEMBER_ACCOUNT}:parameter{PREFIX}/{name}/AWS_ACCESS_KEY_ID"
    elsewhere = f"arn:aws:ssm:{REGION}:{MEMBER_ACCOUNT}:parameter/payments/db-password"
    for permission in ("ssm:GetParameter", "ssm:PutParameter"):
        assert _decision(policies, permission, parameter) == "Allow", permission
        assert _decision(policies, permission, elsewhere) == "implicit deny", permission
    [put] = [
        s for d in policies.values() for s in d["Statement"] if "ssm:PutParameter" in s.get("Action", ())
    ]
    assert put["Condition"] == {"StringNotEquals": {"ssm:Overwrite": "true"}}


def test_only_the_credentials_change_and_every_other_setting_is_kept(aws: Any) -> None:
    arn = make(aws)
    before = project(aws)
    result, sent = fix(aws, arn)
    assert result.status == Status.REMEDIATED, result.message
    moved = [
        {"name": v["name"], "value": names()[v["name"]], "type": "PARAMETER_STORE"}
        if v["name"] in CREDENTIALS
        else v
        for v in ENVIRONMENT["environmentVariables"]
    ]
    assert sent == [{"name": "images", "environment": {**ENVIRONMENT, "environmentVariables": moved}}]
    after = project(aws)
    assert after["environment"] == {**ENVIRONMENT, "environmentVariables": moved}
    for member in ("source", "artifacts", "serviceRole", "description", "timeoutInMinutes"):
        assert after[member] == before[member], member
    assert parameters(aws) == {
        names()["AWS_ACCESS_KEY_ID"]: ("SecureString", KEY_ID),
        names()["AWS_SECRET_ACCESS_KEY"]: ("SecureString", SECRET),
    }
    assert fix(aws, arn)[0].status == Status.ALREADY_COMPLIANT


def test_a_role_that_cannot_read_the_parameters_fails_and_nothing_is_made(aws: Any) -> None:
    arn = make(aws, readable="/other/*")
    with parameters_sent(clients(aws).ssm, "PutParameter") as put:
        result, sent = fix(aws, arn)
    assert (result.status, sent, put, parameters(aws)) == (Status.FAILED, [], [], {})
    role_arn = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/service-role/builder"
    assert f"service role {role_arn} may not read" in result.message
    assert "grant it ssm:GetParameters" in result.message and "nothing changed" in result.message
    assert variables(aws)["AWS_SECRET_ACCESS_KEY"] == ("PLAINTEXT", SECRET)


def test_an_empty_credential_is_refused_clearly_and_nothing_is_made(aws: Any) -> None:
    """Parameter Store takes no empty value: said so, not left to a client-side error."""
    variables_now = [
        {**v, "value": ""} if v["name"] == "AWS_ACCESS_KEY_ID" else v
        for v in ENVIRONMENT["environmentVariables"]
    ]
    arn = make(aws, environment={**ENVIRONMENT, "environmentVariables": variables_now})
    result, sent = fix(aws, arn)
    assert (result.status, sent, parameters(aws)) == (Status.FAILED, [], {})
    assert "AWS_ACCESS_KEY_ID is empty, and Parameter Store takes no empty value" in result.message


def test_a_parameter_holding_another_value_is_not_overwritten_and_nothing_changes(aws: Any) -> None:
    arn = make(aws)
    ssm = clients(aws).ssm
    ssm.put_parameter(Name=names()["AWS_SECRET_ACCESS_KEY"], Value="someone else's", Type="SecureString")
    with parameters_sent(ssm, "PutParameter") as put:
        result, sent = fix(aws, arn)
    assert (result.status, sent, put) == (Status.FAILED, [], [])
    assert (
        f"the parameter {names()['AWS_SECRET_ACCESS_KEY']} exists and holds another value" in result.message
    )
    assert parameters(aws) == {names()["AWS_SECRET_ACCESS_KEY"]: ("SecureString", "someone else's")}
    assert variables(aws)["AWS_ACCESS_KEY_ID"] == ("PLAINTEXT", KEY_ID)


def test_a_plain_string_parameter_with_the_same_value_is_not_taken(aws: Any) -> None:
    arn = make(aws)
    clients(aws).ssm.put_parameter(Name=names()["AWS_ACCESS_KEY_ID"], Value=KEY_ID, Type="String")
    result, sent = fix(aws, arn)
    assert (result.status, sent) == (Status.FAILED, [])
    assert "not as a SecureString" in result.message


def test_a_retry_uses_the_parameter_an_earlier_try_made(aws: Any) -> None:
    arn = make(aws)
    ssm = clients(aws).ssm
    ssm.put_parameter(Name=names()["AWS_ACCESS_KEY_ID"], Value=KEY_ID, Type="SecureString")
    with parameters_sent(ssm, "PutParameter") as put:
        result, _ = fix(aws, arn)
    assert result.status == Status.REMEDIATED, result.message
    assert [p["Name"] for p in put] == [names()["AWS_SECRET_ACCESS_KEY"]]
    assert put[0]["Overwrite"] is False
    assert variables(aws)["AWS_ACCESS_KEY_ID"] == ("PARAMETER_STORE", names()["AWS_ACCESS_KEY_ID"])


def test_a_value_changed_since_the_read_is_not_stored(aws: Any) -> None:
    arn = make(aws)
    fixer, codebuild = action(), clients(aws).codebuild
    state = fixer.read(clients(aws), arn)
    rotated = [
        {**v, "value": "AKIAZZZZROTATEDKEY02"} if v["name"] == "AWS_ACCESS_KEY_ID" else v
        for v in ENVIRONMENT["environmentVariables"]
    ]
    codebuild.update_project(name="images", environment={**ENVIRONMENT, "environmentVariables": rotated})
    with parameters_sent(codebuild, "UpdateProject") as sent, pytest.raises(ChangedMeanwhile):
        fixer.apply(clients(aws), arn, state, fixer.plan(state))
    assert (sent, parameters(aws)) == ([], {})
    # The runner reads and plans again: the value stored is the one the project holds now.
    result, _ = fix(aws, arn)
    assert result.status == Status.REMEDIATED, result.message
    assert parameters(aws)[names()["AWS_ACCESS_KEY_ID"]] == ("SecureString", "AKIAZZZZROTATEDKEY02")


def test_a_project_with_no_clear_text_credentials_is_compliant_with_one_read(aws: Any) -> None:
    stored = [OTHERS[0], {"name": "AWS_ACCESS_KEY_ID", "value": "/keys/id", "type": "PARAMETER_STORE"}]
    arn = make(aws, environment={**ENVIRONMENT, "environmentVariables": stored})
    local.served_requests(clear=True)
    result, sent = fix(aws, arn)
    assert (result.status, result.before, sent) == (Status.ALREADY_COMPLIANT, None, [])
    assert [call["action"] for call in local.served_requests()] == ["BatchGetProjects"]


def test_two_variables_of_one_credential_name_are_refused(aws: Any) -> None:
    twice = [
        *ENVIRONMENT["environmentVariables"],
        {"name": "AWS_SECRET_ACCESS_KEY", "value": "x", "type": "PLAINTEXT"},
    ]
    arn = make(aws, environment={**ENVIRONMENT, "environmentVariables": twice})
    result, sent = fix(aws, arn)
    assert (result.status, sent) == (Status.FAILED, [])
    assert "more than one variable named AWS_SECRET_ACCESS_KEY" in result.message


def test_revert_puts_the_values_back_in_clear_text_and_deletes_the_parameters(aws: Any) -> None:
    arn = make(aws)
    fixer = action()
    before = fixer.read(clients(aws), arn)
    assert fix(aws, arn)[0].status == Status.REMEDIATED
    fixer.check_revert(clients(aws), arn, before)
    assert fixer.revert(clients(aws), arn, before) == {key: before[key] for key in (PLAINTEXT, STORED)}
    assert fixer.read(clients(aws), arn) == before
    assert project(aws)["environment"] == ENVIRONMENT
    assert parameters(aws) == {}, "no copy of the key is left, and a later fix makes them anew"
    assert fix(aws, arn)[0].status == Status.REMEDIATED


def test_revert_leaves_a_variable_pointed_elsewhere_since(aws: Any) -> None:
    arn = make(aws)
    fixer = action()
    before = fixer.read(clients(aws), arn)
    assert fix(aws, arn)[0].status == Status.REMEDIATED
    elsewhere = [
        {**v, "value": "/vault/key-id"} if v["name"] == "AWS_ACCESS_KEY_ID" else v
        for v in project(aws)["environment"]["environmentVariables"]
    ]
    clients(aws).codebuild.update_project(
        name="images", environment={**ENVIRONMENT, "environmentVariables": elsewhere}
    )
    restorable = fixer.revert(clients(aws), arn, before)
    assert restorable == {
        PLAINTEXT: {"AWS_SECRET_ACCESS_KEY": before[PLAINTEXT]["AWS_SECRET_ACCESS_KEY"]},
        STORED: {"AWS_ACCESS_KEY_ID": "/vault/key-id"},
    }
    assert variables(aws)["AWS_ACCESS_KEY_ID"] == ("PARAMETER_STORE", "/vault/key-id")
    assert variables(aws)["AWS_SECRET_ACCESS_KEY"] == ("PLAINTEXT", SECRET)


def test_a_key_rotated_in_its_parameter_is_not_put_back_in_clear_text(aws: Any) -> None:
    arn = make(aws)
    fixer = action()
    before = fixer.read(clients(aws), arn)
    assert fix(aws, arn)[0].status == Status.REMEDIATED
    clients(aws).ssm.put_parameter(
        Name=names()["AWS_SECRET_ACCESS_KEY"], Value="a new secret", Type="SecureString", Overwrite=True
    )
    with parameters_sent(clients(aws).codebuild, "UpdateProject") as sent:
        with pytest.raises(NotReversible, match="holds another value than the fix moved"):
            fixer.check_revert(clients(aws), arn, before)
        with pytest.raises(NotReversible, match="holds another value than the fix moved"):
            fixer.revert(clients(aws), arn, before)
    assert sent == []
    clients(aws).ssm.delete_parameter(Name=names()["AWS_SECRET_ACCESS_KEY"])
    with pytest.raises(NotReversible, match="was deleted since"):
        fixer.revert(clients(aws), arn, before)


def test_no_credential_reaches_a_state_the_journal_the_notes_or_the_report(aws: Any, tmp_path: Path) -> None:
    arn = make(aws)
    playbooks = registry()
    root = journal_root(str(tmp_path / "audit"), "asr_sweep", "run-1")
    journal = AuditJournal(root, Origin("asr_sweep", "run-1", "b", 1, "s"))
    record = routing_record(CONTROL, arn, arn, MEMBER_ACCOUNT, REGION)
    [outcome] = run_batch([record], playbooks, aws, journal=journal)
    assert outcome.status == "REMEDIATED", outcome.message
    result = remediate_resource(action(), clients(aws), arn)  # a second fix's Result, compliant
    store = RunStore.for_run(str(tmp_path / "runs"), "asr_sweep", "run-1")
    store.write_json("ingest.json", {"began": "2026-01-01T00:00:00+00:00", "dry_run": False})
    store.write_lines("outcomes/CodeBuild.2-0000.jsonl", [outcome.to_dict()])
    report.write(store, "run-1")
    texts = [
        repr(result),
        repr(outcome),
        json.dumps(outcome.to_dict()),
        note_for(Outcome(**outcome.to_dict()), "run-1"),
    ]
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.suffix == ".html" for path in files) and any("audit" in path.parts for path in files)
    texts += [path.read_text() for path in files]
    for secret in (KEY_ID, SECRET):
        assert [text[:80] for text in texts if secret in text] == []
    assert "rotate that access key" in json.dumps(outcome.to_dict())


def test_the_playbook_runs_unattended_and_names_the_whole_arn() -> None:
    playbook = registry().playbooks[CONTROL]
    assert (playbook.disruptive, playbook.auto_remediate, playbook.parameters) == (
        False,
        True,
        {"parameter_prefix": PREFIX},
    )
    assert_extracted_id(CONTROL, f"{ARN}/images", f"{ARN}/images")
    assert_extracted_id(CONTROL, f"arn:aws:codebuild:{REGION}:{MEMBER_ACCOUNT}:build/images:0b4f", None)


@pytest.mark.parametrize(
    ("prefix", "valid"),
    [
        ("/asr/codebuild", True),
        ("/team.a/ci_secrets-1", True),
        ("/" + "/".join("l" * 13), True),
        ("/" + "/".join("l" * 14), False),  # with the project and the variable: 16 levels
        ("asr/codebuild", False),
        ("/asr/codebuild/", False),
        ("/asr//codebuild", False),
        ("/aws/codebuild", False),
        ("/SSM-params", False),
        ("/asr/code build", False),
        ("/asr/${AWS::AccountId}", False),
        ("/" + "p" * (PREFIX_MAX - 1), True),
        ("/" + "p" * PREFIX_MAX, False),
        ("/asr/codebuild\n", False),
    ],
)
def test_the_prefix_is_a_parameter_path_the_names_fit_under(prefix: str, valid: bool) -> None:
    if valid:
        assert validate_params(ACTION, {"parameter_prefix": prefix})["parameter_prefix"] == prefix
        longest = f"{prefix}/{'p' * 150}/AWS_SECRET_ACCESS_KEY"
        arn = f"arn:aws-us-gov:ssm:{'r' * 20}:123456789012:parameter{longest}"
        assert len(arn) <= 1011 and longest.count("/") <= 15, "AWS counts the ARN before the name"
    else:
        with pytest.raises(ActionError):
            validate_params(ACTION, {"parameter_prefix": prefix})
