"""Tenant feature sets on the tenant-shaped simulator: AP of the handbook set against a tenant set,
batch feature time per million rows, and the online engine's cost per check (issue 16).

    python bench/bench_features.py [--customers N] [--days D] [--intensity X] [--no-docs]
                                   [--http-only | --no-http] [--http-seconds S] [--concurrency C]

The defaults (6,000 customers, 90 days) simulate just over a million transactions (1,046,521 in
the 22:14 UTC run of 2026-12-04: 704 s on 2 busy cores, HTTP part included), the size issue 16
asks for; smaller runs for a quick look: ``--customers 1500 --days 45`` (~133 k).

Protocol (the training runs'): train on everything before (test start - 7-day delay), test on
the last 7 days, cards known compromised in the training window removed from the test. Both sets
train the same XGBoost defaults with one thread. The online cost replays events through each
engine with serialised state between events (what the cache adapters hold), in one process. The
HTTP part (``_features_http``) serves both trained models through ``fraudrail serve`` and replays
the test week as fraud checks against the floor app in the same run: checks/s, p99 and the ratio
to the floor for each set. ``--http-only`` trains the two models (cached in var/bench-cache) and
runs only that part, rewriting only its block of the docs section (the AP figures are ``na``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fraud_model import schema as s  # noqa: E402
from fraud_model.evaluation import evaluate  # noqa: E402
from fraud_model.feature_sets import (  # noqa: E402
    InputCounts,
    OnlineFeatureSet,
    batch_compute,
    fit_encodings,
    parse_feature_set,
)
from fraud_model.feature_sets.training import with_feature_set  # noqa: E402
from fraud_model.features import DAY_S, batch_features  # noqa: E402
from fraud_model.online_features import (  # noqa: E402
    CardState,
    TerminalState,
    TransactionEvent,
    observe_card,
    observe_terminal,
    transaction_features,
)
from fraud_model.scoring import Scorer  # noqa: E402
from fraud_model.simulator_tenant import TENANT_SCENARIO, simulate_tenant, tenant_document  # noqa: E402
from fraud_model.training import TrainedModel, train_model  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from _features_http import (  # noqa: E402
    HttpConfig,
    http_lines,
    ratio_text,
    replace_http_block,
    run_http,
    uptime,
)

DOCS = ROOT / "docs" / "benchmarks.md"
CACHE = ROOT / "var" / "bench-cache"
SECTION = "## bench-features"
COLUMNS = ["txn_id", "card_token", "terminal_id", "amount", "device_id", "ip_country", "card_country",
           "email_domain", "account_age_days"]  # fmt: skip


def test_week(frame: pd.DataFrame, test_days: int = 7) -> np.ndarray:
    ts = s.epoch_seconds(frame[s.TS])
    return np.asarray(ts >= (int(ts.max() // DAY_S) - test_days + 1) * DAY_S)


def split(frame: pd.DataFrame, test_days: int = 7, delay_days: int = 7) -> tuple[np.ndarray, np.ndarray]:
    ts = s.epoch_seconds(frame[s.TS])
    test_start = (int(ts.max() // DAY_S) - test_days + 1) * DAY_S
    train, test = ts < test_start - delay_days * DAY_S, ts >= test_start
    known = set(frame.loc[train & (frame[s.IS_FRAUD].to_numpy() > 0), s.CARD_TOKEN])
    return train, test & ~frame[s.CARD_TOKEN].isin(known).to_numpy()


def fit(features: pd.DataFrame, y: np.ndarray, train: np.ndarray) -> TrainedModel:
    return train_model(features[train], y[train], feature_names=tuple(features.columns), seed=0)


def tenant_lineage(fs: Any, encodings: dict[str, Any]) -> dict[str, Any]:
    """What a training run records for the set (the HTTP part puts the stored version's id and label)."""
    return {"name": fs.name, "label": fs.name, "document": tenant_document(), "encodings": encodings}


def online_us(frame: pd.DataFrame, engine: OnlineFeatureSet | None, n: int) -> float:
    """Microseconds per event through serialised state: the built-in path when engine is None."""
    store: dict[str, bytes] = {}
    ts = s.epoch_seconds(frame[s.TS])[:n]
    records = frame[COLUMNS].iloc[:n].to_dict("records")
    started = time.perf_counter()
    for record, t in zip(records, ts, strict=True):
        if engine is None:
            event = TransactionEvent(record["txn_id"], record["card_token"], record["terminal_id"], int(t),
                                     float(record["amount"]))  # fmt: skip
            ck, tk = "c" + event.card_token, "t" + event.terminal_id
            card = CardState.from_bytes(store[ck]) if ck in store else CardState()
            term = TerminalState.from_bytes(store[tk]) if tk in store else TerminalState()
            transaction_features(card, term, event)
            observe_card(card, event)
            observe_terminal(term, event)
            store[ck], store[tk] = card.to_bytes(), term.to_bytes()
            continue
        event_map: dict[str, Any] = {**record, "ts": int(t)}
        keys = engine.state_keys(event_map)
        counts = InputCounts()
        states = engine.load([store.get(k) if k else None for k in keys], keys, counts)
        vector = engine.compute(event_map, states, counts)
        engine.observe(event_map, vector, states)
        for key, state in zip(keys, states, strict=True):
            if key is not None and state is not None:
                store[key] = state.to_bytes()
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=6_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--intensity", type=float, default=1.0)
    parser.add_argument("--online-events", type=int, default=20_000)
    parser.add_argument("--no-docs", action="store_true")
    parts = parser.add_mutually_exclusive_group()
    parts.add_argument("--http-only", action="store_true", help="only the fraud-check throughput part")
    parts.add_argument("--no-http", action="store_true", help="skip the fraud-check throughput part")
    parser.add_argument("--http-seconds", type=float, default=20.0, help="measured seconds per HTTP row")
    parser.add_argument("--http-warmup", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    http = None if args.no_http else HttpConfig(args.http_seconds, args.http_warmup, args.concurrency)
    up_at_start = uptime()
    t0 = time.perf_counter()
    frame = simulate_tenant(args.customers, 2 * args.customers, args.days, seed=1, intensity=args.intensity)
    sim_s = time.perf_counter() - t0
    y = frame[s.IS_FRAUD].to_numpy()
    train, test = split(frame)
    fs = parse_feature_set(tenant_document())
    if args.http_only:
        assert http is not None
        http_only(args, frame, y, train, fs, http)
        return

    t = time.perf_counter()
    default_x = batch_features(frame)
    default_s = time.perf_counter() - t
    t = time.perf_counter()
    encodings = fit_encodings(fs, frame[train], y[train])
    tenant_x = batch_compute(fs, frame, encodings=encodings)
    tenant_s = time.perf_counter() - t
    per_m = 1e6 / len(frame)

    ap = {}
    scenario = frame[TENANT_SCENARIO].to_numpy()[test]
    by_scenario: dict[str, dict[int, float]] = {}
    models: dict[str, TrainedModel] = {}
    for name, x in (("default", default_x), ("tenant", tenant_x)):
        models[name] = fit(x, y, train)
        scores = Scorer(models[name]).score_batch(x[test].to_numpy(dtype=np.float32))
        ap[name] = float(evaluate(frame[test], scores)["average_precision"])
        legit_cut = np.quantile(scores[scenario == 0], 0.99) if (scenario == 0).any() else 1.0
        by_scenario[name] = {
            k: float((scores[scenario == k] > legit_cut).mean()) for k in range(1, 7) if (scenario == k).any()
        }
    kinds = sorted(by_scenario["tenant"])
    n_online = min(args.online_events, len(frame))
    engine = OnlineFeatureSet(fs, encodings)
    us_default, us_tenant = online_us(frame, None, n_online), online_us(frame, engine, n_online)
    models["tenant"] = with_feature_set(models["tenant"], tenant_lineage(fs, encodings))
    for name, path in model_paths(args).items():  # what a later --http-only run with these sizes reuses
        CACHE.mkdir(parents=True, exist_ok=True)
        path.write_bytes(models[name].to_bytes())
    res = run_http(models, tenant_document(), frame[test_week(frame)], http) if http else None
    result = (
        f"RESULT ap_default={ap['default']:.4f} ap_tenant={ap['tenant']:.4f} "
        f"batch_s_per_m={tenant_s * per_m:.1f} check_ratio_default={ratio_text(res, 'default')} "
        f"check_ratio_tenant={ratio_text(res, 'tenant')}"
    )

    command = " ".join(["python bench/bench_features.py", *sys.argv[1:]])
    lines = [
        SECTION,
        "",
        f"`{command}` on this 2-core machine (busy with other sessions): "
        f"{len(frame):,} simulated transactions ({sim_s:.0f} s to simulate), fraud rate "
        f"{y.mean():.2%}; train {int(train.sum()):,} rows, test {int(test.sum()):,} rows (last 7 days "
        "after a 7-day delay, known-compromised cards removed); XGBoost defaults, one thread. "
        f"`uptime` at the start: `{up_at_start}`; the whole run took {time.perf_counter() - t0:.0f} s "
        + ("(HTTP part included)." if res else "(no HTTP part)."),
        "",
        "| | handbook set (22 features) | tenant set device-email (30 features) |",
        "|---|---|---|",
        f"| average precision, test week | {ap['default']:.3f} | {ap['tenant']:.3f} |",
        f"| batch features, s per million rows | {default_s * per_m:.1f} | {tenant_s * per_m:.1f} |",
        f"| online features, µs per event (serialised state) | {us_default:.0f} | {us_tenant:.0f} |",
        "",
        "Share of each scenario's test frauds scored above the 99th percentile of legitimate scores "
        "(1-3 the handbook's, 4 device farm, 5 taken-over card, 6 new e-mail domains):",
        "",
        "| scenario | " + " | ".join(str(k) for k in sorted(by_scenario["tenant"])) + " |",
        "|---|" + "---|" * len(by_scenario["tenant"]),
        *(f"| {name} | " + " | ".join(f"{by_scenario[name].get(k, np.nan):.2f}" for k in kinds) + " |"
          for name in ("default", "tenant")),
        "",
        *(http_lines(res, SET_NAMES) if res else ["The HTTP part was skipped (`--no-http`)."]),
        "",
        f"Ended with `{result}`.",
        "",
    ]  # fmt: skip
    text = "\n".join(lines)
    print(text)
    if not args.no_docs:
        write_docs(lambda _old: text)
    print(result)


SET_NAMES = {"default": "handbook (22 features)", "tenant": "device-email (30 features)"}


def write_docs(section: Callable[[str], str]) -> None:
    """Replace the bench-features section with ``section(old section)`` (appended when absent)."""
    doc = DOCS.read_text()
    if SECTION in doc:
        start = doc.index(SECTION)
        nxt = doc.find("\n## ", start + len(SECTION))
        end = nxt + 1 if nxt >= 0 else len(doc)
        doc = (
            doc[:start] + section(doc[start:end]).rstrip("\n") + "\n" + ("\n" + doc[end:] if nxt >= 0 else "")
        )
    else:
        doc = doc.rstrip() + "\n\n" + section(SECTION + "\n")
    DOCS.write_text(doc)


def http_only(args: argparse.Namespace, frame: pd.DataFrame, y: np.ndarray, train: np.ndarray, fs: Any,
              http: HttpConfig) -> None:  # fmt: skip
    """Train both models (or read them from var/bench-cache), run the HTTP part, rewrite its block."""
    models = cached_models(args, frame, y, train, fs)
    res = run_http(models, tenant_document(), frame[test_week(frame)], http)
    ratios = (
        f"check_ratio_default={ratio_text(res, 'default')} check_ratio_tenant={ratio_text(res, 'tenant')}"
    )
    result = f"RESULT ap_default=na ap_tenant=na batch_s_per_m=na {ratios}"
    run = (
        f"`python bench/bench_features.py --http-only --customers {args.customers} --days {args.days} "
        f"--intensity {args.intensity}`, models trained on its {int(train.sum()):,} training rows"
    )
    block = "\n".join(http_lines(res, SET_NAMES, run=run, result=result))
    print(block)
    if not args.no_docs:
        write_docs(lambda old: replace_http_block(old, block))
    print(result)


def model_paths(args: argparse.Namespace) -> dict[str, Path]:
    """Where both sets' models for these sizes are kept, named by everything they depend on."""
    import xgboost

    from fraud_model.features import FEATURE_NAMES
    from fraud_model.training import DEFAULT_PARAMS

    tag = json.dumps([args.customers, args.days, args.intensity, DEFAULT_PARAMS, FEATURE_NAMES,
                      tenant_document(), xgboost.__version__], sort_keys=True)  # fmt: skip
    digest = hashlib.sha256(tag.encode()).hexdigest()[:16]
    return {n: CACHE / f"features-{n}-{digest}.frm" for n in SET_NAMES}


def cached_models(
    args: argparse.Namespace, frame: pd.DataFrame, y: np.ndarray, train: np.ndarray, fs: Any
) -> dict[str, TrainedModel]:
    """Both sets' models on the training rows, from var/bench-cache when a run already trained them."""
    paths = model_paths(args)
    if all(p.is_file() for p in paths.values()):
        print(f"models: cached {', '.join(str(p.relative_to(ROOT)) for p in paths.values())}")
        return {n: TrainedModel.from_bytes(p.read_bytes()) for n, p in paths.items()}
    t = time.perf_counter()
    encodings = fit_encodings(fs, frame[train], y[train])
    models = {
        "default": fit(batch_features(frame), y, train),
        "tenant": with_feature_set(fit(batch_compute(fs, frame, encodings=encodings), y, train),
                                   tenant_lineage(fs, encodings)),
    }  # fmt: skip
    CACHE.mkdir(parents=True, exist_ok=True)
    for n, p in paths.items():
        p.write_bytes(models[n].to_bytes())
    print(f"models: trained both sets on {int(train.sum()):,} rows in {time.perf_counter() - t:.0f} s")
    return models


if __name__ == "__main__":
    main()
