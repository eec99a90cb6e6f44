"""The two 500 answers: a model pass that fails (CLASSIFICATION_ERROR) and anything else
unexpected (INTERNAL_ERROR). Both keep the error shape, and neither tells the client
more than a generic sentence: the details go to the log."""

from __future__ import annotations

import io
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from braintumor.api import create_app
from braintumor.config import Settings
from braintumor.model import LoadedModel, ModelMetadata
from braintumor.preprocessing import InputSpec
from conftest import TINY_SIZE, encode

CLASSES = ["Glioma", "Meningioma", "No Tumor", "Pituitary"]


class RefusesBrightInput(keras.layers.Layer):
    """Passes its input through, but the run fails (as a broken kernel or an exhausted
    device would) when any input value is 0.5 or more."""

    def call(self, x):
        check = tf.debugging.assert_less(tf.reduce_max(x), 0.5, message="bright input")
        with tf.control_dependencies([check]):
            return tf.identity(x)


@pytest.fixture(scope="module")
def fragile_app(tmp_path_factory):
    keras.utils.set_random_seed(2)
    inputs = keras.Input((TINY_SIZE, TINY_SIZE, 1))
    x = RefusesBrightInput()(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="features")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="predictions")(x)
    metadata = ModelMetadata(class_names=CLASSES, input=InputSpec((TINY_SIZE, TINY_SIZE), 1,
                                                                  "unit"))
    path = tmp_path_factory.mktemp("fragile") / "fragile.keras"
    model = LoadedModel(keras.Model(inputs, outputs), metadata, path)
    # no input checks: every upload reaches the model
    return create_app(Settings(MODEL_PATH=path, OOD_POLICY="off"), model=model)


def classify(app, picture: Image.Image):
    return app.test_client().post(
        "/api/classify", data={"file": (io.BytesIO(encode(picture)), "scan.png")},
        content_type="multipart/form-data")


def error_of(response, code: str) -> dict:
    assert response.status_code == 500 and response.is_json
    body = response.get_json()
    assert body["success"] is False
    assert body["error"] == {"message": body["error"]["message"], "code": code, "status": 500}
    assert body["timestamp"].endswith("Z")
    return body


def test_a_failing_model_pass_is_classification_error(fragile_app, caplog):
    dark = Image.fromarray(np.tile(np.arange(0, 100, dtype=np.uint8), (100, 1)))
    assert classify(fragile_app, dark).status_code == 200  # the model itself works

    bright = Image.fromarray(np.tile(np.arange(100, 250, dtype=np.uint8), (150, 1)))
    with caplog.at_level(logging.ERROR, logger="braintumor"):
        response = classify(fragile_app, bright)
    body = error_of(response, "CLASSIFICATION_ERROR")
    assert body["error"]["message"] == "Model inference failed (InvalidArgumentError)"
    assert "bright input" not in response.get_data(as_text=True)  # TensorFlow's text stays
    assert any("bright input" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_anything_unexpected_is_internal_error_without_details(tiny_settings, tiny_model,
                                                               caplog):
    app = create_app(tiny_settings, model=tiny_model)

    def broken_view():
        raise RuntimeError("secret detail: /srv/models/private.keras")

    app.add_url_rule("/api/broken", view_func=broken_view)
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/api/broken")
    body = error_of(response, "INTERNAL_ERROR")
    assert body["error"]["message"] == "Internal server error"
    assert "secret" not in response.get_data(as_text=True)
    assert any("secret detail" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
