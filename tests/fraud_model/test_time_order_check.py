"""The time_order check: a passed check never says only that the rows are out of order."""

from __future__ import annotations

import pandas as pd

from fraud_model import schema as s
from fraud_model.simulator import simulate
from fraud_model.validation import validate_dataset


def _shuffled() -> pd.DataFrame:
    frame = simulate(20, 40, 3, seed=3)
    return frame.iloc[::-1].reset_index(drop=True)  # newest first


def test_out_of_order_rows_pass_only_with_a_detail_saying_they_are_sorted() -> None:
    check = validate_dataset(_shuffled(), require_labels=True).check("time_order")
    assert check.passed
    assert "rows earlier than a previous row" in check.detail
    assert "sorted by ts" in check.detail and "time order" in check.detail


def test_out_of_order_rows_fail_where_order_is_required() -> None:
    check = validate_dataset(_shuffled(), require_labels=True, require_sorted=True).check("time_order")
    assert not check.passed and "must be in time order" in check.detail
    assert check.example_rows and s.TS in check.example_rows[0]
