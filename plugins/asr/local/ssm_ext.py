"""SSM Automation calls moto 5.2.5 lacks, added to moto's own SSM backend.

Executions are recorded with their parameters and reach a terminal status. Tests
steer the outcome per document through moto's own Parameter Store: a parameter
``/asr-local/automation/<DocumentName>`` holding ``<Status>`` or ``<Status>:<polls>``
(e.g. ``Failed``, ``Success:3``; ``InProgress`` never finishes) decides what
``GetAutomationExecution`` reports, after that many polls. Without one, an execution
succeeds on the first poll.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field
from typing import Any

from moto.core.responses import ActionResult
from moto.ssm.exceptions import ValidationException
from moto.ssm.models import SimpleSystemManagerBackend
from moto.ssm.responses import SimpleSystemManagerResponse

OUTCOME_PARAMETER = "/asr-local/automation/{document}"
TERMINAL = {"Success", "Failed", "TimedOut", "Cancelled"}


@dataclass
class AutomationExecution:
    execution_id: str
    document_name: str
    document_version: str
    parameters: dict[str, list[str]]
    final_status: str
    polls_left: int
    started: datetime.datetime
    status: str = "InProgress"
    ended: datetime.datetime | None = None
    tags: list[dict[str, str]] = field(default_factory=list)

    def poll(self) -> None:
        if self.status != "InProgress":
            return
        self.polls_left -= 1
        if self.polls_left <= 0 and self.final_status in TERMINAL:
            self.status = self.final_status
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
            out["FailureMessage"] = f"Automation {self.document_name} ended {self.status}"
        return out


def _executions(backend: SimpleSystemManagerBackend) -> dict[str, AutomationExecution]:
    if not hasattr(backend, "asr_automations"):
        backend.asr_automations = {}  # type: ignore[attr-defined]
    return backend.asr_automations  # type: ignore[attr-defined]


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
) -> str:
    if not document_name:
        raise ValidationException("DocumentName is required")
    status, polls = _planned_outcome(self, document_name)
    execution = AutomationExecution(
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
    return execution.execution_id


def get_automation_execution(self: SimpleSystemManagerBackend, execution_id: str) -> dict[str, Any]:
    execution = _executions(self).get(execution_id)
    if execution is None:
        raise ValidationException(f"Automation execution {execution_id} does not exist")
    execution.poll()
    return execution.describe()


def describe_automation_executions(self: SimpleSystemManagerBackend) -> list[dict[str, Any]]:
    return [e.describe() for e in _executions(self).values()]


def start_automation_execution_response(self: SimpleSystemManagerResponse) -> ActionResult:
    execution_id = self.ssm_backend.start_automation_execution(
        document_name=self._get_param("DocumentName"),
        document_version=self._get_param("DocumentVersion"),
        parameters=self._get_param("Parameters"),
        tags=self._get_param("Tags"),
    )
    return ActionResult({"AutomationExecutionId": execution_id})


def get_automation_execution_response(self: SimpleSystemManagerResponse) -> ActionResult:
    execution = self.ssm_backend.get_automation_execution(self._get_param("AutomationExecutionId"))
    return ActionResult({"AutomationExecution": execution})


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
    SimpleSystemManagerResponse.start_automation_execution = start_automation_execution_response  # type: ignore[attr-defined]
    SimpleSystemManagerResponse.get_automation_execution = get_automation_execution_response  # type: ignore[attr-defined]
    SimpleSystemManagerResponse.describe_automation_executions = (  # type: ignore[attr-defined]
        describe_automation_executions_response
    )
