"""The Fraudrail CDK app: the shared platform stack and one tenant stack per tier.

Importing this package points jsii at the project's cache and silences the Node 20 banner, so
every module below can import ``aws_cdk`` without further set-up.
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_RUNTIME_PACKAGE_CACHE_ROOT", str(_REPO_ROOT / "var" / "jsii-cache"))
