"""The training pipeline end to end on a tiny synthetic dataset (real TensorFlow), its
resume, the trained model served through the API, and temperature calibration."""

from __future__ import annotations

import csv
import io
import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from braintumor.training.calibration import (
    expected_calibration_error,
    fit_temperature,
    nll,
    softmax,
)
from braintumor.training.train import TrainConfig, train
from conftest import encode, scan_like

CLASS_FOLDERS = ["glioma", "meningioma", "notumor", "pituitary"]
CLASS_NAMES = ["Glioma", "Meningioma", "No Tumor", "Pituitary"]
PER_CLASS = 12
#: Where each class's bright "lesion" sits (fractions of width and height); none for notumor.
LESIONS = {"glioma": (0.3, 0.3), "meningioma": (0.7, 0.3), "notumor": None,
           "pituitary": (0.5, 0.72)}
SIZE = 32


def synthetic_scan(folder: str, index: int, size: int = 48) -> Image.Image:
    """A scan-like slice whose class shows as a bright disc at a class-dependent place.

    Strong per-image noise keeps any two pictures clearly apart by the split's
    near-duplicate rule, so only the copies planted on purpose form groups.
    """
    seed = 100 * CLASS_FOLDERS.index(folder) + index
    rng = np.random.default_rng(seed)
    image = scan_like((size, size), seed=seed)
    lesion = LESIONS[folder]
    if lesion is not None:
        cx, cy = lesion[0] * size, lesion[1] * size
        r = 0.13 * size
        ImageDraw.Draw(image).ellipse([cx - r, cy - r, cx + r, cy + r], fill=245)
    pixels = np.asarray(image, dtype=np.float64) + rng.normal(0, 25, (size, size))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L")


def make_dataset(root: Path) -> list[str]:
    """Class-per-folder PNGs and JPEGs (notumor mostly RGB, as in the real data), one exact
    copy, and stray notebook checkpoints that must be ignored. Returns the relative paths
    of the images that count."""
    paths: list[str] = []
    for folder in CLASS_FOLDERS:
        (root / folder).mkdir(parents=True)
        # glioma's twelfth image is the planted copy: 12 images a class
        for i in range(PER_CLASS - (folder == "glioma")):
            image = synthetic_scan(folder, i)
            if folder == "notumor" and i % 3:
                image = image.convert("RGB")
            name = f"{folder}/{folder[:2]}{i:02d}." + ("png" if i % 2 == 0 else "jpg")
            image.save(root / name, quality=95)
            paths.append(name)
    shutil.copy(root / "glioma/gl00.png", root / "glioma/gl00_copy.png")
    paths.append("glioma/gl00_copy.png")
    for stray in (root / ".ipynb_checkpoints", root / "glioma/.ipynb_checkpoints"):
        stray.mkdir()
        synthetic_scan("pituitary", 99).save(stray / "gl00-checkpoint.png")
    return sorted(paths)


@dataclass
class Trained:
    data: Path
    images: list[str]
    out: Path
    run_dir: Path
    metadata: dict
    config: TrainConfig


def config_for(data: Path, tmp: Path, epochs: int = 2, name: str = "m.keras",
               run: str = "run", batch_size: int = 8) -> TrainConfig:
    return TrainConfig(data=str(data), out=str(tmp / name), run_dir=str(tmp / run), size=SIZE,
                       epochs=epochs, batch_size=batch_size, cache_dir="",
                       architecture="compact")


def history(run_dir: Path) -> list[dict]:
    with open(run_dir / "train.history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("dataset") / "Training"
    return root, make_dataset(root)


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory) -> Trained:
    data, images = dataset
    tmp = tmp_path_factory.mktemp("trained")
    config = config_for(data, tmp)
    metadata = train(config)
    return Trained(data, images, Path(config.out), Path(config.run_dir), metadata, config)


@pytest.fixture
def eager():
    """Run TensorFlow functions eagerly; the tests using it also train one batch an epoch.

    Tracing the training step costs some 15-20 s on two busy cores, a whole tiny run in
    eager mode (QUICK_BATCH) a few seconds. The module's ``trained`` run goes through the
    compiled path; the tests using this fixture are about the run folder, resume and the
    CLI.
    """
    import tensorflow as tf

    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(False)


QUICK_BATCH = 64
#: Harmless warnings of eager mode (tf.data stays compiled; Keras' input-structure note).
quiet_eager = pytest.mark.filterwarnings(
    "ignore:Even though the `tf.config.experimental_run_functions",
    "ignore:The structure of `inputs` doesn't match",
)


@pytest.fixture(scope="module")
def served(trained):
    from braintumor.config import Settings
    from braintumor.model import load_model

    # warn: OOD statistics fitted on 39 synthetic scans say little; these tests are about
    # the predictions (refusal is tested in tests/ood and tests/api)
    settings = Settings(MODEL_PATH=trained.out, OOD_POLICY="warn")
    return settings, load_model(settings)


# --- the pipeline end to end ---------------------------------------------------------------


def test_synthetic_images_are_not_near_duplicates(dataset) -> None:
    """Premise of the split checks below: only the planted copy forms a group."""
    from braintumor.datasets.folders import load_folder
    from braintumor.training.split import duplicate_groups

    data, images = dataset
    loaded = load_folder(data, CLASS_NAMES, (SIZE, SIZE))
    assert loaded.paths == images
    groups = duplicate_groups(loaded.pixels)
    copy, original = images.index("glioma/gl00_copy.png"), images.index("glioma/gl00.png")
    assert groups[copy] == groups[original]
    assert len(set(groups.tolist())) == len(images) - 1


def test_training_writes_a_model_with_its_metadata(trained) -> None:
    from braintumor.datasets.folders import load_folder
    from braintumor.model.metadata import read_metadata

    assert trained.out.is_file()
    raw = read_metadata(trained.out)
    assert raw is not None
    meta, source = raw
    assert source == "embedded"
    assert meta == trained.metadata  # what train() returns is what the file carries
    assert meta["format"] == "braintumor-model/1"
    assert meta["class_names"] == CLASS_NAMES
    assert meta["input"] == {"size": [SIZE, SIZE], "channels": 1, "scaling": "unit",
                             "framing": "stretch"}
    assert 0.05 <= meta["temperature"] <= 20 and meta["temperature"] > 0
    assert meta["gradcam_layer"] == "features"
    assert meta["architecture"] == "compact"
    assert meta["version"].startswith(f"compact-{SIZE}px-")

    training = meta["training"]
    expected_fp = load_folder(trained.data, CLASS_NAMES, (SIZE, SIZE)).fingerprint
    assert training["data_fingerprint"] == expected_fp
    counts = training["images"]
    assert counts["train"] + counts["validation"] == len(trained.images)
    assert counts["validation"] > 0
    recipe = training["recipe"]
    assert recipe["epochs"] == 2 and recipe["size"] == SIZE and recipe["batch_size"] == 8
    assert recipe["architecture"] == "compact" and recipe["class_names"] == CLASS_NAMES
    assert "cache_dir" not in recipe
    metrics = training["metrics"]
    assert set(metrics) == {"validation_accuracy", "validation_nll", "validation_nll_calibrated",
                            "validation_ece", "validation_ece_calibrated"}
    assert all(np.isfinite(v) for v in metrics.values())
    assert 0 <= metrics["validation_accuracy"] <= 1
    ood = meta["ood"]  # the not-a-brain-MRI statistics, fitted on the same split
    assert set(ood["components"]) == {"features", "layout"}
    assert ood["images"] == {"train": counts["train"], "validation": counts["validation"]}
    assert ood["split"] == str(trained.run_dir / "split.json") and ood["threshold"] > 0
    # the temperature minimises the validation NLL, so it cannot make it worse
    assert metrics["validation_nll_calibrated"] <= metrics["validation_nll"] + 1e-5
    assert training["train_seconds"] > 0


def test_saved_model_has_no_optimizer_state(trained) -> None:
    import h5py
    import keras

    with zipfile.ZipFile(trained.out) as archive:
        names = set(archive.namelist())
        assert {"config.json", "model.weights.h5", "braintumor.json"} <= names
        config = json.loads(archive.read("config.json"))
        weights = archive.read("model.weights.h5")
    assert not config.get("compile_config")  # {} or None: saved uncompiled
    with h5py.File(io.BytesIO(weights), "r") as h5:
        assert "optimizer" not in h5
        assert len(h5["layers"]) > 0
    model = keras.saving.load_model(trained.out)
    assert getattr(model, "optimizer", None) is None
    assert model.get_layer("features") is not None


def test_run_folder_has_history_split_and_config(trained) -> None:
    run = trained.run_dir
    rows = history(run)
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(rows[0])
    assert (run / "train.best.weights.h5").is_file()
    assert json.loads((run / "config.json").read_text())["epochs"] == 2
    with Image.open(run / "train.learning_curve.png") as curve:
        assert curve.format == "PNG" and curve.width > 600

    split = json.loads((run / "split.json").read_text())
    train_set, val_set = set(split["train"]), set(split["val"])
    assert len(train_set) == len(split["train"]) and len(val_set) == len(split["val"])
    assert not train_set & val_set
    assert sorted(train_set | val_set) == trained.images  # every image, no stray checkpoint
    assert not any(".ipynb" in p for p in train_set | val_set)
    # the planted copy sits on the same side as its original
    assert ("glioma/gl00.png" in val_set) == ("glioma/gl00_copy.png" in val_set)
    # stratified: every class is represented in validation
    assert {p.split("/")[0] for p in val_set} == set(CLASS_FOLDERS)
    counts = trained.metadata["training"]["images"]
    assert (len(train_set), len(val_set)) == (counts["train"], counts["validation"])


# --- resume --------------------------------------------------------------------------------


@quiet_eager
def test_cli_rerun_in_the_same_run_folder_continues(trained, tmp_path, monkeypatch, capsys,
                                                    eager) -> None:
    """`braintumor train` again on a finished run folder, with 3 epochs instead of 2: it
    completes, keeps the first run's history and adds to it."""
    from braintumor.cli import main
    from braintumor.model.metadata import read_metadata

    run, out = tmp_path / "run", tmp_path / "models/cli.keras"
    shutil.copytree(trained.run_dir, run)  # the module's run stays as the other tests see it
    before = history(run)
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory by default
    code = main(["train", "--data", str(trained.data), "--out", str(out), "--run-dir", str(run),
                 "--size", "32", "--epochs", "3", "--batch-size", str(QUICK_BATCH),
                 "--cache-dir", ""])

    assert code == 0
    printed = capsys.readouterr().out
    # Keras logs the epochs first; the command's own answer is the metrics object, last
    metrics = json.loads(printed[printed.rindex("{"):])
    meta, _ = read_metadata(out)
    assert metrics == meta["training"]["metrics"]
    # the CLI's defaults for the compact architecture: one grey channel, unit scaling
    assert meta["input"] == {"size": [32, 32], "channels": 1, "scaling": "unit",
                             "framing": "stretch"}
    assert meta["training"]["recipe"]["epochs"] == 3
    rows = history(run)
    assert len(rows) > len(before) == 2
    assert rows[:2] == before  # the first run's rows are kept, not overwritten
    assert int(rows[-1]["epoch"]) == 2  # and the new run went up to its third epoch
    split = json.loads((run / "split.json").read_text())
    assert sorted(split["train"] + split["val"]) == trained.images
    assert not (tmp_path / ".cache").exists()  # --cache-dir '' turns the cache off


class SimulatedCrash(RuntimeError):
    pass


@quiet_eager
def test_interrupted_run_resumes_from_its_last_epoch(dataset, tmp_path, monkeypatch,
                                                      eager) -> None:
    """A run killed after its first epoch picks up at the second when started again."""
    import keras

    real_logger = keras.callbacks.CSVLogger

    class CrashAfterFirstEpoch(real_logger):  # the logger runs after the backup callback
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            raise SimulatedCrash(f"killed after epoch {epoch}")

    data, _ = dataset
    config = config_for(data, tmp_path, epochs=2, batch_size=QUICK_BATCH)
    monkeypatch.setattr(keras.callbacks, "CSVLogger", CrashAfterFirstEpoch)
    with pytest.raises(SimulatedCrash):
        train(config)
    monkeypatch.undo()
    assert [int(r["epoch"]) for r in history(tmp_path / "run")] == [0]
    assert not Path(config.out).exists()

    train(config)

    # resumed at epoch 1: a fresh start would have logged epoch 0 a second time
    assert [int(r["epoch"]) for r in history(tmp_path / "run")] == [0, 1]
    assert Path(config.out).is_file()


# --- the trained model in the service ------------------------------------------------------


def test_trained_model_loads_with_its_metadata(trained, served) -> None:
    import keras

    from braintumor.model.memory import with_mirror
    from braintumor.preprocessing import InputSpec, to_model_input

    _, loaded = served
    assert loaded.metadata.source == "embedded"
    assert loaded.class_names == trained.metadata["class_names"] == CLASS_NAMES
    assert loaded.input_spec == InputSpec((SIZE, SIZE), 1, "unit")
    assert loaded.metadata.temperature == trained.metadata["temperature"]
    assert loaded.metadata.training == trained.metadata["training"]
    assert loaded.graph.layer_name == "features"

    pixels = np.stack([np.asarray(synthetic_scan(f, 50).resize((SIZE, SIZE)))
                       for f in CLASS_FOLDERS])
    x = to_model_input(pixels, loaded.input_spec)
    served, head = loaded.outputs(x), loaded.outputs(x, head_only=True)
    logits, probs, head_probs, features = (served.logits, served.probabilities,
                                           head.probabilities, head.features)
    # the head's probabilities are the model's, divided by the model's own temperature
    reference = np.asarray(keras.saving.load_model(trained.out)(x, training=False))
    np.testing.assert_allclose(softmax(logits.astype(np.float64)), reference, atol=1e-5)
    np.testing.assert_allclose(head_probs, softmax(logits.astype(np.float64),
                                                   loaded.metadata.temperature), atol=1e-5)
    # the served ones are the nearest-neighbour vote over every training image, fitted by
    # the run and stored with the model
    assert loaded.memory is not None and len(loaded.memory.labels) == len(trained.images)
    assert loaded.metadata.memory["size"] == len(trained.images)
    assert loaded.metadata.memory["k"] == loaded.memory.k
    assert loaded.metadata.memory["flip"] == loaded.memory.flip
    assert {row["flip"] for row in loaded.metadata.memory["grid"]} == {False, True}
    query, mixed = features, head_probs
    if loaded.memory.flip:  # chosen on validation; then the mirror images vote too
        mirror = loaded.outputs(x[:, :, ::-1].copy(), head_only=True)
        query, mixed = (np.asarray(t) for t in with_mirror(features, head_probs, mirror.features,
                                                           mirror.probabilities))
    np.testing.assert_allclose(probs, loaded.memory.vote_numpy(query, mixed), atol=1e-5)


def test_api_classifies_with_the_trained_model(served) -> None:
    from braintumor.api import create_app

    settings, loaded = served
    client = create_app(settings, model=loaded).test_client()
    upload = encode(synthetic_scan("glioma", 60, size=64))
    response = client.post("/api/classify", data={"file": (io.BytesIO(upload), "scan.png")},
                           content_type="multipart/form-data")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"success", "prediction", "visualization", "ood", "processing_time_ms",
                         "timestamp"}
    assert body["success"] is True
    assert isinstance(body["ood"]["score"], float)  # training fitted the OOD statistics
    prediction = body["prediction"]
    assert set(prediction) == {"class", "class_id", "confidence", "probabilities"}
    assert list(prediction["probabilities"]) == CLASS_NAMES
    assert sum(prediction["probabilities"].values()) == pytest.approx(100.0)
    assert prediction["class"] == CLASS_NAMES[prediction["class_id"]]
    assert set(body["visualization"]) == {"heatmap_overlay", "original_image", "heatmap_only"}
    health = client.get("/api/health").get_json()
    assert health["details"]["image_size"] == [SIZE, SIZE]


def test_rgb_and_grey_encodings_get_identical_probabilities(served) -> None:
    from braintumor.classify import Classifier

    settings, loaded = served
    classifier = Classifier(loaded, settings)
    grey = scan_like((80, 80), seed=21)
    as_grey = classifier.classify_upload(encode(grey), "grey.png").prediction.probabilities
    as_rgb = classifier.classify_upload(encode(grey.convert("RGB")), "rgb.png")
    assert Image.open(io.BytesIO(encode(grey.convert("RGB")))).mode == "RGB"
    np.testing.assert_array_equal(as_rgb.prediction.probabilities, as_grey)
    # not vacuous: a different scan gets different probabilities from this model
    other = classifier.classify_upload(encode(synthetic_scan("pituitary", 70, 80)), "o.png")
    assert not np.array_equal(other.prediction.probabilities, as_grey)


# --- temperature calibration ---------------------------------------------------------------


def sample_labels(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One label per row, drawn from that row's distribution."""
    cumulative = probs.cumsum(axis=1)
    draws = rng.random((len(probs), 1))
    return np.minimum((draws > cumulative).sum(axis=1), probs.shape[1] - 1)


@pytest.mark.parametrize("true_temperature", [0.6, 1.0, 2.5])
def test_fit_temperature_recovers_a_known_temperature(true_temperature: float) -> None:
    rng = np.random.default_rng(int(true_temperature * 10))
    logits = rng.normal(0, 3, (30_000, 4))
    labels = sample_labels(softmax(logits, true_temperature), rng)

    fitted = fit_temperature(logits, labels)

    assert fitted == pytest.approx(true_temperature, rel=0.05)
    assert nll(logits, labels, fitted) <= nll(logits, labels, true_temperature) + 1e-9
    for other in (0.05, 0.3, 0.8 * fitted, 1.25 * fitted, 5.0, 20.0):
        assert nll(logits, labels, fitted) <= nll(logits, labels, other)


def test_fitting_lowers_the_nll_of_an_overconfident_model() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 4, (5_000, 4))
    labels = sample_labels(softmax(logits, 3.0), rng)  # the model is far too sure
    fitted = fit_temperature(logits, labels)
    assert fitted > 2.0
    assert nll(logits, labels, fitted) < nll(logits, labels) - 0.1
    # one temperature changes no prediction
    assert np.array_equal(softmax(logits, fitted).argmax(1), logits.argmax(1))


def test_nll_by_hand() -> None:
    logits = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.6, 0.3]]))
    assert nll(logits, np.array([0, 2])) == pytest.approx(-(np.log(0.5) + np.log(0.3)) / 2)
    # a certain mistake is capped, not infinite
    assert np.isfinite(nll(np.array([[1000.0, -1000.0]]), np.array([1])))


def test_ece_is_small_when_calibrated_and_large_when_not() -> None:
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 2, (30_000, 4))
    probs = softmax(logits)
    calibrated = sample_labels(probs, rng)
    assert expected_calibration_error(probs, calibrated) < 0.015
    overconfident = sample_labels(softmax(logits, 3.0), rng)
    assert expected_calibration_error(probs, overconfident) > 0.1


def test_ece_by_hand() -> None:
    # every prediction 80 % sure, half of them right: |0.5 - 0.8| in the one bin used
    probs = np.tile([0.8, 0.1, 0.1], (4, 1))
    assert expected_calibration_error(probs, np.array([0, 0, 1, 2])) == pytest.approx(0.3)
    # two bins: 0.9-sure and right (gap 0.1), 0.6-sure and wrong (gap 0.6), half each
    probs = np.array([[0.9, 0.1], [0.6, 0.4]])
    assert expected_calibration_error(probs, np.array([0, 1])) == pytest.approx(0.35)
    # certain and wrong: the top bin includes a confidence of exactly 1
    assert expected_calibration_error(np.array([[1.0, 0.0]]), np.array([1])) == 1.0


def test_softmax_rows_sum_to_one_and_survive_large_logits() -> None:
    rng = np.random.default_rng(5)
    logits = np.vstack([rng.normal(0, 10, (100, 4)), [[1000.0, 999.0, -1000.0, 0.0]]])
    for temperature in (0.1, 1.0, 7.0):
        probs = softmax(logits, temperature)
        assert np.all(np.isfinite(probs)) and np.all(probs >= 0)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(softmax(np.array([[0.0, np.log(3.0)]])), [[0.25, 0.75]])
    # a higher temperature flattens, a lower one sharpens
    assert softmax(logits, 7.0).max(1).mean() < softmax(logits).max(1).mean()
    assert softmax(logits, 0.1).max(1).mean() > softmax(logits).max(1).mean()


def test_cli_fit_memory_refits_a_saved_model_from_its_run(trained, tmp_path, capsys) -> None:
    """`braintumor fit-memory` gives a copy a memory chosen on the run's validation split,
    with and without mirror images, and leaves the original file as it was."""
    from braintumor.cli import main
    from braintumor.config import Settings
    from braintumor.model import load_model
    from braintumor.model.metadata import read_metadata

    original = trained.out.read_bytes()
    out = tmp_path / "refit.keras"
    code = main(["fit-memory", "--model", str(trained.out), "--data", str(trained.data),
                 "--run-dir", str(trained.run_dir), "--out", str(out), "--cache-dir", ""])
    assert code == 0
    assert trained.out.read_bytes() == original
    memory = read_metadata(out)[0]["memory"]
    assert memory["size"] == len(trained.images)
    assert len(memory["grid"]) == 54 and {row["flip"] for row in memory["grid"]} == {False, True}
    best = max(row["accuracy"] for row in memory["grid"])
    assert memory["validation_accuracy"] == pytest.approx(best, abs=1e-5)
    loaded = load_model(Settings(MODEL_PATH=out))
    assert loaded.memory is not None and loaded.memory.flip == memory["flip"]
    assert capsys.readouterr().out.strip()  # the command answers with what it fitted
