"""The fraud-check hot path: no SQL; features from the cache, scores from the model host.

One cache round trip claims the idempotency key and reads the card's and terminal's state;
a second writes the new states and the final answer. A cache that fails or exceeds its timeout
degrades the check (features from empty history, ``degraded: true``) instead of failing it.
During a rollout the card's traffic bucket picks the canary or the stable version; a canary
that fails answers from the stable version (the failure is recorded against the canary, which
is what its analysis sees), and in a shadow phase the candidate scores alongside the stable.
A PRODUCTION model that cannot load or score answers from the tenant's rules (``degraded: true``,
``degraded_inputs: ["production_model"]``), counted in ``fraudrail_degraded_total`` (input
``production_model``) and logged at ERROR; the failure still burns the version's error budget.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import orjson

from control_plane.errors import Conflict, ServiceUnavailable
from control_plane.scoring.decision import LEGIT, list_hit, rules_score, threshold_decision
from control_plane.scoring.flagged_payload import flagged_id, flagged_payload, public_reason
from control_plane.scoring.hashing import request_hash
from control_plane.scoring.observer import ScoreObserver
from control_plane.scoring.schemas import FraudCheckRequest
from control_plane.scoring.serving import ServingRegistry, TenantServing
from control_plane.scoring.spool import FlaggedSpool, SpoolUnavailable
from control_plane.scoring.tenant_features import PlanCheck, readable_reasons, validate_attributes
from control_plane.slo.recorder import RequestRecorder
from fraud_model.features import FEATURE_NAMES, terminal_horizon_s
from fraud_model.online_features import (
    CardState,
    TerminalState,
    TransactionEvent,
    observe_card,
    observe_terminal,
    transaction_features,
)
from guardrails.canary import in_canary, traffic_bucket
from providers.ports import (
    ArtifactIntegrityError,
    FeatureCache,
    MetricsSink,
    ModelHost,
    ModelPreloading,
    ProviderError,
)

log = logging.getLogger(__name__)
# A PRODUCTION model that cannot load or score: the check is answered from the tenant's rules.
PRODUCTION_FALLBACK = "production_model"
FALLBACK_LOG_INTERVAL_S = 60.0
IDEMPOTENCY_TTL_S = 7 * 86_400
PENDING = b"pending:"
TERMINAL_TTL_S = terminal_horizon_s() + 86_400


class FraudChecker:
    def __init__(
        self,
        serving: ServingRegistry,
        cache: FeatureCache,
        host: ModelHost,
        spool: FlaggedSpool,
        metrics: MetricsSink,
        recorder: RequestRecorder,
        *,
        explain_top_k: int = 3,
        monitor: ScoreObserver | None = None,
    ) -> None:
        self.serving = serving
        self.cache = cache
        self.host = host
        self.spool = spool
        self.metrics = metrics
        self.recorder = recorder
        self.top_k = explain_top_k
        self.monitor = monitor
        self._fallback_logged: dict[tuple[str, str], float] = {}
        # A remote host (SageMaker) loads on its side; an in-process one can be warmed off the loop.
        self._preload = host if isinstance(host, ModelPreloading) else None

    def cold_versions(self, tenant_id: str) -> list[str]:
        """Versions this tenant's checks may need that the host has not loaded yet."""
        preload = self._preload
        tenant = self.serving.get(tenant_id)
        if preload is None or tenant is None or tenant.production is None:
            return []
        needed = {tenant.production.version_id, *self.host.weights(tenant_id)}
        if tenant.shadow_version:
            needed.add(tenant.shadow_version)
        return [v for v in needed if not preload.is_loaded(tenant_id, v)]

    def warm(self, tenant_id: str, versions: list[str]) -> None:
        """Load (and verify) models ahead of scoring; a failure surfaces when the check scores."""
        if self._preload is None:
            return
        for version in versions:
            with contextlib.suppress(ProviderError, ArtifactIntegrityError):
                self._preload.scorer(tenant_id, version)

    def check(
        self, tenant_id: str, req: FraudCheckRequest, *, started: float | None = None
    ) -> dict[str, Any]:
        t0 = started if started is not None else time.perf_counter()
        tenant = self.serving.get(tenant_id)
        if tenant is None or tenant.status not in ("ACTIVE", "SUSPENDED"):
            raise Conflict("this tenant is not active for fraud checks", field="tenant")
        if tenant.status == "SUSPENDED":
            raise Conflict("this tenant is suspended; fraud checks are paused", field="tenant")
        if tenant.production is None and tenant.policy.fallback != "rules":
            raise Conflict(
                "no PRODUCTION model for this tenant: train, approve and promote one, or set the "
                "rules-only fallback in /v1/scoring-config",
                field="model",
            )
        validate_attributes(tenant.attributes, req)  # 422 naming the attribute, before any claim
        digest = request_hash(req)
        version, cohort = self.route(tenant, req.card_token)
        plan = tenant.plans.get(version) if version is not None else None
        features = _Features(req, None if plan is None else PlanCheck(plan, req))
        idem_key = f"idem:{req.txn_id}"
        degraded: list[str] = []
        raws: list[bytes | None] | None
        try:
            # One round trip: the idempotency claim and every entity's state of this check.
            existing, raws = self.cache.claim_and_read(
                tenant_id, idem_key, PENDING + digest.encode(), IDEMPOTENCY_TTL_S, features.read_keys
            )
        except ProviderError:
            existing, raws = None, None
            degraded.append("feature_cache")
        if existing is not None:
            return self._replay(existing, digest, req.txn_id, t0)
        try:
            answer, states = self._score(tenant, req, (version, cohort), features, raws, degraded, t0)
        except BaseException as exc:
            if "feature_cache" not in degraded:
                self._release(tenant_id, idem_key)
            if isinstance(exc, Exception):  # a check the service could not answer (503 / 500)
                self.metrics.increment(
                    "fraudrail_fraud_check_total", tenant=tenant_id, decision="error", cohort="none"
                )
            raise
        if "feature_cache" not in degraded:
            final = orjson.dumps({"h": digest, "r": answer})
            try:
                # One write for both states and the final answer (the longest horizon's TTL covers all).
                self.cache.set_many(tenant_id, {**states, idem_key: final}, ttl_s=features.ttl_s)
            except ProviderError:
                answer["degraded"] = True
                answer["degraded_inputs"] = [*answer["degraded_inputs"], "feature_cache"]
        else:
            self.metrics.increment("fraudrail_degraded_total", tenant=tenant_id, input="feature_cache")
        self.metrics.increment(
            "fraudrail_fraud_check_total",
            tenant=tenant_id,
            decision=answer["decision"],
            cohort=answer["cohort"],
        )
        if answer["decision"] != LEGIT:
            self.metrics.increment("fraudrail_flagged_total", tenant=tenant_id, decision=answer["decision"])
        self.metrics.observe(
            "fraudrail_fraud_check_seconds", answer["server_time_ms"] / 1000, tenant=tenant_id
        )
        return answer

    def _replay(self, existing: bytes, digest: str, txn_id: str, t0: float) -> dict[str, Any]:
        if existing.startswith(PENDING):
            same = existing[len(PENDING) :].decode() == digest
            raise Conflict(
                f"txn_id {txn_id} is being checked right now; retry shortly"
                if same
                else f"txn_id {txn_id} was already used with a different body",
                field="txn_id",
            )
        stored = orjson.loads(existing)
        if stored["h"] != digest:
            raise Conflict(f"txn_id {txn_id} was already checked with a different body", field="txn_id")
        answer: dict[str, Any] = dict(stored["r"])
        answer["replayed"] = True
        answer["server_time_ms"] = round((time.perf_counter() - t0) * 1000, 3)
        return answer

    def _release(self, tenant_id: str, idem_key: str) -> None:
        with contextlib.suppress(ProviderError):
            self.cache.delete_many(tenant_id, [idem_key])

    def _invoke(self, tenant_id: str, version: str, vector: list[float]) -> float:
        try:
            return self.host.invoke(tenant_id, version, [vector])[0]
        except ArtifactIntegrityError as exc:
            self.metrics.increment("fraudrail_integrity_failures_total", tenant=tenant_id)
            raise ServiceUnavailable(str(exc)) from exc
        except ProviderError as exc:
            raise ServiceUnavailable(f"model {version} unavailable: {exc}") from exc

    def _score(
        self,
        tenant: TenantServing,
        req: FraudCheckRequest,
        routed: tuple[str | None, str],
        features: _Features,
        raws: list[bytes | None] | None,
        degraded: list[str],
        t0: float,
    ) -> tuple[dict[str, Any], dict[str, bytes]]:
        vector = features.compute(raws)
        names = features.names
        if features.plan is not None:
            for kind, n in features.plan.counts.as_dict().items():
                if n:
                    self.metrics.increment(
                        "fraudrail_feature_inputs_total", n, tenant=tenant.tenant_id, kind=kind
                    )
        hit = list_hit(tenant.policy, req.card_token, req.terminal_id)
        version, cohort = routed
        tid = tenant.tenant_id
        reasons: list[dict[str, Any]] | None = None
        if version is None:
            score, reasons = rules_score(dict(zip(names, vector, strict=True)))
        elif cohort == "canary":
            try:
                score = self._invoke(tid, version, vector)
            except ServiceUnavailable:
                elapsed = (time.perf_counter() - t0) * 1000
                self.recorder.record(tid, version, "canary", ok=False, latency_ms=elapsed)
                assert tenant.production is not None
                version, cohort = tenant.production.version_id, "stable"
                degraded.append("canary_model")
                if _plan_label(tenant, version) != _plan_label(tenant, routed[0]):
                    # The stable version reads other features than these: answer from the rules.
                    score, reasons = rules_score(dict(zip(names, vector, strict=True)))
                    version, cohort = None, "rules"
                else:
                    score = self._invoke(tid, version, vector)
        else:
            try:
                score = self._invoke(tid, version, vector)
            except ServiceUnavailable as exc:
                # The failure still counts against the version's SLO (its error budget burns and
                # freezes deployments), but the check is answered from the tenant's rules.
                self.recorder.record(
                    tid, version, cohort, ok=False, latency_ms=(time.perf_counter() - t0) * 1000
                )
                self._alert_fallback(tid, version, exc)
                score, reasons = rules_score(dict(zip(names, vector, strict=True)))
                version, cohort = None, "rules"
                degraded.append(PRODUCTION_FALLBACK)
        decision = hit.decision or threshold_decision(score, tenant.policy)
        if reasons is None:
            # Contributions cost more than the score itself: explain only what a person will look at.
            reasons = self.host.explain(tid, version or "", vector, self.top_k) if decision != LEGIT else []
            if features.plan is not None:
                reasons = readable_reasons(reasons, features.plan.plan.readable)
        shadow = tenant.shadow_version
        if (
            shadow is not None
            and version is not None
            and _plan_label(tenant, shadow) == _plan_label(tenant, version)
        ):
            self._shadow(tenant, vector, decision)
        answer: dict[str, Any] = {
            "txn_id": req.txn_id,
            "decision": decision,
            "score": round(float(score), 6),
            "model_version": version,
            "cohort": cohort,
            "reasons": [public_reason(r) for r in hit.reasons + reasons],
            "degraded": bool(degraded),
            "degraded_inputs": list(degraded),
        }
        if decision != LEGIT:
            record = {"tenant_id": tid, "flagged_id": flagged_id(tid, req.txn_id)}
            try:  # durable before answered; a refusal is a 503 and the caller releases the claim
                self.spool.append({**record, "payload": flagged_payload(tid, req, answer, vector, names)})
            except SpoolUnavailable:
                self.metrics.increment("fraudrail_spool_refused_total", tenant=tid)
                raise
        if self.monitor is not None:
            with contextlib.suppress(Exception):  # monitoring counts in memory; it never fails a check
                self.monitor.observe(tid, version, cohort, req, vector, float(score), decision)
        answer["server_time_ms"] = round((time.perf_counter() - t0) * 1000, 3)
        if (cohort != "canary" or "canary_model" not in degraded) and PRODUCTION_FALLBACK not in degraded:
            self.recorder.record(
                tid,
                version or "rules",
                cohort,
                ok=True,
                latency_ms=answer["server_time_ms"],
                score=float(score),
                flagged=decision != LEGIT,
            )
        return answer, features.new_states()

    def _alert_fallback(self, tenant_id: str, version: str, exc: ServiceUnavailable) -> None:
        """Count every fallback; log at ERROR once a minute per version (not once per check)."""
        self.metrics.increment("fraudrail_degraded_total", tenant=tenant_id, input=PRODUCTION_FALLBACK)
        now = time.monotonic()
        key = (tenant_id, version)
        if now - self._fallback_logged.get(key, float("-inf")) >= FALLBACK_LOG_INTERVAL_S:
            if len(self._fallback_logged) > 10_000:  # bounded: one entry per failing version
                self._fallback_logged.clear()
            self._fallback_logged[key] = now
            log.error(
                "PRODUCTION model %s of tenant %s cannot score (%s): answering from the tenant's rules, "
                "degraded; roll back with POST /v1/models/rollback-production",
                version,
                tenant_id,
                exc.detail,
            )

    def _shadow(self, tenant: TenantServing, vector: list[float], stable_decision: str) -> None:
        """Score the candidate on the same features; record it and whether its decision would differ."""
        shadow = tenant.shadow_version
        assert shadow is not None
        t = time.perf_counter()
        try:
            score = self.host.invoke(tenant.tenant_id, shadow, [vector])[0]
        except (ProviderError, ArtifactIntegrityError):
            self.recorder.record(
                tenant.tenant_id, shadow, "shadow", ok=False, latency_ms=(time.perf_counter() - t) * 1000
            )
            return
        decision = threshold_decision(score, tenant.policy)
        self.recorder.record(
            tenant.tenant_id,
            shadow,
            "shadow",
            ok=True,
            latency_ms=(time.perf_counter() - t) * 1000,
            score=score,
            flagged=decision != LEGIT,
        )
        self.recorder.record_pair(tenant.tenant_id, shadow, flipped=decision != stable_decision)

    def route(self, tenant: TenantServing, card_token: str) -> tuple[str | None, str]:
        """The version that scores this card: stable, or canary when the card's bucket is under its weight."""
        if tenant.production is None:
            return None, "rules"
        stable = tenant.production.version_id
        weights = self.host.weights(tenant.tenant_id)
        canaries = [(v, w) for v, w in weights.items() if v != stable and w > 0]
        if not canaries:
            if weights and weights.get(stable, 0) == 0:
                # The rollout promoted the candidate before the registry reload caught up.
                only = max(weights, key=lambda v: weights[v])
                return only, "stable"
            return stable, "stable"
        canary, weight = canaries[0]
        if in_canary(traffic_bucket(tenant.salt, card_token), weight):
            return canary, "canary"
        return stable, "stable"


def _plan_label(tenant: TenantServing, version: str | None) -> str | None:
    plan = tenant.plans.get(version) if version is not None else None
    return None if plan is None else plan.label


class _Features:
    """One check's features: the built-in handbook path (card and terminal state) or a tenant plan."""

    def __init__(self, req: FraudCheckRequest, plan: PlanCheck | None) -> None:
        self.plan = plan
        if plan is None:
            self.event = TransactionEvent(
                req.txn_id, req.card_token, req.terminal_id, int(req.timestamp.timestamp()), float(req.amount)
            )
            self.read_keys = [f"card:{req.card_token}", f"term:{req.terminal_id}"]
            self.names: tuple[str, ...] = FEATURE_NAMES
            self.ttl_s = TERMINAL_TTL_S
        else:
            self.read_keys = plan.read_keys
            self.names = plan.plan.names
            self.ttl_s = max(TERMINAL_TTL_S, plan.plan.engine.horizon_s + 86_400)

    def compute(self, raws: list[bytes | None] | None) -> list[float]:
        if self.plan is not None:
            return self.plan.features(raws)
        card_raw, term_raw = raws if raws is not None else (None, None)
        self.card = CardState.from_bytes(card_raw) if card_raw else CardState()
        self.terminal = TerminalState.from_bytes(term_raw) if term_raw else TerminalState()
        vector = transaction_features(self.card, self.terminal, self.event)
        observe_card(self.card, self.event)
        observe_terminal(self.terminal, self.event)
        return vector

    def new_states(self) -> dict[str, bytes]:
        if self.plan is not None:
            return self.plan.new_states()
        return {self.read_keys[0]: self.card.to_bytes(), self.read_keys[1]: self.terminal.to_bytes()}
