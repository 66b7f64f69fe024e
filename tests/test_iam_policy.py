"""The IAM policies and the member-role template: generated from the playbooks, never stale,
valid for CloudFormation and IAM, as small as the playbooks allow, and deployable."""

from __future__ import annotations

import fnmatch
import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import cfnlint
import cfnlint.api
import pytest
import yaml

from asr import actions, cli, iam_policy
from asr.aws import AwsContext, Clients
from asr.config import Settings
from asr.findings import parse_finding
from asr.guard import Scope
from asr.local import ADMIN_ACCOUNT, MEMBER_ACCOUNT
from asr.local.seed import finding, seed_one
from asr.playbooks import PlaybookRegistry, load_playbooks
from asr.remediate import Status, run_batch
from asr.setup import setup

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = "AWS-DisablePublicAccessForSecurityGroup"
# IAM's own data on every action of every service, as cfn-lint ships it (from the Service
# Authorization Reference): {"ec2": {"Actions": {"describesecuritygroups": {...}}}}.
IAM_ACTIONS = json.loads((Path(cfnlint.__file__).parent / "data/AdditionalSpecs/Policies.json").read_text())
# API operations whose IAM action has another name: (boto3 service, operation) -> IAM action.
IAM_NAME = {
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "PutBucketEncryption"): "s3:PutEncryptionConfiguration",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "PutPublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("s3", "GetBucketLifecycleConfiguration"): "s3:GetLifecycleConfiguration",
    ("s3", "PutBucketLifecycleConfiguration"): "s3:PutLifecycleConfiguration",
    ("s3", "GetBucketNotificationConfiguration"): "s3:GetBucketNotification",
    ("s3", "PutBucketNotificationConfiguration"): "s3:PutBucketNotification",
    ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
    ("s3control", "PutPublicAccessBlock"): "s3:PutAccountPublicAccessBlock",
    # Deleting a configuration is allowed by the permission that puts it.
    ("s3", "DeleteBucketEncryption"): "s3:PutEncryptionConfiguration",
    ("s3", "DeletePublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("s3", "DeleteBucketLifecycle"): "s3:PutLifecycleConfiguration",
    ("s3control", "DeletePublicAccessBlock"): "s3:PutAccountPublicAccessBlock",
    ("resourcegroupstaggingapi", "GetResources"): "tag:GetResources",
    # API Gateway's management actions are named by HTTP method, not by operation.
    ("apigateway", "GetStage"): "apigateway:GET",
    ("apigateway", "UpdateStage"): "apigateway:PATCH",
    ("apigateway", "GetAccount"): "apigateway:GET",
    ("apigateway", "UpdateAccount"): "apigateway:PATCH",
    ("apigatewayv2", "GetApi"): "apigateway:GET",
    ("apigatewayv2", "GetStage"): "apigateway:GET",
    ("apigatewayv2", "UpdateStage"): "apigateway:PATCH",
}
# Services whose IAM prefix is not the name their requests are signed with.
IAM_PREFIX = {"monitoring": "cloudwatch"}


@pytest.fixture(scope="module")
def project() -> PlaybookRegistry:
    return load_playbooks(ROOT / "playbooks")


def playbook_dir(tmp_path: Path, controls: list[str] | None = None, ssm_for: str | None = None) -> Path:
    """A copy of the project's playbooks (or some of them); ``ssm_for`` gets the SSM document."""
    directory = tmp_path / "playbooks"
    directory.mkdir(parents=True)
    for path in sorted((ROOT / "playbooks").glob("*.yaml")):
        if controls is None or path.stem in controls:
            shutil.copy(path, directory)
    if ssm_for:
        path = directory / f"{ssm_for}.yaml"
        data = yaml.safe_load(path.read_text())
        data["remediation"]["ssm_document"] = {
            "name": DOCUMENT,
            "parameters": {"GroupId": "{resource_id}", "AutomationAssumeRole": "{automation_role_arn}"},
        }
        path.write_text(yaml.safe_dump(data))
    return directory


@pytest.fixture
def with_ssm(tmp_path: Path) -> PlaybookRegistry:
    """The project's playbooks, EC2.13 applied through the AWS-managed SSM document."""
    return load_playbooks(playbook_dir(tmp_path, ssm_for="EC2.13"))


def allowing(policies: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for document in policies.values() for s in document["Statement"] if s["Effect"] == "Allow"]


def granted(policies: dict[str, Any]) -> set[str]:
    return {action for s in allowing(policies) for action in s["Action"]}


def statements_of(policies: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in allowing(policies) if action in s["Action"]]


# --- The committed files -------------------------------------------------------------------


@pytest.mark.parametrize("kind", iam_policy.KINDS)
def test_deploy_files_equal_a_fresh_generation(project: PlaybookRegistry, kind: str) -> None:
    path = iam_policy.FILES[kind]
    assert path.exists(), f"{path.relative_to(ROOT)} is missing: run `asr policy {kind} --write`"
    assert path.read_text() == iam_policy.reference(kind, project), (
        f"{path.relative_to(ROOT)} is stale (playbooks, actions or the generator changed): "
        f"run `asr policy {kind} --write` and commit it"
    )


def lint(text: str) -> list[Any]:
    """cfn-lint's errors, and its warnings about IAM actions that do not exist."""
    matches = cfnlint.api.lint(text, regions=["us-east-1"])
    return [m for m in matches if m.rule.id.startswith("E") or m.rule.id == "W3037"]


def test_cfn_lint_finds_no_errors_in_the_template() -> None:
    assert lint(iam_policy.FILES["template"].read_text()) == []


def test_cfn_lint_finds_no_errors_with_the_automation_role(with_ssm: PlaybookRegistry) -> None:
    text = iam_policy.generate("template", with_ssm, Settings())
    assert "AutomationRole" in yaml.safe_load(text)["Resources"]
    assert lint(text) == []


# --- What the member role may do -----------------------------------------------------------


def test_every_action_permission_is_in_the_member_policy(project: PlaybookRegistry) -> None:
    policies = iam_policy.member_policies(project)
    for playbook in project:
        missing = set(actions.get_action(playbook.action).permissions) - granted(policies)
        assert not missing, f"{playbook.control_id} ({playbook.action}) is not granted {sorted(missing)}"


def test_what_only_undoing_a_fix_needs_is_on_the_rollback_role_only(project: PlaybookRegistry) -> None:
    """Opening a security group again, stopping a recorder, making a function public: the
    member role every sweep uses cannot; the role only asr_rollback assumes can, and can
    read and write all the fixes do (a revert reads, and may write what the fix wrote)."""
    member, rollback = (
        granted(f(project)) for f in (iam_policy.member_policies, iam_policy.rollback_policies)
    )
    classes = {actions.get_action(pb.action) for pb in project}
    undone = {cls for cls in classes if not iam_policy._never_undone(cls)}
    # EC2.10 writes a rule only to the group its own CreateSecurityGroup tagged (iam_policy.SCOPES).
    confined = {"ec2:AuthorizeSecurityGroupIngress"}
    fixing = {p for cls in undone for p in cls.permissions} - confined
    undoing = {p for cls in undone for p in cls.revert_permissions} - fixing
    assert {"ec2:AuthorizeSecurityGroupIngress", "config:StopConfigurationRecorder"} <= undoing
    assert member & undoing <= confined
    policies = iam_policy.member_policies(project)
    made_by_ec2_10 = {"StringEquals": {"aws:ResourceTag/asr:made-for": "EC2.10"}}
    for statement in statements_of(policies, "ec2:AuthorizeSecurityGroupIngress"):
        assert statement["Condition"] == made_by_ec2_10, statement
    [tagging] = statements_of(policies, "ec2:CreateTags")
    assert tagging["Condition"] == {
        "StringEquals": {"ec2:CreateAction": ["CreateSecurityGroup", "CreateVpcEndpoint"]}
    }
    assert fixing | undoing <= rollback
    never_undone = {p for cls in classes - undone for p in cls.permissions}  # EC2.4, CloudTrail.1, ...
    assert member - rollback <= {*iam_policy.SSM_EXECUTOR, "iam:PassRole", *never_undone}


@pytest.mark.parametrize(
    ("permission", "made", "named"),
    [
        ("ec2:CreateSecurityGroup", "security-group/*", {"vpc/*"}),
        ("ec2:CreateVpcEndpoint", "vpc-endpoint/*", {"vpc/*", "subnet/*", "security-group/*"}),
    ],
)
def test_ec2_10_s_tag_condition_is_on_what_a_call_makes_not_on_what_it_names(
    project: PlaybookRegistry, permission: str, made: str, named: set[str]
) -> None:
    """EC2 checks a call on each resource it names, and the tag the request gives is the made
    resource's: the same condition on the VPC would refuse every call."""
    conditioned: list[str] = []
    plain: set[str] = set()
    for statement in statements_of(iam_policy.member_policies(project), permission):
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        kinds = {resource.rsplit(":", 1)[1] for resource in resources}
        assert "*" not in resources, statement
        if "Condition" in statement:
            assert statement["Condition"]["StringEquals"]["aws:RequestTag/asr:made-for"] == "EC2.10"
            conditioned += kinds
        else:
            plain |= kinds
    assert (conditioned, plain) == ([made], named)


def test_the_template_fits_cloudformations_template_body_limit(project: PlaybookRegistry) -> None:
    """51,200 bytes: above it, create-stack-set needs the template in S3 (--template-url)."""
    assert len(iam_policy.FILES["template"].read_bytes()) < 51_200


def test_the_member_policy_grants_nothing_the_playbooks_do_not_use(project: PlaybookRegistry) -> None:
    declared = {
        p
        for playbook in project
        for cls in [actions.get_action(playbook.action)]
        for p in (*cls.permissions, *cls.revert_permissions)
    }
    extra = granted(iam_policy.member_policies(project)) - declared
    # The runner's own calls, and GetCallerIdentity (which needs no permission) found in an action's code.
    assert set(iam_policy.RUNNER) <= extra <= {*iam_policy.RUNNER, "sts:GetCallerIdentity"}


def test_the_member_role_may_put_no_key_policy_but_its_own_keys(project: PlaybookRegistry) -> None:
    """kms:PutKeyPolicy on every key would let the role open or lock any key of the account;
    the keys asr makes grant it in their own policy (KMS's lockout check needs it there)."""
    policies = iam_policy.render(iam_policy.member_policies(project), iam_policy.plain_values(Settings()))
    assert "kms:CreateKey" in granted(policies)
    assert "kms:PutKeyPolicy" not in granted(policies)


def test_removing_playbooks_shrinks_the_policy(tmp_path: Path, project: PlaybookRegistry) -> None:
    some = load_playbooks(playbook_dir(tmp_path, controls=["EC2.2", "S3.1"]))
    assert granted(iam_policy.member_policies(some)) == {
        "ec2:DescribeSecurityGroups",
        "ec2:RevokeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupIngress",
        "s3:GetAccountPublicAccessBlock",
        "s3:PutAccountPublicAccessBlock",
        *iam_policy.RUNNER,
    }
    undo = {"ec2:AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupIngress"}  # asr_rollback's
    assert granted(iam_policy.rollback_policies(some)) == granted(iam_policy.member_policies(some)) | undo


def test_caller_identity_only_with_an_action_that_uses_it(tmp_path: Path) -> None:
    without = load_playbooks(playbook_dir(tmp_path / "a", controls=["S3.1", "S3.5"]))
    with_it = load_playbooks(playbook_dir(tmp_path / "b", controls=["S3.6"]))
    assert "sts:GetCallerIdentity" not in granted(iam_policy.member_policies(without))
    assert "sts:GetCallerIdentity" in granted(iam_policy.member_policies(with_it))


def test_no_ssm_permissions_without_ssm_documents(project: PlaybookRegistry) -> None:
    assert not iam_policy.ssm_documents(project)
    policies = iam_policy.member_policies(project)
    assert not set(iam_policy.SSM_EXECUTOR) & granted(policies)
    assert all("${AutomationRoleName}" not in json.dumps(s) for s in statements_of(policies, "iam:PassRole"))
    template = iam_policy.template(project, Settings())
    assert "AutomationRole" not in template["Resources"]
    assert "AutomationRoleName" not in template["Parameters"]


def test_ssm_documents_bring_the_executor_and_pass_only_the_automation_role(
    with_ssm: PlaybookRegistry,
) -> None:
    policies = iam_policy.member_policies(with_ssm)
    assert set(iam_policy.SSM_EXECUTOR) <= granted(policies)
    automation = [s for s in statements_of(policies, "iam:PassRole") if "AutomationRoleName" in json.dumps(s)]
    assert automation == [
        {
            "Sid": automation[0]["Sid"],
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AutomationRoleName}",
            "Condition": {"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}},
        }
    ]
    assert iam_policy.automation_policy(with_ssm) == {
        "Version": iam_policy.VERSION,
        "Statement": [
            {
                "Sid": "Ec2",
                "Effect": "Allow",
                "Action": ["ec2:DescribeSecurityGroups", "ec2:RevokeSecurityGroupIngress"],
                "Resource": "*",
            }
        ],
    }


def test_an_ssm_document_without_known_permissions_stops_generation(tmp_path: Path) -> None:
    directory = playbook_dir(tmp_path, controls=["EC2.13"], ssm_for="EC2.13")
    path = directory / "EC2.13.yaml"
    path.write_text(path.read_text().replace(DOCUMENT, "Custom-OpenEverything"))
    with pytest.raises(iam_policy.PolicyError, match="Custom-OpenEverything"):
        iam_policy.template(load_playbooks(directory), Settings())


# What sets who may assume a role, or what a role, user or group may do, in words of the
# caller's choosing: IAM has no condition on a trust policy's or a policy document's content.
# With any of them the member role could make an identity for itself with any power.
ESCALATING = {
    "iam:CreateRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:CreatePolicy",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:CreateInstanceProfile",
    "iam:AddRoleToInstanceProfile",
    "iam:CreateUser",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:PutUserPolicy",
    "iam:AttachUserPolicy",
    "iam:PutGroupPolicy",
    "iam:AttachGroupPolicy",
    "iam:AddUserToGroup",
    "sts:AssumeRole",
    # Another identity's power, reached through what it already is or has:
    "cloudformation:UpdateStack",  # a stack's service role deploys whatever template is sent
    "iam:UpdateAccessKey",  # a deactivated (leaked) key works again
}


# The escalating grants fixes need, each known and documented (docs/deploy-roles.md):
# CloudFormation.1 re-deploys a stack; IAM.3/8/22 turn access keys off (a rollback, on again).
KNOWN = {"cloudformation:UpdateStack", "iam:UpdateAccessKey"}


def escalating(permissions: set[str]) -> set[str]:
    """The permissions, or wildcards, that allow any of ``ESCALATING``."""
    return {p for p in permissions if any(fnmatch.fnmatchcase(e, p) for e in ESCALATING)}


def test_the_member_role_can_make_no_identity_nor_write_what_one_may_do(project: PlaybookRegistry) -> None:
    """The roles fixes hand to services are made by the member-role stack, not by the member
    role; the other escalating grants are the known ones, and a new one fails here."""
    assert escalating(granted(iam_policy.member_policies(project))) == KNOWN
    assert escalating(granted(iam_policy.rollback_policies(project))) == KNOWN
    declared = {p for cls in actions.REGISTRY.values() for p in (*cls.permissions, *cls.revert_permissions)}
    assert escalating(declared) == KNOWN
    assert escalating({"iam:*", "iam:Put*", "*"}) == {"iam:*", "iam:Put*", "*"}, "wildcards are caught"


def test_no_role_can_be_written_or_passed_beyond_the_playbooks_own(project: PlaybookRegistry) -> None:
    """Creating roles and putting policies on them, on any role, would let the member role make
    itself an administrator, and detaching and deleting would let it break any role (its own
    included): those permissions name the playbooks' roles only."""
    risky = {
        "iam:CreateRole",
        "iam:PutRolePolicy",
        "iam:AttachRolePolicy",
        "iam:PassRole",
        "iam:DeleteRole",
        "iam:DetachRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:CreateServiceLinkedRole",
    }
    policies = iam_policy.member_policies(project)
    for statement in (s for s in allowing(policies) if risky & set(s["Action"])):
        resources = (
            [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        )
        passed_to = statement.get("Condition", {}).get("StringEquals", {}).get("iam:PassedToService")
        if "iam:PassRole" in statement["Action"]:
            assert passed_to, statement
        if "iam:CreateServiceLinkedRole" in statement["Action"]:
            assert statement["Condition"]["StringEquals"]["iam:AWSServiceName"], statement
        # The one exception: AWS Config may be passed the recorder's own role, whichever it is.
        assert "*" not in resources or (statement["Action"], passed_to) == (
            ["iam:PassRole"],
            "config.amazonaws.com",
        ), statement
        if {"iam:AttachRolePolicy", "iam:DetachRolePolicy"} & set(statement["Action"]):
            assert statement["Condition"]["ArnEquals"]["iam:PolicyARN"] in {
                f"arn:{iam_policy.PARTITION}:iam::aws:policy/{name}"
                for name in ("AWSSupportAccess", "AmazonSSMManagedInstanceCore")
            }, statement


def _decision(policies: dict[str, Any], action: str, resource: str) -> str:
    """IAM's verdict on one call from these identity policies, conditions taken as met (the
    widest reading): an explicit deny wins, then any allow, else the implicit deny."""

    def matches(patterns: str | list[str], value: str) -> bool:
        return any(
            fnmatch.fnmatchcase(value, p) for p in ([patterns] if isinstance(patterns, str) else patterns)
        )

    verdicts = set()
    for statement in (s for document in policies.values() for s in document["Statement"]):
        if "NotAction" in statement:
            named = not matches(statement["NotAction"], action)
        else:
            named = matches(statement["Action"], action)
        if named and matches(statement["Resource"], resource):
            verdicts.add(statement["Effect"])
    return "Deny" if "Deny" in verdicts else "Allow" if "Allow" in verdicts else "implicit deny"


def test_the_member_role_may_read_itself_but_never_change_itself(project: PlaybookRegistry) -> None:
    """SSM.1 may attach AmazonSSMManagedInstanceCore to any role (an instance's role is whichever
    its profile holds): the member role could otherwise give it to itself, and so any IAM write
    a future grant allows on "any role"."""
    settings = Settings()
    policies = iam_policy.render(iam_policy.member_policies(project), iam_policy.plain_values(settings))
    itself = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/{settings.member_role_name}"
    other = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/web-instances"
    without_deny = {
        name: {**d, "Statement": [s for s in d["Statement"] if s["Effect"] == "Allow"]}
        for name, d in policies.items()
    }
    assert _decision(without_deny, "iam:AttachRolePolicy", itself) == "Allow", "the case this guards"
    assert _decision(policies, "iam:AttachRolePolicy", itself) == "Deny"
    assert _decision(policies, "iam:AttachRolePolicy", other) == "Allow"
    assert _decision(policies, "iam:ListRoleTags", itself) == "Allow"  # the exclusion-tag check
    writes = {
        a for a in granted(policies) if a.startswith("iam:") and not a.startswith(("iam:Get", "iam:List"))
    }
    assert writes, "the catalogue writes IAM"
    assert {a: _decision(policies, a, itself) for a in writes} == dict.fromkeys(writes, "Deny")
    first = next(iter(iam_policy.member_policies(project).values()))
    assert first["Statement"][0] == iam_policy.NOT_ITSELF


def test_topics_stages_and_the_sharing_setting_are_granted_by_name(project: PlaybookRegistry) -> None:
    """On "*", sns:Subscribe let the member role copy any topic's messages to an endpoint of its
    choosing, apigateway:PATCH drop a method's authorizer or point an integration elsewhere,
    and ssm:UpdateServiceSetting change any SSM setting: each is granted on what fixes change."""
    policies = iam_policy.render(iam_policy.member_policies(project), iam_policy.plain_values(Settings()))
    topic = f"arn:aws:sns:eu-west-1:{MEMBER_ACCOUNT}:"
    assert _decision(policies, "sns:Subscribe", f"{topic}asr-security-alarms") == "Allow"
    assert _decision(policies, "sns:Subscribe", f"{topic}payments-events") == "implicit deny"
    for name in ("asr-security-alarms", "asr-cloudformation-events", "asr-s3-event-notifications"):
        assert _decision(policies, "sns:CreateTopic", f"{topic}{name}") == "Allow", name
    assert _decision(policies, "sns:CreateTopic", f"{topic}payments-events") == "implicit deny"
    api = "arn:aws:apigateway:us-east-1::"
    for path in ("/restapis/a1b2c3/stages/prod", "/apis/a1b2c3/stages/prod", "/account"):
        assert _decision(policies, "apigateway:PATCH", api + path) == "Allow", path
    for path in ("/restapis/a1b2c3/resources/r1/methods/GET", "/restapis/a1b2c3", "/apis/a1b2c3/routes/r1"):
        assert _decision(policies, "apigateway:PATCH", api + path) == "implicit deny", path
    setting = f"arn:aws:ssm:us-east-1:{MEMBER_ACCOUNT}:servicesetting/ssm/"
    sharing = f"{setting}documents/console/public-sharing-permission"
    assert _decision(policies, "ssm:UpdateServiceSetting", sharing) == "Allow"
    assert _decision(policies, "ssm:UpdateServiceSetting", f"{setting}managed-instance/activation-tier") == (
        "implicit deny"
    )


def test_cloudformation_may_resolve_cdk_s_and_aws_s_public_parameters_only(project: PlaybookRegistry) -> None:
    """UpdateStack reads a stack's SSM parameter types as the caller (every CDK stack has
    BootstrapVersion): those parameters, and no other, which may be a SecureString."""
    policies = iam_policy.render(iam_policy.member_policies(project), iam_policy.plain_values(Settings()))
    own = f"arn:aws:ssm:eu-west-1:{MEMBER_ACCOUNT}:parameter"
    assert _decision(policies, "ssm:GetParameters", f"{own}/cdk-bootstrap/hnb659fds/version") == "Allow"
    public = "arn:aws:ssm:eu-west-1::parameter/aws/service/ami-amazon-linux-latest"
    assert _decision(policies, "ssm:GetParameters", f"{public}/al2023-ami-kernel-default-x86_64") == "Allow"
    assert _decision(policies, "ssm:GetParameters", f"{own}/payments/db-password") == "implicit deny"


def test_the_rollback_role_gets_nothing_of_a_fix_no_revert_undoes(project: PlaybookRegistry) -> None:
    """EC2.4 terminates instances and no rollback brings one back: the rollback role, which only
    undoes fixes, must not be able to terminate any."""
    member = {g.permission for p in project for g in iam_policy.action_grants(p)}
    rollback = {g.permission for g in iam_policy.rollback_grants(project)}
    assert "ec2:TerminateInstances" in member
    assert "ec2:TerminateInstances" not in rollback
    assert "cloudtrail:CreateTrail" not in rollback  # CloudTrail.1's trail is never taken down
    assert "secretsmanager:RestoreSecret" in rollback  # SecretsManager.3's deletion is undone


def test_secrets_are_deleted_only_with_a_recovery_window_and_rotation_invokes_own_functions(
    project: PlaybookRegistry,
) -> None:
    """SecretsManager.3 schedules a deletion that can be undone for 30 days: the grant must not
    allow ForceDeleteWithoutRecovery (which sends no window). RotateSecret needs InvokeFunction
    on a rotation function of any name: only the account's own."""
    values = iam_policy.plain_values(Settings()) | {"AWS::AccountId": MEMBER_ACCOUNT}
    policies = iam_policy.render(iam_policy.member_policies(project), values)
    [delete] = [
        s
        for d in policies.values()
        for s in d["Statement"]
        if "secretsmanager:DeleteSecret" in s.get("Action", ())
    ]
    assert delete["Condition"] == {"NumericGreaterThanEquals": {"secretsmanager:RecoveryWindowInDays": "7"}}
    secret = f"arn:aws:secretsmanager:us-east-1:{MEMBER_ACCOUNT}:secret:orders-AbC123"
    assert _decision(policies, "secretsmanager:DeleteSecret", secret) == "Allow"
    function = f"arn:aws:lambda:us-east-1:{MEMBER_ACCOUNT}:function:rotate-orders"
    assert _decision(policies, "lambda:InvokeFunction", function) == "Allow"
    elsewhere = "arn:aws:lambda:us-east-1:999999999999:function:rotate-orders"
    assert _decision(policies, "lambda:InvokeFunction", elsewhere) == "implicit deny"


def test_no_stackset_instance_may_be_updated_and_without_cloudformation_1_no_deny_is_needed(
    tmp_path: Path, project: PlaybookRegistry
) -> None:
    """UpdateStack is granted on every stack (CloudFormation.1), and the member-role stack is a
    StackSet's instance: the role could have rewritten the stack that defines it."""
    for policies in (iam_policy.member_policies(project), iam_policy.rollback_policies(project)):
        rendered = iam_policy.render(policies, iam_policy.plain_values(Settings()))
        stacks = f"arn:aws:cloudformation:eu-west-1:{MEMBER_ACCOUNT}:stack/"
        assert (
            _decision(rendered, "cloudformation:UpdateStack", f"{stacks}StackSet-asr-member-3f2a/9d1e")
            == "Deny"
        )
        assert _decision(rendered, "cloudformation:UpdateStack", f"{stacks}payments-api/9d1e") == "Allow"
    without = load_playbooks(playbook_dir(tmp_path, ["EC2.19", "S3.5"]))
    sids = {
        s["Sid"] for document in iam_policy.member_policies(without).values() for s in document["Statement"]
    }
    assert "NeverUpdateAStackSetInstance" not in sids and "NeverChangeItself" in sids


def test_scopes_name_registered_actions_and_their_declared_permissions() -> None:
    for name, scopes in iam_policy.SCOPES.items():
        action = actions.get_action(name)
        declared = {*action.permissions, *action.revert_permissions}
        for scope in scopes:
            assert set(scope.permissions) <= declared, f"{name}: {scope.permissions} not all declared"


def all_permissions(playbooks: PlaybookRegistry) -> set[str]:
    admin = iam_policy.admin_policies("ASRMemberRole")
    return (
        {p for cls in actions.REGISTRY.values() for p in cls.permissions}
        | granted(iam_policy.member_policies(playbooks))
        | granted(admin)
        | {p for needed in iam_policy.DOCUMENT_PERMISSIONS.values() for p in needed}
    )


def test_every_permission_is_a_real_iam_action(with_ssm: PlaybookRegistry) -> None:
    unknown = sorted(
        permission
        for permission in all_permissions(with_ssm)
        if permission.split(":")[1].lower()
        not in IAM_ACTIONS.get(permission.split(":")[0].lower(), {}).get("Actions", {})
    )
    assert unknown == []


# --- Sizes and splitting -------------------------------------------------------------------


def test_policies_stay_under_the_size_limit(with_ssm: PlaybookRegistry) -> None:
    documents = [
        *iam_policy.member_policies(with_ssm).values(),
        *iam_policy.admin_policies(
            "x" * 64, topic_arn="arn:aws:sns:us-east-1:123456789012:" + "t" * 256
        ).values(),
        iam_policy.automation_policy(with_ssm),
    ]
    for document in documents:
        assert iam_policy.size(document) <= iam_policy.SIZE_LIMIT


def many_grants(count: int) -> list[iam_policy.Grant]:
    return [iam_policy.Grant(f"ec2:DescribeSomethingQuiteLong{n:04d}") for n in range(count)] + [
        iam_policy.Grant(f"s3:GetSomething{n:03d}", ("arn:aws:s3:::a-bucket/*",)) for n in range(150)
    ]


def test_a_large_policy_is_split_deterministically_and_loses_nothing() -> None:
    grants = many_grants(400)
    documents = iam_policy.pack(iam_policy.statements(grants))
    assert len(documents) > 2
    assert documents == iam_policy.pack(iam_policy.statements(reversed(grants)))
    assert all(iam_policy.size(d) <= iam_policy.SIZE_LIMIT for d in documents)
    assert granted(dict(enumerate(documents))) == {g.permission for g in grants}
    for document in documents:
        sids = [s["Sid"] for s in document["Statement"]]
        assert len(sids) == len(set(sids)) and all(sid.isalnum() for sid in sids)


def test_more_policies_than_a_role_can_hold_is_an_error() -> None:
    with pytest.raises(iam_policy.PolicyError, match="at most 10"):
        iam_policy.pack(iam_policy.statements(many_grants(3000)))


# --- The trust policy and the template's parameters ----------------------------------------


def test_external_id_condition_only_when_the_parameter_is_set(project: PlaybookRegistry) -> None:
    template = yaml.safe_load(iam_policy.FILES["template"].read_text())
    assert template["Conditions"]["HasExternalId"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ExternalId"}, ""]}]
    }
    trust = template["Resources"]["MemberRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust[0]["Condition"] == {
        "Fn::If": [
            "HasExternalId",
            {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}},
            {"Ref": "AWS::NoValue"},
        ]
    }
    # Used by the condition and the two roles' trust policies' conditions, nowhere else.
    assert json.dumps(template).count('{"Ref": "ExternalId"}') == 3


def test_template_parameters_and_defaults(with_ssm: PlaybookRegistry) -> None:
    template = iam_policy.template(with_ssm, Settings())
    parameters = template["Parameters"]
    assert "Default" not in parameters["AdministratorAccountId"]
    # Trusting the whole administrator account, or no ExternalId, is a choice made by passing
    # "", not a default an update falls back to.
    assert "Default" not in parameters["AdministratorRoleName"]
    assert "Default" not in parameters["ExternalId"]
    assert parameters["RoleName"]["Default"] == "ASRMemberRole"
    assert parameters["AutomationRoleName"]["Default"] == "ASRAutomationRole"
    policies = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::ManagedPolicy"]
    member, rollback = iam_policy.member_policies(with_ssm), iam_policy.rollback_policies(with_ssm)
    holders: dict[str, list[str]] = {}
    for policy in policies:
        for role in policy["Properties"]["Roles"]:
            holders.setdefault(role["Ref"], []).append(policy["Properties"]["ManagedPolicyName"]["Fn::Sub"])
    assert holders == {"MemberRole": list(member), "RollbackRole": list(rollback)}
    shared = set(member) & set(rollback)
    assert shared and all(name.startswith("${RoleName}-shared-") for name in shared)


def test_what_both_roles_need_is_written_once(project: PlaybookRegistry) -> None:
    """A permission on some resources, under some condition, in a policy of both roles is in none
    of either role's own (the rollback role's own ec2:AuthorizeSecurityGroupIngress is on every
    group, the shared one on EC2.10's alone)."""
    member, rollback = iam_policy.member_policies(project), iam_policy.rollback_policies(project)
    shared = {name: member[name] for name in set(member) & set(rollback)}
    own = {name: document for name, document in {**member, **rollback}.items() if name not in shared}

    def grants(policies: dict[str, Any]) -> set[str]:
        return {
            json.dumps([action, s["Resource"], s.get("Condition")], sort_keys=True)
            for s in allowing(policies)
            for action in s["Action"]
        }

    assert grants(shared) and not grants(shared) & grants(own)
    assert "Deny" not in json.dumps(own)


# --- Deployed to the stand-in --------------------------------------------------------------


def with_account(client: Any, account: str) -> Any:
    """A client of the same service acting in another account of the stand-in (moto tells the
    account by the credentials an assumed role's session has)."""
    sts = boto3.client("sts", endpoint_url=client.meta.endpoint_url, region_name="us-east-1")
    credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/deployer", RoleSessionName="test")[
        "Credentials"
    ]
    return boto3.client(
        client.meta.service_model.service_name,
        endpoint_url=client.meta.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def deploy(
    endpoint: str, name: str, text: str, account: str | None = None, **parameters: str
) -> dict[str, str]:
    """Create the stack and return its outputs (moto's CloudFormation creates synchronously)."""
    cloudformation = boto3.client("cloudformation", endpoint_url=endpoint, region_name="us-east-1")
    if account:
        cloudformation = with_account(cloudformation, account)
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=text,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def attached(iam: Any, role: str) -> dict[str, Any]:
    found = {}
    for policy in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        version = iam.get_policy(PolicyArn=policy["PolicyArn"])["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=policy["PolicyArn"], VersionId=version)
        found[policy["PolicyName"]] = document["PolicyVersion"]["Document"]
    return found


def test_the_template_deploys_with_its_roles_and_policies(
    clean_aws: str, project: PlaybookRegistry, with_ssm: PlaybookRegistry
) -> None:
    iam = boto3.client("iam", endpoint_url=clean_aws, region_name="us-east-1")

    outputs = deploy(
        clean_aws,
        "asr-member",
        iam_policy.FILES["template"].read_text(),
        AdministratorAccountId=ADMIN_ACCOUNT,
        AdministratorRoleName="",
        ExternalId="",
    )
    account = outputs["MemberRoleArn"].split(":")[4]
    role = iam.get_role(RoleName="ASRMemberRole")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ADMIN_ACCOUNT}:root"},
            "Action": "sts:AssumeRole",
        }
    ]
    values = {
        "AWS::Partition": "aws",
        "AWS::AccountId": account,
        "RoleName": "ASRMemberRole",
        "RollbackRoleName": "ASRRollbackRole",
    }
    assert attached(iam, "ASRMemberRole") == iam_policy.render(iam_policy.member_policies(project), values)
    assert attached(iam, "ASRRollbackRole") == iam_policy.render(
        iam_policy.rollback_policies(project), values
    )
    assert outputs["RollbackRoleArn"] == f"arn:aws:iam::{account}:role/ASRRollbackRole"
    assert "AutomationRoleArn" not in outputs
    # The service roles have fixed names: one stack per account.
    other_account = "333333333333"
    iam = with_account(boto3.client("iam", endpoint_url=clean_aws, region_name="us-east-1"), other_account)

    outputs = deploy(
        clean_aws,
        "asr-member-ssm",
        iam_policy.generate("template", with_ssm, Settings()),
        account=other_account,
        AdministratorAccountId=ADMIN_ACCOUNT,
        AdministratorRoleName="ASRAdministrator",
        ExternalId="an-external-id",
        RoleName="ASRMemberRoleWithSsm",
        AutomationRoleName="ASRAutomationRoleForTest",
    )
    role = iam.get_role(RoleName="ASRMemberRoleWithSsm")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ADMIN_ACCOUNT}:role/ASRAdministrator"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "an-external-id"}},
        }
    ]
    account = other_account
    values |= {
        "AWS::AccountId": account,
        "RoleName": "ASRMemberRoleWithSsm",
        "AutomationRoleName": "ASRAutomationRoleForTest",
    }
    deployed = attached(iam, "ASRMemberRoleWithSsm")
    assert deployed == iam_policy.render(iam_policy.member_policies(with_ssm), values)
    assert f"arn:aws:iam::{account}:role/ASRAutomationRoleForTest" in json.dumps(deployed)

    assert outputs["AutomationRoleArn"] == f"arn:aws:iam::{account}:role/ASRAutomationRoleForTest"
    automation = iam.get_role(RoleName="ASRAutomationRoleForTest")["Role"]
    assert automation["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "ssm.amazonaws.com"
    }
    inline = iam.get_role_policy(RoleName="ASRAutomationRoleForTest", PolicyName="ssm-documents")
    assert inline["PolicyDocument"] == iam_policy.automation_policy(with_ssm)


SERVICE_ROLE_CONTROLS = ("APIGateway.1", "CloudTrail.5", "EC2.6", "IAM.18", "RDS.6", "SNS.2", "SSM.1")


def test_the_template_makes_the_roles_the_fixes_hand_to_services(
    aws: AwsContext, project: PlaybookRegistry
) -> None:
    """Each role a fix passes to a service is made by the stack, with the trust policy its
    action declares, and reads as ready to the fix (the same policies, grants and profile)."""
    from asr.local import member_stack

    member_stack.deploy(aws, MEMBER_ACCOUNT)
    clients = Clients(aws, MEMBER_ACCOUNT, "us-east-1")
    values = {"AWS::Partition": "aws", "AWS::AccountId": MEMBER_ACCOUNT, "AWS::URLSuffix": "amazonaws.com"}
    users = [p for p in project if actions.get_action(p.action).service_role is not None]
    assert sorted(p.control_id for p in users) == list(SERVICE_ROLE_CONTROLS)
    made = {
        r["Properties"].get("RoleName") or r["Properties"]["InstanceProfileName"]: r
        for r in iam_policy.template(project, Settings())["Resources"].values()
        if r["Type"] in ("AWS::IAM::Role", "AWS::IAM::InstanceProfile") and "DeletionPolicy" in r
    }
    # Kept when a playbook is dropped or the stack deleted: trails and flow logs still use them.
    assert {
        name for name, r in made.items() if r["DeletionPolicy"] == r["UpdateReplacePolicy"] == "Retain"
    } == {p.parameters["role_name"] for p in users}
    for playbook in users:
        action = playbook.build_action({})
        role, _ = action.ready_role(clients)
        assert role["RoleName"] == playbook.parameters["role_name"]
        assert role["AssumeRolePolicyDocument"] == iam_policy.render(action.service_role.trust, values)


def test_playbooks_naming_one_role_for_two_services_stop_generation(tmp_path: Path) -> None:
    """One role cannot trust both services: the stack would make it for one, and the other
    fix would be refused at every run."""
    directory = playbook_dir(tmp_path, controls=["EC2.6", "RDS.6"])
    path = directory / "RDS.6.yaml"
    data = yaml.safe_load(path.read_text())
    data["remediation"].setdefault("parameters", {})["role_name"] = "asr-service-vpc-flow-logs"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(iam_policy.PolicyError, match="asr-service-vpc-flow-logs for services that trust"):
        iam_policy.template(load_playbooks(directory), Settings())


@pytest.mark.parametrize("control", SERVICE_ROLE_CONTROLS)
def test_without_the_stack_a_fix_that_hands_a_role_to_a_service_fails_and_changes_nothing(
    aws: AwsContext, project: PlaybookRegistry, control: str
) -> None:
    """An account whose member-role stack is not deployed (or predates the playbook): the fix
    fails naming the stack, and writes nothing anywhere (no log group made ahead, no role)."""
    from asr.local import served_requests
    from asr.local.request_log_ext import is_write
    from asr.local.seeders import SEEDERS

    seeded = SEEDERS[control](aws, control, MEMBER_ACCOUNT, "us-east-1", 0)  # not seed_one: no stack
    record = parse_finding(finding(seeded), project)
    served_requests(clear=True)
    [outcome] = run_batch([record], project, aws)
    assert outcome.status == Status.FAILED, outcome
    assert "the member-role stack makes it" in outcome.message
    assert [c for c in served_requests() if is_write(c)] == []


def test_a_role_missing_or_not_as_the_stack_makes_it_is_refused_saying_so(
    aws: AwsContext, project: PlaybookRegistry
) -> None:
    from asr.local import member_stack

    clients = Clients(aws, MEMBER_ACCOUNT, "us-east-1")

    def batch() -> Clients:
        """A batch's clients: a batch reads each role once (``Action.ready_role``)."""
        return Clients(aws, MEMBER_ACCOUNT, "us-east-1")

    flow_logs = project.playbooks["EC2.6"].build_action({})
    with pytest.raises(
        actions.RoleNotReady, match="asr-service-vpc-flow-logs is missing: the member-role stack"
    ):
        flow_logs.ready_role(batch())
    member_stack.deploy(aws, MEMBER_ACCOUNT)
    # The same grant written another way (actions reordered, a one-item list) is the same policy.
    [name] = clients.iam.list_role_policies(RoleName="asr-service-vpc-flow-logs")["PolicyNames"]
    grant = clients.iam.get_role_policy(RoleName="asr-service-vpc-flow-logs", PolicyName=name)[
        "PolicyDocument"
    ]
    grant["Statement"][0]["Action"].reverse()
    grant["Statement"][1]["Action"] = [grant["Statement"][1]["Action"]]
    clients.iam.put_role_policy(
        RoleName="asr-service-vpc-flow-logs", PolicyName=name, PolicyDocument=json.dumps(grant)
    )
    flow_logs.ready_role(batch())
    other_group = project.playbooks["EC2.6"].build_action({"log_group_name": "elsewhere"})
    with pytest.raises(actions.RoleNotReady, match="lacks the inline policy flow-logs-to-elsewhere-"):
        other_group.ready_role(batch())
    clients.iam.detach_role_policy(
        RoleName="asr-service-sns-delivery-status",
        PolicyArn="arn:aws:iam::aws:policy/service-role/AmazonSNSRole",
    )
    with pytest.raises(actions.RoleNotReady, match="lacks the AWS managed policy service-role/AmazonSNSRole"):
        project.playbooks["SNS.2"].build_action({}).ready_role(batch())
    clients.iam.remove_role_from_instance_profile(
        InstanceProfileName="asr-service-ssm-instance", RoleName="asr-service-ssm-instance"
    )
    with pytest.raises(actions.RoleNotReady, match="lacks an instance profile asr-service-ssm-instance"):
        project.playbooks["SSM.1"].build_action({}).ready_role(batch())


# --- The administrator side ----------------------------------------------------------------


def test_the_admin_core_policy_reads_findings_and_assumes_only_the_member_and_rollback_roles() -> None:
    core = iam_policy.admin_policies("ASRMemberRole")["ASRAdministrator"]
    assert core["Statement"] == [
        {
            "Sid": "Securityhub",
            "Effect": "Allow",
            "Action": ["securityhub:BatchUpdateFindings", "securityhub:GetFindings"],
            "Resource": "*",
        },
        {
            "Sid": "Sts",
            "Effect": "Allow",
            "Action": ["sts:AssumeRole"],
            "Resource": [
                "arn:${AWS::Partition}:iam::*:role/ASRMemberRole",
                "arn:${AWS::Partition}:iam::*:role/ASRRollbackRole",
            ],
        },
    ]


def test_the_admin_policies_follow_the_deployment_settings(project: PlaybookRegistry) -> None:
    environ = {
        "ASR_MEMBER_ROLE_NAME": "Remediator",
        "ASR_DATA_DIR": "s3://runs-bucket/asr/runs",
        # Pasted with a trailing space or line end: read as every other setting is, trimmed.
        "ASR_SNS_TOPIC_ARN": "arn:aws:sns:eu-west-1:111111111111:asr ",
        "ASR_EVENTS_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/111111111111/my-events\n",
    }
    policies = json.loads(iam_policy.generate("admin", project, Settings.from_env(environ), environ))
    text = json.dumps(policies)
    assert "${" not in text
    assert statements_of(policies, "sts:AssumeRole")[0]["Resource"] == [
        "arn:aws:iam::*:role/ASRRollbackRole",
        "arn:aws:iam::*:role/Remediator",
    ]
    assert statements_of(policies, "sns:Publish")[0]["Resource"] == "arn:aws:sns:eu-west-1:111111111111:asr"
    assert statements_of(policies, "s3:PutObject")[0]["Resource"] == "arn:aws:s3:::runs-bucket/asr/runs/*"
    assert statements_of(policies, "s3:DeleteObject")[0]["Resource"] == "arn:aws:s3:::runs-bucket/asr/runs/*"
    assert statements_of(policies, "sqs:ReceiveMessage")[0]["Resource"] == "arn:aws:sqs:*:*:my-events"
    assert statements_of(policies, "events:PutRule")[0]["Resource"] == "arn:aws:events:*:*:rule/my-events-*"


@pytest.mark.parametrize(
    "queue",
    [
        "arn:aws:sqs:eu-west-1:111111111111:my-events",
        "my-events",
        "https://sqs.eu-west-1.amazonaws.com/my-events",
    ],
)
def test_an_events_queue_that_is_no_queue_url_is_refused_not_granted(
    project: PlaybookRegistry, queue: str
) -> None:
    """The last part of an ARN ("111111111111:my-events") or of a URL without its account made a
    Resource that grants nothing, and the events DAG polled no queue."""
    from asr.config import ConfigError

    environ = {"ASR_EVENTS_QUEUE_URL": queue}
    with pytest.raises(ConfigError) as raised:
        iam_policy.generate("admin", project, Settings.from_env(environ), environ)
    assert str(raised.value).startswith(f"ASR_EVENTS_QUEUE_URL {queue!r} is not an SQS queue URL: ")


def test_an_audit_dir_in_its_own_bucket_is_granted_too(project: PlaybookRegistry) -> None:
    """The journal is written before every change: without these grants every fix is refused."""
    environ = {"ASR_DATA_DIR": "s3://runs-bucket/runs", "ASR_AUDIT_DIR": "s3://audit-bucket/asr"}
    policies = json.loads(iam_policy.generate("admin", project, Settings.from_env(environ), environ))
    audit = policies["ASRAdministratorAuditDir"]["Statement"]
    assert {
        r for s in audit for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    } == {
        "arn:aws:s3:::audit-bucket",
        "arn:aws:s3:::audit-bucket/asr/*",
        "arn:aws:s3:::audit-bucket/asr/claims/*",
    }
    # Append only: the journal's events cannot be deleted; the claims, released as batches end, can.
    deleting = [s for s in audit if "s3:DeleteObject" in s["Action"]]
    assert [s["Resource"] for s in deleting] == ["arn:aws:s3:::audit-bucket/asr/claims/*"], deleting
    assert "ASRAdministratorAuditDir" not in json.loads(
        iam_policy.generate("admin", project, Settings.from_env({}), {})
    )


def test_the_reference_admin_file_marks_what_must_be_filled_in() -> None:
    policies = json.loads(iam_policy.FILES["admin"].read_text())
    assert statements_of(policies, "sns:Publish")[0]["Resource"] == "${SnsTopicArn}"
    assert "${DataBucket}" in json.dumps(policies["ASRAdministratorDataDir"])


Call = tuple[str, dict[str, Any]]


@pytest.fixture
def api_calls(monkeypatch: pytest.MonkeyPatch) -> list[Call]:
    """The IAM action and parameters of every AWS call made through an AwsContext from now on."""
    calls: list[Call] = []
    original = AwsContext._new_client

    def recording_client(self: AwsContext, service: str, region: str | None, **credentials: str) -> Any:
        client = original(self, service, region, **credentials)
        signing_name = client.meta.service_model.signing_name
        prefix = IAM_PREFIX.get(signing_name, signing_name)

        def record(model: Any, params: dict[str, Any], **_: Any) -> None:
            calls.append((IAM_NAME.get((service, model.name), f"{prefix}:{model.name}"), params))

        client.meta.events.register("before-parameter-build", record)
        return client

    monkeypatch.setattr(AwsContext, "_new_client", recording_client)
    return calls


def names(calls: list[Call]) -> set[str]:
    return {action for action, _ in calls}


def test_asr_setup_needs_nothing_beyond_the_admin_policies(aws: AwsContext, api_calls: list[Call]) -> None:
    setup(aws, "us-east-1", auto_controls=["S3.9"])
    setup(aws, "us-east-1", auto_controls=[])  # a second run updates, then removes a rule
    policies = iam_policy.admin_policies("ASRMemberRole")
    allowed = granted({k: policies[k] for k in ("ASRAdministrator", "ASRAdministratorSetup")})
    assert names(api_calls) - allowed == set()
    assert {"events:DeleteRule", "events:RemoveTargets", "sqs:SetQueueAttributes"} <= names(api_calls)


def test_reading_the_organization_needs_nothing_beyond_its_admin_policy(
    aws: AwsContext, api_calls: list[Call]
) -> None:
    organizations = aws.admin_client("organizations", "us-east-1")
    organizations.create_organization(FeatureSet="ALL")
    root = organizations.list_roots()["Roots"][0]["Id"]
    unit = organizations.create_organizational_unit(ParentId=root, Name="sandbox")["OrganizationalUnit"]["Id"]
    api_calls.clear()
    Scope.resolve(Settings(accounts_from_organization=True, exclude_ous=(unit,)), organizations)
    allowed = granted({"o": iam_policy.admin_policies("ASRMemberRole")["ASRAdministratorOrganizations"]})
    assert names(api_calls) == allowed


# --- The command line ----------------------------------------------------------------------


def test_cli_prints_for_this_deployment_and_writes_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ASR_MEMBER_ROLE_NAME", "Remediator")
    monkeypatch.setenv("ASR_ROLLBACK_ROLE_NAME", "Undoer")
    assert cli.main(["policy", "member"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed and all(name.startswith(("Remediator-", "Undoer-")) for name in printed), list(printed)
    assert any(name.startswith("Undoer-") for name in printed), "the rollback role's policies too"

    target = tmp_path / "member-policy.json"
    monkeypatch.setitem(iam_policy.FILES, "member", target)
    assert cli.main(["policy", "member", "--write"]) == 0
    assert capsys.readouterr().out == f"wrote {target}\n"
    written = json.loads(target.read_text())
    assert written and all(name.startswith(("ASRMemberRole-", "ASRRollbackRole-")) for name in written)

    assert cli.main(["policy", "template"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["Parameters"]["RoleName"]["Default"] == "Remediator"


def grants_on(policies: dict[str, Any], action: str, arn: str) -> bool:
    """Whether a statement grants the action on this ARN (conditions aside)."""
    for statement in statements_of(policies, action):
        resources = statement["Resource"]
        if any(
            fnmatch.fnmatchcase(arn, r) for r in ([resources] if isinstance(resources, str) else resources)
        ):
            return True
    return False


def test_the_fixes_call_nothing_the_member_policy_does_not_grant(
    aws: AwsContext, api_calls: list[Call], project: PlaybookRegistry
) -> None:
    """Every playbook's fix, on a resource the stand-in made non-compliant and with the
    exclusion-tag check on: each AWS call in the member account is granted, and the roles the
    fixes write are the ones the policy names."""
    seeded = [seed_one(aws, playbook.control_id, MEMBER_ACCOUNT, "us-east-1") for playbook in project]
    api_calls.clear()
    for one in seeded:
        record = parse_finding(finding(one), project)
        [outcome] = run_batch([record], project, aws, exclude_tag=("asr:exclude", None))
        assert outcome.status in (Status.REMEDIATED, Status.ALREADY_COMPLIANT), (one.control_id, outcome)
    policies = iam_policy.render(iam_policy.member_policies(project), iam_policy.plain_values(Settings()))
    assert names(api_calls) - granted(policies) == set()
    # No playbook's resource is an IAM role, so only a custom one makes the check read a role's tags.
    assert set(iam_policy.RUNNER) - {"iam:ListRoleTags"} <= names(api_calls)
    iam = Clients(aws, MEMBER_ACCOUNT, "us-east-1").iam
    for action, params in list(api_calls):
        if action.startswith("iam:") and "RoleName" in params:
            # AddRoleToInstanceProfile acts on the profile (the role is passed: iam:PassRole).
            name = params.get("InstanceProfileName")
            resource = f"instance-profile/{name}" if name else f"role/{role_path(iam, params['RoleName'])}"
            assert grants_on(policies, action, f"arn:aws:iam::*:{resource}"), (action, params)


def role_path(iam: Any, name: str) -> str:
    """A role's name with its path, as its ARN (and so IAM's check) has it: a service-linked
    role's is ``aws-service-role/<service>/``."""
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Path"]).lstrip("/") + name
    except iam.exceptions.NoSuchEntityException:
        return name


def test_the_reverts_call_nothing_the_rollback_policy_does_not_grant(
    aws: AwsContext, api_calls: list[Call], project: PlaybookRegistry, tmp_path: Path
) -> None:
    """Every playbook's fix undone by a rollback: each AWS call it makes in the member account
    is granted to the rollback role (``revert_permissions`` are complete)."""
    from asr.audit import AuditJournal, Origin, journal_root
    from asr.rollback import Rollback, RollbackStatus

    seeded = [seed_one(aws, playbook.control_id, MEMBER_ACCOUNT, "us-east-1") for playbook in project]
    root = journal_root(str(tmp_path), "asr_sweep", "run-1")
    fixing = AuditJournal(root, Origin("asr_sweep", "run-1", "b", 1, "s"))
    for one in seeded:
        [outcome] = run_batch([parse_finding(finding(one), project)], project, aws, journal=fixing)
        assert outcome.status in (Status.REMEDIATED, Status.ALREADY_COMPLIANT), (one.control_id, outcome)
    api_calls.clear()
    reversals = Rollback(AuditJournal(root, Origin("asr_rollback", "r-1", "rollback", 1, "bob")), aws).run()
    done = {RollbackStatus.REVERTED, RollbackStatus.PARTLY_REVERTED, RollbackStatus.NOT_REVERSIBLE}
    assert {r.status for r in reversals} <= done, [
        (r.status, r.reason) for r in reversals if r.status not in done
    ]
    assert sum(r.status == RollbackStatus.REVERTED for r in reversals) > len(project.playbooks) // 2
    policies = iam_policy.render(iam_policy.rollback_policies(project), iam_policy.plain_values(Settings()))
    assert names(api_calls) - granted(policies) == set()


def test_config_may_be_passed_the_role_a_fix_or_its_revert_gives_the_recorder(
    aws: AwsContext, api_calls: list[Call], project: PlaybookRegistry
) -> None:
    """A rollback puts back the recorder's own role (a finding may keep it too): the rollback
    role must be able to pass that role to AWS Config, and to nothing else (the member role,
    the role the fix gives)."""

    clients = Clients(aws, MEMBER_ACCOUNT, "us-east-1")
    own = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/config-recorder"
    clients.config.put_configuration_recorder(
        ConfigurationRecorder={
            "name": "main",
            "roleARN": own,
            "recordingGroup": {"allSupported": False, "resourceTypes": ["AWS::EC2::Instance"]},
        }
    )
    api_calls.clear()
    action = project.playbooks["Config.1"].build_action({})
    before = action.read(clients, MEMBER_ACCOUNT)
    action.apply(clients, MEMBER_ACCOUNT, before, action.plan(before))
    action.revert(clients, MEMBER_ACCOUNT, before)
    passed = [
        p["ConfigurationRecorder"]["roleARN"] for a, p in api_calls if a == "config:PutConfigurationRecorder"
    ]
    assert len(passed) == 2 and passed[-1] == own
    plain = iam_policy.plain_values(Settings())
    fixer, undoer = (
        iam_policy.render(f(project), plain)
        for f in (iam_policy.member_policies, iam_policy.rollback_policies)
    )
    for role, policies in zip(passed, (fixer, undoer), strict=True):
        [grant] = [
            s
            for s in statements_of(policies, "iam:PassRole")
            if s["Condition"]["StringEquals"]["iam:PassedToService"] == "config.amazonaws.com"
        ]
        assert grants_on({"p": {"Statement": [grant]}}, "iam:PassRole", role), role
