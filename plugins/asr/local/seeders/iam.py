"""IAM misconfigurations."""

from __future__ import annotations

from asr.aws import AwsContext
from asr.local.seeders import Seeded, account_resource, seeder


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
