"""The control plane's app fixtures (real traffic before a scrape) and the CDK synthesis."""

from tests.cdk.conftest import synthesized
from tests.control_plane.conftest import admin_key, client, container, onboard, settings, worker
from tests.control_plane.monitoring.conftest import monitored, reference
from tests.control_plane.scoring.conftest import live_tenant, sim_frame, trained_artifact

__all__ = [
    "admin_key",
    "client",
    "container",
    "live_tenant",
    "monitored",
    "onboard",
    "reference",
    "settings",
    "sim_frame",
    "synthesized",
    "trained_artifact",
    "worker",
]
