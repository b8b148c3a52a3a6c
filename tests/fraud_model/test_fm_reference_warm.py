"""The reference profile's feature bins come from training rows whose windows had their full
history: a dataset's first weeks (every card and terminal unseen) would read as drift forever."""

from __future__ import annotations

import numpy as np

from fraud_model import schema
from fraud_model.features import DAY_S, batch_features
from fraud_model.pipeline import MIN_WARM_SHARE, split_by_time, warm_rows
from fraud_model.profile import bin_counts, build_profile, psi
from fraud_model.simulator import simulate


def _days(frame: object) -> np.ndarray:
    ts_s = schema.epoch_seconds(frame[schema.TS])  # type: ignore[index]
    return np.asarray((ts_s - ts_s.min()) // DAY_S)


def test_a_long_dataset_keeps_only_rows_after_the_longest_lookback() -> None:
    frame = simulate(150, 300, 80, seed=2)
    train, _ = split_by_time(frame, test_days=7, delay_days=7)
    warm = warm_rows(frame, train, 7)
    days = _days(frame)
    # 30-day terminal window + 7-day delay = 37 days of burn-in (longer than the card's 30 days).
    assert days[warm].min() == 37 and warm.sum() < train.sum()
    assert not (warm & ~train).any()
    assert np.array_equal(warm, train & (days >= 37))


def test_a_short_dataset_uses_every_training_row() -> None:
    frame = simulate(100, 200, 45, seed=3)
    train, _ = split_by_time(frame, test_days=7, delay_days=7)
    assert (train & (_days(frame) >= 37)).sum() < MIN_WARM_SHARE * train.sum()
    assert np.array_equal(warm_rows(frame, train, 7), train)


def test_a_warm_reference_sees_no_drift_in_warm_traffic_of_the_same_process() -> None:
    """Same generator, later days: a warm reference reads them as stable; a cold one does not."""
    frame = simulate(200, 400, 90, seed=4)
    features = batch_features(frame)
    days = _days(frame)
    train = days < 75
    later = days >= 83

    def worst_count_psi(rows: np.ndarray) -> float:
        profile = build_profile(
            features[rows], np.zeros(int(rows.sum())), np.zeros(int(rows.sum())), review=0.5, suspicious=0.8
        )
        names = ("card_nb_tx_30d", "terminal_nb_tx_30d", "card_nb_tx_7d")
        return max(
            psi(
                profile["features"][n]["counts"],
                bin_counts(features[n].to_numpy()[later], profile["features"][n]["edges"]),
            )
            for n in names
        )

    assert worst_count_psi(warm_rows(frame, train, 7)) < 0.1
    assert worst_count_psi(train) > 0.25
