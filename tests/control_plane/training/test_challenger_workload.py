"""The comparison shows the challenger's recall at the champion's review workload beside its
recall at the live thresholds; the gate reads the latter (the canary serves at those)."""

from __future__ import annotations

import numpy as np

from control_plane.training.challenger import policy_input, recall_at_workload


def test_recall_at_a_workload_flags_the_highest_scores() -> None:
    y = np.array([1, 0, 1, 0, 1, 0])
    scores = np.array([0.40, 0.30, 0.35, 0.01, 0.02, 0.03])
    assert recall_at_workload(y, scores, 2) == round(2 / 3, 6)  # 0.40 and 0.35: two of three frauds
    assert recall_at_workload(y, scores, 0) == 0.0
    assert recall_at_workload(y, scores, 6) == 1.0
    assert recall_at_workload(np.zeros(3, dtype=int), scores[:3], 2) is None


def test_the_gate_reads_recall_at_the_live_thresholds() -> None:
    comparison = {
        "transactions": 2000,
        "fraud": 300,
        "champion": {"average_precision": 0.56, "recall": 0.558},
        "challenger": {"average_precision": 0.85, "recall": 0.532, "recall_at_champion_workload": 0.81},
    }
    document = policy_input("standard", True, comparison)
    assert document["comparison"]["challenger"] == {"average_precision": 0.85, "recall": 0.532}
    assert document["comparison"]["champion"] == {"average_precision": 0.56, "recall": 0.558}
