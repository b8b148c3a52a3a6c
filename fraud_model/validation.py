"""Dataset checks before training or scoring, and a reader into the canonical schema."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from fraud_model import schema as s

MAX_EXAMPLES = 5
DEFAULT_MAX_AMOUNT = 1_000_000.0
_PAN_CANDIDATE = re.compile(r"\d{13,19}")
_CURRENCY = re.compile(r"[A-Z]{3}")


class DatasetError(ValueError):
    """A dataset cannot be read into the canonical schema; ``field`` names the offending column."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Check:
    """One named check; ``example_rows`` holds up to five offending rows (``row`` is the position)."""

    name: str
    passed: bool
    detail: str
    example_rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ValidationReport:
    ok: bool
    rows: int
    checks: list[Check]

    def check(self, name: str) -> Check:
        """The check called ``name`` (KeyError when it did not run)."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum used by card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def looks_like_pan(token: str) -> bool:
    """13-19 digits (spaces and dashes ignored) that pass Luhn: a raw card number."""
    compact = token.replace(" ", "").replace("-", "")
    return bool(_PAN_CANDIDATE.fullmatch(compact)) and luhn_valid(compact)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)


def _examples(df: pd.DataFrame, mask: np.ndarray, columns: list[str]) -> list[dict[str, Any]]:
    positions = np.flatnonzero(mask)[:MAX_EXAMPLES]
    cols = [c for c in columns if c in df.columns]
    out: list[dict[str, Any]] = []
    for pos in positions:
        row: dict[str, Any] = {"row": int(pos)}
        for c in cols:
            row[c] = _jsonable(df[c].iloc[pos])
        out.append(row)
    return out


def _is_null(col: pd.Series) -> np.ndarray:
    mask = col.isna().to_numpy(dtype=bool)
    if col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
        blank = col.astype("str").str.strip().eq("").to_numpy(dtype=bool)
        mask = mask | (blank & ~mask)
    return mask


def _parse_ts(col: pd.Series) -> pd.Series:
    if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(col.dtype):
        return pd.to_datetime(col, utc=True)
    return pd.to_datetime(col, utc=True, errors="coerce", format="mixed")


def validate_dataset(
    df: pd.DataFrame,
    *,
    max_amount: float = DEFAULT_MAX_AMOUNT,
    require_labels: bool,
    require_sorted: bool = False,
) -> ValidationReport:
    """Run every dataset check and report each one (a failed check never hides the others)."""
    checks: list[Check] = []
    n = len(df)
    missing = [c for c in s.REQUIRED_COLUMNS if c not in df.columns]
    if require_labels and s.IS_FRAUD not in df.columns:
        missing.append(s.IS_FRAUD)
    checks.append(
        Check(
            "required_columns",
            not missing,
            f"missing: {missing}" if missing else f"all {len(s.REQUIRED_COLUMNS)} present",
        )
    )

    # Type coercion: values present but unparseable.
    ts = _parse_ts(df[s.TS]) if s.TS in df.columns else None
    amount = pd.to_numeric(df[s.AMOUNT], errors="coerce") if s.AMOUNT in df.columns else None
    bad_type = np.zeros(n, dtype=bool)
    bad_fields: list[str] = []
    if ts is not None:
        bad = ts.isna().to_numpy(dtype=bool) & ~_is_null(df[s.TS])
        if bad.any():
            bad_fields.append(s.TS)
        bad_type |= bad
    if amount is not None:
        bad = amount.isna().to_numpy(dtype=bool) & ~_is_null(df[s.AMOUNT])
        if bad.any():
            bad_fields.append(s.AMOUNT)
        bad_type |= bad
    if s.CURRENCY in df.columns:
        cur = df[s.CURRENCY]
        bad = ~_is_null(cur) & ~cur.astype("str").str.fullmatch(_CURRENCY.pattern).to_numpy(dtype=bool)
        if bad.any():
            bad_fields.append(s.CURRENCY)
        bad_type |= bad
    checks.append(
        Check(
            "types",
            not bad_type.any(),
            f"{int(bad_type.sum())} rows with unparseable {bad_fields}" if bad_type.any() else "coercible",
            _examples(df, bad_type, [s.TXN_ID, s.TS, s.AMOUNT, s.CURRENCY]),
        )
    )

    null_mask = np.zeros(n, dtype=bool)
    null_fields: list[str] = []
    for c in s.REQUIRED_COLUMNS:
        if c in df.columns:
            m = _is_null(df[c])
            if m.any():
                null_fields.append(c)
            null_mask |= m
    checks.append(
        Check(
            "nulls",
            not null_mask.any(),
            f"{int(null_mask.sum())} rows with nulls in {null_fields}" if null_mask.any() else "none",
            _examples(df, null_mask, list(s.REQUIRED_COLUMNS)),
        )
    )

    if s.TXN_ID in df.columns:
        dup = df[s.TXN_ID].duplicated(keep=False).to_numpy(dtype=bool) & ~_is_null(df[s.TXN_ID])
        checks.append(
            Check(
                "duplicate_txn_id",
                not dup.any(),
                f"{int(dup.sum())} rows share a txn_id" if dup.any() else "unique",
                _examples(df, dup, [s.TXN_ID]),
            )
        )

    if ts is not None:
        ns = ts.astype("int64").to_numpy(dtype=np.int64)
        valid = ts.notna().to_numpy(dtype=bool)
        prev_max = np.maximum.accumulate(np.where(valid, ns, np.iinfo(np.int64).min))
        out_of_order = np.zeros(n, dtype=bool)
        if n > 1:
            out_of_order[1:] = valid[1:] & (ns[1:] < prev_max[:-1])
        count = int(out_of_order.sum())
        if not count:
            order_detail = "non-decreasing"
        elif require_sorted:
            order_detail = f"{count} rows earlier than a previous row; this input must be in time order"
        else:
            # Accepted, and the detail says what happens to them (it said only that they were
            # out of order, under a passed check): datasets are stored sorted by ts, and features
            # are computed per card and terminal in time order whatever the row order.
            order_detail = (
                f"{count} rows earlier than a previous row: accepted and put in time order (sorted by ts)"
            )
        checks.append(
            Check(
                "time_order",
                count == 0 or not require_sorted,
                order_detail,
                _examples(df, out_of_order, [s.TXN_ID, s.TS]),
            )
        )

    if amount is not None:
        a = amount.to_numpy(dtype=np.float64)
        # Zero is allowed: zero-amount authorisations (card checks) are real, and the handbook's
        # generator rounds a few amounts to 0.00.
        bad_amount = ~np.isnan(a) & ((a < 0) | (a > max_amount) | ~np.isfinite(a))
        checks.append(
            Check(
                "amount_range",
                not bad_amount.any(),
                f"{int(bad_amount.sum())} rows outside [0, {max_amount}]" if bad_amount.any() else "in range",
                _examples(df, bad_amount, [s.TXN_ID, s.AMOUNT]),
            )
        )

    checks.append(_label_check(df, require_labels))

    if s.CARD_TOKEN in df.columns:
        tokens = df[s.CARD_TOKEN].astype("str")
        compact = tokens.str.replace(r"[ -]", "", regex=True)
        candidates = compact.str.fullmatch(_PAN_CANDIDATE.pattern).fillna(False).to_numpy(dtype=bool)
        pan = np.zeros(n, dtype=bool)
        for pos in np.flatnonzero(candidates):
            pan[pos] = luhn_valid(str(compact.iloc[pos]))
        checks.append(
            Check(
                "card_token_not_pan",
                not pan.any(),
                f"{int(pan.sum())} card_token values look like raw card numbers" if pan.any() else "tokens",
                # Never echo the suspected card number itself.
                [
                    {"row": int(p), s.TXN_ID: _jsonable(df[s.TXN_ID].iloc[p]) if s.TXN_ID in df else None}
                    for p in np.flatnonzero(pan)[:MAX_EXAMPLES]
                ],
            )
        )

    return ValidationReport(ok=all(c.passed for c in checks), rows=n, checks=checks)


def _label_check(df: pd.DataFrame, require_labels: bool) -> Check:
    if s.IS_FRAUD not in df.columns:
        return Check("labels", not require_labels, "no is_fraud column")
    labels = pd.to_numeric(df[s.IS_FRAUD], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isin(labels, (0.0, 1.0))
    if s.FRAUD_SCENARIO in df.columns:
        scen = pd.to_numeric(df[s.FRAUD_SCENARIO], errors="coerce").to_numpy(dtype=np.float64)
        bad |= ~np.isin(scen, (0.0, 1.0, 2.0, 3.0))
    good = labels[~bad]
    positives = int((good == 1).sum())
    negatives = int((good == 0).sum())
    rate = positives / len(good) if len(good) else 0.0
    detail = f"fraud rate {rate:.4%} ({positives} of {len(good)})"
    if bad.any():
        detail = f"{int(bad.sum())} rows with labels outside is_fraud {{0,1}} / scenario 0..3; " + detail
    one_class = require_labels and (positives == 0 or negatives == 0)
    if one_class:
        detail += "; both classes are required"
    return Check(
        "labels",
        not bad.any() and not one_class,
        detail,
        _examples(df, bad, [s.TXN_ID, s.IS_FRAUD, s.FRAUD_SCENARIO]),
    )


def coerce_to_schema(df: pd.DataFrame, extra_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Our canonical columns and dtypes, or a :class:`DatasetError` naming the first bad field.

    ``extra_columns`` (a feature set's attributes) are kept as read, after the canonical ones."""
    for c in s.REQUIRED_COLUMNS:
        if c not in df.columns:
            raise DatasetError(c, "required column is missing")
    out: dict[str, pd.Series] = {}
    for c in s.STRING_COLUMNS:
        if c in df.columns:
            col = df[c].reset_index(drop=True)
            nulls = _is_null(col)
            if c in s.REQUIRED_COLUMNS and nulls.any():
                raise DatasetError(c, f"empty value at row {int(np.flatnonzero(nulls)[0])}")
            out[c] = col.astype("str").where(~nulls, None) if nulls.any() else col.astype("str")
    raw_ts = df[s.TS].reset_index(drop=True)
    ts = _parse_ts(raw_ts)
    if ts.isna().any():
        pos = int(np.flatnonzero(ts.isna().to_numpy(dtype=bool))[0])
        raise DatasetError(s.TS, f"unparseable timestamp at row {pos}: {raw_ts.iloc[pos]!r}")
    out[s.TS] = ts.astype(s.TS_DTYPE)
    raw_amount = df[s.AMOUNT].reset_index(drop=True)
    amount = pd.to_numeric(raw_amount, errors="coerce")
    if amount.isna().any():
        pos = int(np.flatnonzero(amount.isna().to_numpy(dtype=bool))[0])
        raise DatasetError(s.AMOUNT, f"not a number at row {pos}: {raw_amount.iloc[pos]!r}")
    out[s.AMOUNT] = amount.astype(np.float64)
    for c in s.LABEL_COLUMNS:
        if c in df.columns:
            raw = df[c].reset_index(drop=True)
            num = pd.to_numeric(raw, errors="coerce")
            if num.isna().any() or (num != num.round()).any():
                pos = int(np.flatnonzero((num.isna() | (num != num.round())).to_numpy(dtype=bool))[0])
                raise DatasetError(c, f"not an integer label at row {pos}: {raw.iloc[pos]!r}")
            out[c] = num.astype(np.int64)
    order = [c for c in (*s.REQUIRED_COLUMNS, *s.OPTIONAL_COLUMNS, *s.LABEL_COLUMNS) if c in out]
    for c in extra_columns:
        if c in df.columns and c not in out:
            out[c] = df[c].reset_index(drop=True)
            order.append(c)
    return pd.DataFrame({c: out[c] for c in order})


def read_table(
    source: str | Path | bytes, format: Literal["csv", "parquet"], extra_columns: Sequence[str] = ()
) -> pd.DataFrame:
    """Read CSV or Parquet (a path or the bytes) into the canonical schema; raises DatasetError."""
    handle: Any = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        if format == "csv":
            raw = pd.read_csv(handle, dtype={c: "str" for c in s.STRING_COLUMNS})
        elif format == "parquet":
            raw = pd.read_parquet(handle)
        else:
            raise DatasetError("format", f"unsupported format {format!r} (csv or parquet)")
    except DatasetError:
        raise
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DatasetError("file", f"cannot read {format}: {exc}") from exc
    except Exception as exc:  # pyarrow raises its own hierarchy (ArrowInvalid, ...)
        raise DatasetError("file", f"cannot read {format}: {exc}") from exc
    return coerce_to_schema(raw, extra_columns)
