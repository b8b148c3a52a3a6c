"""Architecture rules (issue 12): import contracts bite, no domain-to-domain import cycle, no module
over 400 lines.

The whole-tree run of the contracts in pyproject.toml (`[tool.importlinter]`) is `lint-imports` in
scripts/test.sh; here we prove that they fail on a deliberately wrong import, that every package
and domain is covered by them, and check what import-linter cannot: cycles between domains.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
IMPORTLINTER = PYPROJECT["tool"]["importlinter"]
ROOT_PACKAGES: list[str] = IMPORTLINTER["root_packages"]
CONTRACTS: dict[str, dict[str, object]] = {c["id"]: c for c in IMPORTLINTER["contracts"]}
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

MAX_LINES = 400
# Not ours to size: generated or vendored trees, and Alembic's revision files (one per migration).
SIZE_EXCLUDED_DIRS = {".venv", "var", "cdk.out", ".git", "node_modules", "__pycache__", "build"}
SIZE_EXCLUDED_PREFIXES = ("control_plane/migrations/versions/",)

# control_plane's children by role. Every child module or package must be in exactly one.
DOMAINS = frozenset(
    {
        "audit",
        "auth",
        "chaos",
        "datasets",
        "finops",
        "jobs",
        "monitoring",
        "notifications",
        "registry",
        "review",
        "rollouts",
        "scoring",
        "slo",
        "tenants",
        "training",
        "users",
        "web",
    }
)
COMPOSITION_ROOT = frozenset(
    {
        "bootstrap",
        "app",
        "cli",
        "cli_tools",
        "models",
        "migrate",
        "migrations",
        "metrics_endpoint",
        "ops_routes",
    }
)
REQUEST_BOUNDARY = frozenset({"deps"})
KERNEL = frozenset(
    {"db", "errors", "http", "overload", "ids", "orm_base", "settings", "tenancy", "policy_gate", "faults"}
    | {"outbox", "events", "principals", "openapi"}
)

# Domain-to-domain imports that currently close a cycle between domains, each a known defect being
# removed by the issue 12 refactor. Without them the domain graph must be acyclic: the test fails
# on any other cycle, and warns when an entry no longer exists (then delete it).
KNOWN_CYCLE_EDGES: dict[str, str] = {}  # none left: add one only with a TODO and the reason


# --- no module over 400 lines ----------------------------------------------------------------


def _python_files(root: Path) -> Iterator[Path]:
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in SIZE_EXCLUDED_DIRS and not d.startswith("."))
        for name in sorted(files):
            path = Path(directory, name)
            if name.endswith(".py") and not path.relative_to(root).as_posix().startswith(
                SIZE_EXCLUDED_PREFIXES
            ):
                yield path


def test_no_module_over_400_lines() -> None:
    oversized = sorted(
        (rel.as_posix(), n)
        for path in _python_files(ROOT)
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
        for rel in [path.relative_to(ROOT)]
    )
    assert not oversized, f"modules over {MAX_LINES} lines (split them by cohesion): " + ", ".join(
        f"{p} ({n})" for p, n in oversized
    )


# --- the contracts cover every package -------------------------------------------------------


def test_every_top_level_package_is_a_root_package() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    # The same list as setuptools' (the packages we ship).
    assert packages <= {
        p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    } | {"traffic", "inference"}
    assert packages <= set(ROOT_PACKAGES), f"not covered by import contracts: {packages - set(ROOT_PACKAGES)}"


def test_every_control_plane_child_has_a_role_in_the_contracts() -> None:
    children = {
        p.stem if p.is_file() else p.name
        for p in (ROOT / "control_plane").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and any(p.glob("*.py")))
    }
    roles = [DOMAINS, COMPOSITION_ROOT, REQUEST_BOUNDARY, KERNEL]
    assert not set.intersection(*map(set, roles))
    unclassified = {c for c in children if sum(c in r for r in roles) != 1}
    assert not unclassified, f"give these a role in tests/test_architecture.py and pyproject: {unclassified}"

    domains = {f"control_plane.{d}" for d in DOMAINS}
    assert set(CONTRACTS["domains-no-composition-root"]["source_modules"]) == domains  # type: ignore[arg-type]
    assert domains <= set(CONTRACTS["domains-no-adapters"]["source_modules"])  # type: ignore[arg-type]
    layers: list[str] = CONTRACTS["control-plane-layers"]["layers"]  # type: ignore[assignment]
    layer_sets = [{m.strip(" ()") for m in layer.replace("|", ":").split(":")} for layer in layers]
    assert layer_sets[1] == set(DOMAINS | REQUEST_BOUNDARY)
    assert layer_sets[2] == set(KERNEL)
    assert layer_sets[0] == set(COMPOSITION_ROOT - {"migrations"})  # migrations/ is not a package


# --- the contracts bite ----------------------------------------------------------------------

# (contract id, module that gets the wrong import appended, the wrong import)
WRONG_IMPORTS = [
    ("guardrails-pure", "guardrails/slo.py", "import control_plane.errors"),
    ("guardrails-pure", "guardrails/canary.py", "import fraud_model.features"),
    ("fraud-model-pure", "fraud_model/features.py", "from providers import ports"),
    ("providers-no-domain", "providers/ports.py", "from control_plane.jobs import worker"),
    ("lambdas-no-control-plane", "lambdas/rollback/__init__.py", "import control_plane.settings"),
    ("domains-no-composition-root", "control_plane/audit/service.py", "from control_plane import app"),
    ("deps-no-composition-root", "control_plane/deps.py", "import control_plane.bootstrap"),
    ("domains-no-adapters", "control_plane/review/service.py", "import providers.local.object_store"),
    ("control-plane-layers", "control_plane/ids.py", "import control_plane.tenants"),
]


def _copy_tree(dest: Path) -> None:
    for package in ROOT_PACKAGES:
        src = ROOT / package
        if src.is_dir():
            shutil.copytree(
                src, dest / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "cdk.out")
            )
    # The same contracts, read from a copy of pyproject.toml.
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(cwd / "pyproject.toml"), "--no-cache"],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("tree")
    _copy_tree(dest)
    return dest


@pytest.mark.parametrize(
    ("contract_id", "module", "statement"), WRONG_IMPORTS, ids=[f"{w[0]}:{w[1]}" for w in WRONG_IMPORTS]
)
def test_contract_fails_on_a_wrong_import(
    tree_copy: Path, contract_id: str, module: str, statement: str
) -> None:
    name = str(CONTRACTS[contract_id]["name"])
    target = tree_copy / module
    original = target.read_text()
    target.write_text(f"{original}\n{statement}  # a deliberately wrong import\n")
    try:
        result = _lint_imports(tree_copy)
    finally:
        target.write_text(original)
    output = " ".join((result.stdout + result.stderr).split())  # undo rich's line wrapping
    assert result.returncode == 1, output
    assert f"{' '.join(name.split())} BROKEN" in output, output
    importer = module.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    assert f"{importer} -> {statement.split()[1]}" in output, output
    # The copy was analysed, not the installed tree.
    assert "Analyzed" in output


def test_contracts_pass_on_the_copy_without_a_wrong_import(tree_copy: Path) -> None:
    """The baseline of the test above: only the injected import breaks a contract."""
    result = _lint_imports(tree_copy)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 0, output


# --- no import cycle between domains ---------------------------------------------------------


def _domain_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "control_plane" and len(parts) > 1 and parts[1] in DOMAINS:
        return parts[1]
    return None


def _domain_edges(graph: grimp.ImportGraph) -> dict[tuple[str, str], list[str]]:
    """Every import between two domains (top-level, function-level / lazy, TYPE_CHECKING), with
    where it is written."""
    edges: dict[tuple[str, str], list[str]] = {}
    for importer in sorted(graph.modules):
        source = _domain_of(importer)
        if source is None:
            continue
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            target = _domain_of(imported)
            if target is None or target == source:
                continue
            for detail in graph.get_import_details(importer=importer, imported=imported):
                lazy = " (lazy)" if detail.get("is_lazy") else ""
                edges.setdefault((source, target), []).append(
                    f"{importer.replace('.', '/')}.py:{detail['line_number']} → {imported}{lazy}"
                )
    return edges


def strongly_connected_components(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Tarjan's algorithm; components of more than one node, each sorted."""
    successors: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        successors.setdefault(a, []).append(b)
        successors.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in successors[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(successors):
        if node not in index:
            visit(node)
    return sorted(found)


def test_strongly_connected_components_helper() -> None:
    edges = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "d"), ("f", "a")]
    assert strongly_connected_components("abcdef", edges) == [["a", "b", "c"], ["d", "e"]]
    assert strongly_connected_components("ab", [("a", "b")]) == []


@pytest.fixture(scope="module")
def import_graph() -> grimp.ImportGraph:
    return grimp.build_graph(*[p for p in ROOT_PACKAGES if (ROOT / p).is_dir()], cache_dir=None)


def test_no_import_cycle_between_domains(import_graph: grimp.ImportGraph) -> None:
    edges = _domain_edges(import_graph)
    stale = sorted(k for k in KNOWN_CYCLE_EDGES if tuple(k.split(" -> ")) not in edges)
    if stale:
        warnings.warn(f"KNOWN_CYCLE_EDGES lists imports that are gone; delete them: {stale}", stacklevel=1)
    counted = {pair for pair in edges if " -> ".join(pair) not in KNOWN_CYCLE_EDGES}
    components = strongly_connected_components(sorted(DOMAINS), counted)
    assert not components, describe_cycles(components, {p: edges[p] for p in counted})


def describe_cycles(components: list[list[str]], edges: dict[tuple[str, str], list[str]]) -> str:
    """The strongly connected components, every import inside them, and a set of domain imports
    whose removal would make the domains acyclic (grimp's nomination)."""
    domains = grimp.ImportGraph()
    domains.add_module("d")
    for name in DOMAINS:
        domains.add_module(f"d.{name}")
    for a, b in edges:
        domains.add_import(importer=f"d.{a}", imported=f"d.{b}")
    breakers = sorted((a[2:], b[2:]) for a, b in domains.nominate_cycle_breakers("d"))
    lines = []
    for component in components:
        lines.append(f"import cycle between domains {', '.join(component)}:")
        for pair in sorted(p for p in edges if p[0] in component and p[1] in component):
            lines.append(f"  {pair[0]} -> {pair[1]}: " + "; ".join(edges[pair]))
    lines.append("removing these domain imports would break every cycle:")
    lines.extend(f"  {a} -> {b}: " + "; ".join(edges[(a, b)]) for a, b in breakers)
    return "\n".join(lines)
