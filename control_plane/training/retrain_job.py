"""The ``retraining.run`` job: frame → training run → champion vs challenger → canary or ask.

Each step is keyed on the retraining's row, so a re-run after a crash repeats nothing:
1. ``queued``: build the frame (stored traffic + every label source up to the cut-off), keep it as
   a dataset (a deterministic id), start a training run with the existing pipeline (the tier's
   quotas, budget and gate apply), and come back when it has finished (a new job of this kind,
   due a few seconds later: nothing sleeps, and any worker may pick it up).
2. ``training``: when the run is done, compare challenger and champion on the window neither
   trained on, ask ``fraudrail.monitoring`` (question "promote"), and either approve the
   challenger and start a canary under the deployment policy and the rollout guardrails, or leave
   it CANDIDATE and ask the tenant admin (``retraining.notify``). The comparison is the evidence
   of every decision, in the row and in the audit ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.datasets import service as datasets
from control_plane.db import unit_of_work
from control_plane.errors import DomainError
from control_plane.jobs import queue
from control_plane.jobs.worker import JobContext, PermanentJobError
from control_plane.orm_base import utcnow
from control_plane.registry import service as registry
from control_plane.registry.stages import Stage
from control_plane.review import service as review
from control_plane.rollouts import service as rollouts
from control_plane.rollouts.ports import RolloutPorts
from control_plane.scoring import config as scoring_config
from control_plane.tenants import repository as tenants
from control_plane.training import challenger, retrain_data
from control_plane.training import retraining as service
from control_plane.training import service as training
from control_plane.training.orm import Retraining
from control_plane.training.retraining_notice import enqueue_notice
from fraud_model import schema
from fraud_model.features import DEFAULT_DELAY_DAYS, batch_features
from fraud_model.training import load_verified
from guardrails.policy import PolicyEngine, PolicyEngineError
from providers.ports import ObjectStore

ACTOR = "system:retraining"
POLICY = "fraudrail.monitoring"
WAIT_RULES = frozenset({"auto_rollout_off"})  # a challenger that wins but may not go by itself
CANARY = {"strategy": "canary", "steps": [1000, 5000, 10_000], "bake_s": 600, "min_requests": 500}
TRAINING_PARAMS = ("num_boost_round", "max_depth", "eta")


def dataset_id(retraining_id: str) -> str:
    """The retraining's frame, kept as a dataset: one id per retraining, so a re-run reuses it."""
    return "ds_" + retraining_id.removeprefix("rt_")


class RetrainingJob:
    def __init__(
        self,
        object_store: ObjectStore,
        templates: Mapping[str, Mapping[str, Any]],
        policy: PolicyEngine,
        rollouts: RolloutPorts,
        *,
        poll_s: float = 5.0,
    ) -> None:
        self.store = object_store
        self.templates = templates
        self.policy = policy
        self.rollouts = rollouts
        self.poll_s = poll_s

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        tenant_id, retraining_id = str(ctx.payload["tenant_id"]), str(ctx.payload["retraining_id"])
        with unit_of_work(ctx.factory) as session:
            row = service.get(session, tenant_id, retraining_id)
            status = row.status
        if status == "queued":
            return self._start_training(ctx, tenant_id, retraining_id)
        if status == "training":
            return self._decide(ctx, tenant_id, retraining_id)
        return {"retraining_id": retraining_id, "status": status}  # already decided: nothing to do

    # -- step 1 --------------------------------------------------------------------------------

    def _start_training(self, ctx: JobContext, tenant_id: str, retraining_id: str) -> Mapping[str, Any]:
        ctx.progress("frame", 5)
        with unit_of_work(ctx.factory) as session:
            row = service.get(session, tenant_id, retraining_id)
            champion = registry.get(session, tenant_id, str(row.champion_version))
            tenant = tenants.get(session, tenant_id)
            limits = self.templates[tenant.tier]["monitoring"]
            until = row.cutoff - timedelta(days=float(limits["label_maturity_days"]))
            frame, champion_rows, figures = retrain_data.training_frame(
                session, self.store, tenant_id, champion, row.cutoff, until=until
            )
            described: dict[str, Any] = {**figures, "until": until.isoformat()}
            if not challenger.window_mask(frame, int(limits["compare_days"]), champion_rows).any():
                # E.g. a weekly schedule a week after go-live: every row old enough to have mature
                # labels is one the champion learnt from. Nothing to train on or to judge with yet.
                self._finish(session, row, "skipped", error=(
                    f"nothing new to learn yet: every transaction up to {until.isoformat()} (the "
                    f"cut-off minus the {limits['label_maturity_days']}-day label maturity) is one "
                    "the champion trained or was tested on"
                ))  # fmt: skip
                return {"retraining_id": retraining_id, "status": "skipped"}
            if figures["fraud"] == 0:
                self._finish(
                    session, row, "failed", error="no fraud label up to the cut-off: nothing to learn"
                )
                return {"retraining_id": retraining_id, "status": "failed"}
            dataset = retrain_data.store_dataset(
                session, self.store, tenant_id=tenant_id, dataset_id=dataset_id(retraining_id),
                frame=frame, name=f"retraining {retraining_id}", actor=ACTOR,
            )  # fmt: skip
            params = {k: v for k, v in dict(champion.params or {}).items() if k in TRAINING_PARAMS}
            request = {
                "algorithm": str((champion.params or {}).get("algorithm", "xgboost")),
                "search": None,
                "dataset_id": dataset.id,
                "test_days": int(limits["compare_days"]),
                "delay_days": DEFAULT_DELAY_DAYS,  # the online features' delay: no train / serve skew
                # No gap before the comparison window: the frame already ends label_maturity_days
                # before the cut-off, so every training row's label had that long to arrive (a
                # second gap made a challenger learn only rows 17 days old; docs/monitoring.md).
                "gap_days": 0,
                # Calibrate on a random share: the newest rows hold the drift the first fit never
                # saw, and a Platt fitted on them left the challenger under-confident (training.py).
                "calibration_split": "random",
                "seed": 0,
                "params": params,
                "gate": {},
            }
            quotas = self.templates[tenant.tier]["quotas"]
            try:
                run = training.start_run(
                    session, tenant_id=tenant_id, request=request, actor=ACTOR, now=ctx.clock(),
                    max_concurrent=int(quotas["concurrent_training_runs"]),
                    max_models=int(quotas["models_hosted"]),
                )  # fmt: skip
            except DomainError as refused:  # quota, budget freeze, tenant status: tell the admin
                self._finish(session, row, "failed", error=f"training refused: {refused.detail}")
                return {"retraining_id": retraining_id, "status": "failed"}
            row.status = "training"
            row.trigger_evidence = {**row.trigger_evidence, "frame": described, "training_run": run.id}
            audit.record(
                session, tenant_id=tenant_id, actor=ACTOR, action="retraining.training_started",
                subject=retraining_id, after={"training_run": run.id, "dataset": dataset.id},
                evidence={"frame": described, "cutoff": row.cutoff.isoformat()},
            )  # fmt: skip
            self._come_back(session, ctx, tenant_id, retraining_id)
        return {"retraining_id": retraining_id, "status": "training", "training_run": run.id}

    def _come_back(self, session: Session, ctx: JobContext, tenant_id: str, retraining_id: str) -> None:
        later = queue.enqueue(
            session, kind=service.RETRAIN_JOB, tenant_id=tenant_id, max_attempts=3, now=ctx.clock(),
            payload={"tenant_id": tenant_id, "retraining_id": retraining_id},
        )  # fmt: skip
        later.run_after = ctx.clock() + timedelta(seconds=self.poll_s)

    # -- step 2 --------------------------------------------------------------------------------

    def _decide(self, ctx: JobContext, tenant_id: str, retraining_id: str) -> Mapping[str, Any]:
        with unit_of_work(ctx.factory) as session:
            row = service.get(session, tenant_id, retraining_id)
            run = queue.get_job(session, str(row.trigger_evidence["training_run"]), tenant_id=tenant_id)
            if run.status in (queue.QUEUED, queue.RUNNING):
                self._come_back(session, ctx, tenant_id, retraining_id)
                return {"retraining_id": retraining_id, "status": "training", "waiting_for": run.id}
            if run.status != queue.SUCCEEDED:
                self._finish(session, row, "failed", error=f"training run {run.id} failed: {run.last_error}")
                return {"retraining_id": retraining_id, "status": "failed"}
            version = str((run.result or {})["model_version"])
            row.challenger_version = version
            mv = registry.get(session, tenant_id, version)
            if mv.stage == Stage.REJECTED.value:
                row.decision = {"gate": mv.gate}
                self._finish(
                    session, row, "rejected", error="the challenger failed its tier's evaluation gate"
                )
                return {"retraining_id": retraining_id, "status": "rejected"}
        ctx.progress("compare", 60, challenger=version)
        comparison = self._compare(ctx, tenant_id, retraining_id)
        with unit_of_work(ctx.factory) as session:
            row = service.get(session, tenant_id, retraining_id)
            tenant = tenants.get(session, tenant_id)
            auto = service.settings_of(session, tenant_id).auto_rollout
            document = challenger.policy_input(tenant.tier, auto, comparison)
            try:
                verdict = self.policy.evaluate(POLICY, document)
            except PolicyEngineError as exc:
                raise RuntimeError(f"monitoring policy unavailable: {exc}") from exc  # retried
            violations = [
                {"rule": v.rule, "field": v.field, "message": v.message} for v in verdict.violations
            ]
            wins = verdict.rules <= WAIT_RULES
            row.comparison = comparison
            row.decision = {"policy": POLICY, "wins": wins, "auto_rollout": auto, "violations": violations}
            audit.record(
                session, tenant_id=tenant_id, actor=ACTOR, action="retraining.compared",
                subject=retraining_id, reason="challenger wins" if wins else "champion kept",
                after={"champion": row.champion_version, "challenger": row.challenger_version},
                evidence={"input": document, "violations": violations},
            )  # fmt: skip
            if verdict.allowed:
                return self._canary(session, ctx, row, tenant)
            self._finish(session, row, "awaiting_approval" if wins else "champion_kept")
            return {"retraining_id": retraining_id, "status": row.status, "wins": wins}

    def _compare(self, ctx: JobContext, tenant_id: str, retraining_id: str) -> dict[str, Any]:
        with unit_of_work(ctx.factory) as session:
            row = service.get(session, tenant_id, retraining_id)
            champion = registry.get(session, tenant_id, str(row.champion_version))
            rival = registry.get(session, tenant_id, str(row.challenger_version))
            dataset = datasets.get(session, tenant_id, dataset_id(retraining_id))
            live = scoring_config.read(session, tenant_id, self.templates)
            limits = self.templates[tenants.get(session, tenant_id).tier]["monitoring"]
            _, champion_rows, _ = retrain_data.training_frame(
                session, self.store, tenant_id, champion, row.cutoff
            )
            verdicts = review.analyst_labels(session, tenant_id)
            models = {
                k: (mv.artifact_key, mv.sha256) for k, mv in (("champion", champion), ("challenger", rival))
            }
        frame = datasets.load_frame(self.store, dataset)
        mapped = frame[schema.TXN_ID].map(verdicts)
        frame.loc[mapped.notna(), schema.IS_FRAUD] = mapped[mapped.notna()].astype("int64")
        features = batch_features(frame, delay_days=DEFAULT_DELAY_DAYS)
        mask = challenger.window_mask(frame, int(limits["compare_days"]), champion_rows)
        if not mask.any():
            raise PermanentJobError(
                "no transaction in the comparison window that the champion did not train on"
            )
        loaded = {k: load_verified(self.store.get(key), sha) for k, (key, sha) in models.items()}
        return challenger.compare(
            frame, features, mask, loaded["champion"], loaded["challenger"],
            review=float(live.review_threshold), suspicious=float(live.suspicious_threshold),
        )  # fmt: skip

    def _canary(self, session: Session, ctx: JobContext, row: Retraining, tenant: Any) -> Mapping[str, Any]:
        compared = row.comparison or {}
        evidence = {"comparison": {k: compared.get(k) for k in ("champion", "challenger", "fraud")}}
        try:
            registry.approve(
                session, row.tenant_id, str(row.challenger_version), actor=ACTOR,
                note="won the champion / challenger gate; the tenant opted in to automatic canaries",
            )  # fmt: skip
            with session.begin_nested():
                rollout = rollouts.start(
                    session, self.rollouts, tenant, {"candidate_version": row.challenger_version, **CANARY},
                    actor=ACTOR, now=ctx.clock(),
                )  # fmt: skip
        except DomainError as refused:  # deployment policy, a rollout already running: ask instead
            row.decision = {**(row.decision or {}), "rollout_refused": refused.detail}
            self._finish(session, row, "awaiting_approval")
            return {"retraining_id": row.id, "status": row.status, "refused": refused.detail}
        row.rollout_id = rollout.id
        audit.record(
            session, tenant_id=row.tenant_id, actor=ACTOR, action="retraining.canary_started",
            subject=row.id, after={"rollout": rollout.id, "candidate": row.challenger_version},
            evidence=evidence,
        )  # fmt: skip
        self._finish(session, row, "canary")
        return {"retraining_id": row.id, "status": "canary", "rollout_id": rollout.id}

    def _finish(self, session: Session, row: Retraining, status: str, *, error: str | None = None) -> None:
        row.status, row.error, row.finished_at = status, error, utcnow()
        audit.record(
            session, tenant_id=row.tenant_id, actor=ACTOR, action=f"retraining.{status}", subject=row.id,
            reason=error, after={"challenger": row.challenger_version, "rollout": row.rollout_id},
            evidence={"decision": row.decision or {}},
        )  # fmt: skip
        enqueue_notice(session, row, event=status)

    def on_exhausted(self, ctx: JobContext, session: Session, error: str) -> None:
        row = session.get(Retraining, str(ctx.payload.get("retraining_id")))
        if row is not None and row.status in service.OPEN:
            self._finish(session, row, "failed", error=error[:500])
