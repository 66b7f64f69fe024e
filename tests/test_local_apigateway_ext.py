"""The stand-in's API Gateway extension: V2 UpdateStage, and execution logging only with a
CloudWatch Logs role API Gateway can assume, as AWS allows it."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
NO_ROLE = "CloudWatch Logs role ARN must be set in account settings to enable logging"
ROLE_REFUSED = "The role ARN does not have required permissions set to API Gateway"


@pytest.fixture
def clients(clean_aws: str) -> dict[str, Any]:
    return {
        name: boto3.client(name, endpoint_url=clean_aws, region_name="eu-west-1")
        for name in ("apigateway", "apigatewayv2", "iam")
    }


def refused(call: Any, message: str) -> None:
    with pytest.raises(ClientError) as error:
        call()
    assert error.value.response["Error"]["Code"] == "BadRequestException"
    assert error.value.response["Error"]["Message"] == message


def set_role(clients: dict[str, Any], arn: str) -> Any:
    return clients["apigateway"].update_account(
        patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": arn}]
    )


def role(clients: dict[str, Any], name: str, trust: dict[str, Any]) -> str:
    return str(
        clients["iam"].create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    )


def rest_stage(apigateway: Any) -> str:
    api = apigateway.create_rest_api(name="orders")
    apigateway.put_method(
        restApiId=api["id"], resourceId=api["rootResourceId"], httpMethod="GET", authorizationType="NONE"
    )
    apigateway.put_integration(
        restApiId=api["id"], resourceId=api["rootResourceId"], httpMethod="GET", type="MOCK"
    )
    apigateway.create_deployment(restApiId=api["id"], stageName="prod")
    return str(api["id"])


def websocket_stage(apigatewayv2: Any, **settings: Any) -> str:
    api = apigatewayv2.create_api(
        Name="chat", ProtocolType="WEBSOCKET", RouteSelectionExpression="$request.body.action"
    )["ApiId"]
    apigatewayv2.create_stage(ApiId=api, StageName="prod", **settings)
    return str(api)


def test_only_a_role_api_gateway_can_assume_is_set(clients: dict[str, Any]) -> None:
    other = {**TRUST, "Statement": [{**TRUST["Statement"][0], "Principal": {"Service": "ec2.amazonaws.com"}}]}
    refused(lambda: set_role(clients, role(clients, "ec2-only", other)), ROLE_REFUSED)
    refused(lambda: set_role(clients, "arn:aws:iam::123456789012:role/gone"), ROLE_REFUSED)
    assert clients["apigateway"].get_account().get("cloudwatchRoleArn") is None

    arn = role(clients, "api-logs", TRUST)
    assert set_role(clients, arn)["cloudwatchRoleArn"] == arn
    assert clients["apigateway"].get_account()["cloudwatchRoleArn"] == arn


def test_rest_logging_is_turned_on_only_with_the_accounts_role(clients: dict[str, Any]) -> None:
    apigateway = clients["apigateway"]
    api = rest_stage(apigateway)

    def log(level: str) -> Any:
        operation = {"op": "replace", "path": "/~1pets/GET/logging/loglevel", "value": level}
        return apigateway.update_stage(restApiId=api, stageName="prod", patchOperations=[operation])

    refused(lambda: log("INFO"), NO_ROLE)
    assert log("OFF")["methodSettings"]["~1pets/GET"]["loggingLevel"] == "OFF"  # off needs no role
    set_role(clients, role(clients, "api-logs", TRUST))
    assert log("INFO")["methodSettings"]["~1pets/GET"]["loggingLevel"] == "INFO"


def test_websocket_update_stage_merges_the_settings_given(clients: dict[str, Any]) -> None:
    apigatewayv2 = clients["apigatewayv2"]
    default = {"DataTraceEnabled": True, "DetailedMetricsEnabled": False, "LoggingLevel": "OFF"}
    routes = {"$connect": {"ThrottlingBurstLimit": 50}, "$default": {"DetailedMetricsEnabled": True}}
    api = websocket_stage(apigatewayv2, DefaultRouteSettings=default, RouteSettings=routes)

    apigatewayv2.update_stage(
        ApiId=api,
        StageName="prod",
        DefaultRouteSettings={"DetailedMetricsEnabled": True},
        RouteSettings={"$connect": {"LoggingLevel": "OFF"}, "$disconnect": {"ThrottlingRateLimit": 10.0}},
    )
    stage = apigatewayv2.get_stage(ApiId=api, StageName="prod")
    assert stage["DefaultRouteSettings"] == {**default, "DetailedMetricsEnabled": True}
    assert stage["RouteSettings"] == {
        "$connect": {"ThrottlingBurstLimit": 50, "LoggingLevel": "OFF"},
        "$default": {"DetailedMetricsEnabled": True},
        "$disconnect": {"ThrottlingRateLimit": 10.0},
    }
    apigatewayv2.update_stage(ApiId=api, StageName="prod")  # nothing given, nothing changed
    assert apigatewayv2.get_stage(ApiId=api, StageName="prod")["RouteSettings"] == stage["RouteSettings"]


def test_websocket_logging_is_turned_on_only_with_the_accounts_role(clients: dict[str, Any]) -> None:
    apigatewayv2 = clients["apigatewayv2"]
    api = websocket_stage(apigatewayv2)
    refused(
        lambda: apigatewayv2.update_stage(
            ApiId=api, StageName="prod", DefaultRouteSettings={"LoggingLevel": "ERROR"}
        ),
        NO_ROLE,
    )
    refused(
        lambda: apigatewayv2.update_stage(
            ApiId=api, StageName="prod", RouteSettings={"$connect": {"LoggingLevel": "INFO"}}
        ),
        NO_ROLE,
    )
    assert (
        apigatewayv2.get_stage(ApiId=api, StageName="prod")["DefaultRouteSettings"]["LoggingLevel"] == "OFF"
    )
    set_role(clients, role(clients, "api-logs", TRUST))
    answer = apigatewayv2.update_stage(
        ApiId=api, StageName="prod", DefaultRouteSettings={"LoggingLevel": "ERROR"}
    )
    assert answer["DefaultRouteSettings"]["LoggingLevel"] == "ERROR"


def test_a_missing_websocket_stage_is_not_found(clients: dict[str, Any]) -> None:
    api = websocket_stage(clients["apigatewayv2"])
    with pytest.raises(ClientError) as error:
        clients["apigatewayv2"].update_stage(ApiId=api, StageName="gone", DefaultRouteSettings={})
    assert error.value.response["Error"]["Code"] == "NotFoundException"
