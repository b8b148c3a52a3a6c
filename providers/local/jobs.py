"""Training and batch scoring in the calling process (the local provider: today's behaviour).

Both write their results where the SageMaker adapters' jobs do (``<output_prefix>model.tar.gz``;
the batch output key), so the domain reads them the same way whichever backend ran.
"""

from __future__ import annotations

import io
import json
import posixpath
from collections.abc import Callable

import numpy as np
import pandas as pd

from fraud_model.pipeline import TrainingDataError, pack_outputs, run_training
from providers.ports import (
    BatchScoringSpec,
    ModelHost,
    ObjectStore,
    PermanentProviderError,
    RemoteJob,
    TrainingJobSpec,
)


def training_output_key(spec: TrainingJobSpec) -> str:
    return f"{spec.output_prefix}model.tar.gz"


class InProcessTrainingBackend:
    """Runs ``fraud_model.pipeline.run_training`` in the worker's thread, at submit."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    def ensure(self, spec: TrainingJobSpec, progress: Callable[..., None] | None = None) -> RemoteJob:
        key = training_output_key(spec)
        if not self._store.exists(key):
            report = progress or (lambda *a, **k: None)
            report("loading", 5)
            frame = pd.read_parquet(io.BytesIO(self._store.get(spec.dataset_key)))
            labels = (
                json.loads(self._store.get(spec.labels_key)) if self._store.exists(spec.labels_key) else {}
            )
            try:
                outputs = run_training(frame, labels, spec.request, progress=report)
            except TrainingDataError as exc:
                raise PermanentProviderError(str(exc)) from exc
            self._store.put(key, pack_outputs(outputs))
        return self._status(spec)

    def _status(self, spec: TrainingJobSpec) -> RemoteJob:
        key = training_output_key(spec)
        done = self._store.exists(key)
        return RemoteJob(
            name=f"in-process:{spec.job_id}",
            state="succeeded" if done else "failed",
            detail="Completed" if done else "the in-process run left no model.tar.gz (worker restarted?)",
            percent=100.0 if done else 0.0,
            output_key=key if done else None,
            facts={"backend": "in-process"},
        )


class InProcessBatchRunner:
    """Scores the input file with the model host, at submit."""

    def __init__(self, store: ObjectStore, host: ModelHost) -> None:
        self._store = store
        self._host = host

    @staticmethod
    def output_key(spec: BatchScoringSpec) -> str:
        return f"{spec.output_prefix}{posixpath.basename(spec.input_key)}.out"  # as Batch Transform names it

    def ensure(self, spec: BatchScoringSpec) -> RemoteJob:
        if not self._store.exists(self.output_key(spec)):
            rows = pd.read_csv(io.BytesIO(self._store.get(spec.input_key)), header=None, dtype=np.float64)
            scores = self._host.invoke(spec.tenant_id, spec.model.version_id, rows.to_numpy().tolist())
            self._store.put(self.output_key(spec), "".join(f"{float(s)!r}\n" for s in scores).encode())
        return self._status(spec)

    def _status(self, spec: BatchScoringSpec) -> RemoteJob:
        done = self._store.exists(self.output_key(spec))
        return RemoteJob(
            name=f"in-process:{spec.job_id}:{spec.model.version_id}",
            state="succeeded" if done else "failed",
            detail="Completed" if done else "no output (worker restarted?): submit again",
            percent=100.0 if done else 0.0,
            output_key=self.output_key(spec) if done else None,
            facts={"backend": "in-process"},
        )
