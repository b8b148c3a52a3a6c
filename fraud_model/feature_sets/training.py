"""A training run's features from its feature set, and the lineage the model carries.

A run whose request names a tenant feature set (``request["feature_set"]``: its name, label and
document, resolved when the run was queued) computes that set's features, learns its categorical
encodings on the training rows only, and stores the set with the model (``params.feature_set``:
document, encodings, label), so serving compiles exactly what the model was trained on. A run
without one uses the built-in handbook features.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from fraud_model import schema
from fraud_model.feature_sets.batch import batch_compute, fit_encodings
from fraud_model.feature_sets.document import parse_feature_set
from fraud_model.features import batch_features
from fraud_model.training import TrainedModel


def run_features(
    frame: pd.DataFrame, request: Mapping[str, Any], train: np.ndarray, delay_days: int
) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """(every row's features, the feature-set lineage or None for the built-in set)."""
    info = request.get("feature_set")
    if not info:
        return batch_features(frame, delay_days=delay_days), None
    fs = parse_feature_set(info["document"], name=str(info["name"]))
    y = frame[schema.IS_FRAUD].to_numpy()
    encodings = fit_encodings(fs, frame[train], y[train])
    features = batch_compute(fs, frame, encodings=encodings)
    lineage = {
        "id": info.get("id"),
        "name": fs.name,
        "label": str(info.get("label", fs.name)),
        "document": info["document"],
        "encodings": encodings,
    }
    return features, lineage


def with_feature_set(model: TrainedModel, lineage: Mapping[str, Any] | None) -> TrainedModel:
    """The model carrying its feature set (version label in the header, the set in its params)."""
    if lineage is None:
        return model
    return dataclasses.replace(
        model,
        feature_set_version=str(lineage["label"]),
        params={**model.params, "feature_set": dict(lineage)},
    )
