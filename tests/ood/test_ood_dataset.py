"""On real scans (BRAINTUMOR_DATA): they pass; what is not a scan is refused."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from braintumor.config import Settings
from conftest import dataset_dir, encode

CLASS_NAMES = ["Glioma", "Meningioma", "No Tumor", "Pituitary"]


@pytest.mark.dataset
def test_every_testing_scan_passes_the_input_checks():
    from braintumor.decoding import decode_file
    from braintumor.ood.checks import measure

    testing = dataset_dir() / "Testing"
    refused = {}
    paths = sorted(testing.rglob("*.jpg"))
    for path in paths:
        failed = measure(decode_file(str(path))).failures()
        if failed:
            refused[path.name] = failed
    assert len(paths) > 1000
    assert refused == {}


@pytest.fixture(scope="module")
def real_fit(tiny_model_path, tmp_path_factory):
    """The suite's tiny model with statistics fitted on 600 real Training scans."""
    from braintumor.datasets.folders import load_folder
    from braintumor.model import load_model
    from braintumor.training.ood_fit import fit_statistics, store

    path = tmp_path_factory.mktemp("real-fit") / "tiny-real.keras"
    shutil.copy(tiny_model_path, path)
    model = load_model(Settings(MODEL_PATH=path))
    images = load_folder(dataset_dir() / "Training", CLASS_NAMES, model.input_spec.size)
    pick = np.random.default_rng(0).permutation(len(images))[:600]
    fits, description = fit_statistics(model, images.pixels[pick[:450]],
                                       images.labels[pick[:450]], images.pixels[pick[450:]])
    store(path, model.metadata, fits, description)
    return load_model(Settings(MODEL_PATH=path))


def upload(classifier, image: Image.Image):
    from braintumor.errors import NotBrainMRIError

    try:
        return classifier.classify_upload(encode(image), "x.png").ood
    except NotBrainMRIError:
        return None


@pytest.mark.dataset
def test_real_scans_pass_and_noise_black_and_colour_are_refused(real_fit):
    from braintumor.classify import Classifier

    classifier = Classifier(real_fit, Settings(MODEL_PATH=real_fit.path))
    testing = dataset_dir() / "Testing"
    scans = sorted(testing.rglob("*.jpg"))[::20]
    refused = [p.name for p in scans if upload(classifier, Image.open(p)) is None]
    assert len(refused) <= 0.05 * len(scans), refused
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (224, 224), dtype=np.uint8))
    scan = np.asarray(Image.open(scans[0]).convert("L"), dtype=np.float32)
    tinted = Image.fromarray(np.stack([scan, scan * 0.4, scan * 0.1], -1).astype(np.uint8))
    for picture in (noise, Image.new("L", (224, 224)), tinted):
        assert upload(classifier, picture) is None


@pytest.mark.dataset
@pytest.mark.slow
def test_default_model_meets_the_ood_targets():
    """The shipped model (or MODEL_PATH), when it carries fitted statistics: the issue's
    targets, measured on a sample of Testing and the OOD set less its grey photographs."""
    from braintumor.config import load_settings
    from braintumor.evaluation import ood_set as evalset
    from braintumor.evaluation.ood_report import (
        _decoded_files,
        _decoded_items,
        score_images,
        warn_classifier,
    )
    from braintumor.model import load_model
    from braintumor.ood.stats import read_ood_arrays

    settings = load_settings()
    if not settings.MODEL_PATH.is_file() or read_ood_arrays(settings.MODEL_PATH) is None:
        pytest.skip(f"{settings.MODEL_PATH} carries no OOD statistics")
    model = load_model(settings)
    classifier = warn_classifier(model)
    testing = dataset_dir() / "Testing"
    paths = [str(p.relative_to(testing)) for p in sorted(testing.rglob("*.jpg"))[::2]]
    real = score_images(classifier, _decoded_files(testing, paths)).arrays()
    assert real["flagged"].mean() <= 0.02
    scans = [Image.open(testing / p).convert("L") for p in paths[::50]]
    items = [i for i in evalset.build(scans) if i.source != "photos (grey)"]
    ood = score_images(classifier, _decoded_items(items))
    flagged = np.array(ood.flagged)
    sources = np.array(ood.sources)
    assert flagged[np.isin(sources, ["noise", "blank"])].all()
    assert flagged.mean() >= 0.98
