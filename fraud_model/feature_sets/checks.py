"""Checking one feature of a document: its keys, the attributes it reads and their types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fraud_model.feature_sets.document import (
    AGGREGATES,
    BUILTIN_ATTRIBUTES,
    CALENDAR_PARTS,
    COMPARE_OPS,
    ENCODINGS,
    KINDS,
    NAME_PATTERN,
    NUMERIC_LIKE,
    Attribute,
    Condition,
    Feature,
    parse_window,
)

_FEATURE_KEYS = {
    "name",
    "kind",
    "label",
    "attribute",
    "entity",
    "aggregate",
    "of",
    "window",
    "where",
    "stat",
    "part",
    "left",
    "op",
    "right",
    "value",
    "encoding",
    "night_last_hour",
}


class FeatureChecker:
    """Checks one feature at a time against the declared attributes and the other features' names."""

    def __init__(self, attributes: Mapping[str, Attribute], names: set[str]) -> None:
        self.attributes = attributes
        self.feature_names = names
        self.errors: list[tuple[str, str]] = []

    def attr_type(self, name: Any, path: str) -> str | None:
        if isinstance(name, str) and name in BUILTIN_ATTRIBUTES:
            return BUILTIN_ATTRIBUTES[name]
        if isinstance(name, str) and name in self.attributes:
            return self.attributes[name].type
        self.errors.append((path, f"unknown attribute {name!r}"))
        return None

    def operand_type(self, name: Any, path: str) -> str | None:
        if isinstance(name, str) and name in self.feature_names:
            return "numeric"
        return self.attr_type(name, path)

    def feature(self, raw: Any, path: str) -> Feature | None:
        err = self.errors
        if not isinstance(raw, Mapping):
            err.append((path, "a feature is an object with a name and a kind"))
            return None
        for key in sorted(set(raw) - _FEATURE_KEYS):
            err.append((f"{path}.{key}", "unknown key"))
        name, kind = raw.get("name"), raw.get("kind")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            err.append((f"{path}.name", "feature names are lower-case letters, digits and _"))
            return None
        if kind not in KINDS:
            err.append((f"{path}.kind", f"kind must be one of {', '.join(KINDS)}"))
            return None
        label = raw.get("label") if isinstance(raw.get("label"), str) else name.replace("_", " ")
        make = getattr(self, f"_{kind}")
        feature: Feature | None = make(raw, path, name, label)
        return feature

    def _passthrough(self, raw: Mapping[str, Any], path: str, name: str, label: str) -> Feature:
        kind = self.attr_type(raw.get("attribute"), f"{path}.attribute")
        if kind is not None and kind not in NUMERIC_LIKE:
            self.errors.append(
                (f"{path}.attribute", f"passthrough needs a numeric or boolean attribute, not {kind}")
            )
        return Feature(name, "passthrough", label, attribute=raw.get("attribute"))

    def _categorical(self, raw: Mapping[str, Any], path: str, name: str, label: str) -> Feature:
        kind = self.attr_type(raw.get("attribute"), f"{path}.attribute")
        if kind is not None and kind not in ("categorical", "country", "identifier", "boolean"):
            self.errors.append(
                (f"{path}.attribute", f"categorical encoding needs a categorical attribute, not {kind}")
            )
        encoding = raw.get("encoding", "target")
        if encoding not in ENCODINGS:
            self.errors.append((f"{path}.encoding", f"encoding must be one of {', '.join(ENCODINGS)}"))
        return Feature(name, "categorical", label, attribute=raw.get("attribute"), encoding=str(encoding))

    def _entity(self, raw: Mapping[str, Any], path: str) -> tuple[str, ...]:
        entity = raw.get("entity")
        names = [entity] if isinstance(entity, str) else entity
        if not isinstance(names, list) or not names or len(names) > 3:
            self.errors.append((f"{path}.entity", "entity is an attribute name or a list of 1 to 3"))
            return ()
        for i, n in enumerate(names):
            kind = self.attr_type(n, f"{path}.entity[{i}]")
            if kind is not None and kind not in ("identifier", "categorical", "country", "boolean"):
                self.errors.append((f"{path}.entity[{i}]", f"an entity key cannot be a {kind} attribute"))
        return tuple(str(n) for n in names)

    def _velocity(self, raw: Mapping[str, Any], path: str, name: str, label: str) -> Feature:
        entity = self._entity(raw, path)
        agg = raw.get("aggregate")
        if agg not in AGGREGATES:
            self.errors.append((f"{path}.aggregate", f"aggregate must be one of {', '.join(AGGREGATES)}"))
        window = parse_window(raw.get("window", "30d"), f"{path}.window", self.errors)
        of = raw.get("of")
        if agg in ("sum", "mean", "amount_ratio"):
            of = of or "amount"
            kind = self.attr_type(of, f"{path}.of")
            if kind is not None and kind not in NUMERIC_LIKE:
                self.errors.append((f"{path}.of", f"{agg} needs a numeric attribute, not {kind}"))
        elif agg == "distinct":
            kind = self.attr_type(of, f"{path}.of")
            if kind in ("numeric", "timestamp"):
                self.errors.append(
                    (f"{path}.of", f"distinct counts values of a categorical attribute, not {kind}")
                )
        elif of is not None:
            self.errors.append((f"{path}.of", f"{agg} takes no 'of'"))
        where = None
        if "where" in raw:
            where = self._condition(raw["where"], f"{path}.where", agg)
        return Feature(
            name, "velocity", label, entity=entity, aggregate=agg, of=of, window_s=window, where=where
        )

    def _condition(self, raw: Any, path: str, agg: Any) -> Condition | None:
        if agg != "count":
            self.errors.append((path, "where applies to a count"))
        if not isinstance(raw, Mapping) or set(raw) != {"feature", "op", "value"}:
            self.errors.append((path, "where is {feature, op, value}"))
            return None
        if raw["feature"] not in self.feature_names:
            self.errors.append((f"{path}.feature", f"unknown feature {raw['feature']!r}"))
        if raw["op"] not in COMPARE_OPS:
            self.errors.append((f"{path}.op", f"op must be one of {' '.join(COMPARE_OPS)}"))
        value = raw["value"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.errors.append((f"{path}.value", "value is a number"))
            return None
        return Condition(str(raw["feature"]), str(raw["op"]), float(value))

    def _label_risk(self, raw: Mapping[str, Any], path: str, name: str, label: str) -> Feature:
        entity = self._entity(raw, path)
        window = parse_window(raw.get("window", "30d"), f"{path}.window", self.errors)
        stat = raw.get("stat", "rate")
        if stat not in ("rate", "count"):
            self.errors.append((f"{path}.stat", "stat is rate or count"))
        return Feature(name, "label_risk", label, entity=entity, window_s=window, stat=stat)

    def _compare(self, raw: Mapping[str, Any], path: str, name: str, label: str) -> Feature:
        op = raw.get("op")
        if op not in COMPARE_OPS:
            self.errors.append((f"{path}.op", f"op must be one of {' '.join(COMPARE_OPS)}"))
        left = self.operand_type(raw.get("left"), f"{path}.left")
        has_right, has_value = "right" in raw, "value" in raw
        if has_right == has_value:
            self.errors.append((path, "compare takes exactly one of right (a name) or value (a constant)"))
            return Feature(name, "compare", label, left=raw.get("left"), op=op)
        if has_right:
            right = self.operand_type(raw.get("right"), f"{path}.right")
        else:
            v = raw["value"]
            right = "text" if isinstance(v, str) else "numeric" if isinstance(v, int | float) else None
            if right is None:
                self.errors.append((f"{path}.value", "value is a number or a string"))
        if left is not None and right is not None:
            lc, rc = type_class(left), type_class(right)
            if lc != rc and not (not has_right and rc == "text" and lc in ("text", "country")):
                where = f"{path}.right" if has_right else f"{path}.value"
                self.errors.append(
                    (where, f"type mismatch: {raw.get('left')} is {left}, this side is {right}")
                )
            elif op not in ("==", "!=", None) and lc not in ("numeric", "timestamp"):
                self.errors.append((f"{path}.op", f"{op} orders numbers; {raw.get('left')} is {left}"))
        return Feature(
            name,
            "compare",
            label,
            left=raw.get("left"),
            op=op,
            right=raw.get("right") if has_right else None,
            right_value=None if has_right else raw.get("value"),
        )

    def _calendar(self, raw: Mapping[str, Any], path: str, name: str, label: str) -> Feature:
        part = raw.get("part")
        if part not in CALENDAR_PARTS:
            self.errors.append((f"{path}.part", f"part must be one of {', '.join(CALENDAR_PARTS)}"))
        last = raw.get("night_last_hour", 6)
        if isinstance(last, bool) or not isinstance(last, int) or not 0 <= last <= 23:
            self.errors.append((f"{path}.night_last_hour", "an hour 0..23"))
            last = 6
        return Feature(name, "calendar", label, part=part, night_last_hour=last)


def type_class(kind: str) -> str:
    if kind in NUMERIC_LIKE:
        return "numeric"
    if kind in ("categorical", "identifier"):
        return "text"
    return kind
