"""/api/health tells clients what /api/classify takes (the web page checks files with it)."""

from __future__ import annotations

import io

from braintumor.api import create_app
from braintumor.decoding import allowed_types_message


def test_health_states_the_upload_limits(client, tiny_settings):
    upload = client.get("/api/health").get_json()["upload"]
    assert upload == {"max_bytes": tiny_settings.MAX_CONTENT_LENGTH,
                      "extensions": ["png", "jpg", "jpeg", "gif", "bmp", "webp", "dcm", "dicom"],
                      "dicom_extensions": ["dcm", "dicom"]}
    # the list is the one the API refuses other types with
    assert allowed_types_message().endswith(", ".join(upload["extensions"]))


def test_the_stated_size_limit_is_the_enforced_one(tiny_settings, tiny_model):
    app = create_app(tiny_settings.with_overrides(MAX_CONTENT_LENGTH=2048), model=tiny_model)
    client = app.test_client()
    limit = client.get("/api/health").get_json()["upload"]["max_bytes"]
    assert limit == 2048
    too_big = client.post("/api/classify", data={"file": (io.BytesIO(b"x" * (limit + 1)),
                                                          "a.png")},
                          content_type="multipart/form-data")
    assert too_big.status_code == 413


def test_earlier_health_fields_are_unchanged(client):
    body = client.get("/api/health").get_json()
    assert {"status", "timestamp", "services", "details"} <= set(body)
    assert body["services"]["model"] == {"status": "up", "loaded": True}
