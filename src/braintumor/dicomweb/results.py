"""A series' answer written as DICOM, into the source study: a Structured Report, a
Secondary Capture of the key slice's heatmap overlay and, for a model with a segmentation
output, a Segmentation of the key slice's tumour outline (highdicom).

The Structured Report is a TID 1500 Imaging Measurement Report in a Comprehensive SR
document, the shape the IHE AI Results profile uses: one measurement group holding the
series class as a qualitative evaluation ("Finding"), the series probabilities and the
tumour probability as percentages, the model as the algorithm (name and version) and as
the observing device, and the key slice as the group's source image. The classes have no
SNOMED codes in the dictionaries shipped with pydicom, so they are coded in a private
scheme (``99BRAINTUMOR``, declared in the document) rather than with invented codes.

The Segmentation (BINARY, one segment "Tumour": SNOMED CT Morphologically Abnormal
Structure / Neoplasm, in the brain, found automatically by the model as an AI algorithm)
holds the outline in the key slice's own pixel grid, derived from that image (and frame),
so a viewer draws it over the slice it came from.

Every object says what it is: VerificationFlag UNVERIFIED (no person has checked the SR),
Content Qualification RESEARCH, a series description that says research use only, and
the model as contributing equipment. Patient and study attributes are copied from the
source images by highdicom (they must match the study's); they are never printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from highdicom.sc import SCImage
    from highdicom.seg import Segmentation
    from highdicom.sr import CodedConcept, ComprehensiveSR
    from pydicom.dataset import Dataset

MANUFACTURER = "braintumor"
SCHEME = "99BRAINTUMOR"
SERIES_DESCRIPTION = "RESEARCH USE ONLY - braintumor AI result, unverified"
#: Series numbers of the series written back (SR, Secondary Capture, Segmentation).
SR_SERIES_NUMBER = 9901
SC_SERIES_NUMBER = 9902
SEG_SERIES_NUMBER = 9903
#: The one segment of the Segmentation.
SEGMENT_LABEL = "Tumour"
#: DICOM patient-orientation letters of the LPS axes, positive and negative.
_LETTERS = (("L", "R"), ("P", "A"), ("H", "F"))


@dataclass(frozen=True)
class ModelIdentity:
    name: str
    version: str


#: Type 2 attributes of the Patient and General Study modules: present, maybe empty.
_TYPE_2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
           "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber")


def reference(source: Dataset) -> Dataset:
    """A copy of the source slice with every Type 2 patient and study attribute present.

    highdicom copies them into the new objects and expects them to exist; a source that
    left one out (legal for some producers, common in exported files) gets it empty,
    which is what Type 2 means. The caller's dataset is left as it was.
    """
    import copy

    ds = copy.deepcopy(source)
    for keyword in _TYPE_2:
        if keyword not in ds:
            setattr(ds, keyword, "")
    return ds


def class_code(name: str) -> CodedConcept:
    """The series class as a coded concept of the private scheme."""
    from highdicom.sr import CodedConcept

    value = "".join(ch for ch in name.upper() if ch.isalnum())[:16] or "UNKNOWN"
    return CodedConcept(value, SCHEME, name)


def _probability_code(name: str) -> CodedConcept:
    from highdicom.sr import CodedConcept

    value = "P-" + ("".join(ch for ch in name.upper() if ch.isalnum())[:14] or "UNKNOWN")
    return CodedConcept(value, SCHEME, f"Probability of {name}"[:64])


def _contributing(model: ModelIdentity):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    return [hd.ContributingEquipment(
        manufacturer=MANUFACTURER, purpose_of_reference=codes.DCM.ProcessingEquipment,
        manufacturer_model_name=model.name[:64], software_versions=model.version[:64],
        contribution_description="Brain tumour classification of the series (research "
                                 "use only, unverified)")]


def _orientation(source: Dataset, frame: int | None) -> Any:
    """Image Orientation (Patient) of the key slice: the file's, or for a frame of a
    multi-frame file its per-frame, then shared, functional groups'."""
    if "ImageOrientationPatient" in source:
        return source.ImageOrientationPatient
    groups = []
    per_frame = source.get("PerFrameFunctionalGroupsSequence") or []
    if frame is not None and frame < len(per_frame):
        groups.append(per_frame[frame])
    groups.extend((source.get("SharedFunctionalGroupsSequence") or [])[:1])
    for group in groups:
        planes = group.get("PlaneOrientationSequence")
        if planes and "ImageOrientationPatient" in planes[0]:
            return planes[0].ImageOrientationPatient
    return None


def patient_orientation(source: Dataset, frame: int | None = None) -> tuple[str, str] | None:
    """The key slice's Patient Orientation from its Image Orientation (Patient)."""
    try:
        stated: Any = _orientation(source, frame)
        cosines = np.array([float(v) for v in stated], dtype=float)
    except (AttributeError, TypeError, ValueError):
        return None
    if cosines.shape != (6,):
        return None

    def letter(direction: np.ndarray) -> str:
        axis = int(np.argmax(np.abs(direction)))
        return _LETTERS[axis][0 if direction[axis] > 0 else 1]

    return letter(cosines[:3]), letter(cosines[3:])


def structured_report(source: Dataset, summary: dict, key_index: int, model: ModelIdentity,
                      series_uid: str, sop_uid: str,
                      frame: int | None = None) -> ComprehensiveSR:
    """The Comprehensive SR (TID 1500) for one classified series.

    ``source`` is the key slice's dataset (its study, patient and SOP identity are the
    evidence); ``summary`` is the series answer's ``summary`` block; ``frame`` (0-based)
    the key slice's frame when the series is one multi-frame file.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    key_ref = (str(source.SOPClassUID), str(source.SOPInstanceUID))
    frames = [frame + 1] if frame is not None else None  # DICOM frame numbers are 1-based
    algorithm = hd.sr.AlgorithmIdentification(name=model.name[:64], version=model.version[:64])
    measurements = [
        hd.sr.Measurement(
            name=_probability_code(name), value=float(value), unit=codes.UCUM.Percent,
            algorithm_id=algorithm)
        for name, value in summary["probabilities"].items()]
    if summary.get("tumour_probability") is not None:
        measurements.append(hd.sr.Measurement(
            name=codes.DCM.Probability, value=float(summary["tumour_probability"]),
            unit=codes.UCUM.Percent, algorithm_id=algorithm,
            referenced_images=[hd.sr.SourceImageForMeasurement(
                *key_ref, referenced_frame_numbers=frames)]))
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=generate_uid(), identifier=f"Series classification, key slice {key_index}"),
        finding_type=class_code(summary["class"]),
        algorithm_id=algorithm,
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(
            name=codes.DCM.Finding, value=class_code(summary["class"]))],
        measurements=measurements,
        source_images=[hd.sr.SourceImageForMeasurementGroup(
            *key_ref, referenced_frame_numbers=frames)],
    )
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), name=model.name[:64], manufacturer_name=MANUFACTURER,
            model_name=model.version[:64]))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.LN.BrainMRI,
        imaging_measurements=[group],
    )
    return hd.sr.ComprehensiveSR(
        evidence=[source], content=report[0], series_instance_uid=series_uid,
        series_number=SR_SERIES_NUMBER, sop_instance_uid=sop_uid, instance_number=1,
        manufacturer=MANUFACTURER, is_complete=True, is_final=False, is_verified=False,
        series_description=SERIES_DESCRIPTION, content_qualification="RESEARCH",
        manufacturer_model_name=model.name[:64], software_versions=model.version[:64],
        coding_schemes=[hd.coding_schemes.CodingSchemeIdentificationItem(
            designator=SCHEME, name="braintumor model classes",
            responsible_organization=MANUFACTURER)],
        contributing_equipment=_contributing(model),
    )


def secondary_capture(source: Dataset, overlay_png: bytes, model: ModelIdentity,
                      series_uid: str, sop_uid: str,
                      frame: int | None = None) -> SCImage | None:
    """The key slice's Grad-CAM overlay as an RGB Secondary Capture, or None when the
    key slice has no orientation to copy (a Secondary Capture in patient coordinates
    must state one, and guessing it would mislead)."""
    import highdicom as hd

    orientation = patient_orientation(source, frame)
    if orientation is None:
        return None
    pixels = np.asarray(Image.open(BytesIO(overlay_png)).convert("RGB"), dtype=np.uint8)
    capture = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source, pixel_array=pixels, photometric_interpretation="RGB",
        bits_allocated=8, coordinate_system="PATIENT", series_instance_uid=series_uid,
        series_number=SC_SERIES_NUMBER, sop_instance_uid=sop_uid, instance_number=1,
        manufacturer=MANUFACTURER, patient_orientation=orientation,
        series_description=SERIES_DESCRIPTION, content_qualification="RESEARCH",
        manufacturer_model_name=model.name[:64], software_versions=model.version[:64],
        contributing_equipment=_contributing(model),
        transfer_syntax_uid="1.2.840.10008.1.2.1",
    )
    if "Laterality" not in capture:
        # General Series Laterality is Type 2C, needed unless the body part is known to be
        # unpaired; sources rarely say, so it is present and empty: unknown
        capture.Laterality = source.get("Laterality") or ""
    return capture


#: What places a single-frame image, which its Segmentation copies (Image Plane module).
_IMAGE_PLANE = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")


def _frame_positions(source: Dataset) -> list[Any] | None:
    """Image Position (Patient) of every frame of a multi-frame file, from its per-frame
    functional groups; None when a frame does not state one (a Segmentation of one frame
    is matched to its source frame by position, which needs all of them)."""
    positions = []
    for group in source.get("PerFrameFunctionalGroupsSequence") or []:
        planes = group.get("PlanePositionSequence")
        if not planes or "ImagePositionPatient" not in planes[0]:
            return None
        positions.append(planes[0].ImagePositionPatient)
    return positions


def _pixel_measures_stated(source: Dataset, frame: int) -> bool:
    """Whether a multi-frame file states its pixel spacing for ``frame`` (per-frame, else
    shared functional groups), as a Segmentation of it must copy."""
    groups = []
    per_frame = source.get("PerFrameFunctionalGroupsSequence") or []
    if frame < len(per_frame):
        groups.append(per_frame[frame])
    groups.extend((source.get("SharedFunctionalGroupsSequence") or [])[:1])
    return any(group.get("PixelMeasuresSequence") for group in groups)


def segmentation(source: Dataset, mask: np.ndarray, model: ModelIdentity, series_uid: str,
                 sop_uid: str, frame: int | None = None) -> Segmentation | None:
    """The key slice's tumour outline as a BINARY DICOM Segmentation of one segment.

    ``mask`` (bool, rows x columns) is the answer's ``localization`` mask, which is in the
    upload's pixels, i.e. the key slice's own grid; ``frame`` (0-based) is the key
    slice's frame when the series is one multi-frame file. None when there is nothing to
    write or the source cannot carry a Segmentation: an empty outline, a mask of another
    size than the image, or a source that does not place it: no Frame of Reference (the
    Segmentation IOD needs one), a single-frame image without its Image Plane attributes
    (position, orientation, pixel spacing, slice thickness), a multi-frame file that does
    not state every frame's position (distinct), or the key frame's orientation and pixel
    spacing.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    mask = np.asarray(mask, dtype=bool)
    if not mask.any() or mask.shape != (int(source.Rows), int(source.Columns)):
        return None
    if not source.get("FrameOfReferenceUID"):
        return None
    positions = None
    if frame is None:
        if not all(source.get(keyword) for keyword in _IMAGE_PLANE) or \
                "SliceThickness" not in source:
            return None
    else:
        stated = _frame_positions(source)
        if stated is None or frame >= len(stated) or \
                not _pixel_measures_stated(source, frame) or _orientation(source, frame) is None:
            return None
        position = stated[frame]
        if sum(list(p) == list(position) for p in stated) > 1:
            return None  # two frames in one place: which one it is would be a guess
        # the one frame, placed where the key frame is: highdicom finds that frame of the
        # source by its position and references it
        positions = [hd.PlanePositionSequence(hd.CoordinateSystemNames.PATIENT,
                                              [float(v) for v in position])]
    algorithm = hd.AlgorithmIdentificationSequence(
        name=model.name[:64], version=model.version[:64],
        family=codes.cid7162.ArtificialIntelligence)
    segment = hd.seg.SegmentDescription(
        segment_number=1, segment_label=SEGMENT_LABEL,
        segmented_property_category=codes.cid7150.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.cid7151.Neoplasm,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm, anatomic_regions=[codes.SCT.Brain],
        tracking_uid=generate_uid(), tracking_id="Tumour outline of the key slice")
    return hd.seg.Segmentation(
        source_images=[source], pixel_array=mask[np.newaxis].astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment], series_instance_uid=series_uid,
        series_number=SEG_SERIES_NUMBER, sop_instance_uid=sop_uid, instance_number=1,
        manufacturer=MANUFACTURER, manufacturer_model_name=model.name[:64],
        software_versions=model.version[:64],
        # Type 1; the software has no serial number, and the source's (its scanner's)
        # must not be copied: the model's version identifies what made the object
        device_serial_number=model.version[:64],
        plane_positions=positions, series_description=SERIES_DESCRIPTION,
        content_description="Tumour outline of the key slice, research use only",
        content_label="TUMOUR", content_qualification="RESEARCH",
        contributing_equipment=_contributing(model),
    )
