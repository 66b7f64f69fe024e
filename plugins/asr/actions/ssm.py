"""SSM fixes: the account's block on public sharing of SSM documents, documents shared
publicly, and EC2 instances Systems Manager cannot manage."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from asr.actions import (
    Action,
    BulkRead,
    ServiceRole,
    aws_policy_arn,
    has_policy,
    register,
    role_name_parameter,
    service_trust,
    with_new_role,
)

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
        """Whether ``all`` is among the shares, and at which version (for a revert). Every page
        is read (botocore has no paginator for it): should a document ever list named shares
        too, ``all`` may come after a page of them."""
        ids: list[str] = []
        shares: list[dict[str, Any]] = []
        asked = {"Name": resource_id, "PermissionType": "Share"}
        while True:
            page = clients.ssm.describe_document_permission(**asked)
            ids += page.get("AccountIds", [])
            shares += page.get("AccountSharingInfoList", [])
            if not page.get("NextToken"):
                break
            asked["NextToken"] = page["NextToken"]
        public = [share for share in shares if share.get("AccountId") == EVERYONE]
        return {
            "SharedWithEveryone": bool(public) or EVERYONE in ids,
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


# What the SSM agent needs to register the instance and take commands (AWS managed).
CORE_POLICY = "AmazonSSMManagedInstanceCore"
# The association states in which an instance has (or is getting) its instance profile.
LIVE_ASSOCIATION = ("associating", "associated")
# Instances past fixing: EC2 refuses to associate a profile with them.
ENDING = ("shutting-down", "terminated")
# Instance ids one DescribeInstanceInformation filter takes.
INFORMATION_FILTER_LIMIT = 100


def _profile_name(arn: str) -> str:
    """An instance profile ARN's name (the last part, after any path)."""
    return arn.rsplit("/", 1)[-1]


def _live_associations(ec2: Any, instance_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each instance's profile association (one at most in these states), by instance id.

    The states are picked here, not by a filter: EC2 takes 200 filter values a call in all,
    and a bulk read's 200 ids use them up."""
    pages = ec2.get_paginator("describe_iam_instance_profile_associations").paginate(
        Filters=[{"Name": "instance-id", "Values": instance_ids}]
    )
    return {
        association["InstanceId"]: association
        for page in pages
        for association in page["IamInstanceProfileAssociations"]
        if association.get("State") in LIVE_ASSOCIATION
    }


def _registered(ssm: Any, instance_ids: list[str]) -> set[str]:
    """The instances among ``instance_ids`` that Systems Manager lists: their agent has
    registered them (what SSM.1 checks). An id Systems Manager refuses (an instance that
    ended meanwhile: InvalidInstanceId) fails the whole ask, so that chunk is asked one id at
    a time, a refused one counting as not registered."""

    def listed(ids: list[str]) -> set[str]:
        pages = ssm.get_paginator("describe_instance_information").paginate(
            Filters=[{"Key": "InstanceIds", "Values": ids}]
        )
        return {i["InstanceId"] for page in pages for i in page["InstanceInformationList"]}

    found: set[str] = set()
    for start in range(0, len(instance_ids), INFORMATION_FILTER_LIMIT):
        chunk = instance_ids[start : start + INFORMATION_FILTER_LIMIT]
        try:
            found |= listed(chunk)
        except ClientError as exc:
            if not _refused_id(exc):
                raise
            for one in chunk:
                try:
                    found |= listed([one])
                except ClientError as single:
                    if not _refused_id(single):
                        raise
    return found


def _refused_id(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "InvalidInstanceId"


def _profile_unready(exc: Exception) -> bool:
    """EC2's answer while an instance profile IAM made moments ago has not reached it:
    InvalidParameterValue, "Invalid IAM Instance Profile ARN" (or name)."""
    if not isinstance(exc, ClientError):
        return False
    error = exc.response.get("Error", {})
    message = str(error.get("Message", "")).lower()
    return error.get("Code") == "InvalidParameterValue" and (
        "instance profile" in message or "iaminstanceprofile" in message
    )


@register
class EnableInstanceManagement(BulkRead):
    """Let Systems Manager manage an EC2 instance: give its role AmazonSSMManagedInstanceCore.

    The SSM agent (preinstalled on most AWS images) registers the instance once the
    instance's role allows it. An instance with an instance profile gets the policy on that
    profile's role; a profile without a role is refused (which role belongs there is not
    ours to guess). An instance with no profile gets the profile ``role_name``, holding the
    role of that name (trusting EC2, with the policy), which the member-role stack makes and
    every instance this fixes shares. The agent must still reach the SSM endpoints (internet or
    VPC endpoints): that is network, not IAM, and left as it is. A fixed instance Systems
    Manager does not list yet is written back NOTIFIED, not RESOLVED (``awaits``). An instance whose role
    already has the policy but that Systems Manager does not list (SSM.1 checks the list)
    is FAILED with that reason, not called compliant.

    Roles are shared: attaching the policy to an instance's existing role gives it to every
    instance (and anything else) using that role, as AWS's own remediation does.

        remediation:
          action: ssm.enable-instance-management
          parameters: {role_name: asr-service-ssm-instance}
    """

    name = "ssm.enable-instance-management"
    service = "ec2"
    # IAM is eventually consistent: a new attachment or association may not list at once.
    propagation_seconds = 15.0
    permissions = (
        "ec2:DescribeInstances",
        "ec2:DescribeIamInstanceProfileAssociations",
        "ec2:AssociateIamInstanceProfile",
        "ssm:DescribeInstanceInformation",
        "iam:GetInstanceProfile",
        "iam:ListAttachedRolePolicies",
        "iam:AttachRolePolicy",
        "iam:GetRole",
        "iam:PassRole",
    )
    service_role = ServiceRole(
        service_trust("ec2.${AWS::URLSuffix}"),
        "Lets Systems Manager manage EC2 instances (ASR, for SSM.1)",
        (CORE_POLICY,),
        instance_profile=True,
    )
    summary = (
        "gave the instance's role AmazonSSMManagedInstanceCore (instance profile {role_name} if it had none)"
    )
    revert_permissions = ("iam:DetachRolePolicy", "ec2:DisassociateIamInstanceProfile")
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"role_name": role_name_parameter("asr-service-ssm-instance")},
    }

    def describe(self, clients: Clients, resource_ids: list[str]) -> list[dict[str, Any]]:
        """One DescribeInstances (it names a missing id) and one association listing for the
        instances; then IAM once per distinct profile and role among them, and Systems
        Manager's list for the instances whose role already allows its agent."""
        ec2, iam = clients.ec2, clients.iam
        pages = ec2.get_paginator("describe_instances").paginate(InstanceIds=resource_ids)
        instances = [
            i for page in pages for reservation in page["Reservations"] for i in reservation["Instances"]
        ]
        associations = _live_associations(ec2, [i["InstanceId"] for i in instances])
        policy = aws_policy_arn(iam, CORE_POLICY)
        roles: dict[str, str | None] = {}
        managed: dict[str, bool] = {}
        items = []
        for instance in instances:
            association = associations.get(instance["InstanceId"])
            profile = _profile_name(association["IamInstanceProfile"]["Arn"]) if association else None
            if profile is not None and profile not in roles:
                held = iam.get_instance_profile(InstanceProfileName=profile)["InstanceProfile"].get(
                    "Roles", []
                )
                roles[profile] = held[0]["RoleName"] if held else None
            role = roles[profile] if profile is not None else None
            if role is not None and role not in managed:
                managed[role] = has_policy(iam, role, policy)
            items.append(
                {
                    "InstanceId": instance["InstanceId"],
                    "State": instance.get("State", {}).get("Name"),
                    "InstanceProfile": profile,
                    "Role": role,
                    "ManagedInstanceCore": managed.get(role, False) if role is not None else False,
                }
            )
        allowed = [i["InstanceId"] for i in items if i["ManagedInstanceCore"] and i["State"] not in ENDING]
        registered = _registered(clients.ssm, allowed) if allowed else set()
        for item in items:
            item["Registered"] = item["InstanceId"] in registered
        return items

    def item_id(self, item: dict[str, Any]) -> str:
        return item["InstanceId"]

    def state_of(self, item: dict[str, Any]) -> dict[str, Any]:
        if item["State"] in ENDING:
            raise ValueError(
                f"instance {item['InstanceId']} is {item['State']}: no profile can be given to it"
            )
        if item["InstanceProfile"] is not None and item["Role"] is None:
            raise ValueError(
                f"instance profile {item['InstanceProfile']} has no role: add the instance's role to it "
                "(which role belongs there is not for ASR to guess)"
            )
        return {
            key: item[key]
            for key in ("State", "InstanceProfile", "Role", "ManagedInstanceCore", "Registered")
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        if state["ManagedInstanceCore"]:
            return {}
        if state["InstanceProfile"] is None:
            name = self.params["role_name"]
            return {"InstanceProfile": name, "Role": name, "ManagedInstanceCore": True}
        return {"ManagedInstanceCore": True}

    def unmet(self, state: dict[str, Any]) -> str | None:
        if state.get("Registered", True):
            return None
        if state["State"] != "running":
            return (
                f"its role {state['Role']} already has {CORE_POLICY}, but the instance is {state['State']}: "
                "Systems Manager lists an instance only once its SSM agent runs and registers"
            )
        return (
            f"its role {state['Role']} already has {CORE_POLICY}, but Systems Manager does not list the "
            "instance: its SSM agent is not running or cannot reach the Systems Manager endpoints "
            "(ssm, ssmmessages, ec2messages: internet access or VPC endpoints)"
        )

    def awaits(self, state: dict[str, Any]) -> str | None:
        if state.get("Registered", True):
            return None
        return (
            "Systems Manager does not list the instance yet: its SSM agent registers it once it has "
            "the role's credentials (minutes), if it runs and reaches the Systems Manager endpoints "
            "(ssm, ssmmessages, ec2messages); Security Hub resolves the finding when its check passes"
        )

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        if state["InstanceProfile"] is None:
            self._associate(clients, resource_id)
        else:
            clients.iam.attach_role_policy(
                RoleName=state["Role"], PolicyArn=aws_policy_arn(clients.iam, CORE_POLICY)
            )

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Undo what the fix did to this instance: take the policy off the instance's own role,
        or take away the profile it associated. The shared role and profile ``role_name`` stay,
        with the policy: other instances may use them. A profile someone associated since is
        left alone."""
        if before["InstanceProfile"] is None:
            association = _live_associations(clients.ec2, [resource_id]).get(resource_id)
            if (
                association
                and _profile_name(association["IamInstanceProfile"]["Arn"]) == self.params["role_name"]
            ):
                clients.ec2.disassociate_iam_instance_profile(AssociationId=association["AssociationId"])
        elif not before["ManagedInstanceCore"]:
            iam = clients.iam
            with contextlib.suppress(iam.exceptions.NoSuchEntityException):  # detached since
                iam.detach_role_policy(RoleName=before["Role"], PolicyArn=aws_policy_arn(iam, CORE_POLICY))

    def _associate(self, clients: Clients, resource_id: str) -> None:
        """Give the instance the shared profile. EC2 refuses a profile IAM made moments ago
        (the stack may have just been deployed): that is tried again."""
        _, fresh = self.ready_role(clients)
        with_new_role(
            lambda: clients.ec2.associate_iam_instance_profile(
                IamInstanceProfile={"Name": self.params["role_name"]}, InstanceId=resource_id
            ),
            fresh,
            _profile_unready,
        )
