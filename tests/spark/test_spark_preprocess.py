"""`spark preprocess` on real Spark: which files, which labels, which pixels."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from braintumor.decoding import decode_image
from braintumor.preprocessing import canonical_pixels

from .helpers import CLEAN_IMAGES, relative

SIZE = 32
CLASSES = ["Glioma", "Meningioma", "No Tumor", "Pituitary"]


@pytest.fixture(scope="module")
def preprocessed(spark, spark_settings, messy_tree, tmp_path_factory):
    from braintumor.spark.preprocess import run_preprocess

    out = tmp_path_factory.mktemp("pre") / "images.parquet"
    counts = run_preprocess(spark_settings, str(messy_tree), str(out), size=SIZE, spark=spark)
    rows = spark.read.parquet(str(out)).toPandas()
    rows["rel"] = [relative(p, messy_tree) for p in rows["path"]]
    return counts, rows.set_index("rel"), out


def test_only_image_files_outside_hidden_folders_are_read(preprocessed, clean_tree):
    counts, rows, _ = preprocessed
    expected = {*CLEAN_IMAGES, "meningioma/corrupt.png", "notumor/letter.jpg", "unsorted/u1.png"}
    assert set(rows.index) == expected  # no notes.txt, nothing from .ipynb_checkpoints
    assert counts == {"images": len(expected), "errors": 2, "unlabelled": 1}


def test_labels_follow_the_training_loaders_folder_rule(preprocessed):
    _, rows, _ = preprocessed
    assert rows.loc["glioma/g1.png", ["label", "label_id"]].tolist() == ["glioma", 0]
    assert rows.loc["notumor/n1.jpeg", ["label", "label_id"]].tolist() == ["notumor", 2]
    assert rows.loc["Pituitary/p1.gif", ["label", "label_id"]].tolist() == ["Pituitary", 3]
    # a sub-folder inherits its class folder's label, as in the folder loader
    assert rows.loc["glioma/nested/g3.PNG", ["label", "label_id"]].tolist() == ["glioma", 0]
    assert rows.loc["unsorted/u1.png", ["label", "label_id"]].tolist() == ["unsorted", -1]


def test_unreadable_files_are_error_rows_not_a_failed_job(preprocessed):
    _, rows, _ = preprocessed
    for name in ("meningioma/corrupt.png", "notumor/letter.jpg"):
        row = rows.loc[name]
        assert row["error"].startswith("Image validation failed"), row["error"]
        assert row["pixels"] is None and np.isnan(row["height"])
    assert rows.drop(["meningioma/corrupt.png", "notumor/letter.jpg"])["error"].isna().all()


def test_pixels_are_the_canonical_uint8_pixels(preprocessed, messy_tree, spark):
    _, rows, out = preprocessed
    schema = {f.name: f.dataType.simpleString() for f in spark.read.parquet(str(out)).schema}
    assert schema["pixels"] == "binary" and schema["label_id"] == "int"
    for name, row in rows[rows["error"].isna()].iterrows():
        data = (messy_tree / name).read_bytes()
        expected = canonical_pixels(decode_image(data), (SIZE, SIZE))
        assert (row["height"], row["width"]) == (SIZE, SIZE)
        assert row["pixels"] == expected.tobytes(), name  # bit for bit, uint8
        assert row["sha256"] == hashlib.sha256(data).hexdigest()
        width, height = decode_image(data).size
        assert (row["source_width"], row["source_height"]) == (width, height)
