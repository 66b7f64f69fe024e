"""ECR fixes: image scanning."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients


@register
class EnableScanOnPush(Action):
    """Scan every image pushed to a private repository for known vulnerabilities.

    Only the repository's scan-on-push flag changes; tag mutability, encryption and
    the registry's own scanning configuration stay as they are.

        remediation:
          action: ecr.enable-scan-on-push
    """

    name = "ecr.enable-scan-on-push"
    service = "ecr"
    permissions = ("ecr:DescribeRepositories", "ecr:PutImageScanningConfiguration")
    summary = "enabled image scanning on push"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        repository = clients.ecr.describe_repositories(repositoryNames=[resource_id])["repositories"][0]
        return {"scanOnPush": bool(repository.get("imageScanningConfiguration", {}).get("scanOnPush"))}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["scanOnPush"] else {"scanOnPush": True}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.ecr.put_image_scanning_configuration(
            repositoryName=resource_id, imageScanningConfiguration={"scanOnPush": True}
        )

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        clients.ecr.put_image_scanning_configuration(
            repositoryName=resource_id, imageScanningConfiguration={"scanOnPush": before["scanOnPush"]}
        )
