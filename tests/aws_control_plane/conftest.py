"""The control plane (its database, app and worker) together with moto's server: both fixture sets."""

from tests.aws.conftest import *  # noqa: F403 - moto server, clients, settings
from tests.control_plane.conftest import *  # noqa: F403 - container, client, onboard, worker
