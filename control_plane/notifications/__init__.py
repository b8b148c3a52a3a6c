"""Notifications: the tenant's contacts and the durable ``rollout.notify`` job (Slack and Teams)."""
