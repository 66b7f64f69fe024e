"""Settings that say where and as whom the product acts.

Read from ``ASR_*`` environment variables so the same DAGs run unchanged on a laptop,
in docker-compose and on a cluster; a DAG run's params override them per run.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ACCOUNT_RE = re.compile(r"^\d{12}$")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
OU_RE = re.compile(r"^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$")


class ConfigError(ValueError):
    """A setting has a value the product cannot act on."""


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


@dataclass(frozen=True)
class Settings:
    aws_conn_id: str = "aws_default"
    securityhub_region: str = "us-east-1"
    member_role_name: str = "ASRMemberRole"
    automation_role_name: str = "ASRAutomationRole"
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    batch_size: int = 50
    max_map_length: int = 1024
    data_dir: str = field(default_factory=lambda: str(Path(".asr/runs").resolve()))
    dry_run: bool = False
    # Who may be acted on: the accounts above, plus (when set) the organization's members.
    accounts_from_organization: bool = False
    # What is never acted on.
    exclude_accounts: tuple[str, ...] = ()
    exclude_ous: tuple[str, ...] = ()
    exclude_controls: tuple[str, ...] = ()
    exclude_tag: str = ""

    def __post_init__(self) -> None:
        for account in self.accounts:
            if not ACCOUNT_RE.match(account):
                raise ConfigError(f"account id {account!r} is not 12 digits")
        for region in (*self.regions, self.securityhub_region):
            if not REGION_RE.match(region):
                raise ConfigError(f"region {region!r} is not an AWS region name")
        for role in (self.member_role_name, self.automation_role_name):
            if not ROLE_NAME_RE.match(role):
                raise ConfigError(f"role name {role!r} is not a valid IAM role name")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, not {self.batch_size}")
        for account in self.exclude_accounts:
            if not ACCOUNT_RE.match(account):
                raise ConfigError(f"excluded account id {account!r} is not 12 digits")
        for ou in self.exclude_ous:
            if not OU_RE.match(ou):
                raise ConfigError(f"excluded organizational unit {ou!r} is not an OU id (ou-xxxx-xxxxxxxx)")
        if self.exclude_tag and not self.exclude_tag.partition("=")[0].strip():
            raise ConfigError(f"exclusion tag {self.exclude_tag!r} needs a key: KEY or KEY=VALUE")

    @property
    def exclusion_tag(self) -> tuple[str, str | None] | None:
        """(key, value) of the tag that excludes a resource; value None means any value."""
        if not self.exclude_tag:
            return None
        key, has_value, value = self.exclude_tag.partition("=")
        return key.strip(), value.strip() if has_value else None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            aws_conn_id=env.get("ASR_AWS_CONN_ID", defaults.aws_conn_id),
            securityhub_region=env.get("ASR_SECURITYHUB_REGION", defaults.securityhub_region),
            member_role_name=env.get("ASR_MEMBER_ROLE_NAME", defaults.member_role_name),
            automation_role_name=env.get("ASR_AUTOMATION_ROLE_NAME", defaults.automation_role_name),
            accounts=_split(env.get("ASR_ACCOUNTS")),
            regions=_split(env.get("ASR_REGIONS")),
            batch_size=int(env.get("ASR_BATCH_SIZE", defaults.batch_size)),
            data_dir=env.get("ASR_DATA_DIR", defaults.data_dir),
            dry_run=_flag(env.get("ASR_DRY_RUN")),
            accounts_from_organization=_flag(env.get("ASR_ACCOUNTS_FROM_ORGANIZATION")),
            exclude_accounts=_split(env.get("ASR_EXCLUDE_ACCOUNTS")),
            exclude_ous=_split(env.get("ASR_EXCLUDE_OUS")),
            exclude_controls=_split(env.get("ASR_EXCLUDE_CONTROLS")),
            exclude_tag=env.get("ASR_EXCLUDE_TAG", ""),
        )

    def with_overrides(self, overrides: dict[str, Any]) -> Settings:
        """Apply a run's params; empty values keep the configured setting."""
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            if value in (None, "", []):
                continue
            if key in ("accounts", "regions"):
                value = tuple(_split(value) if isinstance(value, str) else value)
            if key == "accounts" and self.accounts and set(value) - set(self.accounts):
                outside = sorted(set(value) - set(self.accounts))
                raise ConfigError(f"accounts {outside} are not in the allow-list (ASR_ACCOUNTS)")
            changes[key] = value
        return replace(self, **changes)
