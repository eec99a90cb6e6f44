"""`braintumor dicomweb classify|watch` against a real Orthanc (tests/dicomweb/orthanc_server.py).

A series is STOWed in, the command runs as a user would run it, and what it stored is
read back with WADO-RS and checked: the Structured Report's content and flags, the
Secondary Capture's pixels, the Segmentation of a model that outlines the tumour, and
that no patient value was printed or logged.
"""

from __future__ import annotations

import base64
import io
import json
import logging

import numpy as np
import pydicom
import pytest
from orthanc_server import orthanc  # noqa: F401  (the fixture)
from PIL import Image
from pydicom.uid import generate_uid

from braintumor.cli import main
from dicom_helpers import PATIENT_VALUES, make_dicom
from series_helpers import series_files, synthetic_pictures

COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
SEGMENTATION = "1.2.840.10008.5.1.4.1.1.66.4"


def client_for(server):
    from braintumor.dicomweb.client import connect

    return connect(server.url, user=server.user, password=server.password)


def stow(server, files: list[bytes]) -> None:
    datasets = [pydicom.dcmread(io.BytesIO(data)) for data in files]
    client_for(server).store_instances(datasets)


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def auth(server) -> list[str]:
    return ["--url", server.url, "--user", server.user, "--password", server.password]


def content_items(dataset) -> list:
    """Every content item of an SR tree, depth first."""
    found = []
    for item in dataset.get("ContentSequence", []):
        found.append(item)
        found.extend(content_items(item))
    return found


def by_name(items: list, meaning: str) -> list:
    return [i for i in items if "ConceptNameCodeSequence" in i
            and i.ConceptNameCodeSequence[0].CodeMeaning == meaning]


@pytest.fixture
def tiny(monkeypatch, tiny_model_path):
    monkeypatch.setenv("MODEL_PATH", str(tiny_model_path))


def test_classify_and_store_an_sr_and_a_secondary_capture(orthanc, tiny, capsys,  # noqa: F811
                                                          caplog):
    caplog.set_level(logging.DEBUG)
    study = generate_uid()
    files = series_files(synthetic_pictures(6, seed=80), study_uid=study)
    stow(orthanc, files)
    code, out, err = run(capsys, "dicomweb", "classify", *auth(orthanc), "--study", study,
                         "--store", "--compact")
    assert code == 0, err
    body = json.loads(out)
    assert body["success"] is True and len(body["series"]) == 1
    answer = body["series"][0]
    source = pydicom.dcmread(io.BytesIO(files[0]))
    assert answer["series_instance_uid"] == source.SeriesInstanceUID
    assert answer["series"]["slice_count"] == 6 and answer["series"]["ordered_by"] == "position"
    for value in PATIENT_VALUES.values():
        assert value not in out + err + caplog.text
    assert study not in caplog.text  # nor the identifiers of the patient's images

    # the same answer as POST /api/classify-series with the same files
    from braintumor.api import create_app
    from braintumor.config import load_settings

    api = create_app(load_settings()).test_client()
    direct = api.post("/api/classify-series",
                      data={"file": [(io.BytesIO(f), "s.dcm") for f in files]},
                      content_type="multipart/form-data").get_json()
    assert answer["summary"] == direct["summary"]
    assert [s["probabilities"] for s in answer["slices"]] == \
        [s["probabilities"] for s in direct["slices"]]

    # the Structured Report, read back with WADO-RS
    stored = answer["stored"]
    assert stored["segmentation"] is None  # the tiny model draws no outline
    client = client_for(orthanc)
    sr_ref = stored["structured_report"]
    report = client.retrieve_instance(study, sr_ref["series_instance_uid"],
                                      sr_ref["sop_instance_uid"])
    assert report.SOPClassUID == COMPREHENSIVE_SR and report.Modality == "SR"
    assert report.StudyInstanceUID == study
    assert report.SeriesInstanceUID != source.SeriesInstanceUID
    assert report.VerificationFlag == "UNVERIFIED"
    assert report.CompletionFlag == "COMPLETE"
    assert report.ContentQualification == "RESEARCH"
    assert "RESEARCH USE ONLY" in report.SeriesDescription
    assert report.PatientID == source.PatientID  # belongs to the same patient and study
    equipment = report.ContributingEquipmentSequence[0]
    assert equipment.ManufacturerModelName == "tiny" and equipment.SoftwareVersions == "tiny-test"
    items = content_items(report)
    finding = by_name(items, "Finding")
    assert finding[0].ConceptCodeSequence[0].CodeMeaning == answer["summary"]["class"]
    for name, value in answer["summary"]["probabilities"].items():
        number = by_name(items, f"Probability of {name}")[0]
        assert float(number.MeasuredValueSequence[0].NumericValue) == pytest.approx(value)
    tumour = by_name(items, "Probability")[0]
    assert float(tumour.MeasuredValueSequence[0].NumericValue) == pytest.approx(
        answer["summary"]["tumour_probability"])
    ordered = sorted((pydicom.dcmread(io.BytesIO(f)) for f in files),
                     key=lambda ds: float(ds.ImagePositionPatient[2]))
    key_uid = ordered[answer["key_slice"]["index"]].SOPInstanceUID
    referenced = {i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in items
                  if i.ValueType == "IMAGE"}
    assert referenced == {key_uid}
    algorithm = by_name(items, "Algorithm Name")[0]
    assert algorithm.TextValue == "tiny"
    # highdicom reads its own document back: the template's structure is intact
    import highdicom as hd

    parsed = hd.sr.ComprehensiveSR.from_dataset(report)
    groups = parsed.content.get_image_measurement_groups()
    assert len(groups) == 1
    assert groups[0].finding_type.meaning == answer["summary"]["class"]
    assert groups[0].source_images[0].referenced_sop_instance_uid == key_uid

    # the Secondary Capture: the key slice's overlay, pixel for pixel
    sc_ref = stored["secondary_capture"]
    capture = client.retrieve_instance(study, sc_ref["series_instance_uid"],
                                       sc_ref["sop_instance_uid"])
    assert capture.SOPClassUID == SECONDARY_CAPTURE and capture.StudyInstanceUID == study
    assert capture.ContentQualification == "RESEARCH"
    assert "RESEARCH USE ONLY" in capture.SeriesDescription
    assert list(capture.PatientOrientation) == ["L", "P"]
    overlay = np.asarray(Image.open(io.BytesIO(base64.b64decode(
        answer["key_slice"]["visualization"]["heatmap_overlay"]))).convert("RGB"))
    assert np.array_equal(capture.pixel_array, overlay)

    # Orthanc indexed both and renders the Secondary Capture (its own preview)
    import requests

    for ref, kind in ((sr_ref, "structured report"), (sc_ref, "secondary capture")):
        found = requests.post(f"{orthanc.base}/tools/lookup", data=ref["sop_instance_uid"],
                              auth=orthanc.auth, timeout=10).json()
        assert [item["Type"] for item in found] == ["Instance"], kind
        if kind == "secondary capture":
            preview = requests.get(f"{orthanc.base}/instances/{found[0]['ID']}/preview",
                                   auth=orthanc.auth, timeout=30)
            assert preview.ok and preview.headers["Content-Type"] == "image/png"
            assert Image.open(io.BytesIO(preview.content)).size == overlay.shape[1::-1]


def test_a_model_with_an_outline_stores_a_segmentation_of_the_key_slice(
        orthanc, capsys, monkeypatch, tmp_path):  # noqa: F811
    """A segmenting model (seg_helpers', its outline the whole head box): beside the SR
    and the Secondary Capture, a DICOM SEG of the key slice, read back with WADO-RS, that
    references that slice and holds the answer's outline pixel for pixel."""
    from seg_helpers import save_seg_model

    monkeypatch.setenv("MODEL_PATH", str(save_seg_model(tmp_path / "seg.keras",
                                                        outline_bias=8.0)))
    study = generate_uid()
    files = series_files(synthetic_pictures(4, seed=90), study_uid=study)
    stow(orthanc, files)
    code, out, err = run(capsys, "dicomweb", "classify", *auth(orthanc), "--study", study,
                         "--store", "--compact")
    assert code == 0, err
    answer = json.loads(out)["series"][0]
    localization = answer["key_slice"]["localization"]
    assert localization["found"] is True
    ref = answer["stored"]["segmentation"]
    assert ref is not None and answer["stored"]["structured_report"] is not None
    seg = client_for(orthanc).retrieve_instance(study, ref["series_instance_uid"],
                                                ref["sop_instance_uid"])
    assert seg.SOPClassUID == SEGMENTATION and seg.StudyInstanceUID == study
    assert seg.SegmentationType == "BINARY" and seg.SegmentSequence[0].SegmentLabel == "Tumour"
    ordered = sorted((pydicom.dcmread(io.BytesIO(f)) for f in files),
                     key=lambda ds: float(ds.ImagePositionPatient[2]))
    key = ordered[answer["key_slice"]["index"]]
    derived = seg.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0]
    assert derived.SourceImageSequence[0].ReferencedSOPInstanceUID == key.SOPInstanceUID
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(localization["mask_png"])))) > 0
    assert np.array_equal(seg.pixel_array.reshape(mask.shape).astype(bool), mask)
    for value in PATIENT_VALUES.values():
        assert value not in out + err


def test_one_series_of_a_study_and_a_study_without_mr(orthanc, tiny, capsys):  # noqa: F811
    study = generate_uid()
    first = series_files(synthetic_pictures(3, seed=90), study_uid=study)
    second = series_files(synthetic_pictures(4, seed=95), study_uid=study)
    stow(orthanc, first + second)
    chosen = pydicom.dcmread(io.BytesIO(second[0])).SeriesInstanceUID
    code, out, _ = run(capsys, "dicomweb", "classify", *auth(orthanc), "--study", study,
                       "--series", chosen, "--compact")
    assert code == 0
    body = json.loads(out)
    assert [s["series_instance_uid"] for s in body["series"]] == [chosen]
    assert body["series"][0]["series"]["slice_count"] == 4 and "stored" not in body["series"][0]

    ct_study = generate_uid()
    stow(orthanc, [make_dicom(np.zeros((16, 16), np.uint16), modality="CT",
                              extra={"StudyInstanceUID": ct_study,
                                     "SeriesInstanceUID": generate_uid()})])
    code, out, err = run(capsys, "dicomweb", "classify", *auth(orthanc), "--study", ct_study)
    assert code == 2 and out == ""
    assert err.strip() == "error: the study has no MR series"


@pytest.mark.parametrize("case", ["unreachable", "password", "token", "unknown study"])
def test_failures_are_one_line_and_exit_2(orthanc, tiny, capsys, case):  # noqa: F811
    study = generate_uid()
    args = auth(orthanc)
    if case == "unreachable":
        from orthanc_server import _free_port

        args = ["--url", f"http://127.0.0.1:{_free_port()}/dicom-web"]
        expected = "cannot reach the DICOMweb server"
    elif case == "password":
        args = [*args[:-1], "wrong"]
        expected = "refused the credentials (HTTP 401)"
    elif case == "token":
        args = ["--url", orthanc.url, "--token", "not-a-valid-token"]
        expected = "refused the credentials (HTTP 401)"
    else:
        expected = "the study was not found"
    code, out, err = run(capsys, "dicomweb", "classify", *args, "--study", study)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and expected in err and err.count("\n") == 1


def test_watch_classifies_each_new_series_once(orthanc, tiny, capsys, tmp_path):  # noqa: F811
    orthanc.clear()
    state = tmp_path / "state.json"
    stow(orthanc, series_files(synthetic_pictures(3, seed=100)))
    stow(orthanc, series_files(synthetic_pictures(2, seed=105)))
    watch = ["dicomweb", "watch", *auth(orthanc), "--state", str(state), "--once"]
    code, out, _ = run(capsys, *watch, "--no-settle")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert sorted(a["series"]["slice_count"] for a in lines) == [2, 3]
    assert len(json.loads(state.read_text())["done"]) == 2
    assert run(capsys, *watch, "--no-settle")[1] == ""  # nothing new: nothing again

    stow(orthanc, series_files(synthetic_pictures(4, seed=110)))
    assert run(capsys, *watch)[1] == ""  # first sight: waits one poll to settle
    code, out, _ = run(capsys, *watch, "--store")
    answer = json.loads(out)
    assert answer["series"]["slice_count"] == 4 and "structured_report" in answer["stored"]
    # its own SR and Secondary Capture are not MR: never picked up as new series
    assert run(capsys, *watch, "--no-settle")[1] == ""
    assert len(json.loads(state.read_text())["done"]) == 3


@pytest.mark.dataset
def test_real_scans_with_the_default_model(orthanc, capsys, monkeypatch):  # noqa: F811
    """Six Testing scans as a 12-bit MR series, the shipped model and OOD policy."""
    from conftest import dataset_dir

    monkeypatch.delenv("MODEL_PATH", raising=False)
    root = dataset_dir() / "Testing"
    folders = ["glioma", "notumor", "meningioma", "notumor", "pituitary", "notumor"]
    pictures = [Image.open(sorted((root / f).glob("*.jpg"))[20 + i]).convert("L")
                .resize((256, 256)) for i, f in enumerate(folders)]
    study = generate_uid()
    files = series_files(pictures, study_uid=study, spacing=5.0)
    stow(orthanc, files)
    code, out, err = run(capsys, "dicomweb", "classify", *auth(orthanc), "--study", study,
                         "--store", "--compact")
    assert code == 0, err
    answer = json.loads(out)["series"][0]
    assert answer["summary"]["slices_answered"] >= 4
    ref = answer["stored"]["structured_report"]
    report = client_for(orthanc).retrieve_instance(study, ref["series_instance_uid"],
                                                   ref["sop_instance_uid"])
    finding = by_name(content_items(report), "Finding")[0]
    assert finding.ConceptCodeSequence[0].CodeMeaning == answer["summary"]["class"]
    assert report.VerificationFlag == "UNVERIFIED"
    assert answer["stored"]["secondary_capture"] is not None
    for value in PATIENT_VALUES.values():
        assert value not in out + err


def test_a_series_over_the_slice_limit_is_not_retrieved(orthanc, tiny, capsys,  # noqa: F811
                                                        monkeypatch):
    monkeypatch.setenv("MAX_SERIES_SLICES", "2")
    study = generate_uid()
    stow(orthanc, series_files(synthetic_pictures(3, seed=120), study_uid=study))
    code, out, _ = run(capsys, "dicomweb", "classify", *auth(orthanc), "--study", study)
    assert code == 2
    entry = json.loads(out)["series"][0]
    assert entry["success"] is False and entry["error"]["code"] == "FILE_TOO_LARGE"
    assert "3 instances; the limit is 2" in entry["error"]["message"]


def test_unattended_watch_survives_a_server_that_is_down(tiny_settings, tiny_model, tmp_path,
                                                         monkeypatch, caplog):
    """The loop logs the failure and polls again (the pause is cut short to end the test)."""
    from orthanc_server import _free_port

    from braintumor.classify import Classifier
    from braintumor.dicomweb import commands
    from braintumor.dicomweb.client import connect

    url = f"http://127.0.0.1:{_free_port()}/dicom-web"
    pauses = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(commands, "_pause", pause)
    with pytest.raises(KeyboardInterrupt):
        commands.watch(connect(url), url, Classifier(tiny_model, tiny_settings),
                       tmp_path / "state.json", store=False, interval=7, once=False)
    assert pauses == [7, 7]
    failures = [r.getMessage() for r in caplog.records if r.name == commands.log.name]
    assert len(failures) == 2 and "cannot reach the DICOMweb server" in failures[0]


def test_a_multi_frame_series_is_stored_with_its_key_frame(orthanc, tiny, capsys):  # noqa: F811
    """One enhanced-style file: the report names the key slice's frame, and the Secondary
    Capture takes its orientation from the functional groups."""
    from series_helpers import multi_frame_file

    study = generate_uid()
    data, heights = multi_frame_file(study_uid=study)
    stow(orthanc, [data])
    code, out, err = run(capsys, "dicomweb", "classify", *auth(orthanc), "--study", study,
                         "--store", "--compact")
    assert code == 0, err
    answer = json.loads(out)["series"][0]
    assert answer["series"]["slice_count"] == 4
    key_frame = heights.index(answer["slices"][answer["key_slice"]["index"]]["position"])
    ref = answer["stored"]["structured_report"]
    report = client_for(orthanc).retrieve_instance(study, ref["series_instance_uid"],
                                                   ref["sop_instance_uid"])
    images = [i for i in content_items(report) if i.ValueType == "IMAGE"]
    frames = {int(i.ReferencedSOPSequence[0].ReferencedFrameNumber) for i in images}
    assert frames == {key_frame + 1}  # DICOM counts frames from 1
    assert answer["stored"]["secondary_capture"] is not None
