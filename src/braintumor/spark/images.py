"""Reading image files into a DataFrame with Spark's ``binaryFile`` source.

Both batch jobs read their input the same way, so they agree on which files are images:
every file below the input whose extension is one the API accepts (png, jpg, jpeg, gif,
bmp, webp, dcm, dicom, in any case), found recursively. Spark's file listing already skips
names that start with ``.`` or ``_`` (``.ipynb_checkpoints``, ``_SUCCESS``), at every depth.
What a file *is* is still decided by its content when it is decoded; the extension only
keeps obvious non-images (notes.txt) out of the job.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from braintumor.datasets.folders import class_id
from braintumor.decoding import ALLOWED_EXTENSIONS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def extension_glob(extensions: tuple[str, ...] = ALLOWED_EXTENSIONS) -> str:
    """A Hadoop glob matching the extensions in any letter case: ``*.{[pP][nN][gG],...}``.

    Hadoop globs are case-sensitive and have no flag to change that; character classes per
    letter are the portable way to accept ``SCAN.JPG`` as well as ``scan.jpg``.
    """
    def any_case(ext: str) -> str:
        return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in ext)

    return "*.{" + ",".join(any_case(ext) for ext in extensions) + "}"


#: Partitions per core when Spark is left to choose: enough for a straggler not to hold
#: up the job, few enough that per-task costs stay small (see :func:`read_images`).
PARTITIONS_PER_CORE = 2
#: Most files in one partition, so a huge input still spreads over the cluster.
MAX_FILES_PER_PARTITION = 1024


def read_images(spark: SparkSession, inputs: str | list[str],
                partitions: int | None = None,
                name_glob: str | None = extension_glob()) -> DataFrame:
    """(path, content) of every image file below ``inputs`` (one URI or several).

    ``name_glob`` keeps the files whose names match (default: an extension the API
    accepts); None reads every file, as the series job does (DICOM files often have no
    extension).

    Any URI Spark's Hadoop file systems accept works: a plain path, ``file://``,
    ``hdfs://``, ``s3a://`` when the cluster has the connector.

    Why the partitioning: Spark charges every file an "open cost" of 4 MB when it packs
    files into partitions, so a folder of 20 KB scans becomes one partition per file:
    thousands of tasks of one row each, and a model called on batches of one. The files
    are therefore coalesced (no shuffle) to :data:`PARTITIONS_PER_CORE` partitions per
    core, more only when a partition would exceed :data:`MAX_FILES_PER_PARTITION` files.
    Every task costs a fixed amount on top of its rows (hand-off to a Python worker,
    Arrow stream set-up, a first model call for each new batch size): on local[2] over
    the 1,311 Testing scans with a one-pass model, 11 partitions of about 128 files ran
    at 290 images/s, 4 of 330 at 420/s. ``partitions`` forces a number instead (with a
    shuffle).
    """
    reader = spark.read.format("binaryFile").option("recursiveFileLookup", "true")
    if name_glob:
        reader = reader.option("pathGlobFilter", name_glob)
    frame = reader.load(inputs).select("path", "content")
    if partitions:
        return frame.repartition(partitions)
    files = len(frame.inputFiles())
    target = max(PARTITIONS_PER_CORE * spark.sparkContext.defaultParallelism,
                 math.ceil(files / MAX_FILES_PER_PARTITION), 1)
    if frame.rdd.getNumPartitions() > target:
        frame = frame.coalesce(target)
    return frame


def folder_label(path: str, class_names: list[str]) -> tuple[str, int]:
    """(folder name, class id or -1) for a file URI.

    The label is the file's parent folder, or the nearest folder above it that names a
    class: ``glioma/a.jpg`` and ``glioma/extra/a.jpg`` are both Glioma, as the folder
    loader (:func:`braintumor.datasets.folders.list_images`) labels them. Names are
    matched by its rule (:func:`braintumor.datasets.folders.class_id`), so ``notumor`` is
    "No Tumor". A file no folder of which names a class keeps its parent's name, id -1.
    """
    folders = path.split("/")[:-1]
    for folder in reversed(folders):
        found = class_id(folder, class_names)
        if found is not None:
            return folder, found
    return (folders[-1] if folders else ""), -1
