"""The real server process: gunicorn started by `braintumor serve`, and start-up errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from conftest import encode, scan_like

BIN = Path(sys.executable).parent / "braintumor"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FLASK_PORT", "MODEL_PATH")}
    env.update(overrides)
    return env


@pytest.fixture(scope="module")
def server(tiny_model_path):
    port = _free_port()
    process = subprocess.Popen(
        [str(BIN), "serve"], env=_env(MODEL_PATH=str(tiny_model_path), FLASK_PORT=str(port),
                                      FLASK_HOST="127.0.0.1"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if requests.get(f"{url}/api/health", timeout=10).status_code == 200:
                break
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail(f"server did not become healthy:\n{process.communicate()[0]}")
    yield url
    process.terminate()
    process.wait(timeout=30)


def test_gunicorn_serves_the_api(server):
    data = encode(scan_like())
    response = requests.post(f"{server}/api/classify", files={"file": ("scan.png", data)},
                             timeout=30)
    assert response.status_code == 200
    assert response.json()["success"] is True
    assert requests.get(f"{server}/api/classes", timeout=5).json()["total_classes"] == 4


def test_oversized_upload_gets_413_from_the_real_server(server):
    big = b"\x00" * (17 * 1024 * 1024)
    response = requests.post(f"{server}/api/classify", files={"file": ("big.png", big)},
                             timeout=60)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "FILE_TOO_LARGE"
    assert requests.get(f"{server}/api/health", timeout=5).json()["status"] == "healthy"


def _start_fails(**env: str) -> str:
    result = subprocess.run([str(BIN), "serve"], env=_env(**env), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    return result.stderr


def test_unparsable_port_stops_start_up_with_one_line(tiny_model_path):
    stderr = _start_fails(MODEL_PATH=str(tiny_model_path), FLASK_PORT="fivethousand")
    assert "error: FLASK_PORT: expected a whole number" in stderr
    assert "Traceback" not in stderr


def test_missing_model_stops_start_up_with_one_line(tmp_path):
    stderr = _start_fails(MODEL_PATH=str(tmp_path / "absent.keras"),
                          FLASK_PORT=str(_free_port()))
    assert "error: MODEL_PATH: no model file at" in stderr
    assert "Traceback" not in stderr


def test_model_without_four_classes_stops_start_up(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(2, 3),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, activation="softmax")])
    path = tmp_path / "three.keras"
    model.save(path)
    stderr = _start_fails(MODEL_PATH=str(path), FLASK_PORT=str(_free_port()))
    assert "error: MODEL_PATH: the model's output has shape (None, 3)" in stderr
    assert "Traceback" not in stderr
