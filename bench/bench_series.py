"""Series benchmark: a 24-slice 256x256 MR series through POST /api/classify-series.

The series is 24 Testing scans (the four classes in turn) resized to 256x256 and written
as 12-bit MR DICOM with positions, as a scanner exports them (synthetic slices without
the dataset). Each request uploads all 24 files and gets every slice's answer, the
series answer and the key slice's three Grad-CAM PNGs. `make bench` runs this against
the same server as the single-image figures (bench_api.py); run alone, it starts its
own server with the default model:

    python bench/bench_series.py [--requests 20] [--slices 24]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import requests
from common import DATA, REPO, served, tree_peak_rss_mb

#: The target for a 24-slice series on two cores, over HTTP.
TARGET_MS = 1000.0


def series_upload(slices: int = 24, size: int = 256) -> tuple[list[bytes], str]:
    """(the DICOM files, where the pictures came from)."""
    sys.path.insert(0, str(REPO / "tests"))
    from PIL import Image

    from series_helpers import series_files, synthetic_pictures

    folders = ["glioma", "meningioma", "notumor", "pituitary"]
    lists = [sorted((DATA / "Testing" / f).glob("*.jpg")) for f in folders]
    if all(lists):
        pictures = [Image.open(lists[i % 4][i // 4]).convert("L").resize((size, size))
                    for i in range(slices)]
        origin = "Testing scans"
    else:
        pictures = synthetic_pictures(slices, size=(size, size))
        origin = "synthetic slices"
    return series_files(pictures, spacing=5.0), origin


def time_series(url: str, files: list[bytes], requests_n: int) -> dict:
    """p50/p95 of POST /api/classify-series with ``files``, after two warm-up requests."""
    session = requests.Session()

    def once() -> tuple[float, dict]:
        parts = [("file", (f"IM{i:04d}.dcm", data, "application/dicom"))
                 for i, data in enumerate(files)]
        t0 = time.perf_counter()
        response = session.post(f"{url}/api/classify-series", files=parts, timeout=120)
        elapsed = (time.perf_counter() - t0) * 1000
        response.raise_for_status()
        return elapsed, response.json()

    once()
    _, body = once()
    latencies = sorted(once()[0] for _ in range(requests_n))
    return {"p50": statistics.median(latencies),
            "p95": latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))],
            "server_ms": body["processing_time_ms"], "slices": len(files),
            "answered": body["summary"]["slices_answered"],
            "mb": sum(len(f) for f in files) / 1e6, "requests": requests_n}


def report(result: dict, origin: str) -> str:
    verdict = ("" if result["slices"] != 24 else
               f"; {'within' if result['p50'] <= TARGET_MS else 'OVER'} the "
               f"{TARGET_MS:.0f} ms target")
    return (f"series: {result['slices']} slices 256x256 12-bit MR DICOM ({origin}, "
            f"{result['mb']:.1f} MB), POST /api/classify-series x{result['requests']}: "
            f"p50 {result['p50']:.0f} ms, p95 {result['p95']:.0f} ms over HTTP "
            f"(server {result['server_ms']:.0f} ms; {result['answered']} slices answered)"
            f"{verdict}")


def main() -> None:

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--slices", type=int, default=24)
    args = parser.parse_args()
    files, origin = series_upload(args.slices)
    with served() as (url, server):
        result = time_series(url, files, args.requests)
        rss = tree_peak_rss_mb(server.pid)
    print(report(result, origin) + f"; server peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
