"""CloudWatch fixes: log group retention, and the CIS Benchmark's alarms on CloudTrail events."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from asr.actions import Action, register, topic_name_parameter

if TYPE_CHECKING:
    from asr.aws import Clients

# The only values PutRetentionPolicy accepts, in days.
RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip


def retention_at_least(days: int) -> int:
    """The shortest retention CloudWatch Logs accepts that keeps events for at least ``days``."""
    return next(allowed for allowed in RETENTION_DAYS if allowed >= days)


def describe_log_group(logs: Any, name: str) -> dict[str, Any]:
    """The log group of exactly this name (a prefix search also returns longer names)."""
    kwargs: dict[str, Any] = {"logGroupNamePrefix": name}
    while True:
        page = logs.describe_log_groups(**kwargs)
        for group in page.get("logGroups", []):
            if group["logGroupName"] == name:
                return group
        if not page.get("nextToken"):
            raise LookupError(f"log group {name!r} not found")
        kwargs["nextToken"] = page["nextToken"]


@register
class SetLogGroupRetention(Action):
    """Keep a log group's events for at least ``min_retention_days``.

    A longer retention, or none at all ("never expire"), already complies and is kept.
    A minimum CloudWatch Logs does not offer is rounded up to the next value it does.

        remediation:
          action: logs.set-log-group-retention
          parameters: {min_retention_days: 365}
    """

    name = "logs.set-log-group-retention"
    service = "logs"
    permissions = ("logs:DescribeLogGroups", "logs:PutRetentionPolicy")
    summary = "set the log group's retention to at least {min_retention_days} days"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "min_retention_days": {"type": "integer", "minimum": 1, "maximum": 3653, "default": 365},
        },
    }

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        # CloudWatch Logs leaves retentionInDays out when events never expire.
        return {"retentionInDays": describe_log_group(clients.logs, resource_id).get("retentionInDays")}

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        current, minimum = state["retentionInDays"], self.params["min_retention_days"]
        if current is None or current >= minimum:
            return {}
        return {"retentionInDays": retention_at_least(minimum)}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        clients.logs.put_retention_policy(logGroupName=resource_id, retentionInDays=plan["retentionInDays"])

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        """The shorter retention back: events older than it are then deleted, as they were due to be."""
        clients.logs.put_retention_policy(logGroupName=resource_id, retentionInDays=before["retentionInDays"])


def _events(*names: str, source: str | None = None) -> str:
    """A filter pattern matching CloudTrail events of these names (from this service)."""
    either = " || ".join(f"($.eventName = {name})" for name in names)
    return f"{{ ($.eventSource = {source}) && ({either}) }}" if source else f"{{ {either} }}"


# The CIS AWS Foundations Benchmark's metric filter (v1.2.0 section 3) for each kind of event its
# monitoring controls (CloudWatch.1 to .14) want an alarm on, by the name a playbook gives.
CIS_FILTERS: dict[str, str] = {
    "root-user-usage": (
        '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS '
        '&& $.eventType != "AwsServiceEvent" }'
    ),
    "unauthorized-api-calls": (
        '{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") }'
    ),
    "console-sign-in-without-mfa": (
        '{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") }'
    ),
    "iam-policy-changes": _events(
        *(f"{verb}{kind}Policy" for verb in ("Delete", "Put") for kind in ("Group", "Role", "User")),
        "CreatePolicy",
        "DeletePolicy",
        "CreatePolicyVersion",
        "DeletePolicyVersion",
        *(f"{verb}{kind}Policy" for kind in ("Role", "User", "Group") for verb in ("Attach", "Detach")),
    ),
    "cloudtrail-configuration-changes": _events(
        "CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging"
    ),
    "console-authentication-failures": (
        '{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }'
    ),
    "customer-managed-key-deletion": _events("DisableKey", "ScheduleKeyDeletion", source="kms.amazonaws.com"),
    "s3-bucket-policy-changes": _events(
        *(
            f"Put{what}"
            for what in ("BucketAcl", "BucketPolicy", "BucketCors", "BucketLifecycle", "BucketReplication")
        ),
        *(f"Delete{what}" for what in ("BucketPolicy", "BucketCors", "BucketLifecycle", "BucketReplication")),
        source="s3.amazonaws.com",
    ),
    "config-configuration-changes": _events(
        "StopConfigurationRecorder",
        "DeleteDeliveryChannel",
        "PutDeliveryChannel",
        "PutConfigurationRecorder",
        source="config.amazonaws.com",
    ),
    "security-group-changes": _events(
        "AuthorizeSecurityGroupIngress",
        "AuthorizeSecurityGroupEgress",
        "RevokeSecurityGroupIngress",
        "RevokeSecurityGroupEgress",
        "CreateSecurityGroup",
        "DeleteSecurityGroup",
    ),
    "nacl-changes": _events(
        "CreateNetworkAcl",
        "CreateNetworkAclEntry",
        "DeleteNetworkAcl",
        "DeleteNetworkAclEntry",
        "ReplaceNetworkAclEntry",
        "ReplaceNetworkAclAssociation",
    ),
    "network-gateway-changes": _events(
        "CreateCustomerGateway",
        "DeleteCustomerGateway",
        "AttachInternetGateway",
        "CreateInternetGateway",
        "DeleteInternetGateway",
        "DetachInternetGateway",
    ),
    "route-table-changes": _events(
        "CreateRoute",
        "CreateRouteTable",
        "ReplaceRoute",
        "ReplaceRouteTableAssociation",
        "DeleteRouteTable",
        "DeleteRoute",
        "DisassociateRouteTable",
    ),
    "vpc-changes": _events(
        "CreateVpc",
        "DeleteVpc",
        "ModifyVpcAttribute",
        "AcceptVpcPeeringConnection",
        "CreateVpcPeeringConnection",
        "DeleteVpcPeeringConnection",
        "RejectVpcPeeringConnection",
        "AttachClassicLinkVpc",
        "DetachClassicLinkVpc",
        "DisableVpcClassicLink",
        "EnableVpcClassicLink",
    ),
}
NO_TRAIL = (
    "the account has no multi-Region trail of its own that sends its events to its CloudWatch Logs, "
    "which the alarm needs: fix CloudTrail.1 and CloudTrail.5 first"
)
NOT_LOGGING = (
    "the account's multi-Region trails that send to its CloudWatch Logs ({trails}) are stopped or "
    "do not take every read and write management event, which Security Hub asks of the alarm's "
    "trail: start the trail, or fix CloudTrail.1, first"
)


def same_pattern(a: str, b: str) -> bool:
    """Filter patterns compared as CloudWatch Logs reads them: spacing does not count."""
    return re.sub(r"\s+", "", a) == re.sub(r"\s+", "", b)


def trail_log_group(clients: Clients) -> str:
    """The log group ARN of the account's own multi-Region trail that sends to CloudWatch Logs,
    logging every read and write management event: Security Hub follows the CIS Benchmark's
    audit, which counts an alarm only on such a trail's group (in the trail's home Region)."""
    from asr.actions.cloudtrail import logs_all_management_events, own_trails  # it imports this module

    # An organization trail of the management account is not this account's to fix.
    sending = sorted(
        (
            trail
            for trail in own_trails(clients.cloudtrail, clients.account_id)
            if trail.get("IsMultiRegionTrail")
            and (trail.get("CloudWatchLogsLogGroupArn") or "").split(":")[4:5] == [clients.account_id]
        ),
        key=lambda trail: trail["TrailARN"],
    )
    if not sending:
        raise LookupError(NO_TRAIL)
    for trail in sending:
        home = clients.in_region(trail.get("HomeRegion") or clients.region).cloudtrail
        if logs_all_management_events(home, trail["TrailARN"]):
            return str(trail["CloudWatchLogsLogGroupArn"])
    raise LookupError(NOT_LOGGING.format(trails=", ".join(t["Name"] for t in sending)))


def subscriptions(sns: Any, topic_arn: str, account: str) -> dict[str, bool]:
    """A topic's subscribers (endpoint -> confirmed); none for a topic that is gone, or that
    ``account`` may not list when it is another account's (Security Hub cannot count it
    either, and the fix makes its own alarm; on its own topic that refusal is a missing
    permission, and stands). SNS lists an unconfirmed one (an email nobody answered yet) as
    ``PendingConfirmation``."""
    found: dict[str, bool] = {}
    try:
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
            for subscription in page["Subscriptions"]:
                confirmed = subscription["SubscriptionArn"].startswith("arn:")
                found[subscription["Endpoint"]] = found.get(subscription["Endpoint"], False) or confirmed
    except sns.exceptions.NotFoundException:
        return {}
    except sns.exceptions.AuthorizationErrorException:
        if topic_arn.split(":")[4:5] == [account]:
            raise
        return {}
    return found


def log_group_home(clients: Clients, group_arn: str) -> tuple[Clients, str]:
    """The clients of a log group's Region, and its name, from its ARN
    (``arn:aws:logs:<region>:<account>:log-group:<name>:*``)."""
    parts = group_arn.split(":")
    return clients.in_region(parts[3]), parts[6]


@register
class EnsureCisAlarm(Action):
    """Alarm on one kind of CloudTrail event, as the CIS Benchmark's monitoring controls ask.

    On the log group of the account's multi-Region trail (in the trail's home Region), a
    metric filter with the Benchmark's pattern for ``event`` counts those events, and an alarm
    notifies the SNS topic ``topic_name`` when one happens. A filter with the same pattern and
    an alarm on its metric that notifies a topic already comply; a filter alone is reused.
    The topic is shared by all fourteen controls: it is made when missing (encrypted with
    ``kms_key_id`` when given: its key policy must let CloudWatch use it, so the AWS managed
    SNS key will not do), and the ``subscribers`` are subscribed to it. Security Hub counts
    only an alarm whose topic has a confirmed subscriber: without one the fix makes the
    topic and fails before the filter and alarm, saying so (an email subscription counts once its
    owner confirms it). Only trails and log groups of the account itself count, as for
    Security Hub: an organization trail belongs to the management account.
    A rollback removes the filter and alarm the fix made (an alarm of that name that was
    there before stays: not reversible), and keeps the topic.

        remediation:
          action: cloudwatch.ensure-cis-alarm
          parameters: {event: root-user-usage, subscribers: [{protocol: email, endpoint: secops@example.com}]}
    """

    name = "cloudwatch.ensure-cis-alarm"
    service = "cloudwatch"
    permissions = (
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetTrailStatus",
        "cloudtrail:GetEventSelectors",
        "logs:DescribeMetricFilters",
        "logs:PutMetricFilter",
        "cloudwatch:DescribeAlarmsForMetric",
        "cloudwatch:PutMetricAlarm",
        "sns:GetTopicAttributes",
        "sns:CreateTopic",
        "sns:Subscribe",
        "sns:ListSubscriptionsByTopic",
    )
    revert_permissions = ("logs:DeleteMetricFilter", "cloudwatch:DeleteAlarms")
    summary = "made a metric filter and an alarm for {event} that notifies the SNS topic {topic_name}"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["event"],
        "properties": {
            "event": {"enum": sorted(CIS_FILTERS)},
            "topic_name": topic_name_parameter("asr-security-alarms"),
            "kms_key_id": {"type": "string", "minLength": 1},
            "subscribers": {
                "type": "array",
                "default": [],
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["protocol", "endpoint"],
                    "properties": {
                        "protocol": {"enum": ["email", "email-json", "https", "sqs", "lambda", "sms"]},
                        "endpoint": {"type": "string", "minLength": 1},
                    },
                },
            },
            "metric_namespace": {
                "type": "string",
                "minLength": 1,
                "maxLength": 255,
                "default": "CISLogMetrics",
            },
        },
    }

    @property
    def metric_name(self) -> str:
        """The name of the filter, its metric and the alarm this fix makes."""
        return f"asr-{self.params['event']}"

    def read(self, clients: Clients, resource_id: str) -> dict[str, Any]:
        group_arn = trail_log_group(clients)
        home, group = log_group_home(clients, group_arn)
        pattern = CIS_FILTERS[self.params["event"]]
        pages = home.logs.get_paginator("describe_metric_filters").paginate(logGroupName=group)
        filters = [
            f
            for page in pages
            for f in page["metricFilters"]
            if same_pattern(f.get("filterPattern", ""), pattern)
        ]
        state: dict[str, Any] = {
            "LogGroup": group_arn,
            "MetricFilter": None,
            "Metric": None,
            "Alarm": None,
            # An alarm of the name this fix gives its own (an earlier fix's, whose topic lost its
            # subscribers): the fix puts it again, and a rollback must not delete it.
            "NamedAlarmExisted": False,
        }
        for found in sorted(filters, key=lambda f: f["filterName"]):
            for metric in found.get("metricTransformations", []):
                alarms = home.cloudwatch.describe_alarms_for_metric(
                    MetricName=metric["metricName"], Namespace=metric["metricNamespace"]
                )["MetricAlarms"]
                if any(alarm["AlarmName"] == self.metric_name for alarm in alarms):
                    state["NamedAlarmExisted"] = True
                # Security Hub counts an alarm whose SNS topic has a confirmed subscriber.
                notifying = sorted(
                    alarm["AlarmName"]
                    for alarm in alarms
                    for topic in alarm.get("AlarmActions", [])
                    if ":sns:" in topic and any(subscriptions(home.sns, topic, clients.account_id).values())
                )
                named = {key: metric[key] for key in ("metricName", "metricNamespace")}
                if notifying:
                    return {
                        **state,
                        "MetricFilter": found["filterName"],
                        "Metric": named,
                        "Alarm": notifying[0],
                    }
                if not state["MetricFilter"]:
                    state.update(MetricFilter=found["filterName"], Metric=named)
        return state

    def plan(self, state: dict[str, Any]) -> dict[str, Any]:
        if state["Alarm"]:
            return {}
        return {"MetricFilter": state["MetricFilter"] or self.metric_name, "Alarm": self.metric_name}

    def apply(self, clients: Clients, resource_id: str, state: dict[str, Any], plan: dict[str, Any]) -> None:
        home, group = log_group_home(clients, state["LogGroup"])
        metric = state["Metric"] or {
            "metricName": self.metric_name,
            "metricNamespace": self.params["metric_namespace"],
        }
        topic = self._topic(home)
        if not state["MetricFilter"]:
            home.logs.put_metric_filter(
                logGroupName=group,
                filterName=self.metric_name,
                filterPattern=CIS_FILTERS[self.params["event"]],
                metricTransformations=[{**metric, "metricValue": "1"}],
            )
        home.cloudwatch.put_metric_alarm(
            AlarmName=self.metric_name,
            AlarmDescription=f"CIS monitoring: {self.params['event']} in CloudTrail's events (made by ASR)",
            MetricName=metric["metricName"],
            Namespace=metric["metricNamespace"],
            Statistic="Sum",
            Period=300,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="notBreaching",
            AlarmActions=[topic],
        )

    def _topic(self, clients: Clients) -> str:
        """The shared topic's ARN, made if missing, with the subscribers it lacks subscribed (an
        email asked twice would get its confirmation mail twice). Without a confirmed subscriber
        Security Hub still fails the control: that is refused, saying what to do."""
        sns = clients.sns
        arn = (
            f"arn:{sns.meta.partition}:sns:{clients.region}:{clients.account_id}:{self.params['topic_name']}"
        )
        try:
            sns.get_topic_attributes(TopicArn=arn)
        except sns.exceptions.NotFoundException:
            attributes = (
                {"KmsMasterKeyId": self.params["kms_key_id"]} if self.params.get("kms_key_id") else {}
            )
            arn = sns.create_topic(Name=self.params["topic_name"], Attributes=attributes)["TopicArn"]
        subscribed = subscriptions(sns, arn, clients.account_id)
        for subscriber in self.params["subscribers"]:
            if subscriber["endpoint"] not in subscribed:
                answer = sns.subscribe(
                    TopicArn=arn, Protocol=subscriber["protocol"], Endpoint=subscriber["endpoint"]
                )
                # SNS answers "pending confirmation" where the endpoint must confirm (email).
                subscribed[subscriber["endpoint"]] = answer["SubscriptionArn"].startswith("arn:")
        if not any(subscribed.values()):
            # The playbook's subscribers by name; anyone else's endpoint (an address, a phone
            # number) only counted: the reason reaches the report, SNS and Security Hub.
            own = {subscriber["endpoint"] for subscriber in self.params["subscribers"]}
            named = sorted(own & subscribed.keys())
            others = len(subscribed) - len(named)
            pending = [*named, *([f"{others} other subscription{'s' * (others != 1)}"] if others else [])]
            waiting = f" ({', '.join(pending)} not confirmed yet)" if pending else ""
            raise ValueError(
                f"the alarm would notify SNS topic {arn}, which has no confirmed subscriber{waiting}, "
                "and Security Hub wants one: list subscribers in the CloudWatch.1 to .14 playbooks, "
                "or subscribe to the topic"
            )
        return arn

    def irreversible_from(self, before: dict[str, Any]) -> str | None:
        if before.get("NamedAlarmExisted"):  # found with its filter: the fix made neither
            return (
                f"alarm {self.metric_name} and its metric filter were there before the fix, which put "
                "the alarm again; deleting them would remove more than the fix made"
            )
        if "NamedAlarmExisted" not in before and before["MetricFilter"]:
            return (
                f"the fix found a metric filter for the event, and its record (made by an older asr) "
                f"does not say whether alarm {self.metric_name} was there too: it is left as it is"
            )
        return None

    def revert(self, clients: Clients, resource_id: str, before: dict[str, Any]) -> None:
        home, group = log_group_home(clients, before["LogGroup"])
        home.cloudwatch.delete_alarms(AlarmNames=[self.metric_name])
        if not before["MetricFilter"]:
            home.logs.delete_metric_filter(logGroupName=group, filterName=self.metric_name)
