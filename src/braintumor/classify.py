"""The use case: an upload's bytes in, the spec's prediction and visualisation out.

The API, the CLI and the batch jobs call :class:`Classifier`; none of them repeats the
steps. The JSON shapes are the spec's: percentages with two decimals that add up to
exactly 100, ``confidence`` equal to the top class's percentage, a ``timestamp`` in
ISO-8601 UTC ending in ``Z``.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from braintumor.config import Settings
from braintumor.decoding import DecodedImage, check_extension, decode_image
from braintumor.errors import ClassificationError
from braintumor.explain.render import Visualization, render
from braintumor.model.loaded import LoadedModel
from braintumor.preprocessing import preprocess


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

    def to_json(self) -> dict:
        return {
            "success": True,
            "prediction": self.prediction.to_json(),
            "visualization": {name: base64.b64encode(png).decode("ascii")
                              for name, png in self.pngs.items()},
            "processing_time_ms": round(self.processing_time_ms, 2),
            "timestamp": utc_timestamp(),
        }


class Classifier:
    """A loaded model plus the settings that shape its answers."""

    def __init__(self, model: LoadedModel, settings: Settings) -> None:
        self.model = model
        self.settings = settings
        self.class_names = settings.class_list

    def classify_upload(self, data: bytes, filename: str) -> ClassificationResult:
        """Check the name, decode in memory, classify and explain."""
        started = time.perf_counter()
        check_extension(filename)
        decoded = decode_image(data, max_pixels=self.settings.MAX_IMAGE_PIXELS)
        return self.classify_decoded(decoded, started)

    def classify_decoded(self, decoded: DecodedImage,
                         started: float | None = None) -> ClassificationResult:
        started = time.perf_counter() if started is None else started
        x = preprocess(decoded, self.model.input_spec)
        try:
            explanation = self.model.explain(x)
        except Exception as exc:  # TensorFlow errors are not ours to expose
            raise ClassificationError(f"Model inference failed ({type(exc).__name__})") from exc
        visualization = render(explanation.cam[0], decoded.rgb,
                               self.settings.VISUALIZATION_MAX_SIZE)
        pngs = visualization.png_bytes()
        return ClassificationResult(
            prediction=Prediction(self.class_names, explanation.probabilities[0]),
            visualization=visualization,
            pngs=pngs,
            processing_time_ms=(time.perf_counter() - started) * 1000.0,
        )
