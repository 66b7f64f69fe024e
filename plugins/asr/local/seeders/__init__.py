"""Seeders: each makes one misconfiguration in the stand-in that a playbook fixes.

A seeder is registered for the control ids whose findings it produces, creates the
misconfigured resource (or breaks the account setting) in the given account and
region, and returns the ASFF resource a finding would name. One module per service,
beside the action module of the same name.
"""

from __future__ import annotations

import datetime
import importlib
import json
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

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


def days_ago(days: float) -> str:
    return (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days)).isoformat()


def backdate(endpoint: str | None, path: str, body: dict[str, Any], what: str) -> None:
    """Ask the stand-in to make ``what`` look older than it is (``asr.local.history_api``):
    resources age only as time passes, and the fixes that judge age need old ones."""
    if not endpoint:
        raise RuntimeError(f"{what} can only be backdated in the local stand-in")
    response = requests.post(endpoint.rstrip("/") + path, json=body, timeout=10)
    if not response.ok:
        raise RuntimeError(f"the stand-in refused to backdate {what}: {response.text}")


def service_role(iam: Any, name: str, service: str) -> str:
    """A role ``service`` may assume, made once per account: moto checks that a role handed to
    a seeded resource exists."""
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
        return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])


def _load_modules() -> None:
    """Import every module of this package: importing a module registers its seeders."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_load_modules()
