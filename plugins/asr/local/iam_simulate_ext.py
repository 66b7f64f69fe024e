"""IAM's policy simulator for a role, which moto 5.2.5 lacks: ``SimulatePrincipalPolicy``.

A role (``PolicySourceArn``) is simulated with its identity policies: inline ones and the
default version of each attached managed policy, and its permissions boundary when it has
one (which must allow too). For each action and resource asked (``*`` when none), an explicit
Deny wins, then an Allow, else the implicit deny; statements match by ``Action``/``NotAction``
(case ignored) and ``Resource``/``NotResource``, with ``*`` and ``?`` wildcards. One result per
action and resource, with the resource's own result in ``ResourceSpecificResults``, on one
page. CodeBuild.2 asks it whether a project's service role may read the parameters it makes.

Not evaluated: conditions. An Allow with a ``Condition`` is left out, and a Deny with one
counts, so the stand-in refuses where AWS might allow (with the context keys it is given),
never the other way. Nor policy variables, ``ContextEntries``,
``PolicyInputList``, resource-based, session and Organizations policies; users and groups
(``InvalidInput``: the stand-in simulates roles only).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from moto.core.responses import ActionResult
from moto.iam.exceptions import InvalidInput, NotFoundException
from moto.iam.models import IAMBackend, ManagedPolicy
from moto.iam.responses import IamResponse

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/")
ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY = "allowed", "explicitDeny", "implicitDeny"


@functools.lru_cache(maxsize=1024)
def _pattern(wildcard: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in wildcard)
    return re.compile(f"^{body}$", re.IGNORECASE if ignore_case else 0)


def _matches(patterns: Any, value: str, ignore_case: bool = False) -> bool:
    listed = [patterns] if isinstance(patterns, str) else list(patterns or ())
    return any(_pattern(str(p), ignore_case).match(value) for p in listed)


def _names(statement: dict[str, Any], action: str, resource: str) -> bool:
    """Whether the statement is about this action on this resource."""
    if "NotAction" in statement:
        acts = not _matches(statement["NotAction"], action, ignore_case=True)
    else:
        acts = _matches(statement.get("Action"), action, ignore_case=True)
    if "NotResource" in statement:
        return acts and not _matches(statement["NotResource"], resource)
    return acts and _matches(statement.get("Resource"), resource)


def _statements(document: Any) -> list[dict[str, Any]]:
    parsed = json.loads(document) if isinstance(document, str) else document
    statements = parsed.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def decision(
    documents: Mapping[str, Any] | Iterable[tuple[str, Any]], action: str, resource: str
) -> tuple[str, list[str]]:
    """IAM's verdict on one call from these policies (by name, or as (name, document) pairs:
    an inline and a managed policy may share a name), and the names of the policies whose
    statements decide it (the denying ones alone when one denies)."""
    matched: dict[str, list[str]] = {"Allow": [], "Deny": []}
    for name, document in documents.items() if isinstance(documents, Mapping) else documents:
        for statement in _statements(document):
            effect = statement.get("Effect")
            if effect not in matched or name in matched[effect]:
                continue
            conditional = "Condition" in statement and effect == "Allow"
            if not conditional and _names(statement, action, resource):
                matched[effect].append(name)
    if matched["Deny"]:
        return EXPLICIT_DENY, matched["Deny"]
    return (ALLOWED, matched["Allow"]) if matched["Allow"] else (IMPLICIT_DENY, [])


def _document(policy: ManagedPolicy) -> Any:
    return next(version.document for version in policy.versions if version.is_default_version)


def simulate_role(
    backend: IAMBackend, role_arn: str, actions: list[str], resources: list[str]
) -> list[dict[str, Any]]:
    """One evaluation result per action and resource, for the role this ARN names."""
    if not ROLE_ARN.match(role_arn):
        raise InvalidInput(f"the stand-in simulates the policies of roles only, not {role_arn}")
    role = next((role for role in backend.get_roles() if role.arn == role_arn), None)
    if role is None:
        raise NotFoundException(f"Role {role_arn} not found")
    documents = [*role.policies.items(), *((p.name, _document(p)) for p in role.managed_policies.values())]
    boundary = None
    if role.permissions_boundary_arn:
        boundary = {"boundary": _document(backend.get_policy(role.permissions_boundary_arn))}
    results = []
    for action in actions:
        for resource in resources or ["*"]:
            verdict, deciding = decision(documents, action, resource)
            if verdict == ALLOWED and boundary:  # the boundary must allow too
                bounded = decision(boundary, action, resource)
                if bounded[0] != ALLOWED:
                    verdict, deciding = bounded[0], bounded[1]
            statements = [{"SourcePolicyId": name, "SourcePolicyType": "role"} for name in deciding]
            results.append(
                {
                    "EvalActionName": action,
                    "EvalResourceName": resource,
                    "EvalDecision": verdict,
                    "MatchedStatements": statements,
                    "MissingContextValues": [],
                    "ResourceSpecificResults": [
                        {
                            "EvalResourceName": resource,
                            "EvalResourceDecision": verdict,
                            "MatchedStatements": statements,
                            "MissingContextValues": [],
                        }
                    ],
                }
            )
    return results


def simulate_principal_policy_response(self: IamResponse) -> ActionResult:
    results = simulate_role(
        self.backend,
        self._get_param("PolicySourceArn"),
        list(self._get_param("ActionNames") or ()),
        list(self._get_param("ResourceArns") or ()),
    )
    return ActionResult({"EvaluationResults": results, "IsTruncated": False})


def install() -> None:
    IamResponse.simulate_principal_policy = simulate_principal_policy_response  # type: ignore[attr-defined]
