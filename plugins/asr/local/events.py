"""Security Hub's EventBridge events, built and put on the bus as Security Hub sends them.

The stand-in has no Security Hub that emits events, so tests and demos build them here
in the documented shapes ("EventBridge event formats for Security Hub CSPM") and put them
on the default bus, where the rules ``asr setup`` made route them to the queue. Only for
the stand-in: AWS refuses PutEvents with an ``aws.*`` source from anyone but the service.
"""

from __future__ import annotations

import datetime
import json
import uuid
from typing import Any

from asr.setup import ACTION_DESCRIPTION, ACTION_NAME, CUSTOM_ACTION, IMPORTED, SOURCE

MAX_ENTRIES = 10  # PutEvents takes at most 10 entries a call


def _event(
    detail_type: str, resources: list[str], detail: dict[str, Any], account: str, region: str
) -> dict[str, Any]:
    """The envelope every EventBridge event has; ``account`` is the account whose bus gets it
    (for an administrator's aggregated findings, the administrator, not ``AwsAccountId``)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": SOURCE,
        "account": account,
        "time": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": resources,
        "detail": detail,
    }


def custom_action_event(
    findings: list[dict[str, Any]],
    action_target_arn: str,
    account: str,
    region: str,
    action_name: str = ACTION_NAME,
    action_description: str = ACTION_DESCRIPTION,
) -> dict[str, Any]:
    """A person chose the custom action for these findings. The only resource is the custom
    action's ARN, which is what a rule matches. Security Hub now sends each chosen finding in
    an event of its own; the format holds a list, and consumers must accept several."""
    detail = {"actionName": action_name, "actionDescription": action_description, "findings": findings}
    return _event(CUSTOM_ACTION, [action_target_arn], detail, account, region)


def imported_event(findings: list[dict[str, Any]], account: str, region: str) -> dict[str, Any]:
    """Security Hub imported (created or updated) these findings; the resources are their ids.
    Security Hub sends one finding per Imported event: pass one to be faithful."""
    return _event(IMPORTED, [f["Id"] for f in findings], {"findings": findings}, account, region)


def put_events(events_client: Any, events: list[dict[str, Any]]) -> list[str]:
    """PutEvents on the default bus (``Detail`` is JSON text), 10 a call; the event ids given.
    Raises if EventBridge refused any, or if an event names another region than the client's."""
    region = events_client.meta.region_name
    entries = []
    for event in events:
        if event["region"] != region:
            raise ValueError(f"event {event['id']} is for {event['region']}, the client puts to {region}")
        entries.append(
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Resources": event["resources"],
                "Detail": json.dumps(event["detail"]),
                "Time": datetime.datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(
                    tzinfo=datetime.UTC
                ),
            }
        )
    ids: list[str] = []
    for start in range(0, len(entries), MAX_ENTRIES):
        response = events_client.put_events(Entries=entries[start : start + MAX_ENTRIES])
        if response["FailedEntryCount"]:
            failed = [e for e in response["Entries"] if "ErrorCode" in e]
            raise RuntimeError(f"EventBridge refused {response['FailedEntryCount']} events: {failed[:3]}")
        ids += [e["EventId"] for e in response["Entries"]]
    return ids
