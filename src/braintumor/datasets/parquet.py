"""Training images from the Parquet that ``braintumor spark preprocess`` writes.

``braintumor train --parquet URI`` reads its images here instead of decoding a folder:
the decoding was done once, in parallel, by the Spark job, with the same canonical
functions :func:`braintumor.datasets.folders.load_folder` calls, so both give the same
uint8 pixels. Rows with an error or a folder that names no class are left out, as the
folder loader leaves such files out.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

import numpy as np

from braintumor.config import Settings, load_settings
from braintumor.datasets.folders import ImageSet
from braintumor.spark_session.session import build_session

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def _relative_paths(paths: list[str]) -> list[str]:
    """Paths relative to their common folder: ``file:/data/Training/glioma/a.jpg`` ->
    ``glioma/a.jpg``, the form the folder loader records in a run's split."""
    parts = [p.split("/") for p in paths]
    common = 0
    if parts:
        # keep at least "class folder/file name", even when every file is in one folder
        limit = min(len(p) for p in parts) - 2
        while common < limit and len({p[common] for p in parts}) == 1:
            common += 1
    return ["/".join(p[common:]) for p in parts]


def _sort_key(path: str) -> tuple[str, ...]:
    # folder by folder, as list_images sorts Paths (``a/x`` before ``a-b/y``)
    return tuple(path.split("/"))


def load_parquet(uri: str, class_names: list[str], size: tuple[int, int],
                 spark: SparkSession | None = None,
                 settings: Settings | None = None) -> ImageSet:
    """Read preprocessed pixels of ``size`` from ``uri`` into an :class:`ImageSet`.

    Raises ValueError when the Parquet was written at another size (re-run the
    preprocess job with ``--size``: resizing already-resized pixels would train on
    images the server never produces) or holds no usable row. A SparkSession this call
    starts (from the caller's ``settings``; None: the environment's) is stopped again,
    so training does not keep a JVM's memory.
    """
    # pyspark only when Parquet is actually read: training imports this module
    from pyspark.sql import SparkSession as _SparkSession
    from pyspark.sql import functions as F

    own = spark is None and _SparkSession.getActiveSession() is None
    spark = spark or build_session((settings or load_settings()).spark)
    try:
        frame = spark.read.parquet(uri).where(F.col("error").isNull() & (F.col("label_id") >= 0))
        sizes = frame.select("height", "width").distinct().collect()
        if not sizes:
            raise ValueError(f"no decoded, labelled images in {uri}")
        found = sorted((int(r["height"]), int(r["width"])) for r in sizes)
        if found != [tuple(size)]:
            raise ValueError(f"{uri} holds images of {found} pixels, not {tuple(size)}; "
                             "re-run `braintumor spark preprocess` with that --size")
        table: pd.DataFrame = frame.select("path", "label_id", "sha256", "pixels").toPandas()
    finally:
        if own:
            spark.stop()
    if len(table["label_id"]) and int(table["label_id"].max()) >= len(class_names):
        raise ValueError(f"{uri} has class ids beyond the {len(class_names)} classes")
    paths = _relative_paths([str(p) for p in table["path"]])
    order = sorted(range(len(paths)), key=lambda i: _sort_key(paths[i]))
    height, width = size
    pixels = np.stack([np.frombuffer(table["pixels"].iloc[i], dtype=np.uint8)
                       .reshape(height, width) for i in order])
    labels = table["label_id"].to_numpy(dtype=np.int64)[order]
    sorted_paths = [paths[i] for i in order]
    digest = hashlib.sha256(repr(tuple(size)).encode())
    for i in order:
        digest.update(f"{paths[i]}|{table['label_id'].iloc[i]}|{table['sha256'].iloc[i]}"
                      .encode())
    log.info("loaded %d preprocessed images from %s", len(pixels), uri)
    return ImageSet(pixels, labels, sorted_paths, digest.hexdigest()[:16])
