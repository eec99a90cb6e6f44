"""The SR, the Secondary Capture and the Segmentation against an independent validator:
dicom3tools' dciodvfy (Debian's dicom3tools; `make test` installs it with Orthanc), which
checks every module and attribute condition of the IODs, and a re-read with pydicom and
highdicom."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import generate_uid

from braintumor.dicomweb.results import (
    ModelIdentity,
    reference,
    secondary_capture,
    segmentation,
    structured_report,
)
from dicom_helpers import PATIENT_VALUES
from series_helpers import multi_frame_file, series_files, synthetic_pictures

SUMMARY = {"class": "Glioma", "key_slice": 1, "tumour_probability": 95.0,
           "probabilities": {"Glioma": 80.0, "Meningioma": 10.0, "No Tumor": 5.0,
                             "Pituitary": 5.0}}
MODEL = ModelIdentity("compact", "test-1")


def errors(path) -> list[str]:
    """dciodvfy's Error lines (its warnings, e.g. about the private coding scheme, pass)."""
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dciodvfy is not installed (Debian: apt-get install dicom3tools)")
    run = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def overlay_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((96, 96, 3), 60, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("multi_frame", [False, True])
def test_sr_and_secondary_capture_pass_dciodvfy(tmp_path, multi_frame):
    if multi_frame:
        data, _ = multi_frame_file()
        frame: int | None = 2
    else:
        data, frame = series_files(synthetic_pictures(3, seed=1))[1], None
    source = reference(pydicom.dcmread(io.BytesIO(data)))
    report = structured_report(source, SUMMARY, 1, MODEL, generate_uid(), generate_uid(),
                               frame)
    capture = secondary_capture(source, overlay_png(), MODEL, generate_uid(), generate_uid(),
                                frame)
    assert capture is not None
    for name, dataset in (("sr.dcm", report), ("sc.dcm", capture)):
        path = tmp_path / name
        dataset.save_as(path, enforce_file_format=True)
        assert errors(path) == [], name
        again = pydicom.dcmread(path)
        assert again.SOPInstanceUID == dataset.SOPInstanceUID
        assert again.ContentQualification == "RESEARCH"
    assert pydicom.dcmread(tmp_path / "sr.dcm").VerificationFlag == "UNVERIFIED"
    assert pydicom.dcmread(tmp_path / "sc.dcm").pixel_array.shape == (96, 96, 3)


def multi_frame_source(frame_of_reference: bool = True):
    """The multi-frame test file with what an Enhanced MR image states besides: a Frame
    of Reference and the pixel spacing in its shared functional groups."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    data, _ = multi_frame_file()
    source = reference(pydicom.dcmread(io.BytesIO(data)))
    if frame_of_reference:
        source.FrameOfReferenceUID = generate_uid()
    measures = Dataset()
    measures.PixelSpacing = [0.9, 0.9]
    measures.SliceThickness = 5.0
    source.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence = Sequence([measures])
    return source


def outline(shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[10:30, 20:44] = True
    mask[12:16, 40:50] = True  # not a rectangle
    return mask


SEG_MODEL = ModelIdentity("compact-seg", "seg-test-3")


@pytest.mark.parametrize("multi_frame", [False, True])
def test_the_segmentation_passes_dciodvfy_and_holds_the_outline(tmp_path, multi_frame):
    """BINARY, one "Tumour" segment (SNOMED CT Morphologically Abnormal Structure /
    Neoplasm, in the brain, by the model as an AI algorithm), derived from the key slice
    (and its frame), the mask pixel for pixel in the slice's grid; no patient or study
    value that the SR does not carry too."""
    import highdicom as hd

    if multi_frame:
        source, frame = multi_frame_source(), 2
    else:
        data = series_files(synthetic_pictures(3, size=(64, 64), seed=1))[1]
        source, frame = reference(pydicom.dcmread(io.BytesIO(data))), None
    mask = outline((int(source.Rows), int(source.Columns)))
    seg = segmentation(source, mask, SEG_MODEL, generate_uid(), generate_uid(), frame)
    assert seg is not None
    path = tmp_path / "seg.dcm"
    seg.save_as(path, enforce_file_format=True)
    assert errors(path) == []

    again = hd.seg.segread(path)
    assert again.SegmentationType == "BINARY" and again.Modality == "SEG"
    assert again.StudyInstanceUID == source.StudyInstanceUID
    assert again.FrameOfReferenceUID == source.FrameOfReferenceUID
    assert again.SeriesNumber == 9903 and again.ContentQualification == "RESEARCH"
    assert "RESEARCH USE ONLY" in again.SeriesDescription
    assert int(again.NumberOfFrames) == 1
    derived = again.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0]
    image = derived.SourceImageSequence[0]
    assert image.ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert image.ReferencedSOPClassUID == source.SOPClassUID
    if multi_frame:
        assert int(image.ReferencedFrameNumber) == frame + 1  # DICOM counts from 1
    else:
        assert "ReferencedFrameNumber" not in image
    assert again.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
    # highdicom finds the mask by the source image (and frame) it references
    if multi_frame:
        pixels = again.get_pixels_by_source_frame(source.SOPInstanceUID, [frame + 1])
    else:
        pixels = again.get_pixels_by_source_instance([source.SOPInstanceUID])
    assert pixels.shape == (1, *mask.shape, 1)
    assert np.array_equal(pixels[0, :, :, 0].astype(bool), mask)

    (segment,) = again.SegmentSequence
    assert segment.SegmentLabel == "Tumour" and segment.SegmentAlgorithmType == "AUTOMATIC"
    category = segment.SegmentedPropertyCategoryCodeSequence[0]
    kind = segment.SegmentedPropertyTypeCodeSequence[0]
    assert (category.CodingSchemeDesignator, category.CodeValue) == ("SCT", "49755003")
    assert (kind.CodingSchemeDesignator, kind.CodeValue) == ("SCT", "108369006")
    assert segment.AnatomicRegionSequence[0].CodeValue == "12738006"  # brain
    algorithm = segment.SegmentationAlgorithmIdentificationSequence[0]
    assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == ("compact-seg", "seg-test-3")
    assert algorithm.AlgorithmFamilyCodeSequence[0].CodeValue == "123110"  # AI
    assert again.ManufacturerModelName == "compact-seg"

    report = structured_report(source, SUMMARY, 1, SEG_MODEL, generate_uid(), generate_uid(),
                               frame)

    def patient_values(dataset) -> set[str]:
        text = str(dataset)
        return {value for value in PATIENT_VALUES.values() if value in text}

    assert patient_values(again) <= patient_values(report)
    assert "DeviceSerialNumber" not in source or \
        again.DeviceSerialNumber != source.DeviceSerialNumber


def test_no_segmentation_without_an_outline_or_what_it_must_state():
    """None for an empty outline, a mask of another size, a source without a Frame of
    Reference or its Image Plane attributes, and a multi-frame file that does not place
    every frame, or places two in one spot."""
    data = series_files(synthetic_pictures(2, size=(64, 64), seed=3))[0]
    uids = (generate_uid(), generate_uid())

    def source_without(*keywords: str):
        ds = reference(pydicom.dcmread(io.BytesIO(data)))
        for keyword in keywords:
            delattr(ds, keyword)
        return ds

    assert segmentation(source_without(), outline((64, 64)), SEG_MODEL, *uids) is not None
    assert segmentation(source_without(), np.zeros((64, 64), bool), SEG_MODEL, *uids) is None
    assert segmentation(source_without(), outline((64, 80)), SEG_MODEL, *uids) is None
    for keyword in ("FrameOfReferenceUID", "ImagePositionPatient", "ImageOrientationPatient",
                    "PixelSpacing", "SliceThickness"):
        assert segmentation(source_without(keyword), outline((64, 64)), SEG_MODEL,
                            *uids) is None, keyword

    multi = multi_frame_source(frame_of_reference=False)
    assert segmentation(multi, outline((64, 64)), SEG_MODEL, *uids, frame=1) is None
    multi = multi_frame_source()
    frames = multi.PerFrameFunctionalGroupsSequence
    frames[3].PlanePositionSequence[0].ImagePositionPatient = \
        frames[1].PlanePositionSequence[0].ImagePositionPatient
    assert segmentation(multi, outline((64, 64)), SEG_MODEL, *uids, frame=1) is None
    assert segmentation(multi, outline((64, 64)), SEG_MODEL, *uids, frame=0) is not None
    del frames[1].PlanePositionSequence
    assert segmentation(multi, outline((64, 64)), SEG_MODEL, *uids, frame=1) is None
    assert segmentation(multi, outline((64, 64)), SEG_MODEL, *uids, frame=0) is None


class _Client:
    """What store_results asks of a DICOMweb client: STOW-RS, kept here."""

    def __init__(self) -> None:
        self.stored: list = []

    def store_instances(self, datasets, study_instance_uid=None):
        self.stored.extend(datasets)


def test_store_results_writes_the_segmentation_beside_the_sr_or_goes_on_without_it(
        monkeypatch, caplog):
    """An outline is stored as a third series; a source highdicom cannot derive one from
    costs only the Segmentation (one log line naming the error's type, no values)."""
    from braintumor.dicomweb import commands
    from braintumor.explain.localize import Localization

    data = series_files(synthetic_pictures(3, size=(64, 64), seed=4))[1]
    source = pydicom.dcmread(io.BytesIO(data))
    body = {"summary": SUMMARY}
    pngs = {"heatmap_overlay": overlay_png()}
    found = Localization(outline((64, 64)), (0.9, 0.9))

    client = _Client()
    stored = commands.store_results(client, "http://pacs", source.StudyInstanceUID, source,
                                    body, pngs, SEG_MODEL, localization=found)
    assert [ds.Modality for ds in client.stored] == ["SR", "OT", "SEG"]
    assert stored["segmentation"]["sop_instance_uid"] == client.stored[2].SOPInstanceUID

    empty = Localization(np.zeros((64, 64), bool), (0.9, 0.9))
    client = _Client()
    assert commands.store_results(client, "http://pacs", source.StudyInstanceUID, source,
                                  body, pngs, SEG_MODEL, localization=empty)["segmentation"] is None
    assert [ds.Modality for ds in client.stored] == ["SR", "OT"]

    def refuses(*args, **kwargs):
        raise ValueError(f"no frame matches {PATIENT_VALUES['PatientName']}")

    monkeypatch.setattr(commands, "segmentation", refuses)
    client = _Client()
    assert commands.store_results(client, "http://pacs", source.StudyInstanceUID, source,
                                  body, pngs, SEG_MODEL, localization=found)["segmentation"] is None
    assert [ds.Modality for ds in client.stored] == ["SR", "OT"]
    assert "(ValueError)" in caplog.text and PATIENT_VALUES["PatientName"] not in caplog.text
