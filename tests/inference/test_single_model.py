"""SageMaker's single-model contract spoken over HTTP to `python -m inference serve`."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from fraud_model.features import FEATURE_NAMES
from fraud_model.scoring import Scorer
from fraud_model.training import TrainedModel, sha256
from providers.aws.model_host import csv_body, parse_scores
from tests.inference.conftest import START_TIMEOUT_S, Server, start, stop, write_model

N = len(FEATURE_NAMES)


@pytest.fixture(scope="module")
def model(models: list[TrainedModel]) -> TrainedModel:
    return models[0]


@pytest.fixture(scope="module")
def scorer(model: TrainedModel) -> Scorer:
    return Scorer(model)


@pytest.fixture(scope="module")
def server(
    serve: Callable[..., Server], model: TrainedModel, tmp_path_factory: pytest.TempPathFactory
) -> Server:
    # The digest arrives the way the SageMaker model host sends it: FRAUDRAIL_MODEL_SHA256.
    model_dir = write_model(tmp_path_factory.mktemp("opt-ml-model"), model.to_bytes(), digest=None)
    return serve(model_dir=model_dir, env={"FRAUDRAIL_MODEL_SHA256": model.sha256})


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.normal(size=(25, N)).astype(np.float32)


def _json(client: httpx.Client, body: object, **headers: str) -> httpx.Response:
    return client.post(
        "/invocations", content=json.dumps(body), headers={"Content-Type": "application/json", **headers}
    )


def test_ping_reports_the_model(server: Server, model: TrainedModel) -> None:
    with server.client() as c:
        r = c.get("/ping")
    assert r.status_code == 200
    assert r.json()["model"] == "model"


def test_one_row_json_scores_and_reasons_match_the_control_planes_scorer(
    server: Server, scorer: Scorer, model: TrainedModel, rows: np.ndarray
) -> None:
    with server.client() as c:
        r = _json(c, [float(v) for v in rows[0]])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["sha256"] == model.sha256
    [prediction] = body["predictions"]
    assert prediction["score"] == scorer.score_one(rows[0])
    assert prediction["reasons"] == scorer.reasons(rows[0], 3)
    assert prediction["reasons"], "a positive contribution gives at least one reason code"


def test_an_object_of_named_features_is_one_row(server: Server, scorer: Scorer, rows: np.ndarray) -> None:
    row = {name: float(v) for name, v in zip(FEATURE_NAMES, rows[1], strict=True)}
    with server.client() as c:
        r = _json(c, row)
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0]["score"] == scorer.score_one(rows[1])


def test_many_rows_json_with_top_k(server: Server, scorer: Scorer, rows: np.ndarray) -> None:
    with server.client() as c:
        r = _json(c, {"instances": [[float(v) for v in row] for row in rows], "top_k": 2})
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    assert [p["score"] for p in predictions] == [float(s) for s in scorer.score_batch(rows)]
    # One SHAP call for the batch gives what the control plane computes row by row.
    assert [p["reasons"] for p in predictions] == [scorer.reasons(row, 2) for row in rows]


def test_csv_rows_as_the_sagemaker_model_host_sends_and_reads_them(
    server: Server, scorer: Scorer, rows: np.ndarray
) -> None:
    with_missing = rows.copy()
    with_missing[3, 4] = np.nan
    with server.client() as c:
        r = c.post(
            "/invocations",
            content=csv_body(with_missing.tolist()),
            headers={"Content-Type": "text/csv", "Accept": "text/csv"},
        )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert parse_scores(r.content) == [float(s) for s in scorer.score_batch(with_missing)]


def test_csv_with_a_header_maps_columns_by_name_and_missing_values_come_back_null(
    server: Server, scorer: Scorer, rows: np.ndarray
) -> None:
    order = list(reversed(FEATURE_NAMES))
    row = {name: float(v) for name, v in zip(FEATURE_NAMES, rows[2], strict=True)}
    row[FEATURE_NAMES[0]] = math.nan
    line = ",".join("" if math.isnan(row[n]) else repr(row[n]) for n in order)
    with server.client() as c:
        r = c.post(
            "/invocations",
            content=",".join(order) + "\n" + line + "\n",
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "X-Amzn-SageMaker-Custom-Attributes": "top_k=30",
            },
        )
    assert r.status_code == 200, r.text
    expected_row = np.asarray([row[n] for n in FEATURE_NAMES], dtype=np.float32)
    [prediction] = r.json()["predictions"]
    assert prediction["score"] == scorer.score_one(expected_row)
    by_feature = {reason["feature"]: reason for reason in prediction["reasons"]}
    if FEATURE_NAMES[0] in by_feature:  # JSON has no NaN: a missing value is null
        assert by_feature[FEATURE_NAMES[0]]["value"] is None


def test_top_k_zero_answers_scores_only(server: Server, rows: np.ndarray) -> None:
    with server.client() as c:
        r = _json(c, {"instances": [[float(v) for v in rows[0]]], "top_k": 0})
    assert r.status_code == 200
    assert list(r.json()["predictions"][0]) == ["score"]


ROW = ",".join(["1"] * N)
BAD_REQUESTS = [
    ("empty body", "application/json", b"", {}, 400, "empty body"),
    ("not JSON", "application/json", b"{nope", {}, 400, "not valid JSON"),
    ("short row", "application/json", json.dumps([1.0, 2.0]).encode(), {}, 400, f"expected {N} features"),
    ("string value", "application/json", json.dumps(["x"] * N).encode(), {}, 400, "expected a number"),
    ("bool value", "application/json", json.dumps([True] * N).encode(), {}, 400, "expected a number"),
    (
        "unknown feature",
        "application/json",
        json.dumps({"amount": 1, "shoe_size": 4}).encode(),
        {},
        400,
        "unknown features ['shoe_size']",
    ),
    (
        "extra field",
        "application/json",
        json.dumps({"instances": [], "x": 1}).encode(),
        {},
        400,
        "unknown fields ['x']",
    ),
    ("no rows", "application/json", json.dumps({"instances": []}).encode(), {}, 400, "no rows"),
    ("scalar", "application/json", b"42", {}, 400, "expected a row"),
    (
        "negative top_k",
        "application/json",
        json.dumps({"instances": [[1] * N], "top_k": -1}).encode(),
        {},
        400,
        "top_k",
    ),
    (
        "bad top_k attribute",
        "text/csv",
        ROW.encode(),
        {"X-Amzn-SageMaker-Custom-Attributes": "top_k=many"},
        400,
        "top_k",
    ),
    ("CSV text cell", "text/csv", ("abc," * (N - 1) + "1").encode(), {}, 400, "is not a number"),
    ("CSV short row", "text/csv", b"1,2,3\n", {}, 400, f"expected {N} values"),
    ("CSV infinite", "text/csv", ("inf," + ",".join(["1"] * (N - 1))).encode(), {}, 400, "finite"),
    ("CSV not UTF-8", "text/csv", b"\xff\xfe", {}, 400, "not UTF-8"),
    ("too many rows", "text/csv", ((ROW + "\n") * 10_001).encode(), {}, 413, "at most 10000"),
    ("unsupported type", "application/x-protobuf", b"\x01", {}, 415, "unsupported Content-Type"),
    ("unacceptable answer", "text/csv", ROW.encode(), {"Accept": "image/png"}, 406, "cannot answer"),
]


@pytest.mark.parametrize(
    ("content_type", "body", "headers", "status", "message"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_payloads_get_a_clear_4xx(
    server: Server, content_type: str, body: bytes, headers: dict[str, str], status: int, message: str
) -> None:
    with server.client() as c:
        r = c.post("/invocations", content=body, headers={"Content-Type": content_type, **headers})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_an_oversized_body_is_refused_before_it_is_read(server: Server) -> None:
    with server.client() as c:
        r = c.post("/invocations", content=b"1" * (6 * 1024 * 1024 + 1), headers={"Content-Type": "text/csv"})
    assert r.status_code == 413


def test_unknown_routes_and_methods(server: Server) -> None:
    with server.client() as c:
        assert c.get("/invocations").status_code == 405
        assert c.get("/nothing-here").status_code == 404


def _refused(model_dir: Path, env: dict[str, str]) -> str:
    """Start a server that must refuse its model: it exits (status 2) without listening."""
    proc = start(["--port", "1", "--model-dir", str(model_dir)], env)
    try:
        _, err = proc.communicate(timeout=START_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            stop(proc)
    assert proc.returncode == 2, err
    return err


def test_a_tampered_artifact_stops_the_container_before_it_serves(
    model: TrainedModel, tmp_path: Path
) -> None:
    data = bytearray(model.to_bytes())
    data[-10] ^= 0x01  # one bit of the booster
    write_model(tmp_path, bytes(data), digest=None)
    err = _refused(tmp_path, {"FRAUDRAIL_MODEL_SHA256": model.sha256})
    assert f"expected {model.sha256}" in err and "refusing" in err


def test_an_edited_header_with_a_matching_sidecar_is_still_refused_by_the_registry_digest(
    model: TrainedModel, tmp_path: Path
) -> None:
    # Whoever can rewrite the artifact can rewrite its sidecar; the registry's digest still wins.
    data = model.to_bytes().replace(b'"a":', b'"a":2', 1)  # a steeper calibrator
    write_model(tmp_path, data)
    err = _refused(tmp_path, {"FRAUDRAIL_MODEL_SHA256": model.sha256})
    assert sha256(data) in err


def test_a_model_without_any_expected_digest_is_refused(model: TrainedModel, tmp_path: Path) -> None:
    write_model(tmp_path, model.to_bytes(), digest=None)
    err = _refused(tmp_path, {})
    assert "no expected sha256" in err


def test_without_a_model_invocations_points_to_the_multi_model_routes(serve: Callable[..., Server]) -> None:
    server = serve()
    with server.client() as c:
        assert c.get("/ping").json() == {"status": "ok", "model": None, "loaded_models": 0}
        r = c.post("/invocations", content=ROW, headers={"Content-Type": "text/csv"})
    assert r.status_code == 404
    assert "POST /models" in r.json()["error"]


def test_the_console_script_runs_the_same_entry_point() -> None:
    script = Path(sys.executable).with_name("fraudrail-inference")  # installed by pyproject's scripts
    out = subprocess.run([str(script), "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "--model-dir" in out.stdout and "--memory-budget" in out.stdout
