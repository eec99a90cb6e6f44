"""What a series is once read: ordered slices that decode on demand, and their facts.

Reading (DICOM files, a zip, a NIfTI volume) and classifying are kept apart: the readers
check everything that can be checked before a pixel is decoded (counts, sizes, series,
orientations) and hand over :class:`SeriesVolume`, whose slices decode one batch at a
time, so a 400-slice series never holds 400 decoded pictures at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from braintumor.decoding import DecodedImage

#: Names of the plane a slice normal is closest to, by world axis (x, y, z).
PLANE_NAMES = ("sagittal", "coronal", "axial")


@dataclass
class SeriesSlice:
    """One slice: where it sits and how to decode it.

    ``position`` is in mm along the slice normal (DICOM: Image Position (Patient)
    projected on the normal; NIfTI: the world z of the slice), None when the files do not
    say. ``sop_instance_uid`` and ``sop_class_uid`` are kept for references written back
    as DICOM (never answered by the API).
    """

    load: Callable[[], DecodedImage]
    position: float | None = None
    instance_number: int | None = None
    sop_instance_uid: str | None = None
    sop_class_uid: str | None = None
    #: The frame of a multi-frame file this slice is (0-based); None for a single-frame file.
    frame: int | None = None
    #: Which of the files handed to the reader holds the slice (0-based), so a caller that
    #: knows its files by name can say where the slice came from (never answered).
    file: int | None = None
    #: (row, column) spacing in mm of the decoded picture's pixels, when the file says
    #: (DICOM Pixel Spacing; NIfTI: the in-plane voxel size the picture is shown at).
    pixel_spacing: tuple[float, float] | None = None


@dataclass
class SeriesVolume:
    """An ordered series, checked and not yet decoded."""

    slices: list[SeriesSlice]
    #: "dicom", "zip" or "nifti".
    source: str
    modality: str | None
    orientation: str | None
    #: How the order was found: "position", "instance_number" or "upload".
    ordered_by: str
    rows: int
    columns: int
    #: Files (or zip members) that were not DICOM images, skipped and counted.
    files_ignored: int = 0
    #: Median distance between neighbouring slices in mm, when positions are known.
    spacing_mm: float | None = None
    #: DICOM identifiers of the series, for writing results back (never answered).
    uids: dict[str, str] = field(default_factory=dict)

    @property
    def pixel_mm(self) -> float | None:
        """The side (mm) of a square of the decoded pictures' pixel area, when every slice
        states one pixel spacing (within 1%); None otherwise."""
        spacings = [s.pixel_spacing for s in self.slices]
        if not spacings or any(p is None for p in spacings):
            return None
        areas = [float(p[0]) * float(p[1]) for p in spacings if p is not None]
        if min(areas) <= 0 or max(areas) > 1.02 * min(areas):
            return None
        return float(np.sqrt(np.median(areas)))

    def to_json(self) -> dict[str, Any]:
        """Non-identifying facts: no UIDs, names, dates or places."""
        body: dict[str, Any] = {
            "source": self.source,
            "slice_count": len(self.slices),
            "modality": self.modality,
            "orientation": self.orientation,
            "ordered_by": self.ordered_by,
            "rows": self.rows,
            "columns": self.columns,
            "slice_spacing_mm": self.spacing_mm,
            "files_ignored": self.files_ignored,
        }
        if self.source != "nifti" and self.modality != "MR":  # NIfTI states no modality
            body["warning"] = (f"modality {self.modality} is not MR" if self.modality
                               else "modality is not stated") + \
                ": this model was trained on MRI only"
        return body


def plane_of(normal: np.ndarray) -> str:
    """The anatomical plane a slice normal (in patient coordinates) is closest to."""
    return PLANE_NAMES[int(np.argmax(np.abs(normal)))]


def median_spacing(positions: list[float | None]) -> float | None:
    """Median gap between neighbouring slice positions (mm), rounded to 0.01."""
    known = [p for p in positions if p is not None]
    if len(known) < 2 or len(known) != len(positions):
        return None
    return round(float(np.median(np.abs(np.diff(known)))), 2)
