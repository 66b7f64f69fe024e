"""EC2.4: an instance stopped too long is terminated, only on evidence checked at fix time."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import hooked
from test_fixes_data import assert_permissions_cover_served_calls, parameters_sent

from asr import local
from asr.actions import ActionError, ChangedMeanwhile, NotReversible
from asr.actions.ec2 import _manager, _stopped_at
from asr.aws import Clients
from asr.findings import parse_finding
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import Seeded, finding, seed_one
from asr.playbooks import registry
from asr.remediate import Result, Status, Target, fix_targets, remediate_resource

REGION = "us-east-1"
CONTROL = "EC2.4"
TAG = "asr-local:stopped-at"  # the stand-in dates a stop by it (asr.local.ec2_stopped_ext)


def ago(days: float) -> str:
    return (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days)).isoformat()


def launch(clients: Clients, stopped_days_ago: float | None = None, **settings: Any) -> str:
    """A new instance; stopped that many days ago, when given, else left running."""
    instance_id = clients.ec2.run_instances(ImageId="ami-03cf127a", MinCount=1, MaxCount=1, **settings)[
        "Instances"
    ][0]["InstanceId"]
    if stopped_days_ago is not None:
        stop(clients, instance_id, ago(stopped_days_ago))
    return str(instance_id)


def stop(clients: Clients, instance_id: str, when: str | None) -> None:
    """Stop the instance, dated ``when`` (an ISO time; any other text: EC2 gives no date)."""
    if when is not None:
        clients.ec2.create_tags(Resources=[instance_id], Tags=[{"Key": TAG, "Value": when}])
    clients.ec2.stop_instances(InstanceIds=[instance_id])


def arn(instance_id: str) -> str:
    return f"arn:aws:ec2:{REGION}:{MEMBER_ACCOUNT}:instance/{instance_id}"


def fix(aws: Any, instance_id: str, **params: Any) -> tuple[Result, list[dict[str, Any]]]:
    """The playbook's fix of the instance (``params`` over the playbook's), and its terminate calls."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    action = registry().playbooks[CONTROL].build_action(params)
    with parameters_sent(clients.ec2, "TerminateInstances") as terminations:
        result = remediate_resource(action, clients, instance_id)
    return result, terminations


def state(clients: Clients, instance_id: str) -> str:
    found = clients.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return str(found["State"]["Name"])


def test_the_seeded_instance_is_terminated_and_the_volumes_it_took_are_recorded(aws: Any) -> None:
    seeded = seed_one(aws, CONTROL, MEMBER_ACCOUNT, REGION)
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    instance_id = registry().playbooks[CONTROL].extract_resource_id(seeded.resource_id, MEMBER_ACCOUNT)
    [instance] = clients.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"]
    disks = {m["DeviceName"]: m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"]}
    root, data = disks["/dev/sda1"], disks["/dev/sdf"]

    local.served_requests(clear=True)
    result, terminations = fix(aws, instance_id)

    assert result.status == Status.REMEDIATED, result.message
    assert result.message == "terminated the instance, stopped for more than 30 days"
    assert result.before == {"State": "stopped", "VolumesDeletedOnTermination": [root]}
    assert result.after is not None and result.after["State"] in ("shutting-down", "terminated")
    assert terminations == [{"InstanceIds": [instance_id]}]
    assert_permissions_cover_served_calls(CONTROL)
    assert state(clients, instance_id) in ("shutting-down", "terminated")
    volumes = clients.ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [root, data]}])["Volumes"]
    assert [(v["VolumeId"], v["State"]) for v in volumes] == [(data, "available")], "the data volume is kept"


@pytest.mark.parametrize(
    ("stopped_days_ago", "why"),
    [(None, "running: started since the finding"), (29.9, "stopped again, within the 30 days")],
)
def test_an_instance_that_passes_now_is_left_as_it_is(
    aws: Any, stopped_days_ago: float | None, why: str
) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    instance_id = launch(clients, stopped_days_ago)
    result, terminations = fix(aws, instance_id)
    assert result.status == Status.ALREADY_COMPLIANT, why
    assert terminations == []
    assert state(clients, instance_id) == ("running" if stopped_days_ago is None else "stopped")


def test_an_instance_stopped_just_now_by_moto_s_own_clock_is_left_alone(aws: Any) -> None:
    """No backdating tag: the reason moto writes (GMT, as AWS) dates the stop to now."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    instance_id = launch(clients)
    stop(clients, instance_id, None)
    result, terminations = fix(aws, instance_id, allowed_days=1)
    assert (result.status, terminations) == (Status.ALREADY_COMPLIANT, [])


def test_an_instance_whose_stop_ec2_does_not_date_is_refused(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    instance_id = launch(clients)
    stop(clients, instance_id, "unknown")
    result, terminations = fix(aws, instance_id)
    assert result.status == Status.FAILED
    assert "EC2 does not say when the instance was stopped (StateTransitionReason '')" in result.message
    assert "not terminated on a guess" in result.message
    assert terminations == [] and state(clients, instance_id) == "stopped"


def test_termination_protection_is_refused_and_kept(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    instance_id = launch(clients, 90)
    # moto's RunInstances drops DisableApiTermination; ModifyInstanceAttribute sets it.
    clients.ec2.modify_instance_attribute(InstanceId=instance_id, DisableApiTermination={"Value": True})
    with parameters_sent(clients.ec2, "ModifyInstanceAttribute") as modified:
        result, terminations = fix(aws, instance_id)
    assert result.status == Status.FAILED
    assert "termination protection (DisableApiTermination)" in result.message
    assert terminations == [] and modified == []
    protection = clients.ec2.describe_instance_attribute(
        InstanceId=instance_id, Attribute="disableApiTermination"
    )
    assert protection["DisableApiTermination"]["Value"] is True
    assert state(clients, instance_id) == "stopped"


def test_an_auto_scaling_group_s_instance_is_refused(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    clients.ec2.create_launch_template(
        LaunchTemplateName="web", LaunchTemplateData={"ImageId": "ami-03cf127a", "InstanceType": "t3.micro"}
    )
    clients.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web",
        LaunchTemplate={"LaunchTemplateName": "web"},
        MinSize=1,
        MaxSize=1,
        AvailabilityZones=[f"{REGION}a"],
    )
    [member] = clients.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])[
        "AutoScalingGroups"
    ][0]["Instances"]
    instance_id = member["InstanceId"]
    stop(clients, instance_id, ago(90))
    result, terminations = fix(aws, instance_id)
    assert result.status == Status.FAILED
    assert "the instance belongs to the Auto Scaling group web" in result.message
    assert terminations == [] and state(clients, instance_id) == "stopped"


def test_an_instance_started_after_the_read_is_not_terminated(aws: Any) -> None:
    """TerminateInstances takes a running instance too: the fix reads again just before it."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    instance_id = launch(clients, 90)
    action = registry().playbooks[CONTROL].build_action()
    read = action.read(clients, instance_id)
    plan = action.plan(read)
    assert plan
    clients.ec2.start_instances(InstanceIds=[instance_id])
    with parameters_sent(clients.ec2, "TerminateInstances") as terminations, pytest.raises(ChangedMeanwhile):
        action.apply(clients, instance_id, read, plan)
    assert terminations == [] and state(clients, instance_id) == "running"


def test_allowed_days_comes_from_the_control_parameter(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    instance_id = launch(clients, 20)
    assert fix(aws, instance_id)[0].status == Status.ALREADY_COMPLIANT, "20 days is within the default 30"

    raw = finding(Seeded(CONTROL, MEMBER_ACCOUNT, REGION, "AwsEc2Instance", arn(instance_id)))
    raw["Compliance"]["SecurityControlParameters"] = [{"Name": "AllowedDays", "Value": ["10"]}]
    record = parse_finding(raw, registry())
    assert (record.resource_id, record.parameters) == (instance_id, {"allowed_days": 10})
    result, terminations = fix(aws, instance_id, **record.parameters)
    assert result.status == Status.REMEDIATED, result.message
    assert terminations == [{"InstanceIds": [instance_id]}]


@pytest.mark.parametrize("days", [0, 366])
def test_allowed_days_outside_security_hub_s_range_is_refused(days: int) -> None:
    with pytest.raises(ActionError, match="allowed_days"):
        registry().playbooks[CONTROL].build_action({"allowed_days": days})


def test_a_missing_instance_fails_with_aws_s_reason(aws: Any) -> None:
    result, terminations = fix(aws, "i-0123456789abcdef0")
    assert result.status == Status.FAILED and "InvalidInstanceID.NotFound" in result.message
    assert terminations == []


def test_the_termination_cannot_be_reverted_and_says_why(aws: Any) -> None:
    action = registry().playbooks[CONTROL].build_action()
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    instance_id = launch(clients, 90)
    before = action.read(clients, instance_id)
    assert action.irreversible_from(before) == action.irreversible
    assert "EC2 cannot bring a terminated instance back" in str(action.irreversible)
    with pytest.raises(NotReversible, match="EC2 cannot bring a terminated instance back"):
        action.revert(clients, instance_id, before)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("User initiated (2025-01-31 08:05:09 GMT)", "2025-01-31T08:05:09+00:00"),
        ("User initiated (2025-01-31 08:05:09 UTC)", "2025-01-31T08:05:09+00:00"),
        ("", None),
        ("Server.ScheduledStop", None),
        ("User initiated", None),
    ],
)
def test_the_stop_time_is_read_from_ec2_s_reason(reason: str, expected: str | None) -> None:
    assert _stopped_at(reason) == expected


@pytest.mark.parametrize(
    ("instance", "expected"),
    [
        ({"Tags": [{"Key": "aws:autoscaling:groupName", "Value": "web"}]}, "the Auto Scaling group web"),
        (
            {"Tags": [{"Key": "aws:ec2spot:fleet-request-id", "Value": "sfr-1"}]},
            "the Spot Fleet request sfr-1",
        ),
        ({"Tags": [{"Key": "aws:ec2:fleet-id", "Value": "fleet-1"}]}, "the EC2 Fleet fleet-1"),
        (
            {"InstanceLifecycle": "spot", "SpotInstanceRequestId": "sir-1"},
            "the persistent Spot request sir-1",
        ),
        ({"Operator": {"Managed": True, "Principal": "eks.amazonaws.com"}}, "the service eks.amazonaws.com"),
        (
            {"Tags": [{"Key": "aws:cloud9:environment", "Value": "e1"}]},
            "the Cloud9 environment e1",
        ),
        (
            {"Tags": [{"Key": "aws:cloudformation:stack-id", "Value": "arn:stack/web/1"}]},
            "the CloudFormation stack arn:stack/web/1",
        ),
        ({"InstanceLifecycle": "spot"}, None),  # no request keeps it: terminated, it stays gone
        ({"Tags": [{"Key": "Name", "Value": "web"}], "Operator": {"Managed": False}}, None),
    ],
)
def test_instances_another_service_keeps_are_named(instance: dict[str, Any], expected: str | None) -> None:
    """moto's DescribeInstances gives no SpotInstanceRequestId, fleet tags nor Operator: the
    rule is tested on the instance as AWS describes it."""
    assert _manager(instance) == expected


def test_protection_turned_on_after_the_read_fails_the_fix_saying_so(aws: Any) -> None:
    """The owner protects the instance while the batch is being fixed: the read just before the
    termination sees it, and the read-back too, without the refusal breaking the run."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    instance_id = launch(clients, 90)
    action = registry().playbooks[CONTROL].build_action()
    reads: list[str] = []
    real_read = action.read

    def read_then_protect(clients: Clients, resource_id: str) -> dict[str, Any]:
        state = real_read(clients, resource_id)
        if not reads:
            clients.ec2.modify_instance_attribute(
                InstanceId=resource_id, DisableApiTermination={"Value": True}
            )
        reads.append(resource_id)
        return state

    action.read = read_then_protect  # type: ignore[method-assign]
    with parameters_sent(clients.ec2, "TerminateInstances") as terminations:
        result = remediate_resource(action, clients, instance_id)
    assert result.status == Status.FAILED
    assert "termination protection (DisableApiTermination)" in result.message
    assert terminations == [] and state(clients, instance_id) == "stopped"


def test_a_throttled_protection_read_is_read_again_not_failed(aws: Any) -> None:
    """DescribeInstanceAttribute throttled once in a batch's bulk read: the batch is read
    again, as any read refused for throttling is, not the instance failed with the error."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    instance_ids = [launch(clients, stopped_days_ago=40) for _ in range(2)]
    tries: list[str] = []

    def throttle_once(**_: Any) -> None:
        tries.append("DescribeInstanceAttribute")
        if len(tries) == 1:
            error = {"Code": "RequestLimitExceeded", "Message": "Request limit exceeded."}
            raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 503}}, tries[0])

    action = registry().playbooks[CONTROL].build_action()
    targets = [Target(clients, instance_id, (), action) for instance_id in instance_ids]
    with hooked(clients.ec2, "before-call.ec2.DescribeInstanceAttribute", throttle_once):
        results = fix_targets(targets, threads=2)
    assert [r.status for r in results] == [Status.REMEDIATED] * 2, [r.message for r in results]
    assert [state(clients, i) for i in instance_ids] != ["stopped", "stopped"]
