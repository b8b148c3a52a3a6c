"""Batch scoring: a file in, a scored file out, as a durable job with progress.

Decisions equal the online path's for the same transactions in the same order: the batch
features are the online features (one definition, proven equal by the feature tests), the
routing and the decision function are the online ones, and no labels are known to either.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.jobs.worker import JobContext, PermanentJobError
from control_plane.scoring.decision import LEGIT, list_hit, rules_score, threshold_decision
from control_plane.scoring.service import FraudChecker
from control_plane.scoring.serving import ServingRegistry
from fraud_model import schema
from fraud_model.features import FEATURE_NAMES, batch_features
from providers.ports import ModelHost, ObjectStore

BATCH_JOB = "scoring.batch"


class BatchScoring:
    def __init__(
        self,
        serving: ServingRegistry,
        checker: FraudChecker,
        object_store: ObjectStore,
        model_host: ModelHost,
    ) -> None:
        self.serving = serving
        self.checker = checker
        self.object_store = object_store
        self.model_host = model_host

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        tenant_id = str(ctx.payload["tenant_id"])
        tenant = self.serving.reload(tenant_id)
        if tenant is None:
            raise PermanentJobError("tenant not found")
        if tenant.production is None and tenant.policy.fallback != "rules":
            raise PermanentJobError("no PRODUCTION model and no rules-only fallback")
        store = self.object_store
        frame = pd.read_parquet(io.BytesIO(store.get(str(ctx.payload["input_key"]))))
        ctx.progress("features", 10, rows=len(frame))
        no_labels = pd.Series(np.zeros(len(frame), dtype=np.int64), index=frame.index)
        features = batch_features(frame, labels=no_labels)
        matrix = features.to_numpy(dtype=np.float32)
        ctx.progress("score", 40)
        versions = [self.checker.route(tenant, str(card))[0] for card in frame[schema.CARD_TOKEN]]
        scores = np.zeros(len(frame), dtype=np.float64)
        for version in set(versions):
            mask = np.array([v == version for v in versions])
            if version is None:
                scores[mask] = [
                    rules_score(dict(zip(FEATURE_NAMES, row, strict=True)))[0] for row in matrix[mask]
                ]
            else:
                scores[mask] = self.model_host.invoke(tenant_id, version, matrix[mask].tolist())
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
            "rows": len(out),
            "output_key": key,
            "decisions": counts,
            "flagged": int(sum(n for d, n in counts.items() if d != LEGIT)),
        }

    def on_exhausted(self, ctx: JobContext, session: Session, error: str) -> None:
        audit.record(
            session,
            tenant_id=ctx.tenant_id,
            actor="system:worker",
            action="batch_scoring.failed",
            subject=ctx.job_id,
            reason=error,
        )
