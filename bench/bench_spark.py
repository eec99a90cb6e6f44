"""Benchmark of `braintumor spark classify` against a plain single-process loop, on
local mode and on standalone clusters of one and two one-core workers.

Both classify the same images with the same model and the same steps (decode, the
not-a-brain-MRI input checks, canonical pixels, model input, calibrated prediction with
features in batches of 64, the OOD decision); neither writes heatmaps. Spark reads the
folder, as `braintumor spark classify --input DIR` does (a list of files with --limit).
For each master, Spark's figures are taken on one SparkSession: a cold job (the Python
workers start and each loads TensorFlow and the model), then warm ones (workers reused,
model cached). The session's start-up (JVM launch, executors registered) is reported on
its own. ``standalone:N`` starts a standalone cluster of N one-core, 3 GB workers on
this machine (pyspark's spark-class, braintumor.spark_session.standalone) for that master; each
executor's TensorFlow uses the task's one core. Prints figures, asserts nothing.

    python bench/bench_spark.py [--data DIR] [--limit N] [--model M]
        [--masters local[2],standalone:1,standalone:2]

Default data: the 1,311 Testing images under $BRAINTUMOR_DATA/Testing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BRAINTUMOR_DATA", REPO.parent / "shared/datasets/brain-tumor-mri"))
BATCH = 64


def list_files(root: Path, limit: int | None) -> list[Path]:
    """Image files below ``root`` (not in hidden folders); ``limit`` spreads over classes."""
    from braintumor.decoding import ALLOWED_EXTENSIONS

    files = sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower().lstrip(".") in ALLOWED_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if limit and limit < len(files):
        step = len(files) / limit
        files = [files[int(i * step)] for i in range(limit)]
    return files


def plain_loop(files: list[Path], settings) -> tuple[float, float, int]:
    """(model load s, classify s, images classified) in this process, no Spark: the API's
    Classifier.assess over batches of decoded files, as the Spark job runs it."""
    from braintumor.classify import Classifier
    from braintumor.decoding import decode_image
    from braintumor.errors import InvalidImageError
    from braintumor.model import load_model

    started = time.perf_counter()
    classifier = Classifier(load_model(settings), settings)
    loaded = time.perf_counter()
    done = 0
    for start in range(0, len(files), BATCH):
        decoded = []
        for path in files[start:start + BATCH]:
            try:
                decoded.append(decode_image(path.read_bytes()))
            except InvalidImageError:
                continue
        if decoded:
            done += sum(not a.refused and a.error is None
                        for a in classifier.assess(decoded, explain=False))
    return loaded - started, time.perf_counter() - loaded, done


def spark_runs(inputs: str | list[str], settings, runs: int) -> tuple[float, list[float], int]:
    """(session start-up s, seconds per classify job, rows of the last job)."""
    from braintumor.spark.classify_job import classify_images
    from braintumor.spark_session.session import job_session

    started = time.perf_counter()
    spark = job_session(settings.spark, {"spark.ui.enabled": "false"})
    startup = time.perf_counter() - started
    seconds, rows = [], 0
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        for run in range(runs):
            out = f"{tmp}/run{run}.parquet"
            began = time.perf_counter()
            classify_images(spark, inputs, settings).write.parquet(out)
            seconds.append(time.perf_counter() - began)
            rows = spark.read.parquet(out).where("error IS NULL").count()
    spark.stop()
    return startup, seconds, rows


def on_master(master: str, inputs: str | list[str], settings, runs: int
              ) -> tuple[float, list[float], int]:
    """:func:`spark_runs` on ``master``; ``standalone:N`` runs on a cluster started for it."""
    from braintumor.spark_session.standalone import LocalStandaloneCluster

    if not master.startswith("standalone:"):
        return spark_runs(inputs, settings.with_overrides(SPARK_MASTER=master), runs)
    workers = int(master.split(":", 1)[1])
    with LocalStandaloneCluster(workers=workers, cores=1, memory="3g") as cluster:
        return spark_runs(inputs, settings.with_overrides(
            SPARK_MASTER=cluster.master_url, SPARK_EXECUTOR_MEMORY="1g",
            SPARK_MASTER_WEBUI=cluster.webui_url), runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DATA / "Testing"))
    parser.add_argument("--limit", type=int, default=None, help="use N images (spread out)")
    parser.add_argument("--masters", default="local[2],standalone:1,standalone:2",
                        help="comma-separated: a Spark master, or standalone:N workers")
    parser.add_argument("--model", default=None, help="default: MODEL_PATH")
    parser.add_argument("--runs", type=int, default=2, help="Spark jobs: 1 cold + warm ones")
    args = parser.parse_args()

    from braintumor.config import load_settings

    settings = load_settings().with_overrides(SPARK_DRIVER_MEMORY="1g")
    if args.model:
        settings = settings.with_overrides(MODEL_PATH=Path(args.model))
    masters = [m.strip() for m in args.masters.split(",") if m.strip()]
    files = list_files(Path(args.data), args.limit)
    if not files:
        print(f"no images below {args.data}", file=sys.stderr)
        return 1
    print(f"{len(files)} images from {args.data}; model {settings.MODEL_PATH.name}; "
          f"masters {', '.join(masters)}; batches of {BATCH}; {os.cpu_count()} CPUs",
          flush=True)

    load_s, loop_s, loop_n = plain_loop(files, settings)
    loop_rate = loop_n / loop_s
    inputs = ([p.resolve().as_uri() for p in files] if args.limit
              else str(Path(args.data).resolve()))
    rows = [("plain loop: model load", load_s, None),
            ("plain loop: decode+preprocess+predict", loop_s, loop_rate)]
    best: dict[str, float] = {}
    for master in masters:
        startup_s, job_s, spark_n = on_master(master, inputs, settings, max(args.runs, 1))
        rows.append((f"{master}: session start-up", startup_s, None))
        for i, seconds in enumerate(job_s):
            label = "cold workers" if i == 0 else f"warm #{i}"
            rows.append((f"{master}: classify, {label}", seconds, spark_n / seconds))
        best[master] = max(spark_n / seconds for seconds in (job_s[1:] or job_s))
        print(f"  {master} done: {spark_n} rows without error", flush=True)
    print(f"\n{'step':<48}{'seconds':>10}{'images/s':>11}")
    for label, seconds, rate in rows:
        print(f"{label:<48}{seconds:>10.2f}{'' if rate is None else f'{rate:.1f}':>11}")
    print()
    for master, rate in best.items():
        print(f"{master}: best warm {rate:.1f} images/s = {rate / loop_rate:.2f}x the plain loop")
    if "standalone:1" in best and "standalone:2" in best:
        print(f"standalone, 2 workers / 1 worker: "
              f"{best['standalone:2'] / best['standalone:1']:.2f}x")
    print(f"classified by the plain loop: {loop_n} (rows without error: neither unreadable "
          "nor refused as not a brain MRI)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
