"""The rollback fixtures of tests/lambdas: model host, rollback deps, webhook sink."""

from tests.lambdas.rollback_fixtures import calls, deps, host, sink, sleeps

__all__ = ["calls", "deps", "host", "sink", "sleeps"]
