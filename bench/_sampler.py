"""A sampling profiler for the server's event-loop thread, and a flame graph (SVG) of its stacks.

``python bench/_sampler.py OUT.collapsed -- serve [options]`` runs ``fraudrail serve`` (one
worker) with a thread that, from SIGUSR1 on (start-up is not profiled), samples the main
thread's Python stack every ``SAMPLE_MS`` and writes the stacks, collapsed (one ``frame;frame
count`` line per stack, Brendan Gregg's format), when the server exits. Samples whose innermost
frame is the event loop waiting for work are dropped, so the graph shows where the CPU goes
while checks are served. py-spy is not installed here; this costs the server a few per cent
(one GIL hand-off per sample).

``flame_svg(collapsed_text, title)`` draws the stacks as a flame graph: one box per frame, its
width the share of samples, callers below callees; hovering a box shows its samples.
"""

from __future__ import annotations

import atexit
import html
import os
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

SAMPLE_MS = float(os.environ.get("BENCH_SAMPLE_MS", "1.0"))
# The innermost frames of an idle loop (uvloop runs the loop in C: Python frames stop here).
IDLE_LEAVES = ("run_until_complete", "run_forever", "runners.py:run", "select", "_run_once")


def _frame_name(code: object) -> str:
    filename = getattr(code, "co_filename", "?")
    parts = Path(filename).parts
    short = "/".join(parts[-2:]) if len(parts) >= 2 else filename
    return f"{short}:{getattr(code, 'co_name', '?')}"


class Sampler:
    def __init__(self, thread_id: int, out: Path) -> None:
        self.thread_id = thread_id
        self.out = out
        self.stacks: Counter[str] = Counter()
        self.idle = 0
        self._stop = threading.Event()
        self.recording = threading.Event()  # set by SIGUSR1: only the measured window is sampled
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        period = SAMPLE_MS / 1000.0
        while not self._stop.wait(period):
            if not self.recording.is_set():
                continue
            frame = sys._current_frames().get(self.thread_id)
            if frame is None:
                continue
            names = []
            while frame is not None:
                names.append(_frame_name(frame.f_code))
                frame = frame.f_back
            if any(names[0].endswith(leaf) for leaf in IDLE_LEAVES):
                self.idle += 1
                continue
            self.stacks[";".join(reversed(names))] += 1

    def write(self) -> None:
        self._stop.set()
        lines = [f"{stack} {n}" for stack, n in self.stacks.most_common()]
        self.out.write_text("\n".join(lines) + "\n")


def flame_svg(collapsed: str, title: str, width: int = 1400, row: int = 16) -> str:
    """A flame graph of collapsed stacks (self-made: no external tool)."""
    tree: dict[str, object] = {}
    total = 0
    for line in collapsed.splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        node = tree
        for frame in stack.split(";"):
            child = node.setdefault(frame, {"_n": 0, "_c": {}})
            assert isinstance(child, dict)
            child["_n"] += n
            node = child["_c"]
    boxes: list[str] = []
    depth_max = 0

    def draw(children: dict[str, object], x0: float, depth: int) -> None:
        nonlocal depth_max
        depth_max = max(depth_max, depth)
        x = x0
        for name, child in sorted(children.items(), key=lambda kv: -kv[1]["_n"]):  # type: ignore[index]
            assert isinstance(child, dict)
            w = child["_n"] / max(1, total) * width
            if w >= 0.5:
                boxes.append((x, depth, w, name, child["_n"]))  # type: ignore[arg-type]
                draw(child["_c"], x, depth + 1)
            x += w

    draw(tree, 0.0, 0)
    height = (depth_max + 3) * row
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="monospace" font-size="11">',
        f'<text x="4" y="{row - 3}" font-size="13">{html.escape(title)} ({total} samples)</text>',
    ]
    for x, depth, w, name, n in boxes:  # type: ignore[misc]
        y = height - (depth + 1) * row
        hue = 20 + (hash(name.split(":")[0]) % 40)
        label = name if len(name) * 6.6 < w else name[: max(0, int(w / 6.6) - 1)]
        pct = 100.0 * n / max(1, total)
        out.append(
            f"<g><title>{html.escape(name)}: {n} samples ({pct:.1f}%)</title>"
            f'<rect x="{x:.1f}" y="{y}" width="{max(w - 0.3, 0.2):.1f}" height="{row - 1}" '
            f'fill="hsl({hue},90%,60%)"/>'
            f'<text x="{x + 2:.1f}" y="{y + row - 4}">{html.escape(label)}</text></g>'
        )
    out.append("</svg>")
    return "\n".join(out)


def main() -> None:
    out = Path(sys.argv[1])
    args = sys.argv[sys.argv.index("--") + 1 :]
    sampler = Sampler(threading.main_thread().ident or 0, out)
    atexit.register(sampler.write)

    def on_term(signum: int, _frame: object) -> None:
        # uvicorn restores this handler after its graceful shutdown and raises the signal again.
        sampler.write()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGUSR1, lambda *_: sampler.recording.set())
    sampler.start()
    sys.argv = ["fraudrail", *args]
    from control_plane.cli import app

    try:
        app()
    finally:
        sampler.write()
        time.sleep(0)


if __name__ == "__main__":
    main()
