"""SSM fixes: the account's block on public sharing of SSM documents."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients

PUBLIC_SHARING_SETTING = "/ssm/documents/console/public-sharing-permission"


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
