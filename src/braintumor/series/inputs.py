"""What a client sends -> a :class:`SeriesVolume`: DICOM files, one zip, or one NIfTI.

The kind is recognised by content (``DICM`` at byte 128, the zip and gzip magic numbers,
the NIfTI header), never trusted by name; names only steer a client who sent single
images to the wrong endpoint. Client file names are never written anywhere, nor put in
messages: a DICOM file name is often a patient's name or ID.
"""

from __future__ import annotations

from pathlib import Path

from braintumor.config import Settings
from braintumor.decoding import file_extension
from braintumor.dicom import is_dicom
from braintumor.errors import FileTooLargeError, InvalidFileTypeError, InvalidSeriesError
from braintumor.series.archive import MEMBERS_PER_SLICE, is_zip, zip_members
from braintumor.series.dicom_files import series_from_dicom_files
from braintumor.series.nifti import looks_like_nifti, series_from_nifti
from braintumor.series.volume import SeriesVolume

#: Extensions of single pictures: sent alone to this endpoint, they belong to /api/classify.
_PICTURE_EXTENSIONS = ("png", "jpg", "jpeg", "gif", "bmp", "webp")


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB"


def series_from_parts(parts: list[tuple[str, bytes]], settings: Settings) -> SeriesVolume:
    """Uploaded (name, bytes) parts -> one checked series, or a 4xx error."""
    max_slices, max_bytes = settings.MAX_SERIES_SLICES, settings.MAX_SERIES_BYTES
    total = sum(len(data) for _, data in parts)
    if total > max_bytes:
        raise FileTooLargeError(f"Series exceeds the {_mb(max_bytes)} limit "
                                "(MAX_SERIES_BYTES)")
    containers = [i for i, (_, data) in enumerate(parts)
                  if is_zip(data) or looks_like_nifti(data, max_bytes)]
    if containers and len(parts) > 1:
        raise InvalidSeriesError(
            "Send one zip or one NIfTI volume alone, or DICOM files without a container; "
            f"this request has {len(parts)} files, {len(containers)} of them a zip or NIfTI")
    if containers:
        data = parts[0][1]
        if is_zip(data):
            members, skipped = zip_members(data, max_bytes=max_bytes, max_slices=max_slices)
            return series_from_dicom_files(members, source="zip", max_slices=max_slices,
                                           max_pixels=settings.MAX_IMAGE_PIXELS,
                                           ignored=skipped)
        return series_from_nifti(data, max_slices=max_slices, max_bytes=max_bytes,
                                 max_pixels=settings.MAX_IMAGE_PIXELS)
    if parts and all(file_extension(name) in _PICTURE_EXTENSIONS and not is_dicom(data)
                     for name, data in parts):  # content decides: a DICOM named .png is read
        raise InvalidFileTypeError(
            "File type not allowed for a series: send DICOM files, one .zip of them, or "
            "one NIfTI volume (.nii, .nii.gz); single pictures go to /api/classify")
    if len(parts) > MEMBERS_PER_SLICE * max_slices:
        raise FileTooLargeError(f"The request has {len(parts)} files; the limit is "
                                f"{MEMBERS_PER_SLICE * max_slices}")
    return series_from_dicom_files([data for _, data in parts], source="dicom",
                                   max_slices=max_slices,
                                   max_pixels=settings.MAX_IMAGE_PIXELS)


def series_from_path(path: Path, settings: Settings) -> SeriesVolume:
    """A folder of DICOM files (searched recursively), a zip or a NIfTI file on disk.

    Sizes are checked from the file system before anything is read, so a folder too big
    for the limits costs nothing.
    """
    max_bytes = settings.MAX_SERIES_BYTES
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        limit = MEMBERS_PER_SLICE * settings.MAX_SERIES_SLICES
        if len(files) > limit:
            raise FileTooLargeError(f"The folder holds {len(files)} files; the limit is "
                                    f"{limit}")
        if sum(p.stat().st_size for p in files) > max_bytes:
            raise FileTooLargeError(f"The folder exceeds the {_mb(max_bytes)} limit "
                                    "(MAX_SERIES_BYTES)")
        return series_from_parts([(p.name, p.read_bytes()) for p in files], settings)
    if path.is_file():
        if path.stat().st_size > max_bytes:
            raise FileTooLargeError(f"The file exceeds the {_mb(max_bytes)} limit "
                                    "(MAX_SERIES_BYTES)")
        return series_from_parts([(path.name, path.read_bytes())], settings)
    raise InvalidSeriesError(f"No file or folder at {path}")
