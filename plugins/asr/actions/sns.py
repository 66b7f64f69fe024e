"""SNS fixes: a topic's encryption at rest, and the logging of its deliveries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asr.actions import (
    Action,
    ServiceRole,
    answered,
    register,
    role_name_parameter,
    service_trust,
    with_new_role,
)

if TYPE_CHECKING:
    from asr.aws import Clients


def _attributes(clients: Clients, topic_arn: str) -> dict[str, str]:
    return clients.sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]


def _set(clients: Clients, topic_arn: str, name: str, value: str) -> None:
    """One attribute (SetTopicAttributes takes one at a time); an empty value removes it."""
    clients.sns.set_topic_attributes(TopicArn=topic_arn, AttributeName=name, AttributeValue=value)


@register
class EnableTopicEncryption(Action):
    """Encrypt a topic's messages at rest with a KMS key (SSE-KMS).

    The AWS-managed key ``alias/aws/sns`` needs no key policy work, but its policy cannot
    let AWS services (CloudWatch alarms, EventBridge, S3 notifications) or other accounts
    publish: name a customer managed key whose policy does when they must keep working
    (the playbook is disruptive for that reason). A topic that already has any key is left alone.

        remediation:
          action: sns.enable-topic-encryption
          parameters: {kms_master_key_id: alias/aws/sns}
    """

    name = "sns.enable-topic-encryption"
    service = "sns"
    permissions = ("sns:GetTopicAttributes", "sns:SetTopicAttributes")
    summary = "enabled server-side encryption with KMS key {kms_master_key_id}"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "kms_master_key_id": {"type": "string", "minLength": 1, "default": "alias/aws/sns"},
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        return {"KmsMasterKeyId": _attributes(clients, resource_id).get("KmsMasterKeyId") or None}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["KmsMasterKeyId"] else {"KmsMasterKeyId": self.params["kms_master_key_id"]}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        _set(clients, resource_id, "KmsMasterKeyId", plan["KmsMasterKeyId"])

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        # An empty key id turns server-side encryption off.
        _set(clients, resource_id, "KmsMasterKeyId", "")


# The endpoint kinds whose deliveries SNS can log, as its attribute names spell them.
PROTOCOLS = ("HTTP", "Firehose", "Lambda", "Application", "SQS")
SNS_PRINCIPAL = "sns.amazonaws.com"
LOGGING_POLICY = "service-role/AmazonSNSRole"
# SNS's answer while a role IAM made just now has not reached it (also for a role it cannot assume).
ROLE_REFUSAL = "is not a valid role to allow SNS"


def _names(protocol: str) -> tuple[str, str, str]:
    """A protocol's success role, failure role and success sample rate attributes."""
    return (
        f"{protocol}SuccessFeedbackRoleArn",
        f"{protocol}FailureFeedbackRoleArn",
        f"{protocol}SuccessFeedbackSampleRate",
    )


@register
class EnableDeliveryStatusLogging(Action):
    """Log a topic's delivery status to CloudWatch Logs, for every protocol SNS logs (HTTP/S,
    Firehose, Lambda, platform application endpoints, SQS).

    SNS logs by protocol, not by subscription, and the control (AWS Config's
    sns-topic-message-delivery-notification-enabled, no parameters) reads the topic's settings,
    not its subscriptions: every protocol is set, so a subscription added later is logged too
    and the topic does not fail again. A protocol gets a success and a failure role where it
    lacks one; the roles, and sample rates, it has are kept. Once a protocol has a failure role
    every failed delivery is logged; successes are sampled at ``success_sample_rate`` percent
    (0 by default: every delivery written to CloudWatch Logs costs, and the control does not
    look at the rate). A rate left unset is SNS's 0, and AWS can zero a rate but not remove
    it: read as 0, so that a revert reads back what it put.

    The role ``role_name``, trusted by SNS and holding the AWS managed policy AmazonSNSRole
    (write to CloudWatch Logs), is made by the member-role stack and shared by the account's
    topics. Only
    the account itself can pass it (iam:PassRole), so no other account's topic can use it.

        remediation:
          action: sns.enable-delivery-status-logging
          parameters: {success_sample_rate: 0}
    """

    name = "sns.enable-delivery-status-logging"
    service = "sns"
    permissions = (
        "sns:GetTopicAttributes",
        "sns:SetTopicAttributes",
        "iam:GetRole",
        "iam:ListAttachedRolePolicies",
        "iam:PassRole",
    )
    service_role = ServiceRole(
        service_trust(SNS_PRINCIPAL),
        "Lets SNS log the delivery status of topics' messages to CloudWatch Logs (ASR, for SNS.2)",
        (LOGGING_POLICY,),
    )
    summary = "logged the topic's delivery status to CloudWatch Logs through role {role_name}"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "success_sample_rate": {"type": "integer", "minimum": 0, "maximum": 100, "default": 0},
            "role_name": role_name_parameter("asr-service-sns-delivery-status"),
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        attributes = _attributes(clients, resource_id)
        state: dict[str, Any] = {"TopicArn": resource_id}
        for protocol in PROTOCOLS:
            success, failure, rate = _names(protocol)
            state[success] = attributes.get(success) or None
            state[failure] = attributes.get(failure) or None
            state[rate] = int(attributes.get(rate) or 0)
        return state

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        _, partition, _, _, account, _ = state["TopicArn"].split(":", 5)
        role = f"arn:{partition}:iam::{account}:role/{self.params['role_name']}"
        wanted_rate, plan = self.params["success_sample_rate"], {}
        for protocol in PROTOCOLS:
            success, failure, rate = _names(protocol)
            if not state[success]:
                plan[success] = role
                if state[rate] == 0 and wanted_rate:  # a rate someone chose is kept
                    plan[rate] = wanted_rate
            if not state[failure]:
                plan[failure] = role
        return plan

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        role, fresh = self.ready_role(clients)
        # The role the account has by that name (it may have a path), rather than the one planned.
        values = {
            name: role["Arn"] if name.endswith("RoleArn") else str(value) for name, value in plan.items()
        }

        def set_all() -> None:  # again from the start if SNS refuses the new role: each set is idempotent
            for name, value in values.items():
                _set(clients, resource_id, name, value)

        with_new_role(set_all, fresh, answered("InvalidParameter", saying=ROLE_REFUSAL))

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Put back what the fix set (an empty role ARN removes it, a rate goes back to its
        number). The role stays: other topics share it."""
        for name in self.plan(before):
            value = before[name]
            _set(clients, resource_id, name, "" if value is None else str(value))
