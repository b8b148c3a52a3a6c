"""SageMaker's multi-model contract over HTTP: load, list, get, invoke, unload, LRU unloading."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from fraud_model.features import FEATURE_NAMES
from fraud_model.scoring import Scorer
from fraud_model.training import TrainedModel, sha256
from inference.artifacts import load_model
from inference.registry import InsufficientMemoryError, ModelRegistry
from tests.inference.conftest import ARTIFACT_NAME, Server, train_small, write_model

ROW = [0.5] * len(FEATURE_NAMES)


def _footprint(model: TrainedModel, tmp_path: Path) -> int:
    return load_model("probe", write_model(tmp_path / "probe", model.to_bytes())).footprint


@pytest.fixture(scope="module")
def server(serve: Callable[..., Server]) -> Server:
    return serve()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c
        for name in [m["modelName"] for m in c.get("/models").json()["models"]]:
            c.delete(f"/models/{name}")


def _place(server: Server, name: str, model: TrainedModel, **kwargs: str | None) -> str:
    """Put a model where SageMaker would (``/opt/ml/models/<name>/model``); returns the url."""
    return str(write_model(server.models_root / name / "model", model.to_bytes(), **kwargs))


def _invoke(c: httpx.Client, name: str, rows: list[list[float]] | None = None) -> httpx.Response:
    return c.post(f"/models/{name}/invoke", json={"instances": rows or [ROW], "top_k": 1})


def test_load_list_get_invoke_unload(
    server: Server, client: httpx.Client, models: list[TrainedModel]
) -> None:
    c = client
    for i in (0, 1):
        r = c.post("/models", json={"model_name": f"m{i}", "url": _place(server, f"m{i}", models[i])})
        assert r.status_code == 200, r.text
        assert r.json()["sha256"] == models[i].sha256
    listed = c.get("/models").json()["models"]
    assert [(m["modelName"], m["sha256"]) for m in listed] == [
        ("m0", models[0].sha256),
        ("m1", models[1].sha256),
    ]
    assert c.get("/models/m1").json()["modelUrl"] == str(server.models_root / "m1" / "model")
    for i in (0, 1):
        r = _invoke(c, f"m{i}")
        assert r.status_code == 200, r.text
        assert r.json()["predictions"][0]["score"] == Scorer(models[i]).score_one(ROW)
    assert c.delete("/models/m0").status_code == 200
    assert c.delete("/models/m0").status_code == 404
    assert [m["modelName"] for m in c.get("/models").json()["models"]] == ["m1"]


def test_csv_invoke_and_the_target_model_header(
    server: Server, client: httpx.Client, models: list[TrainedModel]
) -> None:
    client.post("/models", json={"model_name": "csv", "url": _place(server, "csv", models[2])})
    rows = np.random.default_rng(3).normal(size=(4, len(FEATURE_NAMES))).astype(np.float32)
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in rows)
    r = client.post(
        "/models/csv/invoke",
        content=body,
        headers={
            "Content-Type": "text/csv",
            "Accept": "text/csv",
            "X-Amzn-SageMaker-Target-Model": "t/a.tgz",
        },
    )
    assert r.status_code == 200, r.text
    assert [float(x) for x in r.text.split()] == [float(s) for s in Scorer(models[2]).score_batch(rows)]


def test_a_lightgbm_artifact_scores_and_explains_like_the_control_plane(
    server: Server, client: httpx.Client
) -> None:
    model = train_small(5, algorithm="lightgbm")
    scorer = Scorer(model)
    assert (
        client.post("/models", json={"model_name": "lgb", "url": _place(server, "lgb", model)}).status_code
        == 200
    )
    rows = np.random.default_rng(4).normal(size=(6, len(FEATURE_NAMES))).astype(np.float32)
    many = client.post("/models/lgb/invoke", json={"instances": rows.tolist(), "top_k": 2}).json()[
        "predictions"
    ]
    assert [p["score"] for p in many] == [float(s) for s in scorer.score_batch(rows)]
    assert [p["reasons"] for p in many] == [scorer.reasons(row, 2) for row in rows]
    [one] = client.post("/models/lgb/invoke", json=[float(v) for v in rows[0]]).json()["predictions"]
    assert one["score"] == scorer.score_one(rows[0])


def test_model_names_are_opaque_and_may_contain_slashes(
    server: Server, client: httpx.Client, models: list[TrainedModel]
) -> None:
    url = _place(server, "tenant-a", models[0])
    assert client.post("/models", json={"model_name": "ten_a/mv_1", "url": url}).status_code == 200
    assert _invoke(client, "ten_a/mv_1").status_code == 200
    assert client.get("/models/ten_a/mv_1").json()["modelName"] == "ten_a/mv_1"
    assert client.delete("/models/ten_a/mv_1").status_code == 200


def test_a_tarball_with_the_artifact_and_its_digest_loads(
    server: Server, client: httpx.Client, models: list[TrainedModel]
) -> None:
    artifact = models[1].to_bytes()
    target = server.models_root / "packed" / "model"
    target.mkdir(parents=True)
    with tarfile.open(target / "model.tar.gz", "w:gz") as tar:
        for name, data in ((ARTIFACT_NAME, artifact), (f"{ARTIFACT_NAME}.sha256", sha256(artifact).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    r = client.post("/models", json={"model_name": "packed", "url": str(target)})
    assert r.status_code == 200, r.text
    assert r.json()["sha256"] == models[1].sha256


def test_unknown_models_are_404(client: httpx.Client) -> None:
    for r in (_invoke(client, "ghost"), client.get("/models/ghost"), client.delete("/models/ghost")):
        assert r.status_code == 404
        assert "'ghost' is not loaded" in r.json()["error"]


def test_loading_a_name_twice_is_409(
    server: Server, client: httpx.Client, models: list[TrainedModel]
) -> None:
    url = _place(server, "twice", models[0])
    assert client.post("/models", json={"model_name": "twice", "url": url}).status_code == 200
    r = client.post("/models", json={"model_name": "twice", "url": url})
    assert r.status_code == 409
    assert "already loaded" in r.json()["error"]


def test_a_tampered_artifact_is_refused(
    server: Server, client: httpx.Client, models: list[TrainedModel]
) -> None:
    url = _place(server, "tampered", models[0])
    artifact = Path(url) / ARTIFACT_NAME
    data = bytearray(artifact.read_bytes())
    data[-5] ^= 0x40
    artifact.write_bytes(bytes(data))
    r = client.post("/models", json={"model_name": "tampered", "url": url})
    assert r.status_code == 422
    assert f"expected {models[0].sha256}" in r.json()["error"]
    assert _invoke(client, "tampered").status_code == 404


def test_the_digest_in_the_request_must_match_too(
    server: Server, client: httpx.Client, models: list[TrainedModel]
) -> None:
    url = _place(server, "digest", models[0], digest=None)
    r = client.post("/models", json={"model_name": "digest", "url": url, "sha256": models[1].sha256})
    assert r.status_code == 422
    assert "refusing to load" in r.json()["error"]
    r = client.post("/models", json={"model_name": "digest", "url": url, "sha256": models[0].sha256})
    assert r.status_code == 200, r.text


LOAD_ERRORS = [
    ("not JSON", b"{", 400, "body must be JSON"),
    ("a list", b"[]", 400, "JSON object"),
    ("no url", b'{"model_name": "x"}', 400, "['url']"),
    ("empty name", b'{"model_name": "", "url": "/x"}', 400, "['model_name']"),
    ("numeric sha256", b'{"model_name": "x", "url": "/x", "sha256": 5}', 400, "['sha256']"),
    ("outside the root", b'{"model_name": "x", "url": "/etc"}', 403, "outside the model roots"),
    ("oversized", b'{"model_name": "' + b"x" * (6 * 1024 * 1024) + b'"}', 413, "body of"),
    ("not UTF-8", b"\xff\xfe", 400, "body must be JSON"),
]


@pytest.mark.parametrize(
    ("body", "status", "message"), [c[1:] for c in LOAD_ERRORS], ids=[c[0] for c in LOAD_ERRORS]
)
def test_bad_load_requests(client: httpx.Client, body: bytes, status: int, message: str) -> None:
    r = client.post("/models", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_load_errors_about_the_files(
    server: Server, client: httpx.Client, models: list[TrainedModel]
) -> None:
    missing = client.post("/models", json={"model_name": "x", "url": str(server.models_root / "nowhere")})
    assert missing.status_code == 404
    # A parent directory that walks out of the root is resolved before the check.
    escape = client.post("/models", json={"model_name": "x", "url": f"{server.models_root}/../.."})
    assert escape.status_code == 403
    junk = server.models_root / "junk"
    junk.mkdir()
    (junk / "model.bin").write_bytes(b"not a model")
    assert client.post("/models", json={"model_name": "x", "url": str(junk)}).status_code == 404
    unsigned = _place(server, "unsigned", models[0], digest=None)
    r = client.post("/models", json={"model_name": "x", "url": unsigned})
    assert r.status_code == 422
    assert "no expected sha256" in r.json()["error"]
    two = _place(server, "two", models[0])
    (Path(two) / "second.fraudrail").write_bytes(models[1].to_bytes())
    r = client.post("/models", json={"model_name": "x", "url": two})
    assert r.status_code == 422
    assert "2 model artifacts" in r.json()["error"]


def test_least_recently_used_models_are_unloaded_to_stay_within_the_memory_budget(
    serve: Callable[..., Server], models: list[TrainedModel], tmp_path: Path
) -> None:
    # One byte short of all four: the fourth load must unload exactly one model, the LRU one.
    sizes = [_footprint(m, tmp_path / str(i)) for i, m in enumerate(models)]
    budget = sum(sizes) - 1
    server = serve(memory_budget=budget)
    with server.client() as c:
        for i in range(3):
            assert (
                c.post(
                    "/models", json={"model_name": f"m{i}", "url": _place(server, f"m{i}", models[i])}
                ).status_code
                == 200
            )
        assert _invoke(c, "m0").status_code == 200  # m0 is now the most recently used; m1 the least
        r = c.post("/models", json={"model_name": "m3", "url": _place(server, "m3", models[3])})
        assert r.status_code == 200, r.text
        listed = {m["modelName"] for m in c.get("/models").json()["models"]}
        assert listed == {"m0", "m2", "m3"}
        assert _invoke(c, "m1").status_code == 404
        assert sum(m["footprintBytes"] for m in c.get("/models").json()["models"]) <= budget
        # SageMaker loads an unloaded model again when it is invoked next.
        assert (
            c.post(
                "/models", json={"model_name": "m1", "url": str(server.models_root / "m1" / "model")}
            ).status_code
            == 200
        )
        assert _invoke(c, "m1").status_code == 200


def test_a_model_larger_than_the_whole_budget_is_507(models: list[TrainedModel], tmp_path: Path) -> None:
    url = write_model(tmp_path / "big", models[0].to_bytes())
    registry = ModelRegistry(memory_budget=1024)
    with pytest.raises(InsufficientMemoryError) as exc:
        registry.load("big", str(url))
    assert exc.value.status == 507
    assert registry.names() == []


def test_list_models_pages(server: Server, client: httpx.Client, models: list[TrainedModel]) -> None:
    url = _place(server, "paged", models[0])
    for i in range(3):
        assert client.post("/models", json={"model_name": f"p{i}", "url": url}).status_code == 200
    first = client.get("/models").json()
    assert "nextPageToken" not in first  # fewer than a page
    assert client.get("/models", params={"next_page_token": "x"}).status_code == 400
    assert client.get("/models", params={"next_page_token": "2"}).json()["models"][0]["modelName"] == "p2"
