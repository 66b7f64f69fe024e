"""IAM misconfigurations."""

from __future__ import annotations

import uuid
from typing import Any

from asr.aws import AwsContext
from asr.local.seeders import Seeded, account_resource, backdate, days_ago, seeder


@seeder("IAM.7", "IAM.11", "IAM.12", "IAM.13", "IAM.14", "IAM.15", "IAM.16", "IAM.17")
def weak_password_policy(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    aws.client("iam", account, region).update_account_password_policy(
        MinimumPasswordLength=8,
        RequireNumbers=False,
        RequireSymbols=False,
        RequireUppercaseCharacters=True,
        RequireLowercaseCharacters=True,
        AllowUsersToChangePassword=True,
    )
    return account_resource(control_id, account, region)


# Credentials age only as time passes; the stand-in backdates them (asr.local.iam_ext).
CREDENTIAL_HISTORY_PATH = "/moto-api/asr/iam/credential-history"
PASSWORD = "password"


def set_credential_history(
    endpoint: str | None,
    account: str,
    user_name: str,
    credential: str,
    created: str,
    last_used: str | None = None,
) -> None:
    """Make one access key (by id) or the console password (``"password"``) look created and
    last used (None: never) at the given ISO times."""
    body = {
        "account_id": account,
        "user_name": user_name,
        "credential": credential,
        "created": created,
        "last_used": last_used,
    }
    backdate(endpoint, CREDENTIAL_HISTORY_PATH, body, f"IAM credential {credential}")


def _seed_user(iam: Any, control_id: str, n: int) -> dict[str, Any]:
    name = f"asr-seed-{control_id.lower().replace('.', '')}-{n}-{uuid.uuid4().hex[:6]}"
    return iam.create_user(UserName=name, Path="/asr-seed/")["User"]


@seeder("IAM.3")
def old_access_key(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A user whose only key was created 400 days ago and is still in daily use."""
    iam = aws.client("iam", account, region)
    user = _seed_user(iam, control_id, n)
    key = iam.create_access_key(UserName=user["UserName"])["AccessKey"]
    set_credential_history(
        aws.endpoint_for("iam"), account, user["UserName"], key["AccessKeyId"], days_ago(400), days_ago(1)
    )
    return Seeded(control_id, account, region, "AwsIamUser", user["Arn"], "MEDIUM")


@seeder("IAM.8", "IAM.22")
def unused_credentials(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """A user with a key last used 200 days ago and a console password never used since
    it was set 400 days ago: unused beyond both the 90-day (IAM.8) and 45-day (IAM.22) limits."""
    iam = aws.client("iam", account, region)
    user = _seed_user(iam, control_id, n)
    name = user["UserName"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    iam.create_login_profile(UserName=name, Password=f"Seed-{uuid.uuid4().hex}-Aa1!")
    endpoint = aws.endpoint_for("iam")
    set_credential_history(endpoint, account, name, key["AccessKeyId"], days_ago(400), days_ago(200))
    set_credential_history(endpoint, account, name, PASSWORD, days_ago(400), None)
    return Seeded(control_id, account, region, "AwsIamUser", user["Arn"], "MEDIUM")


@seeder("IAM.18")
def no_support_role(aws: AwsContext, control_id: str, account: str, region: str, n: int) -> Seeded:
    """No user, group or role may open AWS Support cases: detach AWSSupportAccess everywhere."""
    iam = aws.client("iam", account, region)
    policy_arn = f"arn:{iam.meta.partition}:iam::aws:policy/AWSSupportAccess"
    detach = {
        "PolicyRoles": lambda e: iam.detach_role_policy(RoleName=e["RoleName"], PolicyArn=policy_arn),
        "PolicyUsers": lambda e: iam.detach_user_policy(UserName=e["UserName"], PolicyArn=policy_arn),
        "PolicyGroups": lambda e: iam.detach_group_policy(GroupName=e["GroupName"], PolicyArn=policy_arn),
    }
    for page in iam.get_paginator("list_entities_for_policy").paginate(PolicyArn=policy_arn):
        for field, detach_one in detach.items():
            for entity in page.get(field, []):
                detach_one(entity)
    return Seeded(control_id, account, region, "AwsAccount", f"AWS::::Account:{account}", "LOW")
