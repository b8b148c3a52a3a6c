"""The feature-set document: a tenant's attributes and the features computed from them.

A document is plain data (JSON or YAML decoded by the caller). :func:`parse_feature_set`
checks all of it and raises :class:`FeatureSetError` listing every problem with the JSON path
that holds it (``features[3].window``), so a caller can answer one 422 naming each path.
The batch engine (:mod:`.batch`) and the online engine (:mod:`.online`) both read the parsed
:class:`FeatureSet`; neither has features of its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ATTRIBUTE_TYPES = ("numeric", "categorical", "identifier", "boolean", "country", "timestamp")
# Columns every transaction has (the request's own fields); a document may not redeclare them.
BUILTIN_ATTRIBUTES: dict[str, str] = {
    "txn_id": "identifier",
    "card_token": "identifier",
    "terminal_id": "identifier",
    "ts": "timestamp",
    "amount": "numeric",
    "currency": "categorical",
    "channel": "categorical",
    "country": "country",
    "device": "identifier",
    "mcc": "categorical",
}
REQUIRED_BUILTINS = frozenset({"txn_id", "card_token", "terminal_id", "ts", "amount", "currency"})
KINDS = ("passthrough", "categorical", "velocity", "label_risk", "compare", "calendar")
AGGREGATES = ("count", "sum", "mean", "distinct", "since_previous", "amount_ratio")
COMPARE_OPS = ("==", "!=", "<", "<=", ">", ">=")
CALENDAR_PARTS = ("hour", "weekday", "weekend", "night")
ENCODINGS = ("target", "frequency")
MIN_WINDOW_S = 60
MAX_WINDOW_S = 30 * 86_400
MAX_FEATURES = 200
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_WINDOW = re.compile(r"^(\d+)\s*([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
NUMERIC_LIKE = ("numeric", "boolean")


class FeatureSetError(ValueError):
    """A document that cannot be used; ``errors`` holds (JSON path, message) pairs."""

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(f"{p}: {m}" for p, m in self.errors))


@dataclass(frozen=True)
class Attribute:
    name: str
    type: str
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    values: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Condition:
    """``feature op value``, evaluated on each past transaction at its own time."""

    feature: str
    op: str
    value: float


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str
    label: str
    attribute: str | None = None
    entity: tuple[str, ...] = ()
    aggregate: str | None = None
    of: str | None = None
    window_s: int | None = None
    where: Condition | None = None
    stat: str | None = None
    part: str | None = None
    left: str | None = None
    op: str | None = None
    right: str | None = None
    right_value: float | str | None = None
    encoding: str | None = None
    night_last_hour: int = 6

    def depends_on(self) -> tuple[str, ...]:
        """Names of attributes or features this feature reads (for ordering and cycles)."""
        names = [*self.entity]
        for n in (self.attribute, self.of, self.left, self.right):
            if n is not None:
                names.append(n)
        if self.where is not None:
            names.append(self.where.feature)
        # A passthrough may share its attribute's name; that is not a dependency on itself.
        return tuple(n for n in names if n != self.name)


@dataclass(frozen=True)
class FeatureSet:
    name: str
    timezone: str
    delay_days: int
    attributes: Mapping[str, Attribute]
    features: tuple[Feature, ...]
    document: Mapping[str, Any] = field(default_factory=dict)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def attribute_type(self, name: str) -> str | None:
        if name in BUILTIN_ATTRIBUTES:
            return BUILTIN_ATTRIBUTES[name]
        attr = self.attributes.get(name)
        return attr.type if attr else None

    def order(self) -> tuple[Feature, ...]:
        """Features in an order where each comes after the features it reads."""
        by_name = {f.name: f for f in self.features}
        done: dict[str, Feature] = {}

        def visit(f: Feature) -> None:
            if f.name in done:
                return
            for dep in f.depends_on():
                if dep in by_name:
                    visit(by_name[dep])
            done[f.name] = f

        for f in self.features:
            visit(f)
        return tuple(done.values())


def parse_window(value: Any, path: str, errors: list[tuple[str, str]]) -> int | None:
    """Seconds from ``"10m"``, ``"24h"``, ``"7d"`` or an integer of seconds, within 1 min..30 days."""
    seconds: int | None = None
    if isinstance(value, bool):
        seconds = None
    elif isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and (m := _WINDOW.match(value.strip())):
        seconds = int(m.group(1)) * _UNIT_S[m.group(2)]
    if seconds is None:
        errors.append((path, 'a window is a duration such as "10m", "1h", "7d" or whole seconds'))
        return None
    if not MIN_WINDOW_S <= seconds <= MAX_WINDOW_S:
        errors.append((path, f"window {value!r} is outside 1 minute .. 30 days"))
        return None
    return seconds


def _attribute(name: str, raw: Any, path: str, errors: list[tuple[str, str]]) -> Attribute | None:
    if not NAME_PATTERN.match(name):
        errors.append((path, "attribute names are lower-case letters, digits and _ (at most 63)"))
    if name in BUILTIN_ATTRIBUTES:
        errors.append((path, f"{name} is a built-in attribute of every transaction"))
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, Mapping):
        errors.append((path, "an attribute is an object with a type"))
        return None
    unknown = set(raw) - {"type", "required", "min", "max", "values", "description"}
    for key in sorted(unknown):
        errors.append((f"{path}.{key}", "unknown key"))
    kind = raw.get("type")
    if kind not in ATTRIBUTE_TYPES:
        errors.append((f"{path}.type", f"type must be one of {', '.join(ATTRIBUTE_TYPES)}"))
        return None
    bounds: dict[str, float | None] = {"min": None, "max": None}
    for key in ("min", "max"):
        if key in raw:
            if kind != "numeric" or isinstance(raw[key], bool) or not isinstance(raw[key], int | float):
                errors.append((f"{path}.{key}", f"{key} is a number, for numeric attributes only"))
            else:
                bounds[key] = float(raw[key])
    values = raw.get("values")
    if values is not None and (
        kind not in ("categorical", "country") or not isinstance(values, list) or not values
    ):
        errors.append((f"{path}.values", "values is a non-empty list, for categorical or country"))
        values = None
    required = raw.get("required", False)
    if not isinstance(required, bool):
        errors.append((f"{path}.required", "required is true or false"))
        required = False
    return Attribute(
        name,
        kind,
        required,
        bounds["min"],
        bounds["max"],
        tuple(str(v) for v in values) if values else None,
    )


def _cycles(features: Sequence[Feature]) -> list[tuple[str, str]]:
    by_name = {f.name: (i, f) for i, f in enumerate(features)}
    state: dict[str, int] = {}
    found: list[tuple[str, str]] = []

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            loop = [*trail[trail.index(name) :], name]
            found.append((f"features[{by_name[name][0]}]", "cycle: " + " -> ".join(loop)))
            return
        state[name] = 1
        for dep in by_name[name][1].depends_on():
            if dep in by_name:
                visit(dep, [*trail, name])
        state[name] = 2

    for f in features:
        visit(f.name, [])
    return found


def parse_feature_set(raw: Any, *, name: str | None = None) -> FeatureSet:
    """A checked :class:`FeatureSet`, or :class:`FeatureSetError` with every problem's path."""
    from fraud_model.feature_sets.checks import FeatureChecker

    errors: list[tuple[str, str]] = []
    if not isinstance(raw, Mapping):
        raise FeatureSetError([("$", "a feature set is an object with attributes and features")])
    for key in sorted(set(raw) - {"name", "description", "timezone", "delay_days", "attributes", "features"}):
        errors.append((key, "unknown key"))
    tz = raw.get("timezone", "UTC")
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(("timezone", f"unknown time zone {tz!r} (an IANA name such as Europe/Paris)"))
    delay = raw.get("delay_days", 7)
    if isinstance(delay, bool) or not isinstance(delay, int) or not 1 <= delay <= 90:
        errors.append(("delay_days", "delay_days is a whole number of days, 1..90"))
        delay = 7
    raw_attrs = raw.get("attributes") or {}
    attributes: dict[str, Attribute] = {}
    if not isinstance(raw_attrs, Mapping):
        errors.append(("attributes", "attributes is an object: name -> {type, required, ...}"))
        raw_attrs = {}
    for attr_name, spec in raw_attrs.items():
        attr = _attribute(str(attr_name), spec, f"attributes.{attr_name}", errors)
        if attr is not None:
            attributes[attr.name] = attr
    raw_features = raw.get("features")
    if not isinstance(raw_features, list) or not raw_features:
        errors.append(("features", "features is a non-empty list"))
        raise FeatureSetError(errors)
    if len(raw_features) > MAX_FEATURES:
        errors.append(("features", f"at most {MAX_FEATURES} features"))
    names = {f.get("name") for f in raw_features if isinstance(f, Mapping) and isinstance(f.get("name"), str)}
    checker = FeatureChecker(attributes, {str(n) for n in names})
    features: list[Feature] = []
    seen: set[str] = set()
    for i, spec in enumerate(raw_features):
        feature = checker.feature(spec, f"features[{i}]")
        if feature is None:
            continue
        if feature.name in seen:
            errors.append((f"features[{i}].name", f"duplicate feature name {feature.name!r}"))
        is_attribute = feature.name in attributes or feature.name in BUILTIN_ATTRIBUTES
        if is_attribute and (feature.kind != "passthrough" or feature.attribute != feature.name):
            errors.append((f"features[{i}].name", f"{feature.name!r} is already an attribute"))
        seen.add(feature.name)
        features.append(feature)
    errors += checker.errors
    if not checker.errors:
        errors += _cycles(features)
    if errors:
        raise FeatureSetError(errors)
    return FeatureSet(
        name=str(name or raw.get("name") or "default"),
        timezone=str(tz),
        delay_days=int(delay),
        attributes=attributes,
        features=tuple(features),
        document=dict(raw),
    )
