"""Where moto 5.2.5's RDS differs from AWS in what the RDS fixes meet.

Instance changes wait for the maintenance window, which moto applies at once.
``ModifyDBInstance`` without ``ApplyImmediately`` queues changes that need the instance to
restart (its class, storage, engine version, Multi-AZ) for the next maintenance window;
``DescribeDBInstances`` lists them under ``PendingModifiedValues``, and a later call *with*
``ApplyImmediately`` applies them now along with its own. moto applies every change at
once and reports none pending. Here those settings are queued on moto's own instance
object, and applied when a call asks for immediacy, as AWS does.

Snapshots:

- A copy takes AWS minutes to hours, and moto none. A DB snapshot that ``CopyDBSnapshot``
  made reads, while it carries the tag ``asr-local:copy-status``, in the status the tag names
  (``creating``). ``CopyTags`` brings the tag from the source; removing it from the copy makes
  the copy available. Snapshots not made by a copy are not affected.
- AWS lists a DB snapshot it deletes as ``deleting`` for a while, and moto drops it at once:
  one tagged ``asr-local:deleting`` stays listed, ``deleting``, after ``DeleteDBSnapshot``.
- moto makes automated snapshots, but no AWS Backup ones: a snapshot tagged
  ``asr-local:snapshot-type`` reads as of that type (``awsbackup``).
- ``CopyDBClusterSnapshot`` with a ``KmsKeyId`` refuses an unencrypted source, as AWS documents
  (moto made an encrypted copy). AWS does not document the error's code:
  ``InvalidParameterCombination`` here.
"""

from __future__ import annotations

from typing import Any

from moto.rds.exceptions import InvalidParameterCombination
from moto.rds.models import DBClusterSnapshot, DBInstance, DBSnapshot, RDSBackend

COPY_STATUS_TAG = "asr-local:copy-status"
DELETING_TAG = "asr-local:deleting"
SNAPSHOT_TYPE_TAG = "asr-local:snapshot-type"

# moto's keyword for each setting that waits for the window, and its name in PendingModifiedValues.
WINDOW_SETTINGS = {
    "db_instance_class": "DBInstanceClass",
    "allocated_storage": "AllocatedStorage",
    "engine_version": "EngineVersion",
    "multi_az": "MultiAZ",
    "storage_type": "StorageType",
    "iops": "Iops",
}

_moto_modify_db_instance = RDSBackend.modify_db_instance


def modify_db_instance(
    self: RDSBackend, db_instance_identifier: str, db_kwargs: dict[str, Any]
) -> DBInstance:
    database = self.describe_db_instances(db_instance_identifier)[0]
    queued: dict[str, Any] = dict(getattr(database, "_asr_queued", {}))
    if db_kwargs.get("apply_immediately"):
        db_kwargs = {**queued, **db_kwargs}
        queued = {}
    else:
        for key in WINDOW_SETTINGS:
            if db_kwargs.get(key) is not None:
                queued[key] = db_kwargs.pop(key)
    database = _moto_modify_db_instance(self, db_instance_identifier, db_kwargs)
    database._asr_queued = queued
    # moto serializes public attributes by their camel-case names; None is left out.
    database.pending_modified_values = {WINDOW_SETTINGS[k]: v for k, v in queued.items()} or None
    return database


def _tag(snapshot: Any, key: str) -> str | None:
    return next((held["Value"] for held in snapshot.tags if held["Key"] == key), None)


def _tagged(attribute: str, tag: str, on_copies_only: bool = False) -> property:
    """``attribute`` read as the value of the snapshot's tag ``tag`` when it has one (and, with
    ``on_copies_only``, is a copy), else as moto set it."""
    kept = f"_asr_{attribute}"

    def get(self: Any) -> Any:
        tagged = _tag(self, tag) if not on_copies_only or getattr(self, "_asr_copy", False) else None
        return getattr(self, kept) if tagged is None else tagged

    def set_(self: Any, value: Any) -> None:
        setattr(self, kept, value)

    return property(get, set_)


_moto_copy_db_snapshot = RDSBackend.copy_db_snapshot
_moto_delete_db_snapshot = RDSBackend.delete_db_snapshot
_moto_copy_db_cluster_snapshot = RDSBackend.copy_db_cluster_snapshot


def copy_db_snapshot(self: RDSBackend, **kwargs: Any) -> DBSnapshot:
    copy = _moto_copy_db_snapshot(self, **kwargs)
    copy._asr_copy = True
    return copy


def delete_db_snapshot(self: RDSBackend, db_snapshot_identifier: str) -> DBSnapshot:
    snapshot = self.database_snapshots.get(db_snapshot_identifier)
    if snapshot is None or _tag(snapshot, DELETING_TAG) is None:
        return _moto_delete_db_snapshot(self, db_snapshot_identifier)
    snapshot.status = "deleting"
    return snapshot


def copy_db_cluster_snapshot(self: RDSBackend, **kwargs: Any) -> DBClusterSnapshot:
    source = self.get_db_cluster_snapshot(kwargs["source_db_cluster_snapshot_identifier"])
    if kwargs.get("kms_key_id") and not source.storage_encrypted:
        raise InvalidParameterCombination(
            "KmsKeyId cannot be given for an unencrypted DB cluster snapshot: its copy cannot be encrypted"
        )
    return _moto_copy_db_cluster_snapshot(self, **kwargs)


def install() -> None:
    RDSBackend.modify_db_instance = modify_db_instance  # type: ignore[method-assign]
    RDSBackend.copy_db_snapshot = copy_db_snapshot  # type: ignore[method-assign,assignment]
    RDSBackend.delete_db_snapshot = delete_db_snapshot  # type: ignore[method-assign,assignment]
    RDSBackend.copy_db_cluster_snapshot = copy_db_cluster_snapshot  # type: ignore[method-assign,assignment]
    DBSnapshot.status = _tagged("status", COPY_STATUS_TAG, on_copies_only=True)  # type: ignore[assignment]
    for snapshot in (DBSnapshot, DBClusterSnapshot):
        snapshot.snapshot_type = _tagged("snapshot_type", SNAPSHOT_TYPE_TAG)  # type: ignore[assignment]
