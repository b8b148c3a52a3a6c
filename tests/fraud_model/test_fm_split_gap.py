"""The split's gap and the features' label delay are two knobs: a retraining's frame (which already
ends label_maturity_days before its cut-off) trains right up to its test window (``gap_days`` 0)
while its features keep the online label delay (``delay_days`` 7: no train / serve skew)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraud_model import schema
from fraud_model.features import DAY_S
from fraud_model.pipeline import TrainingDataError, run_training, split_by_time
from fraud_model.simulator import simulate


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return simulate(100, 200, 45, seed=5)


def _test_start_s(frame: pd.DataFrame, test_days: int) -> int:
    ts_s = schema.epoch_seconds(frame[schema.TS])
    return (int(ts_s.max() // DAY_S) - test_days + 1) * DAY_S


def test_the_gap_is_the_days_left_out_between_training_and_test(frame: pd.DataFrame) -> None:
    ts_s = np.asarray(schema.epoch_seconds(frame[schema.TS]))
    start = _test_start_s(frame, 3)
    for gap in (0, 7):
        train, test = split_by_time(frame, test_days=3, delay_days=7, gap_days=gap)
        assert np.array_equal(train, ts_s < start - gap * DAY_S)
        assert ts_s[test].min() >= start
    no_gap, no_gap_test = split_by_time(frame, test_days=3, delay_days=7, gap_days=0)
    week_gap, week_gap_test = split_by_time(frame, test_days=3, delay_days=7)
    assert (no_gap & ~week_gap).sum() == ((ts_s >= start - 7 * DAY_S) & (ts_s < start)).sum() > 0
    # The cards dropped as known compromised are those whose fraud was labelled by the test window
    # (a fraud delay_days before it), not every card the longer training saw: the same test rows.
    assert np.array_equal(no_gap_test, week_gap_test)


def test_a_run_takes_its_gap_from_gap_days_and_defaults_to_the_delay(frame: pd.DataFrame) -> None:
    ts_s = np.asarray(schema.epoch_seconds(frame[schema.TS]))
    start = _test_start_s(frame, 3)
    base = {"params": {"num_boost_round": 5, "max_depth": 2}, "test_days": 3, "delay_days": 7}
    default = run_training(frame, {}, base).evaluation
    no_gap = run_training(frame, {}, {**base, "gap_days": 0}).evaluation
    assert default["train_rows"] == int((ts_s < start - 7 * DAY_S).sum())
    assert no_gap["train_rows"] == int((ts_s < start).sum())
    assert 0 < no_gap["test_rows"] == default["test_rows"] <= int((ts_s >= start).sum())


def test_a_gap_longer_than_the_data_is_refused_naming_it(frame: pd.DataFrame) -> None:
    with pytest.raises(TrainingDataError, match="60-day gap"):
        run_training(frame, {}, {"test_days": 3, "delay_days": 7, "gap_days": 60})
