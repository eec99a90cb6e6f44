"""A model's ONNX graph in its file: the entries, their manifest and whether they are current.

The graph (:mod:`braintumor.model.onnx_export` writes it, at training time) travels in the
``.keras`` archive beside the weights, as the OOD statistics and the memory do
(:mod:`braintumor.model.archive`; a ``.h5`` model gets ``<model>.onnx`` and
``<model>.onnx.npz`` beside it):

* ``braintumor.onnx``: the ONNX graph, input ``image`` (N, H, W, C) float32, outputs
  :data:`OUTPUTS` (``outline`` only for a model with a segmentation layer);
* ``braintumor-onnx.npz``: the manifest (JSON: what the graph was exported from and how)
  and, when the head is global pooling then one dense layer, ``cam_kernel``: the rows of
  that layer's kernel that multiply the pooled Grad-CAM feature map, (channels, classes),
  from which the runtime computes Grad-CAM exactly (:mod:`braintumor.model.onnx_runtime`).

The manifest ties the graph to its Keras model: the SHA-256 of the weights and the
architecture (the ``model.weights.h5`` and ``config.json`` entries of a ``.keras``
archive; the whole file of a ``.h5`` model) when it was exported, the SHA-256 of the graph
itself, and the Grad-CAM and segmentation layers it exposes. A model re-trained, re-saved
or given another Grad-CAM layer has a graph that is no longer current
(:func:`onnx_state`); the temperature, the memory and the OOD statistics are applied
outside the graph and may change freely.

No TensorFlow here: the service reads these entries.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from braintumor.model.archive import read_archive_entry

#: The graph's archive entry (``<model>.onnx`` beside a ``.h5`` model).
ONNX_ARCHIVE_ENTRY = "braintumor.onnx"
#: The manifest's and CAM kernel's archive entry (``<model>.onnx.npz`` beside a ``.h5``).
ONNX_MANIFEST_ENTRY = "braintumor-onnx.npz"
FORMAT = "braintumor-onnx/1"
#: The graph's input.
INPUT = "image"
#: The graph's outputs: the head's logits (N, classes) before temperature; the head's
#: input (N, D), the features the not-a-brain-MRI check and the memory read; the Grad-CAM
#: layer's feature map (N, h, w, channels); the outline (N, H, W), segmenting models only.
OUTPUTS = ("logits", "features", "feature_map", "outline")
#: The ``.keras`` archive's entries the checksum covers: the weights and the architecture.
KERAS_ENTRIES = ("config.json", "model.weights.h5")


def keras_checksum(model_path: Path) -> str:
    """SHA-256 of what a Keras model computes: a ``.keras`` archive's weights and
    architecture entries (not our own entries, which change without the graph changing),
    or the whole file of another model type."""
    digest = hashlib.sha256()
    model_path = Path(model_path)
    if model_path.suffix == ".keras" and zipfile.is_zipfile(model_path):
        with zipfile.ZipFile(model_path) as archive:
            names = set(archive.namelist())
            for entry in KERAS_ENTRIES:
                if entry in names:
                    digest.update(entry.encode() + b"\0")
                    with archive.open(entry) as stream:
                        for block in iter(lambda: stream.read(1 << 20), b""):
                            digest.update(block)
        return digest.hexdigest()
    with open(model_path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pack_manifest(manifest: dict[str, Any], cam_kernel: np.ndarray | None) -> bytes:
    """The ``braintumor-onnx.npz`` entry's bytes (no pickled objects: a string and floats)."""
    arrays: dict[str, np.ndarray] = {
        "manifest": np.array(json.dumps(manifest, sort_keys=True))}
    if cam_kernel is not None:
        arrays["cam_kernel"] = np.asarray(cam_kernel, np.float32)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def unpack_manifest(data: bytes) -> tuple[dict[str, Any], np.ndarray | None]:
    """(manifest, CAM kernel or None) from the ``braintumor-onnx.npz`` entry's bytes."""
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        manifest = json.loads(str(arrays["manifest"]))
        kernel = arrays["cam_kernel"].astype(np.float32) if "cam_kernel" in arrays else None
    if manifest.get("format") != FORMAT:
        raise ValueError(f"unknown ONNX manifest format {manifest.get('format')!r}")
    return manifest, kernel


@dataclass(frozen=True)
class OnnxState:
    """Whether a model file carries an ONNX graph, and whether it is that model's."""

    present: bool
    current: bool
    #: Why the graph is absent or not current; "" when it is current.
    reason: str = ""


def onnx_state(model_path: Path, gradcam_layer: str | None = None,
               segmentation_layer: str | None = None) -> OnnxState:
    """Whether ``model_path`` carries an ONNX graph, and whether it is current: exported
    from the weights the file holds now, unaltered since, and exposing ``gradcam_layer``
    and ``segmentation_layer`` (when given: the layers the model is to be served with;
    the metadata's by default, read by the caller)."""
    model_path = Path(model_path)
    graph = read_archive_entry(model_path, ONNX_ARCHIVE_ENTRY)
    packed = read_archive_entry(model_path, ONNX_MANIFEST_ENTRY)
    if graph is None or packed is None:
        missing = ONNX_ARCHIVE_ENTRY if graph is None else ONNX_MANIFEST_ENTRY
        return OnnxState(False, False, f"the model file has no {missing}")
    try:
        manifest, _ = unpack_manifest(packed)
    except (KeyError, ValueError, OSError) as exc:
        return OnnxState(True, False, f"unreadable ONNX manifest: {exc}")
    return manifest_state(manifest, graph, model_path, gradcam_layer, segmentation_layer)


def manifest_state(manifest: dict[str, Any], graph: bytes, model_path: Path,
                   gradcam_layer: str | None = None,
                   segmentation_layer: str | None = None) -> OnnxState:
    """:func:`onnx_state` of a manifest and graph already read."""
    if hashlib.sha256(graph).hexdigest() != manifest.get("onnx_sha256"):
        return OnnxState(True, False, "the ONNX graph is not the one its manifest describes")
    if keras_checksum(model_path) != manifest.get("keras_sha256"):
        return OnnxState(True, False, "the ONNX graph was exported from other weights than "
                                      "the model file holds now")
    # the Grad-CAM layer as asked for ("": the model's last 4-D layer) or as found
    exposed = {manifest.get("gradcam_layer", ""), manifest.get("feature_layer", "")}
    if gradcam_layer is not None and gradcam_layer not in exposed:
        return OnnxState(True, False, f"the ONNX graph exposes the Grad-CAM layer "
                                      f"{manifest.get('feature_layer', '')!r}, not "
                                      f"{gradcam_layer!r}")
    if segmentation_layer is not None and (
            manifest.get("segmentation_layer", "") != segmentation_layer):
        return OnnxState(True, False, f"the ONNX graph exposes the segmentation layer "
                                      f"{manifest.get('segmentation_layer', '')!r}, not "
                                      f"{segmentation_layer!r}")
    return OnnxState(True, True)
