"""A series' answer written as DICOM, into the source study: a Structured Report and a
Secondary Capture of the key slice's heatmap overlay (highdicom).

The Structured Report is a TID 1500 Imaging Measurement Report in a Comprehensive SR
document, the shape the IHE AI Results profile uses: one measurement group holding the
series class as a qualitative evaluation ("Finding"), the series probabilities and the
tumour probability as percentages, the model as the algorithm (name and version) and as
the observing device, and the key slice as the group's source image. The classes have no
SNOMED codes in the dictionaries shipped with pydicom, so they are coded in a private
scheme (``99BRAINTUMOR``, declared in the document) rather than with invented codes.

Both objects say what they are: VerificationFlag UNVERIFIED (no person has checked them),
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
    from highdicom.sr import CodedConcept, ComprehensiveSR
    from pydicom.dataset import Dataset

MANUFACTURER = "braintumor"
SCHEME = "99BRAINTUMOR"
SERIES_DESCRIPTION = "RESEARCH USE ONLY - braintumor AI result, unverified"
#: Series numbers of the two series written back (SR, Secondary Capture).
SR_SERIES_NUMBER = 9901
SC_SERIES_NUMBER = 9902
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
