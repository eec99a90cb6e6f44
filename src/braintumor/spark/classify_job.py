"""``braintumor spark classify``: calibrated predictions for many images, as a table.

The model file is shipped to the executors with ``SparkContext.addFile`` (a local path,
``hdfs://`` or anything Hadoop reads) and loaded once per Python worker: Spark reuses its
Python workers between tasks, and :data:`_MODELS` keeps the loaded model there, so a job
over thousands of images pays the TensorFlow start-up and the model load once per worker,
not per batch. Each Arrow batch of encoded images is decoded and preprocessed by the
package's canonical functions and checked and scored by the API's own
:meth:`braintumor.classify.Classifier.assess`, one model pass per batch; the probabilities
are the calibrated ones the API returns (as fractions, not percentages).

With ``heatmaps``, the model's ``explain`` scores the batch instead (same
probabilities, plus the Grad-CAM maps) and the overlays are written as PNGs into that
folder, which must be on a file system the executors share (local mode: any folder). They
are drawn as ``/api/classify`` draws them, back through the model's framing.

Every row also carries the API's not-a-brain-MRI decision (:mod:`braintumor.ood`):
``ood_flagged`` and ``ood_score`` (the distance score, null without fitted
statistics). With OOD_POLICY=reject a flagged image keeps its row, with no class, no
probabilities and no heatmap, and ``error`` saying "not a brain MRI: " and why; with
``warn`` it is classified and flagged; with ``off`` nothing is checked (``ood_flagged``
false, ``ood_score`` null), as in the API.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import numpy as np

from braintumor.classify import Classifier
from braintumor.config import Settings
from braintumor.decoding import DecodedImage, decode_image
from braintumor.errors import BrainTumorError, ConfigError
from braintumor.explain.render import encode_png, render
from braintumor.model.runtime import ServingModel, load_serving_model, onnx_threads
from braintumor.spark.images import read_images
from braintumor.spark.output import check_format, write_table
from braintumor.spark.progress import JobProgress
from braintumor.spark_session.session import job_session

if TYPE_CHECKING:
    import pandas as pd
    from pyspark import Accumulator
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

#: Loaded models of this Python worker, keyed by the model file's local path.
_MODELS: dict[str, ServingModel] = {}
#: Their classifiers (the model and its OOD detector, whose scorer factors a 256 x 256
#: matrix), built once too, keyed by path and the OOD settings (a worker may serve jobs
#: with other settings).
_CLASSIFIERS: dict[tuple, Classifier] = {}

#: How an image refused as not a brain MRI reads in the ``error`` column.
NOT_BRAIN_MRI = "not a brain MRI: "


def probability_column(class_name: str) -> str:
    """``No Tumor`` -> ``prob_no_tumor``: a column name every format and SQL accepts."""
    return "prob_" + re.sub(r"[^a-z0-9]+", "_", class_name.lower()).strip("_")


def output_schema(class_names: list[str]) -> str:
    """The DDL of the result table; one probability column per class, in class order."""
    probs = ", ".join(f"{probability_column(name)} double" for name in class_names)
    return (f"path string, class string, class_id int, {probs}, confidence double, "
            "ood_flagged boolean, ood_score double, model_version string, heatmap string, "
            "error string")


def limit_tensorflow_threads() -> int:
    """Size TensorFlow's thread pools to the cores Spark gave this task; returns them
    (0 outside a task), the width of ONNX Runtime's pool too.

    An executor of N cores runs N tasks at once, each in its own Python worker; left
    alone, every worker's TensorFlow would start a pool as wide as the machine, and N
    such pools fight over N cores (and over the other executors' cores on a shared
    node). A task holds ``spark.task.cpus`` cores (1 by default), so that is each
    worker's width. Must run before TensorFlow starts (it reads these variables once);
    values set by the user win.
    """
    from pyspark import TaskContext  # Spark: only inside a task

    context = TaskContext.get()
    cores = context.cpus() if context is not None else 0
    if cores > 0:
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(cores))
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(cores))
    return cores


def worker_model(path: str, settings: Settings) -> ServingModel:
    """The model at ``path``, loaded on the first call in this Python worker only, on the
    runtime MODEL_RUNTIME picks (ONNX Runtime as wide as the task's cores)."""
    model = _MODELS.get(path)
    if model is None:
        cores = limit_tensorflow_threads()
        model = _MODELS[path] = load_serving_model(
            settings.model, Path(path), threads=cores if cores > 0 else onnx_threads())
    return model


def worker_classifier(path: str, settings: Settings) -> Classifier:
    """The API's :class:`~braintumor.classify.Classifier` for the model at ``path``, built
    once per Python worker and OOD settings."""
    model = worker_model(path, settings)
    key = (path, settings.OOD_POLICY, settings.OOD_THRESHOLD)
    classifier = _CLASSIFIERS.get(key)
    if classifier is None or classifier.model is not model:
        classifier = _CLASSIFIERS[key] = Classifier(model, settings)
    return classifier


def ship_model(spark: SparkSession, settings: Settings, model_path: str | None) -> str:
    """Send the model (``model_path``, default MODEL_PATH: any URI ``addFile`` accepts, a
    local path, ``hdfs://``...) to every executor; return the file name they find it by."""
    model_uri = str(model_path or settings.MODEL_PATH)
    spark.sparkContext.addFile(model_uri)
    return posixpath.basename(model_uri.rstrip("/"))


def shipped_classifier(model_file: str, settings: Settings) -> tuple[Classifier, str]:
    """In a task: the worker's classifier for the model :func:`ship_model` sent, and the
    model version the rows carry (the file's stem when its metadata names none)."""
    from pyspark import SparkFiles  # Spark: only inside a task

    classifier = worker_classifier(SparkFiles.get(model_file), settings)
    return classifier, classifier.model.metadata.version or Path(model_file).stem


def _heatmap_name(path: str, digest: str) -> str:
    stem = posixpath.splitext(posixpath.basename(path))[0]
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '_', stem)}-{digest[:12]}.png"


def classify_batches(batches: Iterator[pd.DataFrame], model_file: str, settings: Settings,
                     heatmap_dir: str | None,
                     done: Accumulator[int] | None = None) -> Iterator[pd.DataFrame]:
    """mapInPandas body: (path, content) batches -> rows of :func:`output_schema`;
    ``done`` counts the files of every batch finished (the job's progress)."""
    # Spark's own modules only inside the job (the module imports without a Spark install)
    import pandas as pd

    classifier, version = shipped_classifier(model_file, settings)
    names = settings.class_list
    columns = ["path", "class", "class_id", *map(probability_column, names), "confidence",
               "ood_flagged", "ood_score", "model_version", "heatmap", "error"]
    if heatmap_dir:
        os.makedirs(heatmap_dir, exist_ok=True)
    for batch in batches:
        rows: list[dict] = []
        decoded: list[tuple[dict, DecodedImage, bytes]] = []  # (row, decoded image, content)
        for path, content in zip(batch["path"], batch["content"], strict=True):
            row = dict.fromkeys(columns)
            row.update(path=path, model_version=version)
            rows.append(row)
            data = bytes(content) if content is not None else b""
            try:
                decoded.append((row, decode_image(data, max_pixels=settings.MAX_IMAGE_PIXELS),
                                data))
            except BrainTumorError as exc:
                row["error"] = exc.message
            except Exception as exc:  # one broken file must not fail the job
                row["error"] = f"{type(exc).__name__}: {exc}"
        # the API's checks and one model pass for the whole batch (as in the API)
        assessed = classifier.assess([image for _, image, _ in decoded],
                                     explain=bool(heatmap_dir)) if decoded else []
        for (row, image, data), assessment in zip(decoded, assessed, strict=True):
            if assessment.error is not None or assessment.ood is None:  # the batch failed
                row["error"] = assessment.error.message if assessment.error else "no answer"
                continue
            row.update(ood_flagged=assessment.ood.flagged, ood_score=assessment.ood.score)
            if assessment.refused:
                row["error"] = NOT_BRAIN_MRI + assessment.ood.sentence()
                continue
            p = np.asarray(assessment.probabilities, dtype=np.float64)
            top = int(np.argmax(p))
            row.update({probability_column(n): float(v) for n, v in zip(names, p, strict=True)})
            row.update({"class": names[top], "class_id": top, "confidence": float(p[top])})
            if assessment.cam is not None and heatmap_dir:
                picture = render(assessment.cam, image.rgb, settings.VISUALIZATION_MAX_SIZE,
                                 assessment.frame)
                digest = hashlib.sha256(data).hexdigest()
                target = os.path.join(heatmap_dir, _heatmap_name(row["path"], digest))
                with open(target, "wb") as handle:
                    handle.write(encode_png(picture.heatmap_overlay))
                row["heatmap"] = target
        frame = pd.DataFrame(rows, columns=columns)
        frame["class_id"] = frame["class_id"].astype("Int32")
        frame["ood_flagged"] = frame["ood_flagged"].astype("boolean")
        frame["ood_score"] = frame["ood_score"].astype("float64")
        if done is not None:
            done.add(len(frame))
        yield frame


def heatmap_folder(uri: str) -> str:
    """``heatmap_dir`` as the absolute local path the Python workers write the PNGs to.

    A plain path or a ``file://`` URI. The PNGs are written with ``open()``, so any other
    scheme is refused: ``hdfs://nn/x`` would otherwise become a folder named ``hdfs:`` in
    each worker's working directory.
    """
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return os.path.abspath(parsed.path)
    if "://" in uri:
        raise ConfigError("heatmaps", "must be a folder on a file system every executor "
                                      f"mounts (a path or file://), not {uri}")
    return os.path.abspath(uri)


def classify_images(spark: SparkSession, inputs: str | list[str], settings: Settings,
                    model_path: str | None = None, heatmap_dir: str | None = None,
                    partitions: int | None = None,
                    done: Accumulator[int] | None = None) -> DataFrame:
    """The lazy DataFrame of predictions for every image below ``inputs``.

    ``model_path`` (default MODEL_PATH) may be any URI ``addFile`` accepts (a local path,
    ``hdfs://``...); the executors load their copy. Class names come from the settings,
    as in the API.
    """
    heatmaps = heatmap_folder(heatmap_dir) if heatmap_dir else None
    model_file = ship_model(spark, settings, model_path)
    images = read_images(spark, inputs, partitions)

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        return classify_batches(batches, model_file, settings, heatmaps, done)

    return images.mapInPandas(run, output_schema(settings.class_list))


def run_classify(settings: Settings, input_uri: str, output_uri: str, fmt: str = "parquet",
                 model_path: str | None = None, heatmap_dir: str | None = None,
                 overwrite: bool = False, partitions: int | None = None,
                 spark: SparkSession | None = None) -> dict[str, int]:
    """Write the predictions; return counts {"images", "errors", "ood_flagged"} read back."""
    from pyspark.sql import functions as F  # Spark: only when a job runs

    check_format(fmt)
    spark = spark or job_session(settings.spark)
    progress = JobProgress(spark, "classify")
    frame = classify_images(spark, input_uri, settings, model_path, heatmap_dir, partitions,
                            progress.files)
    written = write_table(spark, frame, output_uri, fmt, overwrite, progress)
    flagged = F.col("ood_flagged").cast("string") == "true"  # CSV reads it back as text
    counts = written.agg(F.count("*").alias("images"), F.count("error").alias("errors"),
                         F.count(F.when(flagged, 1)).alias("ood_flagged")).first()
    assert counts is not None  # an aggregate always has its one row
    result = {"images": int(counts["images"]), "errors": int(counts["errors"]),
              "ood_flagged": int(counts["ood_flagged"])}
    log.info("classified %s -> %s: %s", input_uri, output_uri, result)
    return result
