"""Required tags: DynamoDB tables (DynamoDB.5), GuardDuty filters (GuardDuty.2) and detectors
(GuardDuty.4).

Security Hub fails such a resource when it has no tag at all, or lacks one of the keys its
control parameter ``requiredTagKeys`` names (case sensitive); tags whose key begins with
``aws:`` are AWS's own and do not count, and values are never looked at. The fix adds the keys
a resource lacks and nothing else: a tag the resource has keeps its value. Each service has
its own tagging API, so each has its own action; they share everything else here.

A state holds one entry per tag, ``tag:<key>``: a plan adds entries, and the before-state of
each is None (absent), so a rollback compares, and removes, only the tags the fix added.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from asr.actions import Action, ChangedMeanwhile, NotReversible, register

if TYPE_CHECKING:
    from asr.aws import Clients

TAG = "tag:"  # a state's entry for one tag: "tag:Owner"
SYSTEM = "aws:"  # the prefix of AWS's own tags, which no control counts and no caller may set
PLACEHOLDER = "unassigned"
MAX_TAGS = 50  # user tags a DynamoDB table or a GuardDuty resource may hold
# No key may begin with aws: in any case (AWS keeps the prefix for its own tags).
NOT_SYSTEM = r"(?![aA][wW][sS]:)"


def tag_schema(key_pattern: str, value: dict[str, Any]) -> dict[str, Any]:
    """The parameters of a tagging action whose service takes keys of this pattern and values of
    this schema: a key or value AWS would refuse fails the playbook's load (or the finding whose
    control parameters name it), not the fix."""
    key = {"type": "string", "maxLength": 128, "pattern": key_pattern}
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            # From the control's requiredTagKeys: Security Hub allows 6, a resource holds 50.
            "required_tag_keys": {"type": "array", "items": key, "maxItems": MAX_TAGS, "default": []},
            # The value each key gets; all of them when the control names no key and the
            # resource has no tag.
            "tags": {
                "type": "object",
                "propertyNames": key,
                "additionalProperties": value,
                "maxProperties": MAX_TAGS,
                "default": {},
            },
            # The value of a required key ``tags`` gives none; null: such a key is refused.
            "placeholder": {"anyOf": [value, {"type": "null"}], "default": PLACEHOLDER},
        },
    }


def _state_of(tags: dict[str, str]) -> dict[str, str]:
    """A resource's state: its own tags (AWS's left out), one entry each, in key order."""
    return {TAG + key: value for key, value in sorted(tags.items()) if not key.startswith(SYSTEM)}


def _tags(entries: dict[str, Any]) -> dict[str, Any]:
    """The tags of state or plan entries, by key."""
    return {entry.removeprefix(TAG): value for entry, value in entries.items()}


class AddRequiredTags(Action):
    """Add the tags a resource's control requires, through its service's tagging API.

    The keys added are the required keys the resource lacks, each with its value in ``tags``,
    else ``placeholder``; with ``placeholder`` null, a required key ``tags`` gives no value is
    refused, naming it, and nothing is tagged. When the control requires no key, a resource
    with no tag of its own gets every entry of ``tags`` (refused when there is none). A tag the
    resource has is never changed, and the tags are read again just before the change: any
    change made to them since the first read (a key set meanwhile) is planned again from there.

    A resource left with a placeholder value is reported so (``caveat``): someone who knows it
    should set the real value. A rollback removes the tags the fix added whose value is still
    the one it set; a value someone gave one since is kept.
    """

    def arn(self, clients: Clients, resource_id: str) -> str:
        """The ARN the service's tagging API names the resource by."""
        raise NotImplementedError

    def tags_of(self, clients: Clients, arn: str) -> dict[str, str]:
        """Every tag of the resource, AWS's own included."""
        raise NotImplementedError

    def tag(self, clients: Clients, arn: str, tags: dict[str, str]) -> None:
        raise NotImplementedError

    def untag(self, clients: Clients, arn: str, keys: list[str]) -> None:
        raise NotImplementedError

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        return _state_of(self.tags_of(clients, self.arn(clients, resource_id)))

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        required = self.params["required_tag_keys"]
        if not required:
            if state:
                return {}
            if not self.params["tags"]:
                raise ValueError(
                    "the resource has no tag and the control requires no particular key, but the "
                    "playbook's tags parameter gives no tag to add: set it (e.g. tags: {Owner: team}); "
                    "nothing tagged"
                )
            return {TAG + key: value for key, value in self.params["tags"].items()}
        missing = [key for key in required if TAG + key not in state]
        values = {key: self.params["tags"].get(key, self.params["placeholder"]) for key in missing}
        unset = [key for key, value in values.items() if value is None]
        if unset:
            raise ValueError(
                f"no value is configured for the required tag keys {', '.join(unset)}, and the placeholder "
                f"is null: give each a value in the playbook's tags parameter (tags: {{{unset[0]}: ...}}), "
                "or set a placeholder; nothing tagged"
            )
        return {TAG + key: value for key, value in values.items()}

    def caveat(self, state: dict[str, Any]) -> str | None:
        placeholder = self.params["placeholder"]
        keys = self.params["required_tag_keys"] or list(self.params["tags"])
        held = [key for key in dict.fromkeys(keys) if state.get(TAG + key) == placeholder]
        if placeholder is None or not held:
            return None
        return (
            f"tags holding the placeholder {placeholder!r}: {', '.join(held)}; someone who knows the "
            "resource should set their real values"
        )

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        arn = self.arn(clients, resource_id)
        if _state_of(self.tags_of(clients, arn)) != state:  # TagResource overwrites a key set meanwhile
            raise ChangedMeanwhile("the resource's tags changed since they were read")
        self.tag(clients, arn, _tags(plan))

    def as_compared(self, state: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
        """Whether each tag the fix added is there, not its value: a value someone set since is
        no reason to leave the fix's other tags in place (``revert`` keeps that one)."""
        return {entry: (value is not None) if entry in before else value for entry, value in state.items()}

    def check_revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        self._ours(clients, resource_id, before)

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> dict[str, Any]:
        """Remove the tags the fix added that still hold the value it set; returns what that makes
        of the before-state, a tag given another value since kept with it."""
        arn, ours, now = self._ours(clients, resource_id, before)
        if ours:
            self.untag(clients, arn, list(_tags(ours)))
        return {entry: None if entry in ours else value for entry, value in now.items()}

    def _ours(
        self, clients: Clients, resource_id: str, before: dict[str, Any]
    ) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """The resource's ARN, the tags the fix added that still hold the value it set, and each
        tag it added as it reads now. NotReversible when every one still there was given another
        value since: a rollback would remove none, and put nothing back."""
        arn = self.arn(clients, resource_id)
        added = self.plan(before)
        tags = _state_of(self.tags_of(clients, arn))
        now = {entry: tags.get(entry) for entry in added}
        ours = {entry: value for entry, value in added.items() if now[entry] == value}
        changed = _tags({entry: value for entry, value in now.items() if value not in (None, added[entry])})
        if changed and not ours:
            raise NotReversible(
                f"every tag the fix added that is still there was given another value since "
                f"({', '.join(changed)}): kept, as someone set them"
            )
        return arn, ours, now


# DynamoDB's rules: letters, digits, white space and + - = . _ : / (TaggingRestrictions).
DYNAMODB_KEY = rf"^{NOT_SYSTEM}[\w +=.:/-]+$"
DYNAMODB_VALUE = {"type": "string", "maxLength": 256, "pattern": r"^[\w +=.:/-]*$"}


@register
class TagDynamoDbTable(AddRequiredTags):
    """Add the tags a DynamoDB table lacks (DynamoDB.5).

    DynamoDB applies tags asynchronously: ListTagsOfResource shows a change only after a few
    seconds, so the read-back waits for it. The same lag means a key someone set in the seconds
    before the fix read the table may not show yet, and would get the fix's value over theirs.
    TagResource and UntagResource are limited to five calls a second in an account.

        remediation:
          action: dynamodb.add-required-tags
          parameters: {tags: {Owner: unassigned}, placeholder: unassigned}
        control_parameters:
          requiredTagKeys: required_tag_keys
    """

    name = "dynamodb.add-required-tags"
    service = "dynamodb"
    permissions = ("dynamodb:ListTagsOfResource", "dynamodb:TagResource")
    revert_permissions = ("dynamodb:UntagResource",)
    summary = "added the required tags the DynamoDB table lacked"
    # TagResource's documentation: ListTagsOfResource "will only reflect the changes after a few seconds".
    propagation_seconds = 15.0
    schema = tag_schema(DYNAMODB_KEY, DYNAMODB_VALUE)

    def arn(self, clients: Clients, resource_id: str) -> str:
        partition = clients.dynamodb.meta.partition
        return f"arn:{partition}:dynamodb:{clients.region}:{clients.account_id}:table/{resource_id}"

    def tags_of(self, clients: Clients, arn: str) -> dict[str, str]:
        pages = clients.dynamodb.get_paginator("list_tags_of_resource").paginate(ResourceArn=arn)
        return {tag["Key"]: tag["Value"] for page in pages for tag in page.get("Tags") or ()}

    def tag(self, clients: Clients, arn: str, tags: dict[str, str]) -> None:
        clients.dynamodb.tag_resource(ResourceArn=arn, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def untag(self, clients: Clients, arn: str, keys: list[str]) -> None:
        clients.dynamodb.untag_resource(ResourceArn=arn, TagKeys=keys)


# GuardDuty's API model: "(?!aws:)[a-zA-Z+-=._:/]+" (the range +-= takes in the digits and
# , ; <); values are free text.
GUARDDUTY_KEY = rf"^{NOT_SYSTEM}[a-zA-Z+-=._:/]+$"
GUARDDUTY_VALUE = {"type": "string", "maxLength": 256}
# A detector, or one of its filters (names of 3 to 64 letters, digits and . _ -).
GUARDDUTY_ARN = re.compile(
    r"^arn:aws[a-z-]*:guardduty:[a-z0-9-]+:\d{12}:detector/[A-Za-z0-9]{1,300}(/filter/[A-Za-z0-9_.-]{3,64})?$"
)


@register
class TagGuardDutyResource(AddRequiredTags):
    """Add the tags a GuardDuty detector (GuardDuty.4) or filter (GuardDuty.2) lacks, named by
    its ARN, as GuardDuty's tagging API takes it.

        remediation:
          action: guardduty.add-required-tags
          parameters: {tags: {Owner: unassigned}, placeholder: unassigned}
        control_parameters:
          requiredTagKeys: required_tag_keys
    """

    name = "guardduty.add-required-tags"
    service = "guardduty"
    permissions = ("guardduty:ListTagsForResource", "guardduty:TagResource")
    revert_permissions = ("guardduty:UntagResource",)
    summary = "added the required tags the GuardDuty resource lacked"
    schema = tag_schema(GUARDDUTY_KEY, GUARDDUTY_VALUE)

    def arn(self, clients: Clients, resource_id: str) -> str:
        if not GUARDDUTY_ARN.match(resource_id):
            raise ValueError(f"{resource_id!r} is not the ARN of a GuardDuty detector or filter")
        return resource_id

    def tags_of(self, clients: Clients, arn: str) -> dict[str, str]:
        return dict(clients.guardduty.list_tags_for_resource(ResourceArn=arn).get("Tags") or {})

    def tag(self, clients: Clients, arn: str, tags: dict[str, str]) -> None:
        clients.guardduty.tag_resource(ResourceArn=arn, Tags=tags)

    def untag(self, clients: Clients, arn: str, keys: list[str]) -> None:
        clients.guardduty.untag_resource(ResourceArn=arn, TagKeys=keys)
