"""Schemathesis fuzzes a live server from its own /api/openapi.json: no 5xx, and every
response (status, content type, headers, body) as the document says.

Bounded for `make test` on two cores: a fixed seed and 100 examples per operation (about
1,100 requests, 20 s here); SCHEMATHESIS_EXAMPLES changes the count for a run by hand.
(No --max-time: with one, Schemathesis keeps fuzzing until the time is spent.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from live_server import start_server

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
#: Every check but one: "a schema-valid request is accepted" cannot hold for an image
#: classifier, where any bytes are a schema-valid file and most are not a brain MRI.
EXCLUDED = "positive_data_acceptance"


def test_schemathesis_from_the_document_finds_nothing(tiny_model_path, tmp_path):
    server = start_server(tiny_model_path, tmp_path / "server.log", WORKERS="1",
                          MAX_PENDING="0")
    try:
        result = subprocess.run(
            [str(SCHEMATHESIS), "run", f"{server.url}/api/openapi.json", "--checks", "all",
             "--exclude-checks", EXCLUDED, "--phases", "examples,coverage,fuzzing",
             "--max-examples", os.environ.get("SCHEMATHESIS_EXAMPLES", "100"),
             "--seed", "20261202", "--workers", "2", "--request-timeout", "60",
             "--no-shrink", "--warnings", "off"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    finally:
        server.stop()
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert "No issues found" in result.stdout
    assert "Traceback" not in server.log_path.read_text()
