"""KMS misconfigurations."""

from __future__ import annotations

from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder


@seeder("KMS.4")
def key_without_rotation(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A customer managed symmetric key, created as KMS creates them: rotation off."""
    key = aws.client("kms", account, region).create_key(
        Description=f"asr seed {control_id} #{n}: automatic rotation off",
        Tags=[{"TagKey": "asr-seed", "TagValue": control_id}],
    )["KeyMetadata"]
    return Seeded(control_id, account, region, "AwsKmsKey", key["Arn"], "MEDIUM")
