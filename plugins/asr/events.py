"""What the Security Hub events that triggered an ``asr_events`` run ask for.

The triggerer hands each run the SQS messages it received (several events may fold
into one run, and a message may repeat). Each message body is an EventBridge event
from Security Hub. Events are hints: they only name findings, which the run re-reads.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from asr.findings import RoutingRecord
from asr.playbooks import registry

log = logging.getLogger(__name__)
CUSTOM_ACTION = "Security Hub Findings - Custom Action"
IMPORTED = "Security Hub Findings - Imported"


@dataclass
class FindingsAsked:
    by_person: set[str] = field(default_factory=set)
    by_import: set[str] = field(default_factory=set)

    @property
    def finding_ids(self) -> list[str]:
        return sorted(self.by_person | self.by_import)

    def keep(self, record: RoutingRecord) -> str | None:
        """A person's request may use any playbook; an import only an automatic one."""
        if record.finding_id in self.by_person:
            return None
        if not registry().playbooks[record.playbook].auto_remediate:
            return f"automatic remediation is off for {record.playbook}; use the custom action"
        return None

    def asked(self, finding_id: str) -> bool:
        return finding_id in self.by_person


def _messages(asset_events: Any) -> list[dict[str, Any]]:
    messages = []
    for events in asset_events.values():
        for event in events:
            payload = (getattr(event, "extra", None) or {}).get("payload") or {}
            messages += payload.get("message_batch") or []
    return messages


def findings_asked(asset_events: Any) -> FindingsAsked:
    """The finding ids the events name, deduplicated, by who asked."""
    asked = FindingsAsked()
    for message in _messages(asset_events):
        try:
            event = json.loads(message.get("Body") or "")
            kind = event["detail-type"]
            ids = [f["Id"] for f in event["detail"]["findings"]]
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("Skipping a message that is not a Security Hub findings event: %s", exc)
            continue
        if kind == CUSTOM_ACTION:
            asked.by_person.update(ids)
        elif kind == IMPORTED:
            asked.by_import.update(ids)
        else:
            log.warning("Skipping an event of type %r", kind)
    return asked
