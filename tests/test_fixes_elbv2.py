"""ELB.1: what the HTTP-to-HTTPS redirect fix sends, keeps, counts as compliant, refuses and reverts."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import assert_extracted_id
from test_fixes_data import parameters_sent

from asr import local
from asr.actions.elbv2 import REDIRECT
from asr.aws import Clients
from asr.local import MEMBER_ACCOUNT
from asr.local.seed import seed_one
from asr.playbooks import registry
from asr.remediate import Result, Status, remediate_resource

REGION = "us-east-1"
ARN = f"arn:aws:elasticloadbalancing:{REGION}:{MEMBER_ACCOUNT}:loadbalancer"
GOV_ARN = f"arn:aws-us-gov:elasticloadbalancing:us-gov-west-1:{MEMBER_ACCOUNT}:loadbalancer"
WRITES = ("ModifyListener", "ModifyRule")


def fix(aws: Any, resource_arn: str) -> Result:
    """Run the ELB.1 playbook on the load balancer its finding names."""
    playbook = registry().playbooks["ELB.1"]
    resource_id = playbook.extract_resource_id(resource_arn, MEMBER_ACCOUNT)
    return remediate_resource(playbook.build_action(), Clients(aws, MEMBER_ACCOUNT, REGION), resource_id)


def assert_permissions_cover_served_calls() -> None:
    """The calls the stand-in served are within the IAM actions declared. (moto names the
    service elbv2, IAM elasticloadbalancing: test_fixes_data's helper cannot pair them.)"""
    action = registry().playbooks["ELB.1"].build_action()
    served = {
        f"elasticloadbalancing:{c['action']}" for c in local.served_requests() if c["service"] == "elbv2"
    }
    assert served and served <= set(action.permissions)


def writes_served() -> list[str]:
    return [c["action"] for c in local.served_requests() if c["action"] in WRITES]


def make_balancer(
    clients: Clients, https_port: int | None = 443, kind: str = "application"
) -> tuple[str, str]:
    """A load balancer in a VPC of two subnets, with a target group and (``https_port``) an
    HTTPS listener forwarding to it: its ARN and the target group's."""
    vpc_id = clients.ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        clients.ec2.create_subnet(
            VpcId=vpc_id, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{REGION}{zone}"
        )["Subnet"]["SubnetId"]
        for i, zone in enumerate("ab")
    ]
    elbv2 = clients.elbv2
    arn = elbv2.create_load_balancer(Name="web", Subnets=subnets, Type=kind)["LoadBalancers"][0][
        "LoadBalancerArn"
    ]
    protocol = "HTTP" if kind == "application" else "TCP"
    group = elbv2.create_target_group(Name="web", Protocol=protocol, Port=80, VpcId=vpc_id)["TargetGroups"][0]
    if https_port is not None:
        certificate = clients.acm.request_certificate(DomainName="web.example.com")["CertificateArn"]
        elbv2.create_listener(
            LoadBalancerArn=arn,
            Protocol="HTTPS",
            Port=https_port,
            Certificates=[{"CertificateArn": certificate}],
            DefaultActions=[forward(group["TargetGroupArn"])],
        )
    return arn, group["TargetGroupArn"]


def forward(target_group: str) -> dict[str, Any]:
    return {"Type": "forward", "TargetGroupArn": target_group}


def http_listener(clients: Clients, arn: str, actions: list[dict[str, Any]], port: int = 80) -> str:
    listener = clients.elbv2.create_listener(
        LoadBalancerArn=arn, Protocol="HTTP", Port=port, DefaultActions=actions
    )
    return str(listener["Listeners"][0]["ListenerArn"])


def default_actions(clients: Clients, listener: str) -> list[dict[str, Any]]:
    return list(clients.elbv2.describe_listeners(ListenerArns=[listener])["Listeners"][0]["DefaultActions"])


def add_rule(clients: Clients, listener: str, priority: int, path: str, action: dict[str, Any]) -> str:
    rule = clients.elbv2.create_rule(
        ListenerArn=listener,
        Priority=priority,
        Conditions=[{"Field": "path-pattern", "Values": [path]}],
        Actions=[action],
    )
    return str(rule["Rules"][0]["RuleArn"])


def rules_of(clients: Clients, listener: str) -> dict[str, dict[str, Any]]:
    """The listener's rules other than the default, by ARN: priority, conditions, actions."""
    rules = clients.elbv2.describe_rules(ListenerArn=listener)["Rules"]
    return {
        r["RuleArn"]: {"Priority": r["Priority"], "Conditions": r["Conditions"], "Actions": r["Actions"]}
        for r in rules
        if not r["IsDefault"]
    }


def fixed_response(status: str) -> dict[str, Any]:
    return {
        "Type": "fixed-response",
        "FixedResponseConfig": {"StatusCode": status, "ContentType": "text/plain"},
    }


def redirect(protocol: str, host: str, port: str = "#{port}") -> dict[str, Any]:
    config = {"Protocol": protocol, "Host": host, "Port": port, "StatusCode": "HTTP_302"}
    return {"Type": "redirect", "RedirectConfig": config}


def test_seeded_http_listener_gets_the_redirect_and_https_is_kept(aws: Any) -> None:
    arn = seed_one(aws, "ELB.1", MEMBER_ACCOUNT, REGION).resource_id
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    described = clients.elbv2.describe_listeners(LoadBalancerArn=arn)["Listeners"]
    listeners = {listener["Protocol"]: listener for listener in described}
    http, https = listeners["HTTP"], listeners["HTTPS"]
    local.served_requests(clear=True)
    with parameters_sent(clients.elbv2, "ModifyListener") as sent:
        result = fix(aws, arn)
    assert result.status == Status.REMEDIATED, result.message
    assert sent == [{"ListenerArn": http["ListenerArn"], "DefaultActions": [REDIRECT]}]
    assert (result.before, result.after) == (
        {http["ListenerArn"]: http["DefaultActions"]},
        {http["ListenerArn"]: [REDIRECT]},
    )
    assert REDIRECT["RedirectConfig"] == {
        "Protocol": "HTTPS",
        "Port": "443",
        "Host": "#{host}",
        "Path": "/#{path}",
        "Query": "#{query}",
        "StatusCode": "HTTP_301",
    }
    assert default_actions(clients, https["ListenerArn"]) == https["DefaultActions"]
    assert_permissions_cover_served_calls()

    local.served_requests(clear=True)
    assert fix(aws, arn).status == Status.ALREADY_COMPLIANT
    assert writes_served() == []


def test_every_http_listener_is_fixed(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn, group = make_balancer(clients)
    first = http_listener(clients, arn, [forward(group)])
    second = http_listener(clients, arn, [forward(group)], port=8080)
    result = fix(aws, arn)
    assert result.status == Status.REMEDIATED, result.message
    assert set(result.before or {}) == {first, second}
    assert default_actions(clients, first) == default_actions(clients, second) == [REDIRECT]


def test_rules_that_serve_over_http_are_redirected_and_the_others_kept(aws: Any) -> None:
    """What AWS Config's alb-http-to-https-redirection-check counts: a rule that forwards, or
    redirects to plain HTTP, serves the app over HTTP; a fixed response and a redirect to HTTPS
    (to any host) do not."""
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn, group = make_balancer(clients)
    listener = http_listener(clients, arn, [forward(group)])
    weighted = {
        "Type": "forward",
        "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": group, "Weight": 3}]},
    }
    api = add_rule(clients, listener, 10, "/api/*", weighted)
    legacy = add_rule(clients, listener, 20, "/old/*", redirect("HTTP", "legacy.example.com"))
    add_rule(clients, listener, 30, "/admin/*", fixed_response("403"))
    add_rule(clients, listener, 40, "/shop/*", redirect("HTTPS", "shop.example.com", "8443"))
    rules = rules_of(clients, listener)
    local.served_requests(clear=True)
    with parameters_sent(clients.elbv2, "ModifyRule") as sent:
        result = fix(aws, arn)
    assert result.status == Status.REMEDIATED, result.message
    moved = redirect("HTTPS", "legacy.example.com", "443")  # still to the new host, over HTTPS
    assert sorted(sent, key=lambda p: p["RuleArn"]) == sorted(
        [{"RuleArn": api, "Actions": [REDIRECT]}, {"RuleArn": legacy, "Actions": [moved]}],
        key=lambda p: p["RuleArn"],
    )
    assert set(result.before or {}) == {listener, api, legacy}
    changed = {api: {**rules[api], "Actions": [REDIRECT]}, legacy: {**rules[legacy], "Actions": [moved]}}
    assert rules_of(clients, listener) == {**rules, **changed}, "priorities, conditions and other rules kept"
    assert_permissions_cover_served_calls()


@pytest.mark.parametrize(
    "actions",
    [
        [redirect("HTTPS", "#{host}", "443")],
        [redirect("HTTPS", "secure.example.com", "8443")],
    ],
    ids=["same-host", "other-host-and-port"],
)
def test_a_listener_that_already_redirects_to_https_is_left_alone(
    aws: Any, actions: list[dict[str, Any]]
) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn, _ = make_balancer(clients)
    listener = http_listener(clients, arn, actions)
    local.served_requests(clear=True)
    result = fix(aws, arn)
    assert result.status == Status.ALREADY_COMPLIANT
    assert writes_served() == []
    assert default_actions(clients, listener) == actions


@pytest.mark.parametrize(
    ("default", "port"),
    [
        (redirect("HTTP", "www.example.com"), "443"),
        (redirect("#{protocol}", "www.example.com", "80"), "443"),
        (redirect("HTTP", "www.example.com", "8443"), "8443"),
        (redirect("HTTP", "#{host}", "8080"), "443"),  # this balancer's other HTTP listener
    ],
    ids=["to-http", "to-same-protocol-on-80", "to-another-host-s-port", "to-its-own-http-port"],
)
def test_a_redirect_that_stays_on_http_goes_where_it_went_over_https(
    aws: Any, default: dict[str, Any], port: str
) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn, _ = make_balancer(clients)
    listener = http_listener(clients, arn, [default])
    assert fix(aws, arn).status == Status.REMEDIATED
    host = default["RedirectConfig"]["Host"]
    assert default_actions(clients, listener) == [redirect("HTTPS", host, port)]


def test_a_balancer_without_http_listeners_complies_even_without_https(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn, _ = make_balancer(clients, https_port=None)
    assert fix(aws, arn).status == Status.ALREADY_COMPLIANT


@pytest.mark.parametrize(("https_port", "ports"), [(None, "none"), (8443, "8443")], ids=["none", "not-443"])
def test_no_https_listener_on_443_is_refused_and_nothing_changed(
    aws: Any, https_port: int | None, ports: str
) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn, group = make_balancer(clients, https_port=https_port)
    listener = http_listener(clients, arn, [forward(group)])
    local.served_requests(clear=True)
    result = fix(aws, arn)
    assert result.status == Status.FAILED
    assert result.message == (
        f"ValueError: the load balancer has no HTTPS listener on port 443 (HTTPS ports: {ports}): "
        "a redirect to it would lead nowhere; add one (with a certificate) first"
    )
    assert writes_served() == []
    assert default_actions(clients, listener) == [forward(group)]


def test_a_network_load_balancer_is_refused(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn, _ = make_balancer(clients, https_port=None, kind="network")
    local.served_requests(clear=True)
    result = fix(aws, arn)
    assert result.status == Status.FAILED
    assert result.message == (
        f"ValueError: {arn} is a network load balancer, not an application load balancer: "
        "only an ALB's HTTP listeners can redirect to HTTPS"
    )
    assert writes_served() == []


def test_a_missing_load_balancer_fails_with_the_aws_reason(aws: Any) -> None:
    result = fix(aws, f"{ARN}/app/gone/0123456789abcdef")
    assert result.status == Status.FAILED
    assert result.message.startswith("LoadBalancerNotFound:")


def test_revert_puts_back_what_the_fix_changed_and_only_that(aws: Any) -> None:
    clients = Clients(aws, MEMBER_ACCOUNT, REGION)
    arn, group = make_balancer(clients)
    listener = http_listener(clients, arn, [forward(group)])
    api = add_rule(clients, listener, 10, "/api/*", forward(group))
    kept = add_rule(clients, listener, 20, "/admin/*", fixed_response("403"))
    action = registry().playbooks["ELB.1"].build_action()
    before = action.read(clients, arn)
    assert remediate_resource(action, clients, arn).status == Status.REMEDIATED
    # A rule the fix did not touch, changed since: the revert leaves it as it is now.
    since = fixed_response("404")
    clients.elbv2.modify_rule(RuleArn=kept, Actions=[since])

    local.served_requests(clear=True)
    action.revert(clients, arn, before)
    assert default_actions(clients, listener) == [forward(group)]
    rules = rules_of(clients, listener)
    assert (rules[api]["Actions"], rules[kept]["Actions"]) == ([forward(group)], [since])
    assert sorted(writes_served()) == ["ModifyListener", "ModifyRule"]


@pytest.mark.parametrize(
    ("resource_arn", "extracted"),
    [
        (f"{ARN}/app/web/50dc6c495c0c9188", True),
        (f"{GOV_ARN}/app/web/50dc6c495c0c9188", True),
        (f"{ARN}/net/web/50dc6c495c0c9188", True),
        (f"{ARN}/web", False),  # a Classic Load Balancer: ELB.1 is not its control
        (f"{ARN}/app/web/50dc6c495c0c9188/extra", False),
        (f"arn:aws:elasticloadbalancing:{REGION}:{MEMBER_ACCOUNT}:targetgroup/web/50dc6c495c0c9188", False),
    ],
)
def test_the_whole_arn_is_the_resource_id(resource_arn: str, extracted: bool) -> None:
    assert_extracted_id("ELB.1", resource_arn, resource_arn if extracted else None)
