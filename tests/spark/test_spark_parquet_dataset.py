"""`braintumor train --parquet`: the preprocessed Parquet gives training what the folder
loader gives it, pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest

from braintumor.datasets.folders import load_folder
from braintumor.training.train import TrainConfig, load_training_images

SIZE = 32
CLASSES = ["Glioma", "Meningioma", "No Tumor", "Pituitary"]


@pytest.fixture(scope="module")
def clean_parquet(spark, spark_settings, clean_tree, tmp_path_factory) -> str:
    from braintumor.spark.preprocess import run_preprocess

    out = str(tmp_path_factory.mktemp("train") / "training.parquet")
    run_preprocess(spark_settings, str(clean_tree), out, size=SIZE, spark=spark)
    return out


def test_parquet_loads_the_same_images_as_the_folder(clean_parquet, clean_tree, spark):
    from braintumor.datasets.parquet import load_parquet

    folder = load_folder(clean_tree, CLASSES, (SIZE, SIZE))
    parquet = load_parquet(clean_parquet, CLASSES, (SIZE, SIZE), spark=spark)
    assert parquet.paths == folder.paths
    assert parquet.pixels.dtype == np.uint8 and parquet.pixels.shape == folder.pixels.shape
    np.testing.assert_array_equal(parquet.pixels, folder.pixels)
    np.testing.assert_array_equal(parquet.labels, folder.labels)


def test_train_config_with_parquet_reads_it(clean_parquet, clean_tree, spark):
    config = TrainConfig(data="/nowhere", out="unused.keras", size=SIZE, cache_dir="",
                         parquet=clean_parquet)
    images = load_training_images(config)
    folder = load_folder(clean_tree, CLASSES, (SIZE, SIZE))
    np.testing.assert_array_equal(images.pixels, folder.pixels)
    assert spark.sparkContext._jsc is not None  # the shared session was joined, not stopped


def test_cli_passes_parquet_to_training():
    from braintumor.cli import build_parser

    args = build_parser().parse_args(["train", "--parquet", "hdfs://nn/x.parquet"])
    assert args.parquet == "hdfs://nn/x.parquet"


def test_a_parquet_of_another_size_is_refused(clean_parquet, spark):
    from braintumor.datasets.parquet import load_parquet

    with pytest.raises(ValueError, match="--size"):
        load_parquet(clean_parquet, CLASSES, (64, 64), spark=spark)
