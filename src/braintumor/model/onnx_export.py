"""Exporting a Keras classifier to the ONNX graph the service runs (training time).

The graph is the rewired view of :func:`braintumor.model.graph.build_explain_graph` (the
very function :class:`~braintumor.model.loaded.LoadedModel` serves through), converted
with tf2onnx from one ``tf.function``: input ``image``, outputs the head's ``logits``
(before temperature), its input ``features`` (what the not-a-brain-MRI check and the
memory read), the Grad-CAM layer's ``feature_map`` and, for a model with a segmentation
layer, its ``outline``. Temperature, the memory's vote and Grad-CAM are computed outside
the graph, in NumPy (:mod:`braintumor.model.onnx_runtime`).

Grad-CAM without gradients: when the Grad-CAM layer's only way to the logits is a global
average pool, possibly concatenated with other pooled vectors, then one dense layer, the
gradient of logit c with respect to the feature map is that layer's kernel row for each
channel divided by the map's area, the same at every position and for every image. Grad-
CAM's channel weights are then constants and the map is CAM: ReLU of the feature map
weighted by the kernel's column c. :func:`~braintumor.model.cam.cam_head` proves this
from the graph's structure and the export checks it numerically against TensorFlow's
gradient; the kernel rows go beside the graph. For any other head the manifest says the
runtime cannot explain and the caller must use TensorFlow.

Where Keras' own ``model.export(format="onnx")`` stands: with this TensorFlow it is a thin
wrapper of the same tf2onnx call, exports only the model's ``call`` (a rewired model with
several outputs works, with an explicit ``input_signature``, but its outputs are named
``Identity:0``... and a head that is a function rather than a layer, the logits, cannot be
one); so the ``tf.function`` is converted with ``tf2onnx.convert.from_function`` itself.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from braintumor.model.archive import write_entries
from braintumor.model.cam import CamHead, cam_head
from braintumor.model.graph import build_explain_graph
from braintumor.model.loaded import LoadedModel
from braintumor.model.metadata import ModelMetadata, read_metadata
from braintumor.model.onnx_archive import (
    FORMAT,
    INPUT,
    ONNX_ARCHIVE_ENTRY,
    ONNX_MANIFEST_ENTRY,
    OnnxState,
    keras_checksum,
    onnx_state,
    pack_manifest,
)

log = logging.getLogger(__name__)

#: The ONNX opset the graph is written in (tf2onnx tests 14 to 18).
OPSET = 17
#: The largest difference, relative to each output's scale, that the converted graph may
#: show against TensorFlow on the export's own check.
EXPORT_TOLERANCE = 1e-4
#: The largest difference, relative to the kernel's scale, between TensorFlow's gradient
#: and the CAM weights for a head to count as CAM.
CAM_TOLERANCE = 1e-4

__all__ = ["OPSET", "OnnxExport", "OnnxState", "export_model_file", "export_onnx",
           "onnx_state", "store_onnx"]


@dataclass
class OnnxExport:
    """An exported graph and its manifest, not yet stored (:func:`store_onnx`)."""

    graph: bytes
    manifest: dict[str, Any] = field(default_factory=dict)
    cam_kernel: np.ndarray | None = None


def _gradient_agrees(graph: Any, cam: CamHead, spec: Any, classes: int) -> str:
    """"" when TensorFlow's gradient of every logit with respect to the feature map is the
    CAM weights (random images), else why not."""
    import tensorflow as tf

    assert cam.kernel is not None
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(0, 1, (2, *spec.size, spec.channels)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        feature_map, head_input, *_ = graph.model(x, training=False)
        logits = tf.cast(graph.head(head_input), tf.float32)
        scores = [tf.reduce_sum(logits[:, c]) for c in range(classes)]
    area = int(feature_map.shape[1]) * int(feature_map.shape[2])
    scale = max(float(np.abs(cam.kernel).max()) / area, 1e-30)
    for c, score in enumerate(scores):
        gradient = tape.gradient(score, feature_map)
        if gradient is None:
            return "the logits do not depend on the Grad-CAM map"
        error = float(np.abs(np.asarray(gradient, np.float32)
                             - cam.kernel[:, c] / area).max()) / scale
        if not error <= CAM_TOLERANCE:
            return (f"TensorFlow's gradient of logit {c} differs from the dense layer's "
                    f"weights by {error:.2g} of their scale")
    return ""


# --- the export -------------------------------------------------------------------------


def _relative_error(reference: np.ndarray, value: np.ndarray, floor: float = 1e-6) -> float:
    scale = max(float(np.abs(reference).max()), floor)
    return float(np.abs(reference - value).max()) / scale


#: The scale below which an output's differences count as absolute, by output: the outline
#: is a probability map (on a picture where the model sees no tumour it is ~1e-6
#: everywhere, and so is the outline-gated Grad-CAM layer, where float32 rounding alone
#: is then a large share of the maximum).
CHECK_FLOORS = {"outline": 1.0, "feature_map": 1e-3}


def export_onnx(model: LoadedModel | Any, metadata: ModelMetadata | None = None,
                gradcam_layer: str = "", opset: int = OPSET, check: bool = True
                ) -> OnnxExport:
    """Convert a classifier (a :class:`LoadedModel`, or a Keras model with its
    ``metadata``) to the serving graph; with ``check``, the graph's outputs are compared
    with TensorFlow's on random images and a disagreement raises RuntimeError.

    ``gradcam_layer`` overrides the metadata's (as GRADCAM_LAYER does); a LoadedModel's
    own layer is used by default. The manifest's Keras checksum is set by
    :func:`store_onnx`, which knows the file.
    """
    import keras
    import tensorflow as tf
    import tf2onnx


    if isinstance(model, LoadedModel):
        keras_model = model.keras_model
        metadata = metadata or model.metadata
        gradcam_layer = gradcam_layer or model.graph.layer_name
    else:
        keras_model = model
    if metadata is None:
        raise ValueError("exporting a Keras model needs its ModelMetadata")
    requested = gradcam_layer or metadata.gradcam_layer
    start = time.perf_counter()
    graph = build_explain_graph(keras_model, requested, metadata.segmentation_layer)
    spec = metadata.input
    classes = len(metadata.class_names)
    signature = [tf.TensorSpec([None, *spec.size, spec.channels], tf.float32, name=INPUT)]
    explain_model, head = graph.model, graph.head
    segments = bool(graph.segmentation_name)

    @tf.function(input_signature=signature)
    def serve(image):
        feature_map, head_input, *outline = explain_model(image, training=False)
        outputs = {
            "logits": tf.cast(head(head_input), tf.float32),
            "features": tf.reshape(tf.cast(head_input, tf.float32), [tf.shape(image)[0], -1]),
            "feature_map": tf.cast(feature_map, tf.float32),
        }
        if segments:
            outputs["outline"] = tf.cast(outline[0][..., 0], tf.float32)
        return outputs

    converter_log = logging.getLogger("tf2onnx")
    level = converter_log.level
    converter_log.setLevel(logging.WARNING)  # its INFO lines are a page per export
    try:
        proto, _ = tf2onnx.convert.from_function(serve, signature, opset=opset)
    finally:
        converter_log.setLevel(level)
    data = proto.SerializeToString()
    seconds = time.perf_counter() - start

    cam = cam_head(keras_model, requested)
    if cam.exact and check:
        disagreement = _gradient_agrees(graph, cam, spec, classes)
        if disagreement:
            cam = CamHead(None, reason=disagreement)
    feature_map_shape = [int(d) for d in explain_model.outputs[0].shape[1:]]
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "onnx_sha256": hashlib.sha256(data).hexdigest(),
        "keras_sha256": "",
        "input": INPUT,
        "input_shape": [*spec.size, spec.channels],
        "outputs": [output.name for output in proto.graph.output],
        "classes": classes,
        "gradcam_layer": requested,
        "feature_layer": graph.layer_name,
        "feature_map_shape": feature_map_shape,
        "feature_dims": int(np.prod([int(d) for d in explain_model.outputs[1].shape[1:]])),
        "segmentation_layer": graph.segmentation_name,
        "cam": {"exact": cam.exact, "reason": cam.reason, "offset": cam.offset,
                "channels": feature_map_shape[-1]},
        "exporter": {"tool": "tf2onnx", "version": tf2onnx.__version__,
                     "tensorflow": tf.__version__, "keras": keras.__version__,
                     "opset": opset},
        "export_seconds": round(seconds, 3),
    }
    if check:
        manifest["check_error"] = _check_graph(data, serve, spec)
    log.info("exported %s to ONNX in %.1fs (%d bytes; Grad-CAM %s)", keras_model.name,
             seconds, len(data), "as CAM" if cam.exact else f"needs TensorFlow: {cam.reason}")
    return OnnxExport(data, manifest, cam.kernel)


def check_images(spec: Any, count: int = 3, seed: int = 1) -> np.ndarray:
    """Model inputs that look like scans: a bright oval of smooth, coarse texture on black,
    made into the model's input by its own scaling.

    Rather than uniform noise, which drives a model far from anything it was trained on.
    """
    from scipy import ndimage

    from braintumor.preprocessing import to_model_input

    rng = np.random.default_rng(seed)
    h, w = spec.size
    rows, columns = np.mgrid[0:h, 0:w]
    pixels = []
    for _ in range(count):
        (cy, cx), (ry, rx) = rng.uniform(0.4, 0.6, 2), rng.uniform(0.25, 0.45, 2)
        inside = ((rows / h - cy) / ry) ** 2 + ((columns / w - cx) / rx) ** 2 <= 1.0
        coarse = rng.uniform(60, 250, (8, 8))
        texture = np.kron(coarse, np.ones((h // 8 + 1, w // 8 + 1)))[:h, :w]
        # smooth, as a scan is at the model's resolution
        picture = ndimage.gaussian_filter(np.where(inside, texture, 0.0), sigma=h / 48)
        pixels.append(np.clip(picture, 0, 255).astype(np.uint8))
    return np.asarray(to_model_input(np.stack(pixels), spec), dtype=np.float32)


def _check_graph(data: bytes, serve: Any, spec: Any) -> float:
    """The largest relative difference of the graph's outputs from TensorFlow's on three
    scan-like images (:func:`check_images`); raises RuntimeError above
    :data:`EXPORT_TOLERANCE`."""
    import onnxruntime

    x = check_images(spec)
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    converted = dict(zip(names, session.run(names, {INPUT: x}), strict=True))
    reference = {name: np.asarray(value) for name, value in serve(x).items()}
    errors = {name: _relative_error(reference[name], converted[name],
                                    CHECK_FLOORS.get(name, 1e-6)) for name in reference}
    worst = max(errors.values())
    if not worst <= EXPORT_TOLERANCE:
        raise RuntimeError(f"the ONNX graph disagrees with TensorFlow: {errors}")
    return float(f"{worst:.3g}")


def store_onnx(model_path: Path, export: OnnxExport, out: Path | None = None) -> Path:
    """Write the graph and its manifest into the model file (``out``: a copy), tying them
    to the weights the file holds now; returns the file written."""
    manifest = {**export.manifest, "keras_sha256": keras_checksum(Path(model_path))}
    export.manifest = manifest
    return write_entries(Path(model_path), {
        ONNX_ARCHIVE_ENTRY: export.graph,
        ONNX_MANIFEST_ENTRY: pack_manifest(manifest, export.cam_kernel),
    }, out)


def export_model_file(model_path: Path, metadata: ModelMetadata | None = None,
                      gradcam_layer: str = "", opset: int = OPSET,
                      out: Path | None = None) -> OnnxExport:
    """Load the Keras model at ``model_path``, export it and store the graph in the file
    (or in ``out``, a copy): what training does after saving a model. ``metadata``
    defaults to the file's own."""
    import keras

    model_path = Path(model_path)
    if metadata is None:
        raw = read_metadata(model_path)
        if raw is None:
            raise ValueError(f"{model_path} has no metadata: pass the ModelMetadata to export "
                             "it with")
        metadata = ModelMetadata.from_dict(*raw)
    keras_model = keras.saving.load_model(model_path, compile=False)
    export = export_onnx(keras_model, metadata, gradcam_layer, opset)
    store_onnx(model_path, export, out)
    return export
