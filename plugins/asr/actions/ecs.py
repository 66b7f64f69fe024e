"""ECS fixes: task definitions whose containers may not write to their root filesystem.

A task definition revision cannot be changed: a fix registers a new revision of the family.
Security Hub's ECS.5 (AWS Config's ``ecs-containers-readonly-access``) "only evaluates the
latest active revision of an Amazon ECS task definition" (the rule's documentation), so a
compliant revision registered as the family's latest resolves the finding, and the revision
the finding named may stay ACTIVE.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from asr.actions import Action, ChangedMeanwhile, NotReversible, register

if TYPE_CHECKING:
    from asr.aws import Clients

READ_ONLY = "readonlyRootFilesystem"
TASK_DEFINITION_ARN = re.compile(
    r"^arn:[a-z-]+:ecs:[a-z0-9-]+:\d{12}:task-definition/([A-Za-z0-9_-]{1,255}):([1-9]\d{0,9})$"
)


def revision_of(arn: str) -> tuple[str, int]:
    """The family and revision number a task definition's ARN names."""
    match = TASK_DEFINITION_ARN.match(arn)
    if not match:
        raise ValueError(f"{arn!r} is not the ARN of an ECS task definition revision")
    return match[1], int(match[2])


def latest_active(
    ecs: Any, arn: str, tags: bool = False
) -> tuple[dict[str, Any] | None, list[dict[str, str]]]:
    """The latest ACTIVE revision of the family of ``arn`` (DescribeTaskDefinition by family) and,
    with ``tags``, its tags; None when the family has none. ECS answers a family with no ACTIVE
    revision as it answers one that never was (ClientException): by its name, the two cannot
    be told apart."""
    family, _ = revision_of(arn)
    try:
        answer = ecs.describe_task_definition(
            taskDefinition=family, **({"include": ["TAGS"]} if tags else {})
        )
    except ecs.exceptions.ClientException:
        return None, []
    return answer["taskDefinition"], list(answer.get("tags") or ())


# What says a task definition runs Windows when its runtimePlatform (optional) does not: a
# placement constraint on the instances' OS, an FSx for Windows volume, a Windows base image.
WINDOWS_PLACEMENT = re.compile(
    r"ecs\.os-(?:type|family)\s*(?:(?:==|=~)\s*['\"]?windows|in\s*[\[(][^\])]*windows)", re.IGNORECASE
)
WINDOWS_IMAGE = re.compile(
    r"^mcr\.microsoft\.com/(?:windows|dotnet/framework|powershell:.*windows)", re.IGNORECASE
)


def windows_signs(definition: dict[str, Any]) -> list[str]:
    """Why the definition's containers run Windows, which has no read-only root filesystem."""
    family = ((definition.get("runtimePlatform") or {}).get("operatingSystemFamily") or "").upper()
    signs = [family] if family.startswith("WINDOWS") else []
    signs += [
        f"placement constraint {c['expression']!r}"
        for c in definition.get("placementConstraints") or ()
        if WINDOWS_PLACEMENT.search(c.get("expression") or "")
    ]
    signs += [
        f"FSx for Windows File Server volume {v.get('name')}"
        for v in definition.get("volumes") or ()
        if "fsxWindowsFileServerVolumeConfiguration" in v
    ]
    signs += [
        f"image {c['image']}"
        for c in definition.get("containerDefinitions") or ()
        if WINDOWS_IMAGE.match(c.get("image") or "")
    ]
    return signs


def writable_containers(definition: dict[str, Any]) -> list[str]:
    """The containers that may write to their root filesystem: left out, the setting is false."""
    return [c["name"] for c in definition.get("containerDefinitions") or () if c.get(READ_ONLY) is not True]


def registration(ecs: Any, definition: dict[str, Any], tags: list[dict[str, str]]) -> dict[str, Any]:
    """RegisterTaskDefinition's parameters for a copy of ``definition`` (as DescribeTaskDefinition
    reads it) with every container's root filesystem read-only: each member RegisterTaskDefinition
    takes (botocore's model), so nothing registerable is lost, and nothing ECS only reports
    (ARN, revision, status, requiresAttributes, compatibilities, registeredAt and By,
    deregisteredAt). The tags go too, but for those AWS reserves (``aws:``), which no caller sets."""
    members = ecs.meta.service_model.operation_model("RegisterTaskDefinition").input_shape.members
    sent = {key: copy.deepcopy(value) for key, value in definition.items() if key in members}
    for container in sent["containerDefinitions"]:
        container[READ_ONLY] = True
    own = [tag for tag in tags if not tag["key"].startswith("aws:")]
    if own:
        sent["tags"] = own
    return sent


@register
class RegisterReadOnlyRootRevision(Action):
    """Register a revision of an ECS task definition with every container's root filesystem
    read-only (``readonlyRootFilesystem``), copied from the revision the finding names.

    Everything else RegisterTaskDefinition takes is copied as read: containers, volumes,
    network, roles, sizes, platform, tags. The new revision becomes the family's latest ACTIVE
    one, which alone ECS.5 evaluates: the finding resolves. The finding's revision stays
    ACTIVE (scheduled tasks, RunTask callers and pipelines name revisions by ARN, and
    deregistering it would break them), and no service is moved to the new one (a container
    whose application writes to its root filesystem would crash): its owners deploy it once
    the application writes only to volumes. Disruptive all the same: a family named without a
    revision (RunTask, an EventBridge schedule, ``update-service --task-definition family``)
    now resolves to the new revision, so what starts that way runs read-only.

    A family whose latest ACTIVE revision has every container read-only complies, whoever
    registered it: a second run registers nothing. Refused: a finding's revision that is no
    longer the family's latest ACTIVE one (the newer is what Security Hub evaluates, copying
    the older would undo what changed since, and the newer's own finding is the one to fix);
    a family with no ACTIVE revision (nothing is evaluated; registering one would revive a
    retired family); Windows containers, which do not support a read-only root filesystem
    (told by the runtime platform, else by a placement constraint on the hosts' OS, an FSx for
    Windows File Server volume or a Windows base image: ``windows_signs``).
    The family is read again just before registering. Reverting deregisters the revision the
    fix registered while it is still the family's latest ACTIVE one: tasks already running it
    go on, and a service moved to it meanwhile keeps it (ECS runs and scales INACTIVE revisions).

        remediation:
          action: ecs.register-read-only-root-revision
    """

    name = "ecs.register-read-only-root-revision"
    service = "ecs"
    # RegisterTaskDefinition asks for iam:PassRole on the task and execution roles it names,
    # and for ecs:TagResource when it is sent tags.
    permissions = (
        "ecs:DescribeTaskDefinition",
        "ecs:RegisterTaskDefinition",
        "ecs:TagResource",
        "iam:PassRole",
    )
    revert_permissions = ("ecs:DeregisterTaskDefinition",)
    summary = (
        "registered a revision of the task definition with every container's root filesystem "
        "read-only, now the family's latest; no service was moved to it and the revision found "
        "stays ACTIVE: deploy it once the containers run read-only"
    )
    # "The Amazon ECS API follows an eventual consistency model" (ECS's API reference).
    propagation_seconds = 15.0

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        latest, _ = latest_active(clients.ecs, resource_id)
        return self._state(resource_id, latest)

    def _state(self, resource_id: str, latest: dict[str, Any] | None) -> dict[str, Any]:
        arn = latest["taskDefinitionArn"] if latest else None
        writable = writable_containers(latest) if latest else []
        return {
            "TaskDefinition": resource_id,
            "LatestActiveRevision": arn,
            "Windows": windows_signs(latest) if latest else [],
            "WritableContainers": writable,
            "ReadOnlyRevision": arn if latest and not writable else None,
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        if state["ReadOnlyRevision"]:
            return {}
        found, latest = state["TaskDefinition"], state["LatestActiveRevision"]
        if latest is None:
            raise ValueError(
                f"no revision of {revision_of(found)[0]} is ACTIVE, {found} included (or the family never "
                "was): ECS.5 evaluates none, so the finding goes at Security Hub's next evaluation, "
                "and a new revision would revive a retired family"
            )
        if latest != found:
            raise ValueError(
                f"{found} is no longer its family's latest ACTIVE revision ({latest} is), the only one "
                "ECS.5 evaluates, so the finding goes at Security Hub's next evaluation; a revision "
                f"made from {found} would undo what {latest} changed: fix {latest}'s own finding"
            )
        if state["Windows"]:
            raise ValueError(
                f"{found} runs Windows containers ({', '.join(state['Windows'])}), which do not support "
                "a read-only root filesystem: suppress the finding"
            )
        made = new_revision(found)
        return {"WritableContainers": [], "ReadOnlyRevision": made, "LatestActiveRevision": made}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        """Read the family again just before: a revision registered since must not be
        overtaken by a copy of the one before it (planned again, it is refused or complies)."""
        latest, tags = latest_active(clients.ecs, resource_id, tags=True)
        if latest is None or self._state(resource_id, latest) != state:
            raise ChangedMeanwhile(
                f"the family of {resource_id} got another latest revision since it was read"
            )
        clients.ecs.register_task_definition(**registration(clients.ecs, latest, tags))

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Deregister the revision the fix registered (``_fix_revision``); deregistering stops
        no task, and the copied revision is the family's latest again."""
        made = self._fix_revision(clients.ecs, resource_id, before["LatestActiveRevision"])
        if made is not None:
            clients.ecs.deregister_task_definition(taskDefinition=made)

    def check_revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        self._fix_revision(clients.ecs, resource_id, before["LatestActiveRevision"])

    @staticmethod
    def _fix_revision(ecs: Any, resource_id: str, copied: str) -> str | None:
        """The ARN of the revision the fix registered: the family's latest ACTIVE one, if it is
        newer than ``copied`` (the revision the fix copied) and complies; None when there is
        none (deregistered, or overtaken, since: a rollback has checked the family reads as the
        fix left it). NotReversible when it is not what the fix makes of ``copied``, or when
        ``copied`` is no longer ACTIVE: the family would fall back to an older revision (an
        older image), or to none."""
        latest, _ = latest_active(ecs, resource_id)
        if latest is None or writable_containers(latest) or not _newer(latest["taskDefinitionArn"], copied):
            return None
        try:
            source = ecs.describe_task_definition(taskDefinition=copied)["taskDefinition"]
        except ecs.exceptions.ClientException:  # deleted since: gone, as INACTIVE as can be
            source = {"status": "INACTIVE"}
        if source.get("status") != "ACTIVE":
            raise NotReversible(
                f"{copied}, the revision the fix copied, is deregistered since: without the fix's "
                f"revision the family's latest would be an older revision, or none; left as it is"
            )
        if registration(ecs, latest, []) != registration(ecs, source, []):
            raise NotReversible(
                f"the family's latest revision, {latest['taskDefinitionArn']}, is not what the fix made "
                f"of {copied}: left as it is"
            )
        return latest["taskDefinitionArn"]


def new_revision(arn: str) -> str:
    """What a plan says of the revision a fix registers, before ECS numbers it."""
    return f"a new revision of {revision_of(arn)[0]}"


def _newer(arn: str, than: str) -> bool:
    """Whether ``arn`` is a later revision of the family of ``than``."""
    (family, number), (of, before) = revision_of(arn), revision_of(than)
    return family == of and number > before
