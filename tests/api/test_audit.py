"""The audit trail: a line per classification, nothing identifying, and no line lost when
the server is killed mid-load."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from PIL import Image

from braintumor.api import create_app
from braintumor.api.audit import FIELDS, verify_file, verify_lines
from conftest import encode, scan_like
from live_server import start_server

BIN = Path(sys.executable).parent / "braintumor"


def test_a_line_per_classification_with_hashes_and_no_names(tiny_settings, tiny_model,
                                                           tmp_path):
    trail = tmp_path / "audit.jsonl"
    client = create_app(tiny_settings.with_overrides(AUDIT_LOG=trail),
                        model=tiny_model).test_client()
    scan, colour = encode(scan_like()), encode(Image.new("RGB", (96, 96), (200, 20, 20)))
    sent = [(scan, 200), (colour, 422), (b"garbage", 400)]
    for i, (data, status) in enumerate(sent):
        response = client.post("/api/classify", data={"file": (io.BytesIO(data),
                                                               "Doe^Jane-1961.png")},
                               content_type="multipart/form-data",
                               headers={"X-Request-ID": f"audit-{i}"})
        assert response.status_code == status
    client.get("/api/health")  # not a classification: no line
    lines = trail.read_text().splitlines()
    assert len(lines) == 3 and "Doe" not in trail.read_text()
    answered, refused, bad = (json.loads(line) for line in lines)
    assert set(answered) == set(FIELDS)
    assert answered["request_id"] == "audit-0" and answered["status"] == 200
    assert answered["sha256"] == [hashlib.sha256(scan).hexdigest()]
    assert answered["model_version"] == "tiny-test" and answered["key"] is None
    assert answered["class"] in answered["probabilities"]
    assert answered["ood"]["flagged"] is False and answered["refusal"] is None
    assert refused["refusal"] == "NOT_BRAIN_MRI" and refused["class"] is None
    assert refused["ood"] == {"flagged": True}
    assert bad["refusal"] == "INVALID_IMAGE" and bad["ood"] is None
    assert verify_file(trail).ok


def test_verify_names_each_problem_by_line():
    good = {"time": "2026-01-01T00:00:00.000Z", "request_id": "r", "endpoint": "/api/classify",
            "status": 200, "key": None, "model_version": "v", "sha256": ["a" * 64],
            "class": "Glioma", "probabilities": {"Glioma": 100.0}, "ood": None,
            "refusal": None}
    lines = [json.dumps(good) + "\n",
             json.dumps({**good, "patient": "x"}) + "\n",
             json.dumps({**good, "sha256": ["nothex"]}) + "\n",
             json.dumps({**good, "status": "200"}) + "\n",
             "{not json\n",
             json.dumps(good)]  # no newline: a torn last write
    result = verify_lines(lines)
    assert result.lines == 6 and not result.ok
    assert [p.split(":")[0] for p in result.problems] == [
        "line 2", "line 3", "line 4", "line 5", "line 6"]
    assert verify_lines(lines[:1]).ok


def test_the_cli_verifies_a_file(tmp_path):
    trail = tmp_path / "audit.jsonl"
    trail.write_text("{}\n")
    result = subprocess.run([str(BIN), "audit", "verify", str(trail)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1 and "missing fields" in result.stderr


def test_killing_the_server_mid_load_loses_no_answered_request(tiny_model_path, tmp_path):
    trail = tmp_path / "audit.jsonl"
    server = start_server(tiny_model_path, tmp_path / "server.log", WORKERS="2",
                          AUDIT_LOG=str(trail))
    answered: list[str] = []
    stop = threading.Event()
    scan = encode(scan_like())

    def client(worker: int) -> None:
        for n in range(10_000):
            if stop.is_set():
                return
            request_id = f"c{worker}-{n}"
            try:
                response = requests.post(f"{server.url}/api/classify",
                                         files={"file": ("scan.png", scan)},
                                         headers={"X-Request-ID": request_id}, timeout=30)
            except requests.RequestException:
                return  # the server is gone
            if response.status_code == 200:
                answered.append(request_id)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.time() + 60
    while len(answered) < 40 and time.time() < deadline:
        time.sleep(0.05)
    workers = subprocess.run(["ps", "-o", "pid=", "--ppid", str(server.process.pid)],
                             capture_output=True, text=True).stdout.split()
    os.kill(server.process.pid, signal.SIGKILL)  # no clean-up of any kind
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    server.process.wait(timeout=30)
    stop.set()
    for thread in threads:
        thread.join(60)
    assert len(answered) >= 40
    in_file = {json.loads(line)["request_id"] for line in trail.read_text().splitlines()}
    assert set(answered) <= in_file
    assert verify_file(trail).ok
