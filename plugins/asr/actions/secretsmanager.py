"""Secrets Manager fixes: secrets that rotate on a schedule, rotate when overdue, and go when unused.

The finding names a secret by its ARN, which every call takes as ``SecretId``. A secret has
one home Region: a replica of it elsewhere is changed only through the primary, so the fixes
refuse a replica and say where its primary is.
"""

from __future__ import annotations

import datetime
import math
import re
from typing import TYPE_CHECKING, Any

from asr.actions import Action, ChangedMeanwhile, register

if TYPE_CHECKING:
    from asr.aws import Clients

SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):\d{12}:secret:.+$")
RATE = re.compile(r"^rate\((\d+) (hours?|days?)\)$")
DAY = 86400.0


def describe(clients: Clients, resource_id: str) -> dict[str, Any]:
    """The secret as DescribeSecret describes it, after checking the id is a secret's ARN."""
    if not SECRET_ARN.match(resource_id):
        raise ValueError(f"{resource_id!r} is not the ARN of a Secrets Manager secret")
    return dict(clients.secretsmanager.describe_secret(SecretId=resource_id))


def replica_of(resource_id: str, secret: dict[str, Any]) -> str | None:
    """The primary's Region when this secret is a replica (changes go through the primary)."""
    match = SECRET_ARN.match(resource_id)
    primary = secret.get("PrimaryRegion")
    return str(primary) if match and primary and primary != match.group(1) else None


def days_apart(rules: dict[str, Any] | None) -> int | None:
    """The days between rotations a schedule sets: ``AutomaticallyAfterDays``, or a ``rate()``
    expression (hours round up to a day). None for a ``cron()`` one, whose gaps vary."""
    if not rules:
        return None
    if rules.get("AutomaticallyAfterDays"):
        return int(rules["AutomaticallyAfterDays"])
    match = RATE.match(str(rules.get("ScheduleExpression") or "").strip())
    if not match:
        return None
    count = int(match.group(1))
    return max(1, math.ceil(count / 24)) if match.group(2).startswith("hour") else count


def rules_to_send(rules: dict[str, Any]) -> dict[str, Any]:
    """A schedule as RotateSecret takes it back: AWS refuses ``AutomaticallyAfterDays`` beside a
    ``ScheduleExpression``, which DescribeSecret may report together."""
    if rules.get("ScheduleExpression"):
        return {key: rules[key] for key in ("ScheduleExpression", "Duration") if rules.get(key)}
    return {key: rules[key] for key in ("AutomaticallyAfterDays", "Duration") if rules.get(key)}


def _iso(value: Any) -> str | None:
    if not isinstance(value, datetime.datetime):
        return None
    return (value if value.tzinfo else value.replace(tzinfo=datetime.UTC)).isoformat()


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _days_since(*events: Any) -> float:
    """Days since the latest of the given dates (None: never)."""
    dates = [e if e.tzinfo else e.replace(tzinfo=datetime.UTC) for e in events if e is not None]
    return (_now() - max(dates)).total_seconds() / DAY


def rotation_by(secret: dict[str, Any]) -> dict[str, str] | None:
    """How the secret is rotated: its Lambda function (passed again to RotateSecret), or ``{}``
    for a secret whose own service rotates it (managed rotation: no function is named). None
    when neither: ASR writes no rotation function."""
    if secret.get("RotationLambdaARN"):
        return {"RotationLambdaARN": str(secret["RotationLambdaARN"])}
    if secret.get("OwningService"):
        return {}
    return None


def refuse_unrotatable(state: dict[str, Any]) -> None:
    """Raise, saying why, for a secret no RotateSecret call of ours can or should rotate. Called
    from ``plan``, once a change is due: a dry run then says so too, and a compliant secret passes."""
    resource_id = state["Secret"]
    if state["ScheduledForDeletion"]:
        raise ValueError(
            f"secret {resource_id} is scheduled for deletion: restore it first if it is still used"
        )
    if state["ReplicaOf"]:
        raise ValueError(
            f"secret {resource_id} is a replica: its rotation is its primary's, in {state['ReplicaOf']}; "
            "fix the primary secret there"
        )
    if state["ExternalPartner"]:
        raise ValueError(
            f"secret {resource_id} is held by the partner {state['ExternalPartner']}, whose rotation "
            "takes the partner's own settings: turn it on in the Secrets Manager console"
        )
    if state["RotatedBy"] is None:
        raise ValueError(
            f"secret {resource_id} has no rotation function and no service manages it: write a rotation "
            "Lambda function for it (ASR makes none, as rotating means changing the credential where it "
            "is used), configure it on the secret, then fix it again"
        )


def rotation_state(secret: dict[str, Any], resource_id: str) -> dict[str, Any]:
    """What the rotation fixes read: whether and how often the secret rotates, and by what."""
    rules = secret.get("RotationRules") or None
    return {
        "Secret": resource_id,
        "RotationEnabled": bool(secret.get("RotationEnabled")),
        "RotationRules": dict(rules) if rules else None,
        "RotatedBy": rotation_by(secret),
        "ScheduledForDeletion": secret.get("DeletedDate") is not None,
        "ReplicaOf": replica_of(resource_id, secret),
        "ExternalPartner": secret.get("Type") or None,
    }


@register
class EnableRotation(Action):
    """Turn on a secret's automatic rotation, every ``rotation_days`` days at most.

    Rotation uses what the secret already has: its Lambda rotation function, or the managing
    service (an RDS master password, say). A secret with neither is refused: a rotation function
    must change the credential where it is used, which only its owner can write.

    Rotation is turned on with ``RotateImmediately`` false: AWS then runs only the function's
    ``testSecret`` step now, not a rotation. But AWS counts the next rotation from the last one
    (or the secret's making), so a secret whose rotation has been off for longer than its
    schedule is rotated within the day, by a function its owner may have turned off for a
    reason: the credential changes under every application caching it. Hence an approval
    (``disruptive``), and a revert that turns rotation off again cannot undo a rotation that
    ran meanwhile. A revert while a rotation runs (an ``AWSPENDING`` version besides the
    current one) is refused, to be tried again: cancelling then can leave the staging labels
    half moved.

    The schedule: the secret's own when it is at most the limit (one turned off keeps its rules),
    else ``AutomaticallyAfterDays`` of the limit: ``rotation_days``, or the control's
    ``maximumAllowedRotationFrequency`` (``max_rotation_days``) when lower. Without that
    parameter Security Hub passes any schedule, and a secret rotating already is left alone;
    with it, a longer schedule is shortened. A ``cron()`` schedule, whose gaps ASR does not
    work out, is refused under a limit. Reverting turns rotation off again (CancelRotateSecret)
    or puts back the earlier schedule.

        remediation:
          action: secretsmanager.enable-rotation
          parameters: {rotation_days: 90}
    """

    name = "secretsmanager.enable-rotation"
    service = "secretsmanager"
    # RotateSecret also needs lambda:InvokeFunction on the secret's rotation function.
    permissions = ("secretsmanager:DescribeSecret", "secretsmanager:RotateSecret", "lambda:InvokeFunction")
    revert_permissions = ("secretsmanager:CancelRotateSecret",)
    summary = "turned on automatic rotation within the limit (the next rotation counts from the last one)"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "rotation_days": {"type": "integer", "minimum": 1, "maximum": 365, "default": 90},
            "max_rotation_days": {"type": "integer", "minimum": 1, "maximum": 365},
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        state = rotation_state(describe(clients, resource_id), resource_id)
        # Only a schedule in force counts: rules left on a secret whose rotation is off do nothing.
        state["RotationDays"] = days_apart(state["RotationRules"]) if state["RotationEnabled"] else None
        return state

    def _limit(self) -> int:
        limit = int(self.params["rotation_days"])
        most = self.params.get("max_rotation_days")
        return min(limit, int(most)) if most is not None else limit

    def _schedule(self, state: dict[str, Any]) -> dict[str, Any]:
        """The rules to turn on: the secret's own when they rotate often enough (a ``cron()`` one,
        the owner's chosen window, where no limit asks to judge it), else the limit."""
        own, days = state["RotationRules"], days_apart(state["RotationRules"])
        cron_kept = days is None and self.params.get("max_rotation_days") is None
        if own and (cron_kept or (days is not None and days <= self._limit())):
            return rules_to_send(own)
        return {"AutomaticallyAfterDays": self._limit()}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        most = self.params.get("max_rotation_days")
        if state["RotationEnabled"] and (most is None or (state["RotationDays"] or math.inf) <= int(most)):
            return {}
        refuse_unrotatable(state)
        if state["RotationEnabled"] and days_apart(state["RotationRules"]) is None:
            raise ValueError(
                f"secret {state['Secret']} rotates on the schedule {state['RotationRules']}, whose gaps ASR "
                f"does not work out: make it rotate at least every {most} days"
            )
        return {"RotationEnabled": True, "RotationDays": days_apart(self._schedule(state))}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.secretsmanager.rotate_secret(
            SecretId=resource_id,
            RotationRules=self._schedule(state),
            RotateImmediately=False,
            **state["RotatedBy"],
        )

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Off again if it was off (function and rules stay on the secret, as CancelRotateSecret
        leaves them); else the earlier schedule back, again without rotating now. Refused while a
        rotation runs: cancelling it then can leave the staging labels half moved."""
        stages = describe(clients, resource_id).get("VersionIdsToStages") or {}
        if any("AWSPENDING" in labels and "AWSCURRENT" not in labels for labels in stages.values()):
            raise ValueError(f"a rotation of secret {resource_id} is running: roll back again once it ends")
        if not before["RotationEnabled"]:
            clients.secretsmanager.cancel_rotate_secret(SecretId=resource_id)
            return
        clients.secretsmanager.rotate_secret(
            SecretId=resource_id,
            RotationRules=rules_to_send(before["RotationRules"]),
            RotateImmediately=False,
            **(before["RotatedBy"] or {}),
        )


@register
class DeleteUnusedSecret(Action):
    """Schedule the deletion of a secret no one has read for ``unused_days`` days.

    Deleted with a recovery window (``recovery_window_days``, 30 by default, AWS's longest),
    never at once: until it ends the secret can be restored, values and all, and a rollback
    does so (RestoreSecret); after it, Secrets Manager has deleted it for good and the fix
    cannot be undone. Disruptive: an application that reads the secret once a quarter, or
    only when it fails over, fails to read it from now on.

    A secret is unused when neither its creation nor its last read (``LastAccessedDate``, a
    day, kept per Region) falls within ``unused_days`` days. That is checked at fix time, from a
    read made again just before the deletion: a finding is a few hours old at best, and a
    secret read since is left alone (already compliant). Refused: a secret another service
    manages (it deletes its own secrets), a replica (AWS deletes a replica at once, with no
    recovery window, and it is read in its own Region), and a primary with replicas (AWS
    deletes none while they exist, and removing them is immediate and final).

        remediation:
          action: secretsmanager.delete-unused-secret
          parameters: {unused_days: 90, recovery_window_days: 30}
    """

    name = "secretsmanager.delete-unused-secret"
    service = "secretsmanager"
    permissions = ("secretsmanager:DescribeSecret", "secretsmanager:DeleteSecret")
    revert_permissions = ("secretsmanager:RestoreSecret",)
    summary = (
        "scheduled the deletion of the secret unused for {unused_days} days "
        "(restorable for {recovery_window_days} days)"
    )
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "unused_days": {"type": "integer", "minimum": 1, "maximum": 365, "default": 90},
            "recovery_window_days": {"type": "integer", "minimum": 7, "maximum": 30, "default": 30},
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        secret = describe(clients, resource_id)
        return {
            "Secret": resource_id,
            "ScheduledForDeletion": secret.get("DeletedDate") is not None,
            "CreatedDate": _iso(secret.get("CreatedDate")),
            "LastAccessedDate": _iso(secret.get("LastAccessedDate")),
            "OwningService": secret.get("OwningService") or None,
            "ReplicaOf": replica_of(resource_id, secret),
            "Replicas": sorted(r["Region"] for r in secret.get("ReplicationStatus") or ()),
            # The day of this read: the deletion it leads to is final a recovery window later. A
            # day, not a time, so that the state a rollback compares stays the same all day.
            "ReadOn": _now().date().isoformat(),
        }

    def unused_days(self, state: dict[str, Any]) -> float:
        """Days since the secret was made or last read, whichever is later. AWS keeps the day of
        the last read, not its time: it counts as its end, so that a doubt keeps the secret."""
        read = state["LastAccessedDate"]
        last_read = datetime.datetime.fromisoformat(read) + datetime.timedelta(days=1) if read else None
        return _days_since(datetime.datetime.fromisoformat(state["CreatedDate"]), last_read)

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        if state["ScheduledForDeletion"] or self.unused_days(state) < self.params["unused_days"]:
            return {}
        self._refuse(state)
        return {"ScheduledForDeletion": True}

    def _refuse(self, state: dict[str, Any]) -> None:
        """Raise, saying why, for a secret this fix must not delete."""
        resource_id = state["Secret"]
        if state["OwningService"]:
            raise ValueError(
                f"secret {resource_id} is managed by {state['OwningService']}: delete it through that service"
            )
        if state["ReplicaOf"]:
            raise ValueError(
                f"secret {resource_id} is a replica of the secret in {state['ReplicaOf']}: AWS deletes "
                "a replica at once, with no recovery window, so ASR leaves it; remove it from the "
                "primary's replication if it is not needed"
            )
        if state["Replicas"]:
            raise ValueError(
                f"secret {resource_id} is replicated to {', '.join(state['Replicas'])}: AWS deletes it "
                "only once the replicas are removed, which is immediate and final, and each may be read "
                "in its own Region; remove them first if none is needed, then fix it again"
            )

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        now = self.read(clients, resource_id)  # the finding may be stale: read again right before
        if self.plan(now) != plan:
            raise ChangedMeanwhile(
                f"secret {resource_id} was read on {now['LastAccessedDate']}, or deleted, since"
            )
        clients.secretsmanager.delete_secret(
            SecretId=resource_id, RecoveryWindowInDays=int(self.params["recovery_window_days"])
        )

    def irreversible_from(self, before: dict[str, Any]) -> str | None:
        """Restorable within the recovery window only, counted from the start of the day of the
        read that led to the fix (made just before it): this errs up to a day early, never late."""
        window = datetime.timedelta(days=int(self.params["recovery_window_days"]))
        read_at = datetime.datetime.fromisoformat(before["ReadOn"]).replace(tzinfo=datetime.UTC)
        if _now() >= read_at + window:
            return (
                f"the secret's recovery window of {window.days} days ended by {(read_at + window).date()}: "
                "Secrets Manager deletes it for good then, and it cannot be restored"
            )
        return None

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Cancel the deletion: the secret comes back with its values, as it was."""
        clients.secretsmanager.restore_secret(SecretId=resource_id)


ROTATED_NOW = (
    "it creates a new value of the secret and makes it current, and the rotation function changed the "
    "credential where it is used: the old value stays only as the AWSPREVIOUS version, and making it "
    "current again would not change the credential back"
)


@register
class RotateOverdueSecret(Action):
    """Rotate a secret now when its last rotation (or, never rotated, its creation) is more than
    ``max_days_since_rotation`` days ago.

    RotateSecret with nothing but the secret: its own rotation function (or managing service) and
    schedule, rotating at once. Disruptive: every application holding the old value fails until it
    reads the new one, and a rotation function that does not work can leave the credential half
    changed. Cannot be undone. A secret with no rotation function, a replica and a secret scheduled
    for deletion are refused as for SecretsManager.1. Rotation runs asynchronously: the fix is
    verified once ``LastRotatedDate`` shows it, which may take a minute or two.

        remediation:
          action: secretsmanager.rotate-overdue-secret
          parameters: {max_days_since_rotation: 90}
    """

    name = "secretsmanager.rotate-overdue-secret"
    service = "secretsmanager"
    permissions = ("secretsmanager:DescribeSecret", "secretsmanager:RotateSecret", "lambda:InvokeFunction")
    summary = "rotated the secret, last rotated more than {max_days_since_rotation} days ago"
    irreversible = ROTATED_NOW
    propagation_seconds = 120.0
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "max_days_since_rotation": {"type": "integer", "minimum": 1, "maximum": 365, "default": 90},
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        secret = describe(clients, resource_id)
        since = _days_since(secret.get("CreatedDate"), secret.get("LastRotatedDate"))
        return {
            **rotation_state(secret, resource_id),
            "CreatedDate": _iso(secret.get("CreatedDate")),
            "LastRotatedDate": _iso(secret.get("LastRotatedDate")),
            "RotatedInTime": since <= self.params["max_days_since_rotation"],
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        if state["RotatedInTime"]:
            return {}
        refuse_unrotatable(state)
        if not state["RotationEnabled"]:
            # AWS reports no last rotation while rotation is off, and RotateSecret turns it on again:
            # whether to rotate is SecretsManager.1's question first.
            raise ValueError(
                f"secret {state['Secret']} has its rotation turned off, so AWS does not say when it was last "
                "rotated, and rotating it would turn rotation on again: turn it on first (SecretsManager.1)"
            )
        return {"RotatedInTime": True}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        if self.plan(self.read(clients, resource_id)) != plan:  # a scheduled rotation may have run since
            raise ChangedMeanwhile(f"secret {resource_id} was rotated, or changed, since it was read")
        clients.secretsmanager.rotate_secret(SecretId=resource_id, **state["RotatedBy"])
