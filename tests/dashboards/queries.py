"""What each dashboard queries: series names, the labels the query needs, literal label values.

Enough PromQL and CloudWatch metric-math to read the queries Fraudrail's dashboards use: selectors
with their matchers, ``by (...)`` groupings (prefix and postfix) applied to the series inside the
aggregation, ``label_values(metric, label)`` and ``SEARCH('Namespace=... MetricName=... k="v"')``.
A query this cannot read fails the test (``UnreadableQuery``) rather than passing unchecked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = REPO_ROOT / "dashboards"
NAMESPACE = "Fraudrail"

_SELECTOR = re.compile(r"\b(fraudrail_\w+)\s*(\{[^}]*\})?")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_AGG = r"(?:sum|max|min|avg|count|group|stddev|stdvar|topk|bottomk|quantile|count_values)"
_PREFIX_BY = re.compile(rf"\b{_AGG}\s+(by|without)\s*\(([^)]*)\)\s*\(")
_POSTFIX_BY = re.compile(r"\)\s*(by|without)\s*\(([^)]*)\)")
_LABEL_VALUES = re.compile(r"label_values\(\s*(fraudrail_\w+)[^,)]*,\s*(\w+)\s*\)")
_SEARCH = re.compile(r"SEARCH\('([^']*)',\s*'(\w+)',\s*\d+\)")
_SEARCH_TERM = re.compile(r'(\w+)="([^"]*)"')


class UnreadableQuery(AssertionError):
    pass


@dataclass
class Use:
    """One series as a query uses it: label names it needs, label values it selects literally."""

    dashboard: str
    query: str
    series: str
    labels: set[str] = field(default_factory=set)
    values: dict[str, str] = field(default_factory=dict)
    statistic: str | None = None  # CloudWatch only

    def __str__(self) -> str:
        return f"{self.dashboard}: {self.series} {sorted(self.labels)} {self.values} in {self.query!r}"


def dashboard_files() -> dict[str, list[Path]]:
    grafana = sorted((DASHBOARDS_DIR / "grafana").rglob("*.json"))
    cloudwatch = sorted((DASHBOARDS_DIR / "cloudwatch").rglob("*.json"))
    others = set(DASHBOARDS_DIR.rglob("*.json")) - set(grafana) - set(cloudwatch)
    assert not others, f"dashboards of an unknown kind (put them under grafana/ or cloudwatch/): {others}"
    return {"grafana": grafana, "cloudwatch": cloudwatch}


def _strings(node: Any, key: str | None = None) -> Iterator[tuple[str | None, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v, key)
    elif isinstance(node, str):
        yield key, node


def _balanced(text: str, open_at: int) -> int:
    """Index of the parenthesis closing the one at ``open_at``."""
    depth = 0
    for i in range(open_at, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    raise UnreadableQuery(f"unbalanced parentheses in {text!r}")


def _opening(text: str, close_at: int) -> int:
    depth = 0
    for i in range(close_at, -1, -1):
        depth += {")": 1, "(": -1}.get(text[i], 0)
        if depth == 0:
            return i
    raise UnreadableQuery(f"unbalanced parentheses in {text!r}")


def promql_uses(dashboard: str, expr: str) -> list[Use]:
    uses: list[Use] = []
    spans: list[tuple[int, int, Use]] = []
    for m in _SELECTOR.finditer(expr):
        use = Use(dashboard, expr, m.group(1))
        for name, op, value in _MATCHER.findall(m.group(2) or ""):
            use.labels.add(name)
            if op == "=" and "$" not in value:
                use.values[name] = value
        uses.append(use)
        spans.append((m.start(), m.end(), use))
    groupings: list[tuple[int, int, str, str]] = []
    for m in _PREFIX_BY.finditer(expr):
        groupings.append((m.end() - 1, _balanced(expr, m.end() - 1), m.group(1), m.group(2)))
    for m in _POSTFIX_BY.finditer(expr):
        groupings.append((_opening(expr, m.start()), m.start(), m.group(1), m.group(2)))
    for start, end, _mode, labels in groupings:
        names = {n.strip() for n in labels.split(",") if n.strip()}
        inside = [use for s, _e, use in spans if start < s < end]
        if not inside:
            raise UnreadableQuery(f"a grouping over no fraudrail series in {expr!r}")
        for use in inside:
            use.labels |= names  # `without` names labels too: each must exist to be dropped
    for m in _LABEL_VALUES.finditer(expr):
        for use in uses:
            if use.series == m.group(1):
                use.labels.add(m.group(2))
    return uses


def grafana_uses(path: Path) -> list[Use]:
    """Every series of every query, variable and annotation of a Grafana dashboard."""
    doc = json.loads(path.read_text())
    uses: list[Use] = []
    for key, text in _strings(doc):
        if "fraudrail_" not in text:
            continue
        if key not in ("expr", "query", "definition"):
            raise UnreadableQuery(f"{path.name}: fraudrail_ series outside a query ({key}: {text!r})")
        uses += promql_uses(path.name, text)
    return uses


def cloudwatch_uses(name: str, body: dict[str, Any]) -> list[Use]:
    """Every metric of every widget (SEARCH expressions and plain metric arrays) and alarm."""
    uses: list[Use] = []
    for key, text in _strings(body):
        if key == "expression":
            for search, statistic in _SEARCH.findall(text):
                terms = dict(_SEARCH_TERM.findall(search))
                if terms.pop("Namespace", None) != NAMESPACE or "MetricName" not in terms:
                    raise UnreadableQuery(f"{name}: SEARCH outside namespace {NAMESPACE}: {search!r}")
                series = terms.pop("MetricName")
                uses.append(Use(name, text, series, set(terms), dict(terms), statistic))
        elif "fraudrail_" in text and key not in ("markdown",):
            raise UnreadableQuery(f"{name}: a metric this test cannot read ({key}: {text!r})")
    for widget in body.get("widgets", []):
        for line in widget.get("properties", {}).get("metrics", []):
            if line and isinstance(line[0], str):  # ["Namespace", "MetricName", dim, value, ...]
                raise UnreadableQuery(f"{name}: plain metric arrays are not read yet: {line}")
    return uses
