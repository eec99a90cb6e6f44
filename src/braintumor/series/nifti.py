"""A NIfTI volume (``.nii`` or ``.nii.gz``, read by nibabel in memory) -> axial slices.

The slices are taken along the voxel axis closest to the world's inferior-superior axis
(from the affine, :func:`nibabel.io_orientation`), whatever order the file stores its
axes in, and ordered from inferior to superior. Each slice is shown the way the
training scans are: anterior at the top, the patient's right on the picture's left
(radiological convention), with square pixels (an anisotropic in-plane spacing is
resampled to the finer one). Only flips and transposes are applied, never a resampling
across slices.

NIfTI has no window: one is taken for the whole volume, the 0.5th to 99.5th percentile
of its values (the rule DICOM files without a window get, over the volume rather than
per slice, so the slices of one volume share one grey scale and an almost empty edge
slice is not stretched into noise). The window therefore does not depend on the order
the file stores its axes in.

A volume normalised inside the brain (z-scored, as BraTS-style pipelines write it) may
leave its background at a value inside the brain's range, typically 0, the brain's mean:
windowed as it is, the background would be mid-grey. When one value holds at least
:data:`FILL_SHARE` of the voxels and would show at least :data:`FILL_GREY` of the way up
the window of the other voxels, it is taken for the background and treated as the
volume's minimum (windowed and shown as if it had been set to the lowest value), so the
volume looks as it would with a background at its minimum, and as the raw scan would.
A background at the minimum already (the lowest z-score, or 0 in raw scans) changes
nothing.
"""

from __future__ import annotations

import functools
import gzip
import io
import zlib
from typing import Any

import numpy as np
from PIL import Image

from braintumor.decoding import DecodedImage
from braintumor.errors import FileTooLargeError, InvalidSeriesError
from braintumor.imaging import percentile_window
from braintumor.series.volume import SeriesSlice, SeriesVolume

GZIP_MAGIC = b"\x1f\x8b"
PERCENTILES = (0.5, 99.5)
#: Volumes up to this many voxels (128 MB as float32) are windowed from every voxel.
WINDOW_SAMPLE_VOXELS = 32 * 1024 * 1024
#: A value holding at least this share of the voxels may be a background fill...
FILL_SHARE = 0.1
#: ...when it would show at least this far up the other voxels' window (0-1).
FILL_GREY = 0.1
#: Voxels counted to find the most common value (a strided sample of the volume).
FILL_SAMPLE_VOXELS = 2 * 1024 * 1024
#: Data types a scan volume may have (nibabel dtype kinds): no complex, no RGB records.
_KINDS = "biuf"


def _header_kind(data: bytes) -> int | None:
    """1 or 2 for a NIfTI-1 / NIfTI-2 single file (``n+1`` / ``n+2`` magic), else None."""
    if len(data) >= 348:
        for order in ("<", ">"):
            size = int(np.frombuffer(data[:4], dtype=f"{order}i4")[0])
            if size == 348 and data[344:347] == b"n+1":
                return 1
            if size == 540 and len(data) >= 540 and data[4:7] == b"n+2":
                return 2
    return None


def is_gzip(data: bytes) -> bool:
    return data[:2] == GZIP_MAGIC


def gunzip(data: bytes, max_bytes: int) -> bytes:
    """Decompress in memory, refusing to expand past ``max_bytes`` (a gzip bomb)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error:
        raise InvalidSeriesError("The .gz file is corrupt or truncated") from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise FileTooLargeError(
            f"The NIfTI volume expands to more than {max_bytes // (1024 * 1024)} MB "
            "(MAX_SERIES_BYTES)")
    if not inflater.eof:
        raise InvalidSeriesError("The .gz file is truncated")
    return out


def looks_like_nifti(data: bytes, max_bytes: int) -> bool:
    """True when ``data`` (gzipped or not) starts with a NIfTI-1 or NIfTI-2 header."""
    if is_gzip(data):
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
                head = stream.read(548)
        except (OSError, EOFError, zlib.error):
            return False
        return _header_kind(head) is not None
    return _header_kind(data) is not None


def background_fill(values: np.ndarray) -> float | None:
    """The value a normalised volume's background was filled with, where it is not the
    bottom of the volume's range (see the module's notes), else None."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    step = max(1, finite.size // FILL_SAMPLE_VOXELS)
    levels, counts = np.unique(finite[::step], return_counts=True)
    top = int(np.argmax(counts))
    if counts[top] < FILL_SHARE * counts.sum():
        return None
    fill = float(levels[top])
    window = percentile_window(finite[finite != fill], PERCENTILES)
    if window is None or window[1] <= window[0]:
        return None
    low, high = window
    return fill if fill - low >= FILL_GREY * (high - low) else None


def _load(raw: bytes) -> Any:
    import nibabel as nib

    kind = _header_kind(raw)
    cls = nib.Nifti2Image if kind == 2 else nib.Nifti1Image
    try:
        return cls.from_bytes(raw)
    except Exception as exc:  # nibabel's header checks
        raise InvalidSeriesError(
            f"The NIfTI header is invalid ({type(exc).__name__})") from None


def series_from_nifti(data: bytes, *, max_slices: int, max_bytes: int,
                      max_pixels: int, window: tuple[float, float] | None = None
                      ) -> SeriesVolume:
    """A NIfTI file's bytes -> its axial slices, checked before any voxel is read.

    ``window`` (low, high) replaces the volume's own percentile window: training reads a
    label map through the same slicing as its image, with a fixed window.
    """
    import nibabel as nib

    raw = gunzip(data, max_bytes) if is_gzip(data) else data
    if _header_kind(raw) is None:
        raise InvalidSeriesError("The file is not a NIfTI-1 or NIfTI-2 volume")
    image = _load(raw)
    shape = tuple(int(n) for n in image.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        what = (f"{len(shape)}-D ({shape[3]} volumes)" if len(shape) == 4 and shape[3] > 1
                else f"{len(shape)}-D")
        several = len(shape) == 4 and shape[3] > 1
        raise InvalidSeriesError(
            f"The NIfTI image is {what}; a series is one 3-D volume" + (
                ": send each volume (each sequence or time point) as its own file, e.g. "
                "split with fslsplit or nibabel" if several else ""))
    if min(shape) < 1:
        raise InvalidSeriesError("The NIfTI volume is empty")
    dtype = image.header.get_data_dtype()
    if dtype.kind not in _KINDS or dtype.fields is not None:
        raise InvalidSeriesError(f"The NIfTI data type {dtype} is not a scalar image type")
    needed = int(image.dataobj.offset) + int(np.prod(shape)) * dtype.itemsize
    if needed > len(raw):
        raise InvalidSeriesError(
            f"The NIfTI file is truncated ({len(raw)} of {needed} bytes)")
    if int(np.prod(shape)) * 4 > max_bytes * 2:
        raise FileTooLargeError("The NIfTI volume is too large (MAX_SERIES_BYTES)")

    ornt = nib.io_orientation(image.affine)  # per voxel axis: (world axis, flip)
    axis_of = {int(world): voxel for voxel, (world, _) in enumerate(ornt)
               if not np.isnan(world)}
    if set(axis_of) != {0, 1, 2}:
        raise InvalidSeriesError("The NIfTI affine is degenerate: its axes cannot be told "
                                 "apart")
    slice_axis, x_axis, y_axis = axis_of[2], axis_of[0], axis_of[1]
    count = shape[slice_axis]
    if count > max_slices:
        raise FileTooLargeError(
            f"The volume has {count} axial slices; the limit is {max_slices} "
            "(MAX_SERIES_SLICES)")
    rows, columns = shape[y_axis], shape[x_axis]
    if rows * columns > max_pixels:
        raise FileTooLargeError(f"{columns}x{rows} pixels per slice exceeds the limit of "
                                f"{max_pixels} pixels")

    proxy = image.dataobj
    # one window for the volume, from all its values; a volume over WINDOW_SAMPLE_VOXELS
    # from every other voxel along each axis, to bound the float copy
    stride = 1 if int(np.prod(shape)) <= WINDOW_SAMPLE_VOXELS else 2
    try:
        sample = np.asarray(proxy[::stride, ::stride, ::stride] if len(image.shape) == 3
                            else proxy[::stride, ::stride, ::stride, 0], dtype=np.float32)
    except Exception as exc:
        raise InvalidSeriesError(
            f"The NIfTI voxel data cannot be read ({type(exc).__name__})") from None
    fill = None if window else background_fill(sample)
    if fill is not None:  # a background inside the range is windowed as the minimum
        sample = np.where(sample == fill, np.nanmin(sample[sample != fill]), sample)
    window = window or percentile_window(sample, PERCENTILES)
    if window is None:
        raise InvalidSeriesError("The NIfTI volume has no finite values")
    low, high = window
    scale = 255.0 / (high - low) if high > low else 0.0
    zooms = image.header.get_zooms()
    x_mm, y_mm = float(zooms[x_axis]), float(zooms[y_axis])
    square = x_mm > 0 and y_mm > 0 and abs(x_mm / y_mm - 1.0) > 0.01  # resampled square
    shown: tuple[float, float] | None = (
        (min(x_mm, y_mm),) * 2 if square else (y_mm, x_mm)
    ) if x_mm > 0 and y_mm > 0 and np.isfinite([x_mm, y_mm]).all() else None
    flips = {int(world): int(flip) for world, flip in ornt}

    def load(k: int) -> DecodedImage:
        index: list[object] = [slice(None)] * len(image.shape)
        index[slice_axis] = k
        if len(image.shape) == 4:
            index[3] = 0
        plane = np.asarray(proxy[tuple(index)], dtype=np.float32)
        if fill is not None:
            plane = np.where(plane == np.float32(fill), np.float32(low), plane)
        # plane's axes are the two remaining voxel axes in order; make it [x, y]
        remaining = [a for a in range(3) if a != slice_axis]
        if remaining.index(x_axis) == 1:
            plane = plane.T
        if flips[0] < 0:  # voxel index grows toward the left: make it grow to the right
            plane = plane[::-1, :]
        if flips[1] < 0:
            plane = plane[:, ::-1]
        # [x (right+), y (anterior+)] -> rows anterior to posterior, columns right to left
        display = plane.T[::-1, ::-1]
        grey = np.clip((np.nan_to_num(display, nan=low) - low) * scale, 0, 255)
        picture = Image.fromarray(np.round(grey).astype(np.uint8), mode="L")
        if x_mm > 0 and y_mm > 0 and abs(x_mm / y_mm - 1.0) > 0.01:
            finest = min(x_mm, y_mm)
            size = (max(1, round(picture.width * x_mm / finest)),
                    max(1, round(picture.height * y_mm / finest)))
            picture = picture.resize(size, Image.Resampling.BILINEAR)
        return DecodedImage(grey=picture, rgb=picture.convert("RGB"), format="NIfTI")

    # slice k's world z: the affine applied to its centre voxel
    centre = np.array([(n - 1) / 2 for n in shape[:3]], dtype=np.float64)
    positions = []
    for k in range(count):
        voxel = centre.copy()
        voxel[slice_axis] = k
        positions.append(float((image.affine @ np.append(voxel, 1.0))[2]))
    order = sorted(range(count), key=lambda k: positions[k])
    slices = [SeriesSlice(load=functools.partial(load, k), position=round(positions[k], 3),
                          pixel_spacing=shown)
              for k in order]
    spacing = float(abs(zooms[slice_axis])) if count > 1 else None
    return SeriesVolume(
        slices=slices, source="nifti", modality=None, orientation="axial",
        ordered_by="position", rows=rows, columns=columns,
        spacing_mm=round(spacing, 2) if spacing else None,
    )
