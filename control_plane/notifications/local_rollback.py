"""Runs the rollback Lambda's handler locally, as a subscriber of the in-process event bus."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from lambdas.rollback.handler import RollbackDeps, handle
from providers.ports import EventBus, Handler

log = logging.getLogger(__name__)


def sns_event(message: Mapping[str, Any], topic: str = "rollout.alarm") -> dict[str, Any]:
    """``message`` wrapped as SNS delivers it to a Lambda (one record)."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"local:{topic}",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": f"local:{topic}",
                    "Message": json.dumps(dict(message), separators=(",", ":"), default=str),
                    "Timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                },
            }
        ]
    }


def subscribe_rollback_handler(bus: EventBus, deps: RollbackDeps, topic: str = "rollout.alarm") -> Handler:
    """Subscribe the rollback handler to ``topic``; returns the subscriber (for tests and logs).

    Runs synchronously in the publisher's thread, as ``InProcessEventBus`` delivers: the weight
    change happens before ``publish`` returns.
    """

    def on_rollout_alarm(_topic: str, message: Mapping[str, Any]) -> None:
        result = handle(sns_event(message, topic), None, deps)
        for outcome in result["results"]:
            if outcome["status"] in ("invalid", "weights_failed") or outcome["errors"]:
                log.warning("rollback handler on %s: %s", topic, outcome)

    bus.subscribe(topic, on_rollout_alarm)
    return on_rollout_alarm
