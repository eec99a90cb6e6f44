"""Several threads share one app and one compiled function; answers must not mix."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

from conftest import encode, scan_like


def _classify(app, data: bytes) -> tuple[str, dict]:
    response = app.test_client().post(
        "/api/classify", data={"file": (io.BytesIO(data), "scan.png")},
        content_type="multipart/form-data")
    assert response.status_code == 200
    body = response.get_json()
    return body["visualization"]["heatmap_only"], body["prediction"]


def test_concurrent_requests_match_sequential_ones(app):
    uploads = [encode(scan_like((64 + 8 * i, 64), seed=i)) for i in range(12)]
    sequential = [_classify(app, data) for data in uploads]
    with ThreadPoolExecutor(max_workers=6) as pool:
        concurrent = list(pool.map(lambda d: _classify(app, d), uploads * 4))
    assert concurrent == sequential * 4
