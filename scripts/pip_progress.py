"""Run ``pip install`` and show how far it is, instead of pip's wall of lines or ``-q``'s silence.

    python scripts/pip_progress.py <log file> <pip> install ...

The first ``make run`` / ``make test`` installs ~170 pinned packages, which takes minutes: a person
should see it advance. Each package pip starts on ("Collecting", "Processing", "Requirement
already satisfied") moves a bar whose total is the number of pins in ``constraints.txt``; the last
phase ("Installing collected packages", which pip 23 does silently) is said as it starts. pip's own
output goes whole to the log file; on a failure its tail is printed and pip's exit status returned.
Not a terminal (CI): one line every 10% instead of a redrawn bar.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

STARTS = re.compile(r"^(Collecting|Processing|Requirement already satisfied:|Obtaining) (\S+)")
WIDTH = 30


def pinned_count(constraints: Path) -> int:
    lines = constraints.read_text().splitlines() if constraints.exists() else []
    return max(1, sum(1 for line in lines if "==" in line and not line.lstrip().startswith("#")))


class Bar:
    def __init__(self, total: int, tty: bool) -> None:
        self.total, self.tty, self.done, self.said = total, tty, 0, -1

    def step(self, name: str) -> None:
        self.done += 1
        shown = min(self.done, self.total)
        if self.tty:
            filled = WIDTH * shown // self.total
            bar = "#" * filled + "." * (WIDTH - filled)
            sys.stdout.write(f"\r  [{bar}] {shown}/{self.total} {name[:40]:<40}")
            sys.stdout.flush()
        elif shown * 10 // self.total > self.said:
            self.said = shown * 10 // self.total
            print(f"  {shown}/{self.total} packages resolved ({name})", flush=True)

    def say(self, text: str) -> None:
        if self.tty:
            sys.stdout.write("\n")
        print(f"  {text}", flush=True)


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("usage: pip_progress.py <log file> <pip> install ...", file=sys.stderr)
        return 2
    log_path, command = Path(argv[0]), argv[1:]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    bar = Bar(pinned_count(Path("constraints.txt")), sys.stdout.isatty())
    print(f"Installing the pinned dependencies into .venv (pip's output: {log_path})", flush=True)
    with (
        log_path.open("w") as log,
        subprocess.Popen(  # noqa: S603 (the Makefile's own pip command)
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        ) as pip,
    ):
        assert pip.stdout is not None
        for line in pip.stdout:
            log.write(line)
            match = STARTS.match(line)
            if match:
                bar.step(match.group(2))
            elif line.startswith("Installing collected packages"):
                bar.say("installing the collected packages (the longest step; no output until done)")
        status = pip.wait()
    if status != 0:
        bar.say(f"pip failed (exit {status}); the end of {log_path}:")
        print("".join(log_path.read_text().splitlines(keepends=True)[-30:]), file=sys.stderr)
        return status
    bar.say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
