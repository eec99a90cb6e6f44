"""`spark classify --series` on real Spark: one row per DICOM series, the API's answer."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dicom_helpers import PATIENT_VALUES, make_dicom
from series_helpers import nifti_bytes, series_files, synthetic_pictures, zip_of

from .helpers import relative

PROB_COLUMNS = ["prob_glioma", "prob_meningioma", "prob_no_tumor", "prob_pituitary"]
COUNT_COLUMNS = ["slices_glioma", "slices_meningioma", "slices_no_tumor", "slices_pituitary"]
UIDS = {"a": "1.2.826.0.1.3680043.8.498.101", "b": "1.2.826.0.1.3680043.8.498.102",
        "mixed": "1.2.826.0.1.3680043.8.498.103", "blank": "1.2.826.0.1.3680043.8.498.104",
        "cut": "1.2.826.0.1.3680043.8.498.105"}
STRAYS = ("study/notes.txt", "study/broken.dcm", "study/sub/no-uid.dcm")


def _blank(count: int, size: tuple[int, int] = (64, 64)) -> list[Image.Image]:
    return [Image.new("L", size, 0) for _ in range(count)]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, dict[str, list[tuple[str, bytes]]]]:
    """Five series with their files interleaved in one folder and a nested one (names
    with and without ``.dcm``), plus three files that belong to no series.

    Returns the root and, per series, its (relative path, bytes) in slice order.
    """
    root = tmp_path_factory.mktemp("series") / "in"
    # a: a blank slice first (refused), then four scans; b: three scans of another size
    a = (series_files(_blank(1, (96, 96)), series_uid=UIDS["a"], start=-45.0)
         + series_files(synthetic_pictures(4, seed=40), series_uid=UIDS["a"]))
    b = series_files(synthetic_pictures(3, size=(112, 112), seed=60), series_uid=UIDS["b"])
    mixed = (series_files(synthetic_pictures(2, seed=70), series_uid=UIDS["mixed"])
             + series_files(synthetic_pictures(1, size=(128, 96), seed=72),
                            series_uid=UIDS["mixed"], start=-30.0))
    blank = series_files(_blank(3), series_uid=UIDS["blank"])
    cut = series_files(synthetic_pictures(2, size=(64, 64), seed=80), series_uid=UIDS["cut"])
    cut[1] = cut[1][:-100]  # the header is whole, the pixels are not
    # a's blank slice has its own study UID in series_files: the API does not compare them
    series = {"a": a, "b": b, "mixed": mixed, "blank": blank, "cut": cut}
    numbers = list(range(1, 1 + sum(map(len, series.values()))))
    random.Random(3).shuffle(numbers)  # interleaved by name
    files: dict[str, list[tuple[str, bytes]]] = {}
    for name, datas in series.items():
        files[name] = []
        for k, data in enumerate(datas):
            number = numbers.pop()
            folder = "study/sub" if name == "a" and k >= 3 else "study"
            suffix = ".dcm" if number % 2 else ""  # DICOM files often have no extension
            files[name].append((f"{folder}/IM{number:04d}{suffix}", data))
    valid = b[0]
    strays = {STRAYS[0]: b"a note, not DICOM", STRAYS[1]: valid[:300],
              STRAYS[2]: make_dicom(np.zeros((32, 32), np.uint16))}
    for relative_path, data in [*(f for fs in files.values() for f in fs), *strays.items()]:
        path = root / relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "study" / ".DS_Store").write_bytes(b"skipped: a hidden file")
    return root, files


@pytest.fixture(scope="module")
def classified(spark, spark_settings, tree, tmp_path_factory):
    from braintumor.spark.series import run_classify_series

    root, _ = tree
    base = tmp_path_factory.mktemp("series-out")
    counts = run_classify_series(spark_settings, str(root), str(base / "out.parquet"),
                                 heatmap_dir=str(base / "maps"), spark=spark)
    rows = spark.read.parquet(str(base / "out.parquet")).toPandas()
    return counts, rows


def _series_rows(rows):
    found = rows[rows["series_uid"].notna()]
    return found.set_index("series_uid")


def post_series(app, files: list[tuple[str, bytes]]):
    form = {"file": [(io.BytesIO(data), Path(name).name or "x") for name, data in files]}
    return app.test_client().post("/api/classify-series", data=form,
                                  content_type="multipart/form-data")


def test_one_row_per_series_and_per_stray_file(classified, tree):
    counts, rows = classified
    root, files = tree
    assert counts == {"series": 5, "files": 19, "errors": 6}
    assert len(rows) == 8
    assert sorted(rows["series_uid"].dropna()) == sorted(UIDS.values())
    series = _series_rows(rows)
    for name, uid in UIDS.items():
        assert series.loc[uid, "files"] == len(files[name])
        # path: the series' first file in path order, to find it by
        assert relative(series.loc[uid, "path"], root) == min(p for p, _ in files[name])
    assert set(rows["model_version"]) == {"tiny-test"}


def test_series_rows_are_the_apis(classified, tree, app, tiny_model, spark_settings):
    from braintumor.classify import Classifier
    from braintumor.series import classify_series, series_from_parts

    _, rows = classified
    root, files = tree
    series = _series_rows(rows)
    classifier = Classifier(tiny_model, spark_settings)
    for name in ("a", "b"):
        row = series.loc[UIDS[name]]
        assert row["error"] is None, row["error"]
        response = post_series(app, files[name])
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        summary = body["summary"]
        assert row["class"] == summary["class"] and row["class_id"] == summary["class_id"]
        got = row[PROB_COLUMNS].to_numpy(dtype=np.float64)
        # the answer's percentages add up to 100 (largest remainder): 0.01 apart at most
        np.testing.assert_allclose(got * 100, list(summary["probabilities"].values()),
                                   atol=0.0101)
        assert row["confidence"] * 100 == pytest.approx(summary["confidence"], abs=0.0101)
        assert row["tumour_probability"] * 100 == pytest.approx(
            summary["tumour_probability"], abs=0.0051)
        assert (row["answered"], row["refused"]) == (summary["slices_answered"],
                                                     summary["slices_refused"])
        assert list(row[COUNT_COLUMNS]) == list(summary["class_counts"].values())
        assert row["key_slice"] == summary["key_slice"] == body["key_slice"]["index"]
        assert row["key_position"] == body["key_slice"]["position"]
        assert row["rule"] == summary["rule"]
        facts = body["series"]
        assert (row["slices"], row["modality"], row["orientation"], row["ordered_by"],
                row["height"], row["width"], row["slice_spacing_mm"], row["files_ignored"]
                ) == (facts["slice_count"], facts["modality"], facts["orientation"],
                      facts["ordered_by"], facts["rows"], facts["columns"],
                      facts["slice_spacing_mm"], facts["files_ignored"])
        assert row["warning"] is None and "warning" not in facts
        # the key slice's file is the one the API put at that index (slice order)
        key_name, key_data = files[name][int(row["key_slice"])]
        assert relative(row["key_path"], root) == key_name
        assert (root / key_name).read_bytes() == key_data
        # and the unrounded figures are classify_series' own for the same files
        result = classify_series(classifier, series_from_parts(files[name], spark_settings))
        np.testing.assert_allclose(got, result.summary.probabilities, rtol=0, atol=1e-5)
        assert row["tumour_probability"] == pytest.approx(result.summary.tumour_probability,
                                                          abs=1e-5)
    assert series.loc[UIDS["a"], "refused"] == 1 and series.loc[UIDS["a"], "answered"] == 4
    assert series.loc[UIDS["a"], "key_slice"] != 0  # not the refused blank slice


@pytest.mark.parametrize(("name", "code"), [("mixed", "INVALID_SERIES"),
                                            ("blank", "NOT_BRAIN_MRI"),
                                            ("cut", "INVALID_IMAGE")])
def test_a_series_the_api_refuses_is_one_row_with_its_message(classified, tree, app,
                                                              name, code):
    _, rows = classified
    _, files = tree
    row = _series_rows(rows).loc[UIDS[name]]
    body = post_series(app, files[name]).get_json()
    assert body["success"] is False and body["error"]["code"] == code
    assert row["error"] == body["error"]["message"]
    assert row["class"] is None and np.isnan(row["prob_glioma"]) and row["heatmap"] is None
    if name == "mixed":
        assert "different sizes (96x96 and 128x96)" in row["error"]
    elif name == "blank":  # the volume was read: its facts are there, the answer is not
        assert row["slices"] == 3 and row["height"] == 64 and np.isnan(row["confidence"])


def test_files_in_no_series_have_their_own_error_rows(classified, tree):
    from braintumor.spark.series import NO_SERIES_UID, NOT_DICOM

    _, rows = classified
    root, _ = tree
    strays = rows[rows["series_uid"].isna()].copy()
    strays.index = [relative(p, root) for p in strays["path"]]
    assert sorted(strays.index) == sorted(STRAYS)
    assert strays.loc["study/notes.txt", "error"] == NOT_DICOM
    assert strays.loc["study/broken.dcm", "error"] == NO_SERIES_UID  # cut in its header
    assert strays.loc["study/sub/no-uid.dcm", "error"] == NO_SERIES_UID
    assert (strays["files"] == 1).all() and strays["class"].isna().all()
    assert strays["slices"].isna().all() and strays["key_path"].isna().all()


def test_no_patient_data_in_the_rows(classified):
    _, rows = classified
    text = json.dumps(rows.astype(str).to_dict("records"))
    assert not [value for value in PATIENT_VALUES.values() if value in text]


def test_key_slice_overlays(classified, tree, tiny_model, spark_settings):
    from braintumor.classify import Classifier
    from braintumor.series import classify_series, series_from_parts

    _, rows = classified
    _, files = tree
    series = _series_rows(rows)
    maps = {Path(p).name for p in series["heatmap"].dropna()}
    assert maps == {f"{UIDS['a']}-key-slice.png", f"{UIDS['b']}-key-slice.png"}
    row = series.loc[UIDS["b"]]
    result = classify_series(Classifier(tiny_model, spark_settings),
                             series_from_parts(files["b"], spark_settings))
    with Image.open(row["heatmap"]) as written, \
            Image.open(io.BytesIO(result.pngs["heatmap_overlay"])) as expected:
        assert written.size == expected.size and written.mode == "RGB"
        difference = np.abs(np.asarray(written, np.int16) - np.asarray(expected, np.int16))
        assert difference.max() <= 2


def test_cli_series_flag_writes_csv(spark, tiny_model_path, tree, tmp_path, monkeypatch,
                                    capsys):
    from braintumor.cli import main
    from braintumor.spark.series import series_columns

    monkeypatch.setenv("MODEL_PATH", str(tiny_model_path))
    monkeypatch.setenv("SPARK_MASTER", "local[2]")
    root, _ = tree
    out = tmp_path / "out.csv"
    assert main(["spark", "classify", "--series", "--input", f"file://{root}/study/sub",
                 "--output", str(out), "--format", "csv"]) == 0
    summary = json.loads(capsys.readouterr().out)
    # the nested folder: a's last two slices (a series of its own here) and a stray file
    assert summary == {"output": str(out), "series": 1, "files": 3, "errors": 1}
    table = spark.read.option("header", "true").csv(str(out)).toPandas()
    columns = [name for name, _ in series_columns(
        ["Glioma", "Meningioma", "No Tumor", "Pituitary"])]
    assert list(table.columns) == columns
    assert set(table["series_uid"].dropna()) == {UIDS["a"]}


def test_a_series_uid_that_is_not_a_uid_is_written_as_its_digest():
    """Free text in the UID tag (a name, say) still groups its files, never reaches a row."""
    from braintumor.errors import InvalidImageError
    from braintumor.spark.series import NOT_DICOM, series_key, series_uid_of

    pixels = np.zeros((32, 32), np.uint16)
    odd = [make_dicom(pixels, extra={"SeriesInstanceUID": "Zyxwhimsy Quentinella"})
           for _ in range(2)]
    keys = {series_uid_of(data) for data in odd}
    assert len(keys) == 1 and (key := keys.pop()).startswith("sha256-")
    assert "Zyxwhimsy" not in key
    proper = make_dicom(pixels, extra={"SeriesInstanceUID": UIDS["a"]})
    assert series_key(proper, 1 << 20) == (UIDS["a"], None, None)
    with pytest.raises(InvalidImageError, match="Not a DICOM file"):
        series_uid_of(b"\x00" * 200)
    assert series_key(b"plain text", 1 << 20) == (None, NOT_DICOM, None)


def test_zip_and_nifti_files_are_a_series_each(spark, spark_settings, app, tmp_path):
    """A research archive: NIfTI volumes and zips of DICOM files, one series per file,
    each row the endpoint's answer for that one upload."""
    from braintumor.spark.series import NOT_DICOM, run_classify_series

    volume = np.stack([np.asarray(p, np.int16) for p in synthetic_pictures(4, seed=90)],
                      axis=-1)
    zip_uid = "1.2.826.0.1.3680043.8.498.201"
    uploads = {
        "archive/brain.nii.gz": nifti_bytes(volume),
        "archive/plain/brain.nii": nifti_bytes(volume[..., :3], compress=False),
        "archive/series.zip": zip_of({f"s/IM{i}": data for i, data in enumerate(
            series_files(synthetic_pictures(3, seed=95), series_uid=zip_uid))}),
    }
    root = tmp_path / "in"
    for name, data in {**uploads, "archive/README.txt": b"not a series"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    counts = run_classify_series(spark_settings, str(root), str(tmp_path / "out"),
                                 spark=spark)
    assert counts == {"series": 3, "files": 4, "errors": 1}
    rows = spark.read.parquet(str(tmp_path / "out")).toPandas()
    rows.index = [relative(p, root) for p in rows["path"]]
    assert rows.loc["archive/README.txt", "error"] == NOT_DICOM
    assert rows.loc["archive/README.txt", "source"] is None
    assert dict(rows["source"].dropna()) == {"archive/brain.nii.gz": "nifti",
                                             "archive/plain/brain.nii": "nifti",
                                             "archive/series.zip": "zip"}
    assert rows.loc["archive/series.zip", "series_uid"] == zip_uid
    assert rows.loc["archive/brain.nii.gz", "series_uid"] is None  # NIfTI has no UID
    for name, data in uploads.items():
        row = rows.loc[name]
        assert row["error"] is None, row["error"]
        assert row["files"] == 1 and row["key_path"] == row["path"]
        body = post_series(app, [(Path(name).name, data)]).get_json()
        assert body["success"], body
        assert row["class"] == body["summary"]["class"]
        assert row["slices"] == body["series"]["slice_count"]
        assert row["key_slice"] == body["key_slice"]["index"]
        np.testing.assert_allclose(row[PROB_COLUMNS].to_numpy(dtype=np.float64) * 100,
                                   list(body["summary"]["probabilities"].values()),
                                   atol=0.006)  # rounded to 0.01 %, float32 batches
