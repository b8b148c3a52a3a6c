"""``fraudrail-inference serve``: what SageMaker runs (``docker run <image> serve``).

Settings (flags win over the environment):

| flag | environment | default |
| --- | --- | --- |
| ``--port`` | ``SAGEMAKER_BIND_TO_PORT`` | 8080 |
| ``--host`` | ``FRAUDRAIL_INFERENCE_HOST`` | 0.0.0.0 (inside the container) |
| ``--model-dir`` | ``SM_MODEL_DIR`` | /opt/ml/model |
| ``--models-root`` | ``FRAUDRAIL_INFERENCE_MODELS_ROOT`` | /opt/ml/models |
| ``--memory-budget`` | ``FRAUDRAIL_INFERENCE_MEMORY_BYTES`` | half the cgroup limit, else 1 GiB |
| ``--allow-unverified`` | ``FRAUDRAIL_INFERENCE_REQUIRE_SHA256=false`` | a digest is required |

The expected digest of the model in ``--model-dir`` is ``FRAUDRAIL_MODEL_SHA256`` (set by the
SageMaker model host on each per-version model). A model there that fails its check stops the
process before it listens: SageMaker then reports the endpoint as failed instead of serving it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from inference.artifacts import LoadedModel, ModelLoadError, ModelNotFoundError, load_model
from inference.registry import ModelRegistry, default_memory_budget

log = logging.getLogger("inference")

DEFAULT_PORT = 8080
DEFAULT_MODEL_DIR = "/opt/ml/model"
DEFAULT_MODELS_ROOT = "/opt/ml/models"
EXIT_BAD_MODEL = 2


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fraudrail-inference", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve SageMaker's inference contract")
    commands.add_parser("train", help="run a SageMaker Training job (inference/train.py)")
    env = os.environ
    serve.add_argument("--port", type=int, default=int(env.get("SAGEMAKER_BIND_TO_PORT", DEFAULT_PORT)))
    # 0.0.0.0 inside the container: SageMaker reaches it on the container's own interface.
    serve.add_argument("--host", default=env.get("FRAUDRAIL_INFERENCE_HOST", "0.0.0.0"))  # noqa: S104
    serve.add_argument("--model-dir", type=Path, default=Path(env.get("SM_MODEL_DIR", DEFAULT_MODEL_DIR)))
    serve.add_argument(
        "--models-root",
        type=Path,
        action="append",
        help="where POST /models may load from (repeatable)",
    )
    serve.add_argument("--memory-budget", type=int, default=None, help="bytes of loaded models")
    serve.add_argument("--allow-unverified", action="store_true", help="load models without a digest")
    serve.add_argument("--log-level", default=env.get("FRAUDRAIL_INFERENCE_LOG_LEVEL", "info"))
    args = parser.parse_args(argv)
    if args.models_root is None:
        args.models_root = [Path(env.get("FRAUDRAIL_INFERENCE_MODELS_ROOT", DEFAULT_MODELS_ROOT))]
    if args.memory_budget is None:
        raw = env.get("FRAUDRAIL_INFERENCE_MEMORY_BYTES")
        args.memory_budget = int(raw) if raw else default_memory_budget()
    args.require_digest = not args.allow_unverified and _env_flag("FRAUDRAIL_INFERENCE_REQUIRE_SHA256", True)
    return args


def load_default_model(model_dir: Path, *, require_digest: bool) -> LoadedModel | None:
    """The model SageMaker placed in ``model_dir``; None when there is none (a multi-model endpoint)."""
    if not model_dir.is_dir() or not any(model_dir.iterdir()):
        return None
    try:
        return load_model(
            os.environ.get("FRAUDRAIL_MODEL_NAME", "model"),
            model_dir,
            expected_sha256=os.environ.get("FRAUDRAIL_MODEL_SHA256") or None,
            require_digest=require_digest,
        )
    except ModelNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"]:  # a SageMaker Training job: `docker run <image> train`
        from inference.train import main as train

        return train(argv[1:])
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        default = load_default_model(args.model_dir, require_digest=args.require_digest)
    except ModelLoadError as exc:
        print(f"fraudrail-inference: refusing to serve the model in {args.model_dir}: {exc}", file=sys.stderr)
        return EXIT_BAD_MODEL
    if args.memory_budget <= 0:
        print("fraudrail-inference: --memory-budget must be positive", file=sys.stderr)
        return EXIT_BAD_MODEL
    # Imported here: `--help` and a refused model should not pay for the server's imports.
    import uvicorn

    from inference.app import create_app

    registry = ModelRegistry(args.memory_budget, require_digest=args.require_digest)
    app = create_app(registry, default_model=default, models_roots=args.models_root)
    if default is not None:
        log.info("serving %s (sha256 %s) from %s", default.name, default.sha256, args.model_dir)
    # One process: the multi-model registry lives in memory, and SageMaker loads each model once.
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower(), access_log=False)
    return 0
