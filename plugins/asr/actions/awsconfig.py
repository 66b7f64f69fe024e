"""AWS Config fixes: a recorder for every resource type, delivering to a bucket."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from asr.actions import Action, answered, made_lately, register, with_new_role
from asr.actions.cloudtrail import BUCKET_TEMPLATE, LOG_BUCKET_PERMISSIONS, log_bucket_name
from asr.actions.s3 import ensure_log_bucket

if TYPE_CHECKING:
    from asr.aws import Clients

CONFIG_SERVICE = "config.amazonaws.com"
SERVICE_LINKED_PATH = f"/aws-service-role/{CONFIG_SERVICE}/"
SERVICE_LINKED_ROLE = "AWSServiceRoleForConfig"


def _config_bucket_statements(partition: str, bucket: str, account: str) -> list[dict[str, Any]]:
    """What AWS Config needs to deliver snapshots and history: check the bucket, write under AWSLogs/."""
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    service = {"Service": CONFIG_SERVICE}
    source = {"AWS:SourceAccount": account}
    return [
        {
            "Sid": "ASRConfigBucketPermissionsCheck",
            "Effect": "Allow",
            "Principal": service,
            "Action": "s3:GetBucketAcl",
            "Resource": bucket_arn,
            "Condition": {"StringEquals": source},
        },
        {
            "Sid": "ASRConfigBucketExistenceCheck",
            "Effect": "Allow",
            "Principal": service,
            "Action": "s3:ListBucket",
            "Resource": bucket_arn,
            "Condition": {"StringEquals": source},
        },
        {
            "Sid": "ASRConfigBucketDelivery",
            "Effect": "Allow",
            "Principal": service,
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/AWSLogs/{account}/Config/*",
            "Condition": {"StringEquals": {**source, "s3:x-amz-acl": "bucket-owner-full-control"}},
        },
    ]


def _service_linked_role(iam: Any) -> tuple[str, bool]:
    """AWS Config's service-linked role, created if the account has none yet, and whether it
    was made lately (and may not be usable yet). AWS names it: read by that name, no listing
    of the account's roles is needed."""
    try:
        role = iam.get_role(RoleName=SERVICE_LINKED_ROLE)["Role"]
        return str(role["Arn"]), made_lately(role)
    except iam.exceptions.NoSuchEntityException:
        pass
    try:
        return str(iam.create_service_linked_role(AWSServiceName=CONFIG_SERVICE)["Role"]["Arn"]), True
    except (iam.exceptions.InvalidInputException, iam.exceptions.EntityAlreadyExistsException):
        # The fix of another region of this account created it meanwhile: AWS allows one.
        return str(iam.get_role(RoleName=SERVICE_LINKED_ROLE)["Role"]["Arn"]), True


def _mode(state: dict[str, Any]) -> dict[str, Any]:
    """The recorder's recording mode as read, for a put that must keep it."""
    return {"recordingMode": state["RecordingMode"]} if state.get("RecordingMode") else {}


@register
class EnableConfigRecorder(Action):
    """Record every supported resource type with AWS Config in one Region, and deliver it.

    A Region has one customer recorder: an existing one keeps its name and is changed to
    record all resource types (with the service-linked role when
    ``use_service_linked_role``) and started. Without a delivery channel, one is created
    to ``bucket_name`` (created private and encrypted, with a policy Config can write
    through); an existing channel is kept.

        remediation:
          action: config.enable-recorder
          parameters: {bucket_name: "asr-config-{account_id}-{region}"}
    """

    name = "config.enable-recorder"
    service = "config"
    permissions = (
        "config:DescribeConfigurationRecorders",
        "config:DescribeConfigurationRecorderStatus",
        "config:DescribeDeliveryChannels",
        "config:PutConfigurationRecorder",
        "config:PutDeliveryChannel",
        "config:StartConfigurationRecorder",
        "iam:GetRole",
        "iam:CreateServiceLinkedRole",
        "iam:PassRole",
        *LOG_BUCKET_PERMISSIONS,
    )
    summary = "enabled the AWS Config recorder for all resource types, delivering to S3"
    revert_permissions = (
        "config:StopConfigurationRecorder",
        "config:DeleteDeliveryChannel",
        "config:DeleteConfigurationRecorder",
    )
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "recorder_name": {"type": "string", "minLength": 1, "maxLength": 256, "default": "default"},
            "delivery_channel_name": {
                "type": "string",
                "minLength": 1,
                "maxLength": 256,
                "default": "default",
            },
            "bucket_name": {**BUCKET_TEMPLATE, "default": "asr-config-{account_id}-{region}"},
            "include_global_resource_types": {"type": "boolean", "default": True},
            "use_service_linked_role": {"type": "boolean", "default": True},
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        config = clients.config
        # Service-linked recorders (servicePrincipal set) belong to other services; leave them be.
        recorders = [
            r
            for r in config.describe_configuration_recorders()["ConfigurationRecorders"]
            if not r.get("servicePrincipal")
        ]
        recorder = recorders[0] if recorders else {}
        statuses = (
            config.describe_configuration_recorder_status(ConfigurationRecorderNames=[recorder["name"]])[
                "ConfigurationRecordersStatus"
            ]
            if recorder
            else []
        )
        channels = config.describe_delivery_channels()["DeliveryChannels"]
        group = recorder.get("recordingGroup") or {}
        return {
            "RecorderName": recorder.get("name"),
            "RoleARN": recorder.get("roleARN"),
            "RecordingGroup": group,
            # Each put replaces the whole recorder: a mode it leaves out goes back to continuous.
            "RecordingMode": recorder.get("recordingMode"),
            "AllSupported": bool(group.get("allSupported")),
            "ServiceLinkedRole": SERVICE_LINKED_PATH in (recorder.get("roleARN") or ""),
            "Recording": bool(statuses and statuses[0].get("recording")),
            "DeliveryChannel": channels[0]["name"] if channels else None,
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        wanted: dict[str, Any] = {"AllSupported": True, "Recording": True}
        if self.params["use_service_linked_role"]:
            wanted["ServiceLinkedRole"] = True
        plan = {key: value for key, value in wanted.items() if state[key] != value}
        if not state["DeliveryChannel"]:
            plan["DeliveryChannel"] = self.params["delivery_channel_name"]
        return plan

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        config, account = clients.config, resource_id
        recorder = state["RecorderName"] or self.params["recorder_name"]
        if not state["RecorderName"] or "AllSupported" in plan or "ServiceLinkedRole" in plan:
            keep_role = state["RoleARN"] and not self.params["use_service_linked_role"]
            group = (
                state["RecordingGroup"]
                if state["AllSupported"]
                else {
                    "allSupported": True,
                    "includeGlobalResourceTypes": self.params["include_global_resource_types"],
                }
            )
            role, fresh = (state["RoleARN"], False) if keep_role else _service_linked_role(clients.iam)
            recorder_settings = {"name": recorder, "roleARN": role, "recordingGroup": group, **_mode(state)}
            with_new_role(
                lambda: config.put_configuration_recorder(ConfigurationRecorder=recorder_settings),
                fresh,
                answered("InvalidRoleException"),  # Config's answer to a role it cannot use
            )
        if "DeliveryChannel" in plan:
            s3 = clients.s3
            bucket = log_bucket_name(self.params["bucket_name"], account, s3.meta.region_name)
            wrote = ensure_log_bucket(
                s3, bucket, _config_bucket_statements(s3.meta.partition, bucket, account)
            )
            # Config checks the bucket policy as it is now: written just above, it may not
            # have reached Config yet.
            with_new_role(
                lambda: config.put_delivery_channel(
                    DeliveryChannel={"name": plan["DeliveryChannel"], "s3BucketName": bucket}
                ),
                wrote,
                answered("InsufficientDeliveryPolicyException"),
            )
        if "Recording" in plan:
            config.start_configuration_recorder(ConfigurationRecorderName=recorder)

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Stop, delete or put back what the fix started, created or changed, in the order Config
        allows (a channel goes only once recording stopped). The bucket and the service-linked
        role stay, with what was delivered meanwhile."""
        config = clients.config
        recorder = before["RecorderName"] or self.params["recorder_name"]
        # A fix that failed part-way may not have got to what these undo: gone is done.
        gone = (
            config.exceptions.NoSuchConfigurationRecorderException,
            config.exceptions.NoSuchDeliveryChannelException,
        )
        if not before["Recording"]:
            with contextlib.suppress(*gone):
                config.stop_configuration_recorder(ConfigurationRecorderName=recorder)
        if not before["DeliveryChannel"]:
            with contextlib.suppress(*gone):
                config.delete_delivery_channel(DeliveryChannelName=self.params["delivery_channel_name"])
        if not before["RecorderName"]:
            with contextlib.suppress(*gone):
                config.delete_configuration_recorder(ConfigurationRecorderName=recorder)
            return
        changed = self.plan(before)
        if "AllSupported" not in changed and "ServiceLinkedRole" not in changed:
            return  # the fix left the recorder's settings as they were
        # Only what the fix changed goes back; a recording mode set since stays.
        now = self.read(clients, resource_id)
        config.put_configuration_recorder(
            ConfigurationRecorder={
                "name": recorder,
                "roleARN": before["RoleARN"] if "ServiceLinkedRole" in changed else now["RoleARN"],
                "recordingGroup": before["RecordingGroup"]
                if "AllSupported" in changed
                else now["RecordingGroup"],
                **_mode(now),
            }
        )
