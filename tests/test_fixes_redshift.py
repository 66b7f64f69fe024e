"""Redshift.1/3/6: what each cluster fix sends, keeps, counts as under way, and refuses."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from test_fixes_data import assert_permissions_cover_served_calls, parameters_sent

from asr import local
from asr.aws import Clients
from asr.findings import parse_finding
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import Seeded, finding, seed_one
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource

REGION = "us-east-1"
ARN = f"arn:aws:redshift:{REGION}:{MEMBER_ACCOUNT}:cluster"
SETTINGS = ("PubliclyAccessible", "AllowVersionUpgrade", "AutomatedSnapshotRetentionPeriod")


def fix(aws: Any, control: str, resource_arn: str, **params: Any) -> Result:
    """Run a control's playbook (with ``params`` over its own) on the cluster its finding names."""
    playbook = registry().playbooks[control]
    resource_id = playbook.extract_resource_id(resource_arn, MEMBER_ACCOUNT)
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    return remediate_resource(playbook.build_action(params), clients, resource_id)


def make_cluster(clients: Clients, name: str, **settings: Any) -> str:
    clients.redshift.create_cluster(
        ClusterIdentifier=name,
        ClusterType="single-node",
        NodeType="ra3.large",
        MasterUsername="admin",
        MasterUserPassword="Test-password-1",
        **settings,
    )
    return f"{ARN}:{name}"


def settings_of(clients: Clients, name: str) -> dict[str, Any]:
    cluster = clients.redshift.describe_clusters(ClusterIdentifier=name)["Clusters"][0]
    return {key: cluster[key] for key in SETTINGS}


@pytest.mark.parametrize(
    ("control", "setting"),
    [
        ("Redshift.1", {"PubliclyAccessible": False}),
        ("Redshift.3", {"AutomatedSnapshotRetentionPeriod": 7}),
        ("Redshift.6", {"AllowVersionUpgrade": True}),
    ],
)
def test_fix_sends_only_its_setting_within_its_permissions(
    aws: Any, control: str, setting: dict[str, Any]
) -> None:
    arn = seed_one(aws, control, MEMBER_ACCOUNT, REGION).resource_id
    name = arn.rsplit(":", 1)[1]
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    before = settings_of(clients, name)
    local.served_requests(clear=True)
    with parameters_sent(clients.redshift, "ModifyCluster") as sent:
        result = fix(aws, control, arn)
    assert result.status == Status.REMEDIATED, result.message
    assert sent == [{"ClusterIdentifier": name, **setting}]
    assert settings_of(clients, name) == {**before, **setting}
    assert_permissions_cover_served_calls(control)


def test_public_access_fix_keeps_the_other_settings(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_cluster(
        clients,
        "orders",
        PubliclyAccessible=True,
        AllowVersionUpgrade=False,
        AutomatedSnapshotRetentionPeriod=3,
    )
    result = fix(aws, "Redshift.1", arn)
    assert (result.status, result.before, result.after) == (
        Status.REMEDIATED,
        {"PubliclyAccessible": True},
        {"PubliclyAccessible": False},
    )
    assert settings_of(clients, "orders") == {
        "PubliclyAccessible": False,
        "AllowVersionUpgrade": False,
        "AutomatedSnapshotRetentionPeriod": 3,
    }


@pytest.mark.parametrize("retention", [7, 14, 35], ids=["exactly", "longer", "longest"])
def test_retention_that_is_long_enough_is_kept(aws: Any, retention: int) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_cluster(clients, "orders", AutomatedSnapshotRetentionPeriod=retention)
    with parameters_sent(clients.redshift, "ModifyCluster") as sent:
        result = fix(aws, "Redshift.3", arn)
    assert result.status == Status.ALREADY_COMPLIANT
    assert sent == []
    assert settings_of(clients, "orders")["AutomatedSnapshotRetentionPeriod"] == retention


def test_shorter_retention_is_raised_to_the_parameter(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_cluster(clients, "orders", AutomatedSnapshotRetentionPeriod=7)
    result = fix(aws, "Redshift.3", arn, min_retention_days=10)
    assert (result.status, result.before, result.after) == (
        Status.REMEDIATED,
        {"AutomatedSnapshotRetentionPeriod": 7},
        {"AutomatedSnapshotRetentionPeriod": 10},
    )
    assert "at least 10 days" in result.message


def test_retention_minimum_comes_from_the_control_parameter(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_cluster(clients, "orders", AutomatedSnapshotRetentionPeriod=7)
    raw = finding(Seeded("Redshift.3", MEMBER_ACCOUNT, REGION, "AwsRedshiftCluster", arn))
    raw["Compliance"]["SecurityControlParameters"] = [{"Name": "MinRetentionPeriod", "Value": ["14"]}]
    record = parse_finding(raw, registry())
    assert (record.resource_id, record.parameters) == ("orders", {"min_retention_days": 14})

    result = fix(aws, "Redshift.3", arn, **record.parameters)
    assert result.status == Status.REMEDIATED, result.message
    assert settings_of(clients, "orders")["AutomatedSnapshotRetentionPeriod"] == 14


def _stubbed(cluster: dict[str, Any], error: str | None = None) -> tuple[SimpleNamespace, Stubber]:
    """Clients whose redshift answers DescribeClusters with ``cluster``; with ``error``, it then
    refuses ModifyCluster and reads the same again (the stand-in has nothing pending, and
    modifies a cluster in any state)."""
    client = boto3.client(
        "redshift", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    stubber = Stubber(client)
    stubber.add_response("describe_clusters", {"Clusters": [{"ClusterIdentifier": "orders", **cluster}]})
    if error:
        stubber.add_client_error("modify_cluster", service_error_code=error, service_message="nope")
        stubber.add_response("describe_clusters", {"Clusters": [{"ClusterIdentifier": "orders", **cluster}]})
    stubber.activate()
    return SimpleNamespace(redshift=client, account_id=MEMBER_ACCOUNT, region=REGION), stubber


@pytest.mark.parametrize(
    ("control", "fields", "plan"),
    [
        (
            "Redshift.1",
            {"PubliclyAccessible": True, "PendingModifiedValues": {"PubliclyAccessible": False}},
            {},
        ),
        (
            "Redshift.1",
            {"PubliclyAccessible": False, "PendingModifiedValues": {"PubliclyAccessible": True}},
            {"PubliclyAccessible": False},
        ),
        (
            "Redshift.3",
            {
                "AutomatedSnapshotRetentionPeriod": 1,
                "PendingModifiedValues": {"AutomatedSnapshotRetentionPeriod": 7},
            },
            {},
        ),
        (
            "Redshift.3",
            {
                "AutomatedSnapshotRetentionPeriod": 7,
                "PendingModifiedValues": {"AutomatedSnapshotRetentionPeriod": 0},
            },
            {"AutomatedSnapshotRetentionPeriod": 7},
        ),
    ],
)
def test_pending_value_is_the_value_the_cluster_is_getting(
    control: str, fields: dict[str, Any], plan: dict[str, Any]
) -> None:
    action = registry().playbooks[control].build_action()
    clients, stubber = _stubbed(fields)
    assert action.plan(action.read(clients, "orders")) == plan  # type: ignore[arg-type]
    stubber.assert_no_pending_responses()


def test_a_cluster_that_cannot_be_modified_now_fails_with_the_aws_reason() -> None:
    """A paused or resizing cluster refuses ModifyCluster; the stand-in modifies it anyway."""
    action = registry().playbooks["Redshift.6"].build_action()
    clients, stubber = _stubbed(
        {"ClusterStatus": "paused", "AllowVersionUpgrade": False}, "InvalidClusterState"
    )
    result = remediate_resource(action, clients, "orders")  # type: ignore[arg-type]
    assert result.status == Status.FAILED
    assert result.message == "InvalidClusterState: nope"
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("control", ["Redshift.1", "Redshift.3", "Redshift.6"])
def test_missing_cluster_fails_with_the_aws_reason(aws: Any, control: str) -> None:
    result = fix(aws, control, f"{ARN}:gone")
    assert result.status == Status.FAILED
    assert result.message.startswith("ClusterNotFound:")


@pytest.mark.parametrize(
    ("resource_arn", "name"),
    [
        (f"{ARN}:orders-2", "orders-2"),
        (f"arn:aws-us-gov:redshift:us-gov-west-1:{MEMBER_ACCOUNT}:cluster:orders", "orders"),
        (f"{ARN}:Orders", None),
        (f"{ARN}:2orders", None),
        (f"{ARN}:{'o' * 64}", None),
        (f"arn:aws:redshift:{REGION}:{MEMBER_ACCOUNT}:snapshot:orders/snap", None),
    ],
)
def test_the_cluster_name_is_taken_from_its_arn(resource_arn: str, name: str | None) -> None:
    for control in ("Redshift.1", "Redshift.3", "Redshift.6"):
        playbook = registry().playbooks[control]
        if name is None:
            with pytest.raises(ValueError, match="does not match"):
                playbook.extract_resource_id(resource_arn, MEMBER_ACCOUNT)
        else:
            assert playbook.extract_resource_id(resource_arn, MEMBER_ACCOUNT) == name
