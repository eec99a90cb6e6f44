"""Model metadata: what a model needs besides its weights to be served correctly.

The metadata travels inside the ``.keras`` file itself, as an extra ``braintumor.json``
entry of the zip archive (Keras ignores entries it does not know), so copying the model
copies its class names, input scaling and temperature with it. A ``<model>.json`` file
beside the model is read as well, which is how an ``.h5`` model or a user's bare model
can be given metadata without re-saving it. A model without either still loads, with the
configured defaults.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from braintumor.preprocessing import InputSpec

ARCHIVE_ENTRY = "braintumor.json"
FORMAT = "braintumor-model/1"


@dataclass
class ModelMetadata:
    """Everything the service must know about a model that its weights do not say."""

    class_names: list[str]
    input: InputSpec
    temperature: float = 1.0
    gradcam_layer: str = ""
    architecture: str = ""
    version: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    #: Where the metadata came from: "embedded", "sidecar" or "defaults".
    source: str = "defaults"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input"] = self.input.to_dict()
        data.pop("source")
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
            ),
            temperature=float(data.get("temperature", 1.0)),
            gradcam_layer=str(data.get("gradcam_layer", "")),
            architecture=str(data.get("architecture", "")),
            version=str(data.get("version", "")),
            training=dict(data.get("training") or {}),
            source=source,
        )


def sidecar_path(model_path: Path) -> Path:
    return model_path.with_suffix(".json")


def read_metadata(model_path: Path) -> tuple[dict[str, Any], str] | None:
    """The raw metadata dict and its source, or None for a bare model."""
    if model_path.suffix == ".keras" and zipfile.is_zipfile(model_path):
        with zipfile.ZipFile(model_path) as archive:
            if ARCHIVE_ENTRY in archive.namelist():
                return json.loads(archive.read(ARCHIVE_ENTRY)), "embedded"
    sidecar = sidecar_path(model_path)
    if sidecar.is_file():
        return json.loads(sidecar.read_text()), "sidecar"
    return None


def write_metadata(model_path: Path, metadata: ModelMetadata) -> None:
    """Embed metadata into a saved ``.keras`` archive (or write a sidecar for others)."""
    payload = json.dumps(metadata.to_dict(), indent=2, sort_keys=True)
    if model_path.suffix == ".keras":
        with zipfile.ZipFile(model_path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            if ARCHIVE_ENTRY in archive.namelist():
                raise ValueError(f"{model_path} already carries metadata; save the model anew")
            archive.writestr(ARCHIVE_ENTRY, payload)
    else:
        sidecar_path(model_path).write_text(payload + "\n")
