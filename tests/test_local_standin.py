"""The local stand-in's extensions of moto, exercised through boto3 as the product calls them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import psutil
import pytest
from botocore.exceptions import ClientError
from helpers import PRODUCT, free_port, make_finding

from asr import local
from asr.local.securityhub_ext import STRING_FILTER_PATHS, filter_findings


@pytest.fixture
def securityhub(clean_aws: str):  # type: ignore[no-untyped-def]
    return boto3.client("securityhub", endpoint_url=clean_aws, region_name="us-east-1")


@pytest.fixture
def ssm(clean_aws: str):  # type: ignore[no-untyped-def]
    return boto3.client("ssm", endpoint_url=clean_aws, region_name="us-east-1")


def equals(*values: str) -> list[dict[str, str]]:
    return [{"Value": v, "Comparison": "EQUALS"} for v in values]


def ids(response: dict) -> set[str]:
    return {f["Id"] for f in response["Findings"]}


def test_batch_update_sets_workflow_and_note(securityhub) -> None:
    securityhub.batch_import_findings(Findings=[make_finding(1), make_finding(2)])
    response = securityhub.batch_update_findings(
        FindingIdentifiers=[{"Id": "finding-1", "ProductArn": PRODUCT}],
        Workflow={"Status": "RESOLVED"},
        Note={"Text": "fixed", "UpdatedBy": "asr"},
    )
    assert response["ProcessedFindings"] == [{"Id": "finding-1", "ProductArn": PRODUCT}]
    assert response["UnprocessedFindings"] == []
    found = {f["Id"]: f for f in securityhub.get_findings()["Findings"]}
    assert found["finding-1"]["Workflow"]["Status"] == "RESOLVED"
    assert found["finding-1"]["Note"]["Text"] == "fixed"
    assert found["finding-1"]["Note"]["UpdatedBy"] == "asr"
    assert found["finding-1"]["UpdatedAt"] == "2026-01-01T00:00:00Z", "BatchUpdateFindings leaves UpdatedAt"
    assert found["finding-2"]["Workflow"]["Status"] == "NEW"


def test_batch_update_reports_unknown_findings_as_unprocessed(securityhub) -> None:
    securityhub.batch_import_findings(Findings=[make_finding(1)])
    response = securityhub.batch_update_findings(
        FindingIdentifiers=[
            {"Id": "finding-1", "ProductArn": PRODUCT},
            {"Id": "nope", "ProductArn": PRODUCT},
            {"Id": "finding-1", "ProductArn": "arn:aws:securityhub:us-east-1::product/other/x"},
        ],
        Workflow={"Status": "NOTIFIED"},
    )
    assert len(response["ProcessedFindings"]) == 1
    assert [u["FindingIdentifier"]["Id"] for u in response["UnprocessedFindings"]] == ["nope", "finding-1"]
    assert {u["ErrorCode"] for u in response["UnprocessedFindings"]} == {"FindingNotFound"}


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"FindingIdentifiers": [{"Id": f"f{i}", "ProductArn": PRODUCT} for i in range(101)]}, "1 to 100"),
        ({"Workflow": {"Status": "DONE"}}, "Workflow.Status"),
        ({"Note": {"Text": "x" * 513, "UpdatedBy": "asr"}}, "Note"),
    ],
)
def test_batch_update_rejects_invalid_requests(securityhub, kwargs: dict, problem: str) -> None:
    request = {"FindingIdentifiers": [{"Id": "f", "ProductArn": PRODUCT}], **kwargs}
    with pytest.raises(ClientError) as raised:
        securityhub.batch_update_findings(**request)
    assert problem in str(raised.value)


def test_get_findings_filters_with_aws_semantics(securityhub) -> None:
    securityhub.batch_import_findings(
        Findings=[
            make_finding(1),
            make_finding(2, AwsAccountId="333333333333"),
            make_finding(3, Workflow={"Status": "SUPPRESSED"}),
            make_finding(4, RecordState="ARCHIVED"),
            make_finding(5, GeneratorId="security-control/IAM.7"),
        ]
    )
    get = securityhub.get_findings
    assert ids(get(Filters={"WorkflowStatus": equals("NEW", "NOTIFIED")})) == {
        "finding-1",
        "finding-2",
        "finding-4",
        "finding-5",
    }
    assert ids(get(Filters={"WorkflowStatus": equals("NEW"), "RecordState": equals("ACTIVE")})) == {
        "finding-1",
        "finding-2",
        "finding-5",
    }
    assert ids(get(Filters={"AwsAccountId": [{"Value": "222222222222", "Comparison": "NOT_EQUALS"}]})) == {
        "finding-2"
    }
    assert ids(get(Filters={"GeneratorId": [{"Value": "security-control/IAM", "Comparison": "PREFIX"}]})) == {
        "finding-5"
    }
    assert ids(get(Filters={"ResourceId": equals("sg-3", "sg-4")})) == {"finding-3", "finding-4"}


def test_get_findings_pages_through_filtered_results(securityhub) -> None:
    findings = [make_finding(n) for n in range(250)]
    findings += [make_finding(n, RecordState="ARCHIVED") for n in range(250, 300)]
    for start in range(0, len(findings), 100):
        securityhub.batch_import_findings(Findings=findings[start : start + 100])
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        kwargs = {"Filters": {"RecordState": equals("ACTIVE")}, "MaxResults": 100}
        if token:
            kwargs["NextToken"] = token
        page = securityhub.get_findings(**kwargs)
        seen += [f["Id"] for f in page["Findings"]]
        pages += 1
        token = page.get("NextToken")
        if not token:
            break
    assert pages == 3
    assert sorted(seen) == sorted(f"finding-{n}" for n in range(250))


def test_get_findings_pages_on_while_findings_leave_the_filter(securityhub) -> None:
    """A run writing back while a sweep pages (its findings leave a NEW filter) must not break
    the sweep's paging: GetFindings has no InvalidToken error on AWS."""
    findings = [make_finding(n) for n in range(150)]
    for start in range(0, len(findings), 100):
        securityhub.batch_import_findings(Findings=findings[start : start + 100])
    query = {"Filters": {"WorkflowStatus": equals("NEW")}, "MaxResults": 100}
    first = securityhub.get_findings(**query)
    listed = [f["Id"] for f in first["Findings"]]
    left = sorted({f["Id"] for f in findings} - set(listed))
    securityhub.batch_update_findings(
        FindingIdentifiers=[{"Id": i, "ProductArn": PRODUCT} for i in left[:10]],
        Workflow={"Status": "RESOLVED"},
    )
    second = securityhub.get_findings(**query, NextToken=first["NextToken"])
    assert sorted(listed + [f["Id"] for f in second["Findings"]]) == sorted(f["Id"] for f in findings)
    assert "NextToken" not in second or not second["NextToken"]
    with pytest.raises(ClientError, match="InvalidInputException"):
        securityhub.get_findings(**query, NextToken="not-a-token")


def test_get_findings_refuses_a_filter_it_cannot_honour(securityhub) -> None:
    with pytest.raises(ClientError, match="MalwareName"):
        securityhub.get_findings(Filters={"MalwareName": equals("x")})


def test_filter_positive_and_negative_conditions_of_one_field() -> None:
    findings = [make_finding(1), make_finding(2), make_finding(3)]
    chosen = filter_findings(
        findings,
        {
            "Id": [
                {"Value": "finding-", "Comparison": "PREFIX"},
                {"Value": "finding-2", "Comparison": "NOT_EQUALS"},
            ]
        },
    )
    assert [f["Id"] for f in chosen] == ["finding-1", "finding-3"]


def test_get_findings_filters_by_time(securityhub) -> None:
    securityhub.batch_import_findings(
        Findings=[make_finding(n, UpdatedAt=f"2026-0{n}-15T12:00:00.000Z") for n in range(1, 5)]
    )
    window = {"Start": "2026-02-15T12:00:00Z", "End": "2026-03-31T00:00:00Z"}
    found = securityhub.get_findings(Filters={"UpdatedAt": [window]})["Findings"]
    assert sorted(f["Id"] for f in found) == ["finding-2", "finding-3"], "both ends are inclusive"
    recent = securityhub.get_findings(Filters={"CreatedAt": [{"DateRange": {"Value": 1, "Unit": "DAYS"}}]})
    assert recent["Findings"] == [], "created in January"
    for refused in ({"Start": "2026-02-15T12:00:00Z"}, {"Start": "yesterday", "End": "today"}):
        with pytest.raises(ClientError, match="invalid date condition"):
            securityhub.get_findings(Filters={"UpdatedAt": [refused]})


def test_automation_records_parameters_and_succeeds_by_default(ssm) -> None:
    execution_id = ssm.start_automation_execution(
        DocumentName="Team-RotateSomething",
        Parameters={"GroupId": ["sg-1"], "AutomationAssumeRole": ["arn:aws:iam::222222222222:role/r"]},
    )["AutomationExecutionId"]
    execution = ssm.get_automation_execution(AutomationExecutionId=execution_id)["AutomationExecution"]
    assert execution["AutomationExecutionStatus"] == "Success"
    assert execution["Parameters"]["GroupId"] == ["sg-1"]
    assert execution["DocumentName"] == "Team-RotateSomething"


@pytest.mark.parametrize(
    ("planned", "statuses"),
    [
        ("Failed", ["Failed"]),
        ("Success:3", ["InProgress", "InProgress", "Success", "Success"]),
        ("InProgress", ["InProgress", "InProgress", "InProgress"]),
        ("TimedOut:2", ["InProgress", "TimedOut"]),
    ],
)
def test_automation_outcome_is_steered_by_a_parameter(ssm, planned: str, statuses: list[str]) -> None:
    ssm.put_parameter(Name="/asr-local/automation/Doc-Under-Test", Value=planned, Type="String")
    execution_id = ssm.start_automation_execution(DocumentName="Doc-Under-Test")["AutomationExecutionId"]
    seen = [
        ssm.get_automation_execution(AutomationExecutionId=execution_id)["AutomationExecution"][
            "AutomationExecutionStatus"
        ]
        for _ in statuses
    ]
    assert seen == statuses


def test_unknown_automation_execution_is_not_found(ssm) -> None:
    unknown = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(ClientError, match="AutomationExecutionNotFoundException"):
        ssm.get_automation_execution(AutomationExecutionId=unknown)
    with pytest.raises(ClientError, match="AutomationExecutionNotFoundException"):
        ssm.stop_automation_execution(AutomationExecutionId=unknown)


def test_an_automation_execution_that_ended_cannot_be_stopped(ssm) -> None:
    ssm.put_parameter(Name="/asr-local/automation/Doc-Ending", Value="Success:2", Type="String")
    execution_id = ssm.start_automation_execution(DocumentName="Doc-Ending")["AutomationExecutionId"]
    ssm.get_automation_execution(AutomationExecutionId=execution_id)
    ssm.get_automation_execution(AutomationExecutionId=execution_id)  # Success now
    with pytest.raises(ClientError, match="InvalidAutomationStatusUpdateException"):
        ssm.stop_automation_execution(AutomationExecutionId=execution_id)


def test_request_log_records_each_call_and_tells_writes(clean_aws: str) -> None:
    from asr import local
    from asr.local.request_log_ext import is_write

    ec2 = boto3.client("ec2", endpoint_url=clean_aws, region_name="eu-west-1")
    ec2.describe_security_groups()
    group_id = ec2.create_security_group(GroupName="g", Description="d")["GroupId"]
    ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=[])
    s3 = boto3.client("s3", endpoint_url=clean_aws, region_name="us-east-1")
    s3.create_bucket(Bucket="logged-bucket")
    s3.get_bucket_location(Bucket="logged-bucket")
    calls = local.served_requests(clear=True)
    assert [(c["service"], c["action"]) for c in calls] == [
        ("ec2", "DescribeSecurityGroups"),
        ("ec2", "CreateSecurityGroup"),
        ("ec2", "RevokeSecurityGroupIngress"),
        ("s3", "CreateBucket"),
        ("s3", "GetBucketLocation"),
    ]
    assert [is_write(c) for c in calls] == [False, True, True, True, False]
    assert calls[2]["resource"] == group_id
    assert calls[0]["region"] == "eu-west-1"
    assert all(0 < c["cpu_seconds"] < 5 for c in calls), calls
    assert local.served_requests() == []


def test_request_log_says_what_each_call_cost_the_stand_in(clean_aws: str) -> None:
    """Describing a hundred groups costs the stand-in more CPU than describing one."""
    from asr import local

    ec2 = boto3.client("ec2", endpoint_url=clean_aws, region_name="eu-west-1")
    group_ids = [ec2.create_security_group(GroupName=f"g{i}", Description="d")["GroupId"] for i in range(100)]
    ec2.describe_security_groups(GroupIds=group_ids[:1])  # moto builds its serializer once, on first use
    local.served_requests(clear=True)
    for _ in range(3):
        ec2.describe_security_groups(GroupIds=group_ids[:1])
        ec2.describe_security_groups(GroupIds=group_ids)
    costs = [c["cpu_seconds"] for c in local.served_requests(clear=True)]
    one, hundred = min(costs[0::2]), min(costs[1::2])
    assert hundred > 3 * one, costs


def test_request_log_names_bucket_encryption_and_public_access_block_calls(clean_aws: str) -> None:
    """moto would log these as ListBucket, CreateBucket and DeleteBucket."""
    s3 = boto3.client("s3", endpoint_url=clean_aws, region_name="us-east-1")
    s3.create_bucket(Bucket="named-calls")
    local.served_requests(clear=True)
    s3.put_bucket_encryption(
        Bucket="named-calls",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.get_bucket_encryption(Bucket="named-calls")
    s3.delete_bucket_encryption(Bucket="named-calls")
    block = {
        key: True
        for key in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    }
    s3.put_public_access_block(Bucket="named-calls", PublicAccessBlockConfiguration=block)
    s3.get_public_access_block(Bucket="named-calls")
    s3.delete_public_access_block(Bucket="named-calls")
    s3.put_bucket_ownership_controls(
        Bucket="named-calls", OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
    s3.list_objects_v2(Bucket="named-calls")
    assert [c["action"] for c in local.served_requests(clear=True)] == [
        "PutBucketEncryption",
        "GetBucketEncryption",
        "DeleteBucketEncryption",
        "PutPublicAccessBlock",
        "GetPublicAccessBlock",
        "DeletePublicAccessBlock",
        "PutBucketOwnershipControls",
        "ListBucket",
    ]


def test_disable_public_access_document_changes_the_group(clean_aws: str) -> None:
    ec2 = boto3.client("ec2", endpoint_url=clean_aws, region_name="us-east-1")
    ssm = boto3.client("ssm", endpoint_url=clean_aws, region_name="us-east-1")
    group_id = ec2.create_security_group(GroupName="open", Description="d")["GroupId"]
    world = [{"CidrIp": "0.0.0.0/0"}]
    narrow = {"CidrIp": "10.0.0.0/8"}
    ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [*world, narrow]},
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": world},
        ],
    )
    execution_id = ssm.start_automation_execution(
        DocumentName="AWS-DisablePublicAccessForSecurityGroup", Parameters={"GroupId": [group_id]}
    )["AutomationExecutionId"]
    status = ssm.get_automation_execution(AutomationExecutionId=execution_id)["AutomationExecution"]
    assert status["AutomationExecutionStatus"] == "Success"
    rules = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]["IpPermissions"]
    left = sorted((r["FromPort"], c["CidrIp"]) for r in rules for c in r["IpRanges"])
    assert left == [(22, "10.0.0.0/8"), (443, "0.0.0.0/0")]


def test_document_step_failure_fails_the_execution(ssm) -> None:
    execution_id = ssm.start_automation_execution(
        DocumentName="AWS-DisablePublicAccessForSecurityGroup", Parameters={"GroupId": ["sg-00000000"]}
    )["AutomationExecutionId"]
    execution = ssm.get_automation_execution(AutomationExecutionId=execution_id)["AutomationExecution"]
    assert execution["AutomationExecutionStatus"] == "Failed"
    assert "sg-00000000" in execution["FailureMessage"]


def test_stop_cancels_an_execution_in_progress(ssm) -> None:
    ssm.put_parameter(Name="/asr-local/automation/Slow-Doc", Value="InProgress", Type="String")
    execution_id = ssm.start_automation_execution(DocumentName="Slow-Doc")["AutomationExecutionId"]
    ssm.stop_automation_execution(AutomationExecutionId=execution_id)
    execution = ssm.get_automation_execution(AutomationExecutionId=execution_id)["AutomationExecution"]
    assert execution["AutomationExecutionStatus"] == "Cancelled"


def test_get_findings_enforces_security_hub_filter_limits(securityhub) -> None:
    with pytest.raises(ClientError, match="more than 20 values"):
        securityhub.get_findings(Filters={"Id": equals(*(f"f{i}" for i in range(21)))})
    too_many_fields = {name: equals("x") for name in list(STRING_FILTER_PATHS)[:11]}
    with pytest.raises(ClientError, match="at most 10 attributes"):
        securityhub.get_findings(Filters=too_many_fields)


def test_pid_names_the_running_stand_in_and_none_elsewhere(stand_in: str) -> None:
    process = psutil.Process(local.pid())
    assert "asr.local.server" in " ".join(process.cmdline())
    assert local.pid(1) is None


def servers(port: int) -> list[psutil.Process]:
    """The stand-ins serving this port, whoever started them (zombies are not serving)."""
    found = []
    for process in psutil.process_iter():
        try:
            cmdline = process.cmdline()
        except psutil.Error:
            continue
        if "asr.local.server" in cmdline and cmdline[-2:] == ["--port", str(port)]:
            found.append(process)
    return found


@pytest.fixture
def own_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A free port and a state dir of the test's own; any stand-in left on it is stopped."""
    monkeypatch.setenv("ASR_STATE_DIR", str(tmp_path))
    port = free_port()
    yield port
    for process in servers(port):
        process.kill()


def test_two_local_ups_at_once_start_one_stand_in_that_local_down_stops(own_port: int) -> None:
    env = {**os.environ, "ASR_LOCAL_PORT": str(own_port)}
    ups = [
        subprocess.Popen(
            [sys.executable, "-m", "asr.cli", "local", "up"], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    said = [up.communicate(timeout=120)[0] for up in ups]
    assert [up.returncode for up in ups] == [0, 0, 0], said
    (server,) = servers(own_port)
    assert local.pid(own_port) == server.pid
    assert local.down(own_port) is True
    assert servers(own_port) == [] and not local.is_up(own_port)


def test_local_down_leaves_alone_a_process_a_stale_pid_file_names(own_port: int) -> None:
    """The stand-in died and its pid went to another process: that one is not ours to stop."""
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        pid_file = local.state_dir() / f"moto-{own_port}.pid"
        pid_file.write_text(str(other.pid))
        assert local.pid(own_port) is None
        assert local.down(own_port) is False
        assert other.poll() is None
        assert not pid_file.exists()
    finally:
        other.kill()
        other.wait()


def test_a_start_that_fails_leaves_no_pid_file_and_no_process(own_port: int) -> None:
    with pytest.raises(RuntimeError, match="did not answer"):
        local.up(own_port, timeout=0)
    assert not (local.state_dir() / f"moto-{own_port}.pid").exists()
    assert servers(own_port) == []


def test_local_down_stops_a_stand_in_this_process_started_at_once(own_port: int) -> None:
    """SIGTERM suffices, if the exited child is reaped: a zombie still answers os.kill(pid, 0)."""
    local.up(own_port)
    pid = local.pid(own_port)
    started = time.monotonic()
    assert local.down(own_port) is True
    assert time.monotonic() - started < 0.9
    assert pid is not None and not psutil.pid_exists(pid)


def test_local_down_from_another_folder_says_the_stand_in_still_runs(
    own_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from asr import cli

    local.up(own_port)
    monkeypatch.setenv("ASR_LOCAL_PORT", str(own_port))
    monkeypatch.setenv("ASR_STATE_DIR", str(tmp_path / "elsewhere"))
    assert cli.main(["local", "down"]) == 1
    assert "a stand-in answers at" in capsys.readouterr().err
    assert local.is_up(own_port)


@pytest.mark.parametrize("value", ["abc", "99999", "0"])
def test_a_port_setting_that_is_no_port_is_named(
    value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from asr import cli

    monkeypatch.setenv("ASR_LOCAL_PORT", value)
    assert cli.main(["local", "down"]) == 1
    assert capsys.readouterr().err == (
        f"asr: ASR_LOCAL_PORT={value!r} is not a whole number of at least 1 and at most 65535\n"
    )
