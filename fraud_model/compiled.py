"""The single-row scorer's tree arrays, laid out in the artifact so loading is a memory map.

Building the arrays from a booster parses the whole model (XGBoost's JSON dump, LightGBM's model
text) in Python, holding the GIL for tens to hundreds of milliseconds: a cold tenant's load
stalls every hot tenant's check in the same process. Training does it once instead; the arrays
are stored raw (little-endian, each at a 64-byte aligned offset) after the booster, indexed by
the artifact header (name -> dtype, offset, length, plus the walk's scalars). A load reads that
index and makes ``np.frombuffer`` views over the artifact's buffer: a ``np.memmap`` of the file
(nothing is copied or parsed) or the artifact's bytes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

ALIGN = 64
KINDS = ("xgboost", "lightgbm")


def pack(trees: Any, algorithm: str) -> tuple[dict[str, Any], bytes]:
    """The index (for the header) and the raw section of one learner's tree arrays."""
    if algorithm not in KINDS:
        raise ValueError(f"unknown algorithm {algorithm!r}")
    index: dict[str, Any] = {}
    scalars: dict[str, Any] = {}
    parts: list[bytes] = []
    offset = 0
    for f in dataclasses.fields(trees):
        value = getattr(trees, f.name)
        if not isinstance(value, np.ndarray):
            # float() of a float32 is exact, and so is converting it back.
            scalars[f.name] = value if isinstance(value, bool | int) else float(value)
            continue
        array = np.ascontiguousarray(value)
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)
        pad = -offset % ALIGN
        parts.append(b"\0" * pad)
        offset += pad
        index[f.name] = [array.dtype.str, offset, int(array.size)]
        raw = array.tobytes()
        parts.append(raw)
        offset += len(raw)
    return {"algorithm": algorithm, "arrays": index, "scalars": scalars}, b"".join(parts)


def unpack(meta: dict[str, Any], buffer: Any, start: int) -> Any:
    """The tree arrays as read-only views of ``buffer`` (the section begins at ``start``)."""
    from fraud_model.lgbm import LgbTreeArrays
    from fraud_model.scoring import TreeArrays

    cls = LgbTreeArrays if meta["algorithm"] == "lightgbm" else TreeArrays
    values: dict[str, Any] = {}
    for name, (dtype, offset, count) in meta["arrays"].items():
        values[name] = np.frombuffer(
            buffer, dtype=np.dtype(dtype), count=int(count), offset=start + int(offset)
        )
    for name, value in meta["scalars"].items():
        values[name] = value
    if cls is TreeArrays:
        values["base_margin"] = np.float32(values["base_margin"])
    expected = {f.name for f in dataclasses.fields(cls)}
    if set(values) != expected:
        raise ValueError(f"compiled arrays name {sorted(values)}, the scorer needs {sorted(expected)}")
    return cls(**values)
