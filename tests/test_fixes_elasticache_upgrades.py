"""ElastiCache.2: automatic minor version upgrades, turned on where the flag lives (group or cluster)."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import assert_extracted_id
from test_fixes_data import assert_permissions_cover_served_calls, parameters_sent
from test_fixes_elasticache_backups import make_cluster

from asr import local
from asr.actions.elasticache import version
from asr.aws import Clients
from asr.findings import parse_finding
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import Seeded, finding, seed_one
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource

REGION = "us-east-1"
ARN = f"arn:aws:elasticache:{REGION}:{MEMBER_ACCOUNT}"
CONTROL = "ElastiCache.2"
WRITES = ("ModifyCacheCluster", "ModifyReplicationGroup")
NO_WRITES = {"ModifyCacheCluster": [], "ModifyReplicationGroup": []}


def fix(aws: Any, resource_arn: str) -> Result:
    playbook = registry().playbooks[CONTROL]
    resource_id = playbook.extract_resource_id(resource_arn, MEMBER_ACCOUNT)
    return remediate_resource(playbook.build_action(), Clients(aws, MEMBER_ACCOUNT, REGION), resource_id)


def sent_writes(aws: Any, resource_arn: str) -> tuple[Result, dict[str, list[dict[str, Any]]]]:
    """The fix's result, and the parameters of each write call it made, by operation."""
    elasticache = Clients(aws, MEMBER_ACCOUNT, REGION).elasticache
    with (
        parameters_sent(elasticache, WRITES[0]) as cluster_calls,
        parameters_sent(elasticache, WRITES[1]) as group_calls,
    ):
        result = fix(aws, resource_arn)
    return result, {WRITES[0]: cluster_calls, WRITES[1]: group_calls}


def make_member(clients: Clients, group: str, upgrade: bool) -> str:
    """A group with a primary and a replica, and a third member the finding names."""
    clients.elasticache.create_replication_group(
        ReplicationGroupId=group,
        ReplicationGroupDescription="test",
        Engine="redis",
        CacheNodeType="cache.t3.micro",
        ReplicasPerNodeGroup=1,
        AutoMinorVersionUpgrade=upgrade,
    )
    return make_cluster(clients, f"{group}-003", EngineVersion="7.1", ReplicationGroupId=group)


def upgrades(clients: Clients, cluster: str) -> tuple[bool, bool | None]:
    """The cluster's flag, and its group's (None for a cluster on its own)."""
    described = clients.elasticache.describe_cache_clusters(CacheClusterId=cluster)["CacheClusters"][0]
    group_id = described.get("ReplicationGroupId")
    if not group_id:
        return described["AutoMinorVersionUpgrade"], None
    group = clients.elasticache.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][
        0
    ]
    return described["AutoMinorVersionUpgrade"], group["AutoMinorVersionUpgrade"]


def test_a_cluster_on_its_own_is_changed_by_itself_at_once_within_the_permissions(aws: Any) -> None:
    arn = seed_one(aws, CONTROL, MEMBER_ACCOUNT, REGION).resource_id
    name = arn.rsplit(":", 1)[1]
    local.served_requests(clear=True)
    result, sent = sent_writes(aws, arn)
    assert (result.status, result.before, result.after) == (
        Status.REMEDIATED,
        {"AutoMinorVersionUpgrade": False},
        {"AutoMinorVersionUpgrade": True},
    ), result.message
    assert result.message == "enabled automatic minor version upgrades"
    # No ApplyImmediately: the flag is never queued, and sending it would hurry other queued changes.
    assert sent == {
        "ModifyCacheCluster": [{"CacheClusterId": name, "AutoMinorVersionUpgrade": True}],
        "ModifyReplicationGroup": [],
    }
    assert upgrades(Clients(aws, MEMBER_ACCOUNT, REGION), name) == (True, None)
    assert_permissions_cover_served_calls(CONTROL)


def test_a_member_is_changed_through_its_group(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_member(clients, "orders", upgrade=False)
    assert upgrades(clients, "orders-003") == (False, False)
    local.served_requests(clear=True)
    result, sent = sent_writes(aws, arn)
    assert (result.status, result.before, result.after) == (
        Status.REMEDIATED,
        {"AutoMinorVersionUpgrade": False},
        {"AutoMinorVersionUpgrade": True},
    ), result.message
    assert sent == {
        "ModifyCacheCluster": [],
        "ModifyReplicationGroup": [{"ReplicationGroupId": "orders", "AutoMinorVersionUpgrade": True}],
    }
    assert upgrades(clients, "orders-003") == (True, True)
    assert_permissions_cover_served_calls(CONTROL)


@pytest.mark.parametrize(
    "settings",
    [{}, {"AutoMinorVersionUpgrade": True}, {"Engine": "valkey", "AutoMinorVersionUpgrade": True}],
    ids=["aws-default", "turned-on", "valkey"],
)
def test_a_cluster_already_upgraded_by_itself_is_left_alone(aws: Any, settings: dict[str, Any]) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    engine = settings.pop("Engine", "redis")
    arn = make_cluster(clients, "orders", engine=engine, **settings)
    result, sent = sent_writes(aws, arn)
    assert result.status == Status.ALREADY_COMPLIANT, result.message
    assert sent == NO_WRITES


def test_a_member_of_a_group_already_upgraded_is_left_alone(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_member(clients, "orders", upgrade=True)
    result, sent = sent_writes(aws, arn)
    assert result.status == Status.ALREADY_COMPLIANT, result.message
    assert sent == NO_WRITES


@pytest.mark.parametrize(
    ("engine", "engine_version"),
    [("redis", "6.x"), ("redis", "6.0"), ("redis", "7.1"), ("valkey", "7.2"), ("valkey", "8.0")],
)
def test_redis_from_6_0_and_valkey_are_fixed(aws: Any, engine: str, engine_version: str) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_cluster(
        clients, "orders", engine=engine, EngineVersion=engine_version, AutoMinorVersionUpgrade=False
    )
    result = fix(aws, arn)
    assert result.status == Status.REMEDIATED, result.message
    assert upgrades(clients, "orders") == (True, None)


@pytest.mark.parametrize("engine_version", ["5.0.6", "4.0.10", "3.2.6"])
def test_redis_before_6_0_is_refused_and_left_alone(aws: Any, engine_version: str) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_cluster(clients, "legacy", EngineVersion=engine_version, AutoMinorVersionUpgrade=False)
    result, sent = sent_writes(aws, arn)
    assert result.status == Status.FAILED
    assert result.message == (
        f"ValueError: the cluster runs Redis OSS {engine_version}, which takes no automatic minor version "
        "upgrades (from 6.0 on): upgrade its engine, then fix it again"
    )
    assert sent == NO_WRITES
    assert upgrades(clients, "legacy") == (False, None)
    action = registry().playbooks[CONTROL].build_action()
    dry = remediate_resource(action, clients, arn, dry=True)
    assert (dry.status, dry.message) == (Status.FAILED, result.message), "a dry run says what the fix refuses"


def test_memcached_is_refused_and_left_alone(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_cluster(clients, "sessions", engine="memcached", AutoMinorVersionUpgrade=False)
    result, sent = sent_writes(aws, arn)
    assert result.status == Status.FAILED
    assert result.message.startswith(
        "ValueError: cache cluster sessions runs memcached, which ElastiCache.2 does not check"
    )
    assert sent == NO_WRITES


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("7.1", (7, 1)), ("6.2.6", (6, 2)), ("6.x", (6, 0)), ("7", (7, 0)), ("", None), (None, None)],
)
def test_engine_versions_are_read_as_major_and_minor(
    text: str | None, parsed: tuple[int, int] | None
) -> None:
    assert version(text) == parsed


def test_missing_cluster_fails_with_the_aws_reason(aws: Any) -> None:
    result = fix(aws, f"{ARN}:cluster:gone")
    assert result.status == Status.FAILED
    assert result.message.startswith("CacheClusterNotFound:")


@pytest.mark.parametrize("kind", ["own", "member"])
def test_revert_turns_the_flag_off_again_where_it_lives(aws: Any, kind: str) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    if kind == "own":
        arn, name = make_cluster(clients, "orders", AutoMinorVersionUpgrade=False), "orders"
    else:
        arn, name = make_member(clients, "orders", upgrade=False), "orders-003"
    action = registry().playbooks[CONTROL].build_action()
    before = action.read(clients, arn)
    assert fix(aws, arn).status == Status.REMEDIATED
    operation = WRITES[0] if kind == "own" else WRITES[1]
    with parameters_sent(clients.elasticache, operation) as sent:
        action.revert(clients, arn, before)
    assert [call["AutoMinorVersionUpgrade"] for call in sent] == [False]
    assert action.read(clients, arn) == before
    assert upgrades(clients, name) == ((False, None) if kind == "own" else (False, False))


def test_a_finding_of_the_generic_type_routes_with_the_whole_arn(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn = make_cluster(clients, "orders", AutoMinorVersionUpgrade=False)
    record = parse_finding(finding(Seeded(CONTROL, MEMBER_ACCOUNT, REGION, "Other", arn)), registry())
    assert (record.control_id, record.resource_id, record.parameters) == (CONTROL, arn, {})


@pytest.mark.parametrize(
    ("resource_arn", "matches"),
    [
        (f"{ARN}:cluster:orders-001", True),
        (f"arn:aws-us-gov:elasticache:us-gov-west-1:{MEMBER_ACCOUNT}:cluster:orders", True),
        (f"{ARN}:cluster:{'o' * 50}", True),
        (f"{ARN}:cluster:{'o' * 51}", False),
        (f"{ARN}:cluster:2orders", False),
        (f"{ARN}:replicationgroup:orders", False),
        (f"{ARN}:serverlesscache:orders", False),
    ],
)
def test_the_whole_cluster_arn_is_the_resource_id(resource_arn: str, matches: bool) -> None:
    assert_extracted_id(CONTROL, resource_arn, resource_arn if matches else None)


def test_the_action_named_a_group_changes_the_group(aws: Any) -> None:
    """The playbook takes cluster ARNs only (the control judges clusters); the action, given a
    group's ARN, reads and changes the group itself."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    make_member(clients, "orders", upgrade=False)
    arn = f"{ARN}:replicationgroup:orders"
    action = registry().playbooks[CONTROL].build_action()
    with parameters_sent(clients.elasticache, WRITES[1]) as sent:
        result = remediate_resource(action, clients, arn)
    assert (result.status, result.after) == (Status.REMEDIATED, {"AutoMinorVersionUpgrade": True}), (
        result.message
    )
    assert sent == [{"ReplicationGroupId": "orders", "AutoMinorVersionUpgrade": True}]
    assert upgrades(clients, "orders-003") == (True, True)
