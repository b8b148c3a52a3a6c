"""The one writer of model-host traffic weights, and the rollback on a rollout alarm.

``set_weights`` is the only code that calls ``ModelHost.set_weights``: it writes, reads the
weights back from the backend (``ModelHost.verify_weights``) and raises ``WeightChangeFailed``
when they differ. ``handle_alarm`` moves a tenant to its stable version through it and records
the rollback once; the rollback Lambda and the control plane's rollout reconcile both call it.
Imports only ``providers`` and the standard library (the Lambda's asset bundles this package).
"""

from traffic.alarm import (
    AlarmDeps,
    AlarmOutcome,
    InvalidAlarm,
    RolloutAlarm,
    handle_alarm,
    rollback_id_for,
    rollback_weights,
)
from traffic.weights import CANARY_WEIGHT_METRIC, FULL_WEIGHT, WeightChangeFailed, served, set_weights

__all__ = [
    "CANARY_WEIGHT_METRIC",
    "FULL_WEIGHT",
    "AlarmDeps",
    "AlarmOutcome",
    "InvalidAlarm",
    "RolloutAlarm",
    "WeightChangeFailed",
    "handle_alarm",
    "rollback_id_for",
    "rollback_weights",
    "served",
    "set_weights",
]
