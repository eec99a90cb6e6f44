"""Our entries in a model file: read one, or write several without touching the rest.

A ``.keras`` model is a zip archive; Keras ignores entries it does not know, so the
service keeps what a model needs besides its weights (metadata, the nearest-neighbour
memory, the OOD statistics) as extra entries of that archive, and copying the model
copies them all. A model of another type (``.h5``) gets each entry as a sidecar file
beside it instead (``braintumor.json`` of ``m.h5`` is ``m.json``, ``braintumor-ood.npz``
is ``m.ood.npz``). This module knows only that file layout; what an entry holds belongs
to its reader (:mod:`braintumor.model.metadata`, :mod:`braintumor.model.memory`,
:mod:`braintumor.ood.stats`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path


def entry_sidecar_path(model_path: Path, entry: str) -> Path:
    """Where an archive entry lives beside a non-``.keras`` model: ``braintumor-ood.npz``
    of ``m.h5`` is ``m.ood.npz``, ``braintumor.json`` is ``m.json``."""
    return model_path.with_suffix("." + entry.removeprefix("braintumor-").removeprefix(
        "braintumor."))


def _is_archive(model_path: Path) -> bool:
    return model_path.suffix == ".keras" and zipfile.is_zipfile(model_path)


def read_entry(model_path: Path, entry: str) -> tuple[bytes, str] | None:
    """(bytes, "embedded" or "sidecar") of one of our entries, or None when absent.

    The archive's own entry wins; a sidecar is read when the archive has none, which is
    how a bare ``.keras`` model can be given metadata without re-saving it.
    """
    if _is_archive(model_path):
        with zipfile.ZipFile(model_path) as archive:
            if entry in archive.namelist():
                return archive.read(entry), "embedded"
    sidecar = entry_sidecar_path(model_path, entry)
    return (sidecar.read_bytes(), "sidecar") if sidecar.is_file() else None


def read_archive_entry(model_path: Path, entry: str) -> bytes | None:
    """The bytes of one of our entries in the model's archive (or its sidecar), or None."""
    found = read_entry(model_path, entry)
    return None if found is None else found[0]


def add_entry(model_path: Path, entry: str, data: bytes) -> None:
    """Add a new entry to a saved model (a sidecar for a non-``.keras`` one).

    Refuses to add an entry the archive already has: a zip may hold two entries of one
    name, and which one a reader gets is then up to the reader.
    """
    if model_path.suffix != ".keras":
        entry_sidecar_path(model_path, entry).write_bytes(data)
        return
    with zipfile.ZipFile(model_path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        if entry in archive.namelist():
            raise ValueError(f"{model_path} already carries {entry}; save the model anew")
        archive.writestr(entry, data)


def write_entries(model_path: Path, entries: dict[str, bytes], out: Path | None = None
                  ) -> Path:
    """Write ``entries`` into ``out`` (default: the model, in place); returns ``out``.

    Entries not named are kept as they are. A zip entry cannot be replaced in place, so a
    ``.keras`` archive is copied entry by entry, without the entries being replaced, into
    a temporary file next to the target, which then replaces the target in one rename: a
    crash leaves the old file intact. Another model type gets sidecars (``out`` then
    names where the model is, and the model file and its other sidecars, the ONNX graph's
    among them, are copied there when it differs).
    """
    target = Path(out or model_path)
    if model_path.suffix != ".keras":
        if target != model_path:
            shutil.copyfile(model_path, target)
            sidecars = [*model_path.parent.glob(f"{model_path.stem}.*.npz"),
                        model_path.with_suffix(".onnx")]  # the ONNX graph (onnx_archive)
            for sidecar in sidecars:
                if not sidecar.is_file():
                    continue
                # ".ood.npz", ".memory.npz", ".onnx.npz", ".onnx"
                suffix = sidecar.name[len(model_path.stem):]
                shutil.copyfile(sidecar, target.with_name(target.stem + suffix))
        for entry, data in entries.items():
            entry_sidecar_path(target, entry).write_bytes(data)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    try:
        with zipfile.ZipFile(model_path) as source, \
                zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for info in source.infolist():
                if info.filename not in entries:
                    archive.writestr(info, source.read(info.filename))
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
