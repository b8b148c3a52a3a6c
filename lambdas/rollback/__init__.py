"""The rollback Lambda: SNS rollout alarms through ``traffic.handle_alarm`` (``docs/rollback.md``)."""
