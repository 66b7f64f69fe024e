"""IAM state moto 5.2.5 lacks, added to moto's own IAM backend.

- AWS managed policies exist in every real account; moto knows them (its bundled copy) but
  loads them only when ``MOTO_IAM_LOAD_MANAGED_POLICIES`` is set, which costs every account
  a fraction of a second. Here one is created in an account when first named by its ARN
  (attach, detach, get), so ``AttachRolePolicy`` of ``arn:aws:iam::aws:policy/AWSSupportAccess``
  works as in AWS. ``ListPolicies`` shows only the AWS policies an account has referenced.
- A role made by CloudFormation (``AWS::IAM::Role``) gets its ``ManagedPolicyArns`` attached
  (moto ignores them), and its ``Policies`` are kept as JSON text, as ``PutRolePolicy`` keeps
  them (moto keeps the template's object, which ``GetRolePolicy`` then answers garbled). The
  member-role stack makes the service roles the fixes use this way.
- A login profile has its own ``CreateDate`` (moto reports the user's creation date).
- In AWS a credential becomes old or unused only as time passes, which no API call can do.
  ``POST /moto-api/asr/iam/credential-history`` (beside moto's own ``/moto-api/`` controls)
  sets when one access key or console password was created and last used, so a seeded user
  looks like one whose credentials have aged. Body: ``{"account_id", "user_name",
  "credential": "<access key id>" | "password", "created": ISO-8601, "last_used": ISO-8601 or
  null (never used), optional "service" and "region" of the last use}``.
- A service-linked role of AWS Config, GuardDuty or Macie has the name AWS gives it
  (``AWSServiceRoleForConfig``); moto wrote the service's lower-case prefix
  (``AWSServiceRoleForconfig``), and Config.1 reads the role by its name.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.iam.exceptions import IAMException, NoSuchEntity
from moto.iam.models import (
    SERVICE_NAME_CONVERSION,
    AccessKeyLastUsed,
    AWSManagedPolicy,
    IAMBackend,
    Role,
    User,
    iam_backends,
)
from moto.iam.responses import IamResponse
from moto.utilities.utils import get_partition

from asr.local import history_api

HISTORY_PATH = "/moto-api/asr/iam/credential-history"
PASSWORD = "password"
AWS_POLICY_ARN = re.compile(r"^arn:aws[a-z-]*:iam::aws:policy(/(?:[^/]+/)*)([^/]+)$")
# Backend methods whose first argument is a policy ARN.
POLICY_METHODS = (
    "attach_role_policy",
    "attach_group_policy",
    "attach_user_policy",
    "detach_role_policy",
    "detach_group_policy",
    "detach_user_policy",
    "get_policy",
    "get_policy_version",
    "list_policy_versions",
)
LOGIN_PROFILE_CREATED = "asr_login_profile_created"
# What follows "AWSServiceRoleFor" in the service-linked roles of services the fixes switch on.
SERVICE_LINKED_NAMES = {"config": "Config", "guardduty": "AmazonGuardDuty", "macie": "AmazonMacie"}


@functools.cache
def _aws_policy_data() -> dict[str, Any]:
    return json.loads(aws_managed_policies_data)


def ensure_aws_policy(backend: IAMBackend, policy_arn: str) -> None:
    """Create the AWS managed policy an ARN names in this account, if moto knows it."""
    if policy_arn in backend.managed_policies:
        return
    match = AWS_POLICY_ARN.match(policy_arn)
    data = _aws_policy_data().get(match.group(2)) if match else None
    if not match or not data or data.get("Path", "/") != match.group(1):
        return
    policy = AWSManagedPolicy.from_data(match.group(2), backend.account_id, backend.region_name, data)
    if policy.arn == policy_arn:  # same partition
        backend.aws_managed_policies.append(policy)
        backend.managed_policies[policy.arn] = policy


def _with_aws_policy(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: IAMBackend, policy_arn: str, *args: Any, **kwargs: Any) -> Any:
        ensure_aws_policy(self, policy_arn)
        return method(self, policy_arn, *args, **kwargs)

    return call


_moto_role_from_template = Role.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]


def role_from_template(
    cls: type[Role],
    resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> Role:
    properties = cloudformation_json["Properties"]
    policies = [
        {**policy, "PolicyDocument": _as_text(policy["PolicyDocument"])}
        for policy in properties.get("Policies", [])
    ]
    role: Role = _moto_role_from_template(
        cls,
        resource_name,
        {**cloudformation_json, "Properties": {**properties, "Policies": policies}},
        account_id,
        region_name,
        **kwargs,
    )
    backend = iam_backends[account_id][get_partition(region_name)]
    for policy_arn in properties.get("ManagedPolicyArns", []):
        backend.attach_role_policy(policy_arn, role.name)
    return role


def _as_text(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def login_profile_created(user: User) -> datetime.datetime:
    return getattr(user, LOGIN_PROFILE_CREATED, None) or user.create_date


def _login_profile(user: User) -> ActionResult:
    return ActionResult(
        {
            "LoginProfile": {
                "UserName": user.name,
                "CreateDate": login_profile_created(user),
                "PasswordResetRequired": user.password_reset_required,
            }
        }
    )


def _recording_profile_date(create: Callable[..., User]) -> Callable[..., User]:
    @functools.wraps(create)
    def call(self: IAMBackend, user_name: str, password: str) -> User:
        user = create(self, user_name, password)
        setattr(user, LOGIN_PROFILE_CREATED, utcnow())
        return user

    return call


def _forgetting_profile_date(delete: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(delete)
    def call(self: IAMBackend, user_name: str) -> None:
        delete(self, user_name)
        setattr(self.get_user(user_name), LOGIN_PROFILE_CREATED, None)

    return call


def create_login_profile_response(self: IamResponse) -> ActionResult:
    user = self.backend.create_login_profile(self._get_param("UserName"), self._get_param("Password"))
    return _login_profile(user)


def get_login_profile_response(self: IamResponse) -> ActionResult:
    return _login_profile(self.backend.get_login_profile(self._get_param("UserName")))


def _utc(value: Any, field: str) -> datetime.datetime:
    """An ISO-8601 time as moto keeps times: naive UTC."""
    return history_api.past_time(value, field).replace(tzinfo=None)


def set_credential_history(body: dict[str, Any]) -> dict[str, Any]:
    """Backdate one credential of a user; the user is at least as old as the credential."""
    created = _utc(body.get("created"), "created")
    last_used = None if body.get("last_used") is None else _utc(body["last_used"], "last_used")
    if last_used and last_used < created:
        raise ValueError("last_used is before created")
    backend = iam_backends[str(body.get("account_id"))][body.get("partition", "aws")]
    user = backend.get_user(str(body.get("user_name")))
    credential = body.get("credential")
    if credential == PASSWORD:
        if not user.password:
            raise NoSuchEntity(f"Login profile for {user.name} not found")
        setattr(user, LOGIN_PROFILE_CREATED, created)
        user.password_last_used = last_used
    else:
        key = user.get_access_key_by_id(str(credential))
        key.create_date = created
        key.last_used = (
            AccessKeyLastUsed(last_used, body.get("service", "iam"), body.get("region", "us-east-1"))
            if last_used
            else None
        )
    user.create_date = min(user.create_date, created)
    return {"user_name": user.name, "credential": credential}


def install() -> None:
    SERVICE_NAME_CONVERSION.update(SERVICE_LINKED_NAMES)
    for name in POLICY_METHODS:
        setattr(IAMBackend, name, _with_aws_policy(getattr(IAMBackend, name)))
    Role.create_from_cloudformation_json = classmethod(role_from_template)  # type: ignore[method-assign,assignment]
    IAMBackend.create_login_profile = _recording_profile_date(IAMBackend.create_login_profile)  # type: ignore[method-assign]
    IAMBackend.delete_login_profile = _forgetting_profile_date(IAMBackend.delete_login_profile)  # type: ignore[method-assign]
    IamResponse.create_login_profile = create_login_profile_response  # type: ignore[method-assign]
    IamResponse.get_login_profile = get_login_profile_response  # type: ignore[method-assign]
    # NoSuchEntity: an unknown user, access key or login profile.
    history_api.register(
        HISTORY_PATH, set_credential_history, IAMException, lambda e: f"{e.code}: {e.message}"
    )
