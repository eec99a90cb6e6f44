"""Benchmark of the classification service; prints figures, asserts nothing.

For each model (the shipped default, and a ResNet50 with random weights at 224x224x3):
start a real server with `braintumor serve`, time start-up to a healthy /api/health,
send N classify requests (Grad-CAM and all three PNGs included) from one client for
p50/p95 latency, then measure requests per second with 1, 2 and 4 concurrent clients,
and read the server's peak RSS. In this process, load the same model on the runtime the server
picks (ONNX Runtime for a model with a current graph) and time the bare forward pass (no
Grad-CAM, no HTTP) for the ratio, and the
not-a-brain-MRI check's own share of a request (input checks plus distances, on the
same upload; the features it uses come out of the forward pass at no extra cost).
With the default model, the same server then answers a 24-slice 256x256 MR series
(POST /api/classify-series, bench_series.py).

    python bench/bench_api.py [--requests 120] [--models default,resnet50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests
from bench_series import report, series_upload, time_series
from common import BIN, free_port, percentile, sample_upload, tree_peak_rss_mb


def bare_forward_p50(model_path: Path, runs: int = 100) -> float:
    from braintumor.config import Settings
    from braintumor.model import load_serving_model

    # the runtime the server picks for this model (ONNX Runtime for a current graph)
    model = load_serving_model(Settings(MODEL_PATH=model_path))
    spec = model.input_spec
    x = np.random.default_rng(0).uniform(0, 1, (1, *spec.size, spec.channels))
    x = x.astype(np.float32)
    for _ in range(10):
        model.outputs(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model.outputs(x)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def ood_check_p50(model_path: Path, upload: tuple[str, bytes], runs: int = 200) -> float:
    """p50 in ms of what the OOD check adds to one classify request (braintumor.ood).

    Timed inside the served chain itself (:meth:`Classifier.assess`, as a request runs
    it): the input checks plus the distances; the features come out of the model pass.
    """
    from braintumor.classify import Classifier
    from braintumor.config import Settings
    from braintumor.decoding import decode_image
    from braintumor.model import load_serving_model

    settings = Settings(MODEL_PATH=model_path)
    classifier = Classifier(load_serving_model(settings), settings)
    decoded = decode_image(upload[1])
    times = []
    for _ in range(runs):
        seconds = classifier.assess([decoded])[0].seconds
        times.append((seconds["checks"] + seconds.get("distances", 0.0)) * 1000)
    return statistics.median(times)


def bench_server(name: str, model_path: Path, n: int, upload: tuple[str, bytes]) -> dict:
    port = free_port()
    env = dict(os.environ, MODEL_PATH=str(model_path), FLASK_PORT=str(port),
               FLASK_HOST="127.0.0.1", LOG_LEVEL="WARNING")
    if name == "resnet50":
        env["INPUT_SCALING"] = "caffe"
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    server = subprocess.Popen([str(BIN), "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                if requests.get(f"{url}/api/health", timeout=30).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
            if server.poll() is not None or time.perf_counter() - started > 180:
                raise RuntimeError(f"{name}: server did not become healthy")
        ready_s = time.perf_counter() - started
        session = requests.Session()
        filename, data = upload

        def classify(sess: requests.Session) -> float:
            t0 = time.perf_counter()
            response = sess.post(f"{url}/api/classify", files={"file": (filename, data)},
                                 timeout=60)
            response.raise_for_status()
            return (time.perf_counter() - t0) * 1000

        for _ in range(5):
            classify(session)
        latencies = [classify(session) for _ in range(n)]
        throughput = {}
        for clients in (1, 2, 4):
            sessions = [requests.Session() for _ in range(clients)]
            per_client = max(10, n // 4)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(lambda s, k=per_client: [classify(s) for _ in range(k)], sessions))
            throughput[clients] = clients * per_client / (time.perf_counter() - t0)
        series = None
        if name == "default":  # a 24-slice series on the same server (bench_series.py)
            files, origin = series_upload()
            series = (time_series(url, files, max(10, n // 6)), origin)
        rss = tree_peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    forward = bare_forward_p50(model_path)
    p50 = statistics.median(latencies)
    return {"model": name, "ready_s": ready_s, "p50": p50, "p95": percentile(latencies, 95),
            "forward_p50": forward, "ratio": p50 / forward,
            "ood_p50": ood_check_p50(model_path, upload), "rps": throughput,
            "peak_rss_mb": rss, "requests": n, "series": series}


def resnet50_model(folder: Path) -> Path:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((224, 224, 3)),
        keras.applications.ResNet50(include_top=False, weights=None, pooling="avg"),
        keras.layers.Dense(4, activation="softmax"),
    ])
    path = folder / "resnet50-random.keras"
    model.save(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=120)
    parser.add_argument("--models", default="default,resnet50")
    args = parser.parse_args()
    upload = sample_upload()
    print(f"upload: {upload[0]} ({len(upload[1])} bytes); {os.cpu_count()} CPUs")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            if name == "default":
                from braintumor.config import DEFAULT_MODEL_PATH

                path = DEFAULT_MODEL_PATH
            else:
                path = resnet50_model(Path(tmp))
            results.append(bench_server(name, path, args.requests, upload))
    header = (f"{'model':<10} {'ready s':>8} {'p50 ms':>8} {'p95 ms':>8} {'fwd p50':>8} "
              f"{'ratio':>6} {'OOD ms':>6} {'rps@1':>6} {'rps@2':>6} {'rps@4':>6} {'RSS MB':>7}")
    print(header)
    for r in results:
        print(f"{r['model']:<10} {r['ready_s']:8.2f} {r['p50']:8.1f} {r['p95']:8.1f} "
              f"{r['forward_p50']:8.1f} {r['ratio']:6.2f} {r['ood_p50']:6.2f} {r['rps'][1]:6.1f} "
              f"{r['rps'][2]:6.1f} {r['rps'][4]:6.1f} {r['peak_rss_mb']:7.0f}")
    print(f"(p50/p95 over {args.requests} sequential POST /api/classify with Grad-CAM and "
          "three PNGs; fwd p50 = bare compiled forward pass, batch 1, same process as the "
          "model load; OOD ms = the not-a-brain-MRI check's share of a request: input "
          "checks for any model, plus the feature and layout distances where the model has "
          "fitted statistics)")
    for r in results:
        if r["series"]:
            print(report(*r["series"]))


if __name__ == "__main__":
    main()
