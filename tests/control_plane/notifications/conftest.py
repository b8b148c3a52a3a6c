"""The webhook sink fixture (shared with tests/lambdas)."""

from tests.lambdas.rollback_fixtures import sink

__all__ = ["sink"]
