"""Whole-volume benchmark: a 155-slice 240x240 NIfTI through POST /api/classify-series.

The volume is nilearn's bundled MNI152 T1 template (a real head, 1 mm, 197x233x189),
padded to 240x240 in plane and resampled to 155 axial slices (the BraTS grid's size), or
a synthetic head of that size when nilearn is not installed; no dataset file is read.
Each request uploads the gzipped NIfTI and gets every slice's answer, the series answer
and the key slice's three Grad-CAM pictures. On the same server, the single-slice figure
(POST /api/classify of one upload, bench/common.py's) is timed too and printed next to it.

    python bench/bench_volume.py [--requests 3] [--single 20] [--model PATH]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import os
import time
from pathlib import Path

import numpy as np
import requests
from common import percentile, sample_upload, served, tree_peak_rss_mb

SHAPE = (240, 240, 155)


def _template() -> tuple[np.ndarray, str] | None:
    try:
        import nilearn
    except ImportError:
        return None
    import nibabel as nib

    path = (Path(nilearn.__file__).parent / "datasets" / "data"
            / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    if not path.is_file():
        return None
    image = nib.as_closest_canonical(nib.load(str(path)))
    return np.asarray(image.get_fdata(), dtype=np.float32), "MNI152 template resampled"


def _synthetic() -> tuple[np.ndarray, str]:
    x, y, z = np.ogrid[-1:1:240j, -1:1:240j, -1:1:155j]
    head = ((x / 0.7) ** 2 + (y / 0.85) ** 2 + (z / 0.9) ** 2) <= 1.0
    brain = ((x / 0.6) ** 2 + (y / 0.75) ** 2 + (z / 0.8) ** 2) <= 1.0
    rng = np.random.default_rng(0)
    volume = np.where(brain, 100.0, np.where(head, 160.0, 0.0)) + rng.normal(0, 5, head.shape)
    return np.clip(volume, 0, None).astype(np.float32), "synthetic head"


def volume_upload() -> tuple[bytes, str]:
    """(a gzipped 240x240x155 NIfTI, where it came from)."""
    import nibabel as nib
    from scipy import ndimage

    found = _template()
    if found is None:
        volume, origin = _synthetic()
        zooms = (1.0, 1.0, 1.0)
    else:
        data, origin = found
        padded = np.zeros((*SHAPE[:2], data.shape[2]), dtype=np.float32)
        w, h = min(data.shape[0], SHAPE[0]), min(data.shape[1], SHAPE[1])
        x0, y0 = (SHAPE[0] - w) // 2, (SHAPE[1] - h) // 2
        sx, sy = (data.shape[0] - w) // 2, (data.shape[1] - h) // 2
        padded[x0:x0 + w, y0:y0 + h] = data[sx:sx + w, sy:sy + h]
        volume = ndimage.zoom(padded, (1.0, 1.0, SHAPE[2] / data.shape[2]), order=1)
        zooms = (1.0, 1.0, data.shape[2] / SHAPE[2])
    affine = np.diag([*zooms, 1.0])
    raw = nib.Nifti1Image(np.round(volume).astype(np.int16), affine).to_bytes()
    return gzip.compress(raw, compresslevel=6), origin


def time_volume(url: str, data: bytes, requests_n: int) -> dict:
    """Seconds of POST /api/classify-series with ``data``, after one warm-up request."""
    session = requests.Session()

    def once() -> tuple[float, dict]:
        t0 = time.perf_counter()
        response = session.post(f"{url}/api/classify-series",
                                files=[("file", ("volume.nii.gz", data,
                                                 "application/gzip"))], timeout=600)
        elapsed = time.perf_counter() - t0
        response.raise_for_status()
        return elapsed, response.json()

    once()
    timed = [once() for _ in range(requests_n)]
    seconds = [elapsed for elapsed, _ in timed]
    body = timed[-1][1]
    pictures = body["key_slice"]["visualization"]
    return {"p50_s": percentile(seconds, 50), "max_s": max(seconds), "requests": requests_n,
            "server_s": percentile([b["processing_time_ms"] / 1000.0 for _, b in timed], 50),
            "slices": body["series"]["slice_count"],
            "answered": body["summary"]["slices_answered"],
            "pictures": sorted(pictures),
            "pictures_kb": sum(len(base64.b64decode(v)) for v in pictures.values()) / 1e3,
            "answer": body["summary"]["class"]}


def time_single(url: str, upload: tuple[str, bytes], n: int) -> float:
    """p50 in ms of POST /api/classify with one upload, after three warm-up requests."""
    session = requests.Session()
    name, data = upload

    def once() -> float:
        t0 = time.perf_counter()
        response = session.post(f"{url}/api/classify", files={"file": (name, data)},
                                timeout=60)
        response.raise_for_status()
        return (time.perf_counter() - t0) * 1000

    for _ in range(3):
        once()
    return percentile([once() for _ in range(n)], 50)


def report(volume: dict, origin: str, mb: float, single_ms: float) -> str:
    per_slice = 1000.0 * volume["p50_s"] / max(volume["slices"], 1)
    return (f"volume: {volume['slices']} slices 240x240 NIfTI ({origin}, {mb:.1f} MB "
            f"gzipped), POST /api/classify-series x{volume['requests']}: p50 "
            f"{volume['p50_s']:.2f} s over HTTP (server {volume['server_s']:.2f} s, "
            f"{per_slice:.0f} ms per slice; {volume['answered']} slices answered, "
            f"'{volume['answer']}'; key slice's {len(volume['pictures'])} pictures, "
            f"{volume['pictures_kb']:.0f} KB) | single slice: POST /api/classify p50 "
            f"{single_ms:.0f} ms on the same server ({os.cpu_count()} cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3)
    parser.add_argument("--single", type=int, default=20,
                        help="single-slice requests for the figure printed beside")
    parser.add_argument("--model", default=None, help="MODEL_PATH (default: the default)")
    args = parser.parse_args()
    data, origin = volume_upload()
    extra = {"MODEL_PATH": str(Path(args.model).resolve())} if args.model else {}
    with served(extra) as (url, server):
        volume = time_volume(url, data, args.requests)
        single = time_single(url, sample_upload(), args.single)
        rss = tree_peak_rss_mb(server.pid)
    print(report(volume, origin, len(data) / 1e6, single) + f"; server peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
