"""Model metadata: what a model needs besides its weights to be served correctly.

The metadata travels inside the ``.keras`` file itself, as an extra ``braintumor.json``
entry of the zip archive (:mod:`braintumor.model.archive`), so copying the model copies
its class names, input scaling and temperature with it. A ``<model>.json`` file beside
the model is read as well, which is how an ``.h5`` model or a user's bare model can be
given metadata without re-saving it. A model without either still loads, with the
configured defaults.

The out-of-distribution statistics (:mod:`braintumor.ood`) are arrays: a 256 x 256
precision matrix is 65,536 numbers, too many for readable JSON. Their description
(method, threshold, what they were fitted on) goes in the JSON under ``ood``; the arrays
go beside it as a second archive entry, ``braintumor-ood.npz`` (float32, uncompressed
numpy), or for a sidecar model as ``<model>.ood.npz`` beside ``<model>.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from braintumor.errors import ModelLoadError
from braintumor.model.archive import add_entry, read_entry, write_entries
from braintumor.preprocessing import InputSpec

ARCHIVE_ENTRY = "braintumor.json"
#: The archive entry (or sidecar suffix) of the out-of-distribution statistics' arrays.
OOD_ARCHIVE_ENTRY = "braintumor-ood.npz"
FORMAT = "braintumor-model/1"


@dataclass
class ModelMetadata:
    """Everything the service must know about a model that its weights do not say."""

    class_names: list[str]
    input: InputSpec
    temperature: float = 1.0
    gradcam_layer: str = ""
    #: A layer whose output is the tumour outline, (N, H, W, 1) probabilities in the
    #: model's input space; empty when the model has none (any user's classifier).
    segmentation_layer: str = ""
    architecture: str = ""
    version: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    #: Out-of-distribution statistics' description (empty when none were fitted).
    ood: dict[str, Any] = field(default_factory=dict)
    #: The nearest-neighbour memory's description (braintumor.model.memory); empty if none.
    memory: dict[str, Any] = field(default_factory=dict)
    #: The series rule's settings chosen for this model (``volume_slice_threshold``, and
    #: the validation figures it was chosen on); empty: the rule's defaults.
    series: dict[str, Any] = field(default_factory=dict)
    #: Where the metadata came from: "embedded", "sidecar" or "defaults".
    source: str = "defaults"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input"] = self.input.to_dict()
        data.pop("source")
        for optional in ("ood", "memory", "series", "segmentation_layer"):
            if not data[optional]:
                data.pop(optional)
        data["format"] = FORMAT
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> ModelMetadata:
        spec = data.get("input") or {}
        return cls(
            class_names=[str(c) for c in data["class_names"]],
            input=InputSpec(
                size=tuple(int(v) for v in spec["size"]),  # type: ignore[arg-type]
                channels=int(spec.get("channels", 1)),
                scaling=str(spec.get("scaling", "unit")),
                framing=str(spec.get("framing", "stretch")),
            ),
            temperature=float(data.get("temperature", 1.0)),
            gradcam_layer=str(data.get("gradcam_layer", "")),
            segmentation_layer=str(data.get("segmentation_layer", "")),
            architecture=str(data.get("architecture", "")),
            version=str(data.get("version", "")),
            training=dict(data.get("training") or {}),
            ood=dict(data.get("ood") or {}),
            memory=dict(data.get("memory") or {}),
            series=dict(data.get("series") or {}),
            source=source,
        )


def load_metadata(model_path: Path) -> ModelMetadata | None:
    """The model's metadata, None when it has none; unreadable metadata stops start-up
    (a ModelLoadError naming MODEL_PATH), whichever runtime serves the model."""
    raw = read_metadata(model_path)
    if raw is None:
        return None
    try:
        return ModelMetadata.from_dict(*raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError("MODEL_PATH", f"unreadable model metadata: {exc}") from None


def read_metadata(model_path: Path) -> tuple[dict[str, Any], str] | None:
    """The raw metadata dict and its source ("embedded" or "sidecar"), or None for a bare
    model."""
    found = read_entry(model_path, ARCHIVE_ENTRY)
    return None if found is None else (json.loads(found[0]), found[1])


def _payload(metadata: ModelMetadata) -> bytes:
    return (json.dumps(metadata.to_dict(), indent=2, sort_keys=True) + "\n").encode()


def write_metadata(model_path: Path, metadata: ModelMetadata) -> None:
    """Embed metadata into a saved ``.keras`` archive (or write a sidecar for others)."""
    add_entry(model_path, ARCHIVE_ENTRY, _payload(metadata))


def replace_metadata(model_path: Path, metadata: ModelMetadata, out: Path | None = None,
                     entries: dict[str, bytes] | None = None) -> Path:
    """Write ``metadata`` into ``out`` (default: the model, in place), with ``entries``.

    ``entries`` sets archive entries of ours by name (the OOD statistics' arrays, the
    nearest-neighbour memory); entries not named are kept as they are
    (:func:`braintumor.model.archive.write_entries`, which says how a crash is survived).
    """
    return write_entries(model_path, {ARCHIVE_ENTRY: _payload(metadata), **(entries or {})},
                         out)
