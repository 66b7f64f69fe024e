"""ECR fixes: image scanning."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from asr.actions import BulkRead, register

if TYPE_CHECKING:
    from asr.aws import Clients

SCANNED = ("SCAN_ON_PUSH", "CONTINUOUS_SCAN")


@register
class EnableScanOnPush(BulkRead):
    """Scan every image pushed to a private repository for known vulnerabilities.

    The control judges the repository's effective scan frequency, which the registry's
    scanning rules decide once it has any (or scans with Inspector): then the
    repository's own scan-on-push flag counts for nothing, and setting it would resolve
    the finding while the control still fails. So only a repository the registry leaves
    to its own flag is fixed, by setting that flag; one the registry's rules leave
    unscanned fails with the reason, as a registry-wide rule is not one repository's fix.
    Tag mutability, encryption and the registry's configuration stay as they are.

        remediation:
          action: ecr.enable-scan-on-push
    """

    name = "ecr.enable-scan-on-push"
    service = "ecr"
    permissions = (
        "ecr:BatchGetRepositoryScanningConfiguration",
        "ecr:GetRegistryScanningConfiguration",
        "ecr:PutImageScanningConfiguration",
    )
    summary = "enabled image scanning on push"
    bulk_size: ClassVar[int] = 25  # BatchGetRepositoryScanningConfiguration takes 25 names

    def describe(self, clients: Clients, resource_ids: list[str]) -> list[dict[str, Any]]:
        registry = clients.ecr.get_registry_scanning_configuration()["scanningConfiguration"]
        governs = bool(registry.get("rules")) or registry.get("scanType") == "ENHANCED"
        found = clients.ecr.batch_get_repository_scanning_configuration(repositoryNames=resource_ids)
        return [{**item, "registryRules": governs} for item in found["scanningConfigurations"]]

    def item_id(self, item: dict[str, Any]) -> str:
        return item["repositoryName"]

    def state_of(self, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "scanOnPush": bool(item.get("scanOnPush")),
            "scanFrequency": item.get("scanFrequency") or "MANUAL",
            "registryRules": item["registryRules"],
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        if state["scanFrequency"] in SCANNED or (state["scanOnPush"] and not state["registryRules"]):
            return {}
        if state["registryRules"]:
            raise ValueError(
                "the registry's scanning rules decide this repository's scanning and leave it "
                f"{state['scanFrequency']}: its own scan-on-push flag would change nothing; add a "
                "registry scanning rule whose filter matches it (PutRegistryScanningConfiguration)"
            )
        return {"scanOnPush": True}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.ecr.put_image_scanning_configuration(
            repositoryName=resource_id, imageScanningConfiguration={"scanOnPush": True}
        )

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        clients.ecr.put_image_scanning_configuration(
            repositoryName=resource_id, imageScanningConfiguration={"scanOnPush": before["scanOnPush"]}
        )
