"""Real Spark on local[2], started once for every test of this folder.

Starting the JVM costs seconds (more on a busy machine), so one session-scoped
SparkSession is shared; the jobs under test join it (``getOrCreate``) instead of
starting their own. The image trees are small synthetic class-per-folder datasets.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import encode, scan_like

from .helpers import CLEAN_IMAGES, SPARK_SETTINGS


@pytest.fixture(scope="session")
def spark_settings(tiny_model_path):
    from braintumor.config import Settings

    return Settings(MODEL_PATH=tiny_model_path, **SPARK_SETTINGS)


@pytest.fixture(scope="session")
def spark(spark_settings):
    from braintumor.spark_session.session import build_session

    session = build_session(spark_settings.spark, extra_conf={
        "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def clean_tree(tmp_path_factory) -> Path:
    """Only valid images in class folders, plus what every loader must skip."""
    root = tmp_path_factory.mktemp("clean") / "Training"
    for relative, make in CLEAN_IMAGES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make())
    hidden = root / "glioma" / ".ipynb_checkpoints"
    hidden.mkdir()
    (hidden / "g1-checkpoint.png").write_bytes(encode(scan_like(seed=50)))
    (root / "notes.txt").write_text("not an image")
    (root / "glioma" / "notes.txt").write_text("not an image either")
    return root


@pytest.fixture(scope="session")
def messy_tree(clean_tree, tmp_path_factory) -> Path:
    """The clean tree plus broken files and a folder that names no class."""
    root = tmp_path_factory.mktemp("messy") / "Testing"
    shutil.copytree(clean_tree, root)
    valid = encode(scan_like(seed=10))
    (root / "meningioma" / "corrupt.png").write_bytes(valid[: len(valid) // 2])
    (root / "notumor" / "letter.jpg").write_text("Dear reader, this is not a JPEG.")
    (root / "unsorted").mkdir()
    (root / "unsorted" / "u1.png").write_bytes(encode(scan_like(seed=11)))
    return root
