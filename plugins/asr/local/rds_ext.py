"""RDS instance changes wait for the maintenance window, which moto 5.2.5 applies at once.

``ModifyDBInstance`` without ``ApplyImmediately`` queues changes that need the instance to
restart (its class, storage, engine version, Multi-AZ) for the next maintenance window;
``DescribeDBInstances`` lists them under ``PendingModifiedValues``, and a later call *with*
``ApplyImmediately`` applies them now along with its own. moto applies every change at
once and reports none pending. Here those settings are queued on moto's own instance
object, and applied when a call asks for immediacy, as AWS does.
"""

from __future__ import annotations

from typing import Any

from moto.rds.models import DBInstance, RDSBackend

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


def install() -> None:
    RDSBackend.modify_db_instance = modify_db_instance  # type: ignore[method-assign]
