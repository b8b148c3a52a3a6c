"""Tenant-defined feature sets: one document, a batch engine and an online engine (docs/features.md)."""

from fraud_model.feature_sets.batch import batch_compute, fit_encodings
from fraud_model.feature_sets.document import (
    BUILTIN_ATTRIBUTES,
    Attribute,
    Feature,
    FeatureSet,
    FeatureSetError,
    parse_feature_set,
)
from fraud_model.feature_sets.handbook import DEFAULT_NAME, handbook_document, handbook_feature_set
from fraud_model.feature_sets.online import InputCounts, OnlineFeatureSet, apply_label
from fraud_model.feature_sets.state import EntityState

__all__ = [
    "BUILTIN_ATTRIBUTES",
    "DEFAULT_NAME",
    "Attribute",
    "EntityState",
    "Feature",
    "FeatureSet",
    "FeatureSetError",
    "InputCounts",
    "OnlineFeatureSet",
    "apply_label",
    "batch_compute",
    "fit_encodings",
    "handbook_document",
    "handbook_feature_set",
    "parse_feature_set",
]
