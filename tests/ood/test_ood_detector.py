"""The decision: fitted statistics round-trip through the model file; rules and policies."""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from braintumor.classify import Classifier
from braintumor.config import Settings
from braintumor.decoding import decode_image
from braintumor.model import load_model
from braintumor.ood.detector import DISABLED, NO_STATISTICS, OodDetector
from braintumor.ood.stats import load_statistics
from braintumor.preprocessing import to_model_input
from conftest import encode, scan_like, scan_like_pixels


@pytest.fixture(scope="module")
def ood_model(tiny_ood_model_path):
    return load_model(Settings(MODEL_PATH=tiny_ood_model_path))


def gradient() -> Image.Image:
    """Grey, structured, square: passes every input check, yet nothing like a scan."""
    y, x = np.mgrid[0:224, 0:224].astype(np.float32)
    return Image.fromarray(((x + y) / 446 * 255).astype(np.uint8))


def assess(model, image: Image.Image, policy: str = "warn", **kwargs):
    """The decision the service makes (:meth:`Classifier.assess`) under ``policy``."""
    detector = OodDetector.for_model(model, policy, **kwargs)
    classifier = Classifier(model, Settings(OOD_POLICY=policy), ood=detector)
    return classifier.assess([decode_image(encode(image))], explain=False)[0].ood


def test_fitted_statistics_are_stored_in_the_keras_file(tiny_ood_model_path, ood_model):
    with zipfile.ZipFile(tiny_ood_model_path) as archive:
        names = archive.namelist()
    assert names.count("braintumor.json") == 1 and names.count("braintumor-ood.npz") == 1
    ood = ood_model.metadata.ood
    assert set(ood["components"]) == {"features", "layout"}
    assert ood["components"]["features"]["dims"] == 16 == ood_model.feature_dims
    assert ood["components"]["layout"]["dims"] == 64
    assert ood["threshold"] > 0 and ood["min_confidence"] is None
    assert set(load_statistics(ood_model)) == {"features", "layout"}


def test_fit_and_score_round_trip(tiny_model_path, tmp_path):
    """Scores computed right after fitting equal those of the reloaded model file."""
    from braintumor.training.ood_fit import fit_statistics, store

    path = tmp_path / "m.keras"
    shutil.copy(tiny_model_path, path)
    model = load_model(Settings(MODEL_PATH=path))
    pixels = scan_like_pixels(80, seed=7)
    fits, description = fit_statistics(model, pixels[:60], np.arange(60) % 4, pixels[60:])
    fresh = OodDetector("warn", fits, {k: v["scale"] for k, v in description["components"].items()},
                        description["threshold"])
    x = to_model_input(pixels, model.input_spec)
    features = model.outputs(x).features
    before = fresh.scores(features, pixels)

    written, metadata = store(path, model.metadata, fits, description)
    assert written == path and metadata["ood"] == description
    reloaded = load_model(Settings(MODEL_PATH=path))
    after = OodDetector.for_model(reloaded).scores(features, pixels)
    np.testing.assert_allclose(after, before, rtol=1e-4)
    # the classifier itself is untouched
    np.testing.assert_allclose(reloaded.outputs(x).probabilities,
                               model.outputs(x).probabilities, atol=1e-6)
    # about the validation quantile of the validation images is refused
    assert np.mean(before[60:] > description["threshold"]) <= 0.1


def test_fitting_again_replaces_and_out_leaves_the_original(tiny_ood_model_path, tmp_path):
    from braintumor.training.ood_fit import store

    path = tmp_path / "again.keras"
    shutil.copy(tiny_ood_model_path, path)
    model = load_model(Settings(MODEL_PATH=path))
    description = dict(model.metadata.ood, threshold=9.0)
    store(path, model.metadata, load_statistics(model), description)
    with zipfile.ZipFile(path) as archive:
        assert sorted(n for n in archive.namelist() if n.startswith("braintumor")) == [
            "braintumor-ood.npz", "braintumor.json"]
    assert load_model(Settings(MODEL_PATH=path)).metadata.ood["threshold"] == 9.0

    copy = tmp_path / "copy.keras"
    store(path, model.metadata, load_statistics(model), dict(description, threshold=5.0), out=copy)
    assert load_model(Settings(MODEL_PATH=copy)).metadata.ood["threshold"] == 5.0
    assert load_model(Settings(MODEL_PATH=path)).metadata.ood["threshold"] == 9.0


def test_h5_model_gets_sidecars(ood_model, tmp_path):
    from braintumor.training.ood_fit import store

    model = ood_model
    h5 = tmp_path / "legacy.h5"
    model.keras_model.save(h5)
    bare = load_model(Settings(MODEL_PATH=h5))
    assert load_statistics(bare) is None
    store(h5, model.metadata, load_statistics(model), model.metadata.ood)
    assert (tmp_path / "legacy.json").is_file() and (tmp_path / "legacy.ood.npz").is_file()
    assert set(load_statistics(load_model(Settings(MODEL_PATH=h5)))) == {"features", "layout"}


def test_scans_pass_and_a_grey_pattern_is_refused_by_distance(ood_model):
    for seed in range(900, 910):
        decision = assess(ood_model, scan_like((120, 100), seed=seed))
        assert not decision.flagged, decision
        assert decision.score is not None and decision.score <= decision.threshold
        assert decision.reasons == []
    decision = assess(ood_model, gradient())
    assert decision.flagged and decision.score > decision.threshold
    assert any("layout" in r for r in decision.reasons)


def test_threshold_override(ood_model):
    assert not assess(ood_model, gradient(), threshold_override=1e12).flagged
    assert assess(ood_model, scan_like(seed=901), threshold_override=1e-9).flagged


def test_off_policy_checks_nothing(ood_model):
    assert assess(ood_model, Image.new("L", (96, 96)), policy="off") == DISABLED
    assert DISABLED.to_json() == {"flagged": False, "score": None, "threshold": None,
                                  "reasons": ["check disabled (OOD_POLICY=off)"]}


def test_model_without_statistics_uses_the_input_checks_only(tiny_model):
    decision = assess(tiny_model, scan_like())
    assert not decision.flagged and decision.score is None and decision.threshold is None
    assert decision.reasons == [NO_STATISTICS]
    decision = assess(tiny_model, Image.new("L", (96, 96)))
    assert decision.flagged and "blank" in decision.reasons[0]
    assert decision.reasons[-1] == NO_STATISTICS


def test_confidence_rule_when_metadata_asks_for_it(ood_model):
    detector = OodDetector.for_model(ood_model, "warn")
    strict = OodDetector("warn", detector.fits, detector.scales, detector.threshold,
                         min_confidence=0.99)
    decision = strict.decide([], np.array([0.4, 0.3, 0.2, 0.1]))
    assert decision.flagged and "top probability 40%" in decision.reasons[0]


def test_bare_model_metadata_may_ask_for_the_confidence_rule(tmp_path):
    from types import SimpleNamespace

    bare = SimpleNamespace(path=tmp_path / "bare.h5", feature_dims=16, class_names=list("abcd"),
                           metadata=SimpleNamespace(ood={"min_confidence": 0.5}))
    detector = OodDetector.for_model(bare, "reject")
    assert detector.fits is None and detector.min_confidence == 0.5
    assert detector.decide([], np.array([0.4, 0.3, 0.2, 0.1])).flagged
    assert not detector.decide([], np.array([0.7, 0.1, 0.1, 0.1])).flagged


def test_bad_policy_and_missing_threshold_are_refused(ood_model):
    with pytest.raises(ValueError, match="policy"):
        OodDetector("maybe")
    with pytest.raises(ValueError, match="threshold"):
        OodDetector("warn", load_statistics(ood_model), None, None)


def test_decision_json_shape():
    detector = OodDetector("reject")
    decision = detector.decide(["the image is blank"], np.array([0.25] * 4))
    assert decision.to_json() == {"flagged": True, "score": None, "threshold": None,
                                  "reasons": ["the image is blank", NO_STATISTICS]}
    assert decision.sentence() == "the image is blank"
