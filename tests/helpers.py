"""Small helpers the test modules share."""

from __future__ import annotations

import socket
from typing import Any

from asr.aws import Clients


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def world_open(aws: Any, seeded: Any, region: str = "us-east-1") -> bool:
    """Whether a seeded security group still lets 0.0.0.0/0 in."""
    group_id = seeded.resource_id.rsplit("/", 1)[1]
    groups = Clients(aws, seeded.account_id, region).ec2.describe_security_groups(GroupIds=[group_id])
    rules = groups["SecurityGroups"][0]["IpPermissions"]
    return any(r["CidrIp"] == "0.0.0.0/0" for rule in rules for r in rule["IpRanges"])
