"""`spark classify` on real Spark gives the API's probabilities for the same files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from braintumor.classify import Classifier
from braintumor.explain.render import output_size

from .helpers import CLEAN_IMAGES, relative

PROB_COLUMNS = ["prob_glioma", "prob_meningioma", "prob_no_tumor", "prob_pituitary"]
BROKEN = ("meningioma/corrupt.png", "notumor/letter.jpg")


@pytest.fixture(scope="module")
def classified(spark, spark_settings, messy_tree, tmp_path_factory):
    from braintumor.spark.classify_job import run_classify

    base = tmp_path_factory.mktemp("classify")
    heatmaps = base / "heatmaps"
    counts = run_classify(spark_settings, str(messy_tree), str(base / "out.parquet"),
                          heatmap_dir=str(heatmaps), spark=spark)
    rows = spark.read.parquet(str(base / "out.parquet")).toPandas()
    rows["rel"] = [relative(p, messy_tree) for p in rows["path"]]
    return counts, rows.set_index("rel"), heatmaps


def test_every_image_has_a_row_and_broken_ones_an_error(classified):
    counts, rows, _ = classified
    assert set(rows.index) == {*CLEAN_IMAGES, *BROKEN, "unsorted/u1.png"}
    assert counts == {"images": len(rows), "errors": 2, "ood_flagged": 0}
    for name in BROKEN:
        assert rows.loc[name, "error"].startswith("Image validation failed")
        assert rows.loc[name, "class"] is None and np.isnan(rows.loc[name, "prob_glioma"])
    assert list(rows.columns[:3]) == ["path", "class", "class_id"]
    assert set(rows["model_version"]) == {"tiny-test"}


def test_probabilities_are_the_apis(classified, messy_tree, tiny_model, spark_settings, app):
    _, rows, _ = classified
    classifier = Classifier(tiny_model, spark_settings)
    for name, row in rows[rows["error"].isna()].iterrows():
        data = (messy_tree / name).read_bytes()
        expected = classifier.classify_upload(data, name).prediction.probabilities
        got = row[PROB_COLUMNS].to_numpy(dtype=np.float64)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6, err_msg=name)
        assert int(row["class_id"]) == int(np.argmax(expected))
        assert row["class"] == spark_settings.class_list[int(row["class_id"])]
        assert row["confidence"] == pytest.approx(got.max(), abs=1e-12)
    # and through HTTP: the API's percentages are these probabilities, rounded
    name = "glioma/g2.jpg"
    with (messy_tree / name).open("rb") as handle:
        response = app.test_client().post("/api/classify", data={"file": (handle, "g2.jpg")})
    percent = list(response.get_json()["prediction"]["probabilities"].values())
    np.testing.assert_allclose(np.array(percent) / 100,
                               rows.loc[name, PROB_COLUMNS].to_numpy(dtype=float), atol=1.01e-4)


def test_heatmap_overlays_are_written_for_readable_images(classified, messy_tree):
    _, rows, heatmaps = classified
    ok = rows[rows["error"].isna()]
    assert len(list(heatmaps.glob("*.png"))) == len(ok)
    for name, row in ok.iterrows():
        with Image.open(messy_tree / name) as original:
            expected = output_size(*original.size, 512)
        with Image.open(row["heatmap"]) as overlay:
            assert overlay.size == expected and overlay.mode == "RGB"
    assert rows.loc[list(BROKEN), "heatmap"].isna().all()


def test_cli_writes_csv(spark, tiny_model_path, messy_tree, tmp_path, monkeypatch, capsys):
    from braintumor.cli import main

    monkeypatch.setenv("MODEL_PATH", str(tiny_model_path))
    monkeypatch.setenv("SPARK_MASTER", "local[2]")
    out = tmp_path / "out.csv"
    assert main(["spark", "classify", "--input", f"file://{messy_tree}/glioma",
                 "--output", str(out), "--format", "csv"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"output": str(out), "images": 3, "errors": 0, "ood_flagged": 0}
    table = spark.read.option("header", "true").csv(str(out)).toPandas()
    assert sorted(table.columns) == sorted(["path", "class", "class_id", *PROB_COLUMNS,
                                            "confidence", "ood_flagged", "ood_score",
                                            "model_version", "heatmap", "error"])


@pytest.mark.parametrize("policy", ["reject", "warn"])
def test_not_brain_mri_rows(spark, tiny_ood_model_path, tmp_path, policy):
    """As the API: reject keeps the row with no class and says why; warn classifies it."""
    from dataclasses import replace

    from braintumor.config import Settings
    from braintumor.spark.classify_job import run_classify

    from .helpers import SPARK_SETTINGS

    root = tmp_path / "in"
    root.mkdir()
    (root / "scan.png").write_bytes(CLEAN_IMAGES["glioma/g1.png"]())
    noise = np.random.default_rng(0).integers(0, 256, (96, 96), dtype=np.uint8)
    (root / "noise.png").write_bytes(_png(Image.fromarray(noise)))
    settings = replace(Settings(MODEL_PATH=tiny_ood_model_path, **SPARK_SETTINGS),
                       OOD_POLICY=policy)
    counts = run_classify(settings, str(root), str(tmp_path / "out.parquet"), spark=spark)
    rows = spark.read.parquet(str(tmp_path / "out.parquet")).toPandas()
    rows = rows.set_index(rows["path"].str.rsplit("/", n=1).str[-1])
    assert counts == {"images": 2, "errors": 1 if policy == "reject" else 0, "ood_flagged": 1}
    scan, flagged = rows.loc["scan.png"], rows.loc["noise.png"]
    assert not scan["ood_flagged"] and scan["ood_score"] >= 0 and scan["class"]
    assert flagged["ood_flagged"]
    if policy == "reject":
        assert flagged["error"].startswith("not a brain MRI: the image has no spatial structure")
        assert flagged["class"] is None and np.isnan(flagged["prob_glioma"])
    else:
        assert flagged["error"] is None and flagged["class"] in CLASS_NAMES


def _png(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


CLASS_NAMES = ("Glioma", "Meningioma", "No Tumor", "Pituitary")


def test_cli_error_is_one_line(tmp_path, capsys, monkeypatch, spark):
    from braintumor.cli import main

    monkeypatch.setenv("SPARK_MASTER", "local[2]")
    code = main(["spark", "preprocess", "--input", str(tmp_path / "missing"),
                 "--output", str(tmp_path / "out.parquet")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: Spark job failed") and "\n" not in err


def test_heatmap_folder_is_local_or_refused(tmp_path, monkeypatch):
    import os

    from braintumor.errors import ConfigError
    from braintumor.spark.classify_job import heatmap_folder

    monkeypatch.chdir(tmp_path)
    assert heatmap_folder("maps") == os.path.join(os.getcwd(), "maps")
    assert heatmap_folder("file:///shared/maps") == "/shared/maps"
    assert heatmap_folder("file:/shared/maps/") == "/shared/maps"
    with pytest.raises(ConfigError, match="hdfs://nn:8020/maps"):
        heatmap_folder("hdfs://nn:8020/maps")


def test_worker_failures_name_their_cause():
    from braintumor.spark_session.commands import first_line

    worker = RuntimeError(
        "An exception was thrown from the Python worker:\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "ModuleNotFoundError: No module named 'braintumor'\n\n"
        "\tat org.apache.spark.api.python.BasePythonRunner.handlePythonException\n")
    assert first_line(worker) == ("An exception was thrown from the Python worker: "
                                  "ModuleNotFoundError: No module named 'braintumor'")
    assert first_line(ValueError("\n  Path does not exist: /x\n\tat org.apache")) == (
        "Path does not exist: /x")
    assert first_line(ValueError("")) == "ValueError"


def test_an_unreachable_standalone_master_fails_fast_in_one_line(tiny_model_path, tmp_path,
                                                                 monkeypatch, capsys):
    """Spark retries an unreachable spark:// master for minutes; the CLI says so at once."""
    import socket
    import time

    from braintumor.cli import main

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MODEL_PATH", str(tiny_model_path))
    monkeypatch.setenv("SPARK_MASTER", f"spark://127.0.0.1:{port}")
    started = time.monotonic()
    code = main(["spark", "classify", "--input", str(tmp_path), "--output",
                 str(tmp_path / "out.parquet")])
    assert code == 2 and time.monotonic() - started < 20
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "SPARK_MASTER" in err and f"127.0.0.1:{port}" in err
