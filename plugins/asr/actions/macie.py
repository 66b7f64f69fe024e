"""Macie fixes: Macie on in every Region."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients


@register
class EnableMacie(Action):
    """Turn Amazon Macie on in one Region: enable it, or resume it where it is paused.

    Macie then keeps an inventory of the Region's S3 buckets and their exposure, which it
    charges for per bucket; it inspects objects only in discovery jobs someone creates, or
    with automated sensitive data discovery where the account has that on.

        remediation:
          action: macie.enable
    """

    name = "macie.enable"
    service = "macie2"
    permissions = (
        "macie2:GetMacieSession",
        "macie2:EnableMacie",
        "macie2:UpdateMacieSession",
        "iam:CreateServiceLinkedRole",
    )
    summary = "enabled Amazon Macie"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        macie = clients.macie2
        try:
            return {"Status": macie.get_macie_session()["status"]}
        except macie.exceptions.AccessDeniedException as exc:
            # AWS's answer for an account where Macie is off; a missing permission reads otherwise.
            if "not enabled" not in str(exc):
                raise
            return {"Status": None}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["Status"] == "ENABLED" else {"Status": "ENABLED"}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        if state["Status"]:
            clients.macie2.update_macie_session(status="ENABLED")
        else:
            clients.macie2.enable_macie(status="ENABLED")

    def irreversible_from(self, before: dict[str, Any]) -> str | None:
        """Where the fix enabled Macie, only disabling takes it back, and that deletes every
        finding and setting Macie has had since."""
        if not before["Status"]:
            return (
                "Macie was off: disabling it deletes its findings and settings, so it is left on "
                "(disable it in the console if that is meant)"
            )
        return None

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Pause Macie again where the fix resumed it."""
        clients.macie2.update_macie_session(status=before["Status"])
