"""CloudFront distribution updates guarded by their ETag, and origins answered as sent.

AWS versions a distribution's configuration: GetDistributionConfig answers it with an
ETag, UpdateDistribution must send that ETag as ``IfMatch``, a stale one is refused with
PreconditionFailed (412: someone else's update came in between), and every update gives
the distribution a new ETag. moto 5.2.5 accepts any ``IfMatch`` and never changes the
ETag, so a fix that sent a stale ETag, or did not read again after a conflict, would pass
against it. Here an update must name the current ETag and gets a new one.

moto also leaves an origin's ``S3OriginConfig`` and ``OriginAccessControlId`` out of what
it answers, so a fix that sends the configuration back whole (UpdateDistribution replaces
it) could not be shown to keep them; they are answered as they were sent.
"""

from __future__ import annotations

from typing import Any

from moto.cloudfront.exceptions import CloudFrontException
from moto.cloudfront.models import CloudFrontBackend, Distribution, Origin, random_id


class PreconditionFailed(CloudFrontException):
    def __init__(self) -> None:
        super().__init__(
            "PreconditionFailed",
            "The precondition given in one or more of the request fields evaluated to false.",
        )


_moto_update_distribution = CloudFrontBackend.update_distribution
_moto_origin_init = Origin.__init__


def update_distribution(
    self: CloudFrontBackend, dist_config: dict[str, Any], _id: str, if_match: str
) -> tuple[Distribution, str, str]:
    current = self.distributions.get(_id)
    if current is not None and if_match and if_match != current.etag:
        raise PreconditionFailed()
    dist, location, _ = _moto_update_distribution(self, dist_config, _id, if_match)
    dist.etag = random_id()
    return dist, location, dist.etag


def origin_init(self: Origin, origin: dict[str, Any]) -> None:
    _moto_origin_init(self, origin)
    # moto serializes public attributes by their camel-case names; None is left out.
    self.s3_origin_config = origin.get("S3OriginConfig")
    self.origin_access_control_id = origin.get("OriginAccessControlId")


def install() -> None:
    CloudFrontBackend.update_distribution = update_distribution  # type: ignore[method-assign]
    Origin.__init__ = origin_init  # type: ignore[method-assign]
