"""CloudFormation fixes: a stack's notification topics, changed through UpdateStack.

A stack's settings have no call of their own: UpdateStack is the only way to change its
``NotificationARNs``, and an update re-deploys the stack. So every change sends the stack back
as it is (the previous template, every parameter's previous value, the capabilities it was
deployed with, its rollback choice) with only the topics changed. What UpdateStack keeps when
left out is left out: the service role (``RoleARN``: "CloudFormation uses the role that was
previously associated with the stack"), the tags, the rollback triggers and the stack policy.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from asr.actions import Action, ChangeNotMade, register, topic_name_parameter

if TYPE_CHECKING:
    from asr.aws import Clients

# The states from which CloudFormation takes an update.
UPDATABLE = (
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
)
# What to do about a stack in a state that takes none, where there is something to say.
UNSTABLE_HINTS = {
    "ROLLBACK_COMPLETE": "its creation failed and was rolled back: CloudFormation can only delete it",
    "UPDATE_ROLLBACK_FAILED": (
        "an update's rollback failed: continue the rollback (ContinueUpdateRollback) first"
    ),
    "UPDATE_FAILED": "an update failed with rollback disabled: roll it back or update it yourself first",
    "DELETE_COMPLETE": "it was deleted",
    "REVIEW_IN_PROGRESS": (
        "a change set made it and was never executed: execute or delete that change set first"
    ),
}
# What a direct update of a template with transforms (SAM, AWS::Include, macros) must
# acknowledge, though a stack deployed through change sets has it not recorded.
AUTO_EXPAND = "CAPABILITY_AUTO_EXPAND"
# The states an update ends in when it succeeded (old resources may still be being cleaned up).
UPDATED = ("UPDATE_COMPLETE", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
NO_UPDATES = "No updates are to be performed"
# The states of an operation under way that may yet change or take back a stack's topics (not
# a cleanup after it, whose topics are final, nor REVIEW_IN_PROGRESS, which waits on a person).
CHANGING = frozenset(
    {
        "CREATE_IN_PROGRESS",
        "ROLLBACK_IN_PROGRESS",
        "UPDATE_IN_PROGRESS",
        "UPDATE_ROLLBACK_IN_PROGRESS",
        "IMPORT_IN_PROGRESS",
        "IMPORT_ROLLBACK_IN_PROGRESS",
        "DELETE_IN_PROGRESS",
    }
)


class UpdateFailed(ChangeNotMade):
    """CloudFormation took the update, then could not make it (or had not when the wait was up)."""


def describe_stack(cloudformation: Any, stack_id: str) -> dict[str, Any]:
    return dict(cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0])


def refuse_unmanageable(stack: dict[str, Any]) -> None:
    """Refuse a stack that another stack or a StackSet owns: updating it directly fights its owner."""
    name = stack["StackName"]
    root = stack.get("RootId") or stack.get("ParentId")
    if root and root != stack["StackId"]:
        raise ValueError(
            f"stack {name} is nested in {root}: CloudFormation updates a nested stack only through "
            "its root stack; give its AWS::CloudFormation::Stack resource NotificationARNs in the "
            "parent's template instead. Not changed"
        )
    if name.startswith("StackSet-"):
        raise ValueError(
            f"stack {name} is a StackSet's instance: a change made to it directly drifts from its "
            "StackSet and is undone by the StackSet's next operation. Not changed"
        )


def refuse_unupdatable(stack: dict[str, Any]) -> None:
    """Refuse a stack CloudFormation takes no update for now, saying what to do about it."""
    refuse_unmanageable(stack)
    status = stack["StackStatus"]
    if status in UPDATABLE:
        return
    hint = UNSTABLE_HINTS.get(status) or (
        "an operation is under way: run the fix again once it ends"
        if status.endswith("_IN_PROGRESS")
        else f"it must be in one of {', '.join(UPDATABLE)}"
    )
    raise ValueError(f"stack {stack['StackName']} is {status}, which takes no update: {hint}. Not changed")


def as_it_is(stack: dict[str, Any], transforms: list[str]) -> dict[str, Any]:
    """UpdateStack's arguments for the stack as it is: its template, every parameter's value
    and the capabilities it was deployed with, plus expanding its ``transforms`` (a stack
    deployed through change sets, as SAM does, has that one not recorded). Rollback on
    failure is left at its default, on: the stack's ``DisableRollback`` is its creation's."""
    arguments: dict[str, Any] = {"StackName": stack["StackId"], "UsePreviousTemplate": True}
    parameters = [
        {"ParameterKey": parameter["ParameterKey"], "UsePreviousValue": True}
        for parameter in stack.get("Parameters") or []
    ]
    if parameters:
        arguments["Parameters"] = parameters
    capabilities = list(stack.get("Capabilities") or [])
    if transforms and AUTO_EXPAND not in capabilities:
        capabilities.append(AUTO_EXPAND)
    if capabilities:
        arguments["Capabilities"] = capabilities
    if stack.get("RetainExceptOnCreate"):
        arguments["RetainExceptOnCreate"] = True
    return arguments


def topic_arn(stack_id: str, topic_name: str) -> str:
    """The ARN of the topic ``topic_name`` in the stack's partition, Region and account."""
    _, partition, _, region, account = stack_id.split(":")[:5]
    return f"arn:{partition}:sns:{region}:{account}:{topic_name}"


@register
class NotifyStackEvents(Action):
    """Have a CloudFormation stack publish its events to the SNS topic ``topic_name``.

    Security Hub passes a stack that notifies any topic, so such a stack is left alone. Others
    get the account-Region's shared topic, made when missing (plain: no subscriber, no
    encryption; subscribe whoever must hear of stack events, and see SNS.1 for which key lets
    an AWS service publish to an encrypted topic).

    UpdateStack is the only call that sets a stack's topics, and it deploys the stack again:
    the same template and parameter values, but SSM parameter types, dynamic references and
    transforms (macros) are resolved anew, and nested stacks are updated with their root, so
    resources can change: the playbook wants an approval. CloudFormation reads SSM parameter
    types with the caller's rights, which the member role has for CDK's bootstrap version
    (``/cdk-bootstrap/``) and AWS's public parameters (``/aws/service/``) only: a stack whose
    parameters name others fails with CloudFormation's AccessDenied reason. Capabilities are
    passed back as the stack was deployed with, plus CAPABILITY_AUTO_EXPAND for a template with
    transforms (a direct update needs it; change sets, as SAM deploys, do not record it); a
    failed update rolls back. A stack with a service role is updated by that role (no
    ``iam:PassRole`` needed to keep it). One without acts on its resources with the member
    role's permissions: a notification-only update touches none, and one that must (a value
    resolved anew) fails AccessDenied and rolls back, as a stack policy that forbids it does;
    the fix reports CloudFormation's reason. Such stacks are not refused: most stacks have no
    role, and the member role's narrow permissions keep CloudFormation from changing what the
    approver did not expect.

    Refused, saying why: a nested stack (only its root takes updates), a StackSet's instance
    (its StackSet would undo the change), and a stack in a state that takes no update (an
    operation under way, a failed rollback, a failed creation). The fix then waits up to
    ``wait_seconds`` for the update to end: a rollback is reported with CloudFormation's reason,
    and an update still under way when that time is up fails, saying so (the next run reads
    the stack again), whatever DescribeStacks lists meanwhile (0 does not wait: the fix then
    fails unless the update ended at once). A stack read while an operation is under way is
    judged once it ends, whatever topics it lists meanwhile. A revert waits the same way. A
    rollback removes the topic the same way (topics added since are kept) and keeps the topic
    itself.

        remediation:
          action: cloudformation.notify-stack-events
          parameters: {topic_name: asr-cloudformation-events}
    """

    name = "cloudformation.notify-stack-events"
    service = "cloudformation"
    permissions = (
        "cloudformation:CreateChangeSet",  # on AWS's transforms only (asr.iam_policy.SCOPES)
        "cloudformation:DescribeStacks",
        "cloudformation:GetTemplateSummary",
        "cloudformation:UpdateStack",
        "sns:CreateTopic",
        "ssm:GetParameters",  # CDK's and AWS's public parameters only (asr.iam_policy.SCOPES)
    )
    summary = "made the CloudFormation stack send its events to the SNS topic {topic_name}"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "topic_name": topic_name_parameter("asr-cloudformation-events"),
            "wait_seconds": {"type": "integer", "minimum": 0, "maximum": 3600, "default": 300},
        },
    }
    # How often DescribeStacks is asked whether the update has ended.
    poll_seconds: ClassVar[float] = 5.0

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        stack = describe_stack(clients.cloudformation, resource_id)
        topics = list(stack.get("NotificationARNs") or [])
        if not topics:
            refuse_unmanageable(stack)
        elif stack["StackStatus"] in CHANGING:
            # An update under way lists its topics before it may roll back (a fix's task that
            # died waiting for its own update, retried, would credit it): judged once it ends.
            raise ValueError(
                f"stack {stack['StackName']} is {stack['StackStatus']}: the topics it lists count once "
                "the operation ends (it may roll back); the next run reads it again. Not changed"
            )
        return {"StackId": stack["StackId"], "NotificationARNs": topics}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        if state["NotificationARNs"]:
            return {}
        return {"NotificationARNs": [topic_arn(state["StackId"], self.params["topic_name"])]}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        stack = describe_stack(clients.cloudformation, resource_id)
        if stack.get("NotificationARNs"):
            return  # someone gave it a topic since it was read: it complies
        refuse_unupdatable(stack)
        topic = clients.sns.create_topic(Name=self.params["topic_name"])["TopicArn"]
        self._update(clients.cloudformation, stack, [topic])

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        stack = describe_stack(clients.cloudformation, resource_id)
        ours = topic_arn(stack["StackId"], self.params["topic_name"])
        current = list(stack.get("NotificationARNs") or [])
        topics = [t for t in current if t != ours or t in before["NotificationARNs"]]
        if topics != current:
            refuse_unupdatable(stack)
            self._update(clients.cloudformation, stack, topics)

    def _update(self, cloudformation: Any, stack: dict[str, Any], topics: list[str]) -> None:
        """Send the stack back as it is with these topics, and wait for the update to end.
        "No updates are to be performed" means the stack has these topics already (someone
        set them since it was read): done if it does, else that error stands."""
        summary = cloudformation.get_template_summary(StackName=stack["StackId"])
        try:
            cloudformation.update_stack(
                **as_it_is(stack, summary.get("DeclaredTransforms") or []), NotificationARNs=topics
            )
        except ClientError as exc:
            if NO_UPDATES not in exc.response.get("Error", {}).get("Message", ""):
                raise
            now = describe_stack(cloudformation, stack["StackId"]).get("NotificationARNs") or []
            if sorted(now) != sorted(topics):
                raise
            return
        self._await(cloudformation, stack["StackId"])

    def _await(self, cloudformation: Any, stack_id: str) -> None:
        """Wait up to ``wait_seconds`` for the update to end; raise if it failed."""
        deadline = time.monotonic() + self.params["wait_seconds"]
        while True:
            stack = describe_stack(cloudformation, stack_id)
            status = stack["StackStatus"]
            if status in UPDATED:
                return
            if status != "UPDATE_IN_PROGRESS":
                reason = stack.get("StackStatusReason") or "no reason given"
                raise UpdateFailed(
                    f"CloudFormation could not update stack {stack['StackName']}: it is {status} "
                    f"({reason}); see the stack's events for each resource's reason"
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise UpdateFailed(
                    f"the update of stack {stack['StackName']} was still under way after "
                    f"{self.params['wait_seconds']} s (wait_seconds): not counted as made; the next "
                    "run reads the stack again"
                )
            time.sleep(min(self.poll_seconds, left))
