"""Lambda fixes: public resource-policy statements."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from asr.actions import Action, NotReversible, register

if TYPE_CHECKING:
    from asr.aws import Clients

# Condition keys that tie a public principal to fixed callers (AWS Config: "must grant access
# only to fixed values"): the source, or the calling principal's account, organization or ARN,
# as add-permission --principal-org-id writes it. Compared lower-cased, as IAM does.
RESTRICTING_KEYS = frozenset(
    {
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:sourceowner",
        "aws:principalaccount",
        "aws:principalorgid",
        "aws:principalarn",
    }
)
# S3 may invoke a function for a bucket of any account: only the bucket's account pins it.
S3_RESTRICTING_KEYS = frozenset({"aws:sourceaccount"})
S3_PRINCIPAL = "s3.amazonaws.com"
# Operators that match only the values they list (a wildcard in a value is checked apart).
FIXED_VALUE_OPERATORS = frozenset({"StringEquals", "StringLike", "ArnEquals", "ArnLike"})
# The conditions AddPermission writes, by (operator, lower-cased key): its parameter for each.
ADD_PERMISSION_CONDITIONS = {
    ("StringEquals", "aws:principalorgid"): "PrincipalOrgID",
    ("StringEquals", "lambda:functionurlauthtype"): "FunctionUrlAuthType",
    # Since October 2025 a public function URL also needs lambda:InvokeFunction with this.
    ("Bool", "lambda:invokedviafunctionurl"): "InvokedViaFunctionUrl",
    ("StringEquals", "lambda:eventsourcetoken"): "EventSourceToken",
    ("StringEquals", "aws:sourceaccount"): "SourceAccount",
    ("ArnLike", "aws:sourcearn"): "SourceArn",
}


def _strings(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _is_fixed(value: Any) -> bool:
    """A value that names one thing: no wildcard and no policy variable."""
    return isinstance(value, str) and bool(value) and not any(c in value for c in "*?") and "${" not in value


def _is_public_principal(principal: Any) -> bool:
    """Empty, ``*``, or an AWS principal with a wildcard in it (AWS Config's definition)."""
    if principal in ("*", "", None, {}):
        return True
    if isinstance(principal, dict) and "AWS" in principal:
        return any(not isinstance(p, str) or "*" in p for p in _strings(principal["AWS"]))
    return False


def _is_s3_principal(principal: Any) -> bool:
    return isinstance(principal, dict) and S3_PRINCIPAL in _strings(principal.get("Service"))


def _restricts_caller(condition: dict[str, Any], keys: frozenset[str] = RESTRICTING_KEYS) -> bool:
    """Whether a condition pins the caller to fixed values of one of ``keys``.

    Negated operators (``StringNotEquals``), ``...IfExists`` ones and set operators let
    through a request without the key, and a wildcard or variable in a value lets through
    more than one caller: none of them restricts anyone.
    """
    for operator, clauses in condition.items():
        if operator not in FIXED_VALUE_OPERATORS or not isinstance(clauses, dict):
            continue
        for key, value in clauses.items():
            if key.lower() in keys and all(_is_fixed(v) for v in _strings(value)):
                return True
    return False


def _add_permission_principal(statement: dict[str, Any]) -> str:
    principal = statement.get("Principal")
    if principal == "*" or principal == {"AWS": "*"}:
        return "*"
    if principal == {"Service": S3_PRINCIPAL}:
        return S3_PRINCIPAL
    raise NotReversible(
        f"statement {statement.get('Sid')}: AddPermission cannot write the principal {principal}"
    )


def add_permission_args(statement: dict[str, Any]) -> dict[str, Any]:
    """The AddPermission call that writes this public statement again; NotReversible when it
    has a shape AddPermission cannot write (several actions or principals, other conditions)."""
    action = statement.get("Action")
    if not isinstance(action, str):
        raise NotReversible(f"statement {statement.get('Sid')}: AddPermission takes one action, not {action}")
    args = {
        "StatementId": statement["Sid"],
        "Action": action,
        "Principal": _add_permission_principal(statement),
    }
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, value in keys.items():
            param = ADD_PERMISSION_CONDITIONS.get((operator, key.lower()))
            boolean = operator == "Bool"
            if param is None or not isinstance(value, str) or (boolean and value.lower() != "true"):
                raise NotReversible(
                    f"statement {statement['Sid']}: AddPermission cannot write the condition {operator} {key}"
                )
            args[param] = True if boolean else value
    return args


def is_public_statement(statement: dict[str, Any]) -> bool:
    """An Allow statement AWS Config's ``lambda-function-public-access-prohibited`` counts as
    public: a wildcard principal not pinned to fixed callers (``RESTRICTING_KEYS``), or S3 as the
    principal with no fixed source account (any account's bucket could then invoke it)."""
    if statement.get("Effect") != "Allow":
        return False
    principal, condition = statement.get("Principal"), statement.get("Condition") or {}
    if _is_public_principal(principal):
        return not _restricts_caller(condition)
    if _is_s3_principal(principal):
        return not _restricts_caller(condition, S3_RESTRICTING_KEYS)
    return False


def _statements(clients: Clients, resource_id: str) -> list[dict[str, Any]]:
    """The statements of the function's resource policy (none without a policy)."""
    client = clients["lambda"]
    try:
        policy = json.loads(client.get_policy(FunctionName=resource_id)["Policy"])
    except client.exceptions.ResourceNotFoundException:
        # Same error for "no policy" and "no function": tell them apart (raises if missing).
        client.get_function_configuration(FunctionName=resource_id)
        return []
    statements = policy.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


@register
class RemovePublicPolicyStatements(Action):
    """Remove the statements of a function's resource policy that let anyone call it.

    A statement with a ``*`` principal stays when a condition ties it to fixed callers
    (``RESTRICTING_KEYS``: the source account or ARN, the shape AWS services' triggers use;
    or the caller's organization, account or ARN); an S3 trigger stays when it names the
    bucket's account (``aws:SourceAccount``). Every other
    statement is kept as it is. Only the unqualified function's policy is changed.

        remediation:
          action: lambda.remove-public-policy-statements
    """

    name = "lambda.remove-public-policy-statements"
    service = "lambda"
    permissions = ("lambda:GetPolicy", "lambda:GetFunctionConfiguration", "lambda:RemovePermission")
    summary = "removed the resource-policy statements that allowed anyone to call the function"
    revert_permissions = ("lambda:AddPermission",)

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        return {"PublicStatements": [s for s in _statements(clients, resource_id) if is_public_statement(s)]}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"PublicStatements": []} if state["PublicStatements"] else {}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        missing_sid = [s for s in state["PublicStatements"] if not s.get("Sid")]
        if missing_sid:
            raise ValueError(f"public statement without a Sid cannot be removed: {missing_sid[0]}")
        for statement in state["PublicStatements"]:
            clients["lambda"].remove_permission(FunctionName=resource_id, StatementId=statement["Sid"])

    def irreversible_from(self, before: dict[str, Any]) -> str | None:
        try:
            for statement in before["PublicStatements"]:
                add_permission_args(statement)
        except NotReversible as exc:
            return str(exc)
        return None

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Add the statements back through AddPermission, each checked first so that none is
        added unless all can be. One whose id is in the policy now was not removed (the fix
        failed part-way) or was put back since: it stays as it is."""
        calls = [add_permission_args(statement) for statement in before["PublicStatements"]]
        present = {statement.get("Sid") for statement in _statements(clients, resource_id)}
        for args in calls:
            if args["StatementId"] not in present:
                clients["lambda"].add_permission(FunctionName=resource_id, **args)
