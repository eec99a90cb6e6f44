"""Benchmark of `braintumor spark classify` against a plain single-process loop.

Both classify the same images with the same model and the same steps (decode, the
not-a-brain-MRI input checks, canonical pixels, model input, calibrated prediction with
features in batches of 64, the OOD decision); neither writes heatmaps. Spark reads the
folder, as `braintumor spark classify --input DIR` does (a list of files with --limit).
Spark's figures are taken twice on one SparkSession: cold (the Python workers start and
each loads TensorFlow and the model) and warm (workers reused, model cached). The
session's start-up (JVM launch) is reported on its own. Prints figures, asserts nothing.

    python bench/bench_spark.py [--data DIR] [--limit N] [--master local[2]] [--model M]

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
    from braintumor.spark.classify import classify_images
    from braintumor.spark.session import build_session

    started = time.perf_counter()
    spark = build_session(settings.spark, extra_conf={"spark.ui.enabled": "false"})
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DATA / "Testing"))
    parser.add_argument("--limit", type=int, default=None, help="use N images (spread out)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--model", default=None, help="default: MODEL_PATH")
    parser.add_argument("--runs", type=int, default=2, help="Spark jobs: 1 cold + warm ones")
    args = parser.parse_args()

    from braintumor.config import load_settings

    settings = load_settings().with_overrides(SPARK_MASTER=args.master)
    if args.model:
        settings = settings.with_overrides(MODEL_PATH=Path(args.model))
    files = list_files(Path(args.data), args.limit)
    if not files:
        print(f"no images below {args.data}", file=sys.stderr)
        return 1
    print(f"{len(files)} images from {args.data}; model {settings.MODEL_PATH.name}; "
          f"Spark {args.master}; batches of {BATCH}; {os.cpu_count()} CPUs", flush=True)

    load_s, loop_s, loop_n = plain_loop(files, settings)
    inputs = ([p.resolve().as_uri() for p in files] if args.limit
              else str(Path(args.data).resolve()))
    startup_s, job_s, spark_n = spark_runs(inputs, settings, max(args.runs, 1))

    rows = [("plain loop: model load", load_s, None),
            ("plain loop: decode+preprocess+predict", loop_s, loop_n / loop_s),
            ("spark: SparkSession start-up", startup_s, None)]
    for i, seconds in enumerate(job_s):
        label = "spark classify, cold workers" if i == 0 else f"spark classify, warm #{i}"
        rows.append((label, seconds, spark_n / seconds))
    print(f"\n{'step':<42}{'seconds':>10}{'images/s':>11}")
    for label, seconds, rate in rows:
        print(f"{label:<42}{seconds:>10.2f}{'' if rate is None else f'{rate:.1f}':>11}")
    warm = [spark_n / seconds for seconds in job_s[1:]]
    if warm:
        print(f"\nwarm Spark / plain loop: {max(warm) / (loop_n / loop_s):.2f}x")
    print(f"classified: plain loop {loop_n}, spark {spark_n} (rows without error: "
          "neither unreadable nor refused as not a brain MRI)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
