"""What the Dockerfile promises, read from the file (images cannot be built here; hadolint lints it)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def _stages() -> list[Stage]:
    text = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    logical = re.sub(r"\\\n", " ", text)  # join continuation lines
    stages: list[Stage] = []
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            stages.append(Stage(name=parts[-1] if "AS" in [p.upper() for p in parts] else "", base=parts[0]))
        elif stages:
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    return {s.name: s for s in _stages()}


def test_the_default_target_is_the_control_plane_and_the_inference_image_is_a_target() -> None:
    ordered = _stages()
    assert ordered[-1].name == "control-plane"
    assert "inference" in [s.name for s in ordered]


@pytest.mark.parametrize("target", ["control-plane", "inference"])
def test_final_images_are_slim_non_root_checked_and_compiler_free(
    stages: dict[str, Stage], target: str
) -> None:
    stage = stages[target]
    assert stage.base == "python-base"
    assert stages["python-base"].base == "${PYTHON_IMAGE}"
    assert stage.all("USER") == ["10001:10001"]
    [healthcheck] = stage.all("HEALTHCHECK")
    assert "CMD" in healthcheck
    for run in stage.all("RUN"):
        assert not re.search(r"build-essential|\bgcc\b|\bmake\b", run), run
    # Only finished artefacts come in from the build stages: the venv and the code.
    for copy in stage.all("COPY"):
        if copy.startswith("--from="):
            assert copy.split()[0] in {"--from=deps", "--from=build-control-plane", "--from=node"}, copy


def test_python_base_is_3_11_slim() -> None:
    text = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim-\w+$", text, re.MULTILINE)


def test_every_pip_install_is_pinned_by_the_constraints(stages: dict[str, Stage]) -> None:
    installs = [run for s in stages.values() for run in s.all("RUN") if "pip install" in run]
    assert installs
    for run in installs:
        for command in run.split("&&"):
            if "pip install" in command:
                assert "-c constraints.txt" in command, command


def test_one_image_serves_api_and_worker_and_the_command_selects(stages: dict[str, Stage]) -> None:
    stage = stages["control-plane"]
    assert json.loads(stage.all("ENTRYPOINT")[0]) == ["fraudrail"]
    assert json.loads(stage.all("CMD")[-1]) == ["serve", "--no-worker"]
    assert "/healthz" in stage.all("HEALTHCHECK")[0]


def test_the_inference_image_carries_the_scorer_only_and_answers_sagemaker(stages: dict[str, Stage]) -> None:
    stage = stages["inference"]
    copied = " ".join(stage.all("COPY"))
    assert "fraud_model" in copied and "inference" in copied
    assert "control_plane" not in copied and "providers" not in copied
    assert json.loads(stage.all("ENTRYPOINT")[0]) == ["python", "-m", "inference"]
    assert json.loads(stage.all("CMD")[-1]) == ["serve"]  # `docker run <image> serve`
    assert stage.all("EXPOSE") == ["8080"]
    assert "/ping" in stage.all("HEALTHCHECK")[0]
    assert 'com.amazonaws.sagemaker.capabilities.multi-models="true"' in " ".join(stage.all("LABEL"))


def test_dockerignore_sends_only_what_the_dockerfile_copies() -> None:
    lines = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "**"
    included = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert not included & {".venv", "var", ".git", "cdk.out", "tests"}
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    copied = set(re.findall(r"^COPY (?:--chown=\S+ )?(\S+) ", dockerfile, re.MULTILINE)) - {"--from=node"}
    copied |= {"pyproject.toml", "constraints.txt", "README.md", "alembic.ini"}
    assert {c.rstrip("/") for c in copied if not c.startswith("--")} <= included
