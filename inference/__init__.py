"""The SageMaker inference container: Fraudrail's scorer behind SageMaker's HTTP contract.

``fraudrail-inference serve`` answers on port 8080 (SageMaker's port):

* single model -- ``GET /ping``, ``POST /invocations`` with the artifact SageMaker placed in
  ``SM_MODEL_DIR`` (default ``/opt/ml/model``), serverless and dedicated endpoints;
* multi-model -- ``POST /models``, ``GET /models``, ``GET /models/{name}``,
  ``DELETE /models/{name}``, ``POST /models/{name}/invoke``, the pooled endpoint.

Scores and reason codes come from :class:`fraud_model.scoring.Scorer`, the control plane's own
scorer. This package imports ``fraud_model`` and nothing of the control plane, so the image
carries no database, web UI or AWS SDK code paths it never uses.
"""
