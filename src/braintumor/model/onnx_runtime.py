"""A classifier served on ONNX Runtime: the Keras model's answers without TensorFlow.

:class:`OnnxModel` has :class:`~braintumor.model.loaded.LoadedModel`'s public interface
(``outputs``, ``outputs_of_pixels``, ``explain``, ``warm_up``, ``input_spec``,
``class_names``, ``feature_dims``, ``segments``) and computes
the same things from the graph :mod:`braintumor.model.onnx_export` stored in the model file
(:mod:`braintumor.model.onnx_archive`), on the CPU execution provider with as many
intra-op threads as it is given (one per worker when workers share the cores):

* probabilities: ``softmax(logits / temperature)``, as the Keras path;
* the nearest-neighbour vote (:mod:`braintumor.model.memory`) in NumPy, the same
  operations as :meth:`FeatureMemory.vote` (TensorFlow's ``l2_normalize``, ``top_k``
  with ties to the lower index, softmax over ``similarity / tau``); with ``flip`` the
  mirror images run in the same call as the images, one batch of twice the size;
* Grad-CAM: for a head of global average pooling then one dense layer (the manifest
  says whether), the gradient of logit c with respect to the feature map is the dense
  kernel's column c over the map's area, the same everywhere, so Grad-CAM is the feature
  map weighted by that column, ReLU, over its peak: exactly
  :func:`braintumor.model.gradcam.grad_cam`'s maths without a backward pass. For any
  other head :attr:`OnnxModel.explains` is False and :meth:`OnnxModel.explain` raises
  :class:`GradCamUnavailable`: the caller explains with TensorFlow, never with a map
  that is not the model's Grad-CAM.

This module imports neither TensorFlow nor Keras, directly or through what it imports
(tests/model/test_onnx_parity.py checks the process).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from braintumor.errors import ModelLoadError
from braintumor.model.archive import read_archive_entry
from braintumor.model.explanation import Explanation
from braintumor.model.memory import (
    FeatureMemory,
    l2_normalize,
    read_memory,
    softmax,
    vote_in_numpy,
)
from braintumor.model.metadata import ModelMetadata, load_metadata
from braintumor.model.onnx_archive import (
    INPUT,
    ONNX_ARCHIVE_ENTRY,
    ONNX_MANIFEST_ENTRY,
    manifest_state,
    unpack_manifest,
)
from braintumor.model.outputs import ModelOutputs, in_batches
from braintumor.preprocessing import InputSpec

log = logging.getLogger(__name__)

__all__ = ["Explanation", "GradCamUnavailable", "GraphNames", "OnnxModel", "cam", "l2_normalize",
           "load_onnx_model", "memory_vote", "softmax", "with_mirror"]


class GradCamUnavailable(RuntimeError):
    """The model's head is not global pooling then one dense layer: its Grad-CAM needs
    TensorFlow's gradient (the manifest says why)."""


# --- the maths, in NumPy ----------------------------------------------------------------


def with_mirror(features: np.ndarray, head_probabilities: np.ndarray,
                mirrored_features: np.ndarray, mirrored_head_probabilities: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`braintumor.model.memory.with_mirror` in NumPy: (query, head probabilities)."""
    query = l2_normalize(features) + l2_normalize(mirrored_features)
    head = (np.asarray(head_probabilities, np.float32)
            + np.asarray(mirrored_head_probabilities, np.float32)) / np.float32(2.0)
    return query, head


#: :meth:`FeatureMemory.vote` in NumPy (braintumor.model.memory.vote_in_numpy).
memory_vote = vote_in_numpy


def cam(feature_map: np.ndarray, kernel: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(N, h, w) Grad-CAM maps in [0, 1] of a head of global average pooling then one
    dense layer: the gradient of logit c with respect to the map (N, h, w, channels) is
    ``kernel[:, c] / (h * w)`` at every position, which are then Grad-CAM's channel
    weights (:func:`braintumor.model.gradcam.grad_cam`: ReLU of the weighted sum, over its
    peak; an all-negative map is all zeros)."""
    feature_map = np.asarray(feature_map, np.float32)
    area = np.float32(feature_map.shape[1] * feature_map.shape[2])
    weights = (kernel[:, classes].T / area).astype(np.float32)  # (N, channels)
    maps = np.maximum(np.einsum("nhwk,nk->nhw", feature_map, weights), np.float32(0.0))
    peak = maps.max(axis=(1, 2), keepdims=True)
    safe = np.where(peak > 0, peak, np.float32(1.0))
    return np.where(peak > 0, maps / safe, np.float32(0.0)).astype(np.float32)


# --- the model --------------------------------------------------------------------------


def session_options(threads: int) -> Any:
    """ONNX Runtime options for one worker: ``threads`` intra-op threads, one inter-op
    thread, sequential execution, every graph optimisation."""
    import onnxruntime

    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    return options


@dataclass(frozen=True)
class GraphNames:
    """What callers read of :attr:`LoadedModel.graph <braintumor.model.loaded.LoadedModel>`
    (an ``ExplainGraph``): the layers the graph exposes."""

    layer_name: str
    segmentation_name: str = ""


class OnnxModel:
    """The graph of a model file on ONNX Runtime, with its metadata and memory."""

    def __init__(self, graph: bytes, manifest: dict[str, Any], cam_kernel: np.ndarray | None,
                 metadata: ModelMetadata, path: Path, memory: FeatureMemory | None = None,
                 threads: int = 1) -> None:
        import onnxruntime

        self.metadata = metadata
        self.path = Path(path)
        self.manifest = manifest
        #: The nearest-neighbour vote (braintumor.model.memory), when the model has one.
        self.memory = memory
        self.threads = threads
        self.session = onnxruntime.InferenceSession(
            graph, sess_options=session_options(threads), providers=["CPUExecutionProvider"])
        names = {output.name for output in self.session.get_outputs()}
        wanted = {"logits", "features", "feature_map"} | (
            {"outline"} if manifest.get("segmentation_layer") else set())
        if not wanted <= names:
            raise ModelLoadError("MODEL_PATH", f"the ONNX graph lacks the outputs "
                                               f"{sorted(wanted - names)}")
        self._cam_kernel = cam_kernel if manifest.get("cam", {}).get("exact") else None
        self._temperature = np.float32(metadata.temperature)

    @property
    def input_spec(self) -> InputSpec:
        return self.metadata.input

    @property
    def class_names(self) -> list[str]:
        return self.metadata.class_names

    @property
    def feature_dims(self) -> int:
        """Length of the penultimate feature vector the forward functions return."""
        return int(self.manifest["feature_dims"])

    @property
    def layer_name(self) -> str:
        """The Grad-CAM layer the graph exposes."""
        return str(self.manifest.get("feature_layer", ""))

    @property
    def graph(self) -> GraphNames:
        """The Grad-CAM and segmentation layers, where LoadedModel.graph has them."""
        return GraphNames(self.layer_name, str(self.manifest.get("segmentation_layer", "")))

    @property
    def segments(self) -> bool:
        """Whether :meth:`explain` also returns the tumour outline."""
        return bool(self.manifest.get("segmentation_layer"))

    @property
    def explains(self) -> bool:
        """Whether :meth:`explain` can give the model's Grad-CAM (a head of global
        pooling then one dense layer); False: explain with the TensorFlow path."""
        return self._cam_kernel is not None

    @property
    def cam_reason(self) -> str:
        """Why :attr:`explains` is False ("" when it is True)."""
        return "" if self.explains else str(self.manifest.get("cam", {}).get("reason", ""))

    def _run(self, x: np.ndarray, outputs: list[str]) -> list[np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float32)
        return self.session.run(outputs, {INPUT: x})

    def _answer(self, x: np.ndarray, outputs: list[str]
                ) -> tuple[ModelOutputs, list[np.ndarray]]:
        """(the served outputs, the other ``outputs`` of the images): one call, the mirror
        images in the same batch when the memory wants them."""
        count = len(x)
        flip = self.memory is not None and self.memory.flip
        batch = np.concatenate([x, x[:, :, ::-1]]) if flip else x
        logits, features, *others = self._run(batch, ["logits", "features", *outputs])
        head_probs = softmax(logits / self._temperature)
        served = head_probs[:count]
        if self.memory is not None:
            query, mix = features[:count], head_probs[:count]
            if flip:
                query, mix = with_mirror(query, mix, features[count:], head_probs[count:])
            served = memory_vote(self.memory, query, mix)
        return (ModelOutputs(logits[:count], served, features[:count]),
                [other[:count] for other in others])

    def outputs(self, x: np.ndarray, head_only: bool = False) -> ModelOutputs:
        """:class:`ModelOutputs` of a preprocessed batch; no Grad-CAM. With ``head_only`` the
        network alone (the head's calibrated probabilities: no vote, no mirror images)."""
        if not head_only:
            return self._answer(x, [])[0]
        logits, features = self._run(x, ["logits", "features"])
        return ModelOutputs(logits, softmax(logits / self._temperature), features)

    def outputs_of_pixels(self, pixels: np.ndarray, head_only: bool = False,
                          batch_size: int = 64) -> ModelOutputs:
        """:meth:`outputs` of canonical uint8 pixels (N, H, W), in batches."""
        return in_batches(lambda x: self.outputs(x, head_only), pixels, self.input_spec, batch_size)

    def explain(self, x: np.ndarray) -> Explanation:
        """Probabilities, features, the Grad-CAM map of the served class and, for a
        segmenting model, the tumour outline, in one call.

        Raises GradCamUnavailable for a head whose Grad-CAM is not CAM (:attr:`explains`).
        """
        if self._cam_kernel is None:
            raise GradCamUnavailable(f"Grad-CAM of {self.path.name} needs TensorFlow: "
                                     f"{self.cam_reason}")
        wanted = ["feature_map", "outline"] if self.segments else ["feature_map"]
        answer, others = self._answer(x, wanted)
        maps = cam(others[0], self._cam_kernel, np.argmax(answer.probabilities, axis=-1))
        return Explanation(probabilities=answer.probabilities, logits=answer.logits, cam=maps,
                           features=answer.features,
                           outline=others[1] if self.segments else None)

    def warm_up(self) -> float:
        """Run the graph once (ONNX Runtime allocates on the first call); returns the
        seconds it took. Probabilities that are not a distribution stop start-up."""
        start = time.perf_counter()
        spec = self.input_spec
        x = np.random.default_rng(0).uniform(
            0, 1, size=(1, *spec.size, spec.channels)).astype(np.float32)
        probs = self.outputs(x).probabilities
        if self.explains:
            self.explain(x)
        if not (np.all(np.isfinite(probs)) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-3)):
            raise ModelLoadError("MODEL_PATH", "the ONNX graph's probabilities are not a "
                                               "distribution")
        return time.perf_counter() - start


def _metadata_of(model_path: Path) -> ModelMetadata:
    metadata = load_metadata(model_path)
    if metadata is None:
        raise ModelLoadError("MODEL_PATH", f"{model_path.name} has no metadata to serve its "
                                           "ONNX graph with")
    return metadata


def load_onnx_model(model_path: Path, threads: int = 1, metadata: ModelMetadata | None = None,
                    gradcam_layer: str | None = None, warm_up: bool = True,
                    graph: bytes | None = None, packed: bytes | None = None) -> OnnxModel:
    """The ONNX graph stored in ``model_path`` on ONNX Runtime, with ``threads`` intra-op
    threads; raises ModelLoadError when the file has no graph, or one that is not current
    (exported from other weights, or exposing another Grad-CAM or segmentation layer than
    the metadata's or ``gradcam_layer``).

    ``metadata`` defaults to the file's own (a bare model's defaults come from the
    caller's settings). ``graph`` and ``packed`` (the manifest entry's bytes) serve a
    graph kept elsewhere, converted from this file (braintumor.model.runtime's cache).
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ModelLoadError("MODEL_PATH", f"no model file at {model_path}")
    start = time.perf_counter()
    if graph is None or packed is None:
        graph = read_archive_entry(model_path, ONNX_ARCHIVE_ENTRY)
        packed = read_archive_entry(model_path, ONNX_MANIFEST_ENTRY)
    if graph is None or packed is None:
        raise ModelLoadError("MODEL_PATH", f"{model_path.name} carries no ONNX graph "
                                           "(export it with braintumor.model.onnx_export)")
    try:
        manifest, kernel = unpack_manifest(packed)
    except (KeyError, ValueError, OSError) as exc:
        raise ModelLoadError("MODEL_PATH", f"unreadable ONNX manifest: {exc}") from None
    metadata = metadata or _metadata_of(model_path)
    state = manifest_state(manifest, graph, model_path,
                           metadata.gradcam_layer if gradcam_layer is None else gradcam_layer,
                           metadata.segmentation_layer)
    if not state.current:
        raise ModelLoadError("MODEL_PATH", f"{model_path.name}: {state.reason}; export it "
                                           "anew")
    spec = metadata.input
    if list(manifest.get("input_shape", [])) != [*spec.size, spec.channels]:
        raise ModelLoadError("MODEL_PATH", f"the ONNX graph takes {manifest.get('input_shape')}"
                                           f", the metadata says {[*spec.size, spec.channels]}")
    if int(manifest.get("classes", -1)) != len(metadata.class_names):
        raise ModelLoadError("MODEL_PATH", f"the ONNX graph has {manifest.get('classes')} "
                                           f"classes, the metadata {len(metadata.class_names)}")
    model = OnnxModel(graph, manifest, kernel, metadata, model_path,
                      read_memory(model_path, len(metadata.class_names)), threads)
    if warm_up:
        model.warm_up()
    log.info("ONNX model %s loaded in %.2fs (%d threads; Grad-CAM %s)", model_path.name,
             time.perf_counter() - start, threads,
             "as CAM" if model.explains else f"needs TensorFlow: {model.cam_reason}")
    return model
