"""Lambda fixes: public resource-policy statements."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients

# Condition keys that tie a public principal to one caller; compared lower-cased, as IAM does.
RESTRICTING_KEYS = frozenset({"aws:sourceaccount", "aws:sourcearn"})


def _is_public_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        aws = principal.get("AWS")
        return aws == "*" or (isinstance(aws, list) and "*" in aws)
    return False


def _restricts_caller(condition: dict[str, Any]) -> bool:
    """Whether a condition pins the caller by source account or ARN.

    Negated operators (``StringNotEquals``) and ``...IfExists`` ones let through a
    request without the key, so they do not restrict anyone.
    """
    for operator, keys in condition.items():
        if "Not" in operator or operator.endswith("IfExists") or not isinstance(keys, dict):
            continue
        if any(key.lower() in RESTRICTING_KEYS for key in keys):
            return True
    return False


def is_public_statement(statement: dict[str, Any]) -> bool:
    """An Allow statement anyone can use: a ``*`` principal with no source restriction."""
    return (
        statement.get("Effect") == "Allow"
        and _is_public_principal(statement.get("Principal"))
        and not _restricts_caller(statement.get("Condition") or {})
    )


@register
class RemovePublicPolicyStatements(Action):
    """Remove the statements of a function's resource policy that let anyone call it.

    A statement with a ``*`` principal stays when a condition on ``aws:SourceAccount`` or
    ``aws:SourceArn`` ties it to one caller (the shape AWS services' triggers use); every
    other statement is kept as it is. Only the unqualified function's policy is changed.

        remediation:
          action: lambda.remove-public-policy-statements
    """

    name = "lambda.remove-public-policy-statements"
    service = "lambda"
    permissions = ("lambda:GetPolicy", "lambda:GetFunctionConfiguration", "lambda:RemovePermission")
    summary = "removed the resource-policy statements that allowed anyone to call the function"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        client = clients["lambda"]
        try:
            policy = json.loads(client.get_policy(FunctionName=resource_id)["Policy"])
        except client.exceptions.ResourceNotFoundException:
            # Same error for "no policy" and "no function": tell them apart (raises if missing).
            client.get_function_configuration(FunctionName=resource_id)
            policy = {}
        statements = policy.get("Statement", [])
        if isinstance(statements, dict):
            statements = [statements]
        return {"PublicStatements": [s for s in statements if is_public_statement(s)]}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"PublicStatements": []} if state["PublicStatements"] else {}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        missing_sid = [s for s in state["PublicStatements"] if not s.get("Sid")]
        if missing_sid:
            raise ValueError(f"public statement without a Sid cannot be removed: {missing_sid[0]}")
        for statement in state["PublicStatements"]:
            clients["lambda"].remove_permission(FunctionName=resource_id, StatementId=statement["Sid"])
