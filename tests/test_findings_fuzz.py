"""Arbitrary JSON never breaks finding intake: it is routed or rejected with a FindingError."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asr.findings import FindingError, explain, parse_finding
from asr.local.seed import Seeded, finding
from asr.playbooks import registry

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)

VALID = [
    finding(
        Seeded(
            "EC2.13",
            "222222222222",
            "us-east-1",
            "AwsEc2SecurityGroup",
            "arn:aws:ec2:us-east-1:222222222222:security-group/sg-0123456789abcdef0",
        )
    ),
    finding(
        Seeded("IAM.14", "222222222222", "us-east-1", "AwsAccount", "AWS::::Account:222222222222"),
        standard="cis-aws-foundations-benchmark/v/1.2.0",
        standard_control="1.8",
    ),
]


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


PATHS = sorted({p for f in VALID for p in paths(f)}, key=repr)


@st.composite
def mutated_findings(draw: st.DrawFn) -> Any:
    """A valid finding with a few fields replaced by arbitrary JSON or removed."""
    result = copy.deepcopy(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        parent = result
        try:
            for step in path[:-1]:
                parent = parent[step]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation already replaced this part
    return result


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, mutated_findings()))
def test_intake_raises_nothing_but_its_own_error(document: Any) -> None:
    try:
        record = parse_finding(document, registry())
    except FindingError as exc:
        assert exc.reason
        return
    assert record.playbook in registry().playbooks
    assert explain(document, registry())["finding_id"] == record.finding_id
