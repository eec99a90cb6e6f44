"""``braintumor spark preprocess``: a folder-per-class image tree -> Parquet of uint8 pixels.

Every file goes through :func:`braintumor.decoding.decode_image` and
:func:`braintumor.preprocessing.canonical_pixels` inside ``mapInPandas``, the very
functions the API and training call, so the Parquet holds exactly the pixels training
would have decoded itself. Pixels are stored as raw uint8 bytes (``height * width``
bytes per image, 25.6 KB at 160x160), four times smaller than float32 and still exact;
the model's input scaling is applied when the pixels are used, as in training.

A file that cannot be decoded becomes a row with ``error`` set and no pixels: one bad
scan must not fail a job over thousands, and the rows say which files to look at.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from braintumor.config import Settings
from braintumor.decoding import decode_image
from braintumor.errors import BrainTumorError
from braintumor.imaging import DEFAULT_MAX_PIXELS
from braintumor.preprocessing import canonical_pixels
from braintumor.spark.images import folder_label, read_images
from braintumor.spark.output import write_table
from braintumor.spark.progress import JobProgress
from braintumor.spark_session.session import job_session

if TYPE_CHECKING:
    import pandas as pd
    from pyspark import Accumulator
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

#: The Parquet layout. ``height``/``width`` are the shape of ``pixels``;
#: ``source_height``/``source_width`` the decoded file's own size.
PREPROCESS_SCHEMA = (
    "path string, label string, label_id int, sha256 string, height int, width int, "
    "pixels binary, error string, source_height int, source_width int"
)


def preprocess_batches(batches: Iterator[pd.DataFrame], size: tuple[int, int],
                       class_names: list[str], max_pixels: int,
                       framing: str = "stretch",
                       done: Accumulator[int] | None = None) -> Iterator[pd.DataFrame]:
    """mapInPandas body: (path, content) batches -> rows of :data:`PREPROCESS_SCHEMA`;
    ``done`` counts the files of every batch finished (the job's progress).

    Runs in the Python workers; plain function of its arguments so that it can be
    tested and reused without Spark.
    """
    import pandas as pd  # with Spark: only in the job's Python workers

    height, width = size
    for batch in batches:
        rows = []
        for path, content in zip(batch["path"], batch["content"], strict=True):
            data = bytes(content) if content is not None else b""
            label, label_id = folder_label(path, class_names)
            row = {"path": path, "label": label, "label_id": label_id,
                   "sha256": hashlib.sha256(data).hexdigest(), "height": None,
                   "width": None, "pixels": None, "error": None,
                   "source_height": None, "source_width": None}
            try:
                decoded = decode_image(data, max_pixels=max_pixels)
                pixels = canonical_pixels(decoded, size, framing)
            except BrainTumorError as exc:
                row["error"] = exc.message
            except Exception as exc:  # a job over thousands of files must not die on one
                row["error"] = f"{type(exc).__name__}: {exc}"
            else:
                row.update(height=height, width=width, pixels=pixels.tobytes(),
                           source_width=decoded.size[0], source_height=decoded.size[1])
            rows.append(row)
        frame = pd.DataFrame(rows, columns=[c.split()[0] for c in PREPROCESS_SCHEMA.split(", ")])
        for column in ("label_id", "height", "width", "source_height", "source_width"):
            frame[column] = frame[column].astype("Int32")
        if done is not None:
            done.add(len(frame))
        yield frame


def preprocess_images(spark: SparkSession, inputs: str | list[str], size: tuple[int, int],
                      class_names: list[str], max_pixels: int = DEFAULT_MAX_PIXELS,
                      partitions: int | None = None, framing: str = "stretch",
                      done: Accumulator[int] | None = None) -> DataFrame:
    """The lazy DataFrame of :data:`PREPROCESS_SCHEMA` rows for every image below ``inputs``."""
    images = read_images(spark, inputs, partitions)

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        return preprocess_batches(batches, size, class_names, max_pixels, framing, done)

    return images.mapInPandas(run, PREPROCESS_SCHEMA)


def run_preprocess(settings: Settings, input_uri: str, output_uri: str, size: int = 160,
                   overwrite: bool = False, partitions: int | None = None,
                   spark: SparkSession | None = None, framing: str = "stretch"
                   ) -> dict[str, int]:
    """Write the Parquet and return counts {"images", "errors", "unlabelled"}.

    The counts are read back from the written Parquet (cheap: three small columns), so
    they describe what is on disk, not a second run of the decoding.
    """
    from pyspark.sql import functions as F  # Spark: only when a job runs

    spark = spark or job_session(settings.spark)
    progress = JobProgress(spark, "preprocess")
    frame = preprocess_images(spark, input_uri, (size, size), settings.class_list,
                              settings.MAX_IMAGE_PIXELS, partitions, framing, progress.files)
    written = write_table(spark, frame, output_uri, "parquet", overwrite, progress)
    counts = written.agg(
        F.count("*").alias("images"),
        F.count("error").alias("errors"),
        F.sum((F.col("label_id") < 0).cast("int")).alias("unlabelled"),
    ).first()
    assert counts is not None  # an aggregate always has its one row
    result = {key: int(counts[key] or 0) for key in ("images", "errors", "unlabelled")}
    log.info("preprocessed %s -> %s: %s", input_uri, output_uri, result)
    return result
