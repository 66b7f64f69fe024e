"""Macie in an account that has not turned it on, and paused Macie, which moto 5.2.5 lacks.

- moto starts every account and Region with Macie enabled; in AWS it is off until
  ``EnableMacie``. Here an account starts without a Macie session.
- Without a session AWS answers ``GetMacieSession`` with AccessDeniedException ("Macie is not
  enabled"); moto with ResourceNotFoundException. Here as AWS does, and the same for
  ``UpdateMacieSession``.
- moto has no ``UpdateMacieSession``, by which Macie is paused, resumed, or publishes findings
  at another frequency. Here it has.
"""

from __future__ import annotations

import json
from typing import Any

from moto.core.utils import utcnow
from moto.macie2.exceptions import AccessDeniedException
from moto.macie2.models import MacieBackend
from moto.macie2.responses import MacieResponse

NOT_ENABLED = "Macie is not enabled."


def install() -> None:
    created = MacieBackend.__init__
    described = MacieBackend.get_macie_session

    def __init__(self: MacieBackend, region_name: str, account_id: str) -> None:
        created(self, region_name, account_id)
        self.macie_session = None

    def get_macie_session(self: MacieBackend) -> dict[str, Any]:
        if not self.macie_session:
            raise AccessDeniedException(NOT_ENABLED)
        return described(self)

    def update_macie_session(self: MacieBackend, status: str | None, frequency: str | None) -> None:
        if not self.macie_session:
            raise AccessDeniedException(NOT_ENABLED)
        if status:
            self.macie_session["status"] = status
        if frequency:
            self.macie_session["findingPublishingFrequency"] = frequency
        self.macie_session["updatedAt"] = utcnow()

    def update_macie_session_request(self: MacieResponse) -> str:
        self.macie_backend.update_macie_session(
            self._get_param("status"), self._get_param("findingPublishingFrequency")
        )
        return json.dumps({})

    MacieBackend.__init__ = __init__  # type: ignore[method-assign]
    MacieBackend.get_macie_session = get_macie_session  # type: ignore[method-assign]
    MacieBackend.update_macie_session = update_macie_session  # type: ignore[attr-defined]
    MacieResponse.update_macie_session = update_macie_session_request  # type: ignore[attr-defined]
