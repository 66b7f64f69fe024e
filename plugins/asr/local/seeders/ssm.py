"""SSM misconfigurations."""

from __future__ import annotations

import json
import uuid

from asr.actions.ssm import EVERYONE, PUBLIC_SHARING_SETTING
from asr.aws import AwsContext
from asr.local.seeders import Seeded, seeder
from asr.local.seeders.ec2 import instance_arn

ECHO_DOCUMENT = {
    "schemaVersion": "2.2",
    "description": "A seeded document",
    "mainSteps": [
        {"action": "aws:runShellScript", "name": "echo", "inputs": {"runCommand": ["echo seeded"]}}
    ],
}


@seeder("SSM.7")
def public_document_sharing_allowed(
    aws: AwsContext, control_id: str, account: str, region: str, n: int
) -> Seeded:
    """Public sharing of SSM documents allowed in the account and region (AWS's default)."""
    aws.client("ssm", account, region).update_service_setting(
        SettingId=PUBLIC_SHARING_SETTING, SettingValue="Enable"
    )
    return Seeded(control_id, account, region, "AwsAccount", f"AWS::::Account:{account}", "CRITICAL")


@seeder("SSM.4")
def public_document(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A Command document of the account's own, shared with everyone."""
    ssm = aws.client("ssm", account, region)
    name = f"asr-seed-document-{n}-{uuid.uuid4().hex[:6]}"
    ssm.create_document(Name=name, Content=json.dumps(ECHO_DOCUMENT), DocumentType="Command")
    ssm.modify_document_permission(Name=name, PermissionType="Share", AccountIdsToAdd=[EVERYONE])
    arn = f"arn:aws:ssm:{region}:{account}:document/{name}"
    return Seeded(control_id, account, region, "AwsSsmDocument", arn, "CRITICAL")


@seeder("SSM.1")
def unmanaged_instance(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A running instance with no instance profile: the SSM agent has no role to register with."""
    arn = instance_arn(aws, account, region, f"asr-seed-unmanaged-{n}")
    return Seeded(control_id, account, region, "AwsEc2Instance", arn, "MEDIUM")
