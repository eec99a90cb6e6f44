"""A model that sees exactly one thing, and volumes and slices that hold it.

The *checker model* (128x128 grey, stretched: the pictures here are that size, so nothing
is resampled) calls a picture Glioma when it holds a checkerboard (black against bright)
and No Tumor otherwise: a
2x2 filter [[1, -1], [-1, 1]] (and its negative), ReLU after a bias of -1.2, a global
maximum, and a dense head. Nothing else in a scan-like picture (an oval, its edges, a
bright blob) reaches the threshold, so the tests know the right answer of every slice,
and its Grad-CAM map lies on the checkerboard. Checkerboards stand in for tumours; their
label maps and masks are where the checkerboards are.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
from PIL import Image

CLASS_NAMES = ["Glioma", "Meningioma", "No Tumor", "Pituitary"]
SIZE = 128
#: Checkerboard cell in pixels.
CELL = 4
#: In-plane voxel size and slice spacing of the synthetic volumes (mm).
VOXEL_MM, SPACING_MM = 1.5, 3.0
SLICES = 16
#: Tumour slices of the synthetic tumour volume: slice -> (square side in voxels, visible).
#: Core areas at 1.5 mm: 8 px 1.44 cm2, 12 px 3.24, 20 px 9.0, 24 px 12.96, 16 px 5.76,
#: and a 4 px square (0.36 cm2) with a label but nothing to see.
TUMOUR_SLICES = {2: (8, True), 3: (12, True), 4: (20, True), 5: (24, True), 6: (16, True),
                 7: (4, False)}
FIELDS = ["case", "path", "kind", "sequence", "tumour_type", "label_path"]


def save_checker_model(path: Path) -> Path:
    import keras

    from braintumor.model.metadata import ModelMetadata, write_metadata
    from braintumor.preprocessing import InputSpec

    inputs = keras.Input((SIZE, SIZE, 1))
    features = keras.layers.Conv2D(2, 2, padding="same", activation="relu",
                                   name="features")(inputs)
    pooled = keras.layers.GlobalMaxPooling2D()(features)
    outputs = keras.layers.Dense(4, activation="softmax", name="predictions")(pooled)
    model = keras.Model(inputs, outputs)
    kernel = np.array([[1.0, -1.0], [-1.0, 1.0]], dtype=np.float32)
    conv = np.stack([kernel, -kernel], axis=-1)[:, :, None, :]  # (2, 2, 1, 2)
    model.get_layer("features").set_weights([conv, np.full(2, -1.2, np.float32)])
    dense = np.zeros((2, 4), np.float32)
    dense[:, 0] = 20.0
    model.get_layer("predictions").set_weights([dense, np.array([0, 0, 3, 0], np.float32)])
    model.save(path)
    write_metadata(path, ModelMetadata(
        class_names=CLASS_NAMES, input=InputSpec((SIZE, SIZE), 1, "unit"),
        temperature=1.0, gradcam_layer="features", architecture="checker",
        version="checker-test"))
    return path


def checkerboard(side: int) -> np.ndarray:
    """(side, side) 0/1, cells of CELL pixels."""
    index = np.arange(side) // CELL
    return ((index[:, None] + index[None, :]) % 2).astype(np.float32)


def head_plane(shape: tuple[int, int] = (128, 128), value: float = 100.0) -> np.ndarray:
    rows, columns = np.ogrid[:shape[0], :shape[1]]
    cy, cx = (shape[0] - 1) / 2, (shape[1] - 1) / 2
    oval = ((rows - cy) / (0.38 * shape[0])) ** 2 + ((columns - cx) / (0.32 * shape[1])) ** 2
    return np.where(oval <= 1.0, value, 0.0).astype(np.float32)


def _nifti(path: Path, volume: np.ndarray) -> None:
    import nibabel as nib

    affine = np.diag([VOXEL_MM, VOXEL_MM, SPACING_MM, 1.0])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(nib.Nifti1Image(volume, affine).to_bytes(), 1))


def tumour_volume() -> tuple[np.ndarray, np.ndarray]:
    """(image, BraTS-style label map: 1 core, 2 oedema around it) of the tumour case."""
    image = np.stack([head_plane()] * SLICES, axis=-1)
    label = np.zeros(image.shape, dtype=np.int16)
    for k, (side, visible) in TUMOUR_SLICES.items():
        x0 = y0 = 64 - side // 2
        if visible:
            image[x0:x0 + side, y0:y0 + side, k] = 300.0 * checkerboard(side)
        label[x0 - 2:x0 + side + 2, y0 - 2:y0 + side + 2, k] = 2
        label[x0:x0 + side, y0:y0 + side, k] = 1
    return image, label


def case_named(split: str, stem: str) -> str:
    """A case name that ``case_split`` puts on ``split``."""
    from braintumor.training.volumes import case_split

    return next(f"{stem}-{i}" for i in range(1000) if case_split(f"{stem}-{i}") == split)


def volumes_folder(root: Path, splits: tuple[str, ...] = ("test",)) -> dict[str, dict]:
    """A volumes folder with, per split, one healthy T1 case and one glioma case (T1c
    and its label map); returns {split: {"healthy": case, "tumour": case}}."""
    rows, cases = [], {}
    image, label = tumour_volume()
    healthy = np.stack([head_plane()] * SLICES, axis=-1)
    for split in splits:
        well, ill = case_named(split, f"healthy-{split}"), case_named(split, f"glioma-{split}")
        cases[split] = {"healthy": well, "tumour": ill}
        _nifti(root / "healthy" / well / "T1.nii.gz", healthy)
        _nifti(root / "tumour" / ill / "t1ce.nii.gz", image)
        _nifti(root / "tumour" / ill / "seg.nii.gz", label)
        rows += [
            [well, f"healthy/{well}/T1.nii.gz", "healthy", "T1", "none", ""],
            [ill, f"tumour/{ill}/t1ce.nii.gz", "tumour", "T1c", "glioma (HGG)",
             f"tumour/{ill}/seg.nii.gz"],
            [ill, f"tumour/{ill}/seg.nii.gz", "tumour", "label", "glioma (HGG)", ""],
        ]
    with open(root / "manifest.tsv", "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(FIELDS)
        writer.writerows(rows)
    return cases


def tumour_slice(square: tuple[int, int, int], blob: tuple[int, int] | None = (30, 40),
                 shape: tuple[int, int] = (128, 128)) -> tuple[Image.Image, np.ndarray]:
    """(a scan-like picture with a checkerboard square at (row, column, side), its mask).

    ``blob``: a bright disc elsewhere (row, column), brighter after a blur than the
    checkerboard, for the brightest-pixel baseline to point at.
    """
    plane = head_plane(shape)
    row, column, side = square
    plane[row:row + side, column:column + side] = 255.0 * checkerboard(side)
    if blob is not None:
        rows, columns = np.ogrid[:shape[0], :shape[1]]
        plane[(rows - blob[0]) ** 2 + (columns - blob[1]) ** 2 <= 64] = 250.0
    mask = np.zeros(shape, dtype=bool)
    mask[row:row + side, column:column + side] = True
    return Image.fromarray(plane.astype(np.uint8), mode="L"), mask
