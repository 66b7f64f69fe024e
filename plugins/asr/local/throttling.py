"""Turn the stand-in's AWS-style throttling on and off, and read its counts, from tests and
benchmarks (the server side is ``throttling_ext.py``; see docs/stand-in-throttling.md).

    throttling.enable(ec2_write=(5, 1))                        # EC2 mutating bucket 5, refill 1/s
    throttling.enable(**{"securityhub:GetFindings": {"burst": 0, "rate": 0}})  # always throttled
    throttling.stats()["throttled"]
    throttling.disable()
"""

from __future__ import annotations

from typing import Any

import requests

from asr import local

PATH = "/moto-api/asr/throttling"

BucketSpec = dict[str, Any] | tuple[float, float] | tuple[float, float, str] | None


def _rule_key(name: str) -> str:
    """``ec2_write`` -> ``ec2:write``: boto3 service names have no underscore, so keyword
    arguments can name a rule; names with ``:`` pass as they are."""
    if ":" in name:
        return name
    service, sep, actions = name.partition("_")
    if not sep:
        raise ValueError(f"rule {name!r} names no API class: use <service>_<Action|read|write>")
    return f"{service}:{actions}"


def _bucket(spec: BucketSpec) -> dict[str, Any] | None:
    if spec is None or isinstance(spec, dict):
        return spec
    burst, rate, *per = spec
    return {"burst": burst, "rate": rate, **({"per": per[0]} if per else {})}


def _call(method: str, port: int | None, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = requests.request(method, f"{local.endpoint_url(port)}{PATH}", json=body, timeout=10)
    if response.status_code == 400:
        raise ValueError(response.json().get("error", response.text))
    response.raise_for_status()
    return response.json()


def enable(port: int | None = None, **overrides: BucketSpec) -> dict[str, Any]:
    """Throttle with AWS's defaults, overridden per rule; every bucket starts full. A
    bucket is ``(burst, rate)``, ``(burst, rate, "action")``, a dict, or None (unlimited)."""
    buckets = {_rule_key(name): _bucket(spec) for name, spec in overrides.items()}
    return _call("POST", port, {"enabled": True, "buckets": buckets})


def disable(port: int | None = None) -> dict[str, Any]:
    """Turn throttling off and restore the defaults; returns the state just before."""
    return _call("DELETE", port)


def stats(port: int | None = None) -> dict[str, Any]:
    """Whether it is on, the rules in force, and each bucket's tokens, served and throttled calls."""
    return _call("GET", port)
