"""What the benchmarks share: where the repository, the dataset and the command are, an
upload to time, a free port, a server's peak memory and percentiles.

The benchmark scripts import this module and never each other.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import numpy as np

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
