"""The catalogue declares nothing that no code emits (a declared metric nobody emits is an empty
panel waiting to happen: the bug this catalogue was made for), and the docs describe each one."""

from __future__ import annotations

from providers.metrics_catalog import CATALOG, SPECS
from tests.dashboards.queries import REPO_ROOT

SOURCE_DIRS = ("control_plane", "providers", "traffic", "lambdas")


def test_every_catalogued_metric_is_named_by_the_code_that_emits_it() -> None:
    catalogue = REPO_ROOT / "providers" / "metrics_catalog.py"
    source = "\n".join(
        path.read_text()
        for folder in SOURCE_DIRS
        for path in (REPO_ROOT / folder).rglob("*.py")
        if path != catalogue
    )
    unemitted = [name for name in CATALOG if f'"{name}"' not in source]
    assert not unemitted, f"declared in providers/metrics_catalog.py but emitted nowhere: {unemitted}"


def test_names_are_unique_and_prefixed() -> None:
    assert len(CATALOG) == len(SPECS)
    assert all(name.startswith("fraudrail_") for name in CATALOG)


def test_every_catalogued_metric_is_described_in_the_observability_doc() -> None:
    doc = (REPO_ROOT / "docs" / "observability.md").read_text()
    undocumented = [name for name in CATALOG if f"`{name}`" not in doc]
    assert not undocumented, f"add a row to docs/observability.md for: {undocumented}"
