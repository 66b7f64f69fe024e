"""SNS topics' delivery-status logging attributes as AWS keeps them, which moto 5.2.5 does not.

moto stores whatever SetTopicAttributes sends, but GetTopicAttributes returns none of the
``<Protocol>SuccessFeedbackRoleArn``, ``<Protocol>FailureFeedbackRoleArn`` and
``<Protocol>SuccessFeedbackSampleRate`` attributes: a topic whose deliveries are logged reads
as one whose are not. Here they are returned once set, and SetTopicAttributes checks them as
AWS does: an empty role ARN removes one; any other must be a role SNS can assume (one of the
topic's account that trusts sns.amazonaws.com); a sample rate must be a whole percentage (AWS
refuses an empty one: a rate can be zeroed, not removed).
"""

from __future__ import annotations

import json
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import camelcase_to_underscores
from moto.iam.exceptions import NotFoundException
from moto.iam.models import iam_backends
from moto.sns.exceptions import InvalidParameterValue
from moto.sns.models import SNSBackend
from moto.sns.responses import SNSResponse

PROTOCOLS = ("HTTP", "Firehose", "Lambda", "Application", "SQS")
ROLES = tuple(f"{p}{outcome}FeedbackRoleArn" for p in PROTOCOLS for outcome in ("Success", "Failure"))
RATES = tuple(f"{p}SuccessFeedbackSampleRate" for p in PROTOCOLS)
# moto's SetTopicAttributes hands its backend the name in snake case, and keeps it so on the topic.
STORED = {camelcase_to_underscores(name): name for name in (*ROLES, *RATES)}
SNS_PRINCIPAL = "sns.amazonaws.com"


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _trusts_sns(document: str) -> bool:
    """Whether a trust policy lets SNS assume the role."""
    for statement in _listed(json.loads(document).get("Statement", [])):
        principal = statement.get("Principal")
        services = _listed(principal.get("Service", [])) if isinstance(principal, dict) else []
        if (
            statement.get("Effect") == "Allow"
            and SNS_PRINCIPAL in services
            and {"sts:AssumeRole", "sts:*", "*"} & set(_listed(statement.get("Action", [])))
        ):
            return True
    return False


def _check_role(backend: SNSBackend, name: str, arn: str) -> None:
    parts = arn.split(":")
    try:
        if len(parts) != 6 or parts[4] != backend.account_id:
            raise NotFoundException(arn)
        role = iam_backends[backend.account_id][parts[1]].get_role_by_arn(arn)
        usable = _trusts_sns(role.assume_role_policy_document)
    except (KeyError, NotFoundException):
        usable = False
    if not usable:
        raise InvalidParameterValue(
            f"Invalid parameter: {name}: {arn} is not a valid role to allow SNS to write to Cloudwatch Logs"
        )


def _check_rate(name: str, value: str) -> None:
    if not (value.isdigit() and 0 <= int(value) <= 100):
        raise InvalidParameterValue(f"Invalid parameter: {name}: {value!r} is not a percentage (0-100)")


def install() -> None:
    original_set = SNSBackend.set_topic_attribute
    original_get = SNSResponse.get_topic_attributes

    def set_topic_attribute(
        self: SNSBackend, topic_arn: str, attribute_name: str, attribute_value: str
    ) -> None:
        self.get_topic(topic_arn)  # an unknown topic first, as AWS answers
        name = STORED.get(attribute_name)
        if name in RATES:
            _check_rate(name, attribute_value)
        elif name and attribute_value:
            _check_role(self, name, attribute_value)
        original_set(self, topic_arn, attribute_name, attribute_value)

    def get_topic_attributes(self: SNSResponse) -> ActionResult:
        result = original_get(self)
        topic = self.backend.get_topic(self._get_param("TopicArn"))
        attributes = result.result["Attributes"]  # type: ignore[index]
        for stored, name in STORED.items():
            if getattr(topic, stored, None):
                attributes[name] = str(getattr(topic, stored))
        return result

    SNSBackend.set_topic_attribute = set_topic_attribute  # type: ignore[method-assign]
    SNSResponse.get_topic_attributes = get_topic_attributes  # type: ignore[method-assign]
