"""The rollback-Lambda fixtures."""

from tests.lambdas.rollback_fixtures import deps, host, sink

__all__ = ["deps", "host", "sink"]
