"""MLflow as an ``ExperimentTracker``: one experiment and one registered model per tenant.

Names are ``fraudrail-<tenant_id>``: a tenant's id is all they carry, so nothing about another
tenant shows in them. Every run is tagged with the Fraudrail model version id, which makes
``log_run`` idempotent (a retried sync finds the run it already wrote) and lets stage changes
find their MLflow version. Fraudrail's registry stays the source of truth: callers treat any
``ProviderError`` from here as "retry later", never as a failed training run.

The client is ``mlflow-skinny`` (no server dependencies); its HTTP retries are capped here
because a durable job retries instead, and a training run must not stall on an unreachable
tracker.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from providers.ports import ProviderError, TrackedRun

VERSION_TAG = "fraudrail.model_version"
STAGE_TAG = "fraudrail.stage"
# Registry stage → the MLflow alias that mirrors it; other stages hold no alias.
ALIASES = {"PRODUCTION": "champion", "CANDIDATE": "challenger", "APPROVED": "challenger"}
_PARAM_LIMIT = 6000  # MLflow's longest parameter value


class MlflowSettings(BaseSettings):
    """``FRAUDRAIL_MLFLOW_TRACKING_URI`` turns tracking on; unset, the tracker is a no-op."""

    model_config = SettingsConfigDict(env_prefix="FRAUDRAIL_MLFLOW_", extra="ignore")

    tracking_uri: str | None = None
    request_timeout_s: float = 10.0
    max_retries: int = 1


def name_for(tenant_id: str) -> str:
    """The tenant's experiment and registered-model name."""
    return f"fraudrail-{tenant_id}"


class NullExperimentTracker:
    """Tracking switched off: nothing is sent anywhere."""

    enabled = False

    def log_run(self, run: TrackedRun) -> str:
        return ""

    def set_alias(self, tenant_id: str, model_version_id: str, stage: str) -> None:
        return None


class MlflowExperimentTracker:
    enabled = True

    def __init__(self, tracking_uri: str, *, request_timeout_s: float = 10.0, max_retries: int = 1) -> None:
        # The client reads these per request; bounded so a dead server costs seconds, not minutes.
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(max(1, request_timeout_s)))
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(max_retries)
        os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "1"
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    # -- runs ------------------------------------------------------------------------------------
    def log_run(self, run: TrackedRun) -> str:
        try:
            return self._log_run(run)
        except ProviderError:
            raise
        except Exception as exc:  # the client raises MlflowException, requests and OS errors alike
            raise ProviderError(f"MLflow at {self.tracking_uri}: {type(exc).__name__}: {exc}") from exc

    def _log_run(self, run: TrackedRun) -> str:
        c = self._client
        name = name_for(run.tenant_id)
        experiment_id = self._experiment_id(name)
        existing = c.search_runs(
            [experiment_id], filter_string=f"tags.`{VERSION_TAG}` = '{run.model_version_id}'", max_results=5
        )
        done = [r for r in existing if r.info.status == "FINISHED"]
        run_id = str(done[0].info.run_id) if done else self._write_run(experiment_id, run)
        self._ensure_version(name, run_id, run)
        self.set_alias(run.tenant_id, run.model_version_id, run.stage)
        return run_id

    def _experiment_id(self, name: str) -> str:
        found = self._client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        return str(self._client.create_experiment(name, tags={"fraudrail.kind": "tenant"}))

    def _write_run(self, experiment_id: str, run: TrackedRun) -> str:
        from mlflow.entities import Metric, Param, RunTag

        c = self._client
        created = c.create_run(
            experiment_id, run_name=run.model_version_id, tags={VERSION_TAG: run.model_version_id}
        )
        run_id = str(created.info.run_id)
        now_ms = int(created.info.start_time or 0)
        params = [Param(k, _param_value(v)) for k, v in sorted(run.params.items())]
        metrics = [Metric(k, float(v), now_ms, 0) for k, v in sorted(run.metrics.items()) if v == v]
        for key, values in run.series.items():
            metrics += [Metric(key, float(v), now_ms, step) for step, v in enumerate(values)]
        tags = [RunTag(k, str(v)) for k, v in sorted(run.tags.items())]
        # log_batch takes at most 100 params / 1000 metrics per call.
        for i in range(0, max(len(params), len(metrics), len(tags), 1), 100):
            c.log_batch(
                run_id, metrics=metrics[i : i + 100], params=params[i : i + 100], tags=tags[i : i + 100]
            )
        with tempfile.TemporaryDirectory(prefix="fraudrail-mlflow-") as tmp:
            for file_name, data in run.files.items():
                path = Path(tmp) / file_name
                path.write_bytes(data)
                folder = "curves" if file_name.endswith(".png") else None
                c.log_artifact(run_id, str(path), artifact_path=folder)
            model = Path(tmp) / run.artifact_name
            model.write_bytes(run.artifact)
            c.log_artifact(run_id, str(model), artifact_path="model")
        c.set_terminated(run_id, "FINISHED")
        return run_id

    # -- registry ----------------------------------------------------------------------------------
    def _ensure_version(self, name: str, run_id: str, run: TrackedRun) -> str:
        c = self._client
        from mlflow.exceptions import MlflowException

        try:
            c.get_registered_model(name)
        except MlflowException:
            c.create_registered_model(name, tags={"fraudrail.kind": "tenant"})
        found = self._version_of(name, run.model_version_id)
        if found is not None:
            return found
        source = f"{c.get_run(run_id).info.artifact_uri}/model"
        created = c.create_model_version(
            name, source=source, run_id=run_id, tags={VERSION_TAG: run.model_version_id, STAGE_TAG: run.stage}
        )
        return str(created.version)

    def _version_of(self, name: str, model_version_id: str) -> str | None:
        for mv in self._client.search_model_versions(f"name = '{name}'"):
            if (mv.tags or {}).get(VERSION_TAG) == model_version_id:
                return str(mv.version)
        return None

    def set_alias(self, tenant_id: str, model_version_id: str, stage: str) -> None:
        try:
            self._set_alias(tenant_id, model_version_id, stage)
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderError(f"MLflow at {self.tracking_uri}: {type(exc).__name__}: {exc}") from exc

    def _set_alias(self, tenant_id: str, model_version_id: str, stage: str) -> None:
        c = self._client
        name = name_for(tenant_id)
        version = self._version_of(name, model_version_id)
        if version is None:
            raise ProviderError(f"{model_version_id} has no MLflow version yet (log its run first)")
        c.set_model_version_tag(name, version, STAGE_TAG, stage)
        alias = ALIASES.get(stage)
        held = c.get_registered_model(name).aliases or {}
        for other, v in dict(held).items():
            # An alias this version no longer deserves (e.g. champion after archiving) is removed.
            if str(v) == version and other != alias and other in ALIASES.values():
                c.delete_registered_model_alias(name, other)
        if alias is not None:
            c.set_registered_model_alias(name, alias, version)


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:_PARAM_LIMIT]


def build_tracker(settings: MlflowSettings | None = None) -> MlflowExperimentTracker | NullExperimentTracker:
    """The MLflow tracker when ``FRAUDRAIL_MLFLOW_TRACKING_URI`` is set, else the no-op one."""
    s = settings or MlflowSettings()
    if not s.tracking_uri:
        return NullExperimentTracker()
    return MlflowExperimentTracker(
        s.tracking_uri, request_timeout_s=s.request_timeout_s, max_retries=s.max_retries
    )
