"""Lambda fixes: public resource-policy statements."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from asr.actions import Action, NotReversible, register

if TYPE_CHECKING:
    from asr.aws import Clients

# Condition keys that tie a public principal to one caller; compared lower-cased, as IAM does.
RESTRICTING_KEYS = frozenset({"aws:sourceaccount", "aws:sourcearn"})
# The conditions AddPermission writes, by (operator, lower-cased key): its parameter for each.
ADD_PERMISSION_CONDITIONS = {
    ("StringEquals", "aws:principalorgid"): "PrincipalOrgID",
    ("StringEquals", "lambda:functionurlauthtype"): "FunctionUrlAuthType",
    ("StringEquals", "lambda:eventsourcetoken"): "EventSourceToken",
}


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


def add_permission_args(statement: dict[str, Any]) -> dict[str, Any]:
    """The AddPermission call that writes this public statement again; NotReversible when it
    has a shape AddPermission cannot write (several actions, other conditions)."""
    action = statement.get("Action")
    if not isinstance(action, str):
        raise NotReversible(f"statement {statement.get('Sid')}: AddPermission takes one action, not {action}")
    args = {"StatementId": statement["Sid"], "Action": action, "Principal": "*"}
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, value in keys.items():
            param = ADD_PERMISSION_CONDITIONS.get((operator, key.lower()))
            if param is None or not isinstance(value, str):
                raise NotReversible(
                    f"statement {statement['Sid']}: AddPermission cannot write the condition {operator} {key}"
                )
            args[param] = value
    return args


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
    revert_permissions = ("lambda:AddPermission",)

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

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Add the statements back through AddPermission, each checked first so that none is
        added unless all can be."""
        calls = [add_permission_args(statement) for statement in before["PublicStatements"]]
        for args in calls:
            clients["lambda"].add_permission(FunctionName=resource_id, **args)
