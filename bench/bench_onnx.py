"""ONNX Runtime against the Keras path for one model; prints figures, asserts nothing.

Exports the model (a copy, in a temporary folder) with braintumor.model.onnx_export and
reports the export's time and the graph's size. Then, ``--starts`` times for each runtime
in turn, starts a fresh Python process that imports only what that runtime needs
(``braintumor.model.onnx_runtime``, or ``braintumor.model.load_model``), loads the model
(warm-up included, as the service does at start) and answers one image (decode,
preprocess, the explained pass: probabilities, features, Grad-CAM); cold start is from
process start to that answer, measured by this process. The child then answers the same
image ``--runs`` times for p50/p95 latency and reports its RSS after the first answer and
after the warm batch, and whether TensorFlow was loaded. Both runtimes get ``--threads``
intra-op threads (TensorFlow: intra- and one inter-op thread), as one of several workers
sharing the cores would.

    python bench/bench_onnx.py [--model models/braintumor-cnn.keras] [--threads 1]
                               [--runs 100] [--starts 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BRAINTUMOR_DATA", REPO.parent / "shared/datasets/brain-tumor-mri"))


def sample_image(folder: Path) -> Path:
    """A real Testing scan when the dataset is there, else a synthetic slice."""
    real = sorted((DATA / "Testing" / "glioma").glob("*.jpg"))
    if real:
        return real[0]
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import encode, scan_like

    path = folder / "synthetic.png"
    path.write_bytes(encode(scan_like((224, 224))))
    return path


def memory_mb() -> tuple[float, float]:
    """(RSS, peak RSS) of this process in MB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            name, value = line.split(":")
            fields[name] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def child(runtime: str, model_path: str, image: str, threads: int, runs: int) -> None:
    """One cold process: load, answer once, print a line; then the warm batch."""
    start = time.perf_counter()
    from braintumor.preprocessing import preprocess_bytes

    if runtime == "onnx":
        from braintumor.model.onnx_runtime import load_onnx_model

        imported = time.perf_counter()
        model = load_onnx_model(Path(model_path), threads=threads)
    else:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        from braintumor.config import Settings
        from braintumor.model import load_model

        imported = time.perf_counter()
        model = load_model(Settings(MODEL_PATH=Path(model_path)))
    loaded = time.perf_counter()
    data = Path(image).read_bytes()

    def answer():
        return model.explain(preprocess_bytes(data, model.input_spec))

    first = answer()
    answered = time.perf_counter()
    rss_first, _ = memory_mb()
    print("READY", flush=True)
    times = []
    for _ in range(runs):
        begin = time.perf_counter()
        answer()
        times.append((time.perf_counter() - begin) * 1000)
    rss_warm, peak = memory_mb()
    print(json.dumps({
        "import_s": imported - start, "load_s": loaded - imported,
        "first_answer_s": answered - loaded, "rss_first_mb": rss_first,
        "rss_warm_mb": rss_warm, "peak_rss_mb": peak,
        "p50_ms": statistics.median(times), "p95_ms": float(sorted(times)[
            min(len(times) - 1, round(0.95 * (len(times) - 1)))]),
        "tensorflow_loaded": "tensorflow" in sys.modules,
        "class": int(first.probabilities.argmax()),
    }), flush=True)


def cold_start(runtime: str, model_path: Path, image: Path, threads: int, runs: int
               ) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", runtime, "--model", str(model_path),
         "--image", str(image), "--threads", str(threads), "--runs", str(runs)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO, env=env)
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        if line.strip() == "READY":
            cold = time.perf_counter() - start
        else:
            lines.append(line)
    process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"the {runtime} child failed ({process.returncode})")
    figures = json.loads(lines[-1])
    figures["cold_start_s"] = cold
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models/braintumor-cnn.keras")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--child", choices=["onnx", "keras"], help=argparse.SUPPRESS)
    parser.add_argument("--image", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, str(args.model), args.image, args.threads, args.runs)
        return

    with tempfile.TemporaryDirectory() as folder:
        model_path = Path(folder) / args.model.name
        shutil.copy(args.model, model_path)
        image = sample_image(Path(folder))
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        start = time.perf_counter()
        import tensorflow  # noqa: F401  (timed apart from the export)
        import tf2onnx  # noqa: F401

        from braintumor.model.onnx_export import export_model_file

        imported = time.perf_counter()
        export = export_model_file(model_path)
        stored = time.perf_counter()
        print(f"model {args.model.name}: {args.model.stat().st_size / 1e6:.2f} MB .keras; "
              f"ONNX graph {len(export.graph) / 1e6:.2f} MB, file with it "
              f"{model_path.stat().st_size / 1e6:.2f} MB")
        print(f"export: {stored - imported:.1f} s (Keras load, rewiring and tf2onnx "
              f"{export.manifest['export_seconds']:.1f} s, gradient and output checks, "
              f"archive write); importing TensorFlow and tf2onnx {imported - start:.1f} s; "
              f"{export.manifest['exporter']}; Grad-CAM as CAM: "
              f"{export.manifest['cam']['exact']}")
        results: dict[str, list[dict]] = {"onnx": [], "keras": []}
        for _ in range(args.starts):
            for runtime in results:  # in turn, so that both see the same machine load
                results[runtime].append(cold_start(runtime, model_path, image,
                                                   args.threads, args.runs))
    print(f"\none image ({image.name}), {args.threads} intra-op thread(s), "
          f"{args.starts} cold starts each (median), {args.runs} warm answers each; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    keys = [("cold start to first answer, s", "cold_start_s", "{:.2f}"),
            ("  imports, s", "import_s", "{:.2f}"), ("  load + warm-up, s", "load_s", "{:.2f}"),
            ("  first answer, s", "first_answer_s", "{:.3f}"),
            ("RSS after one answer, MB", "rss_first_mb", "{:.0f}"),
            ("RSS after the warm batch, MB", "rss_warm_mb", "{:.0f}"),
            ("peak RSS, MB", "peak_rss_mb", "{:.0f}"),
            ("explained answer p50, ms", "p50_ms", "{:.1f}"),
            ("explained answer p95, ms", "p95_ms", "{:.1f}")]
    print(f"{'':34}{'onnxruntime':>14}{'keras':>14}")
    for label, key, form in keys:
        row = [form.format(statistics.median(r[key] for r in results[runtime]))
               for runtime in results]
        print(f"{label:34}{row[0]:>14}{row[1]:>14}")
    loaded = [any(r["tensorflow_loaded"] for r in results[runtime]) for runtime in results]
    print(f"{'TensorFlow loaded':34}{loaded[0]!s:>14}{loaded[1]!s:>14}")
    same = results["onnx"][0]["class"] == results["keras"][0]["class"]
    print(f"{'same class':34}{same!s:>14}")

if __name__ == "__main__":
    main()
