"""A classifier ready to serve: weights, metadata and compiled inference functions.

Inference runs through ``tf.function`` graphs traced once at load time, never through
``model.predict`` (not thread-safe, leaks when called in a loop) nor an eager call (about
four times slower). One traced function is shared by every request thread; TensorFlow
runs concurrent calls of a concrete function safely.

:meth:`LoadedModel.explain` is the one-pass Grad-CAM: the same forward pass yields the
probabilities and the feature map, and the gradient of the predicted class's logit only
has to cross the pooling and the dense head, so explaining costs about one forward pass.
The class is selected with a one-hot mask rather than by indexing with the argmax, which
would make XLA recompile for every new image; the map itself is
:func:`braintumor.model.gradcam.grad_cam`. The model file's extra entries are read through
:mod:`braintumor.model.archive`; its OOD statistics are not the loader's business (the
OOD package reads them, :mod:`braintumor.ood.stats`).

Both functions also return the penultimate features (the input of the final softmax
layer, which the rewired graph exposes anyway to compute the logits), so the
out-of-distribution check (:mod:`braintumor.ood`) costs no second pass. A memory fitted
with mirror images (:mod:`braintumor.model.memory`, ``flip``) adds one pass of the mirror
image inside the same compiled function; Grad-CAM and the features the OOD check uses
stay those of the image itself.

A model whose metadata names a segmentation layer (a tumour outline in its input space,
``ModelMetadata.segmentation_layer``) returns that outline from :meth:`explain` too, read
off the same forward pass; every other model's functions are exactly as before.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Protocol

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from braintumor.errors import ModelLoadError
from braintumor.model.explanation import Explanation
from braintumor.model.gradcam import grad_cam
from braintumor.model.memory import FeatureMemory, read_memory, with_mirror
from braintumor.model.metadata import ModelMetadata, load_metadata
from braintumor.model.outputs import ModelOutputs, in_batches
from braintumor.preprocessing import InputSpec

log = logging.getLogger(__name__)

__all__ = ["Explanation", "LoadedModel", "ModelSettings", "load_model"]


class ModelSettings(Protocol):
    """The settings a model is loaded with (:class:`braintumor.config.Settings` has them;
    the names are the environment variables').

    A protocol rather than the settings class itself, so that the model layer does not
    depend on the settings module that sits above it.
    """

    @property
    def MODEL_PATH(self) -> Path: ...
    @property
    def IMAGE_SIZE(self) -> tuple[int, int]: ...
    @property
    def IMAGE_SIZE_EXPLICIT(self) -> bool: ...
    @property
    def CLASS_NAMES(self) -> dict[int, str]: ...
    @property
    def INPUT_SCALING(self) -> str: ...
    @property
    def GRADCAM_LAYER(self) -> str: ...
    @property
    def class_list(self) -> list[str]: ...


class LoadedModel:
    """A Keras classifier with its metadata and compiled inference functions."""

    def __init__(self, keras_model, metadata: ModelMetadata, path: Path,
                 gradcam_layer: str = "", memory: FeatureMemory | None = None) -> None:
        # Keras (graph) and TensorFlow (_compiled_functions) only when a model is built:
        # ``braintumor.model``'s metadata and archive readers stay importable without them
        from braintumor.model.graph import build_explain_graph

        self.keras_model = keras_model
        self.metadata = metadata
        self.path = path
        #: The nearest-neighbour vote (braintumor.model.memory), when the model has one.
        self.memory = memory
        self.graph = build_explain_graph(keras_model, gradcam_layer or metadata.gradcam_layer,
                                         metadata.segmentation_layer)
        self._forward, self._explain = _compiled_functions(self.graph, metadata, memory)

    @property
    def input_spec(self) -> InputSpec:
        return self.metadata.input

    @property
    def class_names(self) -> list[str]:
        return self.metadata.class_names

    @property
    def feature_dims(self) -> int:
        """Length of the penultimate feature vector the forward functions return."""
        shape = self.graph.model.outputs[1].shape
        return int(np.prod([d for d in shape[1:]]))

    def outputs(self, x: np.ndarray, head_only: bool = False) -> ModelOutputs:
        """:class:`ModelOutputs` of a preprocessed batch; no Grad-CAM. The probabilities are
        the calibrated head's or the memory's vote; with ``head_only`` the head's always."""
        logits, probs, features, head_probs = self._forward(x)
        return ModelOutputs(logits.numpy(), (head_probs if head_only else probs).numpy(),
                            features.numpy())

    def outputs_of_pixels(self, pixels: np.ndarray, head_only: bool = False,
                          batch_size: int = 64) -> ModelOutputs:
        """:meth:`outputs` of canonical uint8 pixels (N, H, W), in batches."""
        return in_batches(lambda x: self.outputs(x, head_only), pixels, self.input_spec, batch_size)

    @property
    def segments(self) -> bool:
        """Whether :meth:`explain` also returns the tumour outline (the model has a
        segmentation layer, ``ModelMetadata.segmentation_layer``)."""
        return bool(self.graph.segmentation_name)

    def explain(self, x: np.ndarray) -> Explanation:
        """Probabilities, features, the Grad-CAM map of the predicted class and, for a
        segmenting model, the tumour outline, in one pass."""
        logits, probs, cam, features, *outline = self._explain(x)
        return Explanation(probabilities=probs.numpy(), logits=logits.numpy(), cam=cam.numpy(),
                           features=features.numpy(),
                           outline=outline[0].numpy() if outline else None)

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
        head_probs = self.outputs(x, head_only=True).probabilities
        self.explain(x)
        if self.metadata.temperature == 1.0 and not np.allclose(head_probs, original,
                                                                 atol=1e-4):
            raise ModelLoadError(
                "MODEL_PATH",
                "the rewired model disagrees with the saved one; set GRADCAM_LAYER to a "
                "layer of the model's outer graph",
            )
        return time.perf_counter() - start


def _compiled_functions(graph, metadata: ModelMetadata, memory: FeatureMemory | None):
    """The ``tf.function`` of the rewired ``graph`` (an ExplainGraph): forward (logits, probs,
    features, head probs) and explain (logits, probs, Grad-CAM, features[, outline])."""
    import tensorflow as tf

    spec = metadata.input
    signature = [tf.TensorSpec([None, *spec.size, spec.channels], tf.float32)]
    explain_model, head = graph.model, graph.head
    temperature = tf.constant(float(metadata.temperature), tf.float32)
    num_classes = len(metadata.class_names)
    segments = bool(graph.segmentation_name)

    def network(x):
        """(feature map, head input, logits, outline or None): one pass of the
        rewired network; the outline only when the model has a segmentation layer."""
        feature_map, head_input, *outline = explain_model(x, training=False)
        return (feature_map, head_input, tf.cast(head(head_input), tf.float32),
                outline[0] if outline else None)

    def answer(x, logits, head_input):
        """(served probabilities, the head's calibrated probabilities, features)."""
        batch = tf.shape(x)[0]
        head_probs = tf.nn.softmax(logits / temperature)
        features = tf.reshape(tf.cast(head_input, tf.float32), [batch, -1])
        if memory is None:
            return head_probs, head_probs, features
        query, mix_probs = features, head_probs
        if memory.flip:  # the mirror image too (braintumor.model.memory)
            _, mirrored_input, mirrored_logits, _ = network(tf.reverse(x, axis=[2]))
            query, mix_probs = with_mirror(
                features, head_probs, tf.reshape(mirrored_input, [batch, -1]),
                tf.nn.softmax(mirrored_logits / temperature))
        return memory.vote(query, mix_probs), head_probs, features

    @tf.function(input_signature=signature, reduce_retracing=True)
    def forward(x):
        _, head_input, logits, _ = network(x)
        probs, head_probs, features = answer(x, logits, head_input)
        return logits, probs, features, head_probs

    @tf.function(input_signature=signature, reduce_retracing=True)
    def explain(x):
        with tf.GradientTape() as tape:
            tape.watch(x)  # records the graph even when every weight is frozen
            feature_map, head_input, logits, outline = network(x)
            probs, _, features = answer(x, logits, head_input)
            # the served class, explained through the network's score for it
            mask = tf.one_hot(tf.argmax(probs, axis=-1), num_classes, dtype=tf.float32)
            score = tf.reduce_sum(logits * mask)
        cam = grad_cam(feature_map, tape.gradient(score, feature_map))
        if segments:
            return logits, probs, cam, features, tf.cast(outline[..., 0], tf.float32)
        return logits, probs, cam, features

    return forward, explain


def _default_metadata(keras_model, settings: ModelSettings) -> ModelMetadata:
    shape = tuple(keras_model.inputs[0].shape[1:]) if keras_model.inputs else (None, None, 3)
    height, width, channels = (shape + (None,) * 3)[:3]
    size = (int(height), int(width)) if height and width else settings.IMAGE_SIZE
    return ModelMetadata(
        class_names=settings.class_list,
        input=InputSpec(size=size, channels=int(channels or 3), scaling=settings.INPUT_SCALING),
        source="defaults",
    )


def _check(keras_model, metadata: ModelMetadata, settings: ModelSettings) -> None:
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


def load_model(settings: ModelSettings, path: Path | None = None,
               warm_up: bool = True) -> LoadedModel:
    """Load MODEL_PATH (or ``path``) once; raises ModelLoadError naming the setting."""
    model_path = Path(path or settings.MODEL_PATH)
    if not model_path.is_file():
        raise ModelLoadError("MODEL_PATH", f"no model file at {model_path}")
    if model_path.suffix not in (".keras", ".h5", ".hdf5"):
        raise ModelLoadError("MODEL_PATH", f"expected a .keras or .h5 file, got {model_path.name}")
    import keras  # heavy (TensorFlow): only when a model is actually loaded

    start = time.perf_counter()
    try:
        keras_model = keras.saving.load_model(model_path, compile=False)
    except Exception as exc:
        raise ModelLoadError(
            "MODEL_PATH", f"cannot load {model_path}: {type(exc).__name__}: {exc}".split("\n")[0]
        ) from None
    metadata = load_metadata(model_path) or _default_metadata(keras_model, settings)
    _check(keras_model, metadata, settings)
    loaded = LoadedModel(keras_model, metadata, model_path, settings.GRADCAM_LAYER,
                         memory=read_memory(model_path, len(metadata.class_names)))
    if warm_up:
        loaded.warm_up()
    log.info("model %s loaded in %.2fs (metadata: %s, Grad-CAM layer %s)", model_path.name,
             time.perf_counter() - start, metadata.source, loaded.graph.layer_name)
    return loaded
