"""Checking a tenant's attribute values against its feature set: one transaction, or a dataset."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from fraud_model.feature_sets.document import BUILTIN_ATTRIBUTES, Attribute, FeatureSet
from fraud_model.feature_sets.plan import number_value, text_value

_COUNTRY = re.compile(r"^[A-Z]{2}$")
MAX_TEXT = 256


def check_value(attr: Attribute, value: Any) -> str | None:
    """Why ``value`` is not a valid value of ``attr`` (None when it is, or when it is missing)."""
    if value is None:
        return None
    if attr.type in ("numeric", "boolean"):
        if isinstance(value, str) and attr.type == "numeric":
            return "must be a number"
        x = number_value(value)
        if x is None or not np.isfinite(x):
            return "must be a number" if attr.type == "numeric" else "must be true or false"
        if attr.type == "boolean" and x not in (0.0, 1.0):
            return "must be true or false"
        if attr.minimum is not None and x < attr.minimum:
            return f"must be at least {attr.minimum:g}"
        if attr.maximum is not None and x > attr.maximum:
            return f"must be at most {attr.maximum:g}"
        return None
    if attr.type == "timestamp":
        try:
            pd.Timestamp(value)
        except (TypeError, ValueError):
            return "must be a timestamp (ISO 8601)"
        return None
    if isinstance(value, dict | list):
        return "must be a single value"
    text = text_value(value)
    if text is not None and len(text) > MAX_TEXT:
        return f"must be at most {MAX_TEXT} characters"
    if attr.type == "country" and text is not None and not _COUNTRY.match(text):
        return "must be an ISO 3166 alpha-2 country code (two capital letters)"
    if attr.values is not None and text is not None and text not in attr.values:
        return f"must be one of {', '.join(attr.values[:10])}"
    return None


def check_attributes(attributes: Mapping[str, Attribute], values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(attribute, problem) for one transaction: unknown names, bad values, missing required ones."""
    problems: list[tuple[str, str]] = []
    for name, value in values.items():
        attr = attributes.get(name)
        if attr is None:
            hint = " (a field of the request itself)" if name in BUILTIN_ATTRIBUTES else ""
            problems.append((name, f"is not an attribute of the tenant's feature set{hint}"))
            continue
        problem = check_value(attr, value)
        if problem:
            problems.append((name, problem))
    for name, attr in attributes.items():
        if attr.required and values.get(name) is None:
            problems.append((name, "is required by the tenant's feature set"))
    return problems


def check_columns(fs: FeatureSet, frame: pd.DataFrame) -> tuple[bool, str, list[dict[str, Any]]]:
    """A dataset's extra columns against the set: (passed, detail, example rows) for the report."""
    issues: list[str] = []
    examples: list[dict[str, Any]] = []
    for name, attr in fs.attributes.items():
        if name not in frame.columns:
            if attr.required:
                issues.append(f"{name}: required column is missing")
            continue
        col = frame[name]
        missing = col.isna().to_numpy(dtype=bool)
        if attr.required and missing.any():
            issues.append(f"{name}: {int(missing.sum())} empty values in a required column")
        values = col.to_numpy(dtype=object)
        bad = [i for i in np.flatnonzero(~missing) if check_value(attr, values[i]) is not None]
        if bad:
            issues.append(f"{name}: {len(bad)} values {check_value(attr, values[bad[0]])}")
            examples += [{"row": int(i), name: str(values[i])} for i in bad[:3]]
    if issues:
        return False, "; ".join(issues), examples[:5]
    present = [n for n in fs.attributes if n in frame.columns]
    return True, f"{len(present)} of {len(fs.attributes)} attributes present and valid ({fs.name})", []
