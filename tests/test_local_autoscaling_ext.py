"""The stand-in's Auto Scaling extension: at most 50 group names a describe, as AWS allows."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError


def test_more_than_fifty_group_names_are_refused(clean_aws: str) -> None:
    autoscaling = boto3.client("autoscaling", endpoint_url=clean_aws, region_name="us-east-1")
    names = [f"group-{n}" for n in range(51)]
    assert (
        autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=names[:50])["AutoScalingGroups"] == []
    )
    with pytest.raises(ClientError) as refused:
        autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=names)
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationError" and "limited to 50" in error["Message"]
