"""A classifier ready to serve: weights, metadata and compiled inference functions.

Inference runs through ``tf.function`` graphs traced once at load time, never through
``model.predict`` (not thread-safe, leaks when called in a loop) nor an eager call (about
four times slower). One traced function is shared by every request thread; TensorFlow
runs concurrent calls of a concrete function safely.

:meth:`LoadedModel.explain` is the one-pass Grad-CAM: the same forward pass yields the
probabilities and the feature map, and the gradient of the predicted class's logit only
has to cross the pooling and the dense head, so explaining costs about one forward pass.
The class is selected with a one-hot mask rather than by indexing with the argmax, which
would make XLA recompile for every new image.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from braintumor.config import Settings
from braintumor.errors import ModelLoadError
from braintumor.model.metadata import ModelMetadata, read_metadata
from braintumor.preprocessing import InputSpec

log = logging.getLogger(__name__)


@dataclass
class Explanation:
    """Result of one explained forward pass, for a batch."""

    probabilities: np.ndarray  # (N, classes), calibrated
    logits: np.ndarray  # (N, classes), before temperature
    cam: np.ndarray  # (N, h, w) in [0, 1], at the feature map's resolution


class LoadedModel:
    """A Keras classifier with its metadata and compiled inference functions."""

    def __init__(self, keras_model, metadata: ModelMetadata, path: Path,
                 gradcam_layer: str = "") -> None:
        import tensorflow as tf

        from braintumor.model.graph import build_explain_graph

        self.keras_model = keras_model
        self.metadata = metadata
        self.path = path
        self.graph = build_explain_graph(keras_model, gradcam_layer or metadata.gradcam_layer)
        spec = metadata.input
        signature = [tf.TensorSpec([None, *spec.size, spec.channels], tf.float32)]
        explain_model, head = self.graph.model, self.graph.head
        temperature = tf.constant(float(metadata.temperature), tf.float32)
        num_classes = len(metadata.class_names)

        @tf.function(input_signature=signature, reduce_retracing=True)
        def forward(x):
            _, head_input = explain_model(x, training=False)
            logits = tf.cast(head(head_input), tf.float32)
            return logits, tf.nn.softmax(logits / temperature)

        @tf.function(input_signature=signature, reduce_retracing=True)
        def explain(x):
            with tf.GradientTape() as tape:
                tape.watch(x)  # records the graph even when every weight is frozen
                feature_map, head_input = explain_model(x, training=False)
                logits = tf.cast(head(head_input), tf.float32)
                mask = tf.one_hot(tf.argmax(logits, axis=-1), num_classes, dtype=tf.float32)
                score = tf.reduce_sum(logits * mask)
            grads = tape.gradient(score, feature_map)
            weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
            cam = tf.nn.relu(tf.reduce_sum(weights * feature_map, axis=-1))
            peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
            cam = tf.math.divide_no_nan(cam, peak)
            return logits, tf.nn.softmax(logits / temperature), cam

        self._forward = forward
        self._explain = explain

    @property
    def input_spec(self) -> InputSpec:
        return self.metadata.input

    @property
    def class_names(self) -> list[str]:
        return self.metadata.class_names

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(logits, calibrated probabilities) for a preprocessed batch; no Grad-CAM."""
        logits, probs = self._forward(x)
        return logits.numpy(), probs.numpy()

    def explain(self, x: np.ndarray) -> Explanation:
        """Probabilities and the Grad-CAM map of the predicted class, in one pass."""
        logits, probs, cam = self._explain(x)
        return Explanation(probabilities=probs.numpy(), logits=logits.numpy(), cam=cam.numpy())

    def warm_up(self) -> float:
        """Trace both functions and check the rewired graph agrees with the model.

        Returns the seconds it took. A disagreement means the model's structure was not
        understood (e.g. a nested model that is not a simple chain), which must stop
        start-up rather than serve wrong heatmaps or probabilities.
        """
        start = time.perf_counter()
        spec = self.input_spec
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 1, size=(1, *spec.size, spec.channels)).astype(np.float32)
        original = np.asarray(self.keras_model(x, training=False))
        _, probs = self.predict(x)
        self.explain(x)
        if self.metadata.temperature == 1.0 and not np.allclose(probs, original, atol=1e-4):
            raise ModelLoadError(
                "MODEL_PATH",
                "the rewired model disagrees with the saved one; set GRADCAM_LAYER to a "
                "layer of the model's outer graph",
            )
        return time.perf_counter() - start


def _default_metadata(keras_model, settings: Settings) -> ModelMetadata:
    shape = tuple(keras_model.inputs[0].shape[1:]) if keras_model.inputs else (None, None, 3)
    height, width, channels = (shape + (None,) * 3)[:3]
    size = (int(height), int(width)) if height and width else settings.IMAGE_SIZE
    return ModelMetadata(
        class_names=settings.class_list,
        input=InputSpec(size=size, channels=int(channels or 3), scaling=settings.INPUT_SCALING),
        source="defaults",
    )


def _check(keras_model, metadata: ModelMetadata, settings: Settings) -> None:
    if not keras_model.outputs and not hasattr(keras_model, "output_shape"):
        raise ModelLoadError("MODEL_PATH", "the model has no outputs")
    try:
        out_shape = tuple(keras_model.outputs[0].shape)
    except (AttributeError, IndexError, ValueError):
        out_shape = tuple(keras_model.output_shape)
    classes = len(settings.CLASS_NAMES)
    if len(out_shape) != 2 or out_shape[-1] != classes:
        raise ModelLoadError(
            "MODEL_PATH",
            f"the model's output has shape {out_shape}; expected (None, {classes}) for "
            f"{classes} classes",
        )
    if len(metadata.class_names) != classes:
        raise ModelLoadError(
            "CLASS_NAMES",
            f"the model's metadata names {len(metadata.class_names)} classes, "
            f"the settings {classes}",
        )
    in_shape = tuple(keras_model.inputs[0].shape[1:])
    if len(in_shape) != 3:
        raise ModelLoadError("MODEL_PATH", f"expected an image input (H, W, C), got {in_shape}")
    if settings.IMAGE_SIZE_EXPLICIT and in_shape[0] and (
        tuple(in_shape[:2]) != tuple(settings.IMAGE_SIZE)
    ):
        raise ModelLoadError(
            "IMAGE_SIZE",
            f"{settings.IMAGE_SIZE} does not match the model's input size {in_shape[:2]}",
        )


def load_model(settings: Settings, path: Path | None = None, warm_up: bool = True) -> LoadedModel:
    """Load MODEL_PATH (or ``path``) once; raises ModelLoadError naming the setting."""
    model_path = Path(path or settings.MODEL_PATH)
    if not model_path.is_file():
        raise ModelLoadError("MODEL_PATH", f"no model file at {model_path}")
    if model_path.suffix not in (".keras", ".h5", ".hdf5"):
        raise ModelLoadError("MODEL_PATH", f"expected a .keras or .h5 file, got {model_path.name}")
    import keras

    start = time.perf_counter()
    try:
        keras_model = keras.saving.load_model(model_path, compile=False)
    except Exception as exc:
        raise ModelLoadError(
            "MODEL_PATH", f"cannot load {model_path}: {type(exc).__name__}: {exc}".split("\n")[0]
        ) from None
    raw = read_metadata(model_path)
    if raw is None:
        metadata = _default_metadata(keras_model, settings)
    else:
        try:
            metadata = ModelMetadata.from_dict(*raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError("MODEL_PATH", f"unreadable model metadata: {exc}") from None
    _check(keras_model, metadata, settings)
    loaded = LoadedModel(keras_model, metadata, model_path, settings.GRADCAM_LAYER)
    if warm_up:
        loaded.warm_up()
    log.info("model %s loaded in %.2fs (metadata: %s, Grad-CAM layer %s)", model_path.name,
             time.perf_counter() - start, metadata.source, loaded.graph.layer_name)
    return loaded
