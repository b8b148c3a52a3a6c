"""Fault-injection points for crash tests: ``FRAUDRAIL_FAULT_CRASH_AT=<point>`` kills the process there."""

from __future__ import annotations

import os


def crash_point(name: str) -> None:
    """Exit the process abruptly (no cleanup, like ``kill -9``) when this point is armed."""
    if os.environ.get("FRAUDRAIL_FAULT_CRASH_AT") == name:
        os._exit(137)
