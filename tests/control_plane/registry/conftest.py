"""Registry fixtures: the rollout fixtures (a live tenant, an approved candidate, traffic, a clock)."""

from tests.control_plane.rollouts.conftest import canary_setup, clock, traffic  # noqa: F401
from tests.control_plane.scoring.conftest import live_tenant, sim_frame, trained_artifact  # noqa: F401
