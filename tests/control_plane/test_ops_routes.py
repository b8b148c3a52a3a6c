"""GET / says where to go; /docs works without internet (Swagger UI from a package, no CDN)."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_root_links_to_docs_console_and_health(client: TestClient) -> None:
    resp = client.get("/")
    assert resp.status_code == 200
    links = resp.json()["links"]
    assert links["docs"] == "/docs" and links["console"] == "/console" and links["health"] == "/healthz"


def test_docs_page_and_its_assets_are_served_locally(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    assert "/docs/assets/swagger-ui-bundle.js" in page.text and "/openapi.json" in page.text
    js = client.get("/docs/assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200
    assert client.get("/redoc").status_code == 404  # ReDoc would need a CDN


def test_health_reports_the_spool(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["spool"]["free_bytes"] > 0
    assert client.get("/readyz").status_code == 200
