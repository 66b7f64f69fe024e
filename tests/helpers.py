"""Small helpers the test modules share."""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from asr.aws import Clients


@contextmanager
def hooked(client: Any, event: str, handler: Callable[..., Any]) -> Iterator[None]:
    """A botocore event handler on this client (a shared one: the stand-in's clients are
    cached) for the block only."""
    client.meta.events.register(event, handler)
    try:
        yield
    finally:
        client.meta.events.unregister(event, handler)


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


def signed_in_users(home: Path, users: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Users of the simple auth manager (name -> role), with fresh passwords: the Airflow
    environment that defines them, and each user's password."""
    home.mkdir(parents=True, exist_ok=True)
    passwords = {user: secrets.token_urlsafe(12) for user in users}
    (home / "passwords.json").write_text(json.dumps(passwords))
    environment = {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in users.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
    }
    return environment, passwords


class Api:
    """Airflow's REST API as one signed-in user of the simple auth manager."""

    def __init__(self, base: str, user: str, password: str) -> None:
        self.base = base
        token = requests.post(f"{base}/auth/token", json={"username": user, "password": password}, timeout=30)
        token.raise_for_status()
        self.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.request(
            method, f"{self.base}/api/v2{path}", json=body, headers=self.headers, timeout=60
        )
        assert response.ok, f"{method} {path}: {response.status_code} {response.text[:500]}"
        return response.json() if response.content else {}

    def wait(self, dag_id: str, run_id: str, timeout: float = 420) -> str:
        """The run's state once it has finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                return state
            time.sleep(3)
        raise TimeoutError(f"{dag_id} {run_id} still running after {timeout}s")

    def answer(self, path: str, option: str, refused_to: Api) -> None:
        """Answer the approval request at ``path`` (its hitlDetails), once Airflow has refused
        ``refused_to``'s Approve (403): ASR_APPROVERS does not name them."""
        refused = requests.patch(
            f"{self.base}/api/v2{path}",
            json={"chosen_options": ["Approve"]},
            headers=refused_to.headers,
            timeout=60,
        )
        assert refused.status_code == 403, refused.text[:300]
        self.call("PATCH", path, {"chosen_options": [option]})


def routing_record(
    control: str, resource_arn: str, resource_id: str, account: str, region: str = "us-east-1"
) -> Any:
    """A finding as the router hands it to a fix: control, playbook, account, region, resource."""
    from asr.findings import RoutingRecord
    from asr.playbooks import registry

    playbook = registry().for_control(control)
    return RoutingRecord(
        finding_id=f"finding-{resource_id}",
        product_arn="arn:aws:securityhub:us-east-1::product/aws/securityhub",
        control_id=control,
        standard="security-control",
        standard_control_id=control,
        playbook=playbook.control_id,
        account_id=account,
        region=region,
        resource_type=playbook.resource_type,
        resource_arn=resource_arn,
        resource_id=resource_id,
    )


def seeded_records(aws: Any, count: int, region: str = "us-east-1") -> list[Any]:
    """Routing records of ``count`` seeded, world-open security groups (EC2.13)."""
    from asr.local import MEMBER_ACCOUNT
    from asr.local.seed import seed_one
    from asr.playbooks import registry

    playbook = registry().for_control("EC2.13")
    records = []
    for n in range(count):
        arn = seed_one(aws, "EC2.13", MEMBER_ACCOUNT, region, n).resource_id
        resource_id = playbook.extract_resource_id(arn, MEMBER_ACCOUNT)
        records.append(routing_record("EC2.13", arn, resource_id, MEMBER_ACCOUNT, region))
    return records


PRODUCT = "arn:aws:securityhub:us-east-1::product/aws/securityhub"


def make_finding(n: int, **overrides: Any) -> dict[str, Any]:
    """A minimal control finding in ASFF, with ``overrides`` on top (the stand-in's own tests)."""
    finding = {
        "SchemaVersion": "2018-10-08",
        "Id": f"finding-{n}",
        "ProductArn": PRODUCT,
        "GeneratorId": "security-control/EC2.13",
        "AwsAccountId": "222222222222",
        "Types": ["Software and Configuration Checks"],
        "CreatedAt": "2026-01-01T00:00:00Z",
        "UpdatedAt": "2026-01-01T00:00:00Z",
        "Severity": {"Label": "HIGH"},
        "Title": "t",
        "Description": "d",
        "Resources": [{"Type": "AwsEc2SecurityGroup", "Id": f"sg-{n}", "Region": "us-east-1"}],
        "Compliance": {"Status": "FAILED", "SecurityControlId": "EC2.13"},
        "Workflow": {"Status": "NEW"},
        "RecordState": "ACTIVE",
    }
    finding.update(overrides)
    return finding


def assert_extracted_id(control: str, resource_arn: str, expected: str | None) -> None:
    """The id the control's playbook takes from a finding's resource ARN; None: refused."""
    import pytest

    from asr.local import MEMBER_ACCOUNT
    from asr.playbooks import registry

    playbook = registry().playbooks[control]
    if expected is None:
        with pytest.raises(ValueError, match="does not match"):
            playbook.extract_resource_id(resource_arn, MEMBER_ACCOUNT)
    else:
        assert playbook.extract_resource_id(resource_arn, MEMBER_ACCOUNT) == expected


class Refusals:
    """Answers the next calls of one operation with the AWS errors queued, and counts the
    calls: how a test plays a service that cannot use a role (or grant) made moments ago."""

    def __init__(self, client: Any, operation: str) -> None:
        self.calls = 0
        self.queued: list[dict[str, str]] = []
        event = f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}"
        client.meta.events.register(event, self._answer)

    def _answer(self, **_: Any) -> Any:
        self.calls += 1
        if self.queued:
            return type("Refused", (), {"status_code": 400})(), {"Error": self.queued.pop(0)}
        return None

    def next(self, *errors: dict[str, str]) -> None:
        """Refuse the next calls with these errors, in order, and count calls from now."""
        self.calls = 0
        self.queued[:] = list(errors)


def iam_writes(calls: list[str]) -> list[str]:
    """The IAM calls among ``service:Action`` names that change something: a fix that hands a
    role to a service makes none (the member-role stack made the role)."""
    return [
        c for c in calls if c.startswith("iam:") and not c.startswith(("iam:Get", "iam:List", "iam:PassRole"))
    ]


def vpc_with_subnets(
    ec2: Any, region: str, *zones: str, hostnames: bool = True, support: bool = True
) -> tuple[str, list[str]]:
    """A VPC 10.20.0.0/16 with the DNS attributes asked, and a /24 subnet in each zone named
    (a, b, ...), in that order."""
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": hostnames})
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": support})
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.20.{n}.0/24", AvailabilityZone=f"{region}{zone}")[
            "Subnet"
        ]["SubnetId"]
        for n, zone in enumerate(zones)
    ]
    return vpc_id, subnets


class StatsdListener:
    """A UDP socket in place of a StatsD server, read on a thread of its own (a busy
    scheduler fills a socket buffer nobody reads, and then packets are dropped): what was
    sent, one metric a line. ``environment``: Airflow's settings that send it there."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self.port = self._socket.getsockname()[1]
        self.environment = {
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(self.port),
        }
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._open = True
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while self._open:
            try:
                packet = self._socket.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._lines.extend(packet.decode(errors="replace").splitlines())

    def received(self, prefix: str = "", settle: float = 0.5) -> list[str]:
        """The lines that came since the last call, once ``settle`` seconds have passed (a
        local UDP packet is there at once; the pause lets the reader take it)."""
        time.sleep(settle)
        with self._lock:
            taken, self._lines = self._lines, []
        return [line for line in taken if line.startswith(prefix)]

    def close(self) -> None:
        self._open = False
        self._reader.join()
        self._socket.close()
