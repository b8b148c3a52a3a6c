"""Notifications: webhook delivery to Slack and Teams, and the local wiring of the rollback handler."""

from providers.webhook_notifier import (
    WebhookNotifier,
    slack_payload,
    teams_adaptive_payload,
    teams_payload,
)

__all__ = ["WebhookNotifier", "slack_payload", "teams_adaptive_payload", "teams_payload"]
