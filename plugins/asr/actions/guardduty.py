"""GuardDuty fixes: a detector in every Region."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients


@register
class EnableDetector(Action):
    """Turn GuardDuty on in one Region: enable its detector, or create one if there is none.

    A Region has at most one detector; a suspended one is re-enabled, keeping its
    settings and findings, rather than replaced. A detector created without ``Features``
    gets GuardDuty's optional protection plans that are on by default (S3, EKS audit logs,
    malware scans of EBS, RDS and Lambda protection, as its model says), each billed after
    its trial: what the console's "Enable GuardDuty" turns on too. A member whose GuardDuty
    its delegated administrator suspended can only be turned on again by that account.

        remediation:
          action: guardduty.enable-detector
    """

    name = "guardduty.enable-detector"
    service = "guardduty"
    permissions = (
        "guardduty:ListDetectors",
        "guardduty:GetDetector",
        "guardduty:CreateDetector",
        "guardduty:UpdateDetector",
        "iam:CreateServiceLinkedRole",
    )
    summary = "enabled the GuardDuty detector"
    revert_permissions = ("guardduty:UpdateDetector",)

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        guardduty = clients.guardduty
        detectors = guardduty.list_detectors()["DetectorIds"]
        if not detectors:
            return {"DetectorId": None, "Status": None}
        detector = guardduty.get_detector(DetectorId=detectors[0])
        return {"DetectorId": detectors[0], "Status": detector.get("Status")}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["Status"] == "ENABLED" else {"Status": "ENABLED"}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        if state["DetectorId"]:
            clients.guardduty.update_detector(DetectorId=state["DetectorId"], Enable=True)
        else:
            clients.guardduty.create_detector(Enable=True)

    def irreversible_from(self, before: dict[str, Any]) -> str | None:
        """A detector the fix created could only be deleted, and with it every finding, filter,
        trusted IP and threat list and member link made since: as for Macie, not done."""
        if before["DetectorId"] is None:
            return (
                "the Region had no detector: deleting the one the fix created deletes its findings, "
                "filters and lists, so it is left on (suspend or delete it in the console if that is meant)"
            )
        return None

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Suspend the detector the fix re-enabled: it keeps its settings and findings."""
        clients.guardduty.update_detector(DetectorId=before["DetectorId"], Enable=False)
