"""CDK tests. Importing this package points jsii at the project's cache before aws_cdk loads."""

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_RUNTIME_PACKAGE_CACHE_ROOT", str(_REPO_ROOT / "var" / "jsii-cache"))
