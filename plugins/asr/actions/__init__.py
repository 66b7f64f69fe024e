"""Remediation actions, registered by name.

An action is a small class that declares, next to its code, the AWS service it calls,
the IAM permissions it needs and the JSON schema of its parameters. Playbooks name
actions; the registry is how a name in YAML becomes code, and how a typo is caught
when playbooks load rather than when a fix runs.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib
import json
import pkgutil
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import jsonschema

if TYPE_CHECKING:
    from asr.aws import Clients

T = TypeVar("T")
REGISTRY: dict[str, type[Action]] = {}
_VALIDATORS: dict[int, Any] = {}


def validate_against(instance: Any, schema: dict[str, Any]) -> None:
    """``jsonschema.validate``, with each (long-lived) schema checked and compiled once:
    checking the schema on every call made loading the playbooks take a second per task."""
    validator = _VALIDATORS.get(id(schema))
    if validator is None:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        validator = _VALIDATORS[id(schema)] = cls(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is not None:
        raise error


class ActionError(ValueError):
    """An action name or its parameters are wrong."""


class Action:
    """Read a resource, say what must change, change it.

    ``read`` and ``apply`` get the clients of the resource's account and region
    (``clients.ec2``, ``clients["lambda"]``). ``plan`` returns the settings that must
    change, as ``{setting: value it will get}``; an empty plan means the resource
    already complies. The runner (``asr.remediate``)
    records the current value of exactly those settings before ``apply``, and reads the
    resource back afterwards to verify.
    """

    name: ClassVar[str]
    service: ClassVar[str]
    permissions: ClassVar[tuple[str, ...]]
    schema: ClassVar[dict[str, Any]] = {"type": "object", "additionalProperties": False}
    summary: ClassVar[str]
    # Why the fix cannot be undone (rollback reports it); None when ``revert`` undoes it.
    irreversible: ClassVar[str | None] = None
    # Settings a fix changes that no revert can bring back, with why (a deleted password): a
    # rollback puts back the rest (PARTLY_REVERTED) and says so, in a dry run too. What only
    # the revert finds it must leave, it raises (``RevertedInPart``).
    lost_on_revert: ClassVar[dict[str, str]] = {}
    # What ``revert`` calls beyond ``permissions``: a rollback needs them in the member role.
    revert_permissions: ClassVar[tuple[str, ...]] = ()
    # How long the service may take to show a change in its reads (eventual consistency):
    # the read-back that verifies a fix is repeated until then.
    propagation_seconds: ClassVar[float] = 0.0
    # The claim a fix takes on its resource (``asr.claims``) is held under this name, else the
    # action's: actions that rewrite one document of a resource (a bucket's policy) share one,
    # so that two fix tasks never read, edit and put it back at once and drop each other's part.
    claims_as: ClassVar[str | None] = None
    # Error codes of a change call that mean the resource changed since it was read (another
    # control's fix of it got there first): the runner reads it again and applies what is
    # still needed, rather than fail the part of the change that was still to make.
    stale_plan_errors: ClassVar[frozenset[str]] = frozenset()
    # Error codes by which the action's service says, whatever the message, that the resource
    # is busy with another operation for now (``remediate.busy`` knows the codes every service
    # means so): the apply is tried again, from a new read, as when throttled.
    busy_errors: ClassVar[frozenset[str]] = frozenset()
    # Whether a finding's control parameters may only tighten the playbook's parameters (a
    # baseline, combined by ``strictest``), not loosen them: Security Hub sends every
    # parameter, its defaults too (IAM.7's 8-character minimum against a playbook's 14).
    parameters_only_tighten: ClassVar[bool] = False
    # The role the fix hands to its service, which the member-role stack makes (``ServiceRole``).
    service_role: ClassVar[ServiceRole | None] = None

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    @classmethod
    def strictest(cls, params: list[dict[str, Any]]) -> dict[str, Any]:
        """One set of parameters that satisfies each of ``params``, for a resource whose
        findings carry different control parameters (IAM.7's own and the CIS clauses routed
        to it): a fix made to one set would be called done for findings it leaves FAILED.
        An action that can meet several says how; by default it is refused."""
        raise ValueError(
            f"its findings carry different parameters for {cls.name} ({params}), and one fix cannot "
            "meet them all: align the controls' parameters in Security Hub"
        )

    def unmet(self, state: dict[str, Any]) -> str | None:
        """Why a resource whose settings already comply (an empty plan) still fails its
        control, for a cause no change of this action can reach: the finding is then FAILED
        with this reason, not reported already compliant. None by default."""
        return None

    def caveat(self, state: dict[str, Any]) -> str | None:
        """What a fixed resource's read-back shows that the fix left alone and a person should
        look at: it is added to the REMEDIATED result's message (the finding's note) and kept
        apart (``Result.caveat``), for the run report and notification to list. None by
        default."""
        return None

    def awaits(self, state: dict[str, Any]) -> str | None:
        """What a fixed resource's read-back shows Security Hub's check still waits for, beyond
        the change made (an agent to register, a conversion AWS has queued): the finding is
        then written back NOTIFIED with this, not RESOLVED, and Security Hub resolves it when
        its check passes; should it never pass (an agent that cannot reach its endpoints), the
        finding stays in sight. None by default."""
        return None

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def ready_role(self, clients: Clients) -> tuple[dict[str, Any], bool]:
        """The ``service_role`` as GetRole describes it, once it reads as the member-role stack
        makes it (trust policy, managed policies, inline grants, instance profile), and whether IAM
        made it lately (a service handed it may not accept it yet). Raises ``RoleNotReady``
        saying what is missing: the member role may not make or change it.

        Read once per batch (``Clients.once``): every resource of it is handed the same role,
        and 2 to 4 IAM reads each would spend IAM's low rate limit on a fleet of instances."""

        def read() -> tuple[dict[str, Any], bool] | RoleNotReady:
            try:
                return self._read_role(clients)
            except RoleNotReady as exc:  # as sure for the next resource: kept, not read again
                return exc

        key = ("ready_role", self.name, json.dumps(self.params, sort_keys=True, default=str))
        found = clients.once(key, read)
        if isinstance(found, RoleNotReady):
            raise RoleNotReady(str(found))
        return found

    def _read_role(self, clients: Clients) -> tuple[dict[str, Any], bool]:
        from asr.iam_policy import render  # not at import: it imports this module

        spec, iam, name = self.service_role, clients.iam, self.params["role_name"]
        assert spec is not None, f"{self.name} declares no service_role"
        stack = "the member-role stack makes it (deploy/member-role.yaml, `asr policy template`)"
        try:
            role = iam.get_role(RoleName=name)["Role"]
        except iam.exceptions.NoSuchEntityException:
            raise RoleNotReady(
                f"the IAM role {name} is missing: {stack}, and ASR may not make roles itself"
            ) from None
        partition = iam.meta.partition
        placeholders = {
            "AWS::Partition": partition,
            "AWS::AccountId": clients.account_id,
            "AWS::URLSuffix": "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com",
        }
        lacking = []
        if _normal(role.get("AssumeRolePolicyDocument")) != _normal(render(spec.trust, placeholders)):
            lacking.append("the trust policy the stack gives it (it trusts someone else)")
        lacking += [
            f"the AWS managed policy {policy}"
            for policy in spec.managed_policies
            if not has_policy(iam, name, aws_policy_arn(iam, policy))
        ]
        for policy_name, document in spec.inline(self.params, partition, clients.account_id).items():
            try:
                granted = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
            except iam.exceptions.NoSuchEntityException:
                granted = None
            if _normal(granted) != _normal(document):
                lacking.append(f"the inline policy {policy_name} as the playbook's parameters make it")
        fresh = made_lately(role)
        if spec.instance_profile:
            try:
                profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
            except iam.exceptions.NoSuchEntityException:
                profile = {}
            if [held["RoleName"] for held in profile.get("Roles", [])] != [name]:
                lacking.append(f"an instance profile {name} holding it (and no other role)")
            fresh = fresh or made_lately(profile)
        if lacking:
            raise RoleNotReady(
                f"the IAM role {name} lacks {' and '.join(lacking)}: {stack}; deploy the stack generated "
                "from the playbooks in use (ASR may not change the role itself)"
            )
        return role, fresh

    def read_many(self, clients: Clients, resource_ids: list[str]) -> dict[str, dict[str, Any] | Exception]:
        """Read several resources in as few calls as the service allows.

        Returns what it could read in bulk, by resource id; the runner reads any id left
        out one at a time, so an id the service does not know gets its own clear error.
        The default reads nothing in bulk.
        """
        return {}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        raise NotImplementedError

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> dict[str, Any] | None:
        """Undo this action's fix: put back ``before``, the state ``read`` returned before it.

        The audit journal keeps that whole state (the planned keys' prior values and the
        rest ``read`` saw), so an action may use any of it. Rollback checks the result by
        reading the resource back: against ``before``, or against what the revert returns
        when part of ``before`` is gone since (a key or snapshot deleted after the fix),
        which nothing can put back and no later try would either.
        """
        raise NotReversible(self.irreversible or f"{self.name} has no way to undo its fix")

    def check_revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Raise NotReversible when ``revert`` would refuse now, for what the resource's
        surroundings read; change nothing. A dry rollback, and the check a rollback's approval
        request shows, ask it: what they promise to put back is then what the real run does.
        The revert asks again as it changes, for what changed in between. Only for lasting
        refusals that depend on more than the fix's before-state (``irreversible_from`` covers
        that): a NOT_REVERSIBLE here is final, the approved run does not try it. A passing
        hindrance (changes still queued, a rotation running) is the revert's to fail on, so
        that a retry can make it. Raise LookupError when all a revert would put back was
        deleted since (each key, each snapshot): the rollback has nothing to put back there."""

    def as_compared(self, state: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
        """What a rollback compares of a read (or part of one), given the fix's ``before``: the
        state itself by default. An action whose read lists items by the clock (keys older
        than N days, unused for N days) keeps only the items the fix changed: a key that aged
        past the limit since is no change anyone made, and must not stop a rollback."""
        return state

    def irreversible_from(self, before: dict[str, Any]) -> str | None:
        """Why the fix made from ``before`` (the state ``read`` returned) cannot be undone, or
        None. A rollback asks first, dry runs too, so that nothing is claimed or changed, and
        a dry run does not promise what the real one would refuse."""
        return self.irreversible


# IAM is eventually consistent: a role just made is not usable by a service at once.
ROLE_PROPAGATION_DELAYS = (2.0, 4.0, 8.0, 8.0)
# A role younger than this may still be propagating, whoever made it (another thread or task).
NEW_ROLE_AGE = datetime.timedelta(minutes=5)


def made_lately(role: dict[str, Any]) -> bool:
    """Whether IAM made this role (as GetRole or CreateRole describe it) a few minutes ago."""
    created = role.get("CreateDate")
    if not isinstance(created, datetime.datetime):
        return False
    if created.tzinfo is None:
        created = created.replace(tzinfo=datetime.UTC)
    return datetime.datetime.now(datetime.UTC) - created < NEW_ROLE_AGE


def with_new_role(call: Callable[[], T], fresh: bool, unready: Callable[[Exception], bool]) -> T:
    """``call()``; when it hands a service a role made just now (``fresh``) and the service
    answers that it cannot use it yet (``unready``), again after each of the delays."""
    delays = ROLE_PROPAGATION_DELAYS if fresh else ()
    for delay in delays:
        try:
            return call()
        except Exception as exc:
            if not unready(exc):
                raise
            time.sleep(delay)
    return call()


def answered(codes: str | tuple[str, ...], saying: str = "") -> Callable[[Exception], bool]:
    """A test of an exception: AWS's error with one of these codes, and a message containing
    ``saying`` (case ignored) when given. For ``with_new_role``: how a service says it cannot
    use a role (or topic, or target) made moments ago."""
    wanted = (codes,) if isinstance(codes, str) else codes

    def test(exc: Exception) -> bool:
        from botocore.exceptions import ClientError  # not at import: DAG files import this module

        if not isinstance(exc, ClientError):
            return False
        error = exc.response.get("Error", {})
        return error.get("Code") in wanted and saying.lower() in str(error.get("Message", "")).lower()

    return test


def service_trust(principal: str, source_account: bool = False) -> dict[str, Any]:
    """The trust policy of a role that only this AWS service may assume; with
    ``source_account``, only while it acts for the role's own account (``aws:SourceAccount``:
    no confused deputy). Written with CloudFormation's placeholders, for the template."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": principal},
        "Action": "sts:AssumeRole",
    }
    if source_account:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": "${AWS::AccountId}"}}
    return {"Version": "2012-10-17", "Statement": [statement]}


def role_name_parameter(default: str) -> dict[str, Any]:
    """The JSON schema of a ``role_name`` parameter: the name of a role a fix makes or uses."""
    return {"type": "string", "pattern": r"^[\w+=,.@-]{1,64}$", "default": default}


def topic_name_parameter(default: str) -> dict[str, Any]:
    """The JSON schema of a ``topic_name`` parameter: a standard SNS topic a fix makes or uses
    (AWS services do not publish to FIFO topics, whose names end ``.fifo``)."""
    return {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,256}$", "default": default}


def aws_policy_arn(iam: Any, name: str) -> str:
    """The ARN of the AWS managed policy ``name`` (``service-role/...`` or a plain name) in the
    partition of this IAM client."""
    return f"arn:{iam.meta.partition}:iam::aws:policy/{name}"


def has_policy(iam: Any, role_name: str, policy_arn: str) -> bool:
    """Whether the role has this managed policy attached."""
    pages = iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name)
    return any(attached["PolicyArn"] == policy_arn for page in pages for attached in page["AttachedPolicies"])


def grant_name(purpose: str, *scope: str) -> str:
    """The name of the inline policy by which a shared delivery role may write to one
    ``scope`` (a log group, in a Region). A policy name is at most 128 characters and has
    no ``/`` or ``#``, so the readable part may lose some: a digest of the exact scope keeps
    two scopes from sharing a name, where the later grant would overwrite the earlier one
    and stop that delivery."""
    readable = re.sub(r"[^\w+=,.@-]", "-", "-".join((purpose, *scope)))[:111]
    digest = hashlib.sha256("\n".join(scope).encode()).hexdigest()[:16]
    return f"{readable}-{digest}"


Grants = Callable[[Mapping[str, Any], str, str], dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class ServiceRole:
    """The role a fix hands to an AWS service (or, for IAM.18, to the account's people): the
    one its playbook's ``role_name`` names, shared by every resource of the account.

    The member-role stack makes it (``asr policy template``), never the fix. IAM has no
    condition on the trust policy ``CreateRole`` is given or on what ``PutRolePolicy``
    writes, so a member role allowed either could make a role that trusts its holder, with
    any power, and so become an administrator of the account. The fix only reads the role,
    checks it is as the stack made it (``Action.ready_role``) and passes it to its service.
    """

    # Trust policy, with CloudFormation's ${AWS::...} placeholders.
    trust: dict[str, Any]
    description: str
    # AWS managed policies, by name (``service-role/...`` or a plain name).
    managed_policies: tuple[str, ...] = ()
    # Inline policies by name, from the playbook's parameters, the partition and the account.
    grants: Grants | None = None
    # An instance profile of the role's name, holding it (EC2 takes a profile, not a role).
    instance_profile: bool = False

    def inline(self, params: Mapping[str, Any], partition: str, account: str) -> dict[str, dict[str, Any]]:
        return self.grants(params, partition, account) if self.grants else {}


def _normal(value: Any) -> Any:
    """A policy document in a form two writings of the same policy share: IAM keeps what it
    was sent, and a one-item list, an unquoted boolean or another order of actions mean the
    same to it."""
    if isinstance(value, dict):
        return {key: _normal(item) for key, item in value.items()}
    if isinstance(value, list):
        items = sorted((_normal(item) for item in value), key=lambda item: json.dumps(item, sort_keys=True))
        return items[0] if len(items) == 1 else items
    if isinstance(value, bool):
        return str(value).lower()
    return value if value is None else str(value)


class RoleNotReady(ValueError):
    """The role a fix needs is missing, or not as the member-role stack makes it."""


class ChangeNotMade(RuntimeError):
    """The service took a change and then did not make it (rolled it back), or had not made it
    when the wait was up: FAILED, however the resource reads just then (a stack rolling back
    still lists what its update added)."""


class ChangedMeanwhile(Exception):
    """Raised by an ``apply`` whose own read just before its change (the version a conditional
    update needs) finds the change no longer needed: someone else made it since the fix read
    the resource. The runner then reads and plans again, as after a ``stale_plan_errors`` error,
    instead of crediting the fix with a change it did not make, which a rollback would undo."""


class MadeInPart(Exception):
    """Raised by an ``apply`` whose service made only part of the change and said so without
    an error (EC2 in a default VPC revokes the rules still there and lists the others, gone
    meanwhile, as unknown). ``state`` is the before-state of what it did change: recorded in
    place of the plan's, so a rollback puts back only that, not what another fix took away."""

    def __init__(self, state: dict[str, Any]) -> None:
        super().__init__("the change was made in part")
        self.state = state


class NotReversible(Exception):
    """A fix that cannot be undone; the message says why."""


class RevertedInPart(Exception):
    """Raised by ``revert`` once it has put back all it may: ``kept`` names the keys of the
    before-state that stay as the fix left them, each with why (something else relies on
    them since). The rollback checks the rest and reports PARTLY_REVERTED."""

    def __init__(self, kept: dict[str, str]) -> None:
        super().__init__("; ".join(kept.values()))
        self.kept = kept


class BulkRead(Action):
    """An action whose service describes many resources in one call (``describe``)."""

    bulk_size: ClassVar[int] = 200

    def describe(self, clients: Clients, resource_ids: list[str]) -> list[dict[str, Any]]:
        """The service's descriptions of these resources (one call, or one paginated listing)."""
        raise NotImplementedError

    def item_id(self, item: dict[str, Any]) -> str:
        raise NotImplementedError

    def state_of(self, item: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def complete(self, clients: Clients, states: dict[str, dict[str, Any] | Exception]) -> None:
        """Add what the descriptions lack and a fix must know before it changes anything (reads
        of another API), in place; a resource those reads fail for gets the error instead. Done
        once for all the states ``read_many`` returns, so a batch pays one such read per chunk or
        shared part (a target group), not one per resource. Nothing by default."""

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        items = self.describe(clients, [resource_id])
        if not items:
            raise LookupError(f"{resource_id} was not found")
        states: dict[str, dict[str, Any] | Exception] = {resource_id: self.state_of(items[0])}
        self.complete(clients, states)
        state = states[resource_id]
        if isinstance(state, Exception):
            raise state
        return state

    def read_many(self, clients: Clients, resource_ids: list[str]) -> dict[str, dict[str, Any] | Exception]:
        """One describe per ``bulk_size`` ids. A chunk the service refuses as a whole (one id
        deleted meanwhile fails the call) is left to single reads, which name the bad id."""
        from botocore.exceptions import ClientError

        from asr.pacing import throttled

        states: dict[str, dict[str, Any] | Exception] = {}
        for start in range(0, len(resource_ids), self.bulk_size):
            try:
                items = self.describe(clients, resource_ids[start : start + self.bulk_size])
            except ClientError as exc:
                if throttled(exc.response):
                    raise
                continue
            for item in items:
                try:
                    states[self.item_id(item)] = self.state_of(item)
                except Exception as exc:  # this resource cannot be fixed; the others still can
                    states[self.item_id(item)] = exc
        self.complete(clients, states)
        return states


def register(cls: type[Action]) -> type[Action]:
    if cls.name in REGISTRY:
        raise ActionError(f"action {cls.name!r} is registered twice")
    REGISTRY[cls.name] = cls
    return cls


def get_action(name: str) -> type[Action]:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ActionError(f"unknown action {name!r} (known: {known})") from None


def validate_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Check parameters against the action's schema; return them with schema defaults filled."""
    cls = get_action(name)
    try:
        validate_against(params, cls.schema)
    except jsonschema.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "parameters"
        raise ActionError(f"action {name!r}: {where}: {exc.message}") from None
    defaults = {
        key: spec["default"] for key, spec in cls.schema.get("properties", {}).items() if "default" in spec
    }
    return {**defaults, **params}


def build(name: str, params: dict[str, Any]) -> Action:
    return get_action(name)(validate_params(name, params))


def _load_modules() -> None:
    """Import every module of this package: importing a module registers its actions."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_load_modules()
