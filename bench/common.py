"""What the benchmarks share: where the repository, the dataset and the command are, an
upload to time, a free port, a server's peak memory and percentiles.

The benchmark scripts import this module and never each other.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import requests

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BRAINTUMOR_DATA", REPO.parent / "shared/datasets/brain-tumor-mri"))
BIN = Path(sys.executable).parent / "braintumor"


def sample_upload() -> tuple[str, bytes]:
    """A real Testing scan when the dataset is there, else a synthetic 224x224 slice."""
    real = sorted((DATA / "Testing" / "glioma").glob("*.jpg"))
    if real:
        return real[0].name, real[0].read_bytes()
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import encode, scan_like

    return "synthetic.png", encode(scan_like((224, 224)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tree_peak_rss_mb(pid: int) -> float:
    """Peak RSS (VmHWM) of a process and its children, in MB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total / 1024


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


@contextmanager
def served(extra_env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """(base URL, server process) of `braintumor serve` on a free loopback port, once it
    answers /api/health; stopped when the block ends."""
    port = free_port()
    env = dict(os.environ, FLASK_PORT=str(port), FLASK_HOST="127.0.0.1", LOG_LEVEL="WARNING",
               **(extra_env or {}))
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([str(BIN), "serve"], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"{url}/api/health", timeout=30).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not become healthy")
        yield url, server
    finally:
        server.terminate()
        server.wait(timeout=30)
