"""Request ids, probes, JSON log records and in-process metrics, through the test client."""

from __future__ import annotations

import io
import json
import logging

import pytest

from braintumor.api import lifecycle
from braintumor.api.request_log import JsonFormatter, RequestIdFilter, accept_request_id
from conftest import encode, scan_like


@pytest.mark.parametrize("given", ["abc", "A.b_c:d-9", "x" * 64])
def test_a_safe_client_request_id_is_kept(client, given):
    response = client.get("/api/classes", headers={"X-Request-ID": given})
    assert response.headers["X-Request-ID"] == given


@pytest.mark.parametrize("given", ["", "x" * 65, "a b", "a\u00e9", "<script>", "a/b"])
def test_an_unsafe_client_request_id_is_replaced(client, given):
    response = client.get("/api/classes", headers={"X-Request-ID": given})
    kept = response.headers["X-Request-ID"]
    assert kept != given and len(kept) == 32 and accept_request_id(kept) == kept


def test_errors_and_unknown_paths_carry_a_request_id(client):
    for response in (client.get("/no/such/path"), client.delete("/api/classify"),
                     client.post("/api/classify", data={}, content_type="multipart/form-data")):
        assert response.status_code in (400, 404, 405)
        assert len(response.headers["X-Request-ID"]) == 32


def test_every_request_gets_its_own_id(client):
    ids = {client.get("/livez").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5


def test_livez_and_readyz(client):
    assert client.get("/livez").get_json()["status"] == "alive"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"


def test_readyz_is_503_while_draining(client):
    lifecycle.start_draining()
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.get_json()["status"] == "draining"
        assert client.get("/livez").status_code == 200  # alive: do not restart it
    finally:
        lifecycle.reset()
    assert client.get("/readyz").status_code == 200


def _value(client, line_start: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    found = [line for line in text.splitlines() if line.startswith(line_start)]
    return float(found[0].rsplit(" ", 1)[1]) if found else 0.0


def test_metrics_count_answers_refusals_and_model_passes(client):
    answered = ('braintumor_http_requests_total{endpoint="/api/classify",method="POST",'
                'status="200"}')
    refused = 'braintumor_refusals_total{endpoint="/api/classify",reason="INVALID_IMAGE"}'
    passes = 'braintumor_model_pass_seconds_count{kind="explain"}'
    before = [_value(client, name) for name in (answered, refused, passes)]
    for data in (encode(scan_like()), encode(scan_like(seed=3)), b"garbage"):
        client.post("/api/classify", data={"file": (io.BytesIO(data), "x.png")},
                    content_type="multipart/form-data")
    after = [_value(client, name) for name in (answered, refused, passes)]
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 1, 2]


def test_json_log_record_has_the_request_id_and_fields(app):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("braintumor")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        client = app.test_client()
        client.post("/api/classify", data={"file": (io.BytesIO(b"junk"), "MRN-12345.png")},
                    content_type="multipart/form-data", headers={"X-Request-ID": "req-1"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    request_lines = [e for e in entries if e["logger"] == "braintumor.request"]
    assert len(request_lines) == 1
    entry = request_lines[0]
    assert entry["request_id"] == "req-1" and entry["status"] == 400
    assert entry["refusal"] == "INVALID_IMAGE" and entry["class"] is None
    assert "MRN-12345" not in stream.getvalue()


def test_an_unexpected_error_is_logged_with_the_request_id(app, caplog):
    def boom():
        raise RuntimeError("unexpected")

    app.view_functions["api.classes"], original = boom, app.view_functions["api.classes"]
    try:
        with caplog.at_level(logging.ERROR):
            response = app.test_client().get("/api/classes", headers={"X-Request-ID": "e-7"})
    finally:
        app.view_functions["api.classes"] = original
    assert response.status_code == 500 and response.headers["X-Request-ID"] == "e-7"
    assert any(getattr(r, "request_id", None) == "e-7" for r in caplog.records
               if r.levelno >= logging.ERROR)
