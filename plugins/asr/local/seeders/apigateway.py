"""API Gateway misconfigurations: a REST API whose ``prod`` stage is wrong in one setting."""

from __future__ import annotations

from typing import Any

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder


def _prod_stage(apigateway: Any, name: str, region: str, patches: list[dict[str, str]]) -> str:
    """A REST API with one mock GET method, deployed to a ``prod`` stage with these patches;
    the stage's ARN."""
    api = apigateway.create_rest_api(name=name)
    root = api["rootResourceId"]
    apigateway.put_method(restApiId=api["id"], resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigateway.put_integration(restApiId=api["id"], resourceId=root, httpMethod="GET", type="MOCK")
    apigateway.create_deployment(restApiId=api["id"], stageName="prod")
    apigateway.update_stage(restApiId=api["id"], stageName="prod", patchOperations=patches)
    return f"arn:aws:apigateway:{region}::/restapis/{api['id']}/stages/prod"


@seeder("APIGateway.5")
def stage_caching_unencrypted(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """Every method's responses cached without encryption."""
    patches = [
        {"op": "replace", "path": "/cacheClusterEnabled", "value": "true"},
        {"op": "replace", "path": "/*/*/caching/enabled", "value": "true"},
        {"op": "replace", "path": "/*/*/caching/dataEncrypted", "value": "false"},
    ]
    arn = _prod_stage(aws.client("apigateway", account, region), f"asr-seed-api-{n}", region, patches)
    return Seeded(control_id, account, region, "AwsApiGatewayStage", arn)


@seeder("APIGateway.1")
def stage_without_execution_logging(
    aws: AwsContext, control_id: str, account: str, region: str, n: int
) -> Seeded:
    """No execution logging, with metrics on for all methods."""
    patches = [{"op": "replace", "path": "/*/*/metrics/enabled", "value": "true"}]
    apigateway = aws.client("apigateway", account, region)
    arn = _prod_stage(apigateway, f"asr-seed-logging-api-{n}", region, patches)
    return Seeded(control_id, account, region, "AwsApiGatewayStage", arn)
