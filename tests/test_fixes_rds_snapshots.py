"""RDS.4: an unencrypted manual DB snapshot gives way to an encrypted copy, deleted only once
that copy is available; whatever must not be deleted is refused, unchanged."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from helpers import hooked
from test_fixes_data import PASSWORD, assert_permissions_cover_served_calls, parameters_sent
from test_iam_policy import statements_of

from asr import iam_policy, local
from asr.actions import ActionError, ChangeNotMade
from asr.audit import AuditJournal, Origin, journal_root
from asr.aws import Clients
from asr.config import Settings
from asr.findings import parse_finding
from asr.local import MEMBER_ACCOUNT
from asr.local.rds_ext import COPY_STATUS_TAG, DELETING_TAG, SNAPSHOT_TYPE_TAG
from asr.local.seed import finding, seed_one
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource, run_batch
from asr.rollback import Rollback, RollbackStatus

REGION = "us-east-1"
CONTROL = "RDS.4"
ARN = f"arn:aws:rds:{REGION}:{MEMBER_ACCOUNT}"
OTHER_ACCOUNT = "333333333333"
WRITES = ("CopyDBSnapshot", "DeleteDBSnapshot", "AddTagsToResource", "ModifyDBSnapshotAttribute")


@pytest.fixture
def clients(aws: Any) -> Clients:
    return Clients(aws, MEMBER_ACCOUNT, REGION)


def instance(clients: Clients, name: str = "orders", **settings: Any) -> str:
    """A new PostgreSQL DB instance (unencrypted unless ``settings`` say so); its name."""
    clients.rds.create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        **PASSWORD,
        **settings,
    )
    return name


def snapshot(clients: Clients, name: str = "orders-nightly", of: str = "orders", **tags: str) -> str:
    """A manual snapshot of the instance ``of`` (made first if need be), tagged; its ARN."""
    with contextlib.suppress(clients.rds.exceptions.DBInstanceAlreadyExistsFault):
        instance(clients, of)
    clients.rds.create_db_snapshot(
        DBInstanceIdentifier=of,
        DBSnapshotIdentifier=name,
        Tags=[{"Key": key, "Value": value} for key, value in {"team": "payments", **tags}.items()],
    )
    return f"{ARN}:snapshot:{name}"


def fix(aws: Any, arn: str, dry: bool = False, **params: Any) -> Result:
    """The playbook's fix of the snapshot a finding names (``params`` over the playbook's)."""
    playbook = registry().playbooks[CONTROL]
    resource_id = playbook.extract_resource_id(arn, MEMBER_ACCOUNT)
    return remediate_resource(
        playbook.build_action(params), Clients(aws, MEMBER_ACCOUNT, REGION), resource_id, dry
    )


def snapshots(clients: Clients) -> dict[str, dict[str, Any]]:
    """The account-region's DB snapshots by name, manual and automated."""
    return {s["DBSnapshotIdentifier"]: s for s in clients.rds.describe_db_snapshots()["DBSnapshots"]}


def writes() -> list[str]:
    """The RDS writes the stand-in served since its log was last cleared."""
    return [c["action"] for c in local.served_requests() if c["service"] == "rds" and c["action"] in WRITES]


def key_arn(clients: Clients, key: str) -> str:
    return str(clients.kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"])


def test_the_seeded_snapshot_gives_way_to_an_encrypted_copy(aws: Any, clients: Clients) -> None:
    arn = seed_one(aws, CONTROL, MEMBER_ACCOUNT, REGION).resource_id
    name = arn.rsplit(":", 1)[1]
    original = snapshots(clients)[name]

    local.served_requests(clear=True)
    with parameters_sent(clients.rds, "CopyDBSnapshot") as copies:
        result = fix(aws, arn)

    assert result.status == Status.REMEDIATED, result.message
    target = f"{name}-encrypted"
    assert copies == [
        {
            "SourceDBSnapshotIdentifier": name,
            "TargetDBSnapshotIdentifier": target,
            "KmsKeyId": "alias/aws/rds",
            "CopyTags": True,
        }
    ]
    assert writes() == ["CopyDBSnapshot", "DeleteDBSnapshot"]
    assert_permissions_cover_served_calls(CONTROL)
    now = snapshots(clients)
    assert name not in now, "the unencrypted original is deleted"
    copy = now[target]
    assert (copy["Encrypted"], copy["KmsKeyId"]) == (True, key_arn(clients, "alias/aws/rds"))
    assert copy["TagList"] == original["TagList"]
    # What a person needs to find the data again: the original as it was, and where it went.
    assert result.before is not None and result.after is not None
    before = result.before["Snapshot"]
    assert before["DBSnapshotIdentifier"] == name
    assert before["DBInstanceIdentifier"] == original["DBInstanceIdentifier"]
    assert (before["Engine"], before["Encrypted"], before["Tags"]) == (
        "postgres",
        False,
        {"owner": "asr-seed"},
    )
    assert before["SnapshotCreateTime"] == original["SnapshotCreateTime"].isoformat()
    assert result.before["EncryptedCopy"] is None
    assert result.after["Snapshot"] is None
    assert result.after["EncryptedCopy"]["DBSnapshotIdentifier"] == target
    assert result.after["EncryptedCopy"]["KmsKeyId"] == copy["KmsKeyId"]


def test_the_copy_takes_the_playbook_s_customer_managed_key(aws: Any, clients: Clients) -> None:
    key = clients.kms.create_key(Description="RDS snapshots")["KeyMetadata"]["Arn"]
    clients.kms.create_alias(AliasName="alias/rds-snapshots", TargetKeyId=key)
    arn = snapshot(clients)
    result = fix(aws, arn, kms_key_id="alias/rds-snapshots")
    assert result.status == Status.REMEDIATED, result.message
    copy = snapshots(clients)["orders-nightly-encrypted"]
    assert (copy["Encrypted"], copy["KmsKeyId"]) == (True, key)


def test_an_encrypted_snapshot_is_compliant_and_nothing_is_made(aws: Any, clients: Clients) -> None:
    instance(clients, "ledger", StorageEncrypted=True, KmsKeyId="alias/aws/rds")
    arn = snapshot(clients, "ledger-nightly", of="ledger")
    local.served_requests(clear=True)
    result = fix(aws, arn)
    assert result.status == Status.ALREADY_COMPLIANT, result.message
    assert writes() == []
    assert "ledger-nightly-encrypted" not in snapshots(clients)


def _automated(clients: Clients) -> str:
    """The automated snapshot moto takes of a new instance."""
    instance(clients)
    [name] = [n for n, s in snapshots(clients).items() if s["SnapshotType"] == "automated"]
    return f"{ARN}:snapshot:{name}"


def _aws_backup(clients: Clients) -> str:
    return snapshot(clients, **{SNAPSHOT_TYPE_TAG: "awsbackup"})


def _shared(clients: Clients, *restorers: str) -> str:
    arn = snapshot(clients)
    clients.rds.modify_db_snapshot_attribute(
        DBSnapshotIdentifier="orders-nightly", AttributeName="restore", ValuesToAdd=list(restorers)
    )
    return arn


def _being_made(clients: Clients) -> str:
    """A snapshot that is itself a copy still being made."""
    snapshot(clients, "orders-source", **{COPY_STATUS_TAG: "creating"})
    clients.rds.copy_db_snapshot(
        SourceDBSnapshotIdentifier="orders-source", TargetDBSnapshotIdentifier="orders-nightly", CopyTags=True
    )
    return f"{ARN}:snapshot:orders-nightly"


def _long_name(clients: Clients) -> str:
    return snapshot(clients, "o" * 250)


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (_automated, "is an automated snapshot of the unencrypted DB instance orders: RDS deletes it"),
        (_aws_backup, "is a recovery point of AWS Backup, which owns it"),
        (lambda c: _shared(c, OTHER_ACCOUNT), f"may be restored by account {OTHER_ACCOUNT} (its restore"),
        (lambda c: _shared(c, "all"), "may be restored by every AWS account (it is public)"),
        (_being_made, "is creating, not available, and RDS copies only an available snapshot"),
        (_long_name, "would have 260 characters, more than the 255 RDS allows"),
    ],
    ids=["automated", "awsbackup", "shared", "public", "not-available", "name-too-long"],
)
def test_what_must_not_be_deleted_is_refused_unchanged(
    aws: Any, clients: Clients, make: Any, why: str
) -> None:
    arn = make(clients)
    there = snapshots(clients)
    local.served_requests(clear=True)
    result = fix(aws, arn)
    assert result.status == Status.FAILED
    assert why in result.message and result.message.endswith("; nothing changed"), result.message
    assert writes() == []
    assert snapshots(clients).keys() == there.keys()


def test_an_automated_snapshot_found_only_by_its_type_is_refused_as_automated(
    aws: Any, clients: Clients
) -> None:
    """RDS documents that an automated snapshot's identifier needs its SnapshotType too (the
    stand-in finds it without): the fix then said only that the snapshot was not found."""
    arn = _automated(clients)

    def typed_only(params: dict[str, Any], **_: Any) -> Any:
        body = params.get("body") or {}
        if str(body.get("DBSnapshotIdentifier", "")).startswith("rds:") and "SnapshotType" not in body:
            error = {"Code": "DBSnapshotNotFound", "Message": "DBSnapshot not found."}
            return type("Refused", (), {"status_code": 404})(), {"Error": error}
        return None

    with hooked(clients.rds, "before-call.rds.DescribeDBSnapshots", typed_only):
        result = fix(aws, arn)
    assert result.status == Status.FAILED
    assert "is an automated snapshot of the unencrypted DB instance orders" in result.message, result.message


def test_sharing_names_every_account_and_the_public(aws: Any, clients: Clients) -> None:
    result = fix(aws, _shared(clients, "all", OTHER_ACCOUNT, "444444444444"))
    assert "every AWS account (it is public) and accounts 333333333333, 444444444444" in result.message


def test_a_cluster_snapshot_is_refused_for_rds_cannot_encrypt_its_copy(aws: Any, clients: Clients) -> None:
    rds = clients.rds
    rds.create_db_cluster(DBClusterIdentifier="ledger", Engine="aurora-postgresql", **PASSWORD)
    rds.create_db_cluster_snapshot(DBClusterIdentifier="ledger", DBClusterSnapshotIdentifier="ledger-nightly")
    local.served_requests(clear=True)
    result = fix(aws, f"{ARN}:cluster-snapshot:ledger-nightly")
    assert result.status == Status.FAILED
    assert "RDS cannot encrypt the copy of an unencrypted DB cluster snapshot" in result.message
    assert writes() == []
    assert [
        s["DBClusterSnapshotIdentifier"]
        for s in rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]
    ] == ["ledger-nightly"]

    rds.create_db_cluster(
        DBClusterIdentifier="vault", Engine="aurora-postgresql", StorageEncrypted=True, **PASSWORD
    )
    rds.create_db_cluster_snapshot(DBClusterIdentifier="vault", DBClusterSnapshotIdentifier="vault-nightly")
    assert fix(aws, f"{ARN}:cluster-snapshot:vault-nightly").status == Status.ALREADY_COMPLIANT


@pytest.mark.parametrize(
    ("encrypted", "why"),
    [
        (False, "a DB snapshot orders-nightly-encrypted exists and is not encrypted"),
        (
            True,
            "a DB snapshot orders-nightly-encrypted exists, encrypted, but is not a copy of orders-nightly",
        ),
    ],
)
def test_a_copy_name_taken_by_another_snapshot_fails_naming_it(
    aws: Any, clients: Clients, encrypted: bool, why: str
) -> None:
    arn = snapshot(clients)
    snapshot(clients, "billing-nightly", of="billing")
    clients.rds.copy_db_snapshot(
        SourceDBSnapshotIdentifier="billing-nightly",
        TargetDBSnapshotIdentifier="orders-nightly-encrypted",
        **({"KmsKeyId": "alias/aws/rds"} if encrypted else {}),
    )
    local.served_requests(clear=True)
    result = fix(aws, arn)
    assert result.status == Status.FAILED
    assert why in result.message, result.message
    assert writes() == []
    assert "orders-nightly" in snapshots(clients), "the original is kept"


def test_a_rerun_uses_the_copy_an_earlier_run_made(aws: Any, clients: Clients) -> None:
    """An earlier run made the copy and stopped before deleting (its task killed, say)."""
    arn = snapshot(clients)
    clients.rds.copy_db_snapshot(
        SourceDBSnapshotIdentifier="orders-nightly",
        TargetDBSnapshotIdentifier="orders-nightly-encrypted",
        KmsKeyId="alias/aws/rds",
        CopyTags=True,
    )
    local.served_requests(clear=True)
    result = fix(aws, arn)
    assert result.status == Status.REMEDIATED, result.message
    assert writes() == ["DeleteDBSnapshot"]
    assert set(snapshots(clients)) >= {"orders-nightly-encrypted"} and "orders-nightly" not in snapshots(
        clients
    )


def test_a_copy_not_yet_available_keeps_the_original_until_a_later_run(aws: Any, clients: Clients) -> None:
    """In AWS a copy takes minutes to hours: the first run copies and says so, keeping the
    original; the run after the copy is available deletes it, copying nothing again."""
    arn = snapshot(clients, **{COPY_STATUS_TAG: "creating"})
    copy_arn = f"{ARN}:snapshot:orders-nightly-encrypted"

    local.served_requests(clear=True)
    first = fix(aws, arn)
    assert first.status == Status.FAILED
    assert first.message.startswith("ChangeNotMade: the encrypted copy orders-nightly-encrypted is creating")
    assert "orders-nightly is kept until it is, and a later run deletes it then" in first.message
    assert writes() == ["CopyDBSnapshot"]
    assert first.after is not None and first.after["EncryptedCopy"]["Status"] == "creating"
    assert {"orders-nightly", "orders-nightly-encrypted"} <= set(snapshots(clients))

    assert fix(aws, arn).status == Status.FAILED, "still creating: kept again"
    clients.rds.remove_tags_from_resource(ResourceName=copy_arn, TagKeys=[COPY_STATUS_TAG])  # copy done
    local.served_requests(clear=True)
    last = fix(aws, arn)
    assert last.status == Status.REMEDIATED, last.message
    assert writes() == ["DeleteDBSnapshot"]
    assert "orders-nightly" not in snapshots(clients)


def test_a_copy_that_failed_keeps_the_original(aws: Any, clients: Clients) -> None:
    arn = snapshot(clients, **{COPY_STATUS_TAG: "failed"})
    result = fix(aws, arn)
    assert result.status == Status.FAILED
    assert (
        "the encrypted copy orders-nightly-encrypted is failed, and will not become available"
        in result.message
    )
    assert "orders-nightly" in snapshots(clients)


def test_a_copy_missing_after_copying_keeps_the_original(aws: Any, clients: Clients) -> None:
    """Whatever the copy call answered, the original goes only on a read of the copy."""
    arn = snapshot(clients)
    action = registry().playbooks[CONTROL].build_action()
    state = action.read(clients, arn)

    def answer_without_copying(**_: Any) -> tuple[Any, dict[str, Any]]:
        return type("Answer", (), {"status_code": 200})(), {"DBSnapshot": {}}

    with (
        hooked(clients.rds, "before-call.rds.CopyDBSnapshot", answer_without_copying),
        pytest.raises(ChangeNotMade, match="orders-nightly-encrypted is not listed yet, not yet available"),
    ):
        action.apply(clients, arn, state, action.plan(state))
    assert set(snapshots(clients)) >= {"orders-nightly"}
    assert "orders-nightly-encrypted" not in snapshots(clients)


def test_a_snapshot_shared_after_the_read_is_not_deleted(aws: Any, clients: Clients) -> None:
    """The fix reads the snapshot again after copying: sharing given meanwhile still counts."""
    arn = snapshot(clients)
    action = registry().playbooks[CONTROL].build_action()
    state = action.read(clients, arn)
    plan = action.plan(state)
    clients.rds.modify_db_snapshot_attribute(
        DBSnapshotIdentifier="orders-nightly", AttributeName="restore", ValuesToAdd=[OTHER_ACCOUNT]
    )
    with pytest.raises(ValueError, match=f"may be restored by account {OTHER_ACCOUNT}.*; nothing deleted$"):
        action.apply(clients, arn, state, plan)
    assert {"orders-nightly", "orders-nightly-encrypted"} <= set(snapshots(clients))


def test_a_dry_run_says_what_would_be_copied_and_deleted_and_changes_nothing(
    aws: Any, clients: Clients
) -> None:
    arn = snapshot(clients)
    local.served_requests(clear=True)
    result = fix(aws, arn, dry=True)
    assert result.status == Status.DRY_RUN
    assert result.after == {
        "Snapshot": "deleted",
        "EncryptedCopy": {
            "DBSnapshotIdentifier": "orders-nightly-encrypted",
            "Encrypted": True,
            "KmsKeyId": "alias/aws/rds",
            "Status": "available",
        },
    }
    assert "orders-nightly-encrypted" in result.message and "'Snapshot': 'deleted'" in result.message
    assert writes() == []
    assert "orders-nightly-encrypted" not in snapshots(clients)


def test_a_deleted_snapshot_reads_compliant_only_beside_its_encrypted_copy(
    aws: Any, clients: Clients
) -> None:
    arn = snapshot(clients)
    assert fix(aws, arn).status == Status.REMEDIATED
    assert fix(aws, arn).status == Status.ALREADY_COMPLIANT
    clients.rds.delete_db_snapshot(DBSnapshotIdentifier="orders-nightly-encrypted")
    gone = fix(aws, arn)
    assert gone.status == Status.FAILED and gone.message.startswith("DBSnapshotNotFound"), gone.message


def test_a_snapshot_rds_still_lists_while_deleting_it_reads_fixed(aws: Any, clients: Clients) -> None:
    """AWS lists a snapshot it deletes as deleting for a while: the fix's read-back right after
    the delete sees it so, beside its copy, and that is the fix made."""
    arn = snapshot(clients, **{DELETING_TAG: "yes"})
    result = fix(aws, arn)
    assert result.status == Status.REMEDIATED, result.message
    assert snapshots(clients)["orders-nightly"]["Status"] == "deleting"
    assert fix(aws, arn).status == Status.ALREADY_COMPLIANT


def test_a_deleting_snapshot_without_its_copy_is_no_fix(aws: Any, clients: Clients) -> None:
    arn = snapshot(clients, **{DELETING_TAG: "yes"})
    clients.rds.delete_db_snapshot(DBSnapshotIdentifier="orders-nightly")
    result = fix(aws, arn)
    assert result.status == Status.FAILED
    assert "orders-nightly is deleting, not available" in result.message, result.message


@pytest.mark.parametrize(
    ("spoil", "why"),
    [
        (lambda kms, key: kms.disable_key(KeyId=key), "is Disabled, not Enabled"),
        (lambda kms, key: kms.schedule_key_deletion(KeyId=key), "is PendingDeletion, not Enabled"),
    ],
)
def test_a_copy_whose_key_is_not_enabled_keeps_the_original(
    aws: Any, clients: Clients, spoil: Any, why: str
) -> None:
    """A copy under a key disabled, or to be deleted, is not the only key to the data."""
    made = clients.kms.create_key(Description="RDS snapshots")["KeyMetadata"]
    key = made["Arn"]
    arn = snapshot(clients)
    clients.rds.copy_db_snapshot(
        SourceDBSnapshotIdentifier="orders-nightly",
        TargetDBSnapshotIdentifier="orders-nightly-encrypted",
        KmsKeyId=key,
    )
    spoil(clients.kms, made["KeyId"])
    local.served_requests(clear=True)
    result = fix(aws, arn)
    assert result.status == Status.FAILED
    assert f"the encrypted copy orders-nightly-encrypted's KMS key {key} {why}" in result.message, (
        result.message
    )
    assert writes() == []
    assert "orders-nightly" in snapshots(clients)


def test_a_copy_of_another_snapshot_of_the_same_instance_is_not_taken(aws: Any, clients: Clients) -> None:
    """The same DbiResourceId: the create time tells the snapshots apart."""
    monday = snapshot(clients, "monday")
    snapshot(clients, "tuesday")
    clients.rds.copy_db_snapshot(
        SourceDBSnapshotIdentifier="tuesday",
        TargetDBSnapshotIdentifier="monday-encrypted",
        KmsKeyId="alias/aws/rds",
    )
    result = fix(aws, monday)
    assert result.status == Status.FAILED
    assert "monday-encrypted exists, encrypted, but is not a copy of monday" in result.message, result.message
    assert "monday" in snapshots(clients)


def _swept(aws: Any, tmp_path: Path, **tags: str) -> tuple[AuditJournal, str]:
    """A seeded snapshot (tagged), fixed by a sweep that journals; the journal a rollback of
    that sweep writes to, and the snapshot's ARN."""
    seeded = seed_one(aws, CONTROL, MEMBER_ACCOUNT, REGION)
    Clients(aws, MEMBER_ACCOUNT, REGION).rds.add_tags_to_resource(
        ResourceName=seeded.resource_id, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
    )
    root = journal_root(str(tmp_path), "asr_sweep", "run-1")
    record = parse_finding(finding(seeded), registry())
    run_batch(
        [record], registry(), aws, journal=AuditJournal(root, Origin("asr_sweep", "run-1", "b", 1, "s"))
    )
    return AuditJournal(root, Origin("asr_rollback", "r-1", "rollback", 1, "bob")), seeded.resource_id


def test_the_deletion_cannot_be_rolled_back_and_says_why(aws: Any, clients: Clients, tmp_path: Path) -> None:
    rollback, _ = _swept(aws, tmp_path)
    for dry in (True, False):
        [reversal] = Rollback(rollback, aws, dry=dry).run()
        assert reversal.status == RollbackStatus.NOT_REVERSIBLE, reversal.reason
        assert "deleted the unencrypted snapshot, which RDS cannot bring back" in reversal.reason


def test_a_rollback_deletes_the_copy_a_fix_left_unfinished(
    aws: Any, clients: Clients, tmp_path: Path
) -> None:
    """The copy was being made when the fix ended, the original kept: a rollback deletes the
    copy, once RDS lets it (an available snapshot only)."""
    rollback, arn = _swept(aws, tmp_path, **{COPY_STATUS_TAG: "creating"})
    name = arn.rsplit(":", 1)[1]
    [checked] = Rollback(rollback, aws, dry=True).run()
    assert checked.status == RollbackStatus.WOULD_REVERT, checked.reason
    [early] = Rollback(rollback, aws).run()
    assert (
        early.status == RollbackStatus.FAILED
        and "RDS deletes a snapshot only once it is available" in early.reason
    )
    copy = f"{name}-encrypted"
    clients.rds.remove_tags_from_resource(ResourceName=f"{ARN}:snapshot:{copy}", TagKeys=[COPY_STATUS_TAG])
    [reversal] = Rollback(rollback, aws).run()
    assert reversal.status == RollbackStatus.REVERTED, reversal.reason
    assert name in snapshots(clients) and copy not in snapshots(clients)


@pytest.mark.parametrize(
    "key",
    [
        "alias/aws/rds",
        "alias/team/rds-snapshots",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "mrk-1234abcd12ab34cd56ef1234567890ab",
        "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws-us-gov:kms:us-gov-west-1:123456789012:alias/rds-snapshots",
    ],
)
def test_the_key_may_be_given_as_rds_takes_it(key: str) -> None:
    assert registry().playbooks[CONTROL].build_action({"kms_key_id": key}).params["kms_key_id"] == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "alias/aws/s3",
        "rds-snapshots",
        "alias/",
        "arn:aws:kms:eu-west-1:123456789012:key/",
        "key/1234abcd",
    ],
)
def test_a_key_rds_cannot_take_is_refused_when_the_playbook_loads(key: str) -> None:
    with pytest.raises(ActionError, match="kms_key_id"):
        registry().playbooks[CONTROL].build_action({"kms_key_id": key})


def test_the_member_role_uses_keys_only_through_rds_and_tags_only_snapshots() -> None:
    """kms:CreateGrant on a key would let the member role give a principal of its choosing the
    key's use: only RDS's own grants are allowed, made through RDS."""
    policies = iam_policy.render(iam_policy.member_policies(registry()), iam_policy.plain_values(Settings()))
    [grant] = statements_of(policies, "kms:CreateGrant")
    assert grant["Resource"] == "arn:aws:kms:*:*:key/*"
    assert grant["Condition"] == {
        "StringLike": {"kms:ViaService": ["rds.*.amazonaws.com", "rds.*.amazonaws.com.cn"]},
        "Bool": {"kms:GrantIsForAWSResource": "true"},
    }
    [tagging] = statements_of(policies, "rds:AddTagsToResource")
    assert tagging["Resource"] == "arn:aws:rds:*:*:snapshot:*"
