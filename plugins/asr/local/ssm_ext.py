"""SSM Automation calls moto 5.2.5 lacks, added to moto's own SSM backend.

Executions are recorded with their parameters and reach a terminal status. Tests
steer the outcome per document through moto's own Parameter Store: a parameter
``/asr-local/automation/<DocumentName>`` holding ``<Status>`` or ``<Status>:<polls>``
(e.g. ``Failed``, ``Success:3``; ``InProgress`` never finishes) decides what
``GetAutomationExecution`` reports, after that many polls. Without one, an execution
succeeds on the first poll.

When an execution of a document in ``EFFECTS`` succeeds, the stand-in makes the change
that AWS-managed document makes, on moto's own backend of the execution's account and
region, so a fix applied through SSM can be verified by reading the resource back.

A start sent again with its ``ClientToken`` (a UUID, compared without case) answers the
execution the first made, whatever its status now, and with another document or other
parameters ``IdempotentParameterMismatch``, as SSM documents for the token: a task retried
after its start went through must not run the document twice.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends
from moto.ssm.exceptions import SSMException, ValidationException
from moto.ssm.models import SimpleSystemManagerBackend
from moto.ssm.responses import SimpleSystemManagerResponse

OUTCOME_PARAMETER = "/asr-local/automation/{document}"
# Every terminal status AWS reports (asr.automation.ENDED names the same).
TERMINAL = {
    "Success",
    "Failed",
    "TimedOut",
    "Cancelled",
    "CompletedWithSuccess",
    "CompletedWithFailure",
    "Rejected",
    "ChangeCalendarOverrideRejected",
    "Exited",
}
ADMIN_PORTS = (22, 3389)
# StartAutomationExecution's ClientToken, as the API reference's pattern has it.
TOKEN_FORMAT = re.compile(r"[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}")


def _covers_admin_port(rule: Any) -> bool:
    if str(rule.ip_protocol) in ("-1", "all"):
        return True
    if str(rule.ip_protocol) not in ("tcp", "6") or rule.from_port is None:
        return False
    return any(int(rule.from_port) <= port <= int(rule.to_port) for port in ADMIN_PORTS)


def disable_public_access_for_security_group(account: str, region: str, params: dict[str, list[str]]) -> None:
    """AWS-DisablePublicAccessForSecurityGroup: drop world-open ingress to SSH and RDP."""
    backend = ec2_backends[account][region]
    group_id = params["GroupId"][0]
    group = backend.get_security_group_from_id(group_id)
    if group is None:
        raise ValidationException(f"security group {group_id} does not exist")
    rule_ids = [
        rule.id
        for rule in group.ingress_rules
        if (rule.ip_range.get("CidrIp") == "0.0.0.0/0" or rule.ip_range.get("CidrIpv6") == "::/0")
        and _covers_admin_port(rule)
    ]
    if rule_ids:
        backend.revoke_security_group_ingress(group_id, None, None, None, [], security_rule_ids=rule_ids)


# AWS-managed documents whose effect the stand-in reproduces when their execution succeeds.
EFFECTS: dict[str, Callable[[str, str, dict[str, list[str]]], None]] = {
    "AWS-DisablePublicAccessForSecurityGroup": disable_public_access_for_security_group,
}


@dataclass
class AutomationExecution:
    account: str
    region: str
    execution_id: str
    document_name: str
    document_version: str
    parameters: dict[str, list[str]]
    final_status: str
    polls_left: int
    started: datetime.datetime
    status: str = "InProgress"
    ended: datetime.datetime | None = None
    failure: str = ""
    tags: list[dict[str, str]] = field(default_factory=list)

    def poll(self) -> None:
        if self.status != "InProgress":
            return
        self.polls_left -= 1
        if self.polls_left <= 0 and self.final_status in TERMINAL:
            self.finish(self.final_status)

    def finish(self, status: str) -> None:
        if status == "Success" and self.document_name in EFFECTS:
            try:
                EFFECTS[self.document_name](self.account, self.region, self.parameters)
            except Exception as exc:  # the document's step failed, as it would in AWS
                self.failure = f"Step failed: {exc}"
                status = "Failed"
        self.status = status
        self.ended = datetime.datetime.now(datetime.UTC)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "AutomationExecutionId": self.execution_id,
            "DocumentName": self.document_name,
            "DocumentVersion": self.document_version,
            "ExecutionStartTime": self.started,
            "AutomationExecutionStatus": self.status,
            "Parameters": self.parameters,
            "Mode": "Auto",
            "Outputs": {},
        }
        if self.ended:
            out["ExecutionEndTime"] = self.ended
        if self.status in ("Failed", "TimedOut"):
            out["FailureMessage"] = self.failure or f"Automation {self.document_name} ended {self.status}"
        return out


def _executions(backend: SimpleSystemManagerBackend) -> dict[str, AutomationExecution]:
    if not hasattr(backend, "asr_automations"):
        backend.asr_automations = {}  # type: ignore[attr-defined]
    return backend.asr_automations  # type: ignore[attr-defined]


def _tokens(backend: SimpleSystemManagerBackend) -> dict[str, tuple[tuple[Any, ...], str]]:
    """The request each ``ClientToken`` came with, and the execution it started, by token."""
    if not hasattr(backend, "asr_automation_tokens"):
        backend.asr_automation_tokens = {}  # type: ignore[attr-defined]
    return backend.asr_automation_tokens  # type: ignore[attr-defined]


def _token(client_token: str | None) -> str:
    """The ``ClientToken`` as SSM compares it (without case), or "" when none was sent."""
    if client_token is None:
        return ""
    if not TOKEN_FORMAT.fullmatch(client_token):
        raise ValidationException(f"ClientToken {client_token} is not a UUID")
    return client_token.lower()


def _planned_outcome(backend: SimpleSystemManagerBackend, document: str) -> tuple[str, int]:
    name = OUTCOME_PARAMETER.format(document=document)
    parameter = backend._parameters.get(name)
    if not parameter:
        return "Success", 1
    status, _, polls = parameter[-1].value.partition(":")
    return status, int(polls or 1)


def start_automation_execution(
    self: SimpleSystemManagerBackend,
    document_name: str,
    document_version: str | None,
    parameters: dict[str, list[str]] | None,
    tags: list[dict[str, str]] | None,
    client_token: str | None = None,
) -> str:
    if not document_name:
        raise ValidationException("DocumentName is required")
    asked = (document_name, document_version, parameters or {})
    token = _token(client_token)
    if token in _tokens(self):
        first, execution_id = _tokens(self)[token]
        if first != asked:
            raise SSMException(
                "IdempotentParameterMismatch",
                f"ClientToken {client_token} was used to start another document or with other parameters",
            )
        return execution_id
    status, polls = _planned_outcome(self, document_name)
    execution = AutomationExecution(
        account=self.account_id,
        region=self.region_name,
        execution_id=str(uuid.uuid4()),
        document_name=document_name,
        document_version=document_version or "$DEFAULT",
        parameters=parameters or {},
        final_status=status,
        polls_left=polls,
        started=datetime.datetime.now(datetime.UTC),
        tags=tags or [],
    )
    _executions(self)[execution.execution_id] = execution
    if token:
        _tokens(self)[token] = (asked, execution.execution_id)
    return execution.execution_id


def get_automation_execution(self: SimpleSystemManagerBackend, execution_id: str) -> dict[str, Any]:
    execution = _executions(self).get(execution_id)
    if execution is None:
        raise _not_found(execution_id)
    execution.poll()
    return execution.describe()


def _not_found(execution_id: str) -> SSMException:
    return SSMException(
        "AutomationExecutionNotFoundException", f"Automation execution {execution_id} does not exist"
    )


def stop_automation_execution(self: SimpleSystemManagerBackend, execution_id: str) -> None:
    """Cancel a running execution; SSM refuses to stop one that has ended."""
    execution = _executions(self).get(execution_id)
    if execution is None:
        raise _not_found(execution_id)
    if execution.status != "InProgress":
        raise SSMException(
            "InvalidAutomationStatusUpdateException",
            f"Automation execution {execution_id} is {execution.status}: it cannot be stopped",
        )
    execution.finish("Cancelled")


def describe_automation_executions(self: SimpleSystemManagerBackend) -> list[dict[str, Any]]:
    return [e.describe() for e in _executions(self).values()]


def start_automation_execution_response(self: SimpleSystemManagerResponse) -> ActionResult:
    execution_id = self.ssm_backend.start_automation_execution(
        document_name=self._get_param("DocumentName"),
        document_version=self._get_param("DocumentVersion"),
        parameters=self._get_param("Parameters"),
        tags=self._get_param("Tags"),
        client_token=self._get_param("ClientToken"),
    )
    return ActionResult({"AutomationExecutionId": execution_id})


def get_automation_execution_response(self: SimpleSystemManagerResponse) -> ActionResult:
    execution = self.ssm_backend.get_automation_execution(self._get_param("AutomationExecutionId"))
    return ActionResult({"AutomationExecution": execution})


def stop_automation_execution_response(self: SimpleSystemManagerResponse) -> ActionResult:
    self.ssm_backend.stop_automation_execution(self._get_param("AutomationExecutionId"))
    return ActionResult({})


def describe_automation_executions_response(self: SimpleSystemManagerResponse) -> ActionResult:
    executions = self.ssm_backend.describe_automation_executions()
    metadata = [
        {k: e[k] for k in ("AutomationExecutionId", "DocumentName", "AutomationExecutionStatus")}
        for e in executions
    ]
    return ActionResult({"AutomationExecutionMetadataList": metadata})


def install() -> None:
    SimpleSystemManagerBackend.start_automation_execution = start_automation_execution  # type: ignore[attr-defined]
    SimpleSystemManagerBackend.get_automation_execution = get_automation_execution  # type: ignore[attr-defined]
    SimpleSystemManagerBackend.describe_automation_executions = describe_automation_executions  # type: ignore[attr-defined]
    SimpleSystemManagerBackend.stop_automation_execution = stop_automation_execution  # type: ignore[attr-defined]
    SimpleSystemManagerResponse.stop_automation_execution = stop_automation_execution_response  # type: ignore[attr-defined]
    SimpleSystemManagerResponse.start_automation_execution = start_automation_execution_response  # type: ignore[attr-defined]
    SimpleSystemManagerResponse.get_automation_execution = get_automation_execution_response  # type: ignore[attr-defined]
    SimpleSystemManagerResponse.describe_automation_executions = (  # type: ignore[attr-defined]
        describe_automation_executions_response
    )
