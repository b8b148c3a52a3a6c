"""The synthesized rollback Lambda starts on the Python runtime: its asset carries all it imports.

The Lambda runtime has the standard library plus boto3 and its dependencies. The handler is
imported (and its AWS deps built from env) by ``python -I -S`` with nothing on ``sys.path`` but
the function's asset folder from ``cdk.out`` and a folder holding only those runtime packages.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import botocore
import dateutil
import jmespath
import s3transfer
import urllib3

from tests.cdk.support import Synthesized
from tests.cdk.test_platform_stack import rollback_asset_dir

# What the AWS Lambda Python runtime ships besides the standard library.
RUNTIME_MODULES = (boto3, botocore, jmespath, dateutil, s3transfer, urllib3)

PROBE = """
import json, sys
sys.path[:0] = [ASSET, RUNTIME]
from lambdas.rollback import handler
from lambdas.rollback.env import deps_from_env
deps = deps_from_env({"FRAUDRAIL_AWS_REGION": "eu-west-1", "FRAUDRAIL_AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
tops = {m.split(".")[0] for m in sys.modules}
ours = sorted(tops & {"lambdas", "traffic", "providers"})
print(json.dumps({
    "entry": callable(handler.lambda_handler),
    "host": type(deps.model_host).__name__,
    "log": type(deps.rollback_log).__name__,
    "ours": ours,
    "files": sorted({getattr(m, "__file__", None) or "" for m in sys.modules.values()}),
}))
"""


def _runtime_dir(root: Path) -> Path:
    runtime = root / "runtime"
    runtime.mkdir()
    for module in RUNTIME_MODULES:
        source = Path(module.__file__ or "").parent
        (runtime / source.name).symlink_to(source)
    six = Path(sys.modules["six"].__file__ or "") if "six" in sys.modules else None
    if six is not None:
        (runtime / six.name).symlink_to(six)
    return runtime


def test_the_handler_imports_with_only_its_asset_and_the_runtime(
    synthesized: Synthesized, tmp_path: Path
) -> None:
    asset = rollback_asset_dir(synthesized)
    runtime = _runtime_dir(tmp_path)
    code = PROBE.replace("ASSET", repr(str(asset))).replace("RUNTIME", repr(str(runtime)))
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    assert probe["entry"] is True
    assert (probe["host"], probe["log"]) == ("SageMakerModelHost", "DynamoRollbackLog")
    assert probe["ours"] == ["lambdas", "providers", "traffic"]
    # Every module came from the asset, the runtime folder or the standard library: none from the venv.
    site = str(Path(boto3.__file__ or "").parents[1])
    leaked = [f for f in probe["files"] if f.startswith(site) and "/runtime/" not in f]
    assert leaked == []
    assert any(f.startswith(str(asset)) for f in probe["files"])
