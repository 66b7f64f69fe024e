"""SSM service settings (GetServiceSetting / UpdateServiceSetting / ResetServiceSetting), which
moto 5.2.5 lacks, added to moto's own SSM backend.

A service setting is an account-and-region value with an AWS-defined default. Only the
settings in ``SETTINGS`` are modelled (their default and the values AWS accepts); any other
id is ``ServiceSettingNotFound``, as an unprovisioned setting is in AWS. ``SettingId`` may be
the id (``/ssm/...``) or the setting's ARN in this account and region.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.ssm.exceptions import SSMException, ValidationException
from moto.ssm.models import SimpleSystemManagerBackend
from moto.ssm.responses import SimpleSystemManagerResponse
from moto.sts.models import sts_backends

# Setting id -> (AWS default, the values UpdateServiceSetting accepts).
SETTINGS: dict[str, tuple[str, frozenset[str]]] = {
    "/ssm/documents/console/public-sharing-permission": ("Enable", frozenset({"Enable", "Disable"})),
}
SYSTEM = "System"


class ServiceSettingNotFound(SSMException):
    code = "ServiceSettingNotFound"


@dataclass
class ServiceSetting:
    value: str
    modified: Any
    modified_by: str
    status: str


def _settings(backend: SimpleSystemManagerBackend) -> dict[str, ServiceSetting]:
    if not hasattr(backend, "asr_service_settings"):
        backend.asr_service_settings = {}  # type: ignore[attr-defined]
    return backend.asr_service_settings  # type: ignore[attr-defined]


def _arn_prefix(backend: SimpleSystemManagerBackend) -> str:
    return f"arn:{backend.partition}:ssm:{backend.region_name}:{backend.account_id}:servicesetting"


def _setting_id(backend: SimpleSystemManagerBackend, setting_id: str | None) -> str:
    if not setting_id:
        raise ValidationException("SettingId is required")
    prefix = _arn_prefix(backend)
    if setting_id.startswith(prefix + "/"):
        setting_id = setting_id[len(prefix) :]
    if setting_id not in SETTINGS:
        raise ServiceSettingNotFound(f"The service setting {setting_id} was not found")
    return setting_id


def _current(backend: SimpleSystemManagerBackend, setting_id: str) -> ServiceSetting:
    default, _ = SETTINGS[setting_id]
    return _settings(backend).setdefault(setting_id, ServiceSetting(default, utcnow(), SYSTEM, "Default"))


def _describe(backend: SimpleSystemManagerBackend, setting_id: str) -> dict[str, Any]:
    setting = _current(backend, setting_id)
    return {
        "SettingId": setting_id,
        "SettingValue": setting.value,
        "LastModifiedDate": setting.modified,
        "LastModifiedUser": setting.modified_by,
        "ARN": _arn_prefix(backend) + setting_id,
        "Status": setting.status,
    }


def get_service_setting(self: SimpleSystemManagerBackend, setting_id: str) -> dict[str, Any]:
    return _describe(self, _setting_id(self, setting_id))


def update_service_setting(
    self: SimpleSystemManagerBackend, setting_id: str, value: str | None, caller: str
) -> None:
    setting_id = _setting_id(self, setting_id)
    _, allowed = SETTINGS[setting_id]
    if value not in allowed:
        raise ValidationException(
            f"Invalid value {value!r} for {setting_id}; allowed values: {', '.join(sorted(allowed))}"
        )
    _settings(self)[setting_id] = ServiceSetting(value, utcnow(), caller, "Customized")


def reset_service_setting(self: SimpleSystemManagerBackend, setting_id: str, caller: str) -> dict[str, Any]:
    setting_id = _setting_id(self, setting_id)
    default, _ = SETTINGS[setting_id]
    _settings(self)[setting_id] = ServiceSetting(default, utcnow(), caller, "Default")
    return _describe(self, setting_id)


def _caller_arn(response: SimpleSystemManagerResponse) -> str:
    backend = sts_backends[response.current_account][response.partition]
    return backend.get_caller_identity(response.get_access_key(), response.region)[1]


def get_service_setting_response(self: SimpleSystemManagerResponse) -> ActionResult:
    setting = self.ssm_backend.get_service_setting(self._get_param("SettingId"))
    return ActionResult({"ServiceSetting": setting})


def update_service_setting_response(self: SimpleSystemManagerResponse) -> ActionResult:
    self.ssm_backend.update_service_setting(
        self._get_param("SettingId"), self._get_param("SettingValue"), _caller_arn(self)
    )
    return EmptyResult()


def reset_service_setting_response(self: SimpleSystemManagerResponse) -> ActionResult:
    setting = self.ssm_backend.reset_service_setting(self._get_param("SettingId"), _caller_arn(self))
    return ActionResult({"ServiceSetting": setting})


def install() -> None:
    for name, method in (
        ("get_service_setting", get_service_setting),
        ("update_service_setting", update_service_setting),
        ("reset_service_setting", reset_service_setting),
    ):
        setattr(SimpleSystemManagerBackend, name, method)
    for name, response in (
        ("get_service_setting", get_service_setting_response),
        ("update_service_setting", update_service_setting_response),
        ("reset_service_setting", reset_service_setting_response),
    ):
        setattr(SimpleSystemManagerResponse, name, response)
