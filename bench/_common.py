"""Shared helpers of the HTTP benchmarks: paths and sizes, the trained model, percentiles and the
docs/benchmarks.md sections.

The rest is beside this module: ``_servers`` (servers as subprocesses, set-up through the API and
the database), ``_load`` (the closed-loop load generator and its request bodies) and ``_probe``
(an open-loop probe).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PY = str(REPO / ".venv" / "bin" / "python")
DOC = REPO / "docs" / "benchmarks.md"
CACHE_DIR = REPO / "var" / "bench-cache"

# The trained model: the simulator's data and fraud_model's default parameters (~200 trees, depth 4).
SIM_ARGS = (2000, 4000, 60)
N_CARDS = 5_000
N_TERMINALS = 1_000
TXN_PER_CARD_PER_DAY = 2.5  # the simulated clock advances so each card sees about this many a day


def log(msg: str) -> None:
    print(msg, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> dict[str, str]:
    load = os.getloadavg()
    return {
        "cores": str(os.cpu_count()),
        "load": f"{load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# --- the model ---------------------------------------------------------------------------------


def trained_artifact() -> bytes:
    """A model trained with fraud_model's defaults on simulated data; cached in var/bench-cache."""
    import xgboost

    from fraud_model.features import FEATURE_NAMES, FEATURE_SET_VERSION
    from fraud_model.training import DEFAULT_PARAMS

    # Keyed by everything the artifact depends on (the feature list changes without a version bump).
    tag = json.dumps(
        [SIM_ARGS, DEFAULT_PARAMS, FEATURE_SET_VERSION, FEATURE_NAMES, xgboost.__version__], sort_keys=True
    )
    path = CACHE_DIR / f"model-{hashlib.sha256(tag.encode()).hexdigest()[:16]}.frm"
    if path.is_file():
        from fraud_model.training import TrainedModel

        log(f"model: cached artifact {path.relative_to(REPO)}")
        # Written again in the current artifact format (a cache from before format 2 has no tree arrays).
        return TrainedModel.from_bytes(path.read_bytes()).to_bytes()
    from fraud_model.features import batch_features
    from fraud_model.simulator import simulate
    from fraud_model.training import train_model

    t = time.perf_counter()
    frame = simulate(*SIM_ARGS)
    # refit_full=False: one fit instead of two (same parameters and tree count), half the time.
    model = train_model(batch_features(frame), frame["is_fraud"], refit_full=False)
    data = model.to_bytes()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    log(f"model: trained on {len(frame):,} simulated transactions in {time.perf_counter() - t:.0f} s")
    return data


def describe_model(artifact: bytes) -> str:
    """ "800 trees, depth 3, 22 features" (what the default parameters produced)."""
    from fraud_model.scoring import Scorer
    from fraud_model.training import DEFAULT_PARAMS

    scorer = Scorer.from_bytes(artifact)
    trees = scorer.booster.num_boosted_rounds()
    return f"{trees} trees, depth {DEFAULT_PARAMS.get('max_depth')}, {len(scorer.feature_names)} features"


# --- figures -----------------------------------------------------------------------------------


def pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def summary(lat_ms: np.ndarray, n: int, duration_s: float) -> dict[str, float]:
    return {
        "rps": n / duration_s,
        "p50": pct(lat_ms, 50),
        "p95": pct(lat_ms, 95),
        "p99": pct(lat_ms, 99),
        "n": n,
    }


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def write_section(name: str, body: str) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` (append if absent)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
