"""Where a version's ``model.tar.gz`` lives: SageMaker's ``ModelDataUrl`` must name a tarball.

``tenants/<id>/models/mv_1.frm`` (the registry's artifact) -> ``tenants/<id>/models/mv_1/model.tar.gz``
holding ``model.frm`` and ``model.frm.sha256`` (the layout the inference container loads, and the
one a training job's own ``model.tar.gz`` has: ``fraud_model.pipeline``). Made from the artifact on
first use, after checking it against the registry's digest. Standard library only: the rollback
Lambda's asset carries this module.
"""

from __future__ import annotations

import hashlib
import io
import tarfile

from providers.ports import ArtifactIntegrityError, HostedModel, ObjectStore

ARTIFACT_NAME = "model.frm"


def model_archive_key(artifact_key: str) -> str:
    stem = artifact_key[: -len(".frm")] if artifact_key.endswith(".frm") else artifact_key
    return f"{stem}/model.tar.gz"


def pack(artifact: bytes) -> bytes:
    members = {
        ARTIFACT_NAME: artifact,
        f"{ARTIFACT_NAME}.sha256": f"{hashlib.sha256(artifact).hexdigest()}  {ARTIFACT_NAME}\n".encode(),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def ensure_model_archive(store: ObjectStore, model: HostedModel) -> str:
    """The key of the version's ``model.tar.gz``, uploaded now if it is not there yet."""
    key = model_archive_key(model.artifact_key)
    if store.exists(key):
        return key
    try:
        artifact = store.get(model.artifact_key)
    except KeyError as exc:
        raise ArtifactIntegrityError(
            f"artifact {model.artifact_key} of {model.version_id} is missing"
        ) from exc
    digest = hashlib.sha256(artifact).hexdigest()
    if digest != model.sha256.lower():
        raise ArtifactIntegrityError(
            f"artifact {model.artifact_key} of {model.version_id} has sha256 {digest}, "
            f"the registry says {model.sha256}"
        )
    store.put(key, pack(artifact))
    return key
