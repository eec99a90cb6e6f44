"""Which runtime serves a model: ONNX Runtime where it can, TensorFlow where it must.

Every serving path (the API, the series endpoint, the CLI's classify, Spark's batch jobs,
DICOMweb) loads its model with :func:`load_serving_model`, and reads it through
:class:`ServingModel`, which both :class:`~braintumor.model.onnx_runtime.OnnxModel` and
:class:`~braintumor.model.loaded.LoadedModel` satisfy. ``MODEL_RUNTIME`` picks:

* ``auto`` (the default): ONNX Runtime when the model file carries a current ONNX graph
  (:func:`~braintumor.model.onnx_archive.onnx_state`: exported from the weights it holds
  now, exposing the Grad-CAM and segmentation layers it is served with), or when a graph
  converted earlier is cached beside it for its checksum; otherwise TensorFlow;
* ``onnx``: ONNX Runtime always; a model without a current graph is converted at load,
  with TensorFlow, and the graph cached beside it (:func:`cache_paths`: never written into
  the user's file), so that later starts need no TensorFlow;
* ``tensorflow``: the Keras model on TensorFlow.

A head whose Grad-CAM is not exactly CAM (not global pooling then one dense layer) has an
ONNX graph that cannot explain: it is served by TensorFlow, or refused at start when
TensorFlow is not installed; never with a map that is not the model's Grad-CAM. Without
TensorFlow (the package's base install), a model that needs it stops start-up with one
line naming the extra to install (:data:`TRAIN_EXTRA`).

ONNX Runtime gets ``threads`` intra-op threads: the cores over the worker processes that
share them (:func:`onnx_threads`), so that workers do not oversubscribe the cores.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from braintumor.errors import ModelLoadError
from braintumor.model.archive import read_archive_entry
from braintumor.model.explanation import Explanation
from braintumor.model.loaded import LoadedModel, ModelSettings
from braintumor.model.memory import FeatureMemory
from braintumor.model.metadata import ModelMetadata, load_metadata
from braintumor.model.onnx_archive import (
    ONNX_ARCHIVE_ENTRY,
    ONNX_MANIFEST_ENTRY,
    keras_checksum,
    manifest_state,
    onnx_state,
    pack_manifest,
    unpack_manifest,
)
from braintumor.model.onnx_runtime import OnnxModel, load_onnx_model
from braintumor.model.outputs import ModelOutputs
from braintumor.preprocessing import InputSpec

log = logging.getLogger(__name__)

__all__ = ["CACHE_DIR", "RUNTIMES", "TRAIN_EXTRA", "GraphLayers", "RuntimeSettings",
           "ServingModel", "cache_paths", "load_serving_model", "needs_tensorflow",
           "onnx_threads", "runtime_of", "tensorflow_available"]

#: MODEL_RUNTIME's values.
RUNTIMES = ("auto", "onnx", "tensorflow")
#: What to install for TensorFlow and Keras (training, conversion, the TensorFlow path).
TRAIN_EXTRA = "pip install .[train]"
#: The folder beside a model where graphs converted at load are cached.
CACHE_DIR = ".onnx-cache"


class GraphLayers(Protocol):
    """The layers a served graph exposes (``LoadedModel.graph``, ``OnnxModel.graph``)."""

    @property
    def layer_name(self) -> str: ...
    @property
    def segmentation_name(self) -> str: ...


class ServingModel(Protocol):
    """A classifier ready to serve, whichever runtime runs it."""

    path: Path

    @property
    def metadata(self) -> ModelMetadata: ...
    @property
    def memory(self) -> FeatureMemory | None: ...
    @property
    def input_spec(self) -> InputSpec: ...
    @property
    def class_names(self) -> list[str]: ...
    @property
    def feature_dims(self) -> int: ...
    @property
    def segments(self) -> bool: ...
    @property
    def graph(self) -> GraphLayers: ...

    def outputs(self, x: np.ndarray, head_only: bool = False) -> ModelOutputs: ...
    def outputs_of_pixels(self, pixels: np.ndarray, head_only: bool = False,
                          batch_size: int = 64) -> ModelOutputs: ...
    def explain(self, x: np.ndarray) -> Explanation: ...
    def warm_up(self) -> float: ...


class RuntimeSettings(ModelSettings, Protocol):
    """The model settings plus MODEL_RUNTIME (:class:`braintumor.config.ModelSettings`)."""

    @property
    def MODEL_RUNTIME(self) -> str: ...


def tensorflow_available() -> bool:
    """Whether TensorFlow and Keras can be imported (the ``[train]`` extra), without
    importing them."""
    try:
        return all(importlib.util.find_spec(name) is not None
                   for name in ("tensorflow", "keras"))
    except (ImportError, ValueError):
        return False


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def onnx_threads(workers: int = 1, cores: int | None = None) -> int:
    """ONNX Runtime's intra-op threads for one of ``workers`` processes sharing the
    machine's cores (at least one)."""
    cores = available_cores() if cores is None else cores
    return max(1, cores // max(1, workers))


def runtime_of(model: object) -> str:
    """"onnxruntime" or "tensorflow": what runs a served model (``/api/health``)."""
    return "onnxruntime" if isinstance(model, OnnxModel) else "tensorflow"


def cache_paths(model_path: Path, checksum: str) -> tuple[Path, Path]:
    """(graph, manifest) files of the graph converted from ``model_path`` whose
    :func:`~braintumor.model.onnx_archive.keras_checksum` is ``checksum``: in
    :data:`CACHE_DIR` beside the model, named by the model and the checksum."""
    stem = f"{model_path.name}.{checksum[:16]}"
    folder = model_path.parent / CACHE_DIR
    return folder / f"{stem}.onnx", folder / f"{stem}.onnx.npz"


# --- the pieces ---------------------------------------------------------------------------


def _bare_metadata(manifest: dict, settings: ModelSettings) -> ModelMetadata:
    """A model without metadata, as :func:`~braintumor.model.loaded.load_model` reads it
    from its input shape (here the graph's) and the settings."""
    height, width, channels = [*manifest.get("input_shape", []), 0, 0, 3][:3]
    size = (int(height), int(width)) if height and width else settings.IMAGE_SIZE
    return ModelMetadata(class_names=settings.class_list,
                         input=InputSpec(size=size, channels=int(channels or 3),
                                         scaling=settings.INPUT_SCALING),
                         source="defaults")


def _check_settings(metadata: ModelMetadata, settings: ModelSettings) -> None:
    """What :func:`~braintumor.model.loaded.load_model` checks of the settings."""
    classes = len(settings.CLASS_NAMES)
    if len(metadata.class_names) != classes:
        raise ModelLoadError("CLASS_NAMES", f"the model's metadata names "
                                            f"{len(metadata.class_names)} classes, the "
                                            f"settings {classes}")
    if settings.IMAGE_SIZE_EXPLICIT and tuple(metadata.input.size) != tuple(
            settings.IMAGE_SIZE):
        raise ModelLoadError("IMAGE_SIZE", f"{settings.IMAGE_SIZE} does not match the "
                                           f"model's input size {metadata.input.size}")


def _current_graph(model_path: Path, gradcam_layer: str, segmentation_layer: str
                   ) -> tuple[bytes, bytes, str] | None:
    """(graph, manifest bytes, "file" or "cache") of a current graph for the model: its
    own, or one cached for its checksum; None when there is neither."""
    if onnx_state(model_path, gradcam_layer, segmentation_layer).current:
        graph = read_archive_entry(model_path, ONNX_ARCHIVE_ENTRY)
        packed = read_archive_entry(model_path, ONNX_MANIFEST_ENTRY)
        if graph is not None and packed is not None:
            return graph, packed, "file"
    graph_file, manifest_file = cache_paths(model_path, keras_checksum(model_path))
    if not (graph_file.is_file() and manifest_file.is_file()):
        return None
    graph, packed = graph_file.read_bytes(), manifest_file.read_bytes()
    try:
        manifest, _ = unpack_manifest(packed)
    except (KeyError, ValueError, OSError):
        return None
    if not manifest_state(manifest, graph, model_path, gradcam_layer,
                          segmentation_layer).current:
        return None
    return graph, packed, "cache"


def _needs_tensorflow(model_path: Path, why: str) -> ModelLoadError:
    return ModelLoadError("MODEL_PATH", f"{model_path.name} {why}: serving it needs "
                                        f"TensorFlow, which is not installed: {TRAIN_EXTRA} "
                                        "(or store its graph with `braintumor export-onnx` "
                                        "where TensorFlow is)")


def _tensorflow_model(settings: ModelSettings, model_path: Path, warm_up: bool
                      ) -> LoadedModel:
    from braintumor.model.loaded import load_model

    return load_model(settings, path=model_path, warm_up=warm_up)


def _convert(settings: ModelSettings, model_path: Path, warm_up: bool
             ) -> tuple[LoadedModel, bytes, bytes]:
    """Load the Keras model, export its graph and cache it beside the model; returns
    (the Keras LoadedModel, graph, manifest bytes)."""
    from braintumor.model.onnx_export import export_onnx

    loaded = _tensorflow_model(settings, model_path, warm_up)
    export = export_onnx(loaded)
    manifest = {**export.manifest, "keras_sha256": keras_checksum(model_path)}
    packed = pack_manifest(manifest, export.cam_kernel)
    graph_file, manifest_file = cache_paths(model_path, manifest["keras_sha256"])
    try:
        graph_file.parent.mkdir(parents=True, exist_ok=True)
        for target, data in ((graph_file, export.graph), (manifest_file, packed)):
            temporary = target.with_name(f".{target.name}.{os.getpid()}")
            temporary.write_bytes(data)
            os.replace(temporary, target)  # another worker may be writing it too
        log.info("converted %s to ONNX; cached in %s", model_path.name, graph_file.parent)
    except OSError as exc:
        log.warning("converted %s to ONNX but cannot cache it beside the model (%s): the "
                    "next start converts it again", model_path.name, exc)
    return loaded, export.graph, packed


def needs_tensorflow(settings: RuntimeSettings, path: Path | None = None) -> bool:
    """Whether serving the model at MODEL_PATH (or ``path``) needs TensorFlow: on
    MODEL_RUNTIME=tensorflow, for a file without a current ONNX graph (its own or a cached
    one), or for a head whose Grad-CAM is not CAM. False for a file that is missing or
    unreadable: start-up says what is wrong with it. Reads the file, imports no runtime."""
    model_path = Path(path or settings.MODEL_PATH)
    if getattr(settings, "MODEL_RUNTIME", "auto") == "tensorflow":
        return True
    if not model_path.is_file():
        return False
    try:
        metadata = load_metadata(model_path)
        found = _current_graph(
            model_path, settings.GRADCAM_LAYER or (metadata.gradcam_layer if metadata else ""),
            metadata.segmentation_layer if metadata else "")
        if found is None:
            return True
        manifest, _ = unpack_manifest(found[1])
    except (ModelLoadError, KeyError, ValueError, OSError):
        return False
    return not manifest.get("cam", {}).get("exact")


# --- the loader -----------------------------------------------------------------------------


def load_serving_model(settings: RuntimeSettings, path: Path | None = None, threads: int = 1,
                       warm_up: bool = True) -> ServingModel:
    """The model at MODEL_PATH (or ``path``) on the runtime MODEL_RUNTIME picks (see the
    module's docstring), ONNX Runtime with ``threads`` intra-op threads; raises
    ModelLoadError naming the setting."""
    model_path = Path(path or settings.MODEL_PATH)
    runtime = getattr(settings, "MODEL_RUNTIME", "auto")
    if runtime not in RUNTIMES:
        raise ModelLoadError("MODEL_RUNTIME", f"expected one of {', '.join(RUNTIMES)}, got "
                                              f"{runtime!r}")
    if not model_path.is_file():
        raise ModelLoadError("MODEL_PATH", f"no model file at {model_path}")
    if model_path.suffix not in (".keras", ".h5", ".hdf5"):
        raise ModelLoadError("MODEL_PATH", f"expected a .keras or .h5 file, got {model_path.name}")
    with_tensorflow = tensorflow_available()
    if runtime == "tensorflow":
        if not with_tensorflow:
            raise _needs_tensorflow(model_path, "is to be served on TensorFlow "
                                                "(MODEL_RUNTIME=tensorflow)")
        return _tensorflow_model(settings, model_path, warm_up)

    metadata = load_metadata(model_path)
    gradcam_layer = settings.GRADCAM_LAYER or (metadata.gradcam_layer if metadata else "")
    segmentation_layer = metadata.segmentation_layer if metadata else ""
    found = _current_graph(model_path, gradcam_layer, segmentation_layer)
    if found is None:
        if not with_tensorflow:
            raise _needs_tensorflow(model_path, "carries no current ONNX graph")
        if runtime == "auto":
            log.info("%s carries no current ONNX graph: served by TensorFlow "
                     "(MODEL_RUNTIME=onnx converts it once and caches it beside the model; "
                     "`braintumor export-onnx --model` stores it in the file)", model_path.name)
            return _tensorflow_model(settings, model_path, warm_up)
        loaded, graph, packed = _convert(settings, model_path, warm_up)
        found, metadata = (graph, packed, "conversion"), loaded.metadata
        del loaded  # TensorFlow stays imported, but the Keras model is freed
    graph, packed, origin = found
    manifest, _ = unpack_manifest(packed)
    if not manifest.get("cam", {}).get("exact"):
        reason = manifest.get("cam", {}).get("reason", "")
        if runtime == "onnx":
            raise ModelLoadError("MODEL_RUNTIME", f"{model_path.name}'s Grad-CAM needs "
                                                  f"TensorFlow ({reason}): MODEL_RUNTIME=auto "
                                                  "or tensorflow serves it there")
        if not with_tensorflow:
            raise _needs_tensorflow(model_path, f"has a head whose Grad-CAM is not CAM "
                                                f"({reason})")
        return _tensorflow_model(settings, model_path, warm_up)
    metadata = metadata or _bare_metadata(manifest, settings)
    _check_settings(metadata, settings)
    model = load_onnx_model(model_path, threads, metadata, gradcam_layer, warm_up,
                            graph=graph, packed=packed)
    log.info("model %s on ONNX Runtime (%d threads; graph from the %s)", model_path.name,
             threads, origin)
    return model

