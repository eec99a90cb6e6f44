"""Synthetic DICOM files for the tests, written with pydicom, plus the bundled examples."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, ExplicitVRLittleEndian, MRImageStorage, generate_uid

#: Identifying values written into :func:`patient_tags`; none may ever leave the service.
PATIENT_VALUES = {
    "PatientName": "Zyxwhimsy^Quentinella^Marguerite",
    "PatientID": "PID-7731-QX-SECRET",
    "PatientBirthDate": "19230417",
    "PatientAddress": "42 Nonesuch Lane, Hollowmere",
    "OtherPatientIDs": "ALT-ID-99812-SECRET",
    "InstitutionName": "Saint Obscura Memorial Infirmary",
    "InstitutionAddress": "7 Quiet Row, Littlebury",
    "ReferringPhysicianName": "Drummondsworth^Ophelia",
    "PerformingPhysicianName": "Vantablack^Horatio",
    "OperatorsName": "Technician^Wilhelmina",
    "AccessionNumber": "ACC-55501234",
    "StudyID": "STUDY-80081",
    "StudyDescription": "Brain tumour follow-up for Zyxwhimsy",
    "SeriesDescription": "T1 post contrast Quentinella",
    "StationName": "MRI-ROOM-HOLLOWMERE",
    "DeviceSerialNumber": "SN-0042-77-SECRET",
}


def patient_tags() -> dict[str, str]:
    """Identifying tags (names, IDs, dates, places) with unmistakable values."""
    return dict(PATIENT_VALUES)


def make_dicom(pixels: np.ndarray, *, photometric: str = "MONOCHROME2",
               bits_stored: int | None = None, modality: str | None = "MR",
               window: tuple[float, float] | None = None,
               rescale: tuple[float, float] | None = None,
               extra: dict | None = None, pixel_data: bool = True,
               transfer_syntax: str = ExplicitVRLittleEndian,
               sop_class: str = MRImageStorage) -> bytes:
    """A DICOM Part 10 file (preamble, ``DICM``, file meta) holding ``pixels``.

    ``pixels`` is (rows, columns), (frames, rows, columns) or (..., 3) for RGB; its dtype
    sets Bits Allocated and Pixel Representation. ``window`` is (center, width),
    ``rescale`` (slope, intercept). ``transfer_syntax`` is only written into the file
    meta (the data stay explicit VR little endian), to simulate syntaxes we cannot read.
    """
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = UID(sop_class)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    if modality is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.Modality = modality
    arr = np.asarray(pixels)
    ds.set_pixel_data(arr, photometric, bits_stored or arr.dtype.itemsize * 8)
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
        ds.RescaleType = "US"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deliberately odd values are allowed here
        for keyword, value in (extra or {}).items():
            setattr(ds, keyword, value)
    if not pixel_data:
        del ds.PixelData
    if transfer_syntax != ExplicitVRLittleEndian:
        syntax = UID(transfer_syntax)
        if syntax.is_transfer_syntax and syntax.is_encapsulated:  # fragments, not raw bytes
            ds.PixelData = encapsulate([bytes(ds.PixelData)])
            ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = syntax
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(buffer, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return buffer.getvalue()


def example_path(name: str) -> str:
    """The path of one of pydicom's bundled example files (never downloaded)."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    assert path is not None, f"{name} is not bundled with this pydicom"
    return str(path)


def example_file(name: str) -> bytes:
    """The bytes of one of pydicom's bundled example files."""
    return Path(example_path(name)).read_bytes()


def ramp(low: int, high: int, shape: tuple[int, int] = (48, 64),
         dtype: type = np.uint16) -> np.ndarray:
    """A left-to-right gradient from ``low`` to ``high``: easy to check for contrast."""
    rows, columns = shape
    line = np.linspace(low, high, columns)
    return np.round(np.tile(line, (rows, 1))).astype(dtype)
