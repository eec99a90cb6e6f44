"""What both decoders produce: the decoded-image types and the colour-mode rules.

:mod:`braintumor.decoding` (Pillow's formats) and :mod:`braintumor.dicom` (pydicom) turn
bytes into the same grey/RGB pair. They share the types of that result and the rule that
reduces any colour mode to grey; keeping those here, below both, lets ``decoding`` send a
DICOM file to ``dicom`` without ``dicom`` reaching back up into ``decoding``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from braintumor.errors import InvalidImageError

#: The decoders' pixel limit (against decompression bombs) where a caller gives none: the
#: default of the MAX_IMAGE_PIXELS setting (braintumor.config), which the service passes.
DEFAULT_MAX_PIXELS = 64_000_000

_HIGH_DEPTH_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


@dataclass(frozen=True)
class Window:
    """The VOI window a grey DICOM frame was displayed with.

    ``source`` is ``file`` (the file's Window Center/Width), ``voi_lut`` (the file's VOI
    LUT Sequence; no center/width then) or ``fallback`` (the 0.5-99.5 percentile range
    of the frame's own values, after the modality LUT).
    """

    center: float | None
    width: float | None
    source: str

    def to_json(self) -> dict[str, Any]:
        return {"center": self.center, "width": self.width, "source": self.source}


def percentile_window(values: np.ndarray, percentiles: tuple[float, float]
                      ) -> tuple[float, float] | None:
    """(low, high) of the finite ``values`` at ``percentiles``, or their min and max when
    those coincide (a mostly flat picture); None when no value is finite.

    The window both decoders fall back on when a file states none (a DICOM without a VOI,
    a NIfTI volume), so that a few extreme values do not flatten the rest to black.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    low, high = (float(v) for v in np.percentile(finite, percentiles))
    if high <= low:
        low, high = float(finite.min()), float(finite.max())
    return low, high


@dataclass(frozen=True)
class DicomInfo:
    """Non-identifying facts about a decoded DICOM file: what the response may show.

    Only image-description tags are read; nothing here can name a patient, a place or a
    date. ``frame`` is the 0-based frame that was decoded; ``window`` is None for colour.
    """

    modality: str | None
    rows: int
    columns: int
    bits_stored: int | None
    photometric_interpretation: str
    number_of_frames: int
    frame: int
    window: Window | None
    transfer_syntax: str
    #: Body Part Examined as the file states it ("HEAD", "ABDOMEN"...), else None.
    body_part: str | None = None
    #: Pixel Spacing (row, column) in mm, from the frame's functional groups or the top
    #: level; None when the file states none that is usable. Not part of the ``dicom``
    #: block: it turns an outline's pixel area into mm² (``localization.area_mm2``).
    pixel_spacing: tuple[float, float] | None = None

    @property
    def is_mr(self) -> bool:
        return self.modality == "MR"

    @property
    def warning(self) -> str | None:
        """Why the model's answer may not mean much for this file, or None."""
        if self.is_mr:
            return None
        if self.modality is None:
            return "modality is not stated: this model was trained on MRI only"
        return f"modality {self.modality} is not MR: this model was trained on MRI only"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "modality": self.modality,
            "rows": self.rows,
            "columns": self.columns,
            "bits_stored": self.bits_stored,
            "photometric_interpretation": self.photometric_interpretation,
            "number_of_frames": self.number_of_frames,
            "frame": self.frame,
            "window": self.window.to_json() if self.window else None,
            "transfer_syntax": self.transfer_syntax,
            "body_part": self.body_part,
        }
        if self.warning:
            body["warning"] = self.warning
        return body


@dataclass(frozen=True)
class DecodedImage:
    """An upload after decoding: what the model sees and what a person is shown.

    ``grey`` is the canonical single-channel picture the model is fed (MRI is grayscale,
    and a file's colour mode must not reach the model); ``rgb`` is the same picture as the
    person uploaded it, upright and flattened onto black, for the visualisations.
    ``dicom`` holds the non-identifying facts of a DICOM file (modality, frame, window...)
    and is None for every other format.
    """

    grey: Image.Image
    rgb: Image.Image
    format: str
    dicom: DicomInfo | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.rgb.size


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """RGBA/LA/PA -> RGB over black: MRI background is black, so transparency reads as it."""
    rgba = image.convert("RGBA")
    black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return Image.alpha_composite(black, rgba).convert("RGB")


def _high_depth_to_grey(image: Image.Image) -> Image.Image:
    """16-bit or float pixels -> 8-bit, stretched over the image's own range.

    Pillow's own conversion clips everything above 255 to white, which turns a 12- or
    16-bit scan into a white silhouette.
    """
    pixels = np.asarray(image, dtype=np.float64)
    if pixels.ndim == 3:
        pixels = pixels[..., 0]
    finite = pixels[np.isfinite(pixels)]
    if finite.size == 0:
        raise InvalidImageError("Image validation failed: the image has no finite pixel values")
    low, high = float(finite.min()), float(finite.max())
    scale = 255.0 / (high - low) if high > low else 0.0
    grey = np.clip((np.nan_to_num(pixels, nan=low) - low) * scale, 0, 255)
    return Image.fromarray(np.round(grey).astype(np.uint8), mode="L")


def normalise_mode(image: Image.Image) -> tuple[Image.Image, Image.Image]:
    """Any Pillow mode -> (grey 'L', display 'RGB')."""
    mode = image.mode
    if mode in _HIGH_DEPTH_MODES:
        grey = _high_depth_to_grey(image)
        return grey, grey.convert("RGB")
    if mode == "P":
        has_alpha = "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgb = _flatten_alpha(image)
    elif mode in ("L", "1"):
        grey = image.convert("L")
        return grey, grey.convert("RGB")
    else:
        rgb = image.convert("RGB")
    return rgb.convert("L"), rgb
