"""SNS fixes: encryption at rest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients


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
        attributes = clients.sns.get_topic_attributes(TopicArn=resource_id)["Attributes"]
        return {"KmsMasterKeyId": attributes.get("KmsMasterKeyId") or None}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["KmsMasterKeyId"] else {"KmsMasterKeyId": self.params["kms_master_key_id"]}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.sns.set_topic_attributes(
            TopicArn=resource_id, AttributeName="KmsMasterKeyId", AttributeValue=plan["KmsMasterKeyId"]
        )

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        # An empty key id turns server-side encryption off.
        clients.sns.set_topic_attributes(
            TopicArn=resource_id, AttributeName="KmsMasterKeyId", AttributeValue=""
        )
