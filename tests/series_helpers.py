"""Series for the tests: MR DICOM stacks with real geometry, zips of them, NIfTI volumes."""

from __future__ import annotations

import gzip
import io
import re
import zipfile

import numpy as np
from PIL import Image
from pydicom.uid import EnhancedMRImageStorage, generate_uid

from conftest import scan_like
from dicom_helpers import PATIENT_VALUES, make_dicom, patient_tags

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def assert_error(response, code: str, status: int) -> dict:
    """The spec's error shape with ``code`` and ``status``."""
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["success"] is False
    assert body["error"]["code"] == code and body["error"]["status"] == status
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert TIMESTAMP.match(body["timestamp"])
    return body


AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)


def to_12_bit(picture: Image.Image) -> np.ndarray:
    """An 8-bit grey picture as 12-bit stored values (0-4095), as an MR scanner writes."""
    grey = np.asarray(picture.convert("L"), dtype=np.float64)
    return np.round(grey * (4095.0 / 255.0)).astype(np.uint16)


def series_files(pictures: list[Image.Image], *, spacing: float = 5.0,
                 orientation: tuple[float, ...] = AXIAL, series_uid: str | None = None,
                 study_uid: str | None = None, with_patient: bool = True,
                 with_position: bool = True, start: float = -40.0) -> list[bytes]:
    """One MR series, 12-bit, slice i at ``start + i * spacing`` mm along the normal.

    Instance numbers run 1..N in slice order; the files carry consistent study, series
    and frame-of-reference UIDs, a window, and (``with_patient``) identifying tags whose
    values must never come out of the service.
    """
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    frame_uid = generate_uid()
    row, column = np.array(orientation[:3]), np.array(orientation[3:])
    normal = np.cross(row, column)
    files = []
    for i, picture in enumerate(pictures):
        extra = {
            "StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid,
            "FrameOfReferenceUID": frame_uid, "InstanceNumber": i + 1,
            "ImageOrientationPatient": [float(v) for v in orientation],
            "PixelSpacing": [0.9, 0.9], "SliceThickness": spacing, "SeriesNumber": 7,
        }
        if with_position:
            extra["ImagePositionPatient"] = [float(v) for v in
                                             (-100.0 * row - 100.0 * column
                                              + (start + i * spacing) * normal)]
        if with_patient:
            extra.update(patient_tags())
        files.append(make_dicom(to_12_bit(picture), bits_stored=12, window=(2048.0, 4096.0),
                                extra=extra))
    return files


def synthetic_pictures(count: int, size: tuple[int, int] = (96, 96),
                       seed: int = 0) -> list[Image.Image]:
    return [scan_like(size, seed=seed + i) for i in range(count)]


def zip_of(members: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def nifti_bytes(volume: np.ndarray, affine: np.ndarray | None = None,
                compress: bool = True) -> bytes:
    """A NIfTI-1 single file (gzipped by default) of ``volume`` with ``affine``."""
    import nibabel as nib

    image = nib.Nifti1Image(volume, np.eye(4) if affine is None else affine)
    raw = image.to_bytes()
    return gzip.compress(raw, compresslevel=1) if compress else raw


def mni_template_path():
    """nilearn's bundled MNI152 T1 template (a real brain, 1 mm, 197x233x189), no download."""
    import os

    import nilearn

    return os.path.join(os.path.dirname(nilearn.__file__), "datasets", "data",
                        "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")


def multi_frame_file(count: int = 4, study_uid: str | None = None) -> tuple[bytes, list[float]]:
    """One enhanced-style MR file of ``count`` frames whose per-frame positions are out
    of order (as stored), with the orientation in the shared functional groups."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    stack = np.stack([to_12_bit(p) for p in synthetic_pictures(count, size=(64, 64), seed=70)])
    heights = [10.0, -5.0, 25.0, 0.0][:count]

    def item(**groups: Dataset) -> Dataset:
        ds = Dataset()
        for name, value in groups.items():
            setattr(ds, name, Sequence([value]))
        return ds

    orientation = Dataset()
    orientation.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    per_frame = []
    for z in heights:
        plane = Dataset()
        plane.ImagePositionPatient = [-32.0, -32.0, z]
        per_frame.append(item(PlanePositionSequence=plane))
    data = make_dicom(stack, bits_stored=12, window=(2048.0, 4096.0),
                      sop_class=EnhancedMRImageStorage, extra={
        "SharedFunctionalGroupsSequence": Sequence([item(PlaneOrientationSequence=orientation)]),
        "PerFrameFunctionalGroupsSequence": Sequence(per_frame),
        "SeriesInstanceUID": generate_uid(), "StudyInstanceUID": study_uid or generate_uid(),
        **PATIENT_VALUES})
    return data, heights

