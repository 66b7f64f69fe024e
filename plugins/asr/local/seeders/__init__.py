"""Seeders: each makes one misconfiguration in the stand-in that a playbook fixes.

A seeder is registered for the control ids whose findings it produces, creates the
misconfigured resource (or breaks the account setting) in the given account and
region, and returns the ASFF resource a finding would name. One module per service,
beside the action module of the same name.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from asr.aws import AwsContext


@dataclass(frozen=True)
class Seeded:
    control_id: str
    account_id: str
    region: str
    resource_type: str
    resource_id: str
    severity: str = "MEDIUM"


Seeder = Callable[[AwsContext, str, str, str, int], Seeded]
SEEDERS: dict[str, Seeder] = {}


def seeder(*control_ids: str) -> Callable[[Seeder], Seeder]:
    def add(fn: Seeder) -> Seeder:
        for control_id in control_ids:
            SEEDERS[control_id] = fn
        return fn

    return add


def account_resource(control_id: str, account: str, region: str) -> Seeded:
    return Seeded(control_id, account, region, "AwsAccount", f"AWS::::Account:{account}")


def _load_modules() -> None:
    """Import every module of this package: importing a module registers its seeders."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_load_modules()
