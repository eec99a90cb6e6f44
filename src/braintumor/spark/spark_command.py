"""``braintumor spark preprocess | classify | cluster``: the Spark jobs on the command line.

The jobs run on SPARK_MASTER; ``--conf KEY=VALUE`` adds any Spark property, as
spark-submit's option does. A failure is one line (:func:`run_spark_job`). ``cluster``
starts a standalone cluster on this machine (:mod:`braintumor.spark_session.standalone`) and
keeps it until interrupted, for trying the jobs on ``spark://`` without a cluster.
:func:`main` is ``braintumor spark`` alone, as spark-submit runs it (``spark/submit.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from types import FrameType

from braintumor.command_line import run_command
from braintumor.config import Settings
from braintumor.errors import ConfigError
from braintumor.spark.classify_job import run_classify
from braintumor.spark.preprocess import run_preprocess
from braintumor.spark.series import run_classify_series
from braintumor.spark_session.commands import SparkJobError, run_spark_job
from braintumor.spark_session.session import job_session
from braintumor.spark_session.standalone import LocalStandaloneCluster


def spark_conf(pairs: list[str]) -> dict[str, str]:
    """``--conf KEY=VALUE`` options (as spark-submit takes them) as a dict."""
    conf = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--conf", f"expected KEY=VALUE, got {pair!r}")
        conf[key.strip()] = value
    return conf


def cmd_preprocess(args: argparse.Namespace) -> int:
    settings = args.settings  # loaded once by main()
    conf = spark_conf(args.conf)
    counts = run_spark_job(lambda: run_preprocess(
        settings, args.input, args.output, size=args.size, overwrite=args.overwrite,
        partitions=args.partitions, framing=args.framing,
        spark=job_session(settings.spark, conf)))
    print(json.dumps({"output": args.output, **counts}))
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    settings = args.settings  # loaded once by main()
    conf = spark_conf(args.conf)
    job = run_classify_series if args.series else run_classify  # a row per series or image
    counts = run_spark_job(lambda: job(
        settings, args.input, args.output, fmt=args.format, model_path=args.model,
        heatmap_dir=args.heatmaps, overwrite=args.overwrite, partitions=args.partitions,
        spark=job_session(settings.spark, conf)))
    print(json.dumps({"output": args.output, **counts}))
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    """Start the cluster, print how to use it (one JSON line), wait for Ctrl-C or SIGTERM."""
    stop = threading.Event()

    def interrupted(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, interrupted)
    cluster = LocalStandaloneCluster(workers=args.workers, cores=args.cores,
                                     memory=args.memory)
    try:
        try:
            cluster.start()
        except (RuntimeError, FileNotFoundError) as exc:
            raise SparkJobError(f"cannot start the standalone cluster: {exc}") from None
        print(json.dumps({"SPARK_MASTER": cluster.master_url,
                          "SPARK_MASTER_WEBUI": cluster.webui_url,
                          "workers": args.workers, "cores": args.cores,
                          "memory": args.memory}), flush=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stop the cluster, exit 0
            stop.wait()
    finally:
        cluster.stop()
        signal.signal(signal.SIGTERM, previous)
    return 0


def _job_options(q: argparse.ArgumentParser) -> None:
    q.add_argument("--partitions", type=int, default=None, help="repartition the files first")
    q.add_argument("--overwrite", action="store_true")
    q.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                   help="a Spark property, as spark-submit's --conf (repeatable), e.g. "
                        "spark.archives=env.tar.gz#environment")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``spark`` and its sub-commands on the main command's sub-parsers."""
    p = sub.add_parser("spark", help="batch jobs on Spark (SPARK_MASTER): preprocess, "
                                     "classify; cluster: a standalone cluster here")
    spark_sub = p.add_subparsers(dest="spark_command", required=True)
    q = spark_sub.add_parser("preprocess", help="class-per-folder images -> Parquet of uint8 "
                                                "canonical pixels, labels, errors")
    q.add_argument("--input", required=True, help="folder URI (path, file://, hdfs://...)")
    q.add_argument("--output", required=True, help="Parquet URI to write")
    q.add_argument("--size", type=int, default=160)
    q.add_argument("--framing", default="stretch", choices=["stretch", "head"],
                   help="how pictures are fitted to the size: the model's InputSpec.framing")
    _job_options(q)
    q.set_defaults(func=cmd_preprocess)
    q = spark_sub.add_parser("classify", help="batch predictions for every image below --input")
    q.add_argument("--input", required=True, help="folder URI (path, file://, hdfs://...)")
    q.add_argument("--output", required=True, help="table URI to write")
    q.add_argument("--format", default="parquet", choices=["parquet", "csv"])
    q.add_argument("--heatmaps", default=None, help="folder for Grad-CAM overlay PNGs")
    q.add_argument("--series", action="store_true",
                   help="one row per series (DICOM files grouped by SeriesInstanceUID; a "
                        "zip or NIfTI file alone), as POST /api/classify-series answers it")
    q.add_argument("--model", default=None, help="model file or URI (default MODEL_PATH)")
    _job_options(q)
    q.set_defaults(func=cmd_classify)
    q = spark_sub.add_parser("cluster", help="a standalone master and workers on this "
                                             "machine (pyspark's spark-class), until Ctrl-C")
    q.add_argument("--workers", type=int, default=2)
    q.add_argument("--cores", type=int, default=1, help="cores per worker")
    q.add_argument("--memory", default="3g", help="memory per worker, e.g. 3g")
    q.set_defaults(func=cmd_cluster)


def build_parser(settings: Settings | None = None) -> argparse.ArgumentParser:
    """The ``braintumor`` command line with its ``spark`` sub-commands only."""
    parser = argparse.ArgumentParser(prog="braintumor", description=__doc__)
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    """``braintumor spark ARGS`` (``sys.argv[1:]`` by default), as ``braintumor`` runs it."""
    return run_command(build_parser, ["spark", *(sys.argv[1:] if argv is None else argv)])
