"""API Gateway misconfigurations."""

from __future__ import annotations

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder


@seeder("APIGateway.5")
def stage_caching_unencrypted(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A REST API whose ``prod`` stage caches every method's responses without encryption."""
    apigateway = aws.client("apigateway", account, region)
    api = apigateway.create_rest_api(name=f"asr-seed-api-{n}")
    root = api["rootResourceId"]
    apigateway.put_method(restApiId=api["id"], resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigateway.put_integration(restApiId=api["id"], resourceId=root, httpMethod="GET", type="MOCK")
    apigateway.create_deployment(restApiId=api["id"], stageName="prod")
    apigateway.update_stage(
        restApiId=api["id"],
        stageName="prod",
        patchOperations=[
            {"op": "replace", "path": "/cacheClusterEnabled", "value": "true"},
            {"op": "replace", "path": "/*/*/caching/enabled", "value": "true"},
            {"op": "replace", "path": "/*/*/caching/dataEncrypted", "value": "false"},
        ],
    )
    arn = f"arn:aws:apigateway:{region}::/restapis/{api['id']}/stages/prod"
    return Seeded(control_id, account, region, "AwsApiGatewayStage", arn)


@seeder("APIGateway.1")
def stage_without_execution_logging(
    aws: AwsContext, control_id: str, account: str, region: str, n: int
) -> Seeded:
    """A REST API whose ``prod`` stage logs nothing of its execution, with metrics on for all methods."""
    apigateway = aws.client("apigateway", account, region)
    api = apigateway.create_rest_api(name=f"asr-seed-logging-api-{n}")
    root = api["rootResourceId"]
    apigateway.put_method(restApiId=api["id"], resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigateway.put_integration(restApiId=api["id"], resourceId=root, httpMethod="GET", type="MOCK")
    apigateway.create_deployment(restApiId=api["id"], stageName="prod")
    apigateway.update_stage(
        restApiId=api["id"],
        stageName="prod",
        patchOperations=[{"op": "replace", "path": "/*/*/metrics/enabled", "value": "true"}],
    )
    arn = f"arn:aws:apigateway:{region}::/restapis/{api['id']}/stages/prod"
    return Seeded(control_id, account, region, "AwsApiGatewayStage", arn)
