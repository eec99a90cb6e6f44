"""A model with a segmentation layer: its outline comes out of the explained pass itself;
a model without one keeps its two-output graph."""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pytest

from braintumor.config import Settings
from braintumor.errors import ModelLoadError
from braintumor.model import LoadedModel, load_model
from seg_helpers import SEG_SIZE, save_seg_model


@pytest.fixture(scope="module")
def seg_model(tmp_path_factory) -> LoadedModel:
    path = save_seg_model(tmp_path_factory.mktemp("seg") / "seg.keras")
    return load_model(Settings(MODEL_PATH=path))


def test_the_outline_is_the_segmentation_layer_s_output_in_the_same_pass(seg_model):
    x = np.random.default_rng(0).uniform(0, 1, (3, SEG_SIZE, SEG_SIZE, 1)).astype(np.float32)
    explanation = seg_model.explain(x)
    assert seg_model.segments and seg_model.graph.segmentation_name == "segmentation"
    assert explanation.outline is not None
    assert explanation.outline.shape == (3, SEG_SIZE, SEG_SIZE)
    keras_model = seg_model.keras_model
    layer = keras.Model(keras_model.input, keras_model.get_layer("segmentation").output)
    np.testing.assert_allclose(explanation.outline, np.asarray(layer(x))[..., 0], atol=1e-5)
    np.testing.assert_allclose(explanation.probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(explanation.probabilities, np.asarray(keras_model(x)),
                               atol=1e-5)  # temperature 1: the served answer is unchanged
    assert explanation.cam.shape == (3, SEG_SIZE // 8, SEG_SIZE // 8)  # "gated": 1/8


def test_a_model_without_a_segmentation_layer_keeps_its_two_outputs(tiny_model):
    assert not tiny_model.segments and tiny_model.graph.segmentation_name == ""
    assert len(tiny_model.graph.model.outputs) == 2
    spec = tiny_model.input_spec
    x = np.zeros((1, *spec.size, spec.channels), np.float32)
    assert tiny_model.explain(x).outline is None


def test_a_segmentation_layer_the_model_lacks_or_of_the_wrong_shape_stops_loading(seg_model):
    for name, why in (("nowhere", "does not have"), ("gated", r"expected \(None, H, W, 1\)")):
        metadata = replace(seg_model.metadata, segmentation_layer=name)
        with pytest.raises(ModelLoadError, match=why):
            LoadedModel(seg_model.keras_model, metadata, seg_model.path)


def test_the_not_a_brain_mri_statistics_of_an_outline_model_read_its_backbone(seg_model,
                                                                              tiny_model):
    from braintumor.training.ood_fit import backbone_feature_dims, fit_statistics

    # width 8: the backbone pools 64 features, the gated outline features 16 more
    assert seg_model.feature_dims == 80 and backbone_feature_dims(seg_model) == 64
    assert backbone_feature_dims(tiny_model) == tiny_model.feature_dims
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 255, (24, SEG_SIZE, SEG_SIZE), dtype=np.uint8)
    fits, description = fit_statistics(seg_model, pixels[:16], np.arange(16) % 4, pixels[16:])
    assert fits["features"].dims == 64 == description["components"]["features"]["dims"]
