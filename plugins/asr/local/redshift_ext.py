"""Redshift audit logging to S3 as AWS checks it, which moto 5.2.5 does not.

AWS's EnableLogging to an S3 bucket refuses a bucket that does not exist
(``BucketNotFoundFault``) and one whose policy does not let Redshift write to it
(``InsufficientS3BucketPolicyFault``: the service principal ``redshift.amazonaws.com``
needs ``s3:PutObject`` and ``s3:GetBucketAcl``). moto takes any bucket name and reports
the cluster logging to it. Here the bucket must exist in the stand-in and its policy must
have an Allow statement for that principal (or ``*``) naming each action, or a wildcard
that covers it. Loosely: the statements' Resource and Condition are not looked at, nor
are Deny statements.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from moto.redshift.exceptions import RedshiftClientError
from moto.redshift.models import RedshiftBackend

REDSHIFT = "redshift.amazonaws.com"
WRITES = ("s3:PutObject", "s3:GetBucketAcl")

_moto_enable_logging = RedshiftBackend.enable_logging


class BucketNotFound(RedshiftClientError):
    def __init__(self, bucket: str) -> None:
        super().__init__("BucketNotFoundFault", f"Could not find the specified S3 bucket: {bucket}.")


class InsufficientBucketPolicy(RedshiftClientError):
    def __init__(self, bucket: str) -> None:
        super().__init__(
            "InsufficientS3BucketPolicyFault",
            f"Cannot read the bucket or put objects in S3 bucket {bucket}: check its bucket policy.",
        )


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _for_redshift(statement: dict[str, Any]) -> bool:
    principal = statement.get("Principal")
    if principal == "*":
        return True
    return isinstance(principal, dict) and REDSHIFT in _as_list(principal.get("Service", []))


def allowed(policy: str | None) -> set[str]:
    """Which of ``WRITES`` the bucket policy's Allow statements give Redshift."""
    if not policy:
        return set()
    statements = _as_list(json.loads(policy).get("Statement", []))
    patterns = [
        str(action).lower()
        for statement in statements
        if statement.get("Effect") == "Allow" and _for_redshift(statement)
        for action in _as_list(statement.get("Action", []))
    ]
    return {write for write in WRITES if any(fnmatch.fnmatchcase(write.lower(), p) for p in patterns)}


def check_bucket(account_id: str, partition: str, bucket_name: str | None) -> None:
    from moto.s3.models import s3_backends

    try:
        bucket = s3_backends[account_id][partition].get_bucket(bucket_name or "")
    except Exception:
        raise BucketNotFound(bucket_name or "") from None
    policy = bucket.policy.decode() if bucket.policy else None
    if allowed(policy) != set(WRITES):
        raise InsufficientBucketPolicy(bucket.name)


def enable_logging(
    self: RedshiftBackend,
    cluster_identifier: str,
    bucket_name: str | None,
    s3_key_prefix: str | None,
    log_destination_type: str | None,
    log_exports: list[str] | None,
) -> dict[str, Any]:
    if cluster_identifier in self.clusters and (log_destination_type or "s3") == "s3":
        check_bucket(self.account_id, self.partition, bucket_name)
    return _moto_enable_logging(
        self, cluster_identifier, bucket_name, s3_key_prefix, log_destination_type, log_exports
    )


def install() -> None:
    RedshiftBackend.enable_logging = enable_logging  # type: ignore[method-assign,assignment]
