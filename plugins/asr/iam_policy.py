"""The IAM policies and roles the product needs, generated from the playbooks and their actions.

Why generated: the member role may do what the loaded playbooks' actions declare
(``Action.permissions``) and nothing else, so a deployment that removes playbooks gets a
smaller policy, and a new action cannot ship without its permissions reaching the role
(a test compares ``deploy/`` with a fresh generation). ``asr policy`` prints them:

- ``member``: the member role's managed policies, by name (``deploy/member-policy.json``);
- ``template``: a CloudFormation template for StackSets (``deploy/member-role.yaml``): the
  member role, those policies and, when playbooks name SSM documents, the role they run as;
- ``admin``: what the Airflow connection's identity in the Security Hub administrator
  account needs (``deploy/admin-policy.json``): findings and member roles, plus optional
  policies for ``asr setup``, events, notifications, Organizations and an ``s3://`` data dir.

ARNs are written with CloudFormation's ``${...}`` placeholders, so the same documents become
``Fn::Sub`` in the template and plain strings (``render``) everywhere else.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import textwrap
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from asr import actions
from asr.config import Settings, env_value, events_queue_url
from asr.playbooks import Playbook, PlaybookRegistry

Document = dict[str, Any]

VERSION = "2012-10-17"
# A customer managed policy holds at most 6,144 characters, whitespace not counted.
SIZE_LIMIT = 6144
# IAM's default quota of managed policies attached to one role.
MAX_ATTACHED = 10
DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"
FILES = {
    "member": DEPLOY_DIR / "member-policy.json",
    "admin": DEPLOY_DIR / "admin-policy.json",
    "template": DEPLOY_DIR / "member-role.yaml",
}

PARTITION = "${AWS::Partition}"
ACCOUNT = "${AWS::AccountId}"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9:]+)\}")
# The longest values the placeholders take once deployed: sizes are checked with these.
LONGEST = {
    "AWS::Partition": "aws-us-gov",
    "AWS::AccountId": "123456789012",
    "RoleName": "x" * 64,
    "RollbackRoleName": "x" * 64,
    "AutomationRoleName": "x" * 64,
}

# What the SSM executor (asr.automation) calls in a member account, besides passing the role.
SSM_EXECUTOR = ("ssm:StartAutomationExecution", "ssm:GetAutomationExecution", "ssm:StopAutomationExecution")
# What the fix task itself calls in every member account, whatever the playbook: the
# exclusion-tag check (ASR_EXCLUDE_TAG) reads the resources' tags (IAM users' and roles' from IAM).
RUNNER = ("tag:GetResources", "iam:ListUserTags", "iam:ListRoleTags", "autoscaling:DescribeTags")
# What each AWS-managed SSM document needs from the role it runs as (AutomationAssumeRole),
# from the Automation runbook reference. A playbook naming a document not listed here stops
# generation: its permissions must be looked up and added.
DOCUMENT_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "AWS-DisablePublicAccessForSecurityGroup": (
        "ec2:DescribeSecurityGroups",
        "ec2:RevokeSecurityGroupIngress",
    ),
}


class PolicyError(ValueError):
    """The policies cannot be generated as asked (an unknown document, too many policies)."""


def role_arn(name: str, account: str = "*") -> str:
    return f"arn:{PARTITION}:iam::{account}:role/{name}"


def _passed_to(service: str) -> dict[str, Any]:
    """A passed role may reach only this service, not any compute the caller could start."""
    return {"StringEquals": {"iam:PassedToService": service}}


# --- Narrower resources for some actions' permissions --------------------------------------


@dataclass(frozen=True)
class Scope:
    """Where some of an action's permissions apply, when that is narrower than every resource.

    ``resources`` gets the playbook's parameters (defaults filled in): the role an action
    creates or passes is the one its playbook names, so the member role cannot write or pass
    any other. A run that overrides the role name is then refused by IAM, and that resource
    fails with AccessDenied rather than getting a role nobody reviewed.
    """

    permissions: tuple[str, ...]
    resources: Callable[[Mapping[str, Any]], tuple[str, ...]]
    condition: Mapping[str, Any] | None = None


def _named_role(params: Mapping[str, Any]) -> tuple[str, ...]:
    return (role_arn(params["role_name"], ACCOUNT),)


def _any_role(params: Mapping[str, Any]) -> tuple[str, ...]:
    """Every role of the account: an instance's role is whichever its profile holds, a task's
    whichever its task definition names."""
    return (role_arn("*", ACCOUNT),)


def _aws_policy(name: str) -> str:
    """The ARN of an AWS managed policy, in the deployment's partition."""
    return f"arn:{PARTITION}:iam::aws:policy/{name}"


def _config_roles(params: Mapping[str, Any]) -> tuple[str, ...]:
    """Any role, passed to AWS Config only: a recorder keeps the role it has when a finding's
    control parameter turns the service-linked-role check off, and a rollback puts back the
    role it had, neither known when the policy is made. Only roles that trust Config can be
    passed, and Config uses them to read configurations and deliver: the member role gains
    none of their power."""
    return ("*",)


def _named_topic(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The SNS topic the playbook names, in any Region of the account: on "*", Subscribe would
    let the member role copy any topic's messages to an endpoint of its choosing."""
    return (f"arn:{PARTITION}:sns:*:{ACCOUNT}:{params['topic_name']}",)


def _api_stages_and_account(params: Mapping[str, Any]) -> tuple[str, ...]:
    """REST and WebSocket stages, and API Gateway's account settings: on "*", PATCH would let
    the member role drop a method's authorizer or point an integration elsewhere."""
    return tuple(
        f"arn:{PARTITION}:apigateway:*::{path}"
        for path in ("/restapis/*/stages/*", "/apis/*/stages/*", "/account")
    )


def _account_functions(params: Mapping[str, Any]) -> tuple[str, ...]:
    """Every Lambda function of the account (and its versions and aliases)."""
    return (f"arn:{PARTITION}:lambda:*:{ACCOUNT}:function:*",)


def _prefixed_parameters(params: Mapping[str, Any]) -> tuple[str, ...]:
    """Parameter Store parameters under the playbook's prefix, in any Region of the account: on
    "*", GetParameter would let the member role read any SecureString of the account."""
    return (f"arn:{PARTITION}:ssm:*:{ACCOUNT}:parameter{params['parameter_prefix']}/*",)


def _account_keys(params: Mapping[str, Any]) -> tuple[str, ...]:
    """Every KMS key of the account, in any Region: a playbook may name its key by an alias,
    which IAM does not resolve (the grant is asked on the key)."""
    return (f"arn:{PARTITION}:kms:*:{ACCOUNT}:key/*",)


def _own(service: str, *resources: str) -> Callable[[Mapping[str, Any]], tuple[str, ...]]:
    """The account's resources of these kinds (``security-group/*``), in any Region."""
    return lambda _: tuple(f"arn:{PARTITION}:{service}:*:{ACCOUNT}:{resource}" for resource in resources)


# What EC2.10 makes carries this tag, as the call that makes it says (aws:RequestTag), and it
# changes or deletes only what carries it (aws:ResourceTag).
MADE_BY_EC2_10 = {"StringEquals": {"aws:RequestTag/asr:made-for": "EC2.10"}}
TAGGED_BY_EC2_10 = {"StringEquals": {"aws:ResourceTag/asr:made-for": "EC2.10"}}


# A KMS permission used only through RDS (in any Region and partition), as RDS asks its caller
# for it on a customer managed key it encrypts with.
THROUGH_RDS = {"StringLike": {"kms:ViaService": ["rds.*.amazonaws.com", "rds.*.amazonaws.com.cn"]}}
# A grant an AWS service makes for its resource (the copy), not one for a principal of the caller's choosing.
AWS_RESOURCE_GRANT = "kms:GrantIsForAWSResource"


def _service_linked(service: str, *more: str) -> Scope:
    """CreateServiceLinkedRole for these services' own roles only: on "*" it would let the
    member role make any service's role (and so switch that service on)."""
    names = (service, *more)
    return Scope(
        ("iam:CreateServiceLinkedRole",),
        lambda _: tuple(role_arn(f"aws-service-role/{name}/*") for name in names),
        {"StringEquals": {"iam:AWSServiceName": list(names) if more else service}},
    )


def _service_role(service: str, *reads: str) -> tuple[Scope, ...]:
    """A fix's own role for an AWS service (``actions.ServiceRole``), which the member-role
    stack makes: the member role may only read it and pass it, to that service only."""
    return (
        Scope(("iam:GetRole", *reads), _named_role),
        Scope(("iam:PassRole",), _named_role, _passed_to(service)),
    )


LIST_ATTACHED = "iam:ListAttachedRolePolicies"
# Keyed by action name; every permission listed must be one the action declares (tested).
SCOPES: dict[str, tuple[Scope, ...]] = {
    "ec2.enable-vpc-flow-logs": _service_role("vpc-flow-logs.amazonaws.com", "iam:GetRolePolicy"),
    "iam.create-support-role": (
        # Its rollback's DetachRolePolicy too: on "*" it could strip any role of the account.
        Scope(("iam:GetRole",), _named_role),
        Scope(
            ("iam:AttachRolePolicy", "iam:DetachRolePolicy"),
            _named_role,
            {"ArnEquals": {"iam:PolicyARN": _aws_policy("AWSSupportAccess")}},
        ),
    ),
    "ssm.enable-instance-management": (
        Scope(("iam:GetRole",), _named_role),
        Scope(("iam:PassRole",), _named_role, _passed_to("ec2.amazonaws.com")),
        # Any instance's role, but this one AWS managed policy only, on (and, to roll back, off).
        Scope(
            ("iam:AttachRolePolicy", "iam:DetachRolePolicy"),
            _any_role,
            {"ArnEquals": {"iam:PolicyARN": _aws_policy("AmazonSSMManagedInstanceCore")}},
        ),
    ),
    # CloudTrail.5 tags the log group it makes as the call makes it, with its own tag only.
    "cloudtrail.send-to-cloudwatch-logs": (
        *_service_role("cloudtrail.amazonaws.com", "iam:GetRolePolicy"),
        Scope(
            ("logs:TagResource",),
            _own("logs", "log-group:*"),
            {
                "StringEquals": {"aws:RequestTag/asr:made-for": "CloudTrail.5"},
                "ForAllValues:StringEquals": {"aws:TagKeys": ["asr:made-for"]},
            },
        ),
    ),
    "config.enable-recorder": (
        # Config's service-linked role only: on "*" GetRole would describe every role of the account.
        Scope(
            ("iam:GetRole",),
            lambda _: (role_arn("aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig", ACCOUNT),),
        ),
        Scope(("iam:PassRole",), _config_roles, _passed_to("config.amazonaws.com")),
        _service_linked("config.amazonaws.com"),
    ),
    # A detector made with malware protection on brings that feature's role too.
    "guardduty.enable-detector": (
        _service_linked("guardduty.amazonaws.com", "malware-protection.guardduty.amazonaws.com"),
    ),
    "macie.enable": (_service_linked("macie.amazonaws.com"),),
    # Application Auto Scaling makes AWSServiceRoleForApplicationAutoScaling_DynamoDBTable at
    # the first registration of a table.
    "dynamodb.enable-auto-scaling": (_service_linked("dynamodb.application-autoscaling.amazonaws.com"),),
    # A template with AWS's transforms (SAM's AWS::Serverless, AWS::Include...) is expanded
    # through a change set, and IAM asks for CreateChangeSet on the transform itself (as AWS
    # documents for change sets; whether UpdateStack's expansion asks too, only AWS can tell).
    # It is granted on those transforms alone: no change set of any stack.
    # UpdateStack resolves parameters of SSM parameter types anew, as the caller: every CDK
    # stack has one (BootstrapVersion, under /cdk-bootstrap/), and AMI ids come from AWS's
    # public parameters. Only those: on every parameter the role could read SecureStrings.
    "cloudformation.notify-stack-events": (
        Scope(("sns:CreateTopic",), _named_topic),
        Scope(
            ("cloudformation:CreateChangeSet",),
            lambda _: (f"arn:{PARTITION}:cloudformation:*:aws:transform/*",),
        ),
        Scope(
            ("ssm:GetParameters",),
            lambda _: (
                f"arn:{PARTITION}:ssm:*:{ACCOUNT}:parameter/cdk-bootstrap/*",
                f"arn:{PARTITION}:ssm:*::parameter/aws/service/*",
            ),
        ),
    ),
    "cloudwatch.ensure-cis-alarm": (Scope(("sns:CreateTopic", "sns:Subscribe"), _named_topic),),
    "s3.enable-event-notifications": (Scope(("sns:CreateTopic",), _named_topic),),
    "apigateway.encrypt-cache-data": (Scope(("apigateway:PATCH",), _api_stages_and_account),),
    # SSM.7 changes this one setting; on "*" the member role could change any of SSM's.
    "ssm.block-public-document-sharing": (
        Scope(
            ("ssm:UpdateServiceSetting",),
            lambda _: (
                f"arn:{PARTITION}:ssm:*:{ACCOUNT}:servicesetting/ssm/documents/console/public-sharing-permission",
            ),
        ),
    ),
    # CodeBuild.2 makes parameters under its prefix and never overwrites one (ssm:Overwrite is
    # absent or false), and asks IAM's simulator whether a project's role may read them; its
    # revert deletes them.
    "codebuild.store-credentials-in-parameter-store": (
        Scope(("ssm:GetParameter", "ssm:DeleteParameter"), _prefixed_parameters),
        Scope(("ssm:PutParameter",), _prefixed_parameters, {"StringNotEquals": {"ssm:Overwrite": "true"}}),
        Scope(("iam:SimulatePrincipalPolicy",), _any_role),
    ),
    "rds.enable-enhanced-monitoring": _service_role("monitoring.rds.amazonaws.com", LIST_ATTACHED),
    # RDS.4 tags the DB snapshot copies it makes (CopyTags), reads the copy's key before it
    # deletes, and hands RDS the playbook's key: grants on a key only through RDS and for its
    # own use, never to the member role itself.
    "rds.replace-snapshot-with-encrypted-copy": (
        Scope(("rds:AddTagsToResource",), lambda _: (f"arn:{PARTITION}:rds:*:{ACCOUNT}:snapshot:*",)),
        Scope(("kms:DescribeKey",), _account_keys),
        Scope(("kms:CreateGrant",), _account_keys, {**THROUGH_RDS, "Bool": {AWS_RESOURCE_GRANT: "true"}}),
    ),
    "apigateway.enable-execution-logging": (
        *_service_role("apigateway.amazonaws.com", LIST_ATTACHED),
        Scope(("apigateway:PATCH",), _api_stages_and_account),
    ),
    "sns.enable-delivery-status-logging": _service_role("sns.amazonaws.com", LIST_ATTACHED),
    # RotateSecret asks its caller for lambda:InvokeFunction on the rotation function, whose
    # name can be anything: the account's own functions, no other account's.
    "secretsmanager.enable-rotation": (Scope(("lambda:InvokeFunction",), _account_functions),),
    "secretsmanager.rotate-overdue-secret": (Scope(("lambda:InvokeFunction",), _account_functions),),
    # Only with a recovery window: ForceDeleteWithoutRecovery sends none, and would be final.
    "secretsmanager.delete-unused-secret": (
        Scope(
            ("secretsmanager:DeleteSecret",),
            lambda _: (f"arn:{PARTITION}:secretsmanager:*:{ACCOUNT}:secret:*",),
            {"NumericGreaterThanEquals": {"secretsmanager:RecoveryWindowInDays": "7"}},
        ),
    ),
    # The tagging fixes tag (and, to roll back, untag) their controls' resources alone: on "*" the
    # member role could tag any resource of the service, which tag-based access control
    # (aws:ResourceTag) may grant on. The keys come from findings, so aws:TagKeys cannot narrow it.
    "dynamodb.add-required-tags": (
        Scope(("dynamodb:TagResource", "dynamodb:UntagResource"), _own("dynamodb", "table/*")),
    ),
    "guardduty.add-required-tags": (
        Scope(("guardduty:TagResource", "guardduty:UntagResource"), _own("guardduty", "detector/*")),
    ),
    # CreateLaunchConfiguration asks for iam:PassRole on the role of the instance profile the copy
    # (or, rolling back, the original made again) names, whichever it is: passed to EC2 only.
    "autoscaling.replace-launch-configuration": (
        Scope(("iam:PassRole",), _any_role, _passed_to("ec2.amazonaws.com")),
    ),
    # EC2.10 makes a security group for its endpoint and opens it to the VPC. What it makes
    # carries asr:made-for=EC2.10 (tagged as the call makes it, and only then), and it writes a
    # rule to, or deletes, only what carries that tag: every other group stays closed to the
    # member role. EC2 checks each resource a call names: the tag condition holds on what the call
    # makes (the group, the endpoint: to an AWS service only), not on the VPC, subnets and group it
    # names. Route 53's AssociateVPCWithHostedZone (private DNS) stays on "*": the zone is AWS's.
    "ec2.create-ec2-api-endpoint": (
        Scope(
            ("ec2:CreateTags",),
            _own("ec2", "security-group/*", "vpc-endpoint/*"),
            {"StringEquals": {"ec2:CreateAction": ["CreateSecurityGroup", "CreateVpcEndpoint"]}},
        ),
        Scope(("ec2:CreateSecurityGroup",), _own("ec2", "security-group/*"), MADE_BY_EC2_10),
        Scope(
            ("ec2:CreateVpcEndpoint",),
            _own("ec2", "vpc-endpoint/*"),
            {"StringEquals": {**MADE_BY_EC2_10["StringEquals"], "ec2:VpceServiceOwner": "amazon"}},
        ),
        Scope(("ec2:CreateSecurityGroup", "ec2:CreateVpcEndpoint"), _own("ec2", "vpc/*")),
        Scope(("ec2:CreateVpcEndpoint",), _own("ec2", "subnet/*", "security-group/*")),
        Scope(
            ("ec2:AuthorizeSecurityGroupIngress", "ec2:DeleteSecurityGroup"),
            _own("ec2", "security-group/*"),
            TAGGED_BY_EC2_10,
        ),
        Scope(("ec2:DeleteVpcEndpoints",), _own("ec2", "vpc-endpoint/*"), TAGGED_BY_EC2_10),
    ),
    # The revision ECS.5 copies hands ECS its task and execution roles, whichever they are: passed
    # to ECS tasks only. Its tags are written by the registration alone, on task definitions.
    "ecs.register-read-only-root-revision": (
        Scope(("iam:PassRole",), _any_role, _passed_to("ecs-tasks.amazonaws.com")),
        Scope(
            ("ecs:TagResource",),
            lambda _: (f"arn:{PARTITION}:ecs:*:{ACCOUNT}:task-definition/*",),
            {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}},
        ),
    ),
}


# --- Grants and statements -----------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Grant:
    """One permission on some resources, under an optional condition (canonical JSON, so grants
    compare, deduplicate and sort)."""

    permission: str
    resources: tuple[str, ...] = ("*",)
    condition: str = ""


def _canonical(condition: Mapping[str, Any] | None) -> str:
    return json.dumps(condition, sort_keys=True) if condition else ""


def _calls(cls: type[actions.Action], method: str) -> bool:
    """Whether the action's own methods, or the functions they call, call ``method``.

    Used for calls that need no permission but belong in the policy as documentation
    (``sts:GetCallerIdentity``), when an action uses them without declaring them.
    """
    todo = [
        getattr(member, "__func__", member)
        for klass in cls.__mro__
        if issubclass(klass, actions.Action) and klass is not actions.Action
        for member in vars(klass).values()
    ]
    seen: set[Any] = set()
    while todo:
        function = todo.pop()
        if not inspect.isfunction(function) or function in seen:
            continue
        seen.add(function)
        for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(function)))):
            if not isinstance(node, ast.Call):
                continue
            if isinstance(node.func, ast.Attribute) and node.func.attr == method:
                return True
            if isinstance(node.func, ast.Name):
                called = function.__globals__.get(node.func.id)
                if inspect.isfunction(called) and called.__module__.startswith("asr."):
                    todo.append(called)
    return False


def action_grants(playbook: Playbook, undo: bool = False) -> list[Grant]:
    """The permissions the playbook's action declares to fix (with ``undo``, to undo the fix
    too, for the rollback role), each on the resources its scope allows."""
    cls = actions.get_action(playbook.action)
    # A permission may have several scopes: EC2 checks a call on each resource it names, and a
    # condition such as aws:RequestTag holds for the resource the call makes, not the VPC it names.
    scoped: dict[str, list[Grant]] = defaultdict(list)
    for scope in SCOPES.get(cls.name, ()):
        for permission in scope.permissions:
            grant = Grant(permission, scope.resources(playbook.parameters), _canonical(scope.condition))
            scoped[permission].append(grant)
    wanted = dict.fromkeys((*cls.permissions, *(cls.revert_permissions if undo else ())))
    grants = [grant for permission in wanted for grant in scoped.get(permission) or [Grant(permission)]]
    if "sts:GetCallerIdentity" not in cls.permissions and _calls(cls, "get_caller_identity"):
        grants.append(Grant("sts:GetCallerIdentity"))
    return grants


def _sid(service: str, number: int) -> str:
    """``Ec2``, then ``Ec2N2``, ``Ec2N3``: IAM allows only letters and digits in a Sid."""
    prefix = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", service))
    return prefix if number == 1 else f"{prefix}N{number}"


def statements(grants: Iterable[Grant]) -> list[Document]:
    """Grants as statements: one per service, resources and condition, actions sorted.

    A permission granted on every resource without a condition makes its narrower grants
    moot; the resources of one permission under one condition are merged.
    """
    grants = set(grants)
    everywhere = {g.permission for g in grants if g.resources == ("*",) and not g.condition}
    resources: dict[tuple[str, str], set[str]] = defaultdict(set)
    for grant in grants:
        if grant.permission in everywhere and (grant.resources != ("*",) or grant.condition):
            continue
        resources[(grant.permission, grant.condition)].update(grant.resources)
    grouped: dict[tuple[str, tuple[str, ...], str], set[str]] = defaultdict(set)
    for (permission, condition), where in resources.items():
        service = permission.split(":", 1)[0]
        grouped[(service, ("*",) if "*" in where else tuple(sorted(where)), condition)].add(permission)

    def order(key: tuple[str, tuple[str, ...], str]) -> tuple[Any, ...]:
        service, where, condition = key
        return (service, where != ("*",), bool(condition), where, condition)

    result: list[Document] = []
    count: dict[str, int] = defaultdict(int)
    for key in sorted(grouped, key=order):
        service, where, condition = key
        count[service] += 1
        statement: Document = {
            "Sid": _sid(service, count[service]),
            "Effect": "Allow",
            "Action": sorted(grouped[key]),
            "Resource": where[0] if len(where) == 1 else list(where),
        }
        if condition:
            statement["Condition"] = json.loads(condition)
        result.append(statement)
    return result


# --- Rendering, size, splitting ------------------------------------------------------------


def render(value: Any, values: Mapping[str, str]) -> Any:
    """``value`` with each ``${name}`` that ``values`` knows filled in (keys too); others stay."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [render(item, values) for item in value]
    if isinstance(value, dict):
        return {render(key, values): render(item, values) for key, item in value.items()}
    return value


def plain_values(settings: Settings) -> dict[str, str]:
    """Placeholder values outside CloudFormation: the standard partition, any account."""
    return {
        "AWS::Partition": "aws",
        "AWS::AccountId": "*",
        "RoleName": settings.member_role_name,
        "RollbackRoleName": settings.rollback_role_name,
        "AutomationRoleName": settings.automation_role_name,
    }


def size(document: Document) -> int:
    """The characters IAM counts (no whitespace), with placeholders at their longest."""
    return len(json.dumps(render(document, LONGEST), separators=(",", ":")))


def _document(body: list[Document]) -> Document:
    return {"Version": VERSION, "Statement": body}


def _fitting(statement: Document) -> Iterator[Document]:
    """The statement, or pieces of its action list when it alone is too long for a policy."""
    if size(_document([statement])) <= SIZE_LIMIT:
        yield statement
        return
    pieces: list[list[str]] = [[]]
    for action in statement["Action"]:
        trial = {**statement, "Action": [*pieces[-1], action]}
        if pieces[-1] and size(_document([trial])) > SIZE_LIMIT:
            pieces.append([])
        pieces[-1].append(action)
    for number, piece in enumerate(pieces, 1):
        yield {**statement, "Sid": f"{statement['Sid']}Part{number}", "Action": piece}


def pack(body: list[Document]) -> list[Document]:
    """Statements, in order, into policies under IAM's size limit: fill one, then start the next.

    Deterministic (the same statements always give the same policies), so regenerating
    after a change moves as little as the order allows.
    """
    groups: list[list[Document]] = [[]]
    for statement in (piece for whole in body for piece in _fitting(whole)):
        if groups[-1] and size(_document([*groups[-1], statement])) > SIZE_LIMIT:
            groups.append([])
        groups[-1].append(statement)
    if len(groups) > MAX_ATTACHED:
        raise PolicyError(
            f"the permissions need {len(groups)} managed policies; IAM attaches at most "
            f"{MAX_ATTACHED} to a role by default"
        )
    return [_document(group) for group in groups if group]


def _one_policy(what: str, grants: list[Grant]) -> Document:
    """A policy that is one document by design (an inline policy, a named admin policy)."""
    documents = pack(statements(grants))
    if len(documents) > 1:
        raise PolicyError(f"{what} does not fit one policy")
    return documents[0]


# --- The member role -----------------------------------------------------------------------


def ssm_documents(playbooks: PlaybookRegistry) -> list[str]:
    return sorted({p.ssm_document.name for p in playbooks if p.ssm_document})


def member_grants(playbooks: PlaybookRegistry) -> list[Grant]:
    """Every permission the member role needs to run these playbooks' fixes, and nothing for
    others, nor to undo them."""
    grants = [grant for playbook in playbooks for grant in action_grants(playbook)]
    if ssm_documents(playbooks):
        grants += [Grant(permission) for permission in SSM_EXECUTOR]
        grants.append(
            Grant(
                "iam:PassRole",
                (role_arn("${AutomationRoleName}", ACCOUNT),),
                _canonical(_passed_to("ssm.amazonaws.com")),
            )
        )
    return grants + [Grant(permission) for permission in RUNNER]


def rollback_grants(playbooks: PlaybookRegistry) -> list[Grant]:
    """What asr_rollback needs to undo these playbooks' fixes: their reads and writes (a revert
    reads the resource, and may write what the fix wrote), what only undoing needs (open a
    security group again, stop a recorder), and the exclusion-tag check."""
    grants = [
        grant
        for playbook in playbooks
        if not _never_undone(actions.get_action(playbook.action))
        for grant in action_grants(playbook, undo=True)
    ]
    return grants + [Grant(permission) for permission in RUNNER]


def _never_undone(cls: type[actions.Action]) -> bool:
    """A fix no revert undoes (``irreversible``, with no ``irreversible_from`` of its own to say
    otherwise): a rollback reports it and calls nothing, so the rollback role needs none of its
    permissions (EC2.4's TerminateInstances, SecretsManager.4's RotateSecret)."""
    return bool(cls.irreversible) and cls.irreversible_from is actions.Action.irreversible_from


# Whatever their grants allow on "any role" (SSM.1 attaches one AWS managed policy to whichever
# role an instance has), neither ASR role may change itself or the other: only read them, as
# the exclusion-tag check does. First, so it always sits in the first policy.
NOT_ITSELF: Document = {
    "Sid": "NeverChangeItself",
    "Effect": "Deny",
    "NotAction": ["iam:Get*", "iam:List*"],
    "Resource": [role_arn("${RoleName}", ACCOUNT), role_arn("${RollbackRoleName}", ACCOUNT)],
}


# CloudFormation.1 refuses a StackSet's instances (the StackSet would undo the change), and the
# member-role stack deployed with StackSets is one: whatever UpdateStack is granted on, IAM
# refuses them too, so no role may rewrite the stack that defines it.
NO_STACKSET_INSTANCE: Document = {
    "Sid": "NeverUpdateAStackSetInstance",
    "Effect": "Deny",
    "Action": "cloudformation:UpdateStack",
    "Resource": f"arn:{PARTITION}:cloudformation:*:{ACCOUNT}:stack/StackSet-*",
}


# The roles a managed policy is attached to, by the template parameters naming them.
MEMBER, ROLLBACK = "RoleName", "RollbackRoleName"


def _role_policies(playbooks: PlaybookRegistry) -> dict[tuple[str, ...], dict[str, Document]]:
    """Both roles' managed policies (placeholders unfilled), by the roles each is attached to.

    What both roles need (the reads, and the writes of every fix a revert undoes) is one set of
    policies attached to both, ``${RoleName}-shared-<n>``, holding the two denies; then what the
    member role alone needs (``${RoleName}-<n>``) and what undoing alone needs
    (``${RollbackRoleName}-<n>``). Written twice, the member-role stack outgrew the 51,200 bytes
    of a template CloudFormation takes inline."""
    member, rollback = member_grants(playbooks), rollback_grants(playbooks)
    shared = set(member) & set(rollback)
    updates_stacks = any(grant.permission == "cloudformation:UpdateStack" for grant in member + rollback)
    denies = [NOT_ITSELF, *([NO_STACKSET_INSTANCE] if updates_stacks else [])]
    parts = {
        (MEMBER, ROLLBACK): ("${RoleName}-shared", [*denies, *statements(shared)]),
        (MEMBER,): ("${RoleName}", statements(set(member) - shared)),
        (ROLLBACK,): ("${RollbackRoleName}", statements(set(rollback) - shared)),
    }
    policies = {
        roles: {f"{prefix}-{number}": document for number, document in enumerate(pack(body), 1)}
        for roles, (prefix, body) in parts.items()
    }
    for role in (MEMBER, ROLLBACK):
        attached = sum(len(found) for roles, found in policies.items() if role in roles)
        if attached > MAX_ATTACHED:
            raise PolicyError(
                f"the permissions need {attached} managed policies on {role}; IAM attaches at most "
                f"{MAX_ATTACHED} to a role by default"
            )
    return policies


def _attached_to(role: str, playbooks: PlaybookRegistry) -> dict[str, Document]:
    return {
        name: document
        for roles, found in _role_policies(playbooks).items()
        if role in roles
        for name, document in found.items()
    }


def member_policies(playbooks: PlaybookRegistry) -> dict[str, Document]:
    """The member role's managed policies: what every sweep and remediation run uses."""
    return _attached_to(MEMBER, playbooks)


def rollback_policies(playbooks: PlaybookRegistry) -> dict[str, Document]:
    """The rollback role's managed policies: what only asr_rollback uses."""
    return _attached_to(ROLLBACK, playbooks)


def automation_policy(playbooks: PlaybookRegistry) -> Document | None:
    """What the SSM documents the playbooks name need from the role they run as; None without any."""
    names = ssm_documents(playbooks)
    unknown = [name for name in names if name not in DOCUMENT_PERMISSIONS]
    if unknown:
        raise PolicyError(
            f"SSM document(s) {unknown} named by playbooks have no known permissions: "
            "add what they need to asr.iam_policy.DOCUMENT_PERMISSIONS"
        )
    if not names:
        return None
    return _one_policy(
        "the SSM documents' policy",
        [Grant(permission) for name in names for permission in DOCUMENT_PERMISSIONS[name]],
    )


# --- The administrator side ----------------------------------------------------------------


def _grants(service: str, calls: Iterable[str], resources: tuple[str, ...] = ("*",)) -> list[Grant]:
    return [Grant(f"{service}:{call}", resources) for call in calls]


def admin_policies(
    member_role_name: str,
    rollback_role_name: str = Settings.rollback_role_name,
    queue_name: str | None = None,
    topic_arn: str | None = None,
    data_dir: str | None = None,
    audit_dir: str | None = None,
) -> dict[str, Document]:
    """The policies of the Airflow connection's identity, by name; all but the first optional.

    Without a topic, or an ``s3://`` data dir, their policies keep the placeholders
    ``${SnsTopicArn}`` and ``${DataBucket}``: fill them in (or pass the values) before use.
    An ``s3://`` audit dir of its own (``ASR_AUDIT_DIR``) gets the same grants there.
    """
    from asr.setup import DEFAULT_QUEUE_NAME

    queue_name = queue_name or DEFAULT_QUEUE_NAME
    queue = f"arn:{PARTITION}:sqs:*:{ACCOUNT}:{queue_name}"
    rules = f"arn:{PARTITION}:events:*:{ACCOUNT}:rule/{queue_name}-*"
    grants = {
        # Read findings, write outcomes back, and act in member accounts through their roles.
        "ASRAdministrator": [
            Grant("securityhub:GetFindings"),
            Grant("securityhub:BatchUpdateFindings"),
            Grant("sts:AssumeRole", (role_arn(member_role_name), role_arn(rollback_role_name))),
        ],
        # asr setup: the custom action, the queues and the EventBridge rules it makes; GetMembers
        # checks that the accounts of ASR_ACCOUNTS are members.
        "ASRAdministratorSetup": [
            *_grants(
                "securityhub",
                ("DescribeActionTargets", "CreateActionTarget", "UpdateActionTarget", "GetMembers"),
            ),
            *_grants(
                "events",
                ("DescribeRule", "PutRule", "DeleteRule", "ListTargetsByRule", "PutTargets", "RemoveTargets"),
                (rules,),
            ),
            *_grants(
                "sqs",
                ("GetQueueUrl", "CreateQueue", "GetQueueAttributes", "SetQueueAttributes"),
                (queue, f"{queue}-dlq"),
            ),
        ],
        # asr_events: its trigger takes the events off the queue.
        "ASRAdministratorEvents": _grants("sqs", ("ReceiveMessage", "DeleteMessage"), (queue,)),
        # ASR_SNS_TOPIC_ARN: run summaries and failed runs.
        "ASRAdministratorNotifications": [Grant("sns:Publish", (topic_arn or "${SnsTopicArn}",))],
        # ASR_ACCOUNTS_FROM_ORGANIZATION / ASR_EXCLUDE_OUS: who is in the organization.
        "ASRAdministratorOrganizations": _grants(
            "organizations", ("ListAccounts", "ListAccountsForParent", "ListOrganizationalUnitsForParent")
        ),
        # ASR_DATA_DIR=s3://bucket/prefix: the runs' findings, outcomes and reports, the audit
        # journal and the claims on resources (deleted when a batch ends) and on left-out events.
        "ASRAdministratorDataDir": _s3_folder(data_dir),
    }
    if urlsplit(audit_dir or "").scheme == "s3":  # ASR_AUDIT_DIR: the journal and the claims
        # Append only: the journal's events are never deleted; the claims are, as batches end.
        grants["ASRAdministratorAuditDir"] = _s3_folder(audit_dir, deletable="claims/")
    return {name: _one_policy(name, granted) for name, granted in grants.items()}


def _s3_folder(url: str | None, deletable: str = "") -> list[Grant]:
    """Reading, writing and deleting the objects under an ``s3://bucket/prefix`` (``${DataBucket}``
    when not one); ``deletable``: deleting only those under that sub-prefix. Listing is not
    narrowed by prefix: S3 answers a missing object with 403 instead of 404 to a caller
    without s3:ListBucket, and "does this file exist" must stay a question."""
    location = urlsplit(url or "")
    bucket = location.netloc if location.scheme == "s3" and location.netloc else "${DataBucket}"
    prefix = location.path.strip("/") if location.scheme == "s3" else ""
    folder = f"arn:{PARTITION}:s3:::{bucket}/{prefix + '/' if prefix else ''}"
    return [
        Grant("s3:ListBucket", (f"arn:{PARTITION}:s3:::{bucket}",)),
        *_grants("s3", ("GetObject", "PutObject", "AbortMultipartUpload"), (f"{folder}*",)),
        Grant("s3:DeleteObject", (f"{folder}{deletable}*",)),
    ]


# --- The CloudFormation template -----------------------------------------------------------


def substituted(value: Any) -> Any:
    """Strings with ``${...}`` become ``Fn::Sub``, for CloudFormation to fill in."""
    if isinstance(value, str):
        return {"Fn::Sub": value} if PLACEHOLDER.search(value) else value
    if isinstance(value, list):
        return [substituted(item) for item in value]
    if isinstance(value, dict):
        return {key: substituted(item) for key, item in value.items()}
    return value


def _member_trust() -> Document:
    """The administrator's role (or any principal of its account allowed to assume this role),
    with the ExternalId condition only when one is given."""
    principal = {
        "Fn::If": [
            "HasAdministratorRole",
            {"Fn::Sub": "arn:${AWS::Partition}:iam::${AdministratorAccountId}:role/${AdministratorRoleName}"},
            {"Fn::Sub": "arn:${AWS::Partition}:iam::${AdministratorAccountId}:root"},
        ]
    }
    return _document(
        [
            {
                "Effect": "Allow",
                "Principal": {"AWS": principal},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "Fn::If": [
                        "HasExternalId",
                        {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}},
                        {"Ref": "AWS::NoValue"},
                    ]
                },
            }
        ]
    )


def _automation_trust() -> Document:
    """SSM Automation, and only for executions in this account (no confused deputy)."""
    return _document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ssm.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                    "ArnLike": {
                        "aws:SourceArn": {
                            "Fn::Sub": "arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:automation-execution/*"
                        }
                    },
                },
            }
        ]
    )


def _parameter(description: str, pattern: str, default: str | None = None, **more: Any) -> Document:
    spec: Document = {"Type": "String", "Description": description, "AllowedPattern": pattern}
    if default is not None:
        spec["Default"] = default
    return {**spec, **more}


@dataclass
class MadeRole:
    """A role the member-role stack makes for the fixes (``actions.ServiceRole``), with what the
    playbooks naming it need of it, placeholders unfilled."""

    trust: Document
    description: str
    managed_policies: list[str]
    inline: dict[str, Document]
    instance_profile: bool


def service_roles(playbooks: PlaybookRegistry) -> dict[str, MadeRole]:
    """The roles the playbooks' fixes hand to AWS services, by name: the member-role stack makes
    them, so that the member role need not be able to make roles. Playbooks naming one role
    share it, with all their grants."""
    roles: dict[str, MadeRole] = {}
    for playbook in playbooks:
        spec = actions.get_action(playbook.action).service_role
        if spec is None:
            continue
        name = playbook.parameters["role_name"]
        grants = spec.inline(playbook.parameters, PARTITION, ACCOUNT)
        role = roles.setdefault(name, MadeRole(spec.trust, spec.description, [], {}, False))
        if role.trust != spec.trust:
            raise PolicyError(f"playbooks name the role {name} for services that trust it differently")
        clash = sorted(key for key in grants if role.inline.get(key, grants[key]) != grants[key])
        if clash:
            raise PolicyError(f"playbooks give the role {name} different inline policies named {clash}")
        role.managed_policies += [p for p in spec.managed_policies if p not in role.managed_policies]
        role.inline.update(grants)
        role.instance_profile = role.instance_profile or spec.instance_profile
    return roles


def _logical_id(prefix: str, name: str, taken: Mapping[str, Any]) -> str:
    """A CloudFormation logical id (letters and digits) for a named resource, unique here."""
    base = prefix + "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name))
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        candidate = f"{base}{number}"
    return candidate


# Flow logs, trails, DB instances and EC2 instances go on using a service role after its
# playbook is dropped or the stack deleted: deleting it would stop their delivery silently.
RETAINED = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}


def _service_role_resources(playbooks: PlaybookRegistry) -> Document:
    resources: Document = {}
    for name, role in service_roles(playbooks).items():
        logical = _logical_id("ServiceRole", name, resources)
        properties: Document = {
            "RoleName": name,
            "Description": role.description,
            "AssumeRolePolicyDocument": substituted(role.trust),
        }
        if role.managed_policies:
            properties["ManagedPolicyArns"] = [substituted(_aws_policy(p)) for p in role.managed_policies]
        if role.inline:
            properties["Policies"] = [
                {"PolicyName": policy, "PolicyDocument": substituted(document)}
                for policy, document in role.inline.items()
            ]
        resources[logical] = {"Type": "AWS::IAM::Role", **RETAINED, "Properties": properties}
        if role.instance_profile:
            resources[_logical_id("InstanceProfile", name, resources)] = {
                "Type": "AWS::IAM::InstanceProfile",
                **RETAINED,
                "Properties": {"InstanceProfileName": name, "Roles": [{"Ref": logical}]},
            }
    return resources


def template(playbooks: PlaybookRegistry, settings: Settings) -> Document:
    """The member-role stack: one per member account (one region each: IAM is global)."""
    automation = automation_policy(playbooks)
    parameters: Document = {
        "AdministratorAccountId": _parameter(
            "The Security Hub administrator account, where Airflow's AWS connection lives", r"^\d{12}$"
        ),
        # No defaults here: trusting the whole administrator account, or requiring no
        # ExternalId, must be chosen, and an update that leaves a parameter out (without
        # UsePreviousValue) must fail, not fall back to the widest trust.
        "AdministratorRoleName": _parameter(
            "The role (with its path, if any) of Airflow's AWS connection in that account; "
            "empty (only if given so): any principal of the account that its own IAM policies "
            "allow to assume this role",
            r"^[\w+=,.@/-]*$",
            MaxLength=512,
        ),
        "ExternalId": _parameter(
            "The ExternalId the administrator must give (member_role_external_id in the "
            "connection's extras); empty (only if given so): none required",
            r"^$|^[\w+=,.@:/-]{2,1224}$",
        ),
        "RoleName": _parameter(
            "The member role's name (ASR_MEMBER_ROLE_NAME)", r"^[\w+=,.@-]{1,64}$", settings.member_role_name
        ),
        "RollbackRoleName": _parameter(
            "The role asr_rollback assumes to undo fixes (ASR_ROLLBACK_ROLE_NAME)",
            r"^[\w+=,.@-]{1,64}$",
            settings.rollback_role_name,
        ),
    }
    resources: Document = {
        "MemberRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": {"Ref": "RoleName"},
                "Description": "ASR on Airflow: remediates Security Hub findings in this account",
                "AssumeRolePolicyDocument": _member_trust(),
            },
        }
    }
    resources["RollbackRole"] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": {"Ref": "RollbackRoleName"},
            "Description": "ASR on Airflow: undoes its fixes in this account (asr_rollback only)",
            "AssumeRolePolicyDocument": _member_trust(),
        },
    }
    kinds = {
        (MEMBER, ROLLBACK): ("Shared", "what the playbooks' fixes and undoing them both need"),
        (MEMBER,): ("Member", "what the playbooks' fixes need"),
        (ROLLBACK,): ("Rollback", "what undoing the playbooks' fixes needs"),
    }
    role_resources = {MEMBER: "MemberRole", ROLLBACK: "RollbackRole"}
    for roles, policies in _role_policies(playbooks).items():
        kind, what = kinds[roles]
        for name, document in policies.items():
            number = name.rsplit("-", 1)[1]
            resources[f"{kind}Policy{number}"] = {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {
                    "ManagedPolicyName": {"Fn::Sub": name},
                    "Description": f"ASR on Airflow: {what} ({number})",
                    "Roles": [{"Ref": role_resources[role]} for role in roles],
                    "PolicyDocument": substituted(document),
                },
            }
    resources.update(_service_role_resources(playbooks))
    outputs: Document = {
        "MemberRoleArn": {"Value": {"Fn::GetAtt": ["MemberRole", "Arn"]}},
        "RollbackRoleArn": {"Value": {"Fn::GetAtt": ["RollbackRole", "Arn"]}},
    }
    if automation is not None:
        parameters["AutomationRoleName"] = _parameter(
            "The role SSM Automation documents run as (ASR_AUTOMATION_ROLE_NAME)",
            r"^[\w+=,.@-]{1,64}$",
            settings.automation_role_name,
        )
        resources["AutomationRole"] = {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": {"Ref": "AutomationRoleName"},
                "Description": "ASR on Airflow: the role the playbooks' SSM Automation documents run as",
                "AssumeRolePolicyDocument": _automation_trust(),
                "Policies": [{"PolicyName": "ssm-documents", "PolicyDocument": substituted(automation)}],
            },
        }
        outputs["AutomationRoleArn"] = {"Value": {"Fn::GetAtt": ["AutomationRole", "Arn"]}}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "ASR on Airflow: the role it assumes in a member account, with the permissions "
        f"of its {len(playbooks)} playbooks",
        "Parameters": parameters,
        "Conditions": {
            "HasAdministratorRole": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AdministratorRoleName"}, ""]}]},
            "HasExternalId": {"Fn::Not": [{"Fn::Equals": [{"Ref": "ExternalId"}, ""]}]},
        },
        "Resources": resources,
        "Outputs": outputs,
    }


# --- Output --------------------------------------------------------------------------------

KINDS = tuple(FILES)
HEADER = "# Generated by `asr policy template --write` from the playbooks and their actions: do not edit.\n"


def _queue_name(queue_url: str) -> str | None:
    """The name at the end of an events queue URL (``config.events_queue_url``), or None."""
    return queue_url.rsplit("/", 1)[-1] if queue_url else None


def generate(
    kind: str, playbooks: PlaybookRegistry, settings: Settings, environ: Mapping[str, str] | None = None
) -> str:
    """The text of one kind of output, for these settings (and ``ASR_*`` variables, for admin)."""
    environ = environ or {}
    if kind == "member":
        both = {**member_policies(playbooks), **rollback_policies(playbooks)}
        return _json(render(both, plain_values(settings)))
    if kind == "admin":
        policies = admin_policies(
            settings.member_role_name,
            settings.rollback_role_name,
            queue_name=_queue_name(events_queue_url(environ)),
            topic_arn=env_value("ASR_SNS_TOPIC_ARN", "", environ) or None,
            data_dir=settings.data_dir,
            audit_dir=settings.audit_dir,
        )
        return _json(render(policies, plain_values(settings)))
    if kind == "template":
        body = yaml.safe_dump(template(playbooks, settings), sort_keys=False, width=1000)
        return HEADER + body
    raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")


def reference(kind: str, playbooks: PlaybookRegistry) -> str:
    """The committed copy's text: the product's defaults, whatever this shell's environment says."""
    return generate(kind, playbooks, Settings())


def write(kind: str, playbooks: PlaybookRegistry) -> Path:
    path = FILES[kind]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(reference(kind, playbooks))
    return path


def _json(value: Any) -> str:
    return json.dumps(value, indent=2) + "\n"
