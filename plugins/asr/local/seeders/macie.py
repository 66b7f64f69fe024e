"""Macie misconfigurations."""

from __future__ import annotations

from asr.aws import AwsContext
from asr.local.seeders import Seeded, account_resource, seeder


@seeder("Macie.1")
def macie_off(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """Macie paused in the Region (enabled first where it is off: only a session can be paused)."""
    macie = aws.client("macie2", account, region)
    try:
        macie.get_macie_session()
    except macie.exceptions.AccessDeniedException:
        macie.enable_macie()
    macie.update_macie_session(status="PAUSED")
    return account_resource(control_id, account, region)
