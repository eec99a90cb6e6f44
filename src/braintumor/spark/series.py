"""``braintumor spark classify --series``: one row per series, as the API answers it.

A study folder holds many DICOM series, their files mixed or spread over sub-folders,
usually with no extension; a research archive holds NIfTI volumes or zips of DICOM
files. Each file below the input is therefore read (every file, not only ``.dcm``:
content decides, as for ``braintumor classify-series FOLDER``), and the job has two
steps:

1. An Arrow-batched Python UDF reads each DICOM file's SeriesInstanceUID from its header
   (pydicom, stopping before the pixels), or recognises a zip or a NIfTI volume (a series
   by itself, as one upload to the endpoint); only the UID, the container kind and an
   error come back from Python, the bytes stay in the JVM. A file that is none of these,
   cannot be parsed or names no series keeps an ``error`` and drops its bytes.
2. ``groupBy`` the series UID (a zip or NIfTI file: its own path) and ``applyInPandas``:
   each series' files (in path order) go through exactly what ``POST
   /api/classify-series`` does with them (:func:`braintumor.series.series_from_parts`
   with the API's MAX_SERIES_SLICES and MAX_SERIES_BYTES, then
   :func:`braintumor.series.classify_series` with the worker's cached classifier), and
   become one row, ``source`` saying which kind (``dicom``, ``zip``, ``nifti``). The
   files step 1 refused form the group without a key and get one row each (``source``
   and ``series_uid`` null), so nothing disappears.

A series the API would refuse (mixed sizes or orientations, too many slices, not a brain
MRI, a slice that does not decode) is one row with ``error`` set to the API's message.
Like the API's answer, a row holds no patient data: the series UID (the grouping key; a
NIfTI volume has none), the facts the API returns about the volume, and the input's own
paths.

A group is handed to Python whole, so an executor needs memory for its largest series
(at most MAX_SERIES_BYTES, checked once the files are there, as the API does).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import posixpath
import re
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pydicom

from braintumor.classify import Classifier
from braintumor.config import Settings
from braintumor.dicom import is_dicom, quiet_pydicom
from braintumor.errors import BrainTumorError, InvalidImageError
from braintumor.explain.render import PICTURES
from braintumor.series import SeriesResult, SeriesVolume, classify_series, series_from_parts
from braintumor.series.archive import is_zip
from braintumor.series.nifti import looks_like_nifti
from braintumor.spark.classify_job import (
    heatmap_folder,
    probability_column,
    ship_model,
    shipped_classifier,
)
from braintumor.spark.images import read_images
from braintumor.spark.output import check_format, write_table
from braintumor.spark.progress import JobProgress
from braintumor.spark_session.session import job_session

if TYPE_CHECKING:
    import pandas as pd
    from pyspark import Accumulator
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

NOT_DICOM = ("Not a DICOM file (no DICM marker at byte 128), a zip or a NIfTI volume; series "
             "are read from DICOM files, a zip of them or a NIfTI volume")
NO_SERIES_UID = ("No SeriesInstanceUID in the DICOM file (not an image, or a truncated or "
                 "corrupt file), so it belongs to no series")
_SERIES_UID_TAG = 0x0020000E
#: What a UID is (PS3.5 9.1): digits and dots, at most 64 characters.
_UID = re.compile(r"^[0-9.]{1,64}$")


def count_column(class_name: str) -> str:
    """``No Tumor`` -> ``slices_no_tumor``: the slices whose own top class it is."""
    return "slices_" + probability_column(class_name).removeprefix("prob_")


def series_columns(class_names: list[str]) -> list[tuple[str, str]]:
    """(name, Spark type) of the result table, in order."""
    return [
        ("path", "string"), ("series_uid", "string"), ("source", "string"),
        ("files", "int"),
        ("files_ignored", "int"), ("slices", "int"), ("modality", "string"),
        ("orientation", "string"), ("ordered_by", "string"), ("height", "int"),
        ("width", "int"), ("slice_spacing_mm", "double"),
        ("class", "string"), ("class_id", "int"),
        *((probability_column(name), "double") for name in class_names),
        ("confidence", "double"), ("tumour_probability", "double"),
        ("answered", "int"), ("refused", "int"), ("ood_flagged", "int"),
        *((count_column(name), "int") for name in class_names),
        ("key_slice", "int"), ("key_position", "double"), ("key_path", "string"),
        ("heatmap", "string"), ("warning", "string"), ("rule", "string"),
        ("model_version", "string"), ("error", "string"),
    ]


def series_schema(class_names: list[str]) -> str:
    """The DDL of the result table: one row per series, or per file that is in none."""
    return ", ".join(f"`{name}` {kind}" for name, kind in series_columns(class_names))


def series_uid_of(data: bytes) -> str:
    """The SeriesInstanceUID in a DICOM file's header, or :class:`InvalidImageError`.

    Only that tag is kept and parsing stops before the pixels, so a file costs a header
    read; pydicom's messages (which may quote values) are never passed on. A value that
    is not a UID is replaced by its digest (``sha256-...``): it still groups the same
    files, and free text from a header never reaches the table.
    """
    if not is_dicom(data):
        raise InvalidImageError(NOT_DICOM)
    quiet_pydicom()  # pydicom would log a value that fails validation, quoting it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), specific_tags=[_SERIES_UID_TAG],
                                 stop_before_pixels=True)
            uid = str(ds.get("SeriesInstanceUID") or "").strip()
    except Exception as exc:
        raise InvalidImageError("Image validation failed: a truncated or corrupt DICOM "
                                f"file ({type(exc).__name__})") from None
    if not uid:
        raise InvalidImageError(NO_SERIES_UID)
    return _uid_column(uid)


def _uid_column(uid: str) -> str:
    """A UID as it is, anything else as its digest: free text never reaches the table."""
    return uid if _UID.match(uid) else "sha256-" + hashlib.sha256(uid.encode()).hexdigest()


def series_key(content: bytes, max_bytes: int) -> tuple[str | None, str | None, str | None]:
    """(SeriesInstanceUID, None, None) of a DICOM file; (None, None, "zip" or "nifti") of a
    file that is a series by itself, as one upload to the endpoint; (None, why, None) of a
    file in no series."""
    data = bytes(content)
    if not is_dicom(data):
        if is_zip(data):
            return None, None, "zip"
        if looks_like_nifti(data, max_bytes):
            return None, None, "nifti"
    try:
        return series_uid_of(data), None, None
    except BrainTumorError as exc:
        return None, exc.message, None



def _volume_facts(volume: SeriesVolume) -> dict[str, Any]:
    """What the API answers about the volume (its ``series`` block), as columns."""
    facts = volume.to_json()
    return {"files_ignored": facts["files_ignored"], "slices": facts["slice_count"],
            "modality": facts["modality"], "orientation": facts["orientation"],
            "ordered_by": facts["ordered_by"], "height": facts["rows"],
            "width": facts["columns"], "slice_spacing_mm": facts["slice_spacing_mm"],
            "warning": facts.get("warning")}


def _answer(result: SeriesResult, paths: list[str]) -> dict[str, Any]:
    """The API's ``summary`` as columns: fractions, not percentages, and unrounded. The
    key slice's file is one of ``paths``, or the one container they name."""
    summary, names = result.summary, result.class_names
    p = np.asarray(summary.probabilities, dtype=np.float64)
    key = result.key_slice()
    file = result.volume.slices[summary.key_index].file
    answer: dict[str, Any] = {
        "class": names[summary.class_id], "class_id": summary.class_id,
        "confidence": float(p[summary.class_id]),
        "tumour_probability": summary.tumour_probability,
        "answered": summary.answered, "refused": summary.refused,
        "ood_flagged": sum(1 for a in result.slices
                           if a.assessment.ood is not None and a.assessment.ood.flagged),
        "key_slice": summary.key_index, "key_position": key.position,
        "key_path": (paths[0] if len(paths) == 1 else
                     paths[file] if file is not None else None), "rule": summary.rule,
    }
    answer.update({probability_column(n): float(v) for n, v in zip(names, p, strict=True)})
    answer.update({count_column(n): int(c)
                   for n, c in zip(names, summary.class_counts, strict=True)})
    return answer


def _series_row(series_uid: str | None, source: str, paths: list[str],
                contents: list[bytes], classifier: Classifier, settings: Settings,
                heatmap_dir: str | None) -> dict[str, Any]:
    """One series' row: the API's answer for these files (DICOM files of one UID, or one
    zip or NIfTI file), or its refusal in ``error``."""
    row: dict[str, Any] = {"path": paths[0], "series_uid": series_uid, "source": source,
                           "files": len(paths)}
    try:
        volume = series_from_parts([(posixpath.basename(p), data)
                                    for p, data in zip(paths, contents, strict=True)], settings)
        row.update(_volume_facts(volume))
        if series_uid is None and volume.uids.get("SeriesInstanceUID"):  # a zip's series
            row["series_uid"] = _uid_column(volume.uids["SeriesInstanceUID"])
        result = classify_series(classifier, volume)
    except BrainTumorError as exc:
        row["error"] = exc.message
        return row
    except Exception as exc:  # one broken series must not fail the job
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    row.update(_answer(result, paths))
    if heatmap_dir:
        # a UID or a digest (_uid_column), else the file's: a safe name, one per series
        name = row["series_uid"] or "file-" + hashlib.sha256(paths[0].encode()).hexdigest()
        target = os.path.join(heatmap_dir, f"{name}-key-slice.png")
        with open(target, "wb") as handle:
            handle.write(result.pngs[PICTURES[0]])  # the key slice's Grad-CAM overlay
        row["heatmap"] = target
    return row


def classify_groups(group: pd.DataFrame, model_file: str, settings: Settings,
                    heatmap_dir: str | None,
                    done: Accumulator[int] | None = None) -> pd.DataFrame:
    """applyInPandas body: one series' files -> its row; the files in no series -> one
    row each. ``done`` counts the files of every group finished (the job's progress)."""
    # Spark's own modules only inside the job (the module imports without a Spark install)
    import pandas as pd

    classifier, version = shipped_classifier(model_file, settings)
    group = group.sort_values("path", kind="stable")
    uid, container = group["series_uid"].iloc[0], group["container"].iloc[0]
    if heatmap_dir:
        os.makedirs(heatmap_dir, exist_ok=True)
    rows: list[dict[str, Any]]
    if isinstance(container, str):  # one zip or NIfTI file, a series by itself
        rows = [_series_row(None, container, list(group["path"]),
                            [bytes(c) for c in group["content"]], classifier, settings,
                            heatmap_dir)]
    elif uid is None or pd.isna(uid):
        rows = [{"path": path, "files": 1, "error": error}
                for path, error in zip(group["path"], group["error"], strict=True)]
    else:
        rows = [_series_row(str(uid), "dicom", list(group["path"]),
                            [bytes(c) for c in group["content"]], classifier, settings,
                            heatmap_dir)]
    columns = series_columns(settings.class_list)
    names = [name for name, _ in columns]
    # every key present: a column missing from every row would be all-NaN floats
    frame = pd.DataFrame([{**dict.fromkeys(names), **row, "model_version": version}
                          for row in rows], columns=names)
    for name, kind in columns:
        if kind == "int":
            frame[name] = frame[name].astype("Int32")
        elif kind == "double":
            frame[name] = frame[name].astype("float64")
    if done is not None:
        done.add(len(group))
    return frame


def classify_series_files(spark: SparkSession, inputs: str | list[str], settings: Settings,
                          model_path: str | None = None, heatmap_dir: str | None = None,
                          partitions: int | None = None,
                          done: Accumulator[int] | None = None) -> DataFrame:
    """The lazy DataFrame of one row per series below ``inputs`` (see the module)."""
    from pyspark.sql import functions as F  # Spark: only when a job is built

    heatmaps = heatmap_folder(heatmap_dir) if heatmap_dir else None
    model_file = ship_model(spark, settings, model_path)

    max_bytes = settings.MAX_SERIES_BYTES

    def key(content: bytes) -> tuple[str | None, str | None, str | None]:
        return series_key(content, max_bytes)

    # Arrow-batched, row at a time: only the UID, the error and the container kind come
    # back from Python
    key_of = F.udf(key, "struct<series_uid: string, error: string, container: string>",
                   useArrow=True)
    files = read_images(spark, inputs, partitions, name_glob=None)  # DICOM: any name
    files = files.withColumn("found", key_of("content"))
    keyed = files.select(
        "path", F.col("found.series_uid").alias("series_uid"),
        F.col("found.error").alias("error"), F.col("found.container").alias("container"),
        F.when(F.col("found.error").isNull(), F.col("content")).alias("content"),
        # the group: a DICOM series' UID, or a zip or NIfTI file's own path
        F.coalesce("found.series_uid", F.when(F.col("found.container").isNotNull(),
                                              F.concat(F.lit("file:"), "path"))).alias("group"))

    def run(group: pd.DataFrame) -> pd.DataFrame:
        return classify_groups(group, model_file, settings, heatmaps, done)

    return keyed.groupBy("group").applyInPandas(run, series_schema(settings.class_list))


def run_classify_series(settings: Settings, input_uri: str, output_uri: str,
                        fmt: str = "parquet", model_path: str | None = None,
                        heatmap_dir: str | None = None, overwrite: bool = False,
                        partitions: int | None = None,
                        spark: SparkSession | None = None) -> dict[str, int]:
    """Write one row per series; return counts {"series", "files", "errors"} read back.

    ``series`` counts the rows that are a series (``source`` set), ``files`` every file
    read, ``errors`` the rows with an error (refused series and files in no series).
    """
    from pyspark.sql import functions as F  # Spark: only when a job runs

    check_format(fmt)
    spark = spark or job_session(settings.spark)
    progress = JobProgress(spark, "classify --series")
    frame = classify_series_files(spark, input_uri, settings, model_path, heatmap_dir,
                                  partitions, progress.files)
    written = write_table(spark, frame, output_uri, fmt, overwrite, progress)
    counts = written.agg(F.count("source").alias("series"),
                         F.sum(F.col("files").cast("long")).alias("files"),
                         F.count("error").alias("errors")).first()
    assert counts is not None  # an aggregate always has its one row
    result = {"series": int(counts["series"]), "files": int(counts["files"] or 0),
              "errors": int(counts["errors"])}
    log.info("classified the series of %s -> %s: %s", input_uri, output_uri, result)
    return result
