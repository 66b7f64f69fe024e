"""CloudFormation stack updates that change only the stack's own settings, as AWS makes them.

An UpdateStack that keeps the template and every parameter (``UsePreviousTemplate``,
``UsePreviousValue``) and changes only the stack's notification topics is an update for
AWS, which answers "No updates are to be performed." only when nothing at all would change.
moto 5.2.5 answers that whenever the template and parameters are the same, ignores
``NotificationARNs`` in UpdateStack and ``Capabilities`` everywhere, forgets the stack's
service role when ``RoleARN`` is left out (AWS keeps it), and looks a ``UsePreviousValue``
up among the values given when the stack was made, failing for one that took its default.
Here a change of topics counts as an update; UpdateStack sets the topics when given and keeps
them when not, keeps the role, takes a previous value from the stack's resolved parameters,
and DescribeStacks answers the capabilities the stack's last operation acknowledged.
GetTemplateSummary answers the template's transforms (``DeclaredTransforms``), which moto
leaves out.
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation import responses
from moto.cloudformation.models import CloudFormationBackend, Stack
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import ActionResult

_moto_create_stack = CloudFormationResponse.create_stack
_moto_update_stack = CloudFormationResponse.update_stack
_moto_validate_different_update = CloudFormationResponse._validate_different_update
_moto_backend_update_stack = CloudFormationBackend.update_stack


def _named_stack(response: CloudFormationResponse) -> Stack:
    return response.cloudformation_backend.get_stack(response._get_param("StackName"))


def create_stack(self: CloudFormationResponse) -> ActionResult:
    result = _moto_create_stack(self)
    # moto serializes public attributes by their camel-case names.
    _named_stack(self).capabilities = self._get_param("Capabilities") or []
    return result


def update_stack(self: CloudFormationResponse) -> ActionResult:
    # None when the request leaves the topics out; [] when it removes them all.
    topics = self._get_param("NotificationARNs")
    result = _moto_update_stack(self)
    stack = _named_stack(self)
    if topics is not None:
        stack.notification_arns = topics
    stack.capabilities = self._get_param("Capabilities") or []
    return result


def validate_different_update(
    self: CloudFormationResponse, incoming_params: Any, stack_body: Any, old_stack: Stack
) -> None:
    topics = self._get_param("NotificationARNs")
    if topics is None or topics == old_stack.notification_arns:
        _moto_validate_different_update(self, incoming_params, stack_body, old_stack)


def backend_update_stack(
    self: CloudFormationBackend,
    name: str,
    template: str,
    role_arn: str | None,
    parameters: list[dict[str, Any]],
    tags: dict[str, str] | None,
) -> Stack:
    stack = self.get_stack(name)
    resolved = stack.stack_parameters
    given = [
        {"ParameterKey": p["ParameterKey"], "ParameterValue": resolved[p["ParameterKey"]]}
        if p.get("UsePreviousValue")
        else p
        for p in parameters
    ]
    return _moto_backend_update_stack(self, name, template, role_arn or stack.role_arn, given, tags)


_moto_template_summary = responses.get_template_summary_response_from_template


def template_summary(template_body: str) -> dict[str, Any]:
    """moto's summary, with the template's transforms as ``DeclaredTransforms`` (moto has none)."""
    summary = _moto_template_summary(template_body)
    transform = summary.get("Transform") or []
    summary["DeclaredTransforms"] = [transform] if isinstance(transform, str) else list(transform)
    return summary


def install() -> None:
    responses.get_template_summary_response_from_template = template_summary
    CloudFormationResponse.create_stack = create_stack  # type: ignore[method-assign]
    CloudFormationResponse.update_stack = update_stack  # type: ignore[method-assign]
    CloudFormationResponse._validate_different_update = validate_different_update  # type: ignore[method-assign]
    CloudFormationBackend.update_stack = backend_update_stack  # type: ignore[method-assign]
