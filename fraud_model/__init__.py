"""Fraudrail's pure ML package: schema, validation, simulator, features, training, evaluation.

It imports nothing else of the project; the control plane adapts its ports to the small
protocols defined here (for example :class:`fraud_model.features.FeatureStateStore`).
"""

__all__: list[str] = []
