"""Classify series where they live: QIDO-RS finds them, WADO-RS fetches them, the series
pipeline answers them, and STOW-RS stores the answer back into the same study (an SR, a
Secondary Capture and, when the model outlines the tumour on the key slice, a
Segmentation: :mod:`braintumor.dicomweb.results`).

A retrieved series goes through exactly what ``POST /api/classify-series`` does with
the same files (:func:`braintumor.series.series_from_parts`, then
:func:`braintumor.series.classify_series`). Its size is checked from the QIDO-RS instance
count before anything is retrieved.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from braintumor.classify import Classifier, utc_timestamp
from braintumor.dicomweb.client import DicomWebError, call, tag_value
from braintumor.dicomweb.results import (
    ModelIdentity,
    reference,
    secondary_capture,
    segmentation,
    structured_report,
)
from braintumor.errors import BrainTumorError, FileTooLargeError
from braintumor.series import classify_series, series_from_parts

if TYPE_CHECKING:
    from dicomweb_client.api import DICOMwebClient
    from pydicom.dataset import Dataset

    from braintumor.explain.localize import Localization

log = logging.getLogger(__name__)

MR = "MR"
_SERIES_UID = "0020000E"
_STUDY_UID = "0020000D"
_MODALITY = "00080060"
_INSTANCES = "00201209"  # Number of Series Related Instances


def model_identity(classifier: Classifier) -> ModelIdentity:
    meta = classifier.model.metadata
    return ModelIdentity(name=str(meta.architecture or Path(classifier.model.path).stem),
                         version=str(meta.version or "unversioned"))


def _to_part10(dataset: Dataset) -> bytes:
    """A retrieved dataset as Part 10 bytes, the form every upload path reads."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def mr_series(client: DICOMwebClient, url: str, study: str,
              series: str | None = None) -> list[dict]:
    """The study's MR series (QIDO-RS), or a :class:`DicomWebError` naming why none."""
    found = call("looking for the study", url, lambda: client.search_for_studies(
        search_filters={"StudyInstanceUID": study}, fields=["StudyInstanceUID"]))
    if not found:
        raise DicomWebError(f"the study was not found on the DICOMweb server at {url}")
    listed = call("listing the study's series", url, lambda: client.search_for_series(
        study_instance_uid=study, fields=["Modality", "NumberOfSeriesRelatedInstances"],
        get_remaining=True))
    if series is not None:
        listed = [item for item in listed if tag_value(item, _SERIES_UID) == series]
        if not listed:
            raise DicomWebError("the series was not found in the study")
    chosen = [item for item in listed if tag_value(item, _MODALITY) == MR]
    if not chosen:
        raise DicomWebError("the series is not MR" if series is not None
                            else "the study has no MR series")
    return chosen


def classify_one(client: DICOMwebClient, url: str, classifier: Classifier, study: str, series: str,
                 instances: int | None, store: bool) -> dict[str, Any]:
    """Retrieve, classify and (``store``) write back one series; the answer as JSON."""
    settings = classifier.settings
    started = time.perf_counter()
    if instances is not None and instances > settings.MAX_SERIES_SLICES:
        raise FileTooLargeError(f"The series has {instances} instances; the limit is "
                                f"{settings.MAX_SERIES_SLICES} (MAX_SERIES_SLICES)")
    datasets = call("retrieving the series", url,
                    lambda: client.retrieve_series(study_instance_uid=study,
                                                   series_instance_uid=series))
    by_uid = {str(ds.SOPInstanceUID): ds for ds in datasets if "SOPInstanceUID" in ds}
    parts = [("", _to_part10(ds)) for ds in datasets]
    volume = series_from_parts(parts, settings)
    del parts
    result = classify_series(classifier, volume, started)
    body: dict[str, Any] = {"series_instance_uid": series, **result.to_json()}
    if store:
        key = volume.slices[result.summary.key_index]
        source = by_uid.get(key.sop_instance_uid or "")
        if source is None:
            raise DicomWebError("the key slice could not be matched to a retrieved instance")
        body["stored"] = store_results(client, url, study, source, body, result.pngs,
                                       model_identity(classifier), key.frame,
                                       result.localization)
    return body


def store_results(client: DICOMwebClient, url: str, study: str, source: Dataset, body: dict,
                  pngs: dict[str, bytes], model: ModelIdentity, frame: int | None = None,
                  localization: Localization | None = None) -> dict[str, Any]:
    """STOW-RS the SR, the Secondary Capture and, when ``localization`` (the key slice's,
    from a model with a segmentation output) found an outline, its Segmentation into
    ``study``, each as a new series; ``frame`` is the key slice's frame when the series is
    one multi-frame file."""
    from pydicom.uid import generate_uid

    source = reference(source)
    sr_series, sr_uid = generate_uid(), generate_uid()
    report = structured_report(source, body["summary"], body["summary"]["key_slice"], model,
                               sr_series, sr_uid, frame)
    instances: list[Dataset] = [report]
    stored: dict[str, Any] = {"structured_report": {"series_instance_uid": sr_series,
                                                    "sop_instance_uid": sr_uid}}
    sc_series, sc_uid = generate_uid(), generate_uid()
    capture = secondary_capture(source, pngs["heatmap_overlay"], model, sc_series, sc_uid,
                                frame)
    if capture is not None:
        instances.append(capture)
        stored["secondary_capture"] = {"series_instance_uid": sc_series,
                                       "sop_instance_uid": sc_uid}
    else:
        stored["secondary_capture"] = None
    seg_series, seg_uid = generate_uid(), generate_uid()
    outline = None
    if localization is not None:  # None also for an empty outline or an unplaced slice
        try:
            outline = segmentation(source, localization.mask, model, seg_series, seg_uid, frame)
        except (ValueError, AttributeError, TypeError) as exc:
            # a source highdicom cannot derive a Segmentation from must not cost the SR;
            # only the error's type is logged (highdicom's messages may quote values)
            log.warning("the key slice's outline was not written as a DICOM Segmentation "
                        "(%s); the other results are stored", type(exc).__name__)
    if outline is not None:
        instances.append(outline)
        stored["segmentation"] = {"series_instance_uid": seg_series, "sop_instance_uid": seg_uid}
    else:
        stored["segmentation"] = None
    call("storing the results", url,
         lambda: client.store_instances(instances, study_instance_uid=study))
    return stored


def classify_study(client: DICOMwebClient, url: str, classifier: Classifier, study: str,
                   series: str | None = None, store: bool = False) -> dict[str, Any]:
    """Every MR series of ``study`` (or the one named), classified; the JSON printed."""
    chosen = mr_series(client, url, study, series)
    results = []
    for item in chosen:
        uid = str(tag_value(item, _SERIES_UID))
        count = tag_value(item, _INSTANCES)
        results.append(_guarded(functools.partial(
            classify_one, client, url, classifier, study, uid,
            int(count) if count is not None else None, store), uid))
    return {"success": True, "series": results, "timestamp": utc_timestamp()}


def _guarded(run: Callable[[], dict], uid: str) -> dict[str, Any]:
    """One series' answer, or its error in the API's shape: one bad series of a study
    does not hide the others' answers. Connection and credential failures still stop."""
    try:
        return run()
    except DicomWebError:
        raise
    except BrainTumorError as exc:
        return {"series_instance_uid": uid, "success": False,
                "error": {"message": exc.message, "code": exc.code, "status": exc.status}}


# ---- watch: poll for new MR series, classify each once -----------------------------------

#: The wait between polls (a name of its own, so a test can end the loop).
_pause = time.sleep


def _load_state(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {"done": {}, "seen": {}}
    try:
        state = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        raise DicomWebError(f"the state file {path} is not readable JSON") from None
    state.setdefault("done", {})
    state.setdefault("seen", {})
    return state


def _save_state(path: Path, state: dict[str, Any]) -> None:
    """Write-then-rename, so an interrupted write never loses what was done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(state, indent=1))
    os.replace(temporary, path)


def poll_once(client: DICOMwebClient, url: str, classifier: Classifier, state_path: Path,
              store: bool, settle: bool = True,
              emit: Callable[[dict], None] | None = None) -> int:
    """One poll: classify the MR series not done yet; returns how many were classified.

    With ``settle`` a series is taken only once its instance count is the same as at the
    previous poll, so a series still arriving is not classified half-received.
    """
    state = _load_state(state_path)
    listed = call("listing MR series", url, lambda: client.search_for_series(
        search_filters={"Modality": MR},
        fields=["StudyInstanceUID", "NumberOfSeriesRelatedInstances"], get_remaining=True))
    done = 0
    for item in listed:
        uid, study = tag_value(item, _SERIES_UID), tag_value(item, _STUDY_UID)
        if not uid or not study or uid in state["done"]:
            continue
        count = tag_value(item, _INSTANCES)
        previous = state["seen"].get(uid)
        state["seen"][uid] = count
        if settle and previous != count:
            continue  # new or still growing: look again next poll
        answer = _guarded(functools.partial(
            classify_one, client, url, classifier, study, uid,
            int(count) if count is not None else None, store), uid)
        summary = answer.get("summary") or {}
        state["done"][uid] = {"at": utc_timestamp(), "success": answer["success"],
                              "class": summary.get("class"),
                              "error": (answer.get("error") or {}).get("code")}
        state["seen"].pop(uid, None)
        _save_state(state_path, state)
        done += 1
        log.info("watch: classified a series of %s instances: %s", count,
                 summary.get("class") or (answer.get("error") or {}).get("code"))
        if emit is not None:
            emit(answer)
    _save_state(state_path, state)
    return done


def watch(client: DICOMwebClient, url: str, classifier: Classifier, state_path: Path, store: bool,
          interval: float, once: bool, settle: bool = True,
          emit: Callable[[dict], None] | None = None) -> int:
    """Poll every ``interval`` seconds (or once); returns the series classified.

    Unattended, a server that is down or refuses for a while must not end the watch: the
    failure is logged (one line, our own words) and the next poll tries again. With
    ``once`` it is raised, as ``classify`` does.
    """
    total = 0
    while True:
        try:
            total += poll_once(client, url, classifier, state_path, store, settle, emit)
        except DicomWebError as exc:
            if once:
                raise
            log.warning("watch: %s; polling again in %.0f s", exc.message, interval)
        if once:
            return total
        _pause(interval)
