"""The fraud-check hot path: no SQL; features from the cache, scores from the model host.

One cache round trip claims the idempotency key and reads the card's and terminal's state (with the
buckets on Redis, it also takes the rate-limit token); a second writes the new states and the final
answer. ``acheck`` (the HTTP hot path) awaits both on the cache's async calls, so the event loop
serves other checks meanwhile; ``check`` is the same check on the sync calls. Both share every step
but the cache calls (``_prepare``, ``_score``, ``_answered``). A cache that fails or exceeds its timeout
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

from control_plane.errors import Conflict, ServiceUnavailable
from control_plane.scoring.admission import Checked, RateDecisionHeaders, TokenGate
from control_plane.scoring.check_features import CheckFeatures, plan_label
from control_plane.scoring.decision import LEGIT, list_hit, rules_score, threshold_decision
from control_plane.scoring.flagged_payload import flagged_id, flagged_payload, public_reason
from control_plane.scoring.hashing import request_hash
from control_plane.scoring.idempotency import (
    FEATURE_CACHE,
    IDEMPOTENCY_TTL_S,
    PreparedCheck,
    replay,
    write_back_failed,
)
from control_plane.scoring.observer import ScoreObserver
from control_plane.scoring.schemas import FraudCheckRequest
from control_plane.scoring.serving import ServingRegistry, TenantServing
from control_plane.scoring.shadow import score_shadow
from control_plane.scoring.spool import FlaggedSpool, SpoolUnavailable
from control_plane.scoring.tenant_features import PlanCheck, readable_reasons, validate_attributes
from control_plane.slo.recorder import RequestRecorder
from guardrails.canary import in_canary, traffic_bucket
from providers.ports import (
    ArtifactIntegrityError,
    FeatureCache,
    MetricsSink,
    ModelHost,
    ModelPreloading,
    ProviderError,
    ScriptedAdmission,
)

log = logging.getLogger(__name__)
# A PRODUCTION model that cannot load or score: the check is answered from the tenant's rules.
PRODUCTION_FALLBACK = "production_model"
FALLBACK_LOG_INTERVAL_S = 60.0


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
        self.cache = cache  # (a property: it also notes whether the cache can run a token take)
        self.host = host
        self.spool = spool
        self.metrics = metrics
        self.recorder = recorder
        self.top_k = explain_top_k
        self.monitor = monitor
        self._fallback_logged: dict[tuple[str, str], float] = {}
        # A remote host (SageMaker) loads on its side; an in-process one can be warmed off the loop.
        self._preload = host if isinstance(host, ModelPreloading) else None

    @property
    def cache(self) -> FeatureCache:
        return self._cache

    @cache.setter
    def cache(self, cache: FeatureCache) -> None:
        self._cache = cache
        self._scripted = cache if isinstance(cache, ScriptedAdmission) else None

    def token_in_claim(self, limiter: TokenGate[Any]) -> bool:
        """True when the rate-limit token is taken in the claim's round trip (both on Redis)."""
        return self._scripted is not None and limiter.scripted

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
        """One fraud check on the cache's sync calls (the rate limit is the caller's)."""
        check = self._prepare(tenant_id, req, started)
        degraded: list[str] = []
        try:
            existing, raws = self.cache.claim_and_read(
                tenant_id, check.idem_key, check.marker, IDEMPOTENCY_TTL_S, check.features.read_keys
            )
        except ProviderError:
            existing, raws = None, None
            degraded.append(FEATURE_CACHE)
        if existing is not None:
            return replay(existing, check)
        try:
            answer, states = self._score(check, raws, degraded)
        except BaseException as exc:
            if FEATURE_CACHE not in degraded:
                with contextlib.suppress(ProviderError):  # the claim goes: a retry checks again
                    self.cache.delete_many(tenant_id, [check.idem_key])
            self._failed(tenant_id, exc)
            raise
        if FEATURE_CACHE not in degraded:
            try:
                self.cache.set_many(tenant_id, check.write_back(states, answer), ttl_s=check.features.ttl_s)
            except ProviderError:
                write_back_failed(answer)
        return self._answered(tenant_id, answer, degraded)

    async def acheck(
        self,
        tenant_id: str,
        req: FraudCheckRequest,
        *,
        started: float | None = None,
        gate: TokenGate[Any] | None = None,
    ) -> Checked:
        """``check`` on the cache's async calls; with ``gate`` (see ``token_in_claim``) the rate-limit
        token is taken in the claim's round trip and its decision comes back with the answer."""
        check = self._prepare(tenant_id, req, started)
        degraded: list[str] = []
        limit: RateDecisionHeaders | None = None
        if gate is not None and self._scripted is None:
            limit, gate = gate.check(tenant_id), None  # this cache cannot run the take: its own call
        take = gate.scripted_take(tenant_id) if gate is not None else None  # 429 in a refusal window
        try:
            if gate is None or take is None or self._scripted is None:
                existing, raws = await self.cache.aclaim_and_read(
                    tenant_id, check.idem_key, check.marker, IDEMPOTENCY_TTL_S, check.features.read_keys
                )
            else:
                admitted = await self._scripted.aadmit_claim_and_read(
                    take.admission,
                    tenant_id,
                    check.idem_key,
                    check.marker,
                    IDEMPOTENCY_TTL_S,
                    check.features.read_keys,
                )
                limit = gate.settle(tenant_id, take, admitted.reply)  # a refusal claimed nothing
                existing, raws = admitted.existing, admitted.values
        except ProviderError as exc:
            if take is not None and gate is not None:
                gate.unavailable(tenant_id, exc)  # the limiter fails open, as its own call does
            existing, raws = None, None
            degraded.append(FEATURE_CACHE)
        if existing is not None:
            return Checked(replay(existing, check), limit)
        try:
            answer, states = self._score(check, raws, degraded)
        except BaseException as exc:
            if FEATURE_CACHE not in degraded:
                with contextlib.suppress(ProviderError):
                    await self.cache.adelete_many(tenant_id, [check.idem_key])
            self._failed(tenant_id, exc)
            raise
        if FEATURE_CACHE not in degraded:
            try:
                await self.cache.aset_many(
                    tenant_id, check.write_back(states, answer), ttl_s=check.features.ttl_s
                )
            except ProviderError:
                write_back_failed(answer)
        return Checked(self._answered(tenant_id, answer, degraded), limit)

    def _prepare(self, tenant_id: str, req: FraudCheckRequest, started: float | None) -> PreparedCheck:
        """Everything before the cache: the tenant can check, the body is valid, the version routed."""
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
        version, cohort = self.route(tenant, req.card_token)
        plan = tenant.plans.get(version) if version is not None else None
        features = CheckFeatures(req, None if plan is None else PlanCheck(plan, req))
        return PreparedCheck(tenant, req, request_hash(req), (version, cohort), features, t0)

    def _failed(self, tenant_id: str, exc: BaseException) -> None:
        if isinstance(exc, Exception):  # a check the service could not answer (503 / 500)
            self.metrics.increment(
                "fraudrail_fraud_check_total", tenant=tenant_id, decision="error", cohort="none"
            )

    def _answered(self, tenant_id: str, answer: dict[str, Any], degraded: list[str]) -> dict[str, Any]:
        if FEATURE_CACHE in degraded:
            self.metrics.increment("fraudrail_degraded_total", tenant=tenant_id, input=FEATURE_CACHE)
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

    def _invoke(self, tenant_id: str, version: str, vector: list[float]) -> float:
        try:
            return self.host.invoke(tenant_id, version, [vector])[0]
        except ArtifactIntegrityError as exc:
            self.metrics.increment("fraudrail_integrity_failures_total", tenant=tenant_id)
            raise ServiceUnavailable(str(exc)) from exc
        except ProviderError as exc:
            raise ServiceUnavailable(f"model {version} unavailable: {exc}") from exc

    def _score(
        self, check: PreparedCheck, raws: list[bytes | None] | None, degraded: list[str]
    ) -> tuple[dict[str, Any], dict[str, bytes]]:
        tenant, req, features, t0 = check.tenant, check.req, check.features, check.t0
        vector = features.compute(raws)
        names = features.names
        if features.plan is not None:
            for kind, n in features.plan.counts.as_dict().items():
                if n:
                    self.metrics.increment(
                        "fraudrail_feature_inputs_total", n, tenant=tenant.tenant_id, kind=kind
                    )
        hit = list_hit(tenant.policy, req.card_token, req.terminal_id)
        version, cohort = routed = check.routed
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
                if plan_label(tenant, version) != plan_label(tenant, routed[0]):
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
            and plan_label(tenant, shadow) == plan_label(tenant, version)
        ):
            score_shadow(self.host, self.recorder, tenant, vector, decision)
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
