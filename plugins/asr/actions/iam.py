"""IAM fixes: the account password policy, old and unused user credentials, the AWS Support role."""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING, Any

from asr.actions import Action, ServiceRole, aws_policy_arn, register, role_name_parameter

if TYPE_CHECKING:
    from asr.aws import Clients

log = logging.getLogger(__name__)
# Parameter name -> (password-policy field, kind). "min": at least; "max": at most; "flag": true.
POLICY_FIELDS: dict[str, tuple[str, str]] = {
    "minimum_password_length": ("MinimumPasswordLength", "min"),
    "require_symbols": ("RequireSymbols", "flag"),
    "require_numbers": ("RequireNumbers", "flag"),
    "require_uppercase_characters": ("RequireUppercaseCharacters", "flag"),
    "require_lowercase_characters": ("RequireLowercaseCharacters", "flag"),
    "allow_users_to_change_password": ("AllowUsersToChangePassword", "flag"),
    "max_password_age": ("MaxPasswordAge", "max"),
    "password_reuse_prevention": ("PasswordReusePrevention", "min"),
}
SETTABLE = {field for field, _ in POLICY_FIELDS.values()} | {"HardExpiry"}
# IAM is eventually consistent ("changes ... might not be immediately visible"): a read-back
# too soon (a policy, a key's status, a new attachment) is repeated for this long.
IAM_PROPAGATION = 15.0


def _unset(value: Any) -> bool:
    """A 0 age or reuse limit, or a false flag: what the policy says when the setting is off,
    and what UpdateAccountPasswordPolicy sets for a setting it is not given."""
    return value is False or (isinstance(value, int) and not isinstance(value, bool) and value == 0)


def _weaker(kind: str, current: Any, wanted: Any) -> bool:
    if kind == "flag":
        return bool(wanted) and not current
    if current is None:
        return True
    return current < wanted if kind == "min" else current > wanted


@register
class SetPasswordPolicy(Action):
    """Raise the account password policy to the baseline, keeping any stricter setting.

    The control's parameters in a finding raise the baseline where they are stricter and
    never lower it: Security Hub sends its defaults too (a minimum of 8 characters).

    UpdateAccountPasswordPolicy replaces the whole policy, so the settings the baseline
    does not tighten are carried over from the current policy. Under hard expiry a new or
    shorter maximum password age is refused (it would lock people out; see ``plan``).

        remediation:
          action: iam.set-password-policy
          parameters: {minimum_password_length: 14, password_reuse_prevention: 24}
    """

    name = "iam.set-password-policy"
    service = "iam"
    parameters_only_tighten = True
    propagation_seconds = IAM_PROPAGATION
    permissions = ("iam:GetAccountPasswordPolicy", "iam:UpdateAccountPasswordPolicy")
    summary = "raised the account password policy to the baseline"
    revert_permissions = ("iam:DeleteAccountPasswordPolicy",)
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "minimum_password_length": {"type": "integer", "minimum": 6, "maximum": 128, "default": 14},
            "require_symbols": {"type": "boolean", "default": True},
            "require_numbers": {"type": "boolean", "default": True},
            "require_uppercase_characters": {"type": "boolean", "default": True},
            "require_lowercase_characters": {"type": "boolean", "default": True},
            "allow_users_to_change_password": {"type": "boolean", "default": True},
            "max_password_age": {"type": "integer", "minimum": 1, "maximum": 1095, "default": 90},
            "password_reuse_prevention": {"type": "integer", "minimum": 1, "maximum": 24, "default": 24},
        },
    }

    @classmethod
    def strictest(cls, params: list[dict[str, Any]]) -> dict[str, Any]:
        """The strictest of each setting: the longest minimum, the shortest maximum age, every
        flag any set asks for (IAM.7 tuned to 8 characters and IAM.15 asking 14 get 14)."""
        pick = {"min": max, "max": min, "flag": any}
        return {param: pick[kind](p[param] for p in params) for param, (_, kind) in POLICY_FIELDS.items()}

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        try:
            policy = clients.iam.get_account_password_policy()["PasswordPolicy"]
        except clients.iam.exceptions.NoSuchEntityException:
            return {}
        # An unset age or reuse limit reads as 0, and HardExpiry as false: a policy made of
        # those alone is no policy, and reverting to it deletes the policy.
        return {k: v for k, v in policy.items() if k in SETTABLE and not _unset(v)}

    def _raised(self, state: dict[str, Any]) -> dict[str, Any]:
        return {
            field: self.params[param]
            for param, (field, kind) in POLICY_FIELDS.items()
            if _weaker(kind, state.get(field), self.params[param])
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        """The settings to raise; refused where a shorter password age would lock people out:
        under hard expiry an expired password can only be reset by an administrator, and a
        new maximum age expires every older password at once."""
        plan = self._raised(state)
        if state.get("HardExpiry") and "MaxPasswordAge" in plan:
            now = state.get("MaxPasswordAge")
            raise ValueError(
                f"the password policy has hard expiry on: a maximum password age of "
                f"{plan['MaxPasswordAge']} days (now {f'{now} days' if now else 'none'}) would at once "
                "lock every IAM user whose console password is older out of the console until an "
                "administrator resets it; lower the age yourself once those users have changed their "
                "passwords (or turn hard expiry off), and the next run raises the rest"
            )
        return plan

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.iam.update_account_password_policy(**{**state, **plan})

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """The settings the fix raised back to what they were, on top of the policy as it is
        now: a setting someone changed since (a hard expiry, say) stays. No policy at all
        again when there was none and nothing else has been set since."""
        now = self.read(clients, resource_id)
        raised = self._raised(before)
        policy = {k: v for k, v in now.items() if k not in raised} | {
            k: before[k] for k in raised if k in before
        }
        if policy:
            clients.iam.update_account_password_policy(**policy)
        else:
            clients.iam.delete_account_password_policy()


# --- IAM user credentials (IAM.3, IAM.8, IAM.22) and the AWS Support role (IAM.18) ---


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _iso(when: datetime.datetime | None) -> str | None:
    return when.astimezone(datetime.UTC).isoformat() if when else None


def _days_since(*events: datetime.datetime | None) -> float:
    """Days since the latest of the given events (a credential's creation, its last use)."""
    latest = max(e for e in events if e is not None)
    return (_now() - latest).total_seconds() / 86400


def _active_keys(iam: Any, user_name: str) -> list[dict[str, Any]]:
    """The user's active access keys; raises NoSuchEntity when the user does not exist."""
    pages = iam.get_paginator("list_access_keys").paginate(UserName=user_name)
    return [key for page in pages for key in page["AccessKeyMetadata"] if key["Status"] == "Active"]


def _keys_of_fix(state: dict[str, Any], before: dict[str, Any], field: str) -> dict[str, Any]:
    """``state`` with its list ``field`` cut to the ids of the keys the fix changed (``before``'s)."""
    if field not in state:
        return state
    ids = {key["AccessKeyId"] for key in before.get(field) or []}
    return {**state, field: sorted(k["AccessKeyId"] for k in state[field] or [] if k["AccessKeyId"] in ids)}


def _any_of_keys_there(iam: Any, user_name: str, keys: list[dict[str, Any]]) -> None:
    """LookupError when every one of ``keys`` was deleted since: a revert would turn none back on,
    and a rollback must not call that put back (``Action.check_revert``)."""
    pages = iam.get_paginator("list_access_keys").paginate(UserName=user_name)
    there = {key["AccessKeyId"] for page in pages for key in page["AccessKeyMetadata"]}
    ids = [key["AccessKeyId"] for key in keys]
    if ids and there.isdisjoint(ids):
        raise LookupError(f"the access keys {', '.join(ids)} of {user_name} were not found")


def _set_status(iam: Any, user_name: str, keys: list[dict[str, Any]], status: str) -> list[dict[str, Any]]:
    """Each key's status; a key deleted meanwhile is skipped, not the end of the others. The
    keys still there."""
    there = []
    for key in keys:
        try:
            iam.update_access_key(UserName=user_name, AccessKeyId=key["AccessKeyId"], Status=status)
        except iam.exceptions.NoSuchEntityException:
            _active_keys(iam, user_name)  # raises NoSuchEntity in turn if the user is gone
            log.info(
                "Access key %s of %s is gone; the others are set %s", key["AccessKeyId"], user_name, status
            )
        else:
            there.append(key)
    return there


@register
class DeactivateOldAccessKeys(Action):
    """Deactivate a user's active access keys created more than ``max_key_age_days`` ago.

    Deactivated, not deleted: an owner who still needs a key can turn it back on while a
    rotated one is issued. Disruptive: whatever signs requests with the key stops working.

        remediation:
          action: iam.deactivate-old-access-keys
          parameters: {max_key_age_days: 90}
    """

    name = "iam.deactivate-old-access-keys"
    service = "iam"
    propagation_seconds = IAM_PROPAGATION
    permissions = ("iam:ListAccessKeys", "iam:UpdateAccessKey")
    summary = "deactivated the user's access keys older than {max_key_age_days} days"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"max_key_age_days": {"type": "integer", "minimum": 1, "maximum": 3650, "default": 90}},
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        old = [
            {"AccessKeyId": key["AccessKeyId"], "CreateDate": _iso(key["CreateDate"])}
            for key in _active_keys(clients.iam, resource_id)
            if _days_since(key["CreateDate"]) > self.params["max_key_age_days"]
        ]
        return {"old_active_access_keys": old}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"old_active_access_keys": []} if state["old_active_access_keys"] else {}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        _set_status(clients.iam, resource_id, state["old_active_access_keys"], "Inactive")

    def as_compared(self, state: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
        return _keys_of_fix(state, before, "old_active_access_keys")

    def check_revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        _any_of_keys_there(clients.iam, resource_id, before["old_active_access_keys"])

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> dict[str, Any] | None:
        keys = before["old_active_access_keys"]
        there = _set_status(clients.iam, resource_id, keys, "Active")
        return None if len(there) == len(keys) else {**before, "old_active_access_keys": there}


PASSWORD_GONE = (
    "the console password was deleted: IAM never reveals a password, so it cannot be put back "
    "(an administrator can set a new one)"
)


@register
class RevokeUnusedCredentials(Action):
    """Deactivate access keys and delete the console password a user has not used for a while.

    A credential counts as unused when neither its creation nor its last use falls within
    ``max_credential_usage_age`` days (a never-used one counts from its creation). Keys
    are deactivated, not deleted; the password (login profile) is deleted, as the control
    asks, and can be set again by an administrator. Disruptive.

        remediation:
          action: iam.revoke-unused-credentials
          parameters: {max_credential_usage_age: 45}
    """

    name = "iam.revoke-unused-credentials"
    service = "iam"
    propagation_seconds = IAM_PROPAGATION
    permissions = (
        "iam:GetUser",
        "iam:GetLoginProfile",
        "iam:ListAccessKeys",
        "iam:GetAccessKeyLastUsed",
        "iam:UpdateAccessKey",
        "iam:DeleteLoginProfile",
    )
    summary = (
        "revoked credentials unused for {max_credential_usage_age} days "
        "(access keys deactivated, console password deleted)"
    )
    lost_on_revert = {"unused_console_password": PASSWORD_GONE}
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "max_credential_usage_age": {"type": "integer", "minimum": 1, "maximum": 3650, "default": 90}
        },
    }

    def _unused(self, *events: datetime.datetime | None) -> bool:
        return _days_since(*events) >= self.params["max_credential_usage_age"]

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        iam = clients.iam
        user = iam.get_user(UserName=resource_id)["User"]
        keys = []
        for key in _active_keys(iam, resource_id):
            used = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])["AccessKeyLastUsed"]
            if self._unused(key["CreateDate"], used.get("LastUsedDate")):
                keys.append(
                    {
                        "AccessKeyId": key["AccessKeyId"],
                        "CreateDate": _iso(key["CreateDate"]),
                        "LastUsedDate": _iso(used.get("LastUsedDate")),
                    }
                )
        try:
            profile = iam.get_login_profile(UserName=resource_id)["LoginProfile"]
        except iam.exceptions.NoSuchEntityException:
            profile = None
        password = None
        if profile and self._unused(profile["CreateDate"], user.get("PasswordLastUsed")):
            password = {
                "CreateDate": _iso(profile["CreateDate"]),
                "PasswordLastUsed": _iso(user.get("PasswordLastUsed")),
            }
        return {"unused_active_access_keys": keys, "unused_console_password": password}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        plan: dict[str, Any] = {}
        if state["unused_active_access_keys"]:
            plan["unused_active_access_keys"] = []
        if state["unused_console_password"]:
            plan["unused_console_password"] = None
        return plan

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        _set_status(clients.iam, resource_id, state["unused_active_access_keys"], "Inactive")
        if "unused_console_password" in plan:
            clients.iam.delete_login_profile(UserName=resource_id)

    def as_compared(self, state: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
        return _keys_of_fix(state, before, "unused_active_access_keys")

    def irreversible_from(self, before: dict[str, Any]) -> str | None:
        """A fix that deleted only the console password has nothing a revert can put back."""
        if before["unused_console_password"] and not before["unused_active_access_keys"]:
            return PASSWORD_GONE
        return None

    def check_revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        _any_of_keys_there(clients.iam, resource_id, before["unused_active_access_keys"])

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> dict[str, Any] | None:
        """Reactivate the keys; a deleted console password cannot come back (``lost_on_revert``)."""
        keys = before["unused_active_access_keys"]
        there = _set_status(clients.iam, resource_id, keys, "Active")
        return None if len(there) == len(keys) else {**before, "unused_active_access_keys": there}


SUPPORT_POLICY = "AWSSupportAccess"


def _has_members(iam: Any, group: str) -> bool:
    """Whether an IAM group has a user. IAM may answer a page with fewer users than asked for
    while more follow (``IsTruncated``): an empty first page does not make the group empty."""
    page = iam.get_group(GroupName=group, MaxItems=1)
    return bool(page["Users"]) or bool(page.get("IsTruncated"))


@register
class CreateSupportRole(Action):
    """Make sure some IAM principal can open AWS Support cases: give a role AWSSupportAccess.

    Compliant as soon as a user, a group with members, or a role has the policy as a
    permissions policy (AWS Config's iam-policy-in-use: a boundary grants nothing, nor does
    a group nobody is in). Otherwise the policy is attached to the role ``role_name``, which
    the member-role stack makes without it, trusting this account (its administrators grant
    who may assume it).

        remediation:
          action: iam.create-support-role
          parameters: {role_name: asr-aws-support}
    """

    name = "iam.create-support-role"
    propagation_seconds = IAM_PROPAGATION
    service = "iam"
    permissions = (
        "iam:ListEntitiesForPolicy",
        "iam:GetGroup",
        "iam:GetRole",
        "iam:AttachRolePolicy",
    )
    service_role = ServiceRole(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
        "Manages incidents with AWS Support once ASR gives it AWSSupportAccess (for IAM.18)",
    )
    summary = "gave the IAM role {role_name} the AWSSupportAccess policy"
    revert_permissions = ("iam:DetachRolePolicy",)
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"role_name": role_name_parameter("asr-aws-support")},
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        iam = clients.iam
        pages = iam.get_paginator("list_entities_for_policy").paginate(
            PolicyArn=aws_policy_arn(iam, SUPPORT_POLICY), PolicyUsageFilter="PermissionsPolicy"
        )
        entities = [
            f"{kind}/{entity[kind + 'Name']}"
            for page in pages
            for kind, field in (("Role", "PolicyRoles"), ("User", "PolicyUsers"), ("Group", "PolicyGroups"))
            for entity in page.get(field, [])
            if kind != "Group" or _has_members(iam, entity["GroupName"])
        ]
        return {"support_access_principals": sorted(entities)}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        if state["support_access_principals"]:
            return {}
        return {"support_access_principals": [f"Role/{self.params['role_name']}"]}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        self.ready_role(clients)
        iam, role = clients.iam, self.params["role_name"]
        iam.attach_role_policy(RoleName=role, PolicyArn=aws_policy_arn(iam, SUPPORT_POLICY))

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Take the policy off; the role stays, as the member-role stack made it."""
        iam, role = clients.iam, self.params["role_name"]
        iam.detach_role_policy(RoleName=role, PolicyArn=aws_policy_arn(iam, SUPPORT_POLICY))
