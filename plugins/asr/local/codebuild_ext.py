"""CodeBuild project updates as AWS makes them, which moto 5.2.5 cannot.

- moto has no ``UpdateProject``. Here it has: each member given replaces the project's
  (``environment`` as a whole structure, as in AWS: a member left out of it is gone, so a
  caller changing one setting sends the rest back as read); members not given are kept;
  ``badgeEnabled`` sets the badge; the project's ``lastModified`` moves. The environment is
  checked as moto's ``CreateProject`` checks it (and a Docker server's ``status``, which AWS
  only reports, refused), and an unknown project answers ``ResourceNotFoundException``, as
  AWS does.
- moto's ``CreateProject`` keeps the environment it is given (``privilegedMode`` too), and
  ``BatchGetProjects`` answers it: nothing to change there, the test shows it.
"""

from __future__ import annotations

import copy
from typing import Any

from moto.codebuild.exceptions import InvalidInputException, ResourceNotFoundException
from moto.codebuild.models import CodeBuildBackend
from moto.codebuild.responses import (
    CodeBuildResponse,
    _validate_required_params_environment,
    _validate_required_params_service_role,
)
from moto.core.responses import ActionResult
from moto.core.utils import unix_time
from moto.utilities.utils import get_partition

# UpdateProject's members that replace the project's own of the same name (botocore's model).
REPLACED = (
    "description",
    "source",
    "secondarySources",
    "sourceVersion",
    "secondarySourceVersions",
    "artifacts",
    "secondaryArtifacts",
    "cache",
    "environment",
    "serviceRole",
    "timeoutInMinutes",
    "queuedTimeoutInMinutes",
    "encryptionKey",
    "tags",
    "vpcConfig",
    "logsConfig",
    "fileSystemLocations",
    "buildBatchConfig",
    "concurrentBuildLimit",
    "autoRetryLimit",
)


def update_project(self: CodeBuildBackend, name: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Replace the members ``changes`` gives; keep the others."""
    project = self.codebuild_projects.get(name)
    if project is None:
        raise ResourceNotFoundException(
            f"Project cannot be found: arn:{get_partition(self.region_name)}:codebuild:"
            f"{self.region_name}:{self.account_id}:project/{name}"
        )
    metadata = project.project_metadata
    for member in REPLACED:
        if member in changes:
            metadata[member] = copy.deepcopy(changes[member])
    if "serviceRole" in changes:
        project.service_role = changes["serviceRole"]
    if "tags" in changes:
        project.tags = metadata["tags"]
    if "badgeEnabled" in changes:
        metadata["badge"] = {"badgeEnabled": bool(changes["badgeEnabled"])}
    metadata["lastModified"] = unix_time()
    return metadata


def install() -> None:
    def update_project_response(self: CodeBuildResponse) -> ActionResult:
        changes = {member: self._get_param(member) for member in (*REPLACED, "badgeEnabled")}
        changes = {member: value for member, value in changes.items() if value is not None}
        if "environment" in changes:
            if "status" in (changes["environment"].get("dockerServer") or {}):  # reported, never taken
                raise InvalidInputException("dockerServer.status cannot be passed in as an input")
            _validate_required_params_environment(changes["environment"])
        if "serviceRole" in changes:
            _validate_required_params_service_role(self.current_account, self.region, changes["serviceRole"])
        project = self.codebuild_backend.update_project(  # type: ignore[attr-defined]
            self._get_param("name"), changes
        )
        return ActionResult({"project": project})

    CodeBuildBackend.update_project = update_project  # type: ignore[attr-defined]
    CodeBuildResponse.update_project = update_project_response  # type: ignore[attr-defined]
