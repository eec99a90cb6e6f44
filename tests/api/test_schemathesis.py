"""Schemathesis fuzzes a live server from its own /api/openapi.json: no 5xx, and every
response (status, content type, headers, body) as the document says.

Bounded for `make test` on two cores: a fixed seed and 100 examples per operation (about
1,100 requests, 20 s here); SCHEMATHESIS_EXAMPLES changes the count for a run by hand.
(No --max-time: with one, Schemathesis keeps fuzzing until the time is spent.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from live_server import start_server

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
#: Every check but one: "a schema-valid request is accepted" cannot hold for an image
#: classifier, where any bytes are a schema-valid file and most are not a brain MRI.
EXCLUDED = "positive_data_acceptance"


def _run(url: str, folder: Path, examples: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCHEMATHESIS), "run", f"{url}/api/openapi.json", "--checks", "all",
         "--exclude-checks", EXCLUDED, "--phases", "examples,coverage,fuzzing",
         "--max-examples", os.environ.get("SCHEMATHESIS_EXAMPLES", examples),
         "--seed", "20261202", "--workers", "2", "--request-timeout", "60",
         "--no-shrink", "--warnings", "off", *extra],
        capture_output=True, text=True, timeout=600, cwd=folder)


def _requests_by_status(server) -> dict[int, int]:
    counts: dict[int, int] = {}
    for line in server.log_lines():
        if '"braintumor.request"' in line:
            status = json.loads(line)["status"]
            counts[status] = counts.get(status, 0) + 1
    return counts


def test_schemathesis_from_the_document_finds_nothing(tiny_model_path, tmp_path):
    server = start_server(tiny_model_path, tmp_path / "server.log", WORKERS="1",
                          MAX_PENDING="0")
    try:
        result = _run(server.url, tmp_path, "100")
    finally:
        server.stop()
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert "No issues found" in result.stdout
    assert "Traceback" not in server.log_path.read_text()
    assert max(_requests_by_status(server)) < 500


def test_schemathesis_with_keys_and_a_rate_limit_finds_nothing(tiny_model_path, tmp_path):
    """Keys on and a low limit: the fuzzed classify requests meet 200s, 4xx and 429s, and
    every one must still be as documented."""
    from braintumor.api.security import add_key

    key = add_key(tmp_path / "keys.txt", "fuzzer")
    server = start_server(tiny_model_path, tmp_path / "server.log", WORKERS="1",
                          API_KEYS_FILE=str(tmp_path / "keys.txt"), RATE_LIMIT="40/minute",
                          METRICS_REQUIRE_KEY="true")
    try:
        result = _run(server.url, tmp_path, "40", "--header", f"Authorization: Bearer {key}")
    finally:
        server.stop()
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    statuses = _requests_by_status(server)
    assert statuses.get(429, 0) > 0 and max(statuses) < 500
    assert key not in server.log_path.read_text()
