"""Redshift.4: audit logging turned on, to CloudWatch Logs or to an existing S3 bucket."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from test_fixes_data import assert_permissions_cover_served_calls, parameters_sent
from test_fixes_redshift import ARN, REGION, make_cluster

from asr import local
from asr.actions import ActionError
from asr.aws import Clients
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import seed_one
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource

OFF = {"LoggingEnabled": False, "LogDestinationType": None}
TO_CLOUDWATCH = {"LogDestinationType": "cloudwatch", "LogExports": ["connectionlog", "userlog"]}


def fix(aws: Any, resource_arn: str, **params: Any) -> Result:
    """Run the Redshift.4 playbook (with ``params`` over its own) on the cluster its finding names."""
    playbook = registry().playbooks["Redshift.4"]
    resource_id = playbook.extract_resource_id(resource_arn, MEMBER_ACCOUNT)
    return remediate_resource(
        playbook.build_action(params), Clients(aws, MEMBER_ACCOUNT, REGION), resource_id
    )


def logging_of(clients: Clients, name: str) -> dict[str, Any]:
    status = clients.redshift.describe_logging_status(ClusterIdentifier=name)
    keys = ("LoggingEnabled", "LogDestinationType", "BucketName", "S3KeyPrefix", "LogExports")
    return {key: status[key] for key in keys if status.get(key) not in (None, "", [])}


def log_bucket(clients: Clients, name: str, policy: bool = True) -> None:
    """A bucket in the cluster's Region; with ``policy``, one Redshift may write its logs to."""
    clients.s3.create_bucket(Bucket=name)
    if policy:
        statement = {
            "Effect": "Allow",
            "Principal": {"Service": "redshift.amazonaws.com"},
            "Action": ["s3:PutObject", "s3:GetBucketAcl"],
            "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
        }
        clients.s3.put_bucket_policy(
            Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]})
        )


def test_fix_sends_cloudwatch_logging_within_its_permissions(aws: Any) -> None:
    arn = seed_one(aws, "Redshift.4", MEMBER_ACCOUNT, REGION).resource_id
    name = arn.rsplit(":", 1)[1]
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    local.served_requests(clear=True)
    with parameters_sent(clients.redshift, "EnableLogging") as sent:
        result = fix(aws, arn)
    assert (result.status, result.before, result.after) == (
        Status.REMEDIATED,
        OFF,
        {"LoggingEnabled": True, "LogDestinationType": "cloudwatch"},
    ), result.message
    assert result.message == "enabled audit logging on the Redshift cluster, to cloudwatch"
    assert sent == [{"ClusterIdentifier": name, **TO_CLOUDWATCH}]
    assert logging_of(clients, name) == {"LoggingEnabled": True, **TO_CLOUDWATCH}
    assert_permissions_cover_served_calls("Redshift.4")


def test_the_log_types_are_a_parameter(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_cluster(clients, "orders")
    result = fix(aws, arn, log_exports=["connectionlog", "userlog", "useractivitylog"])
    assert result.status == Status.REMEDIATED, result.message
    assert logging_of(clients, "orders")["LogExports"] == ["connectionlog", "userlog", "useractivitylog"]


@pytest.mark.parametrize(
    "logging",
    [
        {"LogDestinationType": "cloudwatch", "LogExports": ["useractivitylog"]},
        {"LogDestinationType": "s3", "BucketName": "audit", "S3KeyPrefix": "orders/"},
        {"BucketName": "audit"},
    ],
    ids=["cloudwatch-other-logs", "s3-with-prefix", "s3-untyped"],
)
def test_a_cluster_that_logs_anywhere_is_left_alone(aws: Any, logging: dict[str, Any]) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_cluster(clients, "orders")
    log_bucket(clients, "audit")
    clients.redshift.enable_logging(ClusterIdentifier="orders", **logging)
    before = logging_of(clients, "orders")
    with parameters_sent(clients.redshift, "EnableLogging") as sent:
        result = fix(aws, arn)
    assert result.status == Status.ALREADY_COMPLIANT
    assert sent == []
    assert logging_of(clients, "orders") == before


def test_s3_destination_fills_in_the_bucket_name_and_sends_the_prefix(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_cluster(clients, "orders")
    bucket = f"audit-{MEMBER_ACCOUNT}-{REGION}"
    log_bucket(clients, bucket)
    with parameters_sent(clients.redshift, "EnableLogging") as sent:
        result = fix(
            aws, arn, destination="s3", bucket_name="audit-{account_id}-{region}", prefix="redshift/"
        )
    assert (result.status, result.after) == (
        Status.REMEDIATED,
        {"LoggingEnabled": True, "LogDestinationType": "s3"},
    ), result.message
    assert result.message == "enabled audit logging on the Redshift cluster, to s3"
    sent_s3 = {"LogDestinationType": "s3", "BucketName": bucket, "S3KeyPrefix": "redshift/"}
    assert sent == [{"ClusterIdentifier": "orders", **sent_s3, "LogExports": ["connectionlog", "userlog"]}]
    assert logging_of(clients, "orders") == {
        "LoggingEnabled": True,
        **sent_s3,
        "LogExports": ["connectionlog", "userlog"],
    }


@pytest.mark.parametrize(
    ("policy", "lacking"),
    [
        (None, "it does not exist (this fix makes no bucket"),
        (
            False,
            "its bucket policy does not let the service principal redshift.amazonaws.com "
            "s3:PutObject and s3:GetBucketAcl",
        ),
    ],
    ids=["missing", "no-policy"],
)
def test_a_bucket_redshift_cannot_write_to_is_refused_and_left_as_it_is(
    aws: Any, policy: bool | None, lacking: str
) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_cluster(clients, "orders")
    if policy is not None:
        log_bucket(clients, "audit", policy=policy)
    local.served_requests(clear=True)
    result = fix(aws, arn, destination="s3", bucket_name="audit")
    assert result.status == Status.FAILED
    assert result.message.startswith(
        f"ValueError: Redshift cannot write cluster orders's audit logs to S3 bucket audit: {lacking}"
    ), result.message
    assert result.message.endswith("Not changed")
    assert result.before == {"LoggingEnabled": False, "LogDestinationType": None}
    assert logging_of(clients, "orders") == {"LoggingEnabled": False}
    assert not [call for call in local.served_requests() if call["service"] == "s3"], (
        "the bucket is not touched"
    )


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"destination": "s3"}, "'bucket_name' is a required property"),
        ({"bucket_name": "audit"}, "destination: 's3' was expected"),
        ({"destination": "s3", "bucket_name": "audit", "prefix": "has space"}, "prefix:"),
        ({"log_exports": []}, "log_exports: [] should be non-empty"),
        ({"log_exports": ["querylog"]}, "'querylog' is not one of"),
    ],
)
def test_parameters_that_cannot_work_are_refused_when_the_fix_is_built(
    params: dict[str, Any], error: str
) -> None:
    with pytest.raises(ActionError) as refused:
        registry().playbooks["Redshift.4"].build_action(params)
    assert "redshift.enable-audit-logging" in str(refused.value)
    assert error in str(refused.value)


def test_revert_stops_the_logging_and_reads_as_before(aws: Any) -> None:
    arn = seed_one(aws, "Redshift.4", MEMBER_ACCOUNT, REGION).resource_id
    name = arn.rsplit(":", 1)[1]
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    action = registry().playbooks["Redshift.4"].build_action()
    before = action.read(clients, name)
    assert remediate_resource(action, clients, name).status == Status.REMEDIATED
    with parameters_sent(clients.redshift, "DisableLogging") as sent:
        action.revert(clients, name, before)
    assert sent == [{"ClusterIdentifier": name}]
    # The stand-in, like Redshift may, still names the destination of logging that stopped.
    assert logging_of(clients, name)["LogDestinationType"] == "cloudwatch"
    assert (
        action.read(clients, name)
        == before
        == {**OFF, "BucketName": None, "S3KeyPrefix": None, "LogExports": None}
    )
    assert action.plan(before) == {"LoggingEnabled": True, "LogDestinationType": "cloudwatch"}


def _stubbed(error: str) -> tuple[SimpleNamespace, Stubber]:
    """Clients whose redshift reads a cluster that does not log, refuses EnableLogging with
    ``error`` (a paused or resizing cluster: the stand-in enables logging in any state), and
    reads the same again."""
    client = boto3.client(
        "redshift", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    stubber = Stubber(client)
    stubber.add_response("describe_logging_status", {"LoggingEnabled": False})
    stubber.add_client_error("enable_logging", service_error_code=error, service_message="nope")
    stubber.add_response("describe_logging_status", {"LoggingEnabled": False})
    stubber.activate()
    return SimpleNamespace(redshift=client, account_id=MEMBER_ACCOUNT, region=REGION), stubber


@pytest.mark.parametrize(
    "destination", [{}, {"destination": "s3", "bucket_name": "audit"}], ids=["cloudwatch", "s3"]
)
def test_other_refusals_are_reported_as_aws_says(destination: dict[str, Any]) -> None:
    action = registry().playbooks["Redshift.4"].build_action(destination)
    clients, stubber = _stubbed("InvalidClusterState")
    result = remediate_resource(action, clients, "orders")  # type: ignore[arg-type]
    assert (result.status, result.message) == (Status.FAILED, "InvalidClusterState: nope")
    stubber.assert_no_pending_responses()


def test_missing_cluster_fails_with_the_aws_reason(aws: Any) -> None:
    result = fix(aws, f"{ARN}:gone")
    assert result.status == Status.FAILED
    assert result.message.startswith("ClusterNotFound:")


@pytest.mark.parametrize("control", ["Redshift.1", "Redshift.3", "Redshift.6"])
def test_clusters_seeded_for_other_controls_already_log(aws: Any, control: str) -> None:
    arn = seed_one(aws, control, MEMBER_ACCOUNT, REGION).resource_id
    assert fix(aws, arn).status == Status.ALREADY_COMPLIANT
