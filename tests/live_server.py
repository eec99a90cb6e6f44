"""A real `braintumor serve` (gunicorn) for the tests that need processes, not a test client.

Its output goes to a file the test can read (JSON log lines), it is found by its own
port, and it is stopped by its own pid: never by name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

BIN = Path(sys.executable).parent / "braintumor"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    process: subprocess.Popen
    url: str
    log_path: Path

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


def start_server(model_path: Path, log_path: Path, timeout: float = 120,
                 **settings: str) -> LiveServer:
    """Start the server with these settings on a free port; wait until /readyz is 200."""
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("FLASK_PORT", "MODEL_PATH", "PROMETHEUS_MULTIPROC_DIR")}
    env.update({"MODEL_PATH": str(model_path), "FLASK_PORT": str(port),
                "FLASK_HOST": "127.0.0.1", **settings})
    handle = open(log_path, "w")  # noqa: SIM115  # the process writes it while we run
    process = subprocess.Popen([str(BIN), "serve"], env=env, stdout=handle,
                               stderr=subprocess.STDOUT)
    handle.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log_path.read_text()}")
        try:
            if requests.get(f"{url}/readyz", timeout=5).status_code == 200:
                return LiveServer(process, url, log_path)
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.3)
    process.kill()
    process.wait()
    raise RuntimeError(f"server did not become ready:\n{log_path.read_text()}")
