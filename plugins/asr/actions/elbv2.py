"""Elastic Load Balancing (v2) fixes: an Application Load Balancer that answers over plain HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asr.actions import Action, register

if TYPE_CHECKING:
    from asr.aws import Clients

HTTPS_PORT = 443
# Same host, path and query, over HTTPS on 443; 301 lets browsers remember the move.
REDIRECT = {
    "Type": "redirect",
    "RedirectConfig": {
        "Protocol": "HTTPS",
        "Port": str(HTTPS_PORT),
        "Host": "#{host}",
        "Path": "/#{path}",
        "Query": "#{query}",
        "StatusCode": "HTTP_301",
    },
}
HTTPS_PORTS = "HttpsPorts"


def to_https(action: dict[str, Any]) -> bool:
    """A redirect that sends the client to HTTPS (any host or port: the owner's choice)."""
    config = action.get("RedirectConfig") or {}
    return action.get("Type") == "redirect" and config.get("Protocol") == "HTTPS"


def https_redirect(actions: list[dict[str, Any]], https_ports: list[int]) -> dict[str, Any]:
    """What replaces actions that serve over HTTP: a redirect to HTTP keeps where it sends
    (host, path, query, status) over HTTPS (an old host sent on to a new one stays so); anything
    else redirects to the same URL. The port stays where it names another host's, or one of
    this load balancer's HTTPS listeners; else it is 443 (on the same host, 80 or another HTTP
    listener's port would take TLS it cannot answer)."""
    if len(actions) != 1 or actions[0].get("Type") != "redirect":
        return REDIRECT
    config = actions[0].get("RedirectConfig") or {}
    port = config.get("Port", "#{port}")
    elsewhere = config.get("Host", "#{host}") != "#{host}" and port not in ("#{port}", "80")
    if not elsewhere and not (port.isdigit() and int(port) in https_ports):
        port = str(HTTPS_PORT)
    return {"Type": "redirect", "RedirectConfig": {**config, "Protocol": "HTTPS", "Port": port}}


def is_rule(arn: str) -> bool:
    """Whether an ARN of the state names a listener rule (else it names a listener)."""
    return ":listener-rule/" in arn


def complies(arn: str, actions: list[dict[str, Any]]) -> bool:
    """A listener must redirect to HTTPS by default. Its other rules may also answer
    with a fixed response (a 403 on a path, a maintenance page), which carries nothing to a
    target; a rule that forwards, or redirects to plain HTTP, serves the app over HTTP."""
    if is_rule(arn):
        return all(to_https(a) or a.get("Type") == "fixed-response" for a in actions)
    return bool(actions) and all(to_https(a) for a in actions)


@register
class RedirectHttpToHttps(Action):
    """Make every HTTP listener of an Application Load Balancer redirect to HTTPS (301).

    What is checked is what AWS Config's ``alb-http-to-https-redirection-check`` counts: on
    each HTTP listener the default action, and every other rule that forwards (or redirects
    to HTTP), must redirect to HTTPS. Those get the redirect, keeping host, path and query
    (a redirect to HTTP keeps where it sends, over HTTPS); a rule keeps its conditions and
    priority. A default action or rule that already
    redirects to HTTPS, on whatever host or port, and fixed-response rules are kept.

    Clients that do not follow redirects (API calls, a POST) stop working over HTTP. The
    load balancer must have an HTTPS listener on 443 for the redirect to lead anywhere; one
    without it is refused, as is a network or gateway load balancer. A revert puts back the
    previous actions of each listener and rule the fix changed.

        remediation:
          action: elbv2.redirect-http-to-https
    """

    name = "elbv2.redirect-http-to-https"
    service = "elbv2"
    permissions = (
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeRules",
        "elasticloadbalancing:ModifyListener",
        "elasticloadbalancing:ModifyRule",
    )
    summary = "made every HTTP listener of the load balancer redirect to HTTPS"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        """The ports of the HTTPS listeners, and the actions of each HTTP listener's default
        rule (by listener ARN) and of its other rules (by rule ARN)."""
        elbv2 = clients.elbv2
        [balancer] = elbv2.describe_load_balancers(LoadBalancerArns=[resource_id])["LoadBalancers"]
        if balancer["Type"] != "application":
            raise ValueError(
                f"{resource_id} is a {balancer['Type']} load balancer, not an application load "
                "balancer: only an ALB's HTTP listeners can redirect to HTTPS"
            )
        pages = elbv2.get_paginator("describe_listeners").paginate(LoadBalancerArn=resource_id)
        listeners = [listener for page in pages for listener in page["Listeners"]]
        state: dict[str, Any] = {
            HTTPS_PORTS: sorted(listener["Port"] for listener in listeners if listener["Protocol"] == "HTTPS")
        }
        for listener in listeners:
            if listener["Protocol"] != "HTTP":
                continue
            state[listener["ListenerArn"]] = listener["DefaultActions"]
            rules = elbv2.get_paginator("describe_rules").paginate(ListenerArn=listener["ListenerArn"])
            for page in rules:
                state.update(
                    {rule["RuleArn"]: rule["Actions"] for rule in page["Rules"] if not rule["IsDefault"]}
                )
        return state

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        plan = {
            arn: [https_redirect(actions, state[HTTPS_PORTS])]
            for arn, actions in state.items()
            if arn != HTTPS_PORTS and not complies(arn, actions)
        }
        if plan and HTTPS_PORT not in state[HTTPS_PORTS]:
            ports = ", ".join(map(str, state[HTTPS_PORTS])) or "none"
            raise ValueError(
                f"the load balancer has no HTTPS listener on port {HTTPS_PORT} (HTTPS ports: {ports}): "
                "a redirect to it would lead nowhere; add one (with a certificate) first"
            )
        return plan

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        for arn, actions in plan.items():
            self._set(clients, arn, actions)

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """Put back the actions of the listeners and rules the fix changed: those its plan
        names for the state before it. The others it never touched are left as they are now."""
        for arn in self.plan(before):
            self._set(clients, arn, before[arn])

    def _set(self, clients: Clients, arn: str, actions: list[dict[str, Any]]) -> None:
        if is_rule(arn):
            clients.elbv2.modify_rule(RuleArn=arn, Actions=actions)
        else:
            clients.elbv2.modify_listener(ListenerArn=arn, DefaultActions=actions)
