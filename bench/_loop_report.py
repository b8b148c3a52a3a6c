"""bench-loop's docs/benchmarks.md section (figures in, markdown out)."""

from __future__ import annotations

import argparse
from typing import Any

from _common import met

GOAL_ALERT_H, GOAL_AP_RATIO, GOAL_THROUGHPUT = 24.0, 0.95, 0.95


def _f(x: Any, spec: str = ".3f") -> str:
    return "n/a" if x is None or x != x else format(x, spec)


def doc(fig: dict[str, Any], args: argparse.Namespace, env: dict[str, str], n_rows: int) -> str:
    tl, ap, bt, tp = fig["timeline"], fig["ap"], fig["backtest"], fig["throughput"]
    champ = fig["champion"]["metrics"]
    winner = fig["winner"] or {}
    comparison = winner.get("comparison") or {}
    lines = [
        "## bench-loop: the closed model loop on simulated time",
        "",
        f"`make bench-loop` (`bench/bench_loop.py`), {env['date']}, {env['cores']} cores; `uptime` before: "
        f"`{fig['uptime'][0]}`, after: `{fig['uptime'][1]}` "
        "(the machine is shared: other sessions' jobs ran beside it, as the load averages show). "
        f"Whole run {fig['total_s']:.0f} s.",
        "",
        f"Scenario: {args.cards} cards, {args.terminals} terminals, {args.pre_days} days before the shift "
        f"and {args.post_days} after ({n_rows:,} transactions, seed {args.seed}); from the shift legitimate "
        "amounts "
        "x1.6 and card testing (a few small probes at one terminal, then a large charge at another). The "
        f"champion trained through the API on the days before the shift ({fig['train_s']:.0f} s; test-window "
        f"AP {_f(champ.get('average_precision'))}, AUC {_f(champ.get('auc_roc'))}) and went live 7 days "
        "before it; every transaction from 37 days before go-live went through `POST /v1/fraud-check` "
        "in time order (the online state warm), "
        f"chargebacks as a daily `POST /v1/labels` file (delay 1 day + gamma, mean {args.label_delay_days:g} "
        f"days), `monitoring.check` every {args.check_every_h} simulated hour(s) on the standard tier's "
        "thresholds (a drift retraining waits for label_maturity_days + compare_days + drift_learn_days "
        "of traffic after the drifting window's start), automatic canaries opted in, losing challengers "
        "archived. Replay and loop "
        f"{fig['replay_s']:.0f} s.",
        "",
        "| figure | value | goal |",
        "| --- | ---: | --- |",
        f"| shift → first drift alert (simulated h) | {_f(tl['alert_h'], '.0f')} | <= 24: "
        f"{met(tl['alert_h'] <= GOAL_ALERT_H)} |",
        f"| shift → the day window over the tier's drift thresholds (h) | "
        f"{_f(tl.get('detect_h'), '.0f')} | |",
        f"| shift → the winning retraining triggered (waiting for labels) (h) | "
        f"{_f(tl.get('won_trigger_h'), '.0f')} | |",
        f"| shift → that retraining started, labels mature (retrain_h) | {_f(tl['retrain_h'], '.0f')} | |",
        f"| shift → that challenger serving a canary (h) | {_f(tl['canary_h'], '.0f')} | |",
        f"| drift / performance alerts in the live week before the shift | {tl['false_alerts']} | 0 |",
        f"| retrainings run | {tl['retrainings']} | |",
        f"| AP champion / challenger / ceiling after the cut-off | {_f(ap.get('champion'))} / "
        f"{_f(ap.get('challenger'))} / {_f(ap.get('ceiling'))} | |",
        f"| challenger AP / ceiling AP | {_f(ap['ratio'])} | >= 0.95: {met(ap['ratio'] >= GOAL_AP_RATIO)} |",
        f"| throughput monitoring on / off (checks/s, medians) | {_median(tp['on']):.0f} / "
        f"{_median(tp['off']):.0f} | |",
        f"| monitoring on / off | {_f(tp['ratio'])} | >= 0.95: {met(tp['ratio'] >= GOAL_THROUGHPUT)} |",
        f"| server CPU per check on / off (us, medians) | {_median(tp.get('cpu_us_on', [])):.0f} / "
        f"{_median(tp.get('cpu_us_off', [])):.0f} | |",
        f"| checks a core serves, on / off (CPU off / CPU on) | {_f(tp.get('cpu_ratio', float('nan')))} | "
        f">= 0.95: {met(tp.get('cpu_ratio', 0.0) >= GOAL_THROUGHPUT)} |",
        f"| backtest, {args.backtest_days} days of a {args.backtest_cards:,}-card tenant (s) | "
        f"{bt['seconds']:.2f} | |",
        "",
        f"`RESULT alert_h={tl['alert_h']:.0f} retrain_h={tl['retrain_h']:.0f} ap_ratio={ap['ratio']:.3f} "
        f"monitoring_throughput_ratio={tp['ratio']:.3f} backtest_s={bt['seconds']:.2f} "
        f"monitoring_cpu_ratio={tp.get('cpu_ratio', float('nan')):.3f}`",
        "",
        f"- First alert's violations: {tl['first_alert']}. Retrainings before it: "
        f"{fig.get('before_shift', 'n/a')}.",
        f"- AP window: the {ap.get('rows', 'n/a')} transactions ({ap.get('fraud', 'n/a')} frauds) after the "
        f"winning (else the last) retraining's frame end, its cut-off minus 7 days "
        f"({ap.get('window_start', 'n/a')}); the ceiling is the same training "
        "(the champion's parameters) on every earlier row with every label known at once.",
        f"- The retraining's own comparison (its window, before the cut-off): champion AP "
        f"{_f((comparison.get('champion') or {}).get('average_precision'))}, challenger "
        f"{_f((comparison.get('challenger') or {}).get('average_precision'))} on "
        f"{comparison.get('transactions', 'n/a')} transactions ({comparison.get('fraud', 'n/a')} frauds).",
        "- Throughput: two `bench/loop_server.py` processes (monitoring on: the champion's reference "
        "profile, "
        f"counts flushed every 10 s; off: no score observer), {args.rounds} alternated rounds of "
        f"{args.round_s:g} s each at concurrency {args.concurrency}; "
        f"on {', '.join(f'{x:.0f}' for x in tp['on'])}, "
        f"off {', '.join(f'{x:.0f}' for x in tp['off'])}; {tp['errors']} errors. Server CPU per check "
        f"(process CPU over the round / checks sent, warm-up included): on "
        f"{', '.join(f'{x:.0f}' for x in tp.get('cpu_us_on', []))}, off "
        f"{', '.join(f'{x:.0f}' for x in tp.get('cpu_us_off', []))} us.",
        f"- Backtest: {bt['stored']:,} stored checks (scored in batch by the champion), {bt['labelled']:,} "
        f"labelled; REVIEW threshold 0.5 → 0.3: reviews {bt['live_review']} → {bt['proposed_review']}, "
        f"{bt['flips']} flips. `POST /v1/backtests` answers synchronously.",
        f"- Notices at the webhook sink: {fig['notices']}.",
    ]
    return "\n".join(lines)


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    if not s:
        return float("nan")
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
