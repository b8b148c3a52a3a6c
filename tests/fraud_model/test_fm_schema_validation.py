from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraud_model import schema as s
from fraud_model.validation import (
    DatasetError,
    looks_like_pan,
    luhn_valid,
    read_table,
    validate_dataset,
)


def _frame(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        {
            s.TXN_ID: [f"txn_{i}" for i in range(n)],
            s.CARD_TOKEN: [f"card_{i % 3}" for i in range(n)],
            s.TERMINAL_ID: [f"term_{i % 2}" for i in range(n)],
            s.TS: pd.date_range("2026-01-01", periods=n, freq="min", tz="UTC"),
            s.AMOUNT: np.linspace(10.0, 60.0, n),
            s.CURRENCY: ["EUR"] * n,
            s.IS_FRAUD: [0, 1] * (n // 2),
            s.FRAUD_SCENARIO: [0, 1] * (n // 2),
        }
    )


def test_valid_frame_passes_every_check() -> None:
    report = validate_dataset(_frame(), require_labels=True)
    assert report.ok, report.failures
    assert report.rows == 6
    assert {c.name for c in report.checks} >= {
        "required_columns",
        "types",
        "nulls",
        "duplicate_txn_id",
        "time_order",
        "amount_range",
        "labels",
        "card_token_not_pan",
    }
    assert "50.0000%" in report.check("labels").detail


def test_simulated_frame_is_valid(canonical_frame: pd.DataFrame) -> None:
    assert validate_dataset(canonical_frame, require_labels=True, require_sorted=True).ok


def test_missing_required_column_fails() -> None:
    report = validate_dataset(_frame().drop(columns=[s.TERMINAL_ID]), require_labels=False)
    check = report.check("required_columns")
    assert not check.passed and "terminal_id" in check.detail
    assert not report.ok


def test_unparseable_timestamp_and_amount_name_the_row() -> None:
    df = _frame()
    df[s.TS] = df[s.TS].astype(str)
    df.loc[2, s.TS] = "not a time"
    df[s.AMOUNT] = df[s.AMOUNT].astype(object)
    df.loc[4, s.AMOUNT] = "twelve"
    check = validate_dataset(df, require_labels=False).check("types")
    assert not check.passed
    assert [r["row"] for r in check.example_rows] == [2, 4]
    assert "ts" in check.detail and "amount" in check.detail


def test_bad_currency_code_is_a_type_failure() -> None:
    df = _frame()
    df.loc[1, s.CURRENCY] = "euro"
    check = validate_dataset(df, require_labels=False).check("types")
    assert not check.passed and check.example_rows[0]["row"] == 1


def test_nulls_in_required_columns_name_the_row() -> None:
    df = _frame()
    df.loc[3, s.CARD_TOKEN] = None
    df.loc[5, s.TERMINAL_ID] = "  "
    check = validate_dataset(df, require_labels=False).check("nulls")
    assert not check.passed
    assert [r["row"] for r in check.example_rows] == [3, 5]


def test_duplicate_txn_ids_are_reported() -> None:
    df = _frame()
    df.loc[4, s.TXN_ID] = "txn_1"
    check = validate_dataset(df, require_labels=False).check("duplicate_txn_id")
    assert not check.passed
    assert [r["row"] for r in check.example_rows] == [1, 4]


def test_out_of_order_rows_are_counted_and_fail_when_sorting_is_required() -> None:
    df = _frame()
    df.loc[3, s.TS] = pd.Timestamp("2025-12-31", tz="UTC")
    lenient = validate_dataset(df, require_labels=False).check("time_order")
    assert lenient.passed and lenient.detail.startswith("1 rows")
    strict = validate_dataset(df, require_labels=False, require_sorted=True).check("time_order")
    assert not strict.passed and strict.example_rows[0]["row"] == 3


def test_amount_range_rejects_negative_and_too_large_but_allows_zero() -> None:
    df = _frame()
    df.loc[0, s.AMOUNT] = 0.0
    df.loc[2, s.AMOUNT] = -5.0
    df.loc[5, s.AMOUNT] = 2_000.0
    check = validate_dataset(df, max_amount=1_000.0, require_labels=False).check("amount_range")
    assert not check.passed
    assert [r["row"] for r in check.example_rows] == [2, 5]


def test_labels_outside_0_1_fail() -> None:
    df = _frame()
    df.loc[2, s.IS_FRAUD] = 2
    check = validate_dataset(df, require_labels=True).check("labels")
    assert not check.passed and check.example_rows[0]["row"] == 2


def test_single_class_fails_only_when_labels_are_required() -> None:
    df = _frame()
    df[s.IS_FRAUD] = 0
    df[s.FRAUD_SCENARIO] = 0
    assert not validate_dataset(df, require_labels=True).check("labels").passed
    assert validate_dataset(df, require_labels=False).check("labels").passed
    no_labels = _frame().drop(columns=[s.IS_FRAUD, s.FRAUD_SCENARIO])
    report = validate_dataset(no_labels, require_labels=True)
    assert not report.check("labels").passed and not report.check("required_columns").passed


def test_raw_card_numbers_are_refused_without_echoing_them() -> None:
    df = _frame()
    df.loc[1, s.CARD_TOKEN] = "4111 1111 1111 1111"  # a Luhn-valid test PAN
    df.loc[2, s.CARD_TOKEN] = "4111111111111112"  # 16 digits but fails Luhn: a token
    check = validate_dataset(df, require_labels=False).check("card_token_not_pan")
    assert not check.passed
    assert check.example_rows == [{"row": 1, "txn_id": "txn_1"}]


def test_luhn() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert looks_like_pan("5555-5555-5555-4444")
    assert not looks_like_pan("card_5555555555554444")
    assert not looks_like_pan("123456789012")  # too short


def test_read_csv_into_canonical_schema() -> None:
    df = _frame()
    buf = io.StringIO()
    df.assign(**{s.TS: df[s.TS].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")}).to_csv(buf, index=False)
    out = read_table(buf.getvalue().encode(), "csv")
    assert list(out.columns) == [*s.REQUIRED_COLUMNS, *s.LABEL_COLUMNS]
    assert str(out[s.TS].dtype) == s.TS_DTYPE
    assert out[s.AMOUNT].dtype == np.float64
    assert out[s.IS_FRAUD].dtype == np.int64
    pd.testing.assert_series_equal(out[s.TS], df[s.TS].astype(s.TS_DTYPE), check_names=False)


def test_read_parquet_roundtrip(tmp_path: Path, canonical_frame: pd.DataFrame) -> None:
    path = tmp_path / "t.parquet"
    canonical_frame.to_parquet(path)
    out = read_table(path, "parquet")
    assert len(out) == len(canonical_frame)
    assert (out[s.TXN_ID].to_numpy() == canonical_frame[s.TXN_ID].to_numpy()).all()


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.drop(columns=[s.AMOUNT]), "amount"),
        (lambda d: d.assign(ts=["2026-01-01T00:00:00Z", "yesterday-ish", *["2026-01-01"] * 4]), "ts"),
        (lambda d: d.assign(amount=["1.5", "abc", *["2"] * 4]), "amount"),
        (lambda d: d.assign(is_fraud=[0, 1, 0.5, 0, 1, 0]), "is_fraud"),
    ],
)
def test_read_errors_name_the_field(mutate: Callable[[pd.DataFrame], pd.DataFrame], field: str) -> None:
    bad = mutate(_frame())
    data = bad.to_csv(index=False).encode()
    with pytest.raises(DatasetError) as info:
        read_table(data, "csv")
    assert info.value.field == field


def test_unreadable_bytes_raise_dataset_error() -> None:
    with pytest.raises(DatasetError) as info:
        read_table(b"definitely not parquet", "parquet")
    assert info.value.field == "file"


def test_from_handbook_raw_maps_columns() -> None:
    raw = pd.DataFrame(
        {
            "TRANSACTION_ID": [0, 1],
            "TX_DATETIME": pd.to_datetime(["2018-04-01 00:00:31", "2018-04-01 00:02:10"]),
            "CUSTOMER_ID": [596, 4961],
            "TERMINAL_ID": [3156, 3412],
            "TX_AMOUNT": [57.16, 81.51],
            "TX_TIME_SECONDS": [31, 130],
            "TX_TIME_DAYS": [0, 0],
            "TX_FRAUD": [0, 1],
            "TX_FRAUD_SCENARIO": [0, 2],
        }
    )
    out = s.from_handbook_raw(raw)
    assert out[s.CARD_TOKEN].tolist() == ["card_596", "card_4961"]
    assert out[s.TERMINAL_ID].tolist() == ["term_3156", "term_3412"]
    assert out[s.TXN_ID].tolist() == ["txn_0", "txn_1"]
    assert str(out[s.TS].dtype) == s.TS_DTYPE
    assert out[s.TS].iloc[1] == pd.Timestamp("2018-04-01 00:02:10", tz="UTC")
    assert out[s.FRAUD_SCENARIO].tolist() == [0, 2]
    assert validate_dataset(out, require_labels=True).ok
    with pytest.raises(ValueError, match="TX_AMOUNT"):
        s.from_handbook_raw(raw.drop(columns=["TX_AMOUNT"]))
