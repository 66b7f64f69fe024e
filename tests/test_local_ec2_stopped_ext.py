"""The stand-in's stop times: GMT as AWS writes them, and backdated by ``asr-local:stopped-at``."""

from __future__ import annotations

import re

import boto3

REGION = "us-east-1"
TAG = "asr-local:stopped-at"


def test_a_tagged_stopped_instance_reads_as_stopped_at_the_tag_s_time(clean_aws: str) -> None:
    ec2 = boto3.client("ec2", endpoint_url=clean_aws, region_name=REGION)
    instances = [
        i["InstanceId"]
        for i in ec2.run_instances(ImageId="ami-03cf127a", MinCount=4, MaxCount=4)["Instances"]
    ]
    dated, zoned, garbled, untagged = instances

    def reasons() -> dict[str, str]:
        pages = ec2.get_paginator("describe_instances").paginate(InstanceIds=instances)
        return {
            i["InstanceId"]: i["StateTransitionReason"]
            for page in pages
            for reservation in page["Reservations"]
            for i in reservation["Instances"]
        }

    ec2.create_tags(Resources=[dated], Tags=[{"Key": TAG, "Value": "2025-01-31"}])
    assert reasons()[dated] == "", "a running instance's reason is moto's: the tag dates a stop only"

    ec2.stop_instances(InstanceIds=instances)
    ec2.create_tags(Resources=[zoned], Tags=[{"Key": TAG, "Value": "2025-01-31T08:00:00+02:00"}])
    ec2.create_tags(Resources=[garbled], Tags=[{"Key": TAG, "Value": "long ago"}])
    found = reasons()
    assert found[dated] == "User initiated (2025-01-31 00:00:00 GMT)"
    assert found[zoned] == "User initiated (2025-01-31 06:00:00 GMT)"
    assert found[garbled] == ""
    assert re.fullmatch(r"User initiated \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\)", found[untagged])

    ec2.start_instances(InstanceIds=[dated])
    ec2.terminate_instances(InstanceIds=[zoned])
    found = reasons()
    assert found[dated] == ""
    assert re.fullmatch(r"User initiated \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\)", found[zoned])
    assert not found[zoned].startswith("User initiated (2025-"), "a termination is dated by moto"
