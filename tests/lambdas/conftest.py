"""The rollback fixtures (shared with tests/control_plane/notifications)."""

from tests.lambdas.rollback_fixtures import calls, deps, host, sink, sleeps

__all__ = ["calls", "deps", "host", "sink", "sleeps"]
