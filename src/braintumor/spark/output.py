"""Running a batch job by writing its table, then reading the table back for the counts.

Every job ends the same way: its lazy DataFrame is written (that is when the work runs,
so the progress is shown around the write), and the counts the CLI prints are read back
from what was written, so they describe what is on disk, not a second run of the job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from braintumor.spark.progress import JobProgress

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

OUTPUT_FORMATS = ("parquet", "csv")


def check_format(fmt: str) -> None:
    """ValueError unless ``fmt`` is one of :data:`OUTPUT_FORMATS`."""
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(OUTPUT_FORMATS)}, got {fmt!r}")


def write_table(spark: SparkSession, frame: DataFrame, output_uri: str, fmt: str,
                overwrite: bool, progress: JobProgress) -> DataFrame:
    """Write ``frame`` as Parquet or CSV with a header (an existing output is refused
    unless ``overwrite``) while ``progress`` reports on it; return the written table."""
    check_format(fmt)
    progress.total = len(frame.inputFiles())
    with progress:
        writer = frame.write.mode("overwrite" if overwrite else "errorifexists")
        if fmt == "csv":
            writer.option("header", "true").csv(output_uri)
        else:
            writer.parquet(output_uri)
    if fmt == "csv":
        return spark.read.option("header", "true").csv(output_uri)
    return spark.read.parquet(output_uri)
