"""CodeBuild fixes: a build project's environment, sent back whole with one setting changed.

UpdateProject takes the environment as one structure (``type``, ``image`` and
``computeType`` required) and replaces the project's with it: a member left out is not
kept (its environment variables, say, are dropped). So a
change reads the project just before it, and sends its environment back as read with only
``privilegedMode`` changed. CodeBuild has no conditional update: an edit someone makes
between that read and the update is lost, a window of one call. What comes back is what
botocore's model knows: a member CodeBuild added after the installed botocore would be reset
by the update, so botocore is kept current (``constraints.txt``).
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from asr.actions import BulkRead, ChangedMeanwhile, register

if TYPE_CHECKING:
    from asr.aws import Clients

PRIVILEGED = "PrivilegedMode"
PROJECT_ARN = re.compile(
    r"^arn:[a-z-]+:codebuild:[a-z0-9-]+:\d{12}:project/([A-Za-z0-9][A-Za-z0-9_-]{1,149})$"
)


def sendable_environment(environment: dict[str, Any], privileged: bool) -> dict[str, Any]:
    """The environment as BatchGetProjects read it, fit to send to UpdateProject with
    ``privilegedMode`` set: every member kept (UpdateProject resets what it is not sent),
    except the Docker server's ``status``, which CodeBuild reports and refuses as input."""
    sent = copy.deepcopy(environment)
    if isinstance(sent.get("dockerServer"), dict):
        sent["dockerServer"].pop("status", None)
    sent["privilegedMode"] = privileged
    return sent


@register
class DisablePrivilegedMode(BulkRead):
    """Turn off privileged mode in a CodeBuild project's build environment.

    Privileged mode runs the build container with the host's privileges so that it can run
    its own Docker daemon (to build images): a buildspec, or a dependency it runs, can then
    reach the host. Without it, builds that start or talk to a Docker daemon fail, hence an
    approval. Every other setting of the environment (image, compute, variables, registry
    credentials, certificate, fleet) goes back as read; nothing outside it is sent. A
    project whose mode is off already (or unset: off by default) gets no call. Reverting
    turns privileged mode back on, the rest of the environment again as it reads then.

        remediation:
          action: codebuild.disable-privileged-mode
    """

    name = "codebuild.disable-privileged-mode"
    service = "codebuild"
    permissions = ("codebuild:BatchGetProjects", "codebuild:UpdateProject")
    summary = "turned off privileged mode in the CodeBuild project's environment"
    bulk_size = 100  # BatchGetProjects takes at most 100 names

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        if not PROJECT_ARN.match(resource_id):
            raise ValueError(f"{resource_id!r} is not the ARN of a CodeBuild project")
        return super().read(clients, resource_id)

    def describe(self, clients: Clients, resource_ids: list[str]) -> list[dict[str, Any]]:
        """The projects these ARNs name. Anything else is left out (a name would find a project
        of this account and Region by name alone), to fail its own read saying why."""
        names = [resource_id for resource_id in resource_ids if PROJECT_ARN.match(resource_id)]
        if not names:
            return []
        return list(clients.codebuild.batch_get_projects(names=names).get("projects") or ())

    def item_id(self, item: dict[str, Any]) -> str:
        return str(item["arn"])

    def state_of(self, item: dict[str, Any]) -> dict[str, Any]:
        return {PRIVILEGED: bool((item.get("environment") or {}).get("privilegedMode"))}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {PRIVILEGED: False} if state[PRIVILEGED] else {}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        if not self._set(clients, resource_id, plan[PRIVILEGED]):
            raise ChangedMeanwhile("the project's privileged mode was turned off since it was read")

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        self._set(clients, resource_id, bool(before[PRIVILEGED]))

    def _set(self, clients: Clients, resource_id: str, privileged: bool) -> bool:
        """Send the project's environment, read now, back with privileged mode ``privileged``;
        False (nothing sent) when it is so already."""
        projects = self.describe(clients, [resource_id])
        if not projects:
            raise LookupError(f"{resource_id} was not found")
        project = projects[0]
        environment = project.get("environment") or {}
        if bool(environment.get("privilegedMode")) == privileged:
            return False
        clients.codebuild.update_project(
            name=project["name"], environment=sendable_environment(environment, privileged)
        )
        return True
