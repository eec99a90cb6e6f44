"""DICOM files of one series -> an ordered, checked :class:`SeriesVolume`.

Each file's geometry is read first, before any pixel is decoded: only the tags that
place and describe a slice (group 0020 positions and UIDs, size, modality, SOP class),
never a patient, study date or institution tag. The pixels are decoded later, slice by
slice, by the same :func:`braintumor.decoding.decode_image` as ``/api/classify``, so a
slice of a series and the same file uploaded alone become the same picture.

Order: Image Position (Patient) projected on the slice normal (the cross product of the
row and column directions of Image Orientation (Patient)), which is right whatever the
scanner numbered; Instance Number when a file has no position; the upload order when
neither is there. Files of several series, sizes or orientations are refused by name of
the problem (never by file name: a file name may carry a patient's name).

A multi-frame (enhanced) file sent alone is a series of its frames, each placed by its
Per-frame (else Shared) Functional Groups' Plane Position and Plane Orientation. Each
frame is decoded by the same call as ``/api/classify`` with ``frame``, which parses the
file again per frame: simple and exact, at a cost that grows with frames times size.
"""

from __future__ import annotations

import io
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.datadict import tag_for_keyword

from braintumor.decoding import DecodedImage, DicomFrameDecoder, decode_image
from braintumor.dicom import is_dicom, quiet_pydicom
from braintumor.errors import FileTooLargeError, InvalidImageError, InvalidSeriesError
from braintumor.series.volume import SeriesSlice, SeriesVolume, median_spacing, plane_of

#: The tags read to place a slice; nothing that identifies a person.
GEOMETRY_KEYWORDS = (
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
    "FrameOfReferenceUID", "Modality", "Rows", "Columns", "NumberOfFrames",
    "ImagePositionPatient", "ImageOrientationPatient", "InstanceNumber", "PixelSpacing",
    # a multi-frame (enhanced) file places each frame in its functional groups
    "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence",
)
#: Directions closer than this (cosine difference) count as the same orientation.
ORIENTATION_TOLERANCE = 1e-3


@dataclass
class DicomGeometry:
    """The placing facts of one DICOM file."""

    number: int  # 1-based position in the upload, for messages
    data: bytes
    rows: int | None
    columns: int | None
    frames: int
    modality: str | None
    series_uid: str | None
    study_uid: str | None
    frame_of_reference_uid: str | None
    sop_class_uid: str | None
    sop_instance_uid: str | None
    position: np.ndarray | None
    orientation: np.ndarray | None
    instance_number: int | None
    #: (row, column) spacing in mm (Pixel Spacing), for the brain area of a slice.
    pixel_spacing: tuple[float, float] | None = None
    #: The frame of a multi-frame file this stands for (0-based); None for a whole file.
    frame: int | None = None
    #: A multi-frame file's per-frame (position, orientation), from its functional groups.
    frame_planes: list[tuple[np.ndarray | None, np.ndarray | None]] | None = None
    #: A multi-frame file's per-frame Pixel Spacing (Pixel Measures functional group).
    frame_spacings: list[tuple[float, float] | None] | None = None

    @property
    def is_image(self) -> bool:
        return bool(self.rows) and bool(self.columns)


def _floats(value: object, count: int) -> np.ndarray | None:
    try:
        numbers = np.array([float(v) for v in value], dtype=np.float64)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    return numbers if numbers.shape == (count,) and np.isfinite(numbers).all() else None


def _spacing(value: object) -> tuple[float, float] | None:
    """Pixel Spacing (row, column) in mm when it is two positive finite numbers."""
    numbers = _floats(value, 2)
    if numbers is None or (numbers <= 0).any():
        return None
    return float(numbers[0]), float(numbers[1])


def _text(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def read_geometry(data: bytes, number: int) -> DicomGeometry:
    """The placing tags of one DICOM file; a file that cannot be parsed is INVALID_IMAGE."""
    quiet_pydicom()  # pydicom would log a value that fails validation, quoting it
    tags = [int(tag) for k in GEOMETRY_KEYWORDS if (tag := tag_for_keyword(k)) is not None]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), specific_tags=tags, stop_before_pixels=True)
            rows, columns = ds.get("Rows"), ds.get("Columns")
            frames = ds.get("NumberOfFrames")
            instance = ds.get("InstanceNumber")
            geometry = DicomGeometry(
                number=number, data=data,
                rows=int(rows) if rows is not None else None,
                columns=int(columns) if columns is not None else None,
                frames=int(frames) if frames not in (None, "") else 1,
                modality=_text(ds.get("Modality")),
                series_uid=_text(ds.get("SeriesInstanceUID")),
                study_uid=_text(ds.get("StudyInstanceUID")),
                frame_of_reference_uid=_text(ds.get("FrameOfReferenceUID")),
                sop_class_uid=_text(ds.get("SOPClassUID")),
                sop_instance_uid=_text(ds.get("SOPInstanceUID")),
                position=_floats(ds.get("ImagePositionPatient"), 3),
                orientation=_floats(ds.get("ImageOrientationPatient"), 6),
                instance_number=int(instance) if instance not in (None, "") else None,
                pixel_spacing=_spacing(ds.get("PixelSpacing")),
            )
            if geometry.frames > 1:
                geometry.frame_planes = _frame_planes(ds, geometry.frames)
                geometry.frame_spacings = _frame_spacings(ds, geometry.frames,
                                                          geometry.pixel_spacing)
    except Exception as exc:  # pydicom's text may quote values: say only what kind
        raise InvalidImageError(
            f"Image validation failed: file {number} of the series is a truncated or "
            f"corrupt DICOM file ({type(exc).__name__})") from None
    if geometry.modality is not None and not geometry.modality.replace(" ", "").isalnum():
        geometry.modality = None  # not a code string: do not echo it
    return geometry


def _plane(group: object) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(Image Position, Image Orientation) of one functional-groups item, where stated."""
    position = orientation = None
    try:
        places = group.get("PlanePositionSequence")  # type: ignore[attr-defined]
        if places:
            position = _floats(places[0].get("ImagePositionPatient"), 3)
        turns = group.get("PlaneOrientationSequence")  # type: ignore[attr-defined]
        if turns:
            orientation = _floats(turns[0].get("ImageOrientationPatient"), 6)
    except (AttributeError, TypeError, IndexError):
        pass
    return position, orientation


def _frame_planes(ds: object, frames: int) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
    """Each frame's position and orientation: per-frame groups first, then shared, then
    the file's top level (a legacy multi-frame file states one orientation for all)."""
    shared_items = ds.get("SharedFunctionalGroupsSequence") or []  # type: ignore[attr-defined]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []  # type: ignore[attr-defined]
    shared = _plane(shared_items[0]) if shared_items else (None, None)
    top = _floats(ds.get("ImageOrientationPatient"), 6)  # type: ignore[attr-defined]
    planes = []
    for k in range(frames):
        own = _plane(per_frame[k]) if k < len(per_frame) else (None, None)
        position = own[0] if own[0] is not None else shared[0]
        orientation = next((o for o in (own[1], shared[1], top) if o is not None), None)
        planes.append((position, orientation))
    return planes


def _measures(group: object) -> tuple[float, float] | None:
    """Pixel Spacing of one functional-groups item's Pixel Measures, where stated."""
    try:
        measures = group.get("PixelMeasuresSequence")  # type: ignore[attr-defined]
        return _spacing(measures[0].get("PixelSpacing")) if measures else None
    except (AttributeError, TypeError, IndexError):
        return None


def _frame_spacings(ds: object, frames: int, top: tuple[float, float] | None
                    ) -> list[tuple[float, float] | None]:
    """Each frame's Pixel Spacing: per-frame groups, then shared, then the top level."""
    shared_items = ds.get("SharedFunctionalGroupsSequence") or []  # type: ignore[attr-defined]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []  # type: ignore[attr-defined]
    shared = _measures(shared_items[0]) if shared_items else None
    return [next((s for s in (_measures(per_frame[k]) if k < len(per_frame) else None,
                              shared, top) if s is not None), None)
            for k in range(frames)]


def _frames_as_slices(file: DicomGeometry) -> list[DicomGeometry]:
    """A multi-frame file sent alone: each frame is a slice, placed by its own groups."""
    from dataclasses import replace

    planes = file.frame_planes or [(None, None)] * file.frames
    spacings = file.frame_spacings or [file.pixel_spacing] * file.frames
    return [replace(file, frame=k, frames=1, position=position, orientation=orientation,
                    instance_number=k + 1, frame_planes=None, frame_spacings=None,
                    pixel_spacing=spacings[k])
            for k, (position, orientation) in enumerate(planes)]


def _normal(orientation: np.ndarray) -> np.ndarray | None:
    row, column = orientation[:3], orientation[3:]
    normal = np.cross(row, column)
    length = float(np.linalg.norm(normal))
    return normal / length if length > 1e-6 else None


def _loader(data: bytes, max_pixels: int, frame: int | None,
            frames: DicomFrameDecoder | None = None) -> Callable[[], DecodedImage]:
    """A slice's decoding, deferred; the frames of one multi-frame file share ``frames``
    (the file parsed once, not once per frame)."""
    def load() -> DecodedImage:
        if frames is not None and frame is not None:
            return frames.decode(frame)
        return decode_image(data, max_pixels=max_pixels, frame=frame)
    return load


def series_from_dicom_files(files: list[bytes], *, source: str, max_slices: int,
                            max_pixels: int, ignored: int = 0) -> SeriesVolume:
    """Check and order DICOM files (bytes) into one series; non-DICOM files are counted.

    ``ignored`` counts files already skipped by the caller (e.g. zip members).
    """
    geometries: list[DicomGeometry] = []
    for number, data in enumerate(files, start=1):
        if not is_dicom(data):
            ignored += 1
            continue
        geometry = read_geometry(data, number)
        if not geometry.is_image:  # DICOMDIR, reports, presentation states...
            ignored += 1
            continue
        geometries.append(geometry)
    multi = [g for g in geometries if g.frames > 1]
    if multi and len(geometries) > 1:
        raise InvalidSeriesError(
            f"File {multi[0].number} is a multi-frame DICOM image ({multi[0].frames} "
            "frames) among other files; send a multi-frame series as its one file alone")
    if multi:  # one multi-frame (enhanced) file: its frames are the slices
        geometries = _frames_as_slices(multi[0])
    if not geometries:
        raise InvalidSeriesError(
            "No DICOM images found in the series" + (
                f" ({ignored} file{'s' if ignored != 1 else ''} ignored: not DICOM images)"
                if ignored else ""))
    if len(geometries) > max_slices:
        raise FileTooLargeError(
            f"The series has {len(geometries)} slices; the limit is {max_slices} "
            "(MAX_SERIES_SLICES)")
    series = {g.series_uid for g in geometries}
    if len(series) > 1:
        raise InvalidSeriesError(
            f"The files belong to {len(series)} different series; send one series per "
            "request")
    sizes = Counter((g.columns, g.rows) for g in geometries)
    if len(sizes) > 1:
        named = " and ".join(f"{c}x{r}" for (c, r), _ in sizes.most_common(2))
        raise InvalidSeriesError(
            f"The slices have different sizes ({named}); a series has one size")
    orientations = [g.orientation for g in geometries if g.orientation is not None]
    normal = None
    if len(orientations) == len(geometries):
        reference = orientations[0]
        if any(np.abs(o - reference).max() > ORIENTATION_TOLERANCE for o in orientations):
            raise InvalidSeriesError(
                "The slices have different orientations (Image Orientation Patient); "
                "a series is one stack of parallel slices")
        normal = _normal(reference)
    modalities = Counter(g.modality for g in geometries)
    if len(modalities) > 1:
        raise InvalidSeriesError(
            f"The slices have {len(modalities)} different modalities; a series has one")

    placed = [g.position for g in geometries if g.position is not None]
    numbers = [g.instance_number for g in geometries if g.instance_number is not None]
    positions: list[float | None]
    if normal is not None and len(placed) == len(geometries):
        along = [float(np.dot(p, normal)) for p in placed]
        positions = list(along)
        order = sorted(range(len(geometries)),
                       key=lambda i: (along[i], geometries[i].instance_number or 0, i))
        ordered_by = "position"
    elif len(numbers) == len(geometries):
        positions = [None] * len(geometries)
        order = sorted(range(len(geometries)), key=lambda i: (numbers[i], i))
        ordered_by = "instance_number"
    else:
        positions = [None] * len(geometries)
        order = list(range(len(geometries)))
        ordered_by = "upload"

    shared = DicomFrameDecoder(multi[0].data, max_pixels) if multi else None
    slices = [SeriesSlice(
        load=_loader(geometries[i].data, max_pixels, geometries[i].frame, shared),
        frame=geometries[i].frame, file=geometries[i].number - 1,
        position=None if (at := positions[i]) is None else round(at, 3),
        instance_number=geometries[i].instance_number,
        sop_instance_uid=geometries[i].sop_instance_uid,
        sop_class_uid=geometries[i].sop_class_uid,
        pixel_spacing=geometries[i].pixel_spacing,
    ) for i in order]
    head = geometries[0]
    uids = {key: value for key, value in (
        ("StudyInstanceUID", head.study_uid), ("SeriesInstanceUID", head.series_uid),
        ("FrameOfReferenceUID", head.frame_of_reference_uid)) if value}
    return SeriesVolume(
        slices=slices, source=source, modality=head.modality,
        orientation=plane_of(normal) if normal is not None else None,
        ordered_by=ordered_by, rows=int(head.rows or 0), columns=int(head.columns or 0),
        files_ignored=ignored, spacing_mm=median_spacing([s.position for s in slices]),
        uids=uids,
    )
