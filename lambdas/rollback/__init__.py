"""Rollback on a rollout alarm: weights to stable, record once, notify (``docs/rollback.md``)."""

from lambdas.rollback.handler import (
    RollbackDeps,
    deps_from_env,
    handle,
    lambda_handler,
    parse_alarm,
    rollback_id_for,
    rollback_notification,
)

__all__ = [
    "RollbackDeps",
    "deps_from_env",
    "handle",
    "lambda_handler",
    "parse_alarm",
    "rollback_id_for",
    "rollback_notification",
]
