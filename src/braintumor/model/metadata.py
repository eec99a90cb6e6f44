"""Model metadata: what a model needs besides its weights to be served correctly.

The metadata travels inside the ``.keras`` file itself, as an extra ``braintumor.json``
entry of the zip archive (Keras ignores entries it does not know), so copying the model
copies its class names, input scaling and temperature with it. A ``<model>.json`` file
beside the model is read as well, which is how an ``.h5`` model or a user's bare model
can be given metadata without re-saving it. A model without either still loads, with the
configured defaults.

The out-of-distribution statistics (:mod:`braintumor.ood`) are arrays: a 256 x 256
precision matrix is 65,536 numbers, too many for readable JSON. Their description
(method, threshold, what they were fitted on) goes in the JSON under ``ood``; the arrays
go beside it as a second archive entry, ``braintumor-ood.npz`` (float32, uncompressed
numpy), or for a sidecar model as ``<model>.ood.npz`` beside ``<model>.json``.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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
    architecture: str = ""
    version: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    #: Out-of-distribution statistics' description (empty when none were fitted).
    ood: dict[str, Any] = field(default_factory=dict)
    #: The nearest-neighbour memory's description (braintumor.model.memory); empty if none.
    memory: dict[str, Any] = field(default_factory=dict)
    #: Where the metadata came from: "embedded", "sidecar" or "defaults".
    source: str = "defaults"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input"] = self.input.to_dict()
        data.pop("source")
        for optional in ("ood", "memory"):
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
            architecture=str(data.get("architecture", "")),
            version=str(data.get("version", "")),
            training=dict(data.get("training") or {}),
            ood=dict(data.get("ood") or {}),
            memory=dict(data.get("memory") or {}),
            source=source,
        )


def sidecar_path(model_path: Path) -> Path:
    return model_path.with_suffix(".json")


def entry_sidecar_path(model_path: Path, entry: str) -> Path:
    """Where an archive entry lives beside a non-``.keras`` model: ``braintumor-ood.npz``
    of ``m.h5`` is ``m.ood.npz``."""
    return model_path.with_suffix("." + entry.removeprefix("braintumor-"))


def read_archive_entry(model_path: Path, entry: str) -> bytes | None:
    """The bytes of one of our entries in the model's archive (or its sidecar), or None."""
    if model_path.suffix == ".keras" and zipfile.is_zipfile(model_path):
        with zipfile.ZipFile(model_path) as archive:
            if entry in archive.namelist():
                return archive.read(entry)
    sidecar = entry_sidecar_path(model_path, entry)
    return sidecar.read_bytes() if sidecar.is_file() else None


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


def read_ood_arrays(model_path: Path) -> bytes | None:
    """The ``.npz`` bytes of the model's OOD statistics (archive entry or sidecar), or None."""
    return read_archive_entry(model_path, OOD_ARCHIVE_ENTRY)


def replace_metadata(model_path: Path, metadata: ModelMetadata, out: Path | None = None,
                     entries: dict[str, bytes] | None = None) -> Path:
    """Write ``metadata`` into ``out`` (default: the model, in place), with ``entries``.

    ``entries`` sets archive entries of ours by name (the OOD statistics' arrays, the
    nearest-neighbour memory); entries not named are kept as they are. A zip entry cannot
    be replaced in place, so a ``.keras`` archive is copied entry by entry, without the
    entries being replaced, into a temporary file next to the target, which then replaces
    the target in one rename: a crash leaves the old file intact. Another model type gets
    sidecars (``<out>.json``, ``<out>.ood.npz``, ...; ``out`` then names where the model
    is, and the model file and its other sidecars are copied there when it differs).
    """
    import os
    import shutil
    import tempfile

    target = Path(out or model_path)
    payload = json.dumps(metadata.to_dict(), indent=2, sort_keys=True)
    entries = entries or {}
    if model_path.suffix != ".keras":
        if target != model_path:
            shutil.copyfile(model_path, target)
            for sidecar in model_path.parent.glob(f"{model_path.stem}.*.npz"):
                suffix = sidecar.name[len(model_path.stem):]  # ".ood.npz", ".memory.npz"
                shutil.copyfile(sidecar, target.with_name(target.stem + suffix))
        sidecar_path(target).write_text(payload + "\n")
        for entry, data in entries.items():
            entry_sidecar_path(target, entry).write_bytes(data)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    try:
        with zipfile.ZipFile(model_path) as source, \
                zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            replaced = {ARCHIVE_ENTRY, *entries}
            for info in source.infolist():
                if info.filename not in replaced:
                    archive.writestr(info, source.read(info.filename))
            archive.writestr(ARCHIVE_ENTRY, payload)
            for entry, data in entries.items():
                archive.writestr(entry, data)
        if target.exists():  # mkstemp's 0600 would hide a new model from other users
            shutil.copymode(target, temporary)
        else:
            os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target
