"""``asr setup`` against the stand-in: what it makes, that it is idempotent, and that
Security Hub's events reach the queue exactly when they should."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from asr import cli, local
from asr.config import Settings
from asr.local import events as hub_events
from asr.local.seed import finding, import_findings
from asr.local.seeders import Seeded
from asr.setup import (
    ACTION_NAME,
    DEFAULT_QUEUE_NAME,
    PATTERN_LIMIT,
    SetupIncomplete,
    SetupResult,
    auto_remediate_controls,
    automatic_scope,
    imported_pattern,
    not_members,
    setup,
)

REGION = "us-east-1"
ADMIN = local.ADMIN_ACCOUNT
CUSTOM_RULE = f"{DEFAULT_QUEUE_NAME}-custom-action"
IMPORTED_RULE = f"{DEFAULT_QUEUE_NAME}-imported"


def a_finding(
    control: str, workflow: str = "NEW", n: int = 0, account: str = local.MEMBER_ACCOUNT
) -> dict[str, Any]:
    resource = f"arn:aws:ec2:{REGION}:{account}:security-group/sg-{n:08x}"
    seeded = Seeded(control, account, REGION, "AwsEc2SecurityGroup", resource)
    result = finding(seeded)
    result["Workflow"] = {"Status": workflow}
    result["WorkflowState"] = workflow
    return result


def client(aws: Any, service: str) -> Any:
    return aws.admin_client(service, REGION)


def received(aws: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every event waiting in the queue (EventBridge delivers during PutEvents in the stand-in)."""
    sqs = client(aws, "sqs")
    bodies = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        bodies += [json.loads(m["Body"]) for m in messages]
    return bodies


def arrived_finding_ids(aws: Any, result: SetupResult, *events: dict[str, Any]) -> set[str]:
    """The findings of these events that reached the queue. An automatic NEW finding is put
    last and must arrive too: a test that nothing else arrived then proves the path works."""
    sentinel = hub_events.imported_event([a_finding("S3.9", n=999)], ADMIN, REGION)
    hub_events.put_events(client(aws, "events"), [*events, sentinel])
    arrived = {f["Id"] for e in received(aws, result.queue_url) for f in e["detail"]["findings"]}
    assert sentinel["resources"][0] in arrived
    return arrived - set(sentinel["resources"])


@pytest.fixture
def installed(aws: Any) -> SetupResult:
    return setup(aws, REGION)


def test_auto_remediate_controls_come_from_the_playbooks() -> None:
    controls = auto_remediate_controls()
    assert {"EC2.7", "IAM.7", "IAM.14", "S3.9"} <= set(controls)  # IAM.14 is one of IAM.7's also_fixes
    assert not {"EC2.13", "EC2.14", "S3.1"} & set(controls)  # disruptive: never unattended


def test_setup_creates_the_action_queues_rules_and_targets(aws: Any, installed: SetupResult) -> None:
    result = installed
    assert result.found == [] and result.updated == [] and result.removed == []
    assert len(result.created) == 7  # action, 2 rules, 2 queues, 2 targets
    assert result.action_target_arn == f"arn:aws:securityhub:{REGION}:{ADMIN}:action/custom/ASRRemediate"
    (action,) = client(aws, "securityhub").describe_action_targets()["ActionTargets"]
    assert action["Name"] == ACTION_NAME and len(ACTION_NAME) <= 20
    assert result.queue_arn == f"arn:aws:sqs:{REGION}:{ADMIN}:{DEFAULT_QUEUE_NAME}"
    assert result.rule_names == [CUSTOM_RULE, IMPORTED_RULE]

    events = client(aws, "events")
    custom = events.describe_rule(Name=CUSTOM_RULE)
    assert json.loads(custom["EventPattern"])["resources"] == [result.action_target_arn]
    imported = events.describe_rule(Name=IMPORTED_RULE)
    assert json.loads(imported["EventPattern"]) == imported_pattern(auto_remediate_controls())
    for rule in result.rule_names:
        (target,) = events.list_targets_by_rule(Rule=rule)["Targets"]
        assert target["Arn"] == result.queue_arn
        assert target["DeadLetterConfig"] == {"Arn": result.dead_letter_queue_arn}

    sqs = client(aws, "sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=result.queue_url, AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"] == result.dead_letter_queue_arn
    allow, deny = json.loads(attributes["Policy"])["Statement"]
    rules = {"aws:SourceArn": sorted([custom["Arn"], imported["Arn"]])}
    assert allow["Effect"] == "Allow" and allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Condition"] == {"ArnEquals": rules}
    # Nobody else may put a "click" on the queue, however wide their own IAM policy.
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert deny["Condition"] == {"ArnNotEquals": rules}
    for statement in (allow, deny):
        assert statement["Action"] == "sqs:SendMessage" and statement["Resource"] == result.queue_arn


def test_the_events_queue_keeps_clicks_for_14_days_not_sqs_s_default_4(
    aws: Any, installed: SetupResult
) -> None:
    """Clicks made while asr_events is paused, or its triggerer down, wait in the queue: SQS's
    default retention (4 days) would drop those of a long weekend. A queue made by an earlier
    setup is put right."""
    sqs = client(aws, "sqs")

    def retention() -> list[str]:
        return [
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MessageRetentionPeriod"])["Attributes"][
                "MessageRetentionPeriod"
            ]
            for url in (installed.queue_url, installed.dead_letter_queue_url)
        ]

    assert retention() == ["1209600", "1209600"]
    sqs.set_queue_attributes(QueueUrl=installed.queue_url, Attributes={"MessageRetentionPeriod": "345600"})
    assert setup(aws, REGION).updated == [f"SQS queue {DEFAULT_QUEUE_NAME}"]
    assert retention() == ["1209600", "1209600"]


def test_a_second_run_changes_nothing(aws: Any, installed: SetupResult) -> None:
    local.served_requests(clear=True)
    again = setup(aws, REGION)
    assert not again.changed
    assert again.created == [] and again.updated == [] and again.removed == []
    assert sorted(again.found) == sorted(installed.created)
    assert (again.queue_url, again.queue_arn, again.action_target_arn) == (
        installed.queue_url,
        installed.queue_arn,
        installed.action_target_arn,
    )
    from asr.local.request_log_ext import is_write

    writes = [c for c in local.served_requests() if is_write(c)]
    assert writes == []


def test_setup_puts_back_what_someone_changed(aws: Any, installed: SetupResult) -> None:
    events = client(aws, "events")
    events.put_rule(
        Name=IMPORTED_RULE, EventPattern=json.dumps({"source": ["aws.securityhub"]}), State="DISABLED"
    )
    client(aws, "sqs").set_queue_attributes(QueueUrl=installed.queue_url, Attributes={"Policy": ""})
    client(aws, "securityhub").update_action_target(
        ActionTargetArn=installed.action_target_arn, Name="renamed"
    )
    repaired = setup(aws, REGION)
    assert sorted(repaired.updated) == sorted(
        [
            f"EventBridge rule {IMPORTED_RULE}",
            f"SQS queue {DEFAULT_QUEUE_NAME}",
            f"Security Hub custom action {ACTION_NAME!r}",
        ]
    )
    assert not setup(aws, REGION).changed


def test_no_auto_remediate_controls_removes_the_imported_rule(aws: Any, installed: SetupResult) -> None:
    result = setup(aws, REGION, auto_controls=[])
    assert result.rule_names == [CUSTOM_RULE]
    assert result.removed == [f"EventBridge rule {IMPORTED_RULE}"]
    names = [r["Name"] for r in client(aws, "events").list_rules()["Rules"]]
    assert names == [CUSTOM_RULE]
    assert f"SQS queue {DEFAULT_QUEUE_NAME}" in result.updated  # the policy names one rule now


def test_a_queue_name_that_cannot_name_the_rules_is_refused(aws: Any) -> None:
    with pytest.raises(ValueError, match="queue name"):
        setup(aws, REGION, queue_name="x" * 51)


def test_a_custom_action_for_two_findings_reaches_the_queue(aws: Any, installed: SetupResult) -> None:
    findings = [a_finding("EC2.13", n=1), a_finding("RDS.5", "NOTIFIED", n=2)]  # neither is automatic
    event = hub_events.custom_action_event(findings, installed.action_target_arn, ADMIN, REGION)
    hub_events.put_events(client(aws, "events"), [event])
    (body,) = received(aws, installed.queue_url)
    assert body["detail-type"] == "Security Hub Findings - Custom Action"
    assert body["source"] == "aws.securityhub"
    assert (body["account"], body["region"], body["time"]) == (ADMIN, REGION, event["time"])
    assert body["resources"] == [installed.action_target_arn]
    assert body["detail"]["actionName"] == ACTION_NAME
    assert body["detail"]["findings"] == findings


def test_a_custom_action_other_than_ours_does_not_reach_the_queue(aws: Any, installed: SetupResult) -> None:
    other = installed.action_target_arn.replace("ASRRemediate", "SendToTicketing")
    ours = hub_events.custom_action_event(
        [a_finding("EC2.13", n=1)], installed.action_target_arn, ADMIN, REGION
    )
    theirs = hub_events.custom_action_event([a_finding("EC2.13", n=2)], other, ADMIN, REGION)
    assert arrived_finding_ids(aws, installed, theirs, ours) == {ours["detail"]["findings"][0]["Id"]}


@pytest.mark.parametrize(
    ("control", "workflow", "arrives"),
    [
        ("EC2.13", "NEW", False),  # auto_remediate: false
        ("EC2.7", "NEW", True),
        ("IAM.14", "NEW", True),  # routed to IAM.7, which is automatic
        ("EC2.7", "RESOLVED", False),
        ("EC2.7", "NOTIFIED", False),
    ],
)
def test_imported_findings_reach_the_queue_only_when_automatic_and_new(
    aws: Any, installed: SetupResult, control: str, workflow: str, arrives: bool
) -> None:
    candidate = hub_events.imported_event([a_finding(control, workflow, n=1)], ADMIN, REGION)
    expected = set(candidate["resources"]) if arrives else set()
    assert arrived_finding_ids(aws, installed, candidate) == expected


def test_imported_events_arrive_for_what_sweeps_take_not_passed_or_archived_findings(
    aws: Any, installed: SetupResult
) -> None:
    passed, warning, archived = (a_finding("EC2.7", n=n) for n in (1, 2, 3))
    passed["Compliance"]["Status"] = "PASSED"
    warning["Compliance"]["Status"] = "WARNING"  # a sweep takes it: so does the rule
    archived["RecordState"] = "ARCHIVED"
    events = [hub_events.imported_event([f], ADMIN, REGION) for f in (passed, warning, archived)]
    assert arrived_finding_ids(aws, installed, *events) == {warning["Id"]}


def test_imported_findings_of_another_product_named_security_hub_start_no_run(
    aws: Any, installed: SetupResult
) -> None:
    """A member account's own product may import findings under Security Hub's name and any
    control: only Security Hub's own product ARN, of any Region, reaches the queue."""
    ours, other_region, forged = (a_finding("EC2.7", n=n) for n in (1, 2, 3))
    other_region["ProductArn"] = "arn:aws:securityhub:eu-west-1::product/aws/securityhub"
    member = local.MEMBER_ACCOUNT
    forged["ProductArn"] = f"arn:aws:securityhub:{REGION}:{member}:product/{member}/default"
    events = [hub_events.imported_event([f], ADMIN, REGION) for f in (ours, other_region, forged)]
    assert arrived_finding_ids(aws, installed, *events) == {ours["Id"], other_region["Id"]}


def test_the_imported_rule_follows_the_accounts_and_exclusions() -> None:
    assert imported_pattern(["EC2.7"], [ADMIN, "333333333333"], ["333333333333"])["detail"]["findings"][
        "AwsAccountId"
    ] == [ADMIN]
    assert imported_pattern(["EC2.7"], (), ["333333333333"])["detail"]["findings"]["AwsAccountId"] == [
        {"anything-but": ["333333333333"]}
    ]
    assert "AwsAccountId" not in imported_pattern(["EC2.7"])["detail"]["findings"]
    organization = Settings(accounts=(ADMIN,), accounts_from_organization=True)
    assert automatic_scope(organization)["accounts"] == ()
    scope = automatic_scope(Settings(exclude_controls=("EC2.7", "S3.9")))
    assert not {"EC2.7", "S3.9"} & set(scope["controls"]) and "CloudTrail.1" in scope["controls"]
    assert set(scope["controls"]) < set(auto_remediate_controls())


def test_the_imported_rule_keeps_to_the_regions_and_to_eventbridge_s_pattern_size(aws: Any) -> None:
    """EventBridge refuses a pattern past 2048 characters by default: with 200 accounts
    listed, setup stopped before the queues existed. The accounts are then left to ingest."""
    regions = ("eu-west-1", REGION)
    few = setup(aws, REGION, settings=Settings(accounts=(ADMIN,), regions=regions))
    pattern = json.loads(client(aws, "events").describe_rule(Name=IMPORTED_RULE)["EventPattern"])
    assert pattern["detail"]["findings"]["Region"] == sorted(regions) and few.notes == []
    many = tuple(f"{n:012d}" for n in range(1, 201))
    result = setup(aws, REGION, settings=Settings(accounts=many, regions=regions))
    stored = client(aws, "events").describe_rule(Name=IMPORTED_RULE)["EventPattern"]
    assert len(stored) <= PATTERN_LIMIT and "AwsAccountId" not in json.loads(stored)["detail"]["findings"]
    assert json.loads(stored)["detail"]["findings"]["Region"] == sorted(regions)
    assert result.notes and "leaves out the accounts" in result.notes[0]


@pytest.mark.parametrize(
    ("settings", "arrives"),
    [
        ({"accounts": (local.MEMBER_ACCOUNT,)}, {local.MEMBER_ACCOUNT}),
        ({"exclude_accounts": (ADMIN,)}, {local.MEMBER_ACCOUNT}),
        ({"exclude_controls": ("EC2.7",)}, set()),
        ({}, {local.MEMBER_ACCOUNT, ADMIN}),
    ],
)
def test_imported_findings_asr_may_not_touch_start_no_run(
    aws: Any, settings: dict[str, Any], arrives: set[str]
) -> None:
    """Out of scope, a finding would start an asr_events run that only rejects it."""
    installed = setup(aws, REGION, settings=Settings(**settings))
    findings = {
        account: a_finding("EC2.7", n=n, account=account)
        for n, account in enumerate((local.MEMBER_ACCOUNT, ADMIN), 1)
    }
    events = [hub_events.imported_event([f], ADMIN, REGION) for f in findings.values()]
    assert arrived_finding_ids(aws, installed, *events) == {findings[a]["Id"] for a in arrives}


def test_put_events_refuses_an_event_for_another_region(aws: Any, installed: SetupResult) -> None:
    event = hub_events.imported_event([a_finding("EC2.7")], ADMIN, "eu-west-1")
    with pytest.raises(ValueError, match="eu-west-1"):
        hub_events.put_events(client(aws, "events"), [event])


def test_cli_setup_prints_the_queue_and_says_when_nothing_changed(
    clean_aws: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["setup", "--local"]) == 0
    first = capsys.readouterr().out
    assert "created: Security Hub custom action" in first
    (url_line,) = [line for line in first.splitlines() if line.startswith("ASR_EVENTS_QUEUE_URL=")]
    assert url_line.endswith(f"/{ADMIN}/{DEFAULT_QUEUE_NAME}")
    assert cli.main(["setup", "--local", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["changed"] is False and second["created"] == []
    assert second["queue_url"].endswith(f"/{ADMIN}/{DEFAULT_QUEUE_NAME}")
    assert cli.main(["setup", "--local"]) == 0
    assert "nothing to change" in capsys.readouterr().out


def test_with_every_allowed_account_excluded_there_is_no_imported_rule_and_it_says_why(
    aws: Any, installed: SetupResult
) -> None:
    client(aws, "securityhub").create_members(AccountDetails=[{"AccountId": local.MEMBER_ACCOUNT}])
    everyone_out = Settings(accounts=(local.MEMBER_ACCOUNT,), exclude_accounts=(local.MEMBER_ACCOUNT,))
    result = setup(aws, REGION, settings=everyone_out)
    assert result.rule_names == [CUSTOM_RULE]
    assert result.removed == [f"EventBridge rule {IMPORTED_RULE}"]
    assert result.notes == [
        "no rule for Imported findings: ASR_EXCLUDE_ACCOUNTS excludes every account of ASR_ACCOUNTS"
    ]
    (target,) = client(aws, "events").list_targets_by_rule(Rule=CUSTOM_RULE)["Targets"]
    assert target["Arn"] == result.queue_arn


def test_setup_notes_the_asr_accounts_that_are_no_security_hub_members(aws: Any) -> None:
    """A mistyped account id in ASR_ACCOUNTS reads as a clean account: its findings never
    reach the administrator, and no sweep could say so."""
    securityhub = client(aws, "securityhub")
    import_findings(securityhub, [a_finding("EC2.7", account=local.MEMBER_ACCOUNT)])  # a member now
    typo = local.MEMBER_ACCOUNT[:-1] + "3"
    result = setup(aws, REGION, settings=Settings(accounts=(ADMIN, local.MEMBER_ACCOUNT, typo)))
    assert len(result.notes) == 1 and result.notes[0].startswith(
        f"ASR_ACCOUNTS names {typo}, which is no Security Hub member of {ADMIN}"
    )
    assert setup(aws, REGION, settings=Settings(accounts=(ADMIN, local.MEMBER_ACCOUNT))).notes == []


def test_a_member_is_enabled_however_the_status_is_cased() -> None:
    """AWS documents Enabled, Removed, ...; the stand-in answers ENABLED."""

    class Hub:
        def get_members(self, AccountIds: list[str]) -> dict[str, Any]:
            statuses = {"222222222222": "Enabled", "333333333333": "Removed"}
            return {"Members": [{"AccountId": a, "MemberStatus": statuses[a]} for a in AccountIds]}

    notes = not_members(Hub(), ["222222222222", "333333333333"], ADMIN)
    assert len(notes) == 1 and "333333333333" in notes[0] and "Removed" in notes[0]


def test_setup_that_may_not_read_the_members_says_so_and_goes_on(aws: Any) -> None:
    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetMembers")

    securityhub = client(aws, "securityhub")
    securityhub.get_members = refuse
    assert not_members(securityhub, [local.MEMBER_ACCOUNT], ADMIN) == [
        "could not check that ASR_ACCOUNTS are Security Hub members: AccessDeniedException: no"
    ]


@pytest.fixture
def imported_rule_refused() -> Iterator[pytest.MonkeyPatch]:
    """EventBridge refuses the Imported rule's pattern: setup fails after the queues, the
    custom-action rule and its target are made. ``undo()`` takes the cause away (and only it)."""
    from asr import setup as installer

    def refused(*_: Any) -> dict[str, Any]:
        return {"source": [], "detail-type": ["Security Hub Findings - Imported"]}

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(installer, "imported_pattern", refused)
        yield patch


MADE_BEFORE_THE_IMPORTED_RULE = [
    "Security Hub custom action 'Remediate with ASR'",
    f"SQS queue {DEFAULT_QUEUE_NAME}-dlq",
    f"SQS queue {DEFAULT_QUEUE_NAME}",
    f"EventBridge rule {CUSTOM_RULE}",
    f"target of {CUSTOM_RULE} -> queue",
]


def test_a_rule_eventbridge_refuses_leaves_no_rule_delivering_nowhere(
    aws: Any, imported_rule_refused: pytest.MonkeyPatch
) -> None:
    """The queues come first, and each rule gets its target before the next rule is made; the
    failure names its step and carries what was made before it."""
    with pytest.raises(SetupIncomplete, match=f"^EventBridge rule {IMPORTED_RULE} failed: ") as failed:
        setup(aws, REGION)
    assert failed.value.step == f"EventBridge rule {IMPORTED_RULE}"
    assert isinstance(failed.value.__cause__, ClientError)
    assert "InvalidEventPattern" in str(failed.value.__cause__)
    partial = failed.value.result
    assert partial.created == MADE_BEFORE_THE_IMPORTED_RULE
    assert partial.queue_url.endswith(f"/{ADMIN}/{DEFAULT_QUEUE_NAME}")
    events = client(aws, "events")
    assert [r["Name"] for r in events.list_rules()["Rules"]] == [CUSTOM_RULE]
    (target,) = events.list_targets_by_rule(Rule=CUSTOM_RULE)["Targets"]
    assert target["Arn"].endswith(f":{DEFAULT_QUEUE_NAME}")


@pytest.mark.parametrize(
    ("controls", "problem"),
    [
        ("EC2.7,XYZ.9", "automatic control 'XYZ.9' is no control asr fixes"),
        ("ec2.7", "automatic control 'ec2.7' is no control asr fixes"),
        ("EC2.7,EC2.13", "automatic control 'EC2.13': its playbook EC2.13 has auto_remediate off"),
    ],
)
def test_cli_setup_refuses_auto_controls_asr_events_would_not_fix(
    aws: Any, capsys: pytest.CaptureFixture[str], controls: str, problem: str
) -> None:
    assert cli.main(["setup", "--local", "--auto-controls", controls]) == 1
    assert problem in capsys.readouterr().err
    assert client(aws, "events").list_rules()["Rules"] == []


def test_cli_setup_says_why_it_made_no_imported_rule(
    clean_aws: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["setup", "--local", "--auto-controls", ""]) == 0
    assert "note: no rule for Imported findings: no automatic control" in capsys.readouterr().out


def test_cli_setup_says_what_it_made_before_the_step_that_failed_and_a_second_run_finishes(
    aws: Any, imported_rule_refused: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["setup", "--local"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"asr setup: EventBridge rule {IMPORTED_RULE} failed: ")
    assert "InvalidEventPattern" in err[0]
    assert err[1:-1] == [f"created: {what}" for what in MADE_BEFORE_THE_IMPORTED_RULE]
    assert "run 'asr setup' again" in err[-1]

    imported_rule_refused.undo()  # the cause mended
    assert cli.main(["setup", "--local"]) == 0
    out = capsys.readouterr().out
    for what in MADE_BEFORE_THE_IMPORTED_RULE:
        assert f"already in place: {what}" in out
    assert f"created: EventBridge rule {IMPORTED_RULE}" in out
    assert f"created: target of {IMPORTED_RULE} -> queue" in out
    (target,) = client(aws, "events").list_targets_by_rule(Rule=IMPORTED_RULE)["Targets"]
    assert target["Arn"].endswith(f":{DEFAULT_QUEUE_NAME}")


def test_cli_setup_json_gives_the_failed_step_and_what_was_made_before_it(
    aws: Any, imported_rule_refused: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["setup", "--local", "--json"]) == 1
    partial = json.loads(capsys.readouterr().out)
    assert partial["failed_step"] == f"EventBridge rule {IMPORTED_RULE}"
    assert "InvalidEventPattern" in partial["error"]
    assert not partial["error"].startswith("EventBridge rule")  # the cause, not the step again
    assert partial["created"] == MADE_BEFORE_THE_IMPORTED_RULE
    assert partial["changed"] is True
    assert partial["queue_url"].endswith(f"/{ADMIN}/{DEFAULT_QUEUE_NAME}")
