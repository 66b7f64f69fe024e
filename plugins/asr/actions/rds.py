"""RDS fixes: boolean settings of DB instances and clusters, public and unencrypted snapshots,
Enhanced Monitoring."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from asr.actions import (
    Action,
    ChangedMeanwhile,
    ChangeNotMade,
    NotReversible,
    ServiceRole,
    answered,
    register,
    role_name_parameter,
    service_trust,
    with_new_role,
)

if TYPE_CHECKING:
    from asr.aws import Clients


@dataclass(frozen=True)
class _Kind:
    """How one kind of RDS resource is described and modified, and the permissions that takes."""

    noun: str
    id_param: str
    describe: str
    listed_as: str
    modify: str
    permissions: tuple[str, str]

    def read(self, client: Any, identifier: str) -> dict[str, Any]:
        return getattr(client, self.describe)(**{self.id_param: identifier})[self.listed_as][0]

    def change(self, client: Any, identifier: str, **settings: Any) -> None:
        getattr(client, self.modify)(**{self.id_param: identifier}, **settings)


INSTANCE = _Kind(
    "DB instance",
    "DBInstanceIdentifier",
    "describe_db_instances",
    "DBInstances",
    "modify_db_instance",
    ("rds:DescribeDBInstances", "rds:ModifyDBInstance"),
)
CLUSTER = _Kind(
    "DB cluster",
    "DBClusterIdentifier",
    "describe_db_clusters",
    "DBClusters",
    "modify_db_cluster",
    ("rds:DescribeDBClusters", "rds:ModifyDBCluster"),
)


def _describe(
    kind: _Kind, clients: Clients, resource_id: str, attribute: str, set_on_cluster: bool = False
) -> dict[str, Any]:
    """The resource as its Describe call lists it. An instance whose cluster holds ``attribute``
    (``set_on_cluster``), or that belongs to a Multi-AZ DB cluster, is refused."""
    found = kind.read(clients.rds, resource_id)
    cluster = found.get("DBClusterIdentifier")
    # The instances of a Multi-AZ DB cluster (not Aurora) cannot be modified at all.
    aurora = str(found.get("Engine", "aurora")).startswith("aurora")
    if kind is INSTANCE and cluster and (set_on_cluster or not aurora):
        raise ValueError(
            f"{kind.noun} {resource_id} belongs to DB cluster {cluster}, "
            f"whose own {attribute} setting applies: fix the cluster instead"
        )
    return found


# How long RDS may go on reading a setting's old value after a Modify call took it. Not every
# setting waits in ``PendingModifiedValues`` (PubliclyAccessible, AutoMinorVersionUpgrade and
# MonitoringInterval are not members of it): RDS applies those while the instance is
# ``modifying`` or ``configuring-enhanced-monitoring``, and AWS's own runbooks for them wait for
# the instance to be ``available`` again before they check. The read-back is repeated until then.
RDS_PROPAGATION = 300.0


def _getting(found: dict[str, Any], attribute: str) -> Any:
    """The value a change waiting in ``PendingModifiedValues`` gives the attribute, else its value."""
    pending = found.get("PendingModifiedValues") or {}
    return pending[attribute] if attribute in pending else found.get(attribute)


class _BooleanSetting(Action):
    """Set one boolean attribute of a DB instance or cluster through its Modify call.

    Subclasses name the resource kind and the attribute. A value waiting in
    ``PendingModifiedValues`` counts as the value the resource is getting. Only the
    attribute is sent, and ``ApplyImmediately`` stays false unless the subclass needs
    it: true would also rush every change someone queued for the maintenance window.
    """

    service = "rds"
    kind: ClassVar[_Kind]
    attribute: ClassVar[str]
    wanted: ClassVar[bool] = True
    apply_immediately: ClassVar[bool] = False
    # For instance settings that AWS manages on the cluster when the instance belongs to one.
    set_on_cluster: ClassVar[bool] = False

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        found = _describe(self.kind, clients, resource_id, self.attribute, self.set_on_cluster)
        state: dict[str, Any] = {self.attribute: bool(_getting(found, self.attribute))}
        pending = found.get("PendingModifiedValues") or {}
        if self.attribute in pending and bool(pending[self.attribute]) != bool(found.get(self.attribute)):
            state["Applying"] = True  # what the control checks still reads the old value
        if self.apply_immediately:
            state["QueuedChanges"] = sorted(set(pending) - {self.attribute})
        return state

    def awaits(self, state: dict[str, Any]) -> str | None:
        if not state.get("Applying"):
            return None
        return (
            f"RDS lists {self.attribute} as a change it is still applying (a standby for Multi-AZ "
            "takes many minutes); Security Hub resolves the finding when its check passes"
        )

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state[self.attribute] == self.wanted else {self.attribute: self.wanted}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        self._refuse_to_rush(resource_id, state)
        self.kind.change(clients.rds, resource_id, **plan, ApplyImmediately=self.apply_immediately)

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        self._refuse_to_rush(resource_id, self.read(clients, resource_id))
        setting = {self.attribute: before[self.attribute]}
        self.kind.change(clients.rds, resource_id, **setting, ApplyImmediately=self.apply_immediately)

    def _refuse_to_rush(self, resource_id: str, state: dict[str, Any]) -> None:
        """ApplyImmediately also applies every change queued for the maintenance window: a new
        instance class or engine version would restart the database now, which nobody approved."""
        if state.get("QueuedChanges"):
            raise ValueError(
                f"{self.kind.noun} {resource_id} has changes queued for its maintenance window "
                f"({', '.join(state['QueuedChanges'])}), which applying {self.attribute} now would "
                "apply at once too: apply or cancel them first"
            )


@register
class EnableMultiAz(_BooleanSetting):
    """Turn on Multi-AZ for a DB instance, applied immediately.

    A pending Multi-AZ change already counts as the fix under way: AWS reports
    ``MultiAZ`` only once the standby exists, which can take many minutes. An instance
    of a cluster is refused: the cluster places its instances.

        remediation:
          action: rds.enable-multi-az
    """

    name = "rds.enable-multi-az"
    kind = INSTANCE
    attribute = "MultiAZ"
    apply_immediately = True
    set_on_cluster = True
    permissions = INSTANCE.permissions
    summary = "enabled Multi-AZ (applied immediately)"


@register
class DisableInstancePublicAccess(_BooleanSetting):
    """Make a DB instance reachable only from inside its VPC (``PubliclyAccessible`` false).

    AWS applies this at once whatever ``ApplyImmediately`` says; the instance keeps its
    endpoint, which then resolves to the private address only.

        remediation:
          action: rds.disable-instance-public-access
    """

    name = "rds.disable-instance-public-access"
    kind = INSTANCE
    attribute = "PubliclyAccessible"
    wanted = False
    propagation_seconds = RDS_PROPAGATION
    permissions = INSTANCE.permissions
    summary = "made the DB instance not publicly accessible"


@register
class EnableInstanceDeletionProtection(_BooleanSetting):
    """Turn on deletion protection for a DB instance, so that deleting it needs a deliberate change first.

    An Aurora instance is refused: its deletion protection is the cluster's (RDS.7).

        remediation:
          action: rds.enable-instance-deletion-protection
    """

    name = "rds.enable-instance-deletion-protection"
    kind = INSTANCE
    attribute = "DeletionProtection"
    set_on_cluster = True
    permissions = INSTANCE.permissions
    summary = "enabled deletion protection on the DB instance"


@register
class EnableAutoMinorVersionUpgrade(_BooleanSetting):
    """Let RDS apply minor engine versions (security patches) in the maintenance window.

    The setting itself causes no outage; upgrades then happen in the instance's
    maintenance window.

        remediation:
          action: rds.enable-auto-minor-version-upgrade
    """

    name = "rds.enable-auto-minor-version-upgrade"
    kind = INSTANCE
    attribute = "AutoMinorVersionUpgrade"
    propagation_seconds = RDS_PROPAGATION  # "applied asynchronously as soon as possible"
    permissions = INSTANCE.permissions
    summary = "enabled automatic minor version upgrades on the DB instance"


@register
class EnableClusterDeletionProtection(_BooleanSetting):
    """Turn on deletion protection for a DB cluster, so that deleting it needs a deliberate change first.

    remediation:
      action: rds.enable-cluster-deletion-protection
    """

    name = "rds.enable-cluster-deletion-protection"
    kind = CLUSTER
    attribute = "DeletionProtection"
    permissions = CLUSTER.permissions
    summary = "enabled deletion protection on the DB cluster"


@register
class EnableClusterCopyTagsToSnapshot(_BooleanSetting):
    """Copy a DB cluster's tags to its snapshots, so tag-based access and ownership follow the data.

    Snapshots taken before the change keep the tags they have.

        remediation:
          action: rds.enable-cluster-copy-tags-to-snapshot
    """

    name = "rds.enable-cluster-copy-tags-to-snapshot"
    kind = CLUSTER
    attribute = "CopyTagsToSnapshot"
    permissions = CLUSTER.permissions
    summary = "enabled copying tags to snapshots on the DB cluster"


@dataclass(frozen=True)
class _SnapshotKind:
    """One kind of RDS snapshot: how it is described, what its description calls the fields the
    fixes read, and the calls of its ``restore`` attribute (who else may restore it)."""

    noun: str
    arn_type: str
    id_param: str
    describe: str
    listed_as: str
    # botocore's exception for an identifier the service does not know
    not_found: str
    # the field naming the DB instance or cluster the snapshot was taken from, and what that is
    taken_from: str
    source_noun: str
    encrypted: str
    describe_attributes: str
    modify_attributes: str
    attributes_result: str
    attributes: str

    def read(self, client: Any, name: str, **more: Any) -> dict[str, Any]:
        """The snapshot as its Describe call lists it (the service's not-found error if none)."""
        return getattr(client, self.describe)(**{self.id_param: name}, **more)[self.listed_as][0]

    def restorers(self, client: Any, name: str) -> list[str]:
        """Who may restore the snapshot besides its own account: account ids, or ``all``."""
        result = getattr(client, self.describe_attributes)(**{self.id_param: name})[self.attributes_result]
        return [
            value
            for attribute in result.get(self.attributes, [])
            if attribute.get("AttributeName") == "restore"
            for value in attribute.get("AttributeValues", [])
        ]

    def change_restorers(self, client: Any, name: str, **change: list[str]) -> None:
        getattr(client, self.modify_attributes)(**{self.id_param: name}, AttributeName="restore", **change)


DB_SNAPSHOT = _SnapshotKind(
    noun="DB snapshot",
    arn_type="snapshot",
    id_param="DBSnapshotIdentifier",
    describe="describe_db_snapshots",
    listed_as="DBSnapshots",
    not_found="DBSnapshotNotFoundFault",
    taken_from="DBInstanceIdentifier",
    source_noun="DB instance",
    encrypted="Encrypted",
    describe_attributes="describe_db_snapshot_attributes",
    modify_attributes="modify_db_snapshot_attribute",
    attributes_result="DBSnapshotAttributesResult",
    attributes="DBSnapshotAttributes",
)
CLUSTER_SNAPSHOT = _SnapshotKind(
    noun="DB cluster snapshot",
    arn_type="cluster-snapshot",
    id_param="DBClusterSnapshotIdentifier",
    describe="describe_db_cluster_snapshots",
    listed_as="DBClusterSnapshots",
    not_found="DBClusterSnapshotNotFoundFault",
    taken_from="DBClusterIdentifier",
    source_noun="DB cluster",
    encrypted="StorageEncrypted",
    describe_attributes="describe_db_cluster_snapshot_attributes",
    modify_attributes="modify_db_cluster_snapshot_attribute",
    attributes_result="DBClusterSnapshotAttributesResult",
    attributes="DBClusterSnapshotAttributes",
)
_SNAPSHOT_KINDS = {kind.arn_type: kind for kind in (DB_SNAPSHOT, CLUSTER_SNAPSHOT)}
PUBLIC = "all"


def _snapshot(arn: str) -> tuple[_SnapshotKind, str]:
    """The kind and name of a snapshot from its ARN (``arn:aws:rds:<region>:<acct>:<kind>:<name>``)."""
    parts = arn.split(":", 6)
    if len(parts) != 7 or parts[2] != "rds" or parts[5] not in _SNAPSHOT_KINDS:
        raise ValueError(f"{arn!r} is not the ARN of an RDS DB snapshot or DB cluster snapshot")
    return _SNAPSHOT_KINDS[parts[5]], parts[6]


@register
class MakeSnapshotPrivate(Action):
    """Stop sharing a manual DB snapshot or DB cluster snapshot with every AWS account.

    Only ``all`` is removed from the snapshot's ``restore`` attribute: sharing with
    named accounts stays. Takes the snapshot's ARN, which says which kind it is.

        remediation:
          action: rds.make-snapshot-private
    """

    name = "rds.make-snapshot-private"
    service = "rds"
    permissions = (
        "rds:DescribeDBSnapshotAttributes",
        "rds:ModifyDBSnapshotAttribute",
        "rds:DescribeDBClusterSnapshotAttributes",
        "rds:ModifyDBClusterSnapshotAttribute",
    )
    summary = "made the snapshot private (no longer restorable by all accounts; named accounts kept)"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        kind, name = _snapshot(resource_id)
        return {"restore": kind.restorers(clients.rds, name)}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        if PUBLIC not in state["restore"]:
            return {}
        return {"restore": [value for value in state["restore"] if value != PUBLIC]}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        kind, name = _snapshot(resource_id)
        kind.change_restorers(clients.rds, name, ValuesToRemove=[PUBLIC])

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        kind, name = _snapshot(resource_id)
        kind.change_restorers(clients.rds, name, ValuesToAdd=[PUBLIC])


# RDS.4's copy is named as AWS's reference fix names it.
COPY_SUFFIX = "-encrypted"
# CopyDBSnapshot's TargetDBSnapshotIdentifier: 1 to 255 letters, digits or hyphens, a letter
# first, no hyphen last nor two in a row.
COPY_NAME_MAX = 255
COPY_NAME = re.compile(r"[A-Za-z](?!.*--)[A-Za-z0-9-]*(?<!-)")
# Statuses of a snapshot RDS is still making (a copy's: pending, then creating or copying).
IN_PROGRESS = frozenset({"pending", "creating", "copying"})
# Statuses of a snapshot RDS is deleting, and still lists.
GOING = frozenset({"deleting", "deleted"})
AUTOMATED_PREFIX = "rds:"  # how RDS names the snapshots it takes itself
_KEY_ID = r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})"
# Of the AWS managed keys' aliases, only RDS's own encrypts RDS snapshots.
_ALIAS = r"alias/(?:aws/rds|(?!aws/)[A-Za-z0-9/_-]{1,250})"
# A KMS key as RDS takes it: key id, key ARN, alias name or alias ARN.
KMS_KEY = rf"^(?:{_KEY_ID}|{_ALIAS}|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{{12}}:(?:key/{_KEY_ID}|{_ALIAS}))$"
# What a person needs of the deleted snapshot to find its data again, and of the copy that holds
# it, in AWS's words (besides its identifier, its source and whether it is encrypted).
SNAPSHOT_FIELDS = (
    "SnapshotType",
    "Status",
    "Engine",
    "EngineVersion",
    "AllocatedStorage",
    "SnapshotCreateTime",
    "OriginalSnapshotCreateTime",
    "DbiResourceId",
)
COPY_FIELDS = (
    "SnapshotType",
    "Status",
    "PercentProgress",
    "KmsKeyId",
    "OriginalSnapshotCreateTime",
    "DbiResourceId",
)


def copy_name(name: str) -> str:
    return f"{name}{COPY_SUFFIX}"


def _copy_name_problem(name: str) -> str | None:
    """Why ``copy_name(name)`` cannot name a DB snapshot, or None."""
    target = copy_name(name)
    if len(target) > COPY_NAME_MAX:
        return (
            f"its copy's name {target} would have {len(target)} characters, more than the "
            f"{COPY_NAME_MAX} RDS allows: copy it, encrypted, under a shorter name, then delete it yourself"
        )
    if not COPY_NAME.fullmatch(target):
        return (
            f"its copy's name {target} is no DB snapshot identifier (letters, digits and hyphens, "
            "a letter first, none last nor two in a row): copy it, encrypted, under another name yourself"
        )
    return None


def _described(kind: _SnapshotKind, found: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """A snapshot's identifier, source, encryption, these fields (times as ISO text: states are
    JSON) and tags, as its Describe call lists them."""
    state: dict[str, Any] = {
        kind.id_param: found.get(kind.id_param),
        kind.taken_from: found.get(kind.taken_from),
        "Encrypted": bool(found.get(kind.encrypted)),
    }
    for field in fields:
        value = found.get(field)
        if value is not None:
            state[field] = value.isoformat() if isinstance(value, datetime.datetime) else value
    state["Tags"] = {tag["Key"]: tag["Value"] for tag in found.get("TagList") or []}
    return state


def _copied_from(copy: dict[str, Any], snapshot: dict[str, Any]) -> bool:
    """Whether ``copy`` holds ``snapshot``'s data. RDS names a same-Region copy's source nowhere
    (SourceDBSnapshotIdentifier is only set across accounts or Regions), but a copy keeps the
    instance's DbiResourceId and the OriginalSnapshotCreateTime of the snapshot it copies."""
    keys = ("DbiResourceId", "OriginalSnapshotCreateTime")
    if copy.get("Status") in IN_PROGRESS:  # what a copy being made lists not yet is not known yet
        keys = tuple(key for key in keys if copy.get(key) is not None)
    return all(snapshot.get(key) is not None and copy.get(key) == snapshot.get(key) for key in keys)


def _complete_copy(copy: dict[str, Any] | None, snapshot: dict[str, Any]) -> bool:
    """Whether ``copy`` is an available, encrypted copy of ``snapshot``: the only one this fix
    deletes a snapshot beside."""
    return (
        bool(copy)
        and copy["Encrypted"]
        and copy.get("Status") == "available"
        and _copied_from(copy, snapshot)
    )


def _key_problem(kms: Any, key: str, account: str) -> str | None:
    """Why the KMS key of a copy must not be the only key to a snapshot's data, or None: it is
    not enabled (disabled, or its deletion scheduled), or another account owns it (which may
    take its use away)."""
    try:
        found = kms.describe_key(KeyId=key)["KeyMetadata"]
    except kms.exceptions.NotFoundException:
        return "does not exist"
    if found.get("KeyState") != "Enabled":
        return f"is {found.get('KeyState')}, not Enabled"
    if found.get("AWSAccountId") != account:
        return f"belongs to account {found.get('AWSAccountId')}, which may take its use away"
    return None


def _whom(restorers: list[str]) -> str:
    """The accounts a snapshot is shared with, in words."""
    whom = ["every AWS account (it is public)"] if PUBLIC in restorers else []
    accounts = sorted(value for value in restorers if value != PUBLIC)
    if accounts:
        whom.append(f"account{'s' if len(accounts) > 1 else ''} {', '.join(accounts)}")
    return " and ".join(whom)


@register
class ReplaceSnapshotWithEncryptedCopy(Action):
    """Replace an unencrypted manual DB snapshot by an encrypted copy of it: copy, then delete.

    AWS's reference fix only copies, which leaves the unencrypted snapshot, and its finding,
    in place. Here the snapshot is copied to ``<its name>-encrypted`` under ``kms_key_id``, tags
    and all, and deleted once that copy reads available, encrypted and made from it, under a
    key of the account that is enabled (not disabled, nor to be deleted). In AWS a
    copy takes minutes to hours, and no worker waits for it: until then the fix fails saying the
    copy is being made, the original kept, and a later run, which finds the copy, deletes it. A
    ``<name>-encrypted`` already there is used only if it is an encrypted copy of this snapshot
    (the DbiResourceId and OriginalSnapshotCreateTime a copy keeps), else the fix fails naming it.

    Refused, changing nothing: automated snapshots (RDS deletes them at the end of the retention
    period, and its instance is what is unencrypted) and AWS Backup's (its recovery points); a
    snapshot other accounts may restore (deleting it takes it from them, and a copy under
    aws/rds cannot be shared), or not available; a name too long for its copy's. DB cluster
    snapshots are refused too: RDS cannot encrypt the copy of an unencrypted one
    (CopyDBClusterSnapshot refuses a KMS key then), so restoring it to an encrypted cluster and
    taking a snapshot of that is left to a person. The instance a snapshot was taken from is
    not touched (RDS.3), and its later snapshots are unencrypted as long as it is.

    A deleted snapshot cannot come back; a fix that ended while its copy was being made deleted
    nothing, and its rollback deletes the copy it made.

    ``kms_key_id`` is a key id or ARN, an alias or alias ARN. KMS keys are regional: across
    Regions, name an alias each Region has (the default, RDS's AWS managed key, is in all). A
    customer managed key's policy must let the member role use it through RDS.

        remediation:
          action: rds.replace-snapshot-with-encrypted-copy
          parameters: {kms_key_id: alias/aws/rds}
    """

    name = "rds.replace-snapshot-with-encrypted-copy"
    service = "rds"
    permissions = (
        "rds:DescribeDBSnapshots",
        "rds:DescribeDBSnapshotAttributes",
        "rds:CopyDBSnapshot",
        # CopyDBSnapshot asks for it when it tags the copy (CopyTags).
        "rds:AddTagsToResource",
        "rds:DeleteDBSnapshot",
        "rds:DescribeDBClusterSnapshots",
        # RDS asks its caller for CreateGrant (and DescribeKey) on a customer managed key it
        # encrypts the copy with; the fix reads the copy's key itself before it deletes.
        "kms:CreateGrant",
        "kms:DescribeKey",
    )
    # A rollback deletes the copy a fix made and ended before it could delete the original.
    revert_permissions = ("rds:DeleteDBSnapshot",)
    # Not the key: a copy an earlier run (or a person) made may have another.
    summary = "deleted the unencrypted snapshot once its encrypted copy (its name + -encrypted) was available"
    irreversible = (
        "it deleted the unencrypted snapshot, which RDS cannot bring back: its data is in the "
        "encrypted copy named after it with -encrypted, which restores in its stead"
    )
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"kms_key_id": {"type": "string", "pattern": KMS_KEY, "default": "alias/aws/rds"}},
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        kind, name = _snapshot(resource_id)
        rds = clients.rds
        try:
            found = kind.read(rds, name)
        except getattr(rds.exceptions, kind.not_found):
            copy = self._copy(rds, name) if kind is DB_SNAPSHOT else None
            if copy is not None and copy["Encrypted"]:  # deleted beside its copy: as this fix leaves it
                return {"Kind": kind.arn_type, "Snapshot": None, "EncryptedCopy": copy}
            # Listed, unless asked for, are automated and manual snapshots: AWS Backup's apart. Yet
            # RDS also documents that an automated snapshot's identifier needs its type: asked by
            # the type its name tells (``rds:`` automated). None there either: the not-found error.
            asked = "automated" if name.startswith(AUTOMATED_PREFIX) else "awsbackup"
            found = kind.read(rds, name, SnapshotType=asked)
        snapshot = _described(kind, found, SNAPSHOT_FIELDS)
        state: dict[str, Any] = {"Kind": kind.arn_type, "Snapshot": snapshot, "EncryptedCopy": None}
        if kind is DB_SNAPSHOT and not snapshot["Encrypted"] and snapshot.get("SnapshotType") == "manual":
            copy = state["EncryptedCopy"] = self._copy(rds, name)
            if snapshot.get("Status") in GOING and _complete_copy(copy, snapshot):
                # RDS lists a snapshot while it deletes it: gone, as this fix leaves it.
                return {**state, "Snapshot": None}
            snapshot["SharedWith"] = kind.restorers(rds, name)
        return state

    def _copy(self, rds: Any, name: str) -> dict[str, Any] | None:
        """The DB snapshot named as ``name``'s copy, as the state keeps it; None when there is none
        (or the name cannot be one, which the plan refuses)."""
        if _copy_name_problem(name):
            return None
        try:
            found = DB_SNAPSHOT.read(rds, copy_name(name))
        except rds.exceptions.DBSnapshotNotFoundFault:
            return None
        return _described(DB_SNAPSHOT, found, COPY_FIELDS)

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        snapshot, copy = state["Snapshot"], state["EncryptedCopy"]
        if snapshot is None or snapshot["Encrypted"]:
            return {}
        why = self._refusal(state)
        if why:
            raise ValueError(f"{why}; nothing changed")
        return {
            "Snapshot": "deleted",
            "EncryptedCopy": {
                DB_SNAPSHOT.id_param: copy_name(snapshot[DB_SNAPSHOT.id_param]),
                "Encrypted": True,
                "KmsKeyId": copy["KmsKeyId"] if copy else self.params["kms_key_id"],
                "Status": "available",
            },
        }

    def _refusal(self, state: dict[str, Any]) -> str | None:
        """Why this unencrypted snapshot must not be copied and deleted, or None."""
        kind = _SNAPSHOT_KINDS[state["Kind"]]
        snapshot, copy = state["Snapshot"], state["EncryptedCopy"]
        name, made_by = snapshot[kind.id_param], snapshot.get("SnapshotType")
        of = f"the unencrypted {kind.source_noun} {snapshot[kind.taken_from]}"
        if made_by == "automated":
            return (
                f"{name} is an automated snapshot of {of}: RDS deletes it at the end of the backup "
                f"retention period, and nobody can before; encrypt the {kind.source_noun} (restore a "
                "snapshot of it, encrypted, and move to that), whose backups are encrypted from then on"
            )
        if made_by == "awsbackup":
            return (
                f"{name} is a recovery point of AWS Backup, which owns it (a backup of {of}): delete "
                f"it through AWS Backup; backups of an encrypted {kind.source_noun} are encrypted"
            )
        if made_by != "manual":
            return (
                f"{name} is a {made_by} snapshot: only the account's own manual ones are copied and deleted"
            )
        if kind is not DB_SNAPSHOT:
            return (
                f"RDS cannot encrypt the copy of an unencrypted {kind.noun} (CopyDBClusterSnapshot "
                "refuses a KMS key for one): restore it to a new DB cluster with a KMS key, take a "
                "snapshot of that cluster, and delete this one yourself"
            )
        if snapshot.get("Status") != "available":
            return (
                f"{name} is {snapshot.get('Status')}, not available, and RDS copies only an available "
                "snapshot: run the fix again once it is"
            )
        if snapshot["SharedWith"]:
            return (
                f"{name} may be restored by {_whom(snapshot['SharedWith'])} (its restore attribute): "
                "deleting it would take it from them, and a copy under the AWS managed key aws/rds "
                "cannot be shared; share an encrypted copy under a customer managed key their accounts "
                "may use, stop sharing this snapshot, then run the fix again"
            )
        bad_name = _copy_name_problem(name)
        if bad_name:
            return f"{name}: {bad_name}"
        target = copy_name(name)
        if copy is not None and not copy["Encrypted"]:
            return (
                f"a DB snapshot {target} exists and is not encrypted: it is no copy this fix made; "
                "rename or delete it, and the next run makes the encrypted copy"
            )
        if copy is not None and not _copied_from(copy, snapshot):
            return (
                f"a DB snapshot {target} exists, encrypted, but is not a copy of {name} (it holds "
                "another DbiResourceId or OriginalSnapshotCreateTime): rename or delete it, and the "
                "next run makes the copy"
            )
        return None

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        """Copy (unless the copy is there), then read both again and delete the original only if
        the copy reads available, encrypted and made from it: RDS may fail a copy whose source
        goes first, and the snapshot may have been shared or changed since the read."""
        _, name = _snapshot(resource_id)
        rds = clients.rds
        target = plan["EncryptedCopy"][DB_SNAPSHOT.id_param]
        if state["EncryptedCopy"] is None:
            rds.copy_db_snapshot(
                SourceDBSnapshotIdentifier=name,
                TargetDBSnapshotIdentifier=target,
                KmsKeyId=self.params["kms_key_id"],
                CopyTags=True,
            )
        now = self.read(clients, resource_id)
        if now["Snapshot"] is None or now["Snapshot"]["Encrypted"]:
            raise ChangedMeanwhile(f"{name} was deleted or encrypted since it was read")
        why = self._refusal(now)
        if why:
            raise ValueError(f"{why}; nothing deleted")
        copy = now["EncryptedCopy"]
        status = copy["Status"] if copy else None
        if status is None or status in IN_PROGRESS:
            raise ChangeNotMade(
                f"the encrypted copy {target} is {status or 'not listed yet'}, not yet available (a copy "
                f"takes RDS minutes to hours): {name} is kept until it is, and a later run deletes it then"
            )
        if status != "available":
            raise ValueError(
                f"the encrypted copy {target} is {status}, and will not become available: {name} is "
                "kept; delete the copy, and the next run makes another"
            )
        unusable = _key_problem(clients.kms, copy["KmsKeyId"], clients.account_id)
        if unusable:
            raise ValueError(
                f"the encrypted copy {target}'s KMS key {copy['KmsKeyId']} {unusable}: {name} is kept"
            )
        rds.delete_db_snapshot(DBSnapshotIdentifier=name)

    def irreversible_from(self, before: dict[str, Any]) -> str | None:
        """Known only from the snapshot as it reads now (``check_revert``): a fix that ended
        while its copy was being made deleted nothing."""
        return None

    def as_compared(self, state: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
        """Which snapshots there are: a copy's progress, or a tag added since, is no change to them."""
        return {
            key: value.get(DB_SNAPSHOT.id_param) if isinstance(value, dict) else None
            for key, value in state.items()
        }

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Delete the copy the fix made while the snapshot it copies is still there (the fix ended
        before the copy was available). RDS deletes a snapshot only once it is available."""
        copy = self._made_copy(clients, resource_id, before)
        if copy is None:
            return
        if copy.get("Status") != "available":
            raise ChangeNotMade(
                f"the copy {copy[DB_SNAPSHOT.id_param]} is {copy.get('Status')}, and RDS deletes a snapshot "
                "only once it is available: roll back again then"
            )
        clients.rds.delete_db_snapshot(DBSnapshotIdentifier=copy[DB_SNAPSHOT.id_param])

    def check_revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        self._made_copy(clients, resource_id, before)

    def _made_copy(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> dict[str, Any] | None:
        """The copy the fix made, as it reads now; None when there was one before the fix or it is
        gone. NotReversible once the snapshot it copies is deleted, or when it holds another's data."""
        now = self.read(clients, resource_id)
        if now["Snapshot"] is None:
            raise NotReversible(self.irreversible)
        copy = now["EncryptedCopy"]
        if before.get("EncryptedCopy") is not None or copy is None:
            return None
        if not _copied_from(copy, now["Snapshot"]):
            raise NotReversible(
                f"{copy[DB_SNAPSHOT.id_param]} is no copy of {now['Snapshot'][DB_SNAPSHOT.id_param]} now: "
                "it is not the fix's to delete"
            )
        return copy


# The service that assumes the monitoring role. The same in every partition: IAM in the China
# regions refuses monitoring.rds.amazonaws.com.cn as a principal.
MONITORING_PRINCIPAL = "monitoring.rds.amazonaws.com"
MONITORING_POLICY = "service-role/AmazonRDSEnhancedMonitoringRole"
INTERVALS = [1, 5, 10, 15, 30, 60]


# The codes RDS answers a monitoring role it cannot use (yet) with.
ROLE_REFUSALS = ("InvalidParameterValue", "InvalidParameterCombination")


@register
class EnableEnhancedMonitoring(Action):
    """Turn on Enhanced Monitoring of a DB instance: its OS metrics go to CloudWatch Logs.

    Security Hub passes any interval unless the control is given ``monitoringInterval``; then
    only that one passes. The playbook maps it to ``required_interval_seconds``; without it an
    instance with monitoring off gets ``interval_seconds``. RDS applies the change without a
    restart and without ``ApplyImmediately`` (which would rush what is queued for the
    maintenance window), while the instance is ``configuring-enhanced-monitoring``: the
    interval is not one RDS lists as pending, so the read-back waits for it
    (``RDS_PROPAGATION``).

    The instance's own monitoring role is kept (none is sent). Otherwise the role ``role_name``,
    trusted by Enhanced Monitoring for this account only and holding the AWS managed policy
    AmazonRDSEnhancedMonitoringRole, is passed: the member-role stack makes it, and the
    account's instances share it. Aurora instances are set one by one; those of a Multi-AZ
    DB cluster are refused.

        remediation:
          action: rds.enable-enhanced-monitoring
          parameters: {interval_seconds: 60}
    """

    name = "rds.enable-enhanced-monitoring"
    service = "rds"
    propagation_seconds = RDS_PROPAGATION
    permissions = (
        *INSTANCE.permissions,
        "iam:GetRole",
        "iam:ListAttachedRolePolicies",
        "iam:PassRole",
    )
    service_role = ServiceRole(
        service_trust(MONITORING_PRINCIPAL, source_account=True),
        "Lets RDS Enhanced Monitoring send OS metrics to CloudWatch Logs (ASR, for RDS.6)",
        (MONITORING_POLICY,),
    )
    summary = "turned on Enhanced Monitoring of the DB instance (OS metrics to CloudWatch Logs)"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "interval_seconds": {"type": "integer", "enum": INTERVALS, "default": 60},
            "required_interval_seconds": {"type": "integer", "enum": INTERVALS},
            "role_name": role_name_parameter("asr-service-rds-monitoring"),
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        found = _describe(INSTANCE, clients, resource_id, "MonitoringInterval")
        interval = int(_getting(found, "MonitoringInterval") or 0)
        # The role in use: with monitoring off, RDS may still name the last one, which carries nothing.
        return {
            "MonitoringInterval": interval,
            "MonitoringRoleArn": found.get("MonitoringRoleArn") if interval else None,
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        interval, required = state["MonitoringInterval"], self.params.get("required_interval_seconds")
        if required is None:  # any interval passes
            return {} if interval else {"MonitoringInterval": self.params["interval_seconds"]}
        return {} if interval == required else {"MonitoringInterval": required}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        if state["MonitoringRoleArn"]:  # sending no role keeps it, and passes none
            INSTANCE.change(clients.rds, resource_id, **plan, ApplyImmediately=False)
            return
        role, fresh = self.ready_role(clients)
        with_new_role(
            lambda: INSTANCE.change(
                clients.rds, resource_id, **plan, MonitoringRoleArn=role["Arn"], ApplyImmediately=False
            ),
            fresh,
            answered(ROLE_REFUSALS, saying="ENHANCED_MONITORING"),
        )

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Put the interval back (0 turns monitoring off). The role stays: other instances share it."""
        INSTANCE.change(
            clients.rds, resource_id, MonitoringInterval=before["MonitoringInterval"], ApplyImmediately=False
        )
