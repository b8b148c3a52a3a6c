"""Finding a model artifact where SageMaker put it, and loading it only if its SHA-256 checks out.

SageMaker hands the container a location: ``/opt/ml/model`` for a single-model endpoint, or the
``url`` of ``POST /models`` (a directory such as ``/opt/ml/models/<name>/model``) for a
multi-model one. It holds what the model's S3 object contained: either the Fraudrail artifact
itself or a ``model.tar.gz`` wrapping it. The artifact is recognised by its magic bytes, not its
name, and must be the only one there.

The expected SHA-256 comes from the caller (``FRAUDRAIL_MODEL_SHA256``, which the SageMaker model
host sets on every per-version model, or a ``sha256`` field of ``POST /models``) and/or from a
``<artifact>.sha256`` file beside the artifact (``sha256sum`` format, for the multi-model
endpoint, where SageMaker passes no per-model environment). Every digest given must match; with
none at all the model is refused unless ``require_digest`` is off. Tar members are read into
memory, never extracted, so a crafted archive cannot write outside the model directory.
"""

from __future__ import annotations

import dataclasses
import re
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fraud_model.scoring import Scorer
from fraud_model.training import ARTIFACT_MAGIC, ArtifactIntegrityError, TrainedModel, sha256

DIGEST_SUFFIX = ".sha256"
TARBALL_SUFFIXES = (".tar.gz", ".tgz", ".tar")
# Far above any Fraudrail model (a few MB); stops a wrong url from reading a huge file into memory.
MAX_ARTIFACT_BYTES = 512 * 1024 * 1024
_MAX_FILES = 64
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


class ModelLoadError(Exception):
    """A model cannot be loaded; ``status`` is the HTTP status the server answers with."""

    status = 422


class ModelNotFoundError(ModelLoadError):
    status = 404


class ModelIntegrityError(ModelLoadError):
    status = 422


@dataclass(frozen=True)
class LoadedModel:
    """A verified artifact and its scorer; ``footprint`` is its estimated resident size in bytes."""

    name: str
    url: str
    sha256: str
    scorer: Scorer
    footprint: int
    loaded_at: float = field(default_factory=time.time)

    def describe(self) -> dict[str, object]:
        """The multi-model contract's fields, plus what an operator needs to identify the artifact."""
        return {
            "modelName": self.name,
            "modelUrl": self.url,
            "sha256": self.sha256,
            "features": len(self.scorer.feature_names),
            "footprintBytes": self.footprint,
        }


def parse_digest(text: str, source: str) -> str:
    """A hex SHA-256 from ``sha256sum`` output or a bare digest; ModelIntegrityError otherwise."""
    token = text.strip().split()[0] if text.strip() else ""
    if not _HEX64.match(token):
        raise ModelIntegrityError(f"{source} is not a hex SHA-256 digest")
    return token.lower()


def _read_capped(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_ARTIFACT_BYTES:
            raise ModelLoadError(f"{path} is {size} bytes, above the {MAX_ARTIFACT_BYTES} byte limit")
        return path.read_bytes()
    except OSError as exc:  # unreadable: a client error about this url, not a server fault
        raise ModelLoadError(f"cannot read {path}: {exc.strerror}") from exc


def _tar_members(path: Path) -> dict[str, bytes]:
    """Regular files of a tarball, by member name, read into memory (links and devices ignored)."""
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r:*") as archive:
            for member in archive.getmembers():
                if not member.isreg():
                    continue
                if member.size > MAX_ARTIFACT_BYTES or len(out) >= _MAX_FILES:
                    raise ModelLoadError(f"{path} holds too many or too large files")
                handle = archive.extractfile(member)
                if handle is not None:
                    out[f"{path.name}!{member.name}"] = handle.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ModelLoadError(f"{path} is not a readable tar archive: {exc}") from exc
    return out


def _files(location: Path) -> dict[str, bytes]:
    """Every candidate file at ``location`` (a file, or a directory searched recursively)."""
    if location.is_file():
        paths = [location]
    elif location.is_dir():
        paths = sorted(p for p in location.rglob("*") if p.is_file())
        if len(paths) > _MAX_FILES:
            raise ModelLoadError(f"{location} holds {len(paths)} files; expected a model artifact")
    else:
        raise ModelNotFoundError(f"no model at {location}")
    out: dict[str, bytes] = {}
    for path in paths:
        if path.name.endswith(TARBALL_SUFFIXES):
            out.update(_tar_members(path))
        else:
            out[str(path.relative_to(location)) if path != location else path.name] = _read_capped(path)
    return out


def find_artifact(location: Path) -> tuple[bytes, list[str]]:
    """The one artifact at ``location`` and the digests found beside it (``<name>.sha256``)."""
    files = _files(location)
    artifacts = [name for name, data in files.items() if data.startswith(ARTIFACT_MAGIC)]
    if not artifacts:
        raise ModelNotFoundError(f"no Fraudrail model artifact at {location}")
    if len(artifacts) > 1:
        raise ModelLoadError(f"{len(artifacts)} model artifacts at {location}: {sorted(artifacts)}")
    name = artifacts[0]
    sidecar = files.get(name + DIGEST_SUFFIX)
    digests = []
    if sidecar is not None:
        digests.append(parse_digest(sidecar.decode("utf-8", "replace"), f"{name}{DIGEST_SUFFIX}"))
    return files[name], digests


def footprint(model: TrainedModel, scorer: Scorer) -> int:
    """Estimated resident bytes: the booster's bytes twice (kept raw and loaded) and the arrays of
    the tree walk (XGBoost's or LightGBM's, both dataclasses of numpy arrays)."""
    trees = scorer.trees
    arrays = [getattr(trees, f.name) for f in dataclasses.fields(trees)]
    return 2 * len(model.booster_ubj) + sum(int(a.nbytes) for a in arrays if isinstance(a, np.ndarray))


def load_model(
    name: str, location: Path, *, expected_sha256: str | None = None, require_digest: bool = True
) -> LoadedModel:
    """Find, verify and parse the artifact at ``location``; ModelLoadError (with a status) if not."""
    artifact, digests = find_artifact(location)
    if expected_sha256 is not None:
        digests.append(parse_digest(expected_sha256, "the expected sha256"))
    if not digests and require_digest:
        raise ModelIntegrityError(
            f"no expected sha256 for {name}: set FRAUDRAIL_MODEL_SHA256, send 'sha256', "
            f"or ship <artifact>{DIGEST_SUFFIX} beside the artifact"
        )
    actual = sha256(artifact)
    for expected in digests:
        if actual != expected:
            raise ModelIntegrityError(
                f"artifact of {name} has sha256 {actual}, expected {expected}: refusing to load"
            )
    try:
        model = TrainedModel.from_bytes(artifact)
        scorer = Scorer(model)
    except ArtifactIntegrityError as exc:
        raise ModelIntegrityError(f"artifact of {name} is refused: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"artifact of {name} cannot be loaded: {exc}") from exc
    return LoadedModel(
        name=name, url=str(location), sha256=actual, scorer=scorer, footprint=footprint(model, scorer)
    )
