"""The web page beside the API: content negotiation on /, assets, and a missing build."""

from __future__ import annotations

import pytest

BROWSER_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                  "image/webp,image/apng,*/*;q=0.8")
INDEX_HTML = ('<!doctype html><html><head><title>Brain MRI classifier</title>'
              '<script type="module" src="/assets/index-abc123.js"></script></head>'
              '<body><div id="root"></div></body></html>')
SCRIPT = b"console.log('frontend');\n"


@pytest.fixture
def fake_dist(tmp_path):
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX_HTML, encoding="utf-8")
    (dist / "assets" / "index-abc123.js").write_bytes(SCRIPT)
    (dist / "assets" / "index-abc123.css").write_text("body{margin:0}", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("outside dist", encoding="utf-8")
    return dist


def _client(settings, model, dist):
    from braintumor.api import create_app

    app = create_app(settings.with_overrides(FRONTEND_DIST=dist), model=model)
    return app.test_client()


@pytest.fixture
def client_with_page(tiny_settings, tiny_model, fake_dist):
    return _client(tiny_settings, tiny_model, fake_dist)


@pytest.fixture
def client_without_page(tiny_settings, tiny_model, tmp_path):
    return _client(tiny_settings, tiny_model, tmp_path / "not-built")


def _is_api_info(response) -> bool:
    return (response.status_code == 200 and response.is_json
            and response.get_json()["name"] == "Brain Tumor Classification API")


@pytest.mark.parametrize("accept", [BROWSER_ACCEPT, "text/html"])
def test_a_browser_gets_the_page(client_with_page, accept):
    response = client_with_page.get("/", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.get_data(as_text=True) == INDEX_HTML
    assert "Accept" in response.vary
    assert response.headers["Cache-Control"] == "no-cache"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("accept", [None, "*/*", "application/json",
                                    "application/json, text/plain, */*",
                                    "text/html;q=0.5, application/json"])
def test_curl_and_api_clients_keep_the_json(client_with_page, accept):
    headers = {"Accept": accept} if accept else {}
    response = client_with_page.get("/", headers=headers)
    assert _is_api_info(response)
    assert "Accept" in response.vary


def test_assets_are_served_from_dist(client_with_page):
    response = client_with_page.get("/assets/index-abc123.js")
    assert response.status_code == 200
    assert response.data == SCRIPT
    assert response.mimetype in ("text/javascript", "application/javascript")
    assert "immutable" in response.headers["Cache-Control"]
    css = client_with_page.get("/assets/index-abc123.css")
    assert css.status_code == 200 and css.mimetype == "text/css"


@pytest.mark.parametrize("path", ["/assets/missing.js", "/assets/../secret.txt",
                                  "/assets/%2e%2e/secret.txt", "/assets/..%2fsecret.txt"])
def test_unknown_or_escaping_asset_paths_are_not_found(client_with_page, path):
    response = client_with_page.get(path)
    assert response.status_code == 404
    assert b"outside dist" not in response.data


def test_a_missing_asset_is_the_apis_json_404(client_with_page):
    response = client_with_page.get("/assets/missing.js")
    assert response.is_json
    assert response.get_json()["error"]["code"] == "NOT_FOUND"


def test_without_a_build_a_browser_is_told_how_to_build_it(client_without_page, tmp_path):
    response = client_without_page.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    text = response.get_data(as_text=True)
    assert "make frontend" in text
    assert "Node.js" in text
    assert str(tmp_path / "not-built") in text
    assert client_without_page.get("/assets/index.js").status_code == 404


def test_without_a_build_the_api_works(client_without_page, scan_png):
    import io

    assert _is_api_info(client_without_page.get("/", headers={"Accept": "*/*"}))
    assert client_without_page.get("/api/health").get_json()["status"] == "healthy"
    assert client_without_page.get("/api/classes").get_json()["total_classes"] == 4
    response = client_without_page.post(
        "/api/classify", data={"file": (io.BytesIO(scan_png), "scan.png")},
        content_type="multipart/form-data", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200 and response.get_json()["success"] is True


def test_api_paths_answer_json_even_to_a_browser(client_with_page):
    for path in ("/api/health", "/api/classes"):
        response = client_with_page.get(path, headers={"Accept": BROWSER_ACCEPT})
        assert response.status_code == 200 and response.is_json
    missing = client_with_page.get("/api/nope", headers={"Accept": BROWSER_ACCEPT})
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "NOT_FOUND"


def test_cors_still_applies_to_the_page_and_the_api(client_with_page):
    origin = "http://localhost:3000"
    for path, accept in (("/", BROWSER_ACCEPT), ("/api/health", "*/*")):
        response = client_with_page.get(path, headers={"Accept": accept, "Origin": origin})
        assert response.headers["Access-Control-Allow-Origin"] == origin


def test_frontend_dist_setting(tmp_path):
    from braintumor.config import DEFAULT_FRONTEND_DIST, Settings, load_settings

    assert Settings().FRONTEND_DIST == DEFAULT_FRONTEND_DIST
    assert DEFAULT_FRONTEND_DIST.parts[-2:] == ("frontend", "dist")
    configured = load_settings({"FRONTEND_DIST": str(tmp_path)}).FRONTEND_DIST
    assert configured == tmp_path
    assert load_settings({"FRONTEND_DIST": "  "}).FRONTEND_DIST == DEFAULT_FRONTEND_DIST
