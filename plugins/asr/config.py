"""Settings that say where and as whom the product acts.

Read from ``ASR_*`` environment variables so the same DAGs run unchanged on a laptop,
in docker-compose and on a cluster; a DAG run's params override them per run.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

from asr.store import FOLDER_DAGS

# These patterns are also the form's JSON Schema patterns, which Airflow checks with re.search,
# where "$" matches before a final newline too: "(?!\n)$" ends them at the string's end, in
# Python and in a browser alike. ASCII digits only (\d takes any script's).
ACCOUNT_PATTERN = r"^[0-9]{12}(?!\n)$"
# Every partition's region names: us-east-1, us-gov-west-1, cn-north-1, us-isob-east-1 and the
# European Sovereign Cloud's eusc-de-east-1.
REGION_NAME = r"[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}"
REGION_PATTERN = rf"^{REGION_NAME}(?!\n)$"
# Its region is where notifications are sent from: a malformed one would fail every one of them.
SNS_TOPIC_RE = re.compile(
    rf"^arn:aws[a-z-]*:sns:(?P<region>{REGION_NAME}):[0-9]{{12}}:[A-Za-z0-9_-]{{1,256}}(\.fifo)?$"
)
ACCOUNT_RE = re.compile(ACCOUNT_PATTERN)
REGION_RE = re.compile(REGION_PATTERN)
ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
OU_RE = re.compile(r"^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$")
CONTROL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*\.\d+$")
# What AWS allows in a tag's key and value (letters of any script, as \w matches them).
TAG_KEY_RE = re.compile(r"[\w .:/+\-@]{1,128}")
TAG_VALUE_RE = re.compile(r"[\w .:/=+\-@]{0,256}")
# Ten years: a longer wait or hold is a typo, and would overflow a date when it is added.
MAX_HOURS = 87_600
KEEP_RUNS_DAYS_MAX = 36_500  # a hundred years: for ever in all but name
ALL = "*"
# The Airflow connection asr acts through when ASR_AWS_CONN_ID is unset.
DEFAULT_AWS_CONN_ID = "aws_default"
# An SQS queue URL, as CreateQueue and GetQueueUrl give it: https://sqs.<region>.amazonaws.com/
# (or a FIPS, legacy or VPC endpoint host; the local stand-in's http://127.0.0.1:<port>), the
# owner's account, and a queue name of up to 80 letters, digits, - and _ (a FIFO one's ending
# in .fifo).
SQS_QUEUE_URL_RE = re.compile(
    r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[0-9]{12}/([A-Za-z0-9_-]{1,75}\.fifo|[A-Za-z0-9_-]{1,80})/?$"
)
# "s3:/bucket/runs": a URL with a slash lost, which a path would take as a relative folder named
# "s3:" in the working directory. A scheme of one letter is a Windows drive (C:/asr).
SLASH_LOST_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:(/(?!/)|$)")


class ConfigError(ValueError):
    """A setting has a value the product cannot act on."""


def env_value(name: str, default: str, environ: Mapping[str, str] | None = None) -> str:
    """An ``ASR_*`` setting: unset or empty (a line of ``.env`` left blank) means the default."""
    env = os.environ if environ is None else environ
    return (env.get(name) or "").strip() or default


def env_number(
    name: str,
    default: float,
    environ: Mapping[str, str] | None = None,
    minimum: float = 0,
    maximum: float = math.inf,
) -> float:
    """A numeric ``ASR_*`` setting (see ``env_value``) from ``minimum`` to ``maximum``, or a
    ConfigError naming it: a negative retry count or delay, or nan, is a typo, not a setting."""
    text = env_value(name, str(default), environ)
    try:
        number = float(text) if isinstance(default, float) else int(text)
    except ValueError:
        number = math.nan
    if not (minimum <= number <= maximum and number < math.inf):  # nan compares false too
        kind = "number" if isinstance(default, float) else "whole number"
        most = f" and at most {maximum:g}" if maximum < math.inf else ""
        raise ConfigError(f"{name}={text!r} is not a {kind} of at least {minimum:g}{most}")
    return number


TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def env_flag(name: str, environ: Mapping[str, str] | None = None, default: bool = False) -> bool:
    """An on/off ``ASR_*`` setting (unset or empty: ``default``), or a ConfigError naming it: a
    misspelt ``ASR_DRY_RUN=ture`` must not quietly mean a run that changes resources."""
    text = env_value(name, "on" if default else "off", environ).lower()
    if text not in TRUE + FALSE:
        raise ConfigError(f"{name}={text!r} is neither on ({'/'.join(TRUE)}) nor off ({'/'.join(FALSE)})")
    return text in TRUE


def events_queue_url(environ: Mapping[str, str] | None = None) -> str:
    """``ASR_EVENTS_QUEUE_URL``: the SQS queue URL ``asr setup`` printed (without a trailing
    slash), or "" when unset; else a ConfigError naming it. An ARN or a bare queue name would
    load, and the triggerer would poll a queue that is not there, saying so only in its log."""
    url = env_value("ASR_EVENTS_QUEUE_URL", "", environ)
    if url and not SQS_QUEUE_URL_RE.fullmatch(url):
        raise ConfigError(
            f"ASR_EVENTS_QUEUE_URL {url!r} is not an SQS queue URL: "
            "https://sqs.<region>.amazonaws.com/<12-digit account>/<queue name>, as asr setup prints it"
        )
    return url.rstrip("/")


def sweep_schedule(environ: Mapping[str, str] | None = None) -> str | None:
    """``ASR_SWEEP_SCHEDULE``: a cron expression or an Airflow preset (``@hourly``, ``@daily``,
    ``@once``, ``@continuous``, ...) as Airflow takes it, or None for ``none`` (any case): runs
    by hand only. Anything else is a ConfigError naming the setting, where Airflow's own error
    ("Exactly 5, 6 or 7 columns ...") would not say which setting it is about."""
    schedule = env_value("ASR_SWEEP_SCHEDULE", "@hourly", environ)
    if schedule.lower() == "none":
        return None
    if schedule in ("@once", "@continuous"):  # timetables of their own, not cron
        return schedule
    from airflow.sdk import CronTriggerTimetable
    from airflow.sdk.exceptions import AirflowTimetableInvalid

    try:  # what Airflow makes of a str schedule, and how it checks it when the DAG is loaded
        CronTriggerTimetable(schedule, timezone="UTC").validate()
    except AirflowTimetableInvalid:
        raise ConfigError(
            f"ASR_SWEEP_SCHEDULE {schedule!r} is not a cron expression or preset (@hourly), or none"
        ) from None
    return schedule


def _local_path(value: str) -> str:
    """A ``file://`` URL as the path it names: a local folder is written durably (fsync) and
    holds claims (exclusive create), which asr does for a path but not through fsspec."""
    return value.removeprefix("file://") if value.startswith("file:///") else value


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _same_place(one: str, other: str) -> bool:
    """Whether two settings name one folder: the same URL, or the same local path."""
    if "://" in one or "://" in other:
        return one.rstrip("/") == other.rstrip("/")
    return Path(one).resolve() == Path(other).resolve()


def _within(inner: str, outer: str) -> bool:
    """Whether the folder ``inner`` is ``outer`` or inside it."""
    if "://" in inner or "://" in outer:
        return f"{inner.rstrip('/')}/".startswith(f"{outer.rstrip('/')}/")
    return Path(inner).resolve().is_relative_to(Path(outer).resolve())


def _hours(value: str | None, default: float, what: str) -> float:
    if not (value or "").strip():
        return default
    try:
        return float(value)  # type: ignore[arg-type]
    except ValueError:
        raise ConfigError(f"{what} {value!r} is not a number of hours (e.g. 24 or 0.5)") from None


@cache
def _known_regions() -> frozenset[str]:
    import botocore.session

    partitions = botocore.session.get_session().get_data("endpoints")["partitions"]
    return frozenset(region for partition in partitions for region in partition["regions"])


def unknown_regions(regions: Iterable[str]) -> list[str]:
    """The regions no partition of botocore's endpoint data names (``us-eest-1``): a sweep
    narrowed to one reads nothing there, and nothing else would say so."""
    return [region for region in regions if region not in _known_regions()]


@dataclass(frozen=True)
class Settings:
    aws_conn_id: str = DEFAULT_AWS_CONN_ID
    securityhub_region: str = "us-east-1"
    member_role_name: str = "ASRMemberRole"
    automation_role_name: str = "ASRAutomationRole"
    # The role asr_rollback assumes: what undoing fixes needs (opening a security group again,
    # stopping a recorder) stays off the member role every sweep uses.
    rollback_role_name: str = "ASRRollbackRole"
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    batch_size: int = 250
    data_dir: str = field(default_factory=lambda: str(Path(".asr/runs").resolve()))
    dry_run: bool = False
    # Pacing (``asr.pacing``): "aws" (published limits), "off", or JSON overrides; and the
    # threads a fix task runs its writes on.
    rate_limits: str = "aws"
    fix_threads: int = 8
    # Who may be acted on: the accounts above, plus (when set) the organization's members.
    accounts_from_organization: bool = False
    # A run's narrower choice (its form): only these, and only those of them allowed above.
    run_accounts: tuple[str, ...] = ()
    # What is never acted on.
    exclude_accounts: tuple[str, ...] = ()
    exclude_ous: tuple[str, ...] = ()
    exclude_controls: tuple[str, ...] = ()
    exclude_tag: str = ""
    # The audit journal (asr.audit): a path or an s3:// URL; empty for <data_dir>/audit.
    audit_dir: str = ""
    # Disruptive playbooks wait for a person's approval, unless named here ("*": all of them).
    auto_approve: tuple[str, ...] = ()
    # Who may answer an approval (Airflow auth-manager user ids); empty: anyone Airflow lets answer.
    approvers: tuple[str, ...] = ()
    approval_timeout_hours: float = 24.0
    # Whether asr_rollback waits for a person's approval (ASR_APPROVERS) before it puts back
    # what fixes closed: undoing a fix re-opens its finding's hole. ASR_AUTO_APPROVE is about
    # fixes and does not apply.
    rollback_approval: bool = True
    # How long sweeps and automatic events leave the findings of a fix a person rejected (0: ask
    # again at the next sweep). A person picking them by id is asked again at once.
    rejection_hold_hours: float = 168.0
    # Where summaries, approval requests and failures are published (``asr.notify``); empty: off.
    sns_topic_arn: str = ""
    # Days a run's files stay in the data dir after it last wrote (``asr.housekeeping``); 0: for ever.
    keep_runs_days: int = 90

    def __post_init__(self) -> None:
        for account in (*self.accounts, *self.run_accounts):
            if not ACCOUNT_RE.fullmatch(account):
                raise ConfigError(
                    f"account id {account!r} (ASR_ACCOUNTS, or a run's accounts) is not 12 digits"
                )
        for region in self.regions:
            if not REGION_RE.fullmatch(region):
                raise ConfigError(
                    f"region {region!r} (ASR_REGIONS, or a run's regions) is not an AWS region name"
                )
        if not REGION_RE.fullmatch(self.securityhub_region):
            raise ConfigError(f"ASR_SECURITYHUB_REGION {self.securityhub_region!r} is not an AWS region name")
        for setting, role in (
            ("ASR_MEMBER_ROLE_NAME", self.member_role_name),
            ("ASR_AUTOMATION_ROLE_NAME", self.automation_role_name),
            ("ASR_ROLLBACK_ROLE_NAME", self.rollback_role_name),
        ):
            if not ROLE_NAME_RE.fullmatch(role):
                raise ConfigError(f"{setting} {role!r} is not a valid IAM role name")
        for setting, place in (("ASR_DATA_DIR", self.data_dir), ("ASR_AUDIT_DIR", self.audit_dir)):
            if SLASH_LOST_RE.match(place):
                raise ConfigError(
                    f"{setting} {place!r} is a URL with a slash missing: write scheme://... "
                    "(s3://bucket/prefix), or a folder path"
                )
        if self.audit_dir and _same_place(self.audit_dir, self.data_dir):
            raise ConfigError(
                f"ASR_AUDIT_DIR {self.audit_dir!r} is ASR_DATA_DIR: the journal needs a folder of its own"
            )
        for dag_id in FOLDER_DAGS:
            if self.audit_dir and _within(self.audit_dir, f"{self.data_dir.rstrip('/')}/{dag_id}"):
                raise ConfigError(
                    f"ASR_AUDIT_DIR {self.audit_dir!r} is inside the folder of {dag_id}'s runs in "
                    "ASR_DATA_DIR, where old runs are deleted (ASR_KEEP_RUNS_DAYS): give the journal "
                    "a folder of its own"
                )
        if self.batch_size < 1:
            raise ConfigError(f"ASR_BATCH_SIZE must be at least 1, not {self.batch_size}")
        if not 1 <= self.fix_threads <= 64:
            raise ConfigError(f"ASR_FIX_THREADS must be between 1 and 64, not {self.fix_threads}")
        from asr.pacing import RateLimitError, parse_limits

        try:
            parse_limits(self.rate_limits)
        except RateLimitError as exc:
            raise ConfigError(str(exc)) from None
        for account in self.exclude_accounts:
            if not ACCOUNT_RE.fullmatch(account):
                raise ConfigError(f"ASR_EXCLUDE_ACCOUNTS: {account!r} is not an account id of 12 digits")
        for ou in self.exclude_ous:
            if not OU_RE.match(ou):
                raise ConfigError(f"ASR_EXCLUDE_OUS: {ou!r} is not an OU id (ou-xxxx-xxxxxxxx)")
        if self.sns_topic_arn and not SNS_TOPIC_RE.match(self.sns_topic_arn):
            raise ConfigError(f"ASR_SNS_TOPIC_ARN {self.sns_topic_arn!r} is not an SNS topic ARN")
        if self.exclude_tag:
            self._check_exclusion_tag()
        self._check_approvals()
        self._check_exclusions()

    def _check_exclusion_tag(self) -> None:
        """One tag, as AWS allows tag keys and values to be written: a list ("a,b") or a value
        with a comma would match no resource, and the exclusion would protect nothing."""
        key, has_value, value = self.exclude_tag.partition("=")
        key, value = key.strip(), value.strip()
        if not key:
            raise ConfigError(f"ASR_EXCLUDE_TAG {self.exclude_tag!r} needs a key: KEY or KEY=VALUE")
        if not TAG_KEY_RE.fullmatch(key) or (has_value and not TAG_VALUE_RE.fullmatch(value)):
            raise ConfigError(
                f"ASR_EXCLUDE_TAG {self.exclude_tag!r} is not one tag, KEY or KEY=VALUE: a key of 1 to "
                "128 and a value of up to 256 letters, digits, spaces and _ . : / + - @ (and = in "
                "the value); no comma"
            )

    def _check_approvals(self) -> None:
        """Auto-approval names playbooks by their control id: a typo must not silently leave
        a control waiting for approval, nor approve one nobody meant."""
        if not 0 < self.approval_timeout_hours <= MAX_HOURS:  # NaN compares false too
            raise ConfigError(
                f"ASR_APPROVAL_TIMEOUT {self.approval_timeout_hours!r} must be a number of hours above 0, "
                f"at most {MAX_HOURS}"
            )
        if not 0 <= self.rejection_hold_hours <= MAX_HOURS:
            raise ConfigError(
                f"ASR_REJECTION_HOLD {self.rejection_hold_hours!r} must be from 0 to {MAX_HOURS} hours"
            )
        for user in self.approvers:
            if not user.isprintable() or any(c.isspace() for c in user):
                raise ConfigError(f"ASR_APPROVERS: {user!r} is not an Airflow user id (comma-separated ids)")
        named = [c for c in self.auto_approve if c != ALL]
        for control in named:
            if not CONTROL_RE.match(control):
                raise ConfigError(f"ASR_AUTO_APPROVE: {control!r} is not a control id (e.g. EC2.13) or *")
        if not named:
            return
        from asr.playbooks import registry

        playbooks = registry()
        for control in named:
            if control in playbooks.playbooks:
                continue
            owner = playbooks.for_control(control)
            where = f"; it is fixed by the {owner.control_id} playbook" if owner else ""
            raise ConfigError(f"ASR_AUTO_APPROVE: {control!r} names no playbook{where}")

    def _check_exclusions(self) -> None:
        """An excluded control is matched as written against a finding's control and its
        playbook: ``ec2.13`` or ``EC2.13 EC2.2`` would exclude nothing, so it is refused."""
        if not self.exclude_controls:
            return
        from asr.playbooks import registry

        playbooks = registry()
        for control in self.exclude_controls:
            if control not in playbooks.playbooks and playbooks.for_control(control) is None:
                raise ConfigError(
                    f"ASR_EXCLUDE_CONTROLS: {control!r} is no control asr fixes "
                    "(control ids as Security Hub writes them, e.g. EC2.13, comma-separated)"
                )

    def auto_approves(self, playbook: str) -> bool:
        """Whether this playbook's fixes run without waiting for a person's approval."""
        return ALL in self.auto_approve or playbook in self.auto_approve

    def warnings(self) -> list[str]:
        """What these settings let through that is likely a mistake, for the run's log and
        report: not refused, since a region newer than the installed botocore is real."""
        unknown = unknown_regions(self.regions)
        return [
            f"region {region!r} (ASR_REGIONS, or the run's regions) is no region botocore knows: no "
            "finding came from it. A typo? (A region newer than botocore is read as named.)"
            for region in unknown
        ]

    @property
    def query_accounts(self) -> tuple[str, ...]:
        """The accounts a finding query narrows to: the run's choice, else the allow-list
        unless the organization widens it (the scope then checks each finding's account)."""
        if self.run_accounts:
            return self.run_accounts
        return () if self.accounts_from_organization else self.accounts

    @property
    def approval_timeout(self) -> timedelta:
        return timedelta(hours=self.approval_timeout_hours)

    @property
    def rejection_hold(self) -> timedelta:
        return timedelta(hours=self.rejection_hold_hours)

    @property
    def exclusion_tag(self) -> tuple[str, str | None] | None:
        """(key, value) of the tag that excludes a resource; value None means any value."""
        if not self.exclude_tag:
            return None
        key, has_value, value = self.exclude_tag.partition("=")
        return key.strip(), value.strip() if has_value else None

    @property
    def audit_root(self) -> str:
        """Where the audit journal lives: ``audit_dir``, else beside the runs in the data dir."""
        return self.audit_dir or f"{self.data_dir.rstrip('/')}/audit"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        defaults = cls()

        def value(name: str, default: str) -> str:
            return env_value(name, default, env)

        return cls(
            aws_conn_id=value("ASR_AWS_CONN_ID", defaults.aws_conn_id),
            securityhub_region=value("ASR_SECURITYHUB_REGION", defaults.securityhub_region),
            member_role_name=value("ASR_MEMBER_ROLE_NAME", defaults.member_role_name),
            automation_role_name=value("ASR_AUTOMATION_ROLE_NAME", defaults.automation_role_name),
            rollback_role_name=value("ASR_ROLLBACK_ROLE_NAME", defaults.rollback_role_name),
            accounts=_split(env.get("ASR_ACCOUNTS")),
            regions=_split(env.get("ASR_REGIONS")),
            batch_size=int(env_number("ASR_BATCH_SIZE", defaults.batch_size, env, minimum=1)),
            data_dir=_local_path(value("ASR_DATA_DIR", defaults.data_dir)),
            dry_run=env_flag("ASR_DRY_RUN", env),
            rate_limits=value("ASR_RATE_LIMITS", defaults.rate_limits),
            fix_threads=int(env_number("ASR_FIX_THREADS", defaults.fix_threads, env, minimum=1)),
            accounts_from_organization=env_flag("ASR_ACCOUNTS_FROM_ORGANIZATION", env),
            exclude_accounts=_split(env.get("ASR_EXCLUDE_ACCOUNTS")),
            exclude_ous=_split(env.get("ASR_EXCLUDE_OUS")),
            exclude_controls=_split(env.get("ASR_EXCLUDE_CONTROLS")),
            exclude_tag=value("ASR_EXCLUDE_TAG", ""),
            audit_dir=_local_path(value("ASR_AUDIT_DIR", "")),
            auto_approve=_split(env.get("ASR_AUTO_APPROVE")),
            approvers=_split(env.get("ASR_APPROVERS")),
            rollback_approval=env_flag("ASR_ROLLBACK_APPROVAL", env, default=True),
            sns_topic_arn=value("ASR_SNS_TOPIC_ARN", ""),
            keep_runs_days=int(
                env_number("ASR_KEEP_RUNS_DAYS", defaults.keep_runs_days, env, maximum=KEEP_RUNS_DAYS_MAX)
            ),
            approval_timeout_hours=_hours(
                env.get("ASR_APPROVAL_TIMEOUT"), defaults.approval_timeout_hours, "ASR_APPROVAL_TIMEOUT"
            ),
            rejection_hold_hours=_hours(
                env.get("ASR_REJECTION_HOLD"), defaults.rejection_hold_hours, "ASR_REJECTION_HOLD"
            ),
        )

    def with_overrides(self, overrides: dict[str, Any]) -> Settings:
        """Apply a run's params; empty values keep the configured setting. Accounts and
        regions only narrow: a run cannot reach past ASR_ACCOUNTS (with the organization's
        members, when those count, the scope checks each finding) or ASR_REGIONS."""
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            if value in (None, "", []):
                continue
            if key in ("accounts", "regions"):
                value = tuple(_split(value) if isinstance(value, str) else value)
            if key == "accounts":
                if self.accounts and not self.accounts_from_organization and set(value) - set(self.accounts):
                    outside = sorted(set(value) - set(self.accounts))
                    raise ConfigError(f"accounts {outside} are not in the allow-list (ASR_ACCOUNTS)")
                key = "run_accounts"
            if key == "regions" and self.regions and set(value) - set(self.regions):
                outside = sorted(set(value) - set(self.regions))
                raise ConfigError(f"regions {outside} are not among those asr may act in (ASR_REGIONS)")
            changes[key] = value
        return replace(self, **changes)
