"""The OpenAPI document: well-formed, complete, and true of real answers of every endpoint."""

from __future__ import annotations

import io
import re

import pytest
from jsonschema import Draft202012Validator
from PIL import Image

from braintumor.api import create_app
from braintumor.api.openapi import build_document
from conftest import encode, scan_like
from openapi_check import DOCUMENT, check_response


def _check(response, path: str, method: str = "GET") -> None:
    check_response(path, method, response.status_code, response.headers, response.get_data())


def _schemas(node):
    if isinstance(node, dict):
        if "schema" in node:
            yield node["schema"]
        for value in node.values():
            yield from _schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas(value)


def test_the_document_is_openapi_3_1_with_valid_schemas(client):
    served = client.get("/api/openapi.json")
    assert served.status_code == 200 and served.get_json() == build_document()
    assert DOCUMENT["openapi"] == "3.1.0"
    for schema in [*DOCUMENT["components"]["schemas"].values(), *_schemas(DOCUMENT["paths"])]:
        Draft202012Validator.check_schema(schema)


def test_the_document_describes_every_route_of_the_app(app):
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        routes |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in DOCUMENT["paths"].items()
                  for method in item}
    # /api/docs/init.js is one of /api/docs/{name}
    assert routes - {("/api/docs/init.js", "get")} == documented


def post(client, data: bytes | None, name: str = "scan.png", **kwargs):
    form = {} if data is None else {"file": (io.BytesIO(data), name)}
    return client.post("/api/classify", data=form, content_type="multipart/form-data",
                       **kwargs)


def test_classify_answers_and_refusals_follow_the_document(client):
    colour = Image.new("RGB", (96, 96), (200, 30, 30))
    cases = [
        (post(client, encode(scan_like())), 200),
        (post(client, None), 400),
        (post(client, b"not an image"), 400),
        (post(client, b"text", "notes.txt"), 415),
        (post(client, encode(colour)), 422),
        (client.post("/api/classify", data={"file": (io.BytesIO(encode(scan_like())), "a.png"),
                                            "frame": "x"}, content_type="multipart/form-data"),
         400),
        (client.get("/api/classify"), 405),
    ]
    for response, status in cases:
        assert response.status_code == status
        _check(response, "/api/classify", response.request.method)


def test_a_dicom_answer_follows_the_document(client):
    from dicom_helpers import make_dicom
    from series_helpers import to_12_bit

    response = post(client, make_dicom(to_12_bit(scan_like()), bits_stored=12), "scan.dcm")
    assert response.status_code == 200 and "dicom" in response.get_json()
    _check(response, "/api/classify", "POST")


def test_a_series_answer_and_refusal_follow_the_document(client):
    from series_helpers import series_files, synthetic_pictures

    files = series_files(synthetic_pictures(4, seed=11))
    response = client.post("/api/classify-series", data={
        "file": [(io.BytesIO(data), f"s{i}.dcm") for i, data in enumerate(files)]},
        content_type="multipart/form-data")
    assert response.status_code == 200
    _check(response, "/api/classify-series", "POST")
    refused = client.post("/api/classify-series", data={
        "file": [(io.BytesIO(encode(scan_like())), "a.png")]},
        content_type="multipart/form-data")
    assert refused.status_code == 415
    _check(refused, "/api/classify-series", "POST")


@pytest.mark.parametrize("path", ["/", "/api/health", "/api/classes", "/livez", "/readyz",
                                  "/metrics", "/api/openapi.json", "/api/docs",
                                  "/api/docs/swagger-ui-bundle.js", "/api/docs/init.js",
                                  "/api/docs/nothing.js", "/nowhere"])
def test_service_endpoints_follow_the_document(client, path):
    response = client.get(path)
    if path == "/nowhere":
        assert response.status_code == 404
        check_response("/api/health", "GET", 404, response.headers, response.get_data())
        return
    assert response.status_code == (404 if "nothing" in path else 200)
    _check(response, path)


def test_the_docs_page_loads_nothing_from_elsewhere(client):
    page = client.get("/api/docs").get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/api/docs/") for s in sources)
    for source in sources:
        assert client.get(source).status_code == 200
    assert "SwaggerUIBundle" in client.get("/api/docs/swagger-ui-bundle.js").get_data(
        as_text=True)[:200_000]


def test_a_browser_asking_for_html_gets_a_documented_answer(client):
    response = client.get("/", headers={"Accept": "text/html"})
    _check(response, "/")


@pytest.fixture(scope="module")
def guarded(tiny_settings, tiny_model, tmp_path_factory):
    """An app with keys, a rate limit of 2 a minute and one admission slot."""
    from braintumor.api.security import add_key, revoke_key

    folder = tmp_path_factory.mktemp("keys")
    keys = folder / "keys.txt"
    good, bad = add_key(keys, "alice"), add_key(keys, "mallory")
    revoke_key(keys, "mallory")
    settings = tiny_settings.with_overrides(API_KEYS_FILE=keys, RATE_LIMIT="2/minute",
                                            MAX_PENDING=1, THREADS=1)
    return create_app(settings, model=tiny_model), good, bad


def test_key_limit_and_overload_refusals_follow_the_document(guarded):
    app, good, bad = guarded
    client = app.test_client()
    scan = encode(scan_like())
    cases = [
        (post(client, scan), 401),
        (post(client, scan, headers={"Authorization": "Bearer nope"}), 401),
        (post(client, scan, headers={"Authorization": f"Bearer {bad}"}), 403),
        (post(client, scan, headers={"Authorization": f"Bearer {good}"}), 200),
    ]
    admission = app.extensions["braintumor.admission"]
    assert admission.enter()  # the one slot is taken, and one request already waits:
    admission.waiting = admission.pending
    try:
        cases.append((client.post("/api/classify-series", data={
            "file": [(io.BytesIO(scan), "a.dcm")]}, content_type="multipart/form-data",
            headers={"Authorization": f"Bearer {good}"}), 503))
    finally:
        admission.waiting = 0
        admission.leave()
    # the limit is 2 a minute: the 200 and the 503 spent it
    cases.append((post(client, scan, headers={"Authorization": f"Bearer {good}"}), 429))
    for response, status in cases:
        assert response.status_code == status
        _check(response, response.request.path, "POST")
