"""SQS fixes: encryption at rest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients


def _queue_url(clients: Clients, name: str) -> str:
    """The queue's URL in the clients' account, which owns the queue (raises when there is none)."""
    return clients.sqs.get_queue_url(QueueName=name)["QueueUrl"]


@register
class EnableQueueEncryption(Action):
    """Encrypt a queue's messages at rest: SSE-SQS, or SSE-KMS when a key is named.

    SSE-SQS needs no key and no key policy, so producers keep working; a KMS key
    (``kms_master_key_id``) is for those who must control or audit the key. A queue
    already encrypted either way complies and is left alone.

        remediation:
          action: sqs.enable-queue-encryption
          parameters: {kms_master_key_id: ""}   # "" = SSE-SQS
    """

    name = "sqs.enable-queue-encryption"
    propagation_seconds = 60.0  # SetQueueAttributes: "up to 60 seconds" to propagate
    service = "sqs"
    permissions = ("sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:SetQueueAttributes")
    summary = "enabled server-side encryption of the queue"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "kms_master_key_id": {
                "type": "string",
                "default": "",
                "description": "KMS key id, ARN or alias for SSE-KMS; empty for SSE-SQS",
            },
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        attributes = clients.sqs.get_queue_attributes(
            QueueUrl=_queue_url(clients, resource_id),
            AttributeNames=["SqsManagedSseEnabled", "KmsMasterKeyId"],
        )["Attributes"]
        return {
            "SqsManagedSseEnabled": attributes.get("SqsManagedSseEnabled") == "true",
            "KmsMasterKeyId": attributes.get("KmsMasterKeyId") or None,
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        if state["SqsManagedSseEnabled"] or state["KmsMasterKeyId"]:
            return {}
        key = self.params["kms_master_key_id"]
        return {"KmsMasterKeyId": key} if key else {"SqsManagedSseEnabled": True}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        if "KmsMasterKeyId" in plan:
            attributes = {"KmsMasterKeyId": plan["KmsMasterKeyId"]}
        else:
            attributes = {"SqsManagedSseEnabled": "true"}
        clients.sqs.set_queue_attributes(QueueUrl=_queue_url(clients, resource_id), Attributes=attributes)

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Encryption off again (the fix acts only on a queue with neither kind on)."""
        key = self.params["kms_master_key_id"]
        attributes = {"KmsMasterKeyId": ""} if key else {"SqsManagedSseEnabled": "false"}
        clients.sqs.set_queue_attributes(QueueUrl=_queue_url(clients, resource_id), Attributes=attributes)
