"""S3 fixes: account-level Block Public Access."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients

BLOCK_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


@register
class BlockAccountPublicAccess(Action):
    """Turn on all four account-level S3 Block Public Access settings.

    The resource id is the account id (S3 Control addresses the account, not a bucket).

        remediation:
          action: s3.block-account-public-access
    """

    name = "s3.block-account-public-access"
    service = "s3control"
    permissions = ("s3:GetAccountPublicAccessBlock", "s3:PutAccountPublicAccessBlock")
    summary = "enabled all four account-level S3 Block Public Access settings"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        try:
            config = clients.s3control.get_public_access_block(AccountId=resource_id)[
                "PublicAccessBlockConfiguration"
            ]
        except clients.s3control.exceptions.NoSuchPublicAccessBlockConfiguration:
            config = {}
        return {flag: bool(config.get(flag)) for flag in BLOCK_FLAGS}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {flag: True for flag, on in state.items() if not on}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.s3control.put_public_access_block(
            AccountId=resource_id, PublicAccessBlockConfiguration=dict.fromkeys(BLOCK_FLAGS, True)
        )
