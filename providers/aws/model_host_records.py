"""The SageMaker model host's slot records, its CSV wire format and weight arithmetic."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from providers.aws._util import error_code, error_message
from providers.ports import ProviderError

KINDS = ("serverless", "pooled", "dedicated")
FULL_WEIGHT = 10_000
SETTLING = {"Creating", "Updating", "SystemUpdating", "RollingBack", "UpdateRollbackFailed"}
_NOT_FOUND_MARKERS = ("could not find", "does not exist", "not found")


@dataclass
class Version:
    version_id: str
    artifact_key: str
    sha256: str
    model_name: str | None
    variant: str
    deployed_at: str


@dataclass
class Record:
    tenant_id: str
    kind: str
    created_at: str
    endpoint_owner: str | None = None  # "host" when this adapter created the tenant's endpoint
    versions: list[Version] = field(default_factory=list)
    weights: dict[str, int] = field(default_factory=dict)

    def version(self, version_id: str) -> Version | None:
        return next((v for v in self.versions if v.version_id == version_id), None)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Record:
        raw = json.loads(data)
        versions = [Version(**v) for v in raw.pop("versions", [])]
        weights = {str(k): int(v) for k, v in raw.pop("weights", {}).items()}
        return cls(versions=versions, weights=weights, **raw)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def not_found(exc: BaseException) -> bool:
    message = error_message(exc).lower()
    return error_code(exc) in {"ValidationException", "ResourceNotFound"} and any(
        marker in message for marker in _NOT_FOUND_MARKERS
    )


def csv_body(rows: Sequence[Sequence[float]]) -> bytes:
    """Feature rows as SageMaker's ``text/csv`` (no header; NaN as an empty field)."""
    lines = []
    for row in rows:
        lines.append(",".join("" if math.isnan(float(v)) else repr(float(v)) for v in row))
    return ("\n".join(lines) + "\n").encode()


def parse_scores(body: bytes | str) -> list[float]:
    """One score per row from a CSV / newline / JSON-list response body."""
    text = body.decode() if isinstance(body, bytes) else body
    text = text.strip()
    if not text:
        return []
    if text[0] in "[{":
        data = json.loads(text)
        if isinstance(data, dict):
            data = data.get("predictions", data.get("scores"))
        if not isinstance(data, list):
            raise ValueError("a JSON body must be a list or carry 'predictions'")
        out = []
        for item in data:
            if isinstance(item, list) and len(item) == 1:
                item = item[0]
            if isinstance(item, dict):
                item = item.get("score")
            out.append(float(item))
        return out
    return [float(cell) for line in text.splitlines() for cell in line.split(",") if cell.strip()]


def as_basis_points(raw: Mapping[str, float]) -> dict[str, int]:
    """Relative weights as basis points summing to 10,000 (largest remainder)."""
    total = sum(raw.values())
    if total <= 0:
        return {k: 0 for k in raw}
    exact = {k: v * FULL_WEIGHT / total for k, v in raw.items()}
    out = {k: math.floor(v) for k, v in exact.items()}
    short = FULL_WEIGHT - sum(out.values())
    for k in sorted(exact, key=lambda k: exact[k] - out[k], reverse=True)[:short]:
        out[k] += 1
    return out


def validated_weights(record: Record, weights: Mapping[str, int]) -> dict[str, int]:
    deployed = [v.version_id for v in record.versions]
    unknown = sorted(set(weights) - set(deployed))
    if unknown:
        raise ProviderError(f"versions not deployed for {record.tenant_id}: {unknown}")
    for version_id, bp in weights.items():
        if isinstance(bp, bool) or not isinstance(bp, int) or not 0 <= bp <= FULL_WEIGHT:
            raise ValueError(f"weight of {version_id} must be an integer 0..{FULL_WEIGHT} (basis points)")
    if sum(weights.values()) != FULL_WEIGHT:
        raise ValueError(f"weights must sum to {FULL_WEIGHT} basis points, not {sum(weights.values())}")
    return {vid: int(weights.get(vid, 0)) for vid in deployed}


def variant_weights(record: Record, description: Mapping[str, Any]) -> dict[str, int]:
    by_variant = {v.variant: v.version_id for v in record.versions}
    raw: dict[str, float] = {}
    for variant in description.get("ProductionVariants", []):
        version_id = by_variant.get(str(variant.get("VariantName")))
        if version_id is None:
            continue  # a variant this host did not create (e.g. the CDK stack's own)
        weight = variant.get("CurrentWeight", variant.get("DesiredWeight", 0.0))
        raw[version_id] = float(weight or 0.0)
    return as_basis_points(raw)
