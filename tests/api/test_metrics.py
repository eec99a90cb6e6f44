"""/metrics on a real gunicorn with two workers: what a scraper sees adds up across them."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import encode, scan_like
from live_server import start_server

NATIVE_TF = re.compile(r"^(WARNING: All log messages before absl|[IWEF]\d{4} )")


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = requests.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def delta(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.fixture(scope="module")
def two_workers(tiny_model_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("two-workers")
    metrics_dir = folder / "metrics"
    server = start_server(tiny_model_path, folder / "server.log", WORKERS="2", THREADS="4",
                          PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    deadline = time.time() + 120  # both workers have made their metrics (loaded the app)
    while len(list(metrics_dir.glob("gauge_max_*.db"))) < 2 and time.time() < deadline:
        time.sleep(0.3)
    yield server, metrics_dir
    assert server.stop() == 0


def test_counters_move_by_exactly_the_requests_sent(two_workers):
    server, metrics_dir = two_workers
    url = server.url
    scan = encode(scan_like())
    jobs = ([("scan.png", scan)] * 30 + [("scan.png", b"not an image")] * 12
            + [("notes.txt", b"text")] * 8)  # 50 requests: 30 answers, 12 + 8 refusals
    before = samples(url)

    def send(job):
        name, data = job
        return requests.post(f"{url}/api/classify", files={"file": (name, data)},
                             timeout=60).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(send, jobs))
    assert statuses.count(200) == 30 and statuses.count(400) == 12
    assert statuses.count(415) == 8
    after = samples(url)

    def moved(status: str) -> float:
        return delta(before, after, "braintumor_http_requests_total",
                     endpoint="/api/classify", method="POST", status=status)

    assert (moved("200"), moved("400"), moved("415")) == (30, 12, 8)
    refused = {reason: delta(before, after, "braintumor_refusals_total",
                             endpoint="/api/classify", reason=reason)
               for reason in ("INVALID_IMAGE", "INVALID_FILE_TYPE")}
    assert refused == {"INVALID_IMAGE": 12, "INVALID_FILE_TYPE": 8}
    answered = sum(delta(before, after, "braintumor_classifications_total",
                         endpoint="/api/classify", class_name=name)
                   for name in ("Glioma", "Meningioma", "No Tumor", "Pituitary"))
    assert answered == 30
    assert delta(before, after, "braintumor_http_request_duration_seconds_count",
                 endpoint="/api/classify") == 50
    assert delta(before, after, "braintumor_model_pass_seconds_count", kind="explain") == 30
    assert after[("braintumor_uploads_in_flight", ())] == 0
    version = [labels for (name, labels) in after if name == "braintumor_model_info"]
    assert version == [(("architecture", "tiny"), ("version", "tiny-test"))]
    # both workers counted: each wrote its own counter file, and the sums include both
    assert len(list(metrics_dir.glob("counter_*.db"))) >= 2


def test_request_log_lines_are_json_with_ids_and_no_file_names(two_workers):
    server, _ = two_workers
    scan = encode(scan_like(seed=5))
    response = requests.post(f"{server.url}/api/classify",
                             files={"file": ("Patient-Jane-Doe.png", scan)},
                             headers={"X-Request-ID": "trace-abc.123"}, timeout=60)
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "trace-abc.123"
    time.sleep(0.5)
    # every line is JSON but TensorFlow's native start-up notes (C++, straight to stderr)
    lines = [line for line in server.log_lines() if not NATIVE_TF.match(line)]
    entries = [json.loads(line) for line in lines]
    mine = [e for e in entries if e.get("request_id") == "trace-abc.123"
            and e.get("logger") == "braintumor.request"]
    assert len(mine) == 1
    entry = mine[0]
    assert entry["method"] == "POST" and entry["path"] == "/api/classify"
    assert entry["status"] == 200 and entry["ms"] > 0
    assert entry["model_version"] == "tiny-test"
    assert entry["class"] in ("Glioma", "Meningioma", "No Tumor", "Pituitary")
    assert "Jane" not in Path(server.log_path).read_text()
