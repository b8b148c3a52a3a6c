"""The champion / challenger gate compares recall at the champion's review workload: the live
thresholds were set on the champion's score scale, not the retrained model's."""

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


def test_a_better_ranked_but_cautious_challenger_is_judged_at_the_champions_workload() -> None:
    comparison = {
        "transactions": 2000,
        "fraud": 300,
        "champion": {"average_precision": 0.56, "recall": 0.558},
        "challenger": {"average_precision": 0.85, "recall": 0.532, "recall_at_champion_workload": 0.81},
    }
    document = policy_input("standard", True, comparison)
    assert document["comparison"]["challenger"] == {"average_precision": 0.85, "recall": 0.81}
    assert document["comparison"]["champion"] == {"average_precision": 0.56, "recall": 0.558}
    # A comparison made before the workload figure existed is read as it was.
    del comparison["challenger"]["recall_at_champion_workload"]  # type: ignore[attr-defined]
    assert policy_input("standard", True, comparison)["comparison"]["challenger"]["recall"] == 0.532
