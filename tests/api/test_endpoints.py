"""The spec's four endpoints and its error table, through Flask's test client."""

from __future__ import annotations

import base64
import io
import re

import pytest
from PIL import Image

from conftest import encode, scan_like

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CLASSES = ["Glioma", "Meningioma", "No Tumor", "Pituitary"]


def post(client, data: bytes | None, filename: str = "scan.png", **kwargs):
    form = {} if data is None else {"file": (io.BytesIO(data), filename)}
    return client.post("/api/classify", data=form, content_type="multipart/form-data", **kwargs)


def assert_error(response, code: str, status: int) -> dict:
    assert response.status_code == status
    assert response.is_json
    body = response.get_json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["status"] == status
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert TIMESTAMP.match(body["timestamp"])
    return body


def test_index_describes_the_api(client):
    body = client.get("/").get_json()
    assert body["name"] == "Brain Tumor Classification API"
    assert body["version"] == "1.0.0"
    assert body["endpoints"]["/api/classify"]["method"] == "POST"
    assert body["endpoints"]["/api/health"]["method"] == "GET"
    assert body["endpoints"]["/api/classes"]["method"] == "GET"


def test_health(client, tiny_model_path):
    body = client.get("/api/health").get_json()
    assert body["status"] == "healthy"
    assert TIMESTAMP.match(body["timestamp"])
    assert body["services"]["model"] == {"status": "up", "loaded": True}
    assert body["services"]["spark"] == {"status": "disabled", "active": False}
    details = body["details"]
    assert details["model_path"] == str(tiny_model_path)
    assert details["num_classes"] == 4
    assert details["image_size"] == [32, 32]
    assert "spark_version" in details


def test_classes(client):
    body = client.get("/api/classes").get_json()
    assert body["success"] is True and body["total_classes"] == 4
    assert [c["id"] for c in body["classes"]] == [0, 1, 2, 3]
    assert [c["name"] for c in body["classes"]] == CLASSES
    assert all(c["description"] for c in body["classes"])


def test_classify_answers_in_the_spec_shape(client, scan_png):
    response = post(client, scan_png)
    assert response.status_code == 200
    body = response.get_json()
    assert body["success"] is True
    assert set(body) == {"success", "prediction", "visualization", "ood", "processing_time_ms",
                         "timestamp"}
    assert body["ood"]["flagged"] is False  # the not-a-brain-MRI block (tests/api/test_ood_api)
    prediction = body["prediction"]
    probabilities = prediction["probabilities"]
    assert list(probabilities) == CLASSES
    assert sum(probabilities.values()) == pytest.approx(100.0, abs=1e-9)
    assert prediction["confidence"] == max(probabilities.values())
    assert prediction["class"] == CLASSES[prediction["class_id"]]
    assert probabilities[prediction["class"]] == prediction["confidence"]
    assert body["processing_time_ms"] > 0
    assert TIMESTAMP.match(body["timestamp"])
    for key in ("heatmap_overlay", "original_image", "heatmap_only"):
        image = Image.open(io.BytesIO(base64.b64decode(body["visualization"][key])))
        assert image.format == "PNG" and image.mode == "RGB"


@pytest.mark.parametrize(("upload", "shown"), [
    ((300, 150), (300, 150)),   # kept
    ((100, 50), (224, 112)),    # never under 224 px
    ((1000, 500), (512, 256)),  # long side capped at VISUALIZATION_MAX_SIZE
])
def test_visualisations_keep_the_aspect_ratio(client, upload, shown):
    body = post(client, encode(scan_like(upload))).get_json()
    for key in ("heatmap_overlay", "original_image", "heatmap_only"):
        image = Image.open(io.BytesIO(base64.b64decode(body["visualization"][key])))
        assert image.size == shown


def test_original_image_is_the_upload(client):
    picture = scan_like((256, 256)).convert("RGB")
    body = post(client, encode(picture)).get_json()
    shown = Image.open(io.BytesIO(base64.b64decode(body["visualization"]["original_image"])))
    assert shown.tobytes() == picture.tobytes()


def test_jpeg_named_png_classifies(client):
    assert post(client, encode(scan_like(), "JPEG"), "scan.png").status_code == 200


def test_upper_case_extension_classifies(client, scan_png):
    assert post(client, scan_png, "SCAN.PNG").status_code == 200


def test_no_file(client):
    assert_error(post(client, None), "NO_FILE", 400)


def test_wrong_field_name_is_no_file(client, scan_png):
    response = client.post("/api/classify", data={"image": (io.BytesIO(scan_png), "a.png")},
                           content_type="multipart/form-data")
    assert_error(response, "NO_FILE", 400)


def test_json_body_is_no_file(client):
    assert_error(client.post("/api/classify", json={"file": "x"}), "NO_FILE", 400)


def test_empty_filename(client, scan_png):
    assert_error(post(client, scan_png, ""), "EMPTY_FILENAME", 400)


@pytest.mark.parametrize("name", ["scan.txt", "scan.exe", "scan.tiff", "scan.png.sh"])
def test_invalid_file_type(client, scan_png, name):
    body = assert_error(post(client, scan_png, name), "INVALID_FILE_TYPE", 415)
    assert body["error"]["message"] == (
        "File type not allowed. Allowed: png, jpg, jpeg, gif, bmp, webp, dcm, dicom")


@pytest.mark.parametrize("data", [
    b"this is plain text, not a picture",
    b"",
    encode(scan_like(), "PNG")[:200],
    encode(scan_like(), "JPEG")[:300],
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
    b"\xff\xd8\xff" + bytes(range(256)) * 8,
])
def test_invalid_image(client, data):
    assert_error(post(client, data, "scan.jpg"), "INVALID_IMAGE", 400)


def test_decompression_bomb_is_refused(client):
    bomb = encode(Image.new("1", (20000, 20000)))
    assert len(bomb) < 1024 * 1024
    assert_error(post(client, bomb, "bomb.png"), "INVALID_IMAGE", 400)


def test_file_too_large(client):
    big = b"\x89PNG" + b"\x00" * (16 * 1024 * 1024 + 1)
    body = assert_error(post(client, big, "big.png"), "FILE_TOO_LARGE", 413)
    assert "16MB" in body["error"]["message"]


class CountingStream(io.RawIOBase):
    """A request body that claims to be huge and counts what is read of it."""

    def __init__(self, size: int) -> None:
        self.size, self.read_bytes = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.size - self.read_bytes)
        buffer[:n] = b"\x00" * n
        self.read_bytes += n
        return n


def test_oversized_body_is_refused_without_being_read(client):
    stream = CountingStream(200 * 1024 * 1024)
    response = client.post("/api/classify", environ_overrides={
        "wsgi.input": stream,
        "CONTENT_LENGTH": str(stream.size),
        "CONTENT_TYPE": "multipart/form-data; boundary=xyz",
    })
    assert_error(response, "FILE_TOO_LARGE", 413)
    assert stream.read_bytes < 1024 * 1024


def test_not_found(client):
    assert_error(client.get("/api/nothing-here"), "NOT_FOUND", 404)


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/api/classify"), ("put", "/api/classify"), ("delete", "/api/health"),
    ("post", "/api/classes"), ("post", "/"),
])
def test_wrong_method_is_json_405(client, method, path):
    assert_error(getattr(client, method)(path), "METHOD_NOT_ALLOWED", 405)


def test_cors_allows_the_configured_origin(client):
    response = client.get("/api/health", headers={"Origin": "http://localhost:3000"})
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    other = client.get("/api/health", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_uploads_never_touch_the_temp_folder(client, tmp_path, monkeypatch):
    """Werkzeug spools big multipart parts to temp files by default; ours stay in memory."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    noisy = Image.effect_noise((1400, 1400), 80).convert("L")
    data = encode(noisy)
    assert len(data) > 1024 * 1024
    calls = []
    real = tempfile.TemporaryFile

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", spy)
    monkeypatch.setattr(tempfile, "SpooledTemporaryFile",
                        lambda *a, **k: calls.append(a) or io.BytesIO())
    # noise is refused as not a brain MRI (422), after the whole upload was read in memory
    assert post(client, data, "noise.png").get_json()["error"]["code"] == "NOT_BRAIN_MRI"
    assert calls == []
    assert list(tmp_path.iterdir()) == []
