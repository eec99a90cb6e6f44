"""Grad-CAM on the model shapes users bring: flat ResNet50, ResNet50 nested as a
sub-model, saved and reloaded, and a model with a known answer."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from braintumor.config import Settings
from braintumor.model import LoadedModel, ModelMetadata, load_model
from braintumor.model.graph import build_explain_graph, find_feature_layer
from braintumor.preprocessing import InputSpec

SIZE = 64  # small inputs keep ResNet50 cheap; the graph is the same at 224


def _metadata(channels: int = 3, size: int = SIZE, scaling: str = "caffe") -> ModelMetadata:
    return ModelMetadata(class_names=["Glioma", "Meningioma", "No Tumor", "Pituitary"],
                         input=InputSpec((size, size), channels, scaling))


@pytest.fixture(scope="module")
def nested_resnet() -> keras.Model:
    """The structure most users' saved models have."""
    keras.utils.set_random_seed(3)
    return keras.Sequential([
        keras.Input((SIZE, SIZE, 3)),
        keras.applications.ResNet50(include_top=False, weights=None,
                                    input_shape=(SIZE, SIZE, 3)),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(4, activation="softmax"),
    ])


@pytest.fixture(scope="module")
def flat_resnet() -> keras.Model:
    from braintumor.training.architectures import resnet50

    keras.utils.set_random_seed(4)
    return resnet50(InputSpec((SIZE, SIZE), 3, "caffe"))[0]


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-100, 100, (1, SIZE, SIZE, 3)).astype(np.float32)


def _check_explains(model: keras.Model, loaded: LoadedModel) -> None:
    x = _image()
    result = loaded.explain(x)
    expected = np.asarray(model(x, training=False))
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-5)
    assert result.cam.shape == (1, SIZE // 32, SIZE // 32)
    assert result.cam.min() >= 0.0 and result.cam.max() <= 1.0
    assert loaded.graph.layer_name == "conv5_block3_out"


def test_flat_resnet50_finds_last_conv_block(flat_resnet):
    container, layer = find_feature_layer(flat_resnet)
    assert container is None and layer.name == "conv5_block3_out"
    _check_explains(flat_resnet, LoadedModel(flat_resnet, _metadata(), Path("flat.keras")))


def test_nested_resnet50_is_rewired_with_the_same_weights(nested_resnet):
    container, layer = find_feature_layer(nested_resnet)
    assert container is nested_resnet.layers[0] and layer.name == "conv5_block3_out"
    _check_explains(nested_resnet, LoadedModel(nested_resnet, _metadata(), Path("n.keras")))


def test_nested_resnet50_saved_and_reloaded_serves(nested_resnet, tmp_path):
    """A user's bare .keras file: no metadata, defaults from the settings."""
    path = tmp_path / "user_model.keras"
    nested_resnet.save(path)
    loaded = load_model(Settings(MODEL_PATH=path, INPUT_SCALING="caffe"))
    assert loaded.metadata.source == "defaults"
    assert loaded.input_spec == InputSpec((SIZE, SIZE), 3, "caffe")
    _check_explains(nested_resnet, loaded)


def test_h5_model_loads(tmp_path):
    keras.utils.set_random_seed(5)
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(4, activation="softmax"),
    ])
    path = tmp_path / "legacy.h5"
    model.save(path)
    loaded = load_model(Settings(MODEL_PATH=path))
    x = np.random.default_rng(0).uniform(0, 1, (1, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded.explain(x).probabilities, model(x), atol=1e-5)


def test_gradcam_layer_can_be_named(nested_resnet):
    graph = build_explain_graph(nested_resnet, "conv4_block6_out")
    feature_map, _ = graph.model(_image())
    assert graph.layer_name == "conv4_block6_out"
    assert feature_map.shape[1:3] == (SIZE // 16, SIZE // 16)


def test_unknown_gradcam_layer_names_the_setting(flat_resnet):
    from braintumor.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^GRADCAM_LAYER"):
        build_explain_graph(flat_resnet, "no_such_layer")


@keras.saving.register_keras_serializable(package="tests")
class QuadrantChannels(keras.layers.Layer):
    """Channel q holds the image inside quadrant q and zero elsewhere."""

    def call(self, x):
        h, w = x.shape[1], x.shape[2]
        masks = np.zeros((1, h, w, 4), np.float32)
        masks[0, : h // 2, : w // 2, 0] = 1
        masks[0, : h // 2, w // 2 :, 1] = 1
        masks[0, h // 2 :, : w // 2, 2] = 1
        masks[0, h // 2 :, w // 2 :, 3] = 1
        return x * masks


def test_heatmap_peaks_where_the_logit_looks():
    """The class-0 logit only sees the top-left quadrant; the image is bright in all four.

    Grad-CAM must light up the top-left quadrant and nothing else.
    """
    inputs = keras.Input((32, 32, 1))
    features = QuadrantChannels(name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    head = keras.layers.Dense(4, activation="softmax", name="predictions")
    model = keras.Model(inputs, head(pooled))
    kernel = np.zeros((4, 4), np.float32)
    kernel[0, 0] = 50.0  # class 0 <- top-left quadrant only
    head.set_weights([kernel, np.zeros(4, np.float32)])

    image = np.zeros((1, 32, 32, 1), np.float32)
    for top, left in ((4, 4), (4, 20), (20, 4), (20, 20)):
        image[0, top:top + 8, left:left + 8, 0] = 1.0
    loaded = LoadedModel(model, _metadata(channels=1, size=32, scaling="unit"), Path("q"))
    result = loaded.explain(image)
    assert result.probabilities[0].argmax() == 0
    cam = result.cam[0]
    peak = np.unravel_index(cam.argmax(), cam.shape)
    assert peak[0] < 16 and peak[1] < 16
    assert cam[:16, :16].max() == pytest.approx(1.0)
    assert cam[16:, :].max() == 0.0 and cam[:, 16:].max() == 0.0


def test_frozen_model_still_gets_a_heatmap():
    """With every weight frozen the tape must still record the graph (it watches x)."""
    keras.utils.set_random_seed(6)
    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="features")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))
    model.trainable = False
    loaded = LoadedModel(model, _metadata(channels=1, size=32, scaling="unit"), Path("f"))
    image = np.random.default_rng(1).uniform(0, 1, (1, 32, 32, 1)).astype(np.float32)
    assert loaded.explain(image).cam.max() > 0.0
