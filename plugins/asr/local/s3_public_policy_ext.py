"""S3 Block Public Access refusing public bucket policies, as S3 does.

With ``BlockPublicPolicy`` on, for the bucket or for its account, S3 refuses every
PutBucketPolicy whose policy grants public access (403 ``AccessDenied``): a policy that
was public before the setting went on stays, but cannot be written again, not even to add
a Deny to it. moto 5.2.5 stores the setting and writes any policy. Here the write is
refused as S3 refuses it; a policy is public as moto's own GetBucketPolicyStatus judges it
(a statement allowing everyone, with no condition).
"""

from __future__ import annotations

from moto.s3.exceptions import AccessDeniedByLock
from moto.s3.models import S3Backend
from moto.s3.utils import bucket_policy_is_public
from moto.s3control.exceptions import NoSuchPublicAccessBlockConfiguration
from moto.s3control.models import s3control_backends

_moto_put_bucket_policy = S3Backend.put_bucket_policy


def blocks_public_policy(backend: S3Backend, bucket_name: str) -> bool:
    """Whether the bucket's own setting, or its account's, blocks public policies."""
    bucket = backend.get_bucket(bucket_name)
    if bucket.public_access_block is not None and bucket.public_access_block.block_public_policy:
        return True
    try:
        account = s3control_backends[backend.account_id][backend.partition].get_public_access_block(
            backend.account_id
        )
    except NoSuchPublicAccessBlockConfiguration:
        return False
    return bool(account.block_public_policy)


def put_bucket_policy(self: S3Backend, bucket_name: str, policy: bytes) -> None:
    if bucket_policy_is_public(policy) and blocks_public_policy(self, bucket_name):
        raise AccessDeniedByLock()
    _moto_put_bucket_policy(self, bucket_name, policy)


def install() -> None:
    S3Backend.put_bucket_policy = put_bucket_policy  # type: ignore[method-assign]
