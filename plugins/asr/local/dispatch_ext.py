"""Faster request routing in moto's server: the stand-in's hot path under load.

moto 5.2's ``DomainDispatcherApplication`` picks the backend of every request while
holding one server-wide lock, and to do so lists moto's package folder on disk and then
tries a few hundred URL patterns. Profiled under a sweep's 30-odd concurrent connections,
that was 15% of the stand-in's CPU, all of it serialized. A host always maps to the same
backend, so the answer is remembered per host: it is exactly the one moto would give.

Then, for every request, moto lists the functions of the service's response class (for
EC2 several hundred members, through ``inspect.getmembers``) to check that the action
is one of them: a sixth of the stand-in's CPU under a sweep. The list is now made once
per class. A class gains no methods after the extensions are installed, which is done
before the first request is served.
"""

from __future__ import annotations

from typing import Any

from moto.core import responses
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_backend_for_host = DomainDispatcherApplication.get_backend_for_host
_method_names_from_class = responses.method_names_from_class
_method_names: dict[type, list[str]] = {}


def get_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
    """moto's own choice, remembered per host (moto calls this under its dispatch lock)."""
    known: dict[str | None, Any] = self.__dict__.setdefault("_asr_backend_by_host", {})
    if host not in known:
        known[host] = _backend_for_host(self, host)
    return known[host]


def method_names_from_class(clazz: type) -> list[str]:
    """moto's list of a response class's functions, made once per class."""
    names = _method_names.get(clazz)
    if names is None:
        names = _method_names[clazz] = _method_names_from_class(clazz)
    return names


def install() -> None:
    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]
    responses.method_names_from_class = method_names_from_class
