"""The use case: an upload's bytes in, the spec's prediction and visualisation out.

The API, the CLI and the batch jobs call :class:`Classifier`; none of them repeats the
steps. The JSON shapes are the spec's: percentages with two decimals that add up to
exactly 100, ``confidence`` equal to the top class's percentage, a ``timestamp`` in
ISO-8601 UTC ending in ``Z``.

Every answer also carries the not-a-brain-MRI decision (``ood``, see
:mod:`braintumor.ood`). With OOD_POLICY=reject a flagged image raises
:class:`~braintumor.errors.NotBrainMRIError` instead of being diagnosed; the input checks
run before the model, so a blank or coloured picture costs no inference at all.

The Grad-CAM map, and the tumour outline of a model with a segmentation output (the
optional ``localization`` block, :mod:`braintumor.explain.localize`), are drawn back onto
the upload through the framing its model input was made with (:meth:`Classifier.explained`).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from braintumor.config import Settings
from braintumor.decoding import DecodedImage, check_extension, decode_image
from braintumor.errors import ClassificationError, NotBrainMRIError
from braintumor.explain.localize import Localization, localize
from braintumor.explain.render import Visualization, render
from braintumor.imaging import DicomInfo
from braintumor.model.runtime import ServingModel
from braintumor.ood.detector import OodDecision, OodDetector
from braintumor.preprocessing import (
    Frame,
    InputSpec,
    canonical_pixels,
    framed_pixels,
    to_model_input,
)


def utc_timestamp(moment: datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and a trailing Z, as the spec's examples show."""
    moment = moment or datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def percentages(probabilities: np.ndarray, decimals: int = 2) -> list[float]:
    """Probabilities -> percentages rounded so that they add up to exactly 100.

    Largest-remainder rounding: plain rounding of four numbers can give 99.99 or 100.01,
    which a client checking the sum would reject.
    """
    unit = 10**decimals
    scaled = np.asarray(probabilities, dtype=np.float64) * 100.0 * unit
    total = 100 * unit
    scaled = scaled * (total / scaled.sum()) if scaled.sum() > 0 else np.full_like(
        scaled, total / len(scaled))
    floors = np.floor(scaled).astype(np.int64)
    shortfall = int(total - floors.sum())
    order = np.argsort(-(scaled - floors), kind="stable")
    floors[order[:shortfall]] += 1
    return [round(int(v) / unit, decimals) for v in floors]


@dataclass
class Prediction:
    class_names: list[str]
    probabilities: np.ndarray  # calibrated, (classes,)

    @property
    def class_id(self) -> int:
        return int(np.argmax(self.probabilities))

    def to_json(self) -> dict:
        pct = percentages(self.probabilities)
        return {
            "class": self.class_names[self.class_id],
            "class_id": self.class_id,
            "confidence": pct[self.class_id],
            "probabilities": dict(zip(self.class_names, pct, strict=True)),
        }


@dataclass
class ClassificationResult:
    prediction: Prediction
    visualization: Visualization
    #: The three pictures encoded as PNG once, so the timing includes the encoding.
    pngs: dict[str, bytes]
    processing_time_ms: float
    #: Non-identifying facts of a DICOM upload; None (and no "dicom" key) otherwise.
    dicom: DicomInfo | None = None
    #: The not-a-brain-MRI decision; the Classifier always sets it.
    ood: OodDecision | None = None
    #: Where the tumour is, for a model with a segmentation output; None (and no
    #: "localization" key) otherwise.
    localization: Localization | None = None

    def to_json(self) -> dict:
        body = {
            "success": True,
            "prediction": self.prediction.to_json(),
            "visualization": {name: base64.b64encode(png).decode("ascii")
                              for name, png in self.pngs.items()},
            "processing_time_ms": round(self.processing_time_ms, 2),
            "timestamp": utc_timestamp(),
        }
        if self.ood is not None:
            body["ood"] = self.ood.to_json()
        if self.dicom is not None:
            body["dicom"] = self.dicom.to_json()
        if self.localization is not None:
            body["localization"] = self.localization.to_json()
        return body


@dataclass(frozen=True)
class Assessment:
    """One image after the not-a-brain-MRI checks and, unless they refused it, the model.

    Besides the decision it keeps what evaluation and benchmarks measure: each rule's own
    result (``checks``, ``scores``) and where the time went (``seconds``), so that they
    call the served chain instead of composing their own copy of it.
    """

    #: The not-a-brain-MRI decision; None when the model pass failed (see ``error``).
    ood: OodDecision | None
    #: True when the policy refuses the image (OOD_POLICY=reject and flagged): no diagnosis.
    refused: bool = False
    #: Calibrated probabilities; None when the image never reached the model.
    probabilities: np.ndarray | None = None
    #: Grad-CAM map at the feature map's resolution, when the batch was explained.
    cam: np.ndarray | None = None
    #: How the picture was fitted to the model's input: what its maps are drawn back
    #: through (:func:`braintumor.preprocessing.to_picture`); None when it never was.
    frame: Frame | None = None
    #: The tumour outline's probabilities in the model's input space (float16, to keep a
    #: series' slices small), when the batch was explained by a segmenting model.
    outline: np.ndarray | None = None
    #: Why the model could not answer (its batch failed); raise it or report it.
    error: ClassificationError | None = None
    #: The input checks that failed, {check: reason} (empty when all pass or OOD is off).
    checks: dict[str, str] = field(default_factory=dict)
    #: Each fitted distance over its validation scale, {"features": .., "layout": ..};
    #: empty without statistics, with OOD off, or when the model was not asked.
    scores: dict[str, float] = field(default_factory=dict)
    #: Seconds spent on this image: "checks" its own input checks; "model" and
    #: "distances" its share of the batch's model pass and distances.
    seconds: dict[str, float] = field(default_factory=dict)


def not_brain_mri(decision: OodDecision) -> NotBrainMRIError:
    """The error a refused image raises: what was found, and that no diagnosis was made."""
    return NotBrainMRIError(
        "This image does not look like a brain MRI, so it was not classified: "
        f"{decision.sentence()}. Please upload a grayscale brain MRI slice.")


def _failed(step: str, exc: Exception) -> ClassificationError:
    """The error of one image whose checks or preprocessing raised (the cause kept for
    the log, only its type in the message)."""
    error = ClassificationError(f"{step} failed ({type(exc).__name__})")
    error.__cause__ = exc
    return error


def layout_pixels(decoded: list[DecodedImage], model_pixels: np.ndarray,
                  spec: InputSpec) -> np.ndarray:
    """The pixels the layout distance reads: the whole picture, stretched.

    A model that frames the head (``InputSpec.framing``) crops the very border and
    background that tell a scan's layout from a photograph's, so the layout is taken
    from the stretched picture whatever the model sees; for a stretching model those
    are its own pixels.
    """
    if spec.framing == "stretch":
        return model_pixels
    return np.stack([canonical_pixels(image, spec.size, "stretch") for image in decoded])


#: One image's input checks: (failed checks {check: reason}, seconds, the error they
#: raised or None).
Checked = tuple[dict[str, str], float, ClassificationError | None]


class Classifier:
    """A loaded model plus the settings that shape its answers.

    ``ood`` replaces the detector the settings describe (the evaluation measures every
    image under OOD_POLICY=warn whatever the service's policy is).
    """

    def __init__(self, model: ServingModel, settings: Settings,
                 ood: OodDetector | None = None) -> None:
        self.model = model
        self.settings = settings
        self.class_names = settings.class_list
        self.ood = ood or OodDetector.for_model(model, settings.OOD_POLICY,
                                                settings.OOD_THRESHOLD)

    def classify_upload(self, data: bytes, filename: str,
                        frame: int | None = None) -> ClassificationResult:
        """Check the name, decode in memory, classify and explain.

        ``frame`` picks a frame of a multi-frame DICOM (0-based; the middle one if None).
        """
        started = time.perf_counter()
        check_extension(filename)
        decoded = decode_image(data, max_pixels=self.settings.MAX_IMAGE_PIXELS, frame=frame)
        return self.classify_decoded(decoded, started)

    def assess(self, decoded: list[DecodedImage], explain: bool = True) -> list[Assessment]:
        """The checks and one model pass for a batch of decoded images, in their order.

        The one place the chain decoded image -> input checks -> canonical pixels -> model
        -> OOD decision is composed, each step once for the whole batch; the API, the CLI,
        the Spark jobs, the evaluation and the benchmarks all call it. The input checks
        run first, so under OOD_POLICY=reject a blank or coloured picture costs no
        inference; the rest go through the model together (``explain``: with Grad-CAM
        maps) and get the full decision. A failing step does not raise: the image (or,
        for the model pass, every image of the batch) carries a
        :class:`ClassificationError`.
        """
        assessed: list[Assessment | None] = [None] * len(decoded)
        checked = [self._input_checks(image) for image in decoded]
        ready = []
        for i, (failures, seconds, error) in enumerate(checked):
            if error is not None:
                assessed[i] = Assessment(None, error=error)
            elif failures and self.ood.rejects:  # refused without asking the model
                assessed[i] = Assessment(
                    self.ood.refused_before_model(list(failures.values())), refused=True,
                    checks=failures, seconds={"checks": seconds})
            else:
                ready.append(i)
        started = time.perf_counter()
        framed = self._framed(decoded, ready, checked, assessed)
        if framed:
            self._model_and_decision(decoded, framed, checked, explain, assessed, started)
        return assessed  # type: ignore[return-value]

    def _input_checks(self, image: DecodedImage) -> Checked:
        """(failed checks, seconds, error): the not-a-brain-MRI input checks of one image."""
        started = time.perf_counter()
        try:
            failures, error = self.ood.input_failures(image), None
        except Exception as exc:  # one odd picture must not fail its whole batch
            failures, error = {}, _failed("The input checks", exc)
        return failures, time.perf_counter() - started, error

    def _framed(self, decoded: list[DecodedImage], ready: list[int], checked: list[Checked],
                assessed: list[Assessment | None]) -> dict[int, tuple[np.ndarray, Frame]]:
        """{index: (canonical pixels, frame)} of the images ``ready`` for the model."""
        spec = self.model.input_spec
        framed = {}
        for i in ready:
            try:
                pixels, frame = framed_pixels(decoded[i], spec.size, spec.framing)
                if pixels.shape != tuple(spec.size):
                    raise ValueError(f"pixels of shape {pixels.shape}, not {spec.size}")
                framed[i] = pixels, frame
            except Exception as exc:  # one odd picture must not fail its whole batch
                assessed[i] = Assessment(None, error=_failed("Preprocessing", exc),
                                         checks=checked[i][0])
        return framed

    def _model_and_decision(self, decoded: list[DecodedImage],
                            framed: dict[int, tuple[np.ndarray, Frame]],
                            checked: list[Checked],
                            explain: bool, assessed: list[Assessment | None],
                            started: float) -> None:
        """One model pass over the framed images, their distances and their decisions."""
        spec = self.model.input_spec
        ready = list(framed)
        pixels = np.stack([framed[i][0] for i in ready])
        x = to_model_input(pixels, spec)
        cams = outlines = None
        try:
            if explain:
                explanation = self.model.explain(x)
                probs, cams = explanation.probabilities, explanation.cam
                features, outlines = explanation.features, explanation.outline
            else:
                answer = self.model.outputs(x)
                probs, features = answer.probabilities, answer.features
        except Exception as exc:  # TensorFlow errors are not ours to expose
            error = ClassificationError(f"Model inference failed ({type(exc).__name__})")
            error.__cause__ = exc
            for i in ready:
                assessed[i] = Assessment(None, error=error, checks=checked[i][0])
            return
        model_seconds = (time.perf_counter() - started) / len(ready)
        started = time.perf_counter()
        parts = (self.ood.component_scores(features, layout_pixels(
            [decoded[i] for i in ready], pixels, spec)) if self.ood.enabled else {})
        distance_seconds = (time.perf_counter() - started) / len(ready)
        decisions = self.ood.decide_batch([list(checked[i][0].values()) for i in ready],
                                          probs, parts=parts)
        for j, (i, decision) in enumerate(zip(ready, decisions, strict=True)):
            assessed[i] = Assessment(
                decision, decision.flagged and self.ood.rejects, probs[j],
                None if cams is None else cams[j], frame=framed[i][1],
                outline=None if outlines is None else outlines[j].astype(np.float16),
                checks=checked[i][0],
                scores={name: float(values[j]) for name, values in parts.items()},
                seconds={"checks": checked[i][1], "model": model_seconds,
                         "distances": distance_seconds})

    def classify_decoded(self, decoded: DecodedImage,
                         started: float | None = None) -> ClassificationResult:
        started = time.perf_counter() if started is None else started
        assessment = self.assess([decoded])[0]
        if assessment.error is not None:
            raise assessment.error
        ood, probabilities, cam = assessment.ood, assessment.probabilities, assessment.cam
        if assessment.refused and ood is not None:
            raise not_brain_mri(ood)
        if probabilities is None or cam is None:  # an explained pass gives both, or fails
            raise ClassificationError("Model inference failed (no answer)")
        visualization, localization = self.explained(assessment, decoded)
        pngs = visualization.png_bytes()
        return ClassificationResult(
            prediction=Prediction(self.class_names, probabilities),
            visualization=visualization,
            pngs=pngs,
            processing_time_ms=(time.perf_counter() - started) * 1000.0,
            dicom=decoded.dicom,
            ood=assessment.ood,
            localization=localization,
        )

    def explained(self, assessment: Assessment, decoded: DecodedImage
                  ) -> tuple[Visualization, Localization | None]:
        """The three pictures of an explained assessment and, for a segmenting model, the
        outline in the upload's pixels: both drawn back through the framing the model's
        input was made with. ``decoded`` is the picture that was assessed (a series' key
        slice may be decoded again for it)."""
        if assessment.cam is None:
            raise ClassificationError("Model inference failed (no Grad-CAM map)")
        visualization = render(assessment.cam, decoded.rgb,
                               self.settings.VISUALIZATION_MAX_SIZE, assessment.frame)
        localization = None
        if assessment.outline is not None and assessment.frame is not None:
            spacing = decoded.dicom.pixel_spacing if decoded.dicom is not None else None
            localization = localize(assessment.outline, assessment.frame, spacing)
        return visualization, localization
