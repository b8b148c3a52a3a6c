"""Fuzz every operation of the OpenAPI document with deterministic malformed input.

What a stranger running a schema fuzzer against us must see: no input answers 5xx, and every 4xx
is ``application/problem+json`` with a ``detail`` (and a ``field`` on 422). Each operation is
called with every key whose scope it accepts (the keys that do not get 401/403 on a well-formed
request), with garbage path parameters, badly typed query parameters, malformed JSON bodies (one
bad property at a time, with ``$ref`` resolved), and garbage files on the multipart routes. The
console's HTML routes are only checked for 5xx. Every defect is collected; the test fails once,
listing them all.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.db import unit_of_work
from control_plane.review import service as reviews
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.fuzz_client import Fuzzer
from tests.control_plane.review.conftest import flagged
from tests.control_plane.scoring.conftest import register_model, sim_frame, trained_artifact  # noqa: F401


def test_no_input_gets_a_5xx_and_every_4xx_is_a_problem(
    client: TestClient,
    container: State,
    onboard: OnboardFn,
    admin_key: str,
    trained_artifact: bytes,  # noqa: F811
) -> None:
    t = onboard("fuzz-co", scopes=("app", "analyst", "sre"))
    admin = auth(t["admin"])
    # A PRODUCTION model (fraud checks are scored), an APPROVED one, and a rollout of a third.
    serving = register_model(container, t["id"], trained_artifact)
    assert client.post(f"/v1/models/{serving}/promote", headers=admin).status_code == 200
    approved = register_model(container, t["id"], trained_artifact)
    candidate = register_model(container, t["id"], trained_artifact)
    rollout = client.post("/v1/rollouts", json={"candidate_version": candidate}, headers=admin)
    assert rollout.status_code == 201, rollout.text
    # Thresholds at 0: every fraud check is flagged, so the flagged-record path runs as well.
    thresholds = {"review_threshold": "0", "suspicious_threshold": "0"}
    assert client.put("/v1/scoring-config", json=thresholds, headers=admin).status_code == 200
    spare = client.post(f"/v1/tenants/{t['id']}/keys", json={"scope": "sre", "name": "spare"}, headers=admin)
    assert spare.status_code == 201, spare.text
    with unit_of_work(container.factory) as session:
        review_id = reviews.ingest(session, t["id"], flagged(1)).id
    keys = {
        "platform-admin": admin_key,
        "tenant-admin": t["admin"],
        "app": t["app"],
        "analyst": t["analyst"],
        "sre": t["sre"],
    }
    real_ids = {
        "tenant_id": t["id"],
        "job_id": t["job_id"],
        "key_id": spare.json()["id"],
        "review_id": review_id,
        "model_id": approved,
        "rollout_id": rollout.json()["id"],
    }
    fuzzer = Fuzzer(client, keys, real_ids)

    operations = fuzzer.run_api()
    fuzzer.run_console()

    assert operations >= 50, f"only {operations} operations in the OpenAPI document: the walk found little"
    assert fuzzer.succeeded >= 300, (
        f"only {fuzzer.succeeded} answers below 400: the inputs never reach handlers"
    )
    assert not fuzzer.failures, (
        f"{len(fuzzer.failures)} defects in {fuzzer.sent} requests over {operations} operations:\n"
        + "\n".join(fuzzer.failures)
    )
