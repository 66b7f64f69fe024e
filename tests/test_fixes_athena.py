"""Athena.4: a workgroup's query metrics turned on, and nothing else of it changed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from test_fixes_data import assert_permissions_cover_served_calls, parameters_sent

from asr import local
from asr.aws import Clients
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import seed_one
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource

REGION = "us-east-1"
ARN = f"arn:aws:athena:{REGION}:{MEMBER_ACCOUNT}:workgroup"
CONTROL = "Athena.4"


def fix(aws: Any, resource_arn: str) -> tuple[Result, list[dict[str, Any]]]:
    """Run the playbook on the workgroup its finding names: the result, and each UpdateWorkGroup sent."""
    playbook = registry().playbooks[CONTROL]
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    resource_id = playbook.extract_resource_id(resource_arn, MEMBER_ACCOUNT)
    with parameters_sent(clients.athena, "UpdateWorkGroup") as sent:
        result = remediate_resource(playbook.build_action(), clients, resource_id)
    return result, sent


def work_group(clients: Clients, name: str) -> dict[str, Any]:
    return dict(clients.athena.get_work_group(WorkGroup=name)["WorkGroup"])


def make(clients: Clients, name: str, **configuration: Any) -> str:
    clients.athena.create_work_group(Name=name, Description="reports", Configuration=configuration)
    return f"{ARN}/{name}"


def test_metrics_are_turned_on_sending_only_that_within_the_permissions(aws: Any) -> None:
    arn = seed_one(aws, CONTROL, MEMBER_ACCOUNT, REGION).resource_id
    name = arn.rsplit("/", 1)[1]
    local.served_requests(clear=True)
    result, sent = fix(aws, arn)
    assert (result.status, result.before, result.after) == (
        Status.REMEDIATED,
        {"PublishCloudWatchMetricsEnabled": False},
        {"PublishCloudWatchMetricsEnabled": True},
    ), result.message
    assert result.message == "turned on publishing the workgroup's query metrics to CloudWatch"
    assert sent == [{"WorkGroup": name, "ConfigurationUpdates": {"PublishCloudWatchMetricsEnabled": True}}]
    assert_permissions_cover_served_calls(CONTROL)


def test_the_workgroup_s_other_settings_are_kept(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make(
        clients,
        "reports",
        ResultConfiguration={"OutputLocation": "s3://reports-results/"},
        EnforceWorkGroupConfiguration=True,
        RequesterPaysEnabled=True,
        BytesScannedCutoffPerQuery=10_000_000_000,
    )
    before = work_group(clients, "reports")
    assert fix(aws, arn)[0].status == Status.REMEDIATED
    after = work_group(clients, "reports")
    assert after["Configuration"] == {**before["Configuration"], "PublishCloudWatchMetricsEnabled": True}
    assert (after["State"], after["Description"]) == (before["State"], before["Description"])


def test_the_primary_workgroup_is_fixed_like_any_other(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    result, sent = fix(aws, f"{ARN}/primary")
    assert result.status == Status.REMEDIATED, result.message
    assert sent == [
        {"WorkGroup": "primary", "ConfigurationUpdates": {"PublishCloudWatchMetricsEnabled": True}}
    ]
    assert work_group(clients, "primary")["Configuration"]["PublishCloudWatchMetricsEnabled"] is True


def test_a_disabled_workgroup_is_fixed_and_left_disabled(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make(clients, "archive")
    clients.athena.update_work_group(WorkGroup="archive", State="DISABLED")
    result, sent = fix(aws, arn)
    assert result.status == Status.REMEDIATED, result.message
    assert sent == [
        {"WorkGroup": "archive", "ConfigurationUpdates": {"PublishCloudWatchMetricsEnabled": True}}
    ]
    group = work_group(clients, "archive")
    assert (group["State"], group["Configuration"]["PublishCloudWatchMetricsEnabled"]) == ("DISABLED", True)


def test_a_workgroup_already_publishing_gets_no_write(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make(clients, "reports", PublishCloudWatchMetricsEnabled=True)
    result, sent = fix(aws, arn)
    assert (result.status, sent) == (Status.ALREADY_COMPLIANT, [])


def test_a_configuration_without_the_setting_reads_as_not_publishing() -> None:
    """AWS may leave the setting out of GetWorkGroup's answer (the stand-in always has it):
    nothing is published then, so it is turned on."""
    client = boto3.client(
        "athena", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    stubber = Stubber(client)
    group = {"Name": "reports", "State": "ENABLED", "Configuration": {"EnforceWorkGroupConfiguration": True}}
    stubber.add_response("get_work_group", {"WorkGroup": group}, {"WorkGroup": "reports"})
    update = {"WorkGroup": "reports", "ConfigurationUpdates": {"PublishCloudWatchMetricsEnabled": True}}
    stubber.add_response("update_work_group", {}, update)
    published = {
        **group,
        "Configuration": {**group["Configuration"], "PublishCloudWatchMetricsEnabled": True},
    }
    stubber.add_response("get_work_group", {"WorkGroup": published}, {"WorkGroup": "reports"})
    stubber.activate()
    clients = SimpleNamespace(athena=client, account_id=MEMBER_ACCOUNT, region=REGION)
    action = registry().playbooks[CONTROL].build_action()
    result = remediate_resource(action, clients, "reports")  # type: ignore[arg-type]
    assert (result.status, result.before) == (Status.REMEDIATED, {"PublishCloudWatchMetricsEnabled": False})
    stubber.assert_no_pending_responses()


def test_a_missing_workgroup_fails_with_the_aws_reason(aws: Any) -> None:
    result, sent = fix(aws, f"{ARN}/gone")
    assert (result.status, sent) == (Status.FAILED, [])
    assert result.message == "InvalidRequestException: WorkGroup gone is not found."


def test_a_name_athena_cannot_have_is_refused_before_any_call(aws: Any) -> None:
    action = registry().playbooks[CONTROL].build_action()
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    local.served_requests(clear=True)
    with pytest.raises(ValueError, match="'reports/2024' is not an Athena workgroup name"):
        action.read(clients, "reports/2024")
    assert [call for call in local.served_requests() if call["service"] == "athena"] == []


@pytest.mark.parametrize("earlier", [False, True], ids=["off", "on-since"])
def test_revert_turns_publishing_off_again(aws: Any, earlier: bool) -> None:
    """Revert puts back what the fix found (off), whatever the setting reads now."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make(clients, "reports", RequesterPaysEnabled=True)
    action = registry().playbooks[CONTROL].build_action()
    before = action.read(clients, "reports")
    assert fix(aws, arn)[0].status == Status.REMEDIATED
    configuration = work_group(clients, "reports")["Configuration"]
    with parameters_sent(clients.athena, "UpdateWorkGroup") as sent:
        action.revert(clients, "reports", before)
    assert sent == [
        {"WorkGroup": "reports", "ConfigurationUpdates": {"PublishCloudWatchMetricsEnabled": False}}
    ]
    assert action.read(clients, "reports") == before
    assert work_group(clients, "reports")["Configuration"] == {
        **configuration,
        "PublishCloudWatchMetricsEnabled": False,
    }


@pytest.mark.parametrize(
    ("resource_arn", "name"),
    [
        (f"{ARN}/primary", "primary"),
        (f"{ARN}/team.reports_v2-eu", "team.reports_v2-eu"),
        (f"arn:aws-cn:athena:cn-north-1:{MEMBER_ACCOUNT}:workgroup/reports", "reports"),
        (f"{ARN}/{'w' * 128}", "w" * 128),
        (f"{ARN}/{'w' * 129}", None),
        (f"{ARN}/reports/2024", None),
        (f"{ARN}/", None),
        (f"arn:aws:athena:{REGION}:{MEMBER_ACCOUNT}:datacatalog/AwsDataCatalog", None),
        (f"arn:aws:athena:{REGION}:{MEMBER_ACCOUNT}:capacity-reservation/reports", None),
    ],
)
def test_the_workgroup_name_is_taken_from_its_arn(resource_arn: str, name: str | None) -> None:
    playbook = registry().playbooks[CONTROL]
    if name is not None:
        assert playbook.extract_resource_id(resource_arn, MEMBER_ACCOUNT) == name
    else:
        with pytest.raises(ValueError, match="does not match"):
            playbook.extract_resource_id(resource_arn, MEMBER_ACCOUNT)
