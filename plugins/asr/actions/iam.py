"""IAM fixes: the account password policy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients

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


def _unset_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value == 0


def _weaker(kind: str, current: Any, wanted: Any) -> bool:
    if kind == "flag":
        return bool(wanted) and not current
    if current is None:
        return True
    return current < wanted if kind == "min" else current > wanted


@register
class SetPasswordPolicy(Action):
    """Raise the account password policy to the baseline, keeping any stricter setting.

    UpdateAccountPasswordPolicy replaces the whole policy, so the settings the baseline
    does not tighten are carried over from the current policy.

        remediation:
          action: iam.set-password-policy
          parameters: {minimum_password_length: 14, password_reuse_prevention: 24}
    """

    name = "iam.set-password-policy"
    service = "iam"
    permissions = ("iam:GetAccountPasswordPolicy", "iam:UpdateAccountPasswordPolicy")
    summary = "raised the account password policy to the baseline"
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

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        try:
            policy = clients.iam.get_account_password_policy()["PasswordPolicy"]
        except clients.iam.exceptions.NoSuchEntityException:
            return {}
        # moto (and older API responses) report an unset age or reuse limit as 0.
        return {k: v for k, v in policy.items() if k in SETTABLE and not _unset_number(v)}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {
            field: self.params[param]
            for param, (field, kind) in POLICY_FIELDS.items()
            if _weaker(kind, state.get(field), self.params[param])
        }

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.iam.update_account_password_policy(**{**state, **plan})
