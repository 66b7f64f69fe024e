"""SSM fixes: the account's block on public sharing of SSM documents, and documents shared publicly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients

PUBLIC_SHARING_SETTING = "/ssm/documents/console/public-sharing-permission"
# The account id by which a document is shared with everyone.
EVERYONE = "all"


@register
class BlockPublicDocumentSharing(Action):
    """Turn on "block public sharing" for SSM documents in one account and region.

    The account-regional service setting ``/ssm/documents/console/public-sharing-permission``
    becomes ``Disable``. Documents already shared publicly stay shared (that is SSM.4's fix);
    new public shares are refused.

        remediation:
          action: ssm.block-public-document-sharing
    """

    name = "ssm.block-public-document-sharing"
    service = "ssm"
    permissions = ("ssm:GetServiceSetting", "ssm:UpdateServiceSetting")
    summary = "blocked public sharing of SSM documents in the account and region"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        setting = clients.ssm.get_service_setting(SettingId=PUBLIC_SHARING_SETTING)["ServiceSetting"]
        return {"PublicSharingPermission": setting["SettingValue"]}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["PublicSharingPermission"] == "Disable" else {"PublicSharingPermission": "Disable"}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.ssm.update_service_setting(SettingId=PUBLIC_SHARING_SETTING, SettingValue="Disable")

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        clients.ssm.update_service_setting(
            SettingId=PUBLIC_SHARING_SETTING, SettingValue=before["PublicSharingPermission"]
        )


@register
class MakeDocumentPrivate(Action):
    """Stop sharing one SSM document with every AWS account.

    SSM shares a document either with everyone (``all``) or with named accounts, never
    both: removing ``all`` leaves the document to its own account. Other accounts that ran
    it through the public share lose it; share it with them by name if they need it.

        remediation:
          action: ssm.make-document-private
    """

    name = "ssm.make-document-private"
    service = "ssm"
    permissions = ("ssm:DescribeDocumentPermission", "ssm:ModifyDocumentPermission")
    summary = "stopped sharing the SSM document with every AWS account"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        """Whether ``all`` is the share, and at which version (for a revert). A public document
        has no other share, so the first page tells."""
        page = clients.ssm.describe_document_permission(Name=resource_id, PermissionType="Share")
        public = [
            share for share in page.get("AccountSharingInfoList", []) if share.get("AccountId") == EVERYONE
        ]
        return {
            "SharedWithEveryone": bool(public) or EVERYONE in page.get("AccountIds", []),
            "SharedVersion": public[0].get("SharedDocumentVersion") if public else None,
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"SharedWithEveryone": False} if state["SharedWithEveryone"] else {}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.ssm.modify_document_permission(
            Name=resource_id, PermissionType="Share", AccountIdsToRemove=[EVERYONE]
        )

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        version = {"SharedDocumentVersion": before["SharedVersion"]} if before["SharedVersion"] else {}
        clients.ssm.modify_document_permission(
            Name=resource_id, PermissionType="Share", AccountIdsToAdd=[EVERYONE], **version
        )
