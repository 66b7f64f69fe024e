"""AWS clients across accounts: one per (account, region, service), and member credentials
assumed again before they expire."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asr import local
from asr.local import MEMBER_ACCOUNT

REGION = "us-east-1"


def assume_role_calls() -> int:
    return sum(
        1 for call in local.served_requests() if (call["service"], call["action"]) == ("sts", "AssumeRole")
    )


def test_threads_asking_at_once_share_one_client_and_one_assumed_role(aws: Any) -> None:
    local.served_requests(clear=True)
    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(lambda _: aws.client("ec2", MEMBER_ACCOUNT, REGION), range(16)))
    assert len({id(client) for client in made}) == 1
    assert assume_role_calls() == 1
    assert aws.client("ec2", MEMBER_ACCOUNT, "eu-west-1") is not made[0], "one client per region"
    assert assume_role_calls() == 1, "one role session per account"


def test_member_credentials_are_assumed_again_shortly_before_they_expire(aws: Any) -> None:
    first = aws.client("ec2", MEMBER_ACCOUNT, REGION)
    first_keys = aws.credentials(MEMBER_ACCOUNT)
    assert aws._expires[MEMBER_ACCOUNT] > time.time() + 1800, "the stand-in's sessions last an hour"
    local.served_requests(clear=True)
    assert aws.client("ec2", MEMBER_ACCOUNT, REGION) is first

    aws._expires[MEMBER_ACCOUNT] = time.time() + 60  # an hour later: about to expire
    again = aws.client("ec2", MEMBER_ACCOUNT, REGION)
    assert again is not first
    assert aws.credentials(MEMBER_ACCOUNT) != first_keys
    assert assume_role_calls() == 1
    again.describe_security_groups()
    assert aws.client("ec2", MEMBER_ACCOUNT, REGION) is again, "fresh credentials are kept"
