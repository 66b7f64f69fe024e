"""CodeBuild fixes: a build project's environment, sent back whole with one setting changed.

UpdateProject takes the environment as one structure (``type``, ``image`` and
``computeType`` required) and replaces the project's with it: a member left out is not
kept (its environment variables, say, are dropped). So a
change reads the project just before it, and sends its environment back as read with only
the fix's member changed. CodeBuild has no conditional update: an edit someone makes
between that read and the update is lost, a window of one call. What comes back is what
botocore's model knows: a member CodeBuild added after the installed botocore would be reset
by the update, so botocore is kept current (``constraints.txt``).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import hmac
import re
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from asr.actions import BulkRead, ChangedMeanwhile, NotReversible, register

if TYPE_CHECKING:
    from asr.aws import Clients

PRIVILEGED = "PrivilegedMode"
PROJECT_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{1,149}"
PROJECT_ARN = re.compile(rf"^arn:([a-z-]+):codebuild:([a-z0-9-]+):(\d{{12}}):project/({PROJECT_NAME})$")
# The variables AWS Config's codebuild-project-envvar-awscred-check looks at: NON_COMPLIANT
# when either is of type PLAINTEXT (CodeBuild's default type).
CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
PLAINTEXT = "PlaintextCredentials"  # {variable: digest of its value}; never the value
STORED = "StoredCredentials"  # {variable: the Parameter Store parameter it names}
PROJECT = "Project"  # the project's name, which the parameters' names take
# The IAM action CodeBuild calls, as the project's service role, to read PARAMETER_STORE variables.
READ_PARAMETERS = "ssm:GetParameters"
# Parameter Store's limits on a name: 1,011 characters counting the ARN before it, 15 levels;
# none may begin with aws or ssm.
PARAMETER_NAME_MAX = 1011
# The longest ARN before a name: the longest partition, a Region name of up to 20 characters.
ARN_BEFORE_NAME = len("arn:aws-us-gov:ssm:") + 20 + len(":123456789012:parameter")
DEFAULT_PREFIX = "/asr/codebuild"
PREFIX_MAX = PARAMETER_NAME_MAX - ARN_BEFORE_NAME - len("/") - 150 - len("/") - max(map(len, CREDENTIALS))


def sendable_environment(environment: dict[str, Any], **members: Any) -> dict[str, Any]:
    """The environment as BatchGetProjects read it, fit to send to UpdateProject with these
    ``members`` set: every other member kept (UpdateProject resets what it is not sent),
    except the Docker server's ``status``, which CodeBuild reports and refuses as input."""
    sent = copy.deepcopy(environment)
    if isinstance(sent.get("dockerServer"), dict):
        sent["dockerServer"].pop("status", None)
    return sent | members


def digest(project_arn: str, value: str) -> str:
    """What a state keeps of a credential: enough to tell that the value did not change between
    the read and the change, never the value (the state goes to the journal, the report and
    Security Hub's notes). Keyed by the project, so equal keys of two projects do not show."""
    return hmac.new(project_arn.encode(), value.encode(), hashlib.sha256).hexdigest()[:16]


def parameter_arn(project_arn: str, name: str) -> str:
    """The ARN of a Parameter Store parameter (its name begins with ``/``) in the project's
    partition, Region and account."""
    match = PROJECT_ARN.match(project_arn)
    if not match:
        raise ValueError(f"{project_arn!r} is not the ARN of a CodeBuild project")
    partition, region, account, _ = match.groups()
    return f"arn:{partition}:ssm:{region}:{account}:parameter{name}"


class ProjectAction(BulkRead):
    """A fix of CodeBuild projects, each named by its whole ARN (BatchGetProjects takes it, and
    it names one account and Region). Each sends the project's environment back whole, so the
    fixes of one project take turns (one claim): at once, the later would put back the setting
    the other had just changed (privileged mode on again, a credential in clear text again)."""

    claims_as = "codebuild:project-environment"
    service = "codebuild"
    bulk_size = 100  # BatchGetProjects takes at most 100 names

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        if not PROJECT_ARN.match(resource_id):
            raise ValueError(f"{resource_id!r} is not the ARN of a CodeBuild project")
        return super().read(clients, resource_id)

    def describe(self, clients: Clients, resource_ids: list[str]) -> list[dict[str, Any]]:
        """The projects these ARNs name. Anything else is left out (a name would find a project
        of this account and Region by name alone), to fail its own read saying why."""
        names = [resource_id for resource_id in resource_ids if PROJECT_ARN.match(resource_id)]
        if not names:
            return []
        return list(clients.codebuild.batch_get_projects(names=names).get("projects") or ())

    def item_id(self, item: dict[str, Any]) -> str:
        return str(item["arn"])

    def project(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        """The project as it reads now, for a change built from it."""
        projects = self.describe(clients, [resource_id])
        if not projects:
            raise LookupError(f"{resource_id} was not found")
        return projects[0]


@register
class DisablePrivilegedMode(ProjectAction):
    """Turn off privileged mode in a CodeBuild project's build environment.

    Privileged mode runs the build container with the host's privileges so that it can run
    its own Docker daemon (to build images): a buildspec, or a dependency it runs, can then
    reach the host. Without it, builds that start or talk to a Docker daemon fail, hence an
    approval. Every other setting of the environment (image, compute, variables, registry
    credentials, certificate, fleet) goes back as read; nothing outside it is sent. A
    project whose mode is off already (or unset: off by default) gets no call. Reverting
    turns privileged mode back on, the rest of the environment again as it reads then.

        remediation:
          action: codebuild.disable-privileged-mode
    """

    name = "codebuild.disable-privileged-mode"
    permissions = ("codebuild:BatchGetProjects", "codebuild:UpdateProject")
    summary = "turned off privileged mode in the CodeBuild project's environment"

    def state_of(self, item: dict[str, Any]) -> dict[str, Any]:
        return {PRIVILEGED: bool((item.get("environment") or {}).get("privilegedMode"))}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        return {PRIVILEGED: False} if state[PRIVILEGED] else {}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        if not self._set(clients, resource_id, plan[PRIVILEGED]):
            raise ChangedMeanwhile("the project's privileged mode was turned off since it was read")

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        self._set(clients, resource_id, bool(before[PRIVILEGED]))

    def _set(self, clients: Clients, resource_id: str, privileged: bool) -> bool:
        """Send the project's environment, read now, back with privileged mode ``privileged``;
        False (nothing sent) when it is so already."""
        project = self.project(clients, resource_id)
        environment = project.get("environment") or {}
        if bool(environment.get("privilegedMode")) == privileged:
            return False
        clients.codebuild.update_project(
            name=project["name"], environment=sendable_environment(environment, privilegedMode=privileged)
        )
        return True


def _credentials(project: dict[str, Any]) -> list[dict[str, Any]]:
    """The project's variables named as AWS credentials; one of a name (two would make
    which one a build sees, and which one the fix moved, a guess)."""
    variables = (project.get("environment") or {}).get("environmentVariables") or []
    named = [variable for variable in variables if variable.get("name") in CREDENTIALS]
    seen = [variable["name"] for variable in named]
    twice = sorted({name for name in seen if seen.count(name) > 1})
    if twice:
        raise ValueError(
            f"the project has more than one variable named {' and '.join(twice)}; nothing changed"
        )
    return named


def _plaintext(variable: dict[str, Any]) -> bool:
    return variable.get("type", "PLAINTEXT") == "PLAINTEXT"


@register
class StoreCredentialsInParameterStore(ProjectAction):
    """Move a CodeBuild project's clear-text AWS credentials into Parameter Store.

    The variables ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` of type PLAINTEXT
    (what CodeBuild.2 fails) each become a SecureString parameter
    ``<parameter_prefix>/<project>/<variable>``, under the account's AWS managed key
    ``aws/ssm`` (whose key policy lets every principal of the account decrypt through Parameter
    Store: no KMS grant is needed in IAM), and the variable becomes of type PARAMETER_STORE
    naming it. Builds see the same values, so no approval is asked, provided the project's
    service role may read the parameters: that is checked first with IAM's policy simulator
    (the role's policies and boundary, and SCPs as far as the simulator applies them; not a
    KMS key policy), and when it may not, the fix fails naming the grant the role needs and
    changes nothing (ASR writes no IAM policy).

    Nothing else changes: the environment goes back as read, other variables included. A
    parameter is made only where none is (``Overwrite`` false); one there already is used
    when it holds the same value as a SecureString (an earlier try made it), else the fix
    fails and changes nothing: never someone else's parameter overwritten. Parameters made
    before an update that then fails stay, and a retry uses them. A value changed
    since the read is not stored: the project is read and planned again. States keep only
    the variables' names and a digest of each value.

    The key was readable by anyone who could read the project: the result says to rotate it
    (``caveat``). Reverting puts the variables that still name the fix's parameters back in
    clear text, with the value each parameter holds, if it holds the value moved (a key rotated
    since is not put in clear text), and deletes those parameters: a copy of a key in clear
    text again would be one more place to rotate it in, and a later fix makes them anew.

        remediation:
          action: codebuild.store-credentials-in-parameter-store
          parameters:
            parameter_prefix: /asr/codebuild    # the default
    """

    name = "codebuild.store-credentials-in-parameter-store"
    permissions = (
        "codebuild:BatchGetProjects",
        "codebuild:UpdateProject",
        "iam:SimulatePrincipalPolicy",
        "ssm:GetParameter",
        "ssm:PutParameter",
    )
    revert_permissions = ("ssm:DeleteParameter",)
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "parameter_prefix": {
                "type": "string",
                # Levels of Parameter Store's characters, at most 13 (a name has 15 with the
                # project's and the variable's); none beginning with aws or ssm, which AWS keeps.
                "pattern": r"^(?!.*\s)(?!/[aA][wW][sS]|/[sS][sS][mM])(/[A-Za-z0-9_.-]+){1,13}$",
                "maxLength": PREFIX_MAX,
                "default": DEFAULT_PREFIX,
            }
        },
    }
    summary = (
        "moved the project's clear-text AWS credentials to SecureString parameters under {parameter_prefix}"
    )

    def parameter(self, project: str, variable: str) -> str:
        """The name of the parameter that holds one variable of one project."""
        return f"{self.params['parameter_prefix']}/{project}/{variable}"

    def state_of(self, item: dict[str, Any]) -> dict[str, Any]:
        named = _credentials(item)
        return {
            PROJECT: item["name"],
            PLAINTEXT: {v["name"]: digest(item["arn"], v.get("value", "")) for v in named if _plaintext(v)},
            STORED: {v["name"]: v.get("value") for v in named if v.get("type") == "PARAMETER_STORE"},
        }

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        if not state[PLAINTEXT]:
            return {}
        moved = {variable: self.parameter(state[PROJECT], variable) for variable in state[PLAINTEXT]}
        return {PLAINTEXT: {}, STORED: {**state[STORED], **moved}}

    def caveat(self, state: dict[str, Any]) -> str | None:
        moved = sorted(v for v, name in state[STORED].items() if name == self.parameter(state[PROJECT], v))
        if not moved:
            return None
        return (
            f"{' and '.join(moved)} were readable in clear text by anyone allowed to read the project "
            "(codebuild:BatchGetProjects, the console): rotate that access key (a new key in the "
            "parameters, then the old one deactivated and deleted)"
        )

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        project = self.project(clients, resource_id)
        values = {v["name"]: v.get("value", "") for v in _credentials(project) if _plaintext(v)}
        if {name: digest(project["arn"], value) for name, value in values.items()} != state[PLAINTEXT]:
            raise ChangedMeanwhile("the project's clear-text credentials changed since they were read")
        empty = sorted(variable for variable, value in values.items() if not value)
        if empty:
            raise ValueError(
                f"{' and '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty, and Parameter Store "
                "takes no empty value: set or remove the variable; nothing changed"
            )
        names = {variable: self.parameter(project["name"], variable) for variable in values}
        self._check_role_reads(clients, project, sorted(names.values()))
        ssm = clients.ssm
        missing = [variable for variable in values if not self._holds(ssm, names[variable], values[variable])]
        for variable in missing:
            try:
                ssm.put_parameter(
                    Name=names[variable],
                    Value=values[variable],
                    Type="SecureString",
                    Overwrite=False,
                    Description=f"{variable} of the CodeBuild project {project['arn']}, moved by ASR",
                )
            except ssm.exceptions.ParameterAlreadyExists:  # made since the check: its value tells by whom
                if not self._holds(ssm, names[variable], values[variable]):
                    raise
        self._send(clients, project, {v: {"type": "PARAMETER_STORE", "value": names[v]} for v in values})

    def _holds(self, ssm: Any, name: str, value: str) -> bool:
        """Whether the SecureString parameter ``name`` holds ``value`` (False: there is none).
        Anything else there is someone's: the fix fails and overwrites nothing."""
        try:
            parameter = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
        except ssm.exceptions.ParameterNotFound:
            return False
        if parameter.get("Type") != "SecureString" or not hmac.compare_digest(
            str(parameter.get("Value", "")).encode(), value.encode()
        ):
            raise ValueError(
                f"the parameter {name} exists and holds another value, or not as a SecureString: "
                "it is not overwritten (one left by an earlier fix of this project, before its key "
                "was rotated, may be deleted); nothing changed"
            )
        return True

    def _check_role_reads(self, clients: Clients, project: dict[str, Any], names: list[str]) -> None:
        """Raise unless IAM's simulator says the project's service role may read these
        parameters: builds would fail to start."""
        role = project.get("serviceRole")
        if not role:
            raise ValueError("the project has no service role to read the parameters with; nothing changed")
        arns = [parameter_arn(project["arn"], name) for name in names]
        verdicts: dict[str, set[str]] = defaultdict(set)
        pages = clients.iam.get_paginator("simulate_principal_policy").paginate(
            PolicySourceArn=role, ActionNames=[READ_PARAMETERS], ResourceArns=arns
        )
        for result in (result for page in pages for result in page["EvaluationResults"]):
            verdicts[result.get("EvalResourceName", "")].add(result["EvalDecision"])
            for one in result.get("ResourceSpecificResults") or ():
                verdicts[one["EvalResourceName"]].add(one["EvalResourceDecision"])
        refused = [arn for arn in arns if verdicts.get(arn) != {"allowed"}]
        if refused:
            raise ValueError(
                f"the project's service role {role} may not read {', '.join(refused)} "
                f"({READ_PARAMETERS}), so its builds would fail: grant it {READ_PARAMETERS} there "
                "(ASR changes no IAM policy); nothing changed"
            )

    def _send(self, clients: Clients, project: dict[str, Any], changes: dict[str, dict[str, str]]) -> None:
        """Send the project's environment back with these variables' type and value changed."""
        environment = project.get("environment") or {}
        variables = [
            {**variable, **changes[variable["name"]]} if variable.get("name") in changes else variable
            for variable in environment.get("environmentVariables") or []
        ]
        clients.codebuild.update_project(
            name=project["name"],
            environment=sendable_environment(environment, environmentVariables=variables),
        )

    def check_revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        self._restorable(clients, resource_id, before)

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> dict[str, Any]:
        """Put back in clear text the variables that still name the fix's parameters, then
        delete those parameters; returns what that makes of the before-state, a variable
        changed since left out."""
        project, values = self._restorable(clients, resource_id, before)
        if values:
            self._send(
                clients, project, {v: {"type": "PLAINTEXT", "value": value} for v, value in values.items()}
            )
        ssm = clients.ssm
        for variable in values:
            with contextlib.suppress(ssm.exceptions.ParameterNotFound):  # deleted meanwhile
                ssm.delete_parameter(Name=self.parameter(before[PROJECT], variable))
        state = self.state_of(project)
        return {
            PLAINTEXT: {**state[PLAINTEXT], **{v: before[PLAINTEXT][v] for v in values}},
            STORED: {v: name for v, name in state[STORED].items() if v not in values},
        }

    def _restorable(
        self, clients: Clients, resource_id: str, before: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """The project, and the values to put back of the variables that still name the fix's
        parameters. NotReversible when a parameter is gone, or holds another value than the fix
        moved (a rotated key, which must not go back in clear text)."""
        project = self.project(clients, resource_id)
        stored = self.state_of(project)[STORED]
        ssm, values = clients.ssm, {}
        for variable, moved in before[PLAINTEXT].items():
            name = self.parameter(before[PROJECT], variable)
            if stored.get(variable) != name:
                continue
            try:
                value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
            except ssm.exceptions.ParameterNotFound:
                raise NotReversible(
                    f"the parameter {name} was deleted since: the value it held is gone"
                ) from None
            if digest(project["arn"], value) != moved:
                raise NotReversible(
                    f"the parameter {name} holds another value than the fix moved (a key rotated since?): "
                    "it is not put back in clear text"
                )
            values[variable] = value
        return project, values
