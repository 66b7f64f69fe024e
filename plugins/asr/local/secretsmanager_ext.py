"""Secrets Manager rotation and use as AWS records them, which moto 5.2.5 does otherwise.

- ``RotateSecret`` in moto runs the rotation function in Docker (which the stand-in has not),
  forgets the function when the call names none, ignores ``ScheduleExpression`` and
  ``Duration``, and with ``RotateImmediately`` false still leaves an ``AWSPENDING`` version
  behind and counts the call as a rotation. Here, as in AWS: the function must exist (it is
  not run: the stand-in does what a rotation function would); a call without one keeps the
  secret's, and a secret with none that no service manages is refused; the rules sent replace
  the schedule and turn rotation on (a call without rules leaves it on or off);
  ``RotateImmediately`` false only schedules (``LastRotatedDate`` and the versions stay); a
  rotation now makes a new ``AWSCURRENT`` version with a new value, the old one
  ``AWSPREVIOUS``. ``CancelRotateSecret`` turns off a managed secret's rotation too (moto
  wants a function), and clears ``NextRotationDate``. The next rotation is counted from the
  last one, or the secret's making: rotation turned on long after either is due at once.
- ``DescribeSecret`` reports ``LastAccessedDate``, the day (midnight UTC) of the last
  ``GetSecretValue`` or ``BatchGetSecretValue`` in the Region (moto never does), and no
  ``LastRotatedDate`` while rotation is off, as AWS does.
- A secret becomes unused or overdue for rotation only as time passes, which no API call can
  do. ``POST /moto-api/asr/secretsmanager/history`` backdates one: body ``{"account_id",
  "region", "secret_id", "created": ISO-8601, optional "last_accessed" and "last_rotated":
  ISO-8601 or null}``.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

from moto.core.utils import utcnow
from moto.secretsmanager.exceptions import (
    InvalidParameterException,
    InvalidRequestException,
    OperationNotPermittedOnReplica,
    ResourceNotFoundException,
    SecretNotFoundException,
    SecretsManagerClientError,
)
from moto.secretsmanager.models import (
    FakeSecret,
    ReplicaSecret,
    SecretsManagerBackend,
    secretsmanager_backends,
)

from asr.local import history_api

HISTORY_PATH = "/moto-api/asr/secretsmanager/history"
LAST_ACCESSED = "asr_last_accessed"
SCHEDULE = "asr_rotation_rules"
RATE = re.compile(r"^rate\((\d+) (hour|hours|day|days)\)$")


def _today() -> float:
    """Midnight UTC today, as epoch seconds: AWS keeps the day a secret was last read."""
    now = utcnow()
    return datetime.datetime(now.year, now.month, now.day, tzinfo=datetime.UTC).timestamp()


def _recording_access(get: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    @functools.wraps(get)
    def call(self: SecretsManagerBackend, secret_id: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        answer = get(self, secret_id, *args, **kwargs)
        setattr(self.secrets[secret_id], LAST_ACCESSED, _today())
        return answer

    return call


def _describing(to_dict: Callable[[Any], dict[str, Any]]) -> Callable[[Any], dict[str, Any]]:
    @functools.wraps(to_dict)
    def describe(self: FakeSecret | ReplicaSecret) -> dict[str, Any]:
        answer = to_dict(self)
        answer["LastAccessedDate"] = getattr(self, LAST_ACCESSED, None)
        source = self.source if isinstance(self, ReplicaSecret) else self
        rules = getattr(source, SCHEDULE, None)
        if not source.rotation_enabled:  # AWS reports no last rotation while rotation is off
            answer.pop("LastRotatedDate", None)
        if "RotationRules" in answer:  # AWS leaves out what was never set
            if rules is not None:
                answer["RotationRules"] = dict(rules)
            elif not answer["RotationRules"].get("AutomaticallyAfterDays"):
                del answer["RotationRules"]
            if not answer.get("RotationLambdaARN"):
                answer.pop("RotationLambdaARN", None)
        return answer

    return describe


def _days_apart(rules: dict[str, Any]) -> int | None:
    """The days between rotations a schedule names (``AutomaticallyAfterDays`` or a ``rate()``)."""
    if rules.get("AutomaticallyAfterDays"):
        return int(rules["AutomaticallyAfterDays"])
    match = RATE.match(str(rules.get("ScheduleExpression") or ""))
    if match:
        count = int(match.group(1))
        return max(1, count // 24) if match.group(2).startswith("hour") else count
    return None


def _check_rules(rules: dict[str, Any]) -> dict[str, Any]:
    if rules.get("AutomaticallyAfterDays") is not None and rules.get("ScheduleExpression"):
        raise InvalidParameterException(
            "You can't specify both AutomaticallyAfterDays and ScheduleExpression in RotationRules."
        )
    days = rules.get("AutomaticallyAfterDays")
    if days is not None and not 1 <= int(days) <= 1000:
        raise InvalidParameterException("RotationRules.AutomaticallyAfterDays must be within 1-1000.")
    return {key: value for key, value in rules.items() if value is not None}


def _rotate_now(secret: FakeSecret, token: str | None) -> str:
    """What a rotation function does: a new value becomes AWSCURRENT, the old one AWSPREVIOUS."""
    version_id = token or str(uuid.uuid4())
    value = secrets.token_urlsafe(24)
    secret.versions[version_id] = {
        "createdate": int(time.time()),
        "version_id": version_id,
        "version_stages": ["AWSCURRENT"],
        "secret_string": value,
    }
    secret.reset_default_version(secret.versions[version_id], version_id)
    secret.secret_string, secret.secret_binary = value, None
    secret.last_rotation_date = int(time.time())
    return version_id


def _changeable(backend: SecretsManagerBackend, secret_id: str) -> FakeSecret:
    """The secret a rotation call may change: it exists, is its primary and is not deleted."""
    if not backend._is_valid_identifier(secret_id):
        raise SecretNotFoundException()
    secret = backend.secrets[secret_id]
    if isinstance(secret, ReplicaSecret):
        raise OperationNotPermittedOnReplica
    if secret.is_deleted():
        raise InvalidRequestException(
            "You tried to perform the operation on a secret that's currently marked deleted."
        )
    return secret


def rotate_secret(
    self: SecretsManagerBackend,
    secret_id: str,
    client_request_token: str | None = None,
    rotation_lambda_arn: str | None = None,
    rotation_rules: dict[str, Any] | None = None,
    rotate_immediately: bool = True,
) -> str:
    secret = _changeable(self, secret_id)
    function = rotation_lambda_arn or secret.rotation_lambda_arn
    if function:
        from moto.awslambda.utils import get_backend

        try:
            get_backend(self.account_id, self.region_name).get_function(function)
        except Exception:
            raise ResourceNotFoundException(f"Resource not found for ARN '{function}'.") from None
    elif secret.owning_service is None:
        raise InvalidRequestException(
            "No Lambda rotation function ARN is associated with this secret, "
            "and no service manages its rotation."
        )
    rules = _check_rules(rotation_rules) if rotation_rules else getattr(secret, SCHEDULE, None)
    secret.rotation_requested = True
    secret.rotation_lambda_arn = function or ""
    if rules is not None:
        setattr(secret, SCHEDULE, rules)
        secret.auto_rotate_after_days = _days_apart(rules) or 0
    if rotation_rules:  # a call without rules rotates (or tests) on the schedule the secret has
        secret.rotation_enabled = True
    version_id = secret.default_version_id
    if rotate_immediately:
        version_id = _rotate_now(secret, client_request_token)
    days = _days_apart(rules or {})
    # Counted from the last rotation (or the secret's making): a schedule turned on long after
    # either is due at once, as in AWS.
    base = secret.last_rotation_date or secret.created_date or int(time.time())
    secret.next_rotation_date = base + days * 86400 if days else None
    answer = {"ARN": secret.arn, "Name": secret.name}
    if version_id:
        answer["VersionId"] = version_id
    return json.dumps(answer)


def cancel_rotate_secret(self: SecretsManagerBackend, secret_id: str) -> str:
    """Turn rotation off, keeping the function and schedule; a managed secret has no function."""
    secret = _changeable(self, secret_id)
    if not secret.rotation_lambda_arn and secret.owning_service is None:
        raise InvalidRequestException("The secret has no rotation function configured to cancel.")
    secret.rotation_enabled = False
    secret.next_rotation_date = None
    return json.dumps({"ARN": secret.arn, "Name": secret.name})


def _utc(value: Any, field: str) -> float | None:
    """An ISO-8601 time (or None) as epoch seconds, as moto keeps a secret's dates."""
    return None if value is None else history_api.past_time(value, field).timestamp()


def set_history(body: dict[str, Any]) -> dict[str, Any]:
    """Backdate a secret: when it was made, last read (a day, as AWS keeps it) and last rotated."""
    created = _utc(body.get("created"), "created")
    if created is None:
        raise ValueError("created is required")
    accessed = _utc(body.get("last_accessed"), "last_accessed")
    rotated = _utc(body.get("last_rotated"), "last_rotated")
    if any(when is not None and when < created for when in (accessed, rotated)):
        raise ValueError("last_accessed and last_rotated cannot be before created")
    region = str(body.get("region"))
    try:
        backend = secretsmanager_backends[str(body.get("account_id"))][region]
    except KeyError:
        raise ValueError(f"region {region!r} is not a Region Secrets Manager serves") from None
    secret_id = str(body.get("secret_id"))
    if not backend._is_valid_identifier(secret_id):
        raise SecretNotFoundException()
    secret = backend.secrets[secret_id]
    if isinstance(secret, ReplicaSecret):
        raise ValueError("backdate the primary secret: a replica has its dates")
    secret.created_date = int(created)
    if accessed is not None:
        accessed = datetime.datetime.fromtimestamp(accessed, datetime.UTC)
        accessed = datetime.datetime(
            accessed.year, accessed.month, accessed.day, tzinfo=datetime.UTC
        ).timestamp()
    setattr(secret, LAST_ACCESSED, accessed)
    secret.last_rotation_date = None if rotated is None else int(rotated)
    if rotated is not None:
        secret.rotation_requested = True
    for version in secret.versions.values():
        version["createdate"] = int(rotated or created)
    return {"arn": secret.arn}


def install() -> None:
    SecretsManagerBackend.get_secret_value = _recording_access(SecretsManagerBackend.get_secret_value)  # type: ignore[method-assign]
    SecretsManagerBackend.rotate_secret = rotate_secret  # type: ignore[method-assign]
    SecretsManagerBackend.cancel_rotate_secret = cancel_rotate_secret  # type: ignore[method-assign]
    FakeSecret.to_dict = _describing(FakeSecret.to_dict)  # type: ignore[method-assign]
    ReplicaSecret.to_dict = _describing(ReplicaSecret.to_dict)  # type: ignore[method-assign]
    history_api.register(
        HISTORY_PATH, set_history, SecretsManagerClientError, lambda e: f"{e.error_type}: {e.message}"
    )
