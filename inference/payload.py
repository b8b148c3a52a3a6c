"""Request bodies to feature matrices, and predictions to response bodies.

Accepted bodies (``Content-Type``):

* ``text/csv`` -- one row per line, values in the model's feature order, an empty field for a
  missing value (what the SageMaker model host sends); an optional header line naming the
  features maps columns by name instead.
* ``application/json`` -- one row (a list of numbers, or an object of feature name to value),
  a list of rows, or ``{"instances": [...rows], "top_k": 3}``; ``null`` is a missing value.

Answers (``Accept``): ``application/json`` (default) ``{"model", "sha256", "predictions":
[{"score", "reasons"}]}`` with reason codes from the same scorer as the control plane, or
``text/csv``, one score per line (what ``providers.aws.model_host.parse_scores`` reads).
Reason codes are asked for with ``top_k`` (JSON) or the ``top_k=N`` custom attribute
(SageMaker's ``CustomAttributes``); ``top_k=0`` answers scores only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fraud_model.reasons import reason_codes
from fraud_model.scoring import Scorer

MAX_ROWS = 10_000
DEFAULT_TOP_K = 3
JSON = "application/json"
CSV = "text/csv"


class PayloadError(Exception):
    """A request the server cannot use; ``status`` is the HTTP status of the answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def media_type(header: str | None) -> str:
    """``text/csv; charset=utf-8`` -> ``text/csv``."""
    return (header or "").split(";", 1)[0].strip().lower()


def response_format(accept: str | None) -> str:
    """JSON or CSV from an Accept header (absent or ``*/*`` means JSON); 406 otherwise."""
    offered = [media_type(part) for part in (accept or "").split(",") if part.strip()]
    if not offered:
        return JSON
    for kind in offered:
        if kind in {JSON, "*/*", "application/*"}:
            return JSON
        if kind in {CSV, "text/*"}:
            return CSV
    raise PayloadError(f"cannot answer in {accept!r}: use {JSON} or {CSV}", 406)


def top_k_from_attributes(header: str | None, default: int = DEFAULT_TOP_K) -> int:
    """``top_k=N`` among SageMaker's ``CustomAttributes`` (``a=1;top_k=5``)."""
    for part in (header or "").replace(",", ";").split(";"):
        key, _, value = part.partition("=")
        if key.strip() == "top_k":
            return _top_k(value.strip())
    return default


def _top_k(value: Any) -> int:
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and value.isdigit())
    ):
        raise PayloadError(f"top_k must be a non-negative integer, got {value!r}")
    k = int(value)
    if not 0 <= k <= 50:
        raise PayloadError(f"top_k must be between 0 and 50, got {k}")
    return k


def _number(value: Any, where: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"{where}: expected a number or null, got {json.dumps(value)[:40]}")
    number = float(value)
    if math.isinf(number):
        raise PayloadError(f"{where}: values must be finite")
    return number


def _row(item: Any, names: Sequence[str], index: int) -> list[float]:
    if isinstance(item, Mapping):
        unknown = sorted(set(item) - set(names))
        missing = [n for n in names if n not in item]
        if unknown or missing:
            raise PayloadError(f"row {index}: unknown features {unknown}, missing features {missing}")
        return [_number(item[n], f"row {index}, feature {n!r}") for n in names]
    if isinstance(item, list):
        if len(item) != len(names):
            raise PayloadError(f"row {index}: expected {len(names)} features, got {len(item)}")
        return [_number(v, f"row {index}, column {j}") for j, v in enumerate(item)]
    raise PayloadError(f"row {index}: expected a list of numbers or an object of features")


def parse_json(body: bytes, names: Sequence[str]) -> tuple[np.ndarray, int | None]:
    """Rows of a JSON body and its ``top_k`` (None when absent)."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from exc
    top_k: int | None = None
    if isinstance(data, dict) and "instances" in data:
        extra = sorted(set(data) - {"instances", "top_k"})
        if extra:
            raise PayloadError(f"unknown fields {extra}: expected 'instances' and optionally 'top_k'")
        if "top_k" in data:
            top_k = _top_k(data["top_k"])
        data = data["instances"]
        if not isinstance(data, list):
            raise PayloadError("'instances' must be a list of rows")
        items = data
    elif isinstance(data, dict) or (isinstance(data, list) and data and not isinstance(data[0], list | dict)):
        items = [data]  # one row: an object of features, or a flat list of numbers
    elif isinstance(data, list):
        items = data
    else:
        raise PayloadError("expected a row, a list of rows, or {'instances': [...]}")
    _check_count(len(items))
    return np.asarray([_row(item, names, i) for i, item in enumerate(items)], dtype=np.float32), top_k


def parse_csv(body: bytes, names: Sequence[str]) -> np.ndarray:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"CSV body is not UTF-8: {exc}") from exc
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    order = list(range(len(names)))
    if lines and lines[0].split(",")[0].strip() in names:
        header = [cell.strip() for cell in lines.pop(0).split(",")]
        if sorted(header) != sorted(names):
            raise PayloadError(
                f"CSV header must name each feature once: unknown {sorted(set(header) - set(names))}, "
                f"missing {sorted(set(names) - set(header))}"
            )
        order = [header.index(n) for n in names]
    _check_count(len(lines))
    rows = []
    for i, line in enumerate(lines):
        cells = line.split(",")
        if len(cells) != len(names):
            raise PayloadError(f"CSV row {i}: expected {len(names)} values, got {len(cells)}")
        row = []
        for j in order:
            cell = cells[j].strip()
            try:
                value = float(cell) if cell else math.nan
            except ValueError:
                raise PayloadError(f"CSV row {i}, column {j}: {cell[:40]!r} is not a number") from None
            if math.isinf(value):
                raise PayloadError(f"CSV row {i}, column {j}: values must be finite")
            row.append(value)
        rows.append(row)
    return np.asarray(rows, dtype=np.float32)


def _check_count(n: int) -> None:
    if n == 0:
        raise PayloadError("no rows to score")
    if n > MAX_ROWS:
        raise PayloadError(f"{n} rows in one request; at most {MAX_ROWS}", 413)


def parse(body: bytes, content_type: str | None, names: Sequence[str]) -> tuple[np.ndarray, int | None]:
    """Rows (float32, NaN for missing) and the body's ``top_k``; 400 / 413 / 415 on bad input."""
    if not body.strip():
        raise PayloadError("empty body: send rows to score")
    kind = media_type(content_type)
    if kind == JSON:
        return parse_json(body, names)
    if kind == CSV:
        return parse_csv(body, names), None
    raise PayloadError(f"unsupported Content-Type {content_type!r}: use {JSON} or {CSV}", 415)


def _clean(value: Any) -> Any:
    """NaN (a missing feature's value) as null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def predict(scorer: Scorer, rows: np.ndarray, top_k: int) -> list[dict[str, Any]]:
    """Scores as the control plane computes them (the tree walk for one row, XGBoost for a batch)."""
    scores = [scorer.score_one(rows[0])] if len(rows) == 1 else [float(s) for s in scorer.score_batch(rows)]
    if top_k == 0:
        return [{"score": s} for s in scores]
    reasons = [scorer.reasons(rows[0], top_k)] if len(rows) == 1 else _batch_reasons(scorer, rows, top_k)
    return [{"score": s, "reasons": [_clean(r) for r in rs]} for s, rs in zip(scores, reasons, strict=True)]


def _batch_reasons(scorer: Scorer, rows: np.ndarray, top_k: int) -> list[list[dict[str, Any]]]:
    """``Scorer.reasons`` for many rows with one SHAP call instead of one per row (same numbers)."""
    n = len(scorer.feature_names)
    contrib = scorer.contributions_batch(rows)
    typical = scorer.model.reference_medians
    out = []
    for row, c in zip(rows, contrib, strict=True):
        c = c[:n]
        order = np.argsort(-c, kind="stable")[:top_k]
        values = {name: float(row[i]) for i, name in enumerate(scorer.feature_names)}
        top = [(scorer.feature_names[i], float(c[i])) for i in order]
        out.append(reason_codes(top, values, typical))
    return out


def render(predictions: list[dict[str, Any]], fmt: str, *, model: str, sha256: str) -> tuple[bytes, str]:
    """The response body and its media type."""
    if fmt == CSV:
        return ("\n".join(repr(p["score"]) for p in predictions) + "\n").encode(), CSV
    body = {"model": model, "sha256": sha256, "predictions": predictions}
    return json.dumps(body, allow_nan=False).encode(), JSON
