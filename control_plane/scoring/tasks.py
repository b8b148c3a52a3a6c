"""Batch scoring: a file in, a scored file out, as a durable job with progress.

Decisions equal the online path's for the same transactions in the same order: the batch
features are the online features (one definition, proven equal by the feature tests), the
routing and the decision function are the online ones, and no labels are known to either.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.jobs.worker import JobContext, JobPending, PermanentJobError
from control_plane.scoring.decision import LEGIT, list_hit, rules_score, threshold_decision
from control_plane.scoring.service import FraudChecker
from control_plane.scoring.serving import ServingRegistry
from fraud_model import schema
from fraud_model.features import FEATURE_NAMES, batch_features
from providers.ports import BatchJobRunner, BatchScoringSpec, HostedModel, ModelHost, ObjectStore

BATCH_JOB = "scoring.batch"


class BatchScoring:
    def __init__(
        self,
        serving: ServingRegistry,
        checker: FraudChecker,
        object_store: ObjectStore,
        model_host: ModelHost,
        runner: BatchJobRunner,
    ) -> None:
        self.serving = serving
        self.checker = checker
        self.object_store = object_store
        self.model_host = model_host
        self.runner = runner

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        tenant_id = str(ctx.payload["tenant_id"])
        tenant = self.serving.reload(tenant_id)
        if tenant is None:
            raise PermanentJobError("tenant not found")
        if tenant.production is None and tenant.policy.fallback != "rules":
            raise PermanentJobError("no PRODUCTION model and no rules-only fallback")
        store = self.object_store
        frame = pd.read_parquet(io.BytesIO(store.get(str(ctx.payload["input_key"]))))
        prefix = f"tenants/{tenant_id}/batch/{ctx.job_id}/"
        versions = self._routing(store, f"{prefix}routing.json", tenant, frame)
        cache: dict[str, np.ndarray] = {}

        def matrix() -> np.ndarray:  # features only when a step needs them (not on every poll)
            if "m" not in cache:
                ctx.progress("features", 10, rows=len(frame))
                no_labels = pd.Series(np.zeros(len(frame), dtype=np.int64), index=frame.index)
                cache["m"] = batch_features(frame, labels=no_labels).to_numpy(dtype=np.float32)
            return cache["m"]

        scores = np.zeros(len(frame), dtype=np.float64)
        masks = {v: np.array([x == v for x in versions]) for v in set(versions)}
        jobs = {}
        for version, mask in masks.items():
            if version is None:
                scores[mask] = [
                    rules_score(dict(zip(FEATURE_NAMES, row, strict=True)))[0] for row in matrix()[mask]
                ]
                continue
            spec = BatchScoringSpec(
                tenant_id=tenant_id,
                job_id=ctx.job_id,
                model=self._hosted(tenant_id, version),
                input_key=f"{prefix}input/{version}.csv",
                output_prefix=f"{prefix}output/",
            )
            if not store.exists(spec.input_key):
                rows = pd.DataFrame(matrix()[mask])
                store.put(
                    spec.input_key,
                    rows.to_csv(header=False, index=False, na_rep="", float_format="%.9g").encode(),
                )
            jobs[version] = self.runner.ensure(spec)
        running = [job for job in jobs.values() if job.state == "running"]
        if running:
            ctx.progress(
                "score",
                40,
                jobs={v: {"name": j.name, "arn": j.arn, "state": j.state} for v, j in jobs.items()},
            )
            raise JobPending(min(j.poll_after_s for j in running), ", ".join(j.name for j in running))
        for version, job in jobs.items():
            if job.state != "succeeded" or job.output_key is None:
                raise PermanentJobError(f"batch scoring job {job.name} {job.state}: {job.detail}")
            scored = [float(line) for line in store.get(job.output_key).decode().split()]
            expected = int(masks[version].sum())
            if len(scored) != expected:
                raise PermanentJobError(
                    f"batch job {job.name} returned {len(scored)} scores for {expected} rows"
                )
            scores[masks[version]] = scored
        ctx.progress("decide", 80)
        decisions = []
        for card, terminal, score in zip(
            frame[schema.CARD_TOKEN], frame[schema.TERMINAL_ID], scores, strict=True
        ):
            hit = list_hit(tenant.policy, str(card), str(terminal))
            decisions.append(hit.decision or threshold_decision(float(score), tenant.policy))
        out = pd.DataFrame(
            {
                "txn_id": frame[schema.TXN_ID].to_numpy(),
                "decision": decisions,
                "score": np.round(scores, 6),
                "model_version": [v or "rules" for v in versions],
            }
        )
        key = f"tenants/{tenant_id}/batch/{ctx.job_id}.csv"
        store.put(key, out.to_csv(index=False).encode())
        counts = {d: int(n) for d, n in pd.Series(decisions).value_counts().items()}
        ctx.progress("done", 100)
        return {
            "jobs": {v: {"name": j.name, "arn": j.arn, **dict(j.facts)} for v, j in jobs.items()},
            "rows": len(out),
            "output_key": key,
            "decisions": counts,
            "flagged": int(sum(n for d, n in counts.items() if d != LEGIT)),
        }

    def _routing(self, store: ObjectStore, key: str, tenant: Any, frame: pd.DataFrame) -> list[str | None]:
        """Each row's version, fixed at the first attempt: a rollout step between two polls must not
        move rows to a version no job is scoring."""
        if store.exists(key):
            return list(json.loads(store.get(key)))
        versions = [self.checker.route(tenant, str(card))[0] for card in frame[schema.CARD_TOKEN]]
        store.put(key, json.dumps(versions).encode())
        return versions

    def _hosted(self, tenant_id: str, version: str) -> HostedModel:
        for model in self.model_host.deployed(tenant_id):
            if model.version_id == version:
                return model
        raise PermanentJobError(f"version {version} is not deployed for {tenant_id}")

    def on_exhausted(self, ctx: JobContext, session: Session, error: str) -> None:
        audit.record(
            session,
            tenant_id=ctx.tenant_id,
            actor="system:worker",
            action="batch_scoring.failed",
            subject=ctx.job_id,
            reason=error,
        )
