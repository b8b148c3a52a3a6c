"""The rollback Lambda's asset: ``lambdas/`` plus everything it imports, staged at synth time.

The Lambda Python runtime ships boto3 / botocore and nothing else of ours, so the asset carries
the packages the handler imports: ``lambdas``, ``traffic``, and the parts of ``providers`` that
need only boto3 (the ports, the SageMaker, DynamoDB and S3 adapters and their builders). Everything else in
``providers`` (pydantic settings, prometheus metrics, Redis, webhooks) stays out. The handler's
env module builds its ports without them; ``tests/cdk`` imports the staged handler with
``python -I -S`` and only the asset and botocore on ``sys.path`` to prove it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Final

from cdk.config import REPO_ROOT

# Whole packages, and single modules of providers, relative to the repository root.
ROLLBACK_PACKAGES: Final = ("lambdas", "traffic")
ROLLBACK_MODULES: Final = (
    "providers/__init__.py",
    "providers/ports.py",
    "providers/cache_port.py",
    "providers/lru.py",
    "providers/aws/__init__.py",
    "providers/aws/_util.py",
    "providers/aws/dynamo.py",
    "providers/aws/factory.py",
    "providers/aws/model_host.py",
    "providers/aws/model_host_endpoint.py",
    "providers/aws/model_host_records.py",
    "providers/aws/model_archive.py",
    "providers/aws/sagemaker_models.py",
    "providers/aws/object_store.py",
)
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "tests", ".pytest_cache")


def stage_rollback_asset(root: Path = REPO_ROOT, into: Path | None = None) -> Path:
    """Copy the rollback Lambda's code into ``into`` (a new temporary folder by default)."""
    target = into or Path(tempfile.mkdtemp(prefix="fraudrail-rollback-asset-"))
    for package in ROLLBACK_PACKAGES:
        shutil.copytree(root / package, target / package, ignore=_IGNORED, dirs_exist_ok=True)
    for module in ROLLBACK_MODULES:
        (target / module).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / module, target / module)
    return target
