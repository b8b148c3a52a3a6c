"""Thin AWS Lambda handlers (they run in-process locally, as event-bus subscribers)."""
