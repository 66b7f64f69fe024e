"""The member-role stack in a stand-in account, as a real deployment has it.

Fixes that hand a role to an AWS service (EC2.6, CloudTrail.5, RDS.6, ...) use the role the
member-role stack made (``asr.actions.ServiceRole``) and refuse to run without it. So a
stand-in account gets the stack, generated from the playbooks in use, before such a fix runs:
``asr local seed`` deploys it in the accounts it seeds such controls in, and tests call
``deploy`` where they make those resources themselves.
"""

from __future__ import annotations

import functools
import threading

from botocore.exceptions import ClientError

from asr import iam_policy
from asr.aws import AwsContext, Clients
from asr.config import Settings
from asr.local import ADMIN_ACCOUNT, ADMIN_ROLE_ARN
from asr.playbooks import registry

STACK_NAME = "asr-member"
# CloudFormation is regional and IAM global: one stack per account, in one Region.
STACK_REGION = "us-east-1"
_deploying = threading.Lock()


@functools.cache
def _template() -> str:
    """The stack's template for the playbooks in use (loaded once per process, as they are):
    generating it takes a second and a half, and the tests deploy it hundreds of times."""
    return iam_policy.generate("template", registry(), Settings())


def deploy(aws: AwsContext, account: str) -> None:
    """Create the member-role stack in the account, unless it has one; moto's CloudFormation
    creates it before answering, so its roles exist on return."""
    cloudformation = Clients(aws, account, STACK_REGION).cloudformation
    with _deploying:  # seeders of one account run in parallel
        try:
            cloudformation.describe_stacks(StackName=STACK_NAME)
            return
        except ClientError as exc:
            if "does not exist" not in str(exc):
                raise
        cloudformation.create_stack(
            StackName=STACK_NAME,
            TemplateBody=_template(),
            Parameters=[
                {"ParameterKey": "AdministratorAccountId", "ParameterValue": ADMIN_ACCOUNT},
                {"ParameterKey": "AdministratorRoleName", "ParameterValue": ADMIN_ROLE_ARN.rsplit("/", 1)[1]},
                {"ParameterKey": "ExternalId", "ParameterValue": ""},
            ],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        stack = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise RuntimeError(f"the member-role stack in {account}: {stack.get('StackStatusReason')}")
