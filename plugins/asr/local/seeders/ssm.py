"""SSM misconfigurations."""

from __future__ import annotations

from asr.actions.ssm import PUBLIC_SHARING_SETTING
from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder


@seeder("SSM.7")
def public_document_sharing_allowed(
    aws: AwsContext, control_id: str, account: str, region: str, n: int
) -> Seeded:
    """Public sharing of SSM documents allowed in the account and region (AWS's default)."""
    aws.client("ssm", account, region).update_service_setting(
        SettingId=PUBLIC_SHARING_SETTING, SettingValue="Enable"
    )
    return Seeded(control_id, account, region, "AwsAccount", f"AWS::::Account:{account}", "CRITICAL")
