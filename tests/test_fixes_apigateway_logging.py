"""APIGateway.1: execution logging on for REST and WebSocket stages, through the account and
Region's CloudWatch Logs role (kept when set, else the one the member-role stack made)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import botocore.session
import pytest
from helpers import Refusals, iam_writes
from test_fixes_data import parameters_sent

import asr.actions
from asr import local
from asr.aws import Clients
from asr.findings import parse_finding
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import Seeded, finding, seed_one
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource

REGION = "us-east-1"
ROLE = "asr-service-apigateway-logs"
ROLE_ARN = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/{ROLE}"
POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
ALL = {"op": "replace", "path": "/*/*/logging/loglevel"}


def fix(aws: Any, resource_arn: str, **params: Any) -> Result:
    """Run APIGateway.1's playbook, with these action parameters, on the stage a finding names."""
    playbook = registry().playbooks["APIGateway.1"]
    resource_id = playbook.extract_resource_id(resource_arn, MEMBER_ACCOUNT)
    return remediate_resource(
        playbook.build_action(params), Clients(aws, MEMBER_ACCOUNT, REGION), resource_id
    )


def seeded(aws: Any) -> tuple[str, str]:
    """A new REST stage that does not log: its ARN and API id."""
    arn = seed_one(aws, "APIGateway.1", MEMBER_ACCOUNT, REGION).resource_id
    return arn, arn.split("/restapis/")[1].split("/")[0]


def rest_settings(clients: Clients, api: str) -> dict[str, Any]:
    return clients.apigateway.get_stage(restApiId=api, stageName="prod")["methodSettings"]


def rest_stage(clients: Clients, **levels: str) -> tuple[str, str]:
    """A REST ``prod`` stage whose methods (``*/*``, ``~1pets/GET``...) log at these levels
    and keep their metrics on; its ARN and API id."""
    apigateway = clients.apigateway
    created = apigateway.create_rest_api(name="orders")
    api, root = created["id"], created["rootResourceId"]
    apigateway.put_method(restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigateway.put_integration(restApiId=api, resourceId=root, httpMethod="GET", type="MOCK")
    apigateway.create_deployment(restApiId=api, stageName="prod")
    clients.apigateway.update_account(
        patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": own_role(clients)}]
    )
    operations = [
        {"op": "replace", "path": f"/{method}/{setting}", "value": value}
        for method, level in levels.items()
        for setting, value in (("logging/loglevel", level), ("metrics/enabled", "true"))
    ]
    if operations:
        clients.apigateway.update_stage(restApiId=api, stageName="prod", patchOperations=operations)
    return f"arn:aws:apigateway:{REGION}::/restapis/{api}/stages/prod", api


def own_role(clients: Clients, name: str = "api-logs") -> str:
    """The account's own CloudWatch Logs role for API Gateway (made once)."""
    try:
        return str(clients.iam.get_role(RoleName=name)["Role"]["Arn"])
    except clients.iam.exceptions.NoSuchEntityException:
        return str(
            clients.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        )


def websocket_stage(clients: Clients, protocol: str = "WEBSOCKET", **settings: Any) -> tuple[str, str]:
    """A ``prod`` stage of a new API with these stage settings; its ARN and API id."""
    api = clients.apigatewayv2.create_api(
        Name="chat", ProtocolType=protocol, RouteSelectionExpression="$request.body.action"
    )["ApiId"]
    clients.apigatewayv2.create_stage(ApiId=api, StageName="prod", **settings)
    return f"arn:aws:apigateway:{REGION}::/apis/{api}/stages/prod", api


def served_permissions() -> set[str]:
    """The IAM actions of the API Gateway and IAM calls the stand-in served: API Gateway's are
    named by HTTP method (``apigateway:GET``), for REST and V2 APIs alike."""
    models = botocore.session.get_session()
    names = set()
    for call in local.served_requests():
        if call["service"] in ("apigateway", "apigatewayv2"):
            method = models.get_service_model(call["service"]).operation_model(call["action"]).http["method"]
            names.add(f"apigateway:{method}")
        elif call["service"] == "iam":
            names.add(f"iam:{call['action']}")
    return names


def test_logging_is_turned_on_through_the_stacks_role(aws: Any) -> None:
    """The stack's role, trusted by API Gateway and holding the AWS managed policy, is set once
    as the account and Region's (IAM only read); a second stage finds it set. Only the
    stage-wide level is sent
    (metrics stay on), and every call is one the action declares."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    (first, first_api), (second, second_api) = seeded(aws), seeded(aws)
    local.served_requests(clear=True)

    with parameters_sent(clients.apigateway, "UpdateStage") as sent:
        results = [fix(aws, first), fix(aws, second)]
    assert [(r.status, r.before, r.after) for r in results] == [
        (Status.REMEDIATED, {"LoggingLevel": "OFF"}, {"LoggingLevel": "ERROR"})
    ] * 2, results
    assert sent == [
        {"restApiId": api, "stageName": "prod", "patchOperations": [{**ALL, "value": "ERROR"}]}
        for api in (first_api, second_api)
    ]
    for api in (first_api, second_api):
        settings = rest_settings(clients, api)["*/*"]
        assert (settings["loggingLevel"], settings["metricsEnabled"]) == ("ERROR", True)
    calls = [f"{c['service']}:{c['action']}" for c in local.served_requests()]
    assert iam_writes(calls) == [] and calls.count("apigateway:UpdateAccount") == 1
    assert served_permissions() <= set(registry().playbooks["APIGateway.1"].build_action().permissions)

    assert clients.apigateway.get_account()["cloudwatchRoleArn"] == ROLE_ARN
    role = clients.iam.get_role(RoleName=ROLE)["Role"]
    assert role["AssumeRolePolicyDocument"] == TRUST
    attached = clients.iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [POLICY_ARN]


def test_the_accounts_own_role_is_kept_and_no_role_is_made(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn, api = rest_stage(clients)
    local.served_requests(clear=True)
    assert fix(aws, arn).status == Status.REMEDIATED
    calls = [f"{c['service']}:{c['action']}" for c in local.served_requests()]
    assert calls == [
        "apigateway:GetStage",
        "apigateway:GetAccount",
        "apigateway:UpdateStage",
        "apigateway:GetStage",
    ]
    assert (
        clients.apigateway.get_account()["cloudwatchRoleArn"]
        == f"arn:aws:iam::{MEMBER_ACCOUNT}:role/api-logs"
    )
    assert [r["RoleName"] for r in clients.iam.list_roles()["Roles"]] == ["api-logs"]
    assert rest_settings(clients, api)["*/*"]["loggingLevel"] == "ERROR"


@pytest.mark.parametrize(
    ("params", "changed"),
    [
        ({}, {"~1pets/GET": "ERROR"}),
        ({"level": "INFO"}, {"~1pets/GET": "INFO"}),
        ({"required_level": "ERROR"}, {"*/*": "ERROR", "~1pets/GET": "ERROR", "~1pets/POST": "ERROR"}),
    ],
    ids=["any-level-passes", "level-for-what-does-not-log", "required-level"],
)
def test_method_overrides_that_do_not_pass_get_the_level_and_the_others_are_kept(
    aws: Any, params: dict[str, str], changed: dict[str, str]
) -> None:
    """A method's own settings replace the stage's for it: one that logs nothing is fixed too.
    INFO passes unless Security Hub asks for ERROR; other settings are never sent."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    levels = {"*/*": "INFO", "~1pets/GET": "OFF", "~1pets/POST": "INFO", "~1pets/PUT": "ERROR"}
    arn, api = rest_stage(clients, **levels)
    with parameters_sent(clients.apigateway, "UpdateStage") as calls:
        result = fix(aws, arn, **params)
    assert result.status == Status.REMEDIATED, result.message
    assert calls[0]["patchOperations"] == [
        {"op": "replace", "path": f"/{method}/logging/loglevel", "value": level}
        for method, level in changed.items()
    ]
    settings = rest_settings(clients, api)
    assert {method: s["loggingLevel"] for method, s in settings.items()} == {**levels, **changed}
    assert all(s["metricsEnabled"] for s in settings.values())


@pytest.mark.parametrize(
    ("levels", "params"),
    [
        ({"*/*": "ERROR"}, {}),
        ({"*/*": "INFO", "~1pets/GET": "ERROR"}, {}),
        ({"*/*": "INFO"}, {"required_level": "INFO", "level": "ERROR"}),
    ],
)
def test_a_stage_that_logs_is_compliant_and_only_read(
    aws: Any, levels: dict[str, str], params: dict[str, str]
) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn, _ = rest_stage(clients, **levels)
    local.served_requests(clear=True)
    assert fix(aws, arn, **params).status == Status.ALREADY_COMPLIANT
    assert [c["action"] for c in local.served_requests()] == ["GetStage"]


def test_the_required_level_comes_from_the_control_parameter(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn, api = rest_stage(clients, **{"*/*": "ERROR"})
    raw = finding(Seeded("APIGateway.1", MEMBER_ACCOUNT, REGION, "AwsApiGatewayStage", arn))
    raw["Compliance"]["SecurityControlParameters"] = [{"Name": "loggingLevel", "Value": ["INFO"]}]
    record = parse_finding(raw, registry())
    assert (record.resource_id, record.parameters) == (
        f"/restapis/{api}/stages/prod",
        {"required_level": "INFO"},
    )
    result = fix(aws, arn, **record.parameters)
    assert (result.status, result.after) == (Status.REMEDIATED, {"LoggingLevel": "INFO"}), result.message


@pytest.mark.usefixtures("member_stack")
def test_a_websocket_stage_gets_the_level_and_keeps_its_other_route_settings(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    default = {"DataTraceEnabled": True, "DetailedMetricsEnabled": False, "LoggingLevel": "OFF"}
    routes = {
        "$connect": {"DetailedMetricsEnabled": True, "ThrottlingBurstLimit": 50},
        "$default": {"LoggingLevel": "INFO"},
    }
    arn, api = websocket_stage(clients, DefaultRouteSettings=default, RouteSettings=routes)
    assert registry().playbooks["APIGateway.1"].extract_resource_id(arn, MEMBER_ACCOUNT) == (
        f"/apis/{api}/stages/prod"
    )
    local.served_requests(clear=True)
    with parameters_sent(clients.apigatewayv2, "UpdateStage") as sent:
        result = fix(aws, arn)
    assert (result.status, result.before, result.after) == (
        Status.REMEDIATED,
        {"LoggingLevel": "OFF", "OverrideLoggingLevels": {"$connect": "OFF", "$default": "INFO"}},
        {"LoggingLevel": "ERROR", "OverrideLoggingLevels": {"$connect": "ERROR", "$default": "INFO"}},
    ), result.message
    fixed_default = {**default, "LoggingLevel": "ERROR"}
    fixed_connect = {**routes["$connect"], "LoggingLevel": "ERROR"}
    assert sent == [
        {
            "ApiId": api,
            "StageName": "prod",
            "DefaultRouteSettings": fixed_default,
            "RouteSettings": {"$connect": fixed_connect},
        }
    ]
    stage = clients.apigatewayv2.get_stage(ApiId=api, StageName="prod")
    assert stage["DefaultRouteSettings"] == fixed_default
    assert stage["RouteSettings"] == {**routes, "$connect": fixed_connect}
    assert clients.apigateway.get_account()["cloudwatchRoleArn"] == ROLE_ARN
    assert served_permissions() <= set(registry().playbooks["APIGateway.1"].build_action().permissions)


def test_an_http_api_stage_is_refused_and_nothing_is_written(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn, api = websocket_stage(clients, protocol="HTTP")
    local.served_requests(clear=True)
    result = fix(aws, arn)
    assert result.status == Status.FAILED
    assert f"/apis/{api}/stages/prod is a stage of an HTTP API, which has no execution logging" in (
        result.message
    )
    assert [c["action"] for c in local.served_requests()] == ["GetApi"]


def test_a_missing_stage_fails_with_the_aws_reason_and_makes_no_role(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    api = clients.apigateway.create_rest_api(name="orders")["id"]
    result = fix(aws, f"arn:aws:apigateway:{REGION}::/restapis/{api}/stages/gone")
    assert result.status == Status.FAILED
    assert result.message.startswith("NotFoundException")
    assert clients.iam.list_roles()["Roles"] == []


@pytest.mark.parametrize(
    ("resource_id", "problem"),
    [
        ("/restapis/a1b2c3/resources/x", "is not a REST API stage"),
        ("/vpclinks/a1b2c3", "is not a REST or WebSocket API stage"),
    ],
)
def test_an_id_that_is_no_stage_is_refused_by_name(resource_id: str, problem: str) -> None:
    action = registry().playbooks["APIGateway.1"].build_action()
    with pytest.raises(ValueError, match=problem):
        action.read(None, resource_id)  # type: ignore[arg-type]


def test_a_role_made_lately_is_waited_for_and_an_old_one_is_not(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """API Gateway refuses a role IAM made a moment ago: that refusal is tried again. An old
    role's refusal, or another error, stands."""
    monkeypatch.setattr(asr.actions, "ROLE_PROPAGATION_DELAYS", (0.0, 0.0))
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    refusing = Refusals(clients.apigateway, "UpdateAccount")
    unready = {
        "Code": "BadRequestException",
        "Message": "The role ARN does not have required permissions set to API Gateway",
    }

    def fixed(wanted: Status, calls_wanted: int, *refused: dict[str, str]) -> None:
        # The account and Region forget the role the fix before set.
        clients.apigateway.update_account(
            patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": ""}]
        )
        refusing.next(*refused)
        result = fix(aws, seeded(aws)[0])
        assert (result.status, refusing.calls) == (wanted, calls_wanted), result.message

    fixed(Status.REMEDIATED, 2, unready)  # the stack made the role moments ago: refused once, then set
    fixed(Status.REMEDIATED, 2, unready)  # made moments ago by the fix before
    fixed(
        Status.FAILED, 1, {"Code": "BadRequestException", "Message": "Invalid ARN specified in the request"}
    )
    monkeypatch.setattr(asr.actions, "NEW_ROLE_AGE", datetime.timedelta(0))
    fixed(Status.FAILED, 1, unready)  # an old role's refusal stands


def test_revert_puts_the_levels_back_and_leaves_the_role_and_its_setting(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn, api = seeded(aws)
    action = registry().playbooks["APIGateway.1"].build_action()
    resource_id = f"/restapis/{api}/stages/prod"
    before = action.read(clients, resource_id)
    assert fix(aws, arn).status == Status.REMEDIATED

    action.revert(clients, resource_id, before)
    assert action.read(clients, resource_id) == before == {"LoggingLevel": "OFF", "OverrideLoggingLevels": {}}
    assert rest_settings(clients, api)["*/*"]["metricsEnabled"] is True
    assert clients.apigateway.get_account()["cloudwatchRoleArn"] == ROLE_ARN
    assert clients.iam.get_role(RoleName=ROLE)["Role"]["Arn"] == ROLE_ARN


def test_revert_keeps_a_stage_level_the_fix_did_not_change(aws: Any) -> None:
    """The fix changed a method's override only; the owner lowers the stage's level after it
    (to cut CloudWatch's cost): the revert puts the override back and keeps the stage's."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn, api = rest_stage(clients, **{"*/*": "INFO", "~1pets/GET": "OFF"})
    action = registry().playbooks["APIGateway.1"].build_action()
    resource_id = f"/restapis/{api}/stages/prod"
    before = action.read(clients, resource_id)
    assert fix(aws, arn).status == Status.REMEDIATED
    clients.apigateway.update_stage(
        restApiId=api, stageName="prod", patchOperations=[ALL | {"value": "ERROR"}]
    )

    action.revert(clients, resource_id, before)
    assert action.read(clients, resource_id) == {
        "LoggingLevel": "ERROR",
        "OverrideLoggingLevels": {"~1pets/GET": "OFF"},
    }


def test_revert_keeps_a_method_level_the_fix_did_not_change(aws: Any) -> None:
    """The fix raised one method's override and kept another's (INFO passes); the owner then
    lowers the kept one: the revert puts back only the one the fix changed."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn, api = rest_stage(clients, **{"*/*": "INFO", "~1pets/GET": "OFF", "~1/GET": "INFO"})
    action = registry().playbooks["APIGateway.1"].build_action()
    resource_id = f"/restapis/{api}/stages/prod"
    before = action.read(clients, resource_id)
    assert fix(aws, arn).status == Status.REMEDIATED
    clients.apigateway.update_stage(
        restApiId=api,
        stageName="prod",
        patchOperations=[{"op": "replace", "path": "/~1/GET/logging/loglevel", "value": "ERROR"}],
    )

    action.revert(clients, resource_id, before)
    assert action.read(clients, resource_id) == {
        "LoggingLevel": "INFO",
        "OverrideLoggingLevels": {"~1pets/GET": "OFF", "~1/GET": "ERROR"},
    }


@pytest.mark.usefixtures("member_stack")
def test_revert_of_a_websocket_stage_puts_each_level_back(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    routes = {"$connect": {"LoggingLevel": "INFO"}, "$disconnect": {"LoggingLevel": "OFF"}}
    _, api = websocket_stage(clients, RouteSettings=routes)
    action = registry().playbooks["APIGateway.1"].build_action({"required_level": "ERROR"})
    resource_id = f"/apis/{api}/stages/prod"
    before = action.read(clients, resource_id)
    result = remediate_resource(action, clients, resource_id)
    assert result.after == {
        "LoggingLevel": "ERROR",
        "OverrideLoggingLevels": {"$connect": "ERROR", "$disconnect": "ERROR"},
    }, result.message

    action.revert(clients, resource_id, before)
    assert action.read(clients, resource_id) == before
    assert clients.apigatewayv2.get_stage(ApiId=api, StageName="prod")["RouteSettings"] == routes
