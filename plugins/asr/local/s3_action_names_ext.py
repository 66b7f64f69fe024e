"""S3 bucket calls named after the API they are, not after moto's fallback.

moto names each S3 request from a table of bucket sub-resources (``?policy``, ``?acl``
...) and falls back to the method's default when the sub-resource is missing from it:
``GetBucketEncryption`` is then named ``ListBucket``, ``PutBucketEncryption`` and
``PutPublicAccessBlock`` ``CreateBucket``, ``DeletePublicAccessBlock`` ``DeleteBucket``
(moto 5.2.5 spells that one ``public_access_block``, which no request carries). The
request log and the stand-in's throttling read that name, so a sweep that fixes bucket
encryption showed up as creating buckets. Here the sub-resources the fixes use get
their own names.
"""

from __future__ import annotations

from typing import Any

from moto.s3.responses import S3Response

# Bucket sub-resource -> the name of its call by method.
NAMES: dict[str, dict[str, str]] = {
    "encryption": {
        "GET": "GetBucketEncryption",
        "PUT": "PutBucketEncryption",
        "DELETE": "DeleteBucketEncryption",
    },
    "publicAccessBlock": {
        "GET": "GetPublicAccessBlock",
        "PUT": "PutPublicAccessBlock",
        "DELETE": "DeletePublicAccessBlock",
    },
    "ownershipControls": {
        "GET": "GetBucketOwnershipControls",
        "PUT": "PutBucketOwnershipControls",
        "DELETE": "DeleteBucketOwnershipControls",
    },
}

_moto_set_action = S3Response._set_action


def _set_action(
    self: S3Response, action_resource_type: str, method: str, querystring: dict[str, Any]
) -> None:
    _moto_set_action(self, action_resource_type, method, querystring)
    if action_resource_type == "BUCKET":
        for subresource, names in NAMES.items():
            if subresource in querystring and method in names:
                self.data["Action"] = names[method]


def install() -> None:
    S3Response._set_action = _set_action  # type: ignore[method-assign]
