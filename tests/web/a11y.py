"""Accessibility checks in the browser tests: axe-core (shipped inside the axe-playwright-python
package, so nothing is downloaded) run on the page as the browser renders it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import axe_playwright_python

AXE_SCRIPT = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")
# WCAG 2.1 A and AA: labels, names, contrast, heading and landmark structure, keyboard reachability.
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the current page (an empty list when it passes)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SCRIPT)
    results = page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)
    return list(results["violations"])


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        targets = [
            " ".join(n["target"]) if isinstance(n["target"], list) else str(n["target"]) for n in v["nodes"]
        ]
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} — {', '.join(targets[:5])}")
    return "\n".join(lines)


def assert_accessible(page: Any) -> None:
    violations = axe_violations(page)
    assert not violations, "accessibility violations:\n" + describe(violations)
