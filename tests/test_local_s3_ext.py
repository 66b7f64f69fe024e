"""The stand-in's S3 extension: lifecycle object-size filters read back as AWS returns them."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

BUCKET = "asr-ext-lifecycle"


@pytest.fixture
def s3(clean_aws: str):  # type: ignore[no-untyped-def]
    client = boto3.client("s3", endpoint_url=clean_aws, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


def put_and_get(s3: Any, *rules: dict[str, Any]) -> list[dict[str, Any]]:
    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": list(rules)})
    return s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]


def rule(rule_id: str, lifecycle_filter: dict[str, Any]) -> dict[str, Any]:
    return {
        "ID": rule_id,
        "Status": "Enabled",
        "Filter": lifecycle_filter,
        "Transitions": [{"Days": 90, "StorageClass": "INTELLIGENT_TIERING"}],
    }


def test_size_filters_read_back_at_top_level_and_in_and(s3) -> None:
    rules = put_and_get(
        s3,
        rule("large", {"ObjectSizeGreaterThan": 10737418240}),
        rule("mid", {"And": {"Prefix": "logs/", "ObjectSizeGreaterThan": 1024, "ObjectSizeLessThan": 4096}}),
        rule("all", {}),
    )
    filters = {r["ID"]: r["Filter"] for r in rules}
    assert filters["large"] == {"ObjectSizeGreaterThan": 10737418240}
    assert filters["mid"] == {
        "And": {"Prefix": "logs/", "ObjectSizeGreaterThan": 1024, "ObjectSizeLessThan": 4096}
    }
    assert filters["all"] == {}


def test_replacing_the_rules_forgets_old_sizes(s3) -> None:
    put_and_get(s3, rule("large", {"ObjectSizeGreaterThan": 5}))
    (only,) = put_and_get(s3, rule("large", {"Prefix": "tmp/"}))
    assert only["Filter"] == {"Prefix": "tmp/"}


def test_several_conditions_outside_and_are_refused(s3) -> None:
    with pytest.raises(ClientError) as raised:
        put_and_get(s3, rule("bad", {"Prefix": "a/", "ObjectSizeGreaterThan": 5}))
    assert raised.value.response["Error"]["Code"] == "MalformedXML"


def test_rules_of_the_old_and_new_forms_together_are_refused(s3) -> None:
    old = {"ID": "old", "Prefix": "tmp/", "Status": "Enabled", "Expiration": {"Days": 30}}
    new = {"ID": "new", "Filter": {"Prefix": "log/"}, "Status": "Enabled", "Expiration": {"Days": 30}}
    with pytest.raises(ClientError, match="Filter element can only be used in Lifecycle V2"):
        s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [old, new]})
    for rules in ([old], [new]):
        s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": rules})


def test_the_default_minimum_object_size_reads_back_as_put(s3) -> None:
    def default_after(**put: Any) -> str:
        s3.put_bucket_lifecycle_configuration(
            Bucket=BUCKET, LifecycleConfiguration={"Rules": [rule("all", {})]}, **put
        )
        return str(s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["TransitionDefaultMinimumObjectSize"])

    assert (
        default_after(TransitionDefaultMinimumObjectSize="varies_by_storage_class")
        == "varies_by_storage_class"
    )
    assert default_after() == "all_storage_classes_128K", "AWS's default when the put names none"
