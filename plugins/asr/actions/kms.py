"""KMS fixes: automatic rotation of customer managed keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients


def _why_not_rotatable(key: dict[str, Any]) -> str | None:
    """Why KMS cannot rotate this key automatically, or None when it can."""
    if key.get("KeyManager") != "CUSTOMER":
        return "it is an AWS managed key (AWS rotates those itself)"
    if key.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
        return f"automatic rotation supports only symmetric encryption keys, not {key['KeySpec']}"
    if key.get("Origin", "AWS_KMS") != "AWS_KMS":
        return f"its key material comes from {key['Origin']}, not KMS (imported or in a custom key store)"
    region_config = key.get("MultiRegionConfiguration", {})
    if region_config.get("MultiRegionKeyType") == "REPLICA":
        primary = region_config.get("PrimaryKey", {}).get("Arn", "its primary key")
        return f"it is a multi-Region replica; rotation is set on the primary key {primary}"
    if key.get("KeyState") != "Enabled":
        return f"the key is {key.get('KeyState')}; rotation can be turned on only for an enabled key"
    return None


@register
class EnableKeyRotation(Action):
    """Turn on automatic yearly rotation of a customer managed KMS key's material.

    Rotation keeps old material for decryption, so nothing that uses the key breaks. Keys
    KMS cannot rotate (asymmetric, HMAC, imported material, custom key stores, replicas,
    disabled keys) are reported as failed with the reason rather than attempted.

        remediation:
          action: kms.enable-key-rotation
    """

    name = "kms.enable-key-rotation"
    propagation_seconds = 15.0  # KMS is eventually consistent: a read may show the old rotation
    service = "kms"
    permissions = ("kms:DescribeKey", "kms:GetKeyRotationStatus", "kms:EnableKeyRotation")
    summary = "enabled automatic rotation of the KMS key"
    revert_permissions = ("kms:DisableKeyRotation",)

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        key = clients.kms.describe_key(KeyId=resource_id)["KeyMetadata"]
        reason = _why_not_rotatable(key)
        if reason:
            raise ValueError(f"KMS key {resource_id} cannot be rotated automatically: {reason}")
        status = clients.kms.get_key_rotation_status(KeyId=resource_id)
        return {"KeyRotationEnabled": bool(status["KeyRotationEnabled"])}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {} if state["KeyRotationEnabled"] else {"KeyRotationEnabled": True}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.kms.enable_key_rotation(KeyId=resource_id)

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Rotation off; material rotated meanwhile stays, and still decrypts what it encrypted."""
        clients.kms.disable_key_rotation(KeyId=resource_id)
