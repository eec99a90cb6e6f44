"""Cheap checks on the decoded image, before any model is asked.

Why: a few kinds of input are recognisably not a brain MRI from their pixels alone, and
refusing them needs no model and no statistics, so these checks protect every model,
including a user's bare one. Each check is deliberately tolerant: its threshold sits far
outside what the 5,708 Training scans show (measured values in the comments), because
refusing a real scan is worse than letting a strange picture reach the feature-distance
check, which catches most of what these let through.

* blank: a near-uniform picture (black, white, grey, an empty upload) has no anatomy.
  Grey-level standard deviation, on at most 128 x 128 pixels sampled without averaging
  (so a large noise picture keeps its spread); Training: 20.7 at the least.
* colour: MRI is grayscale. The dataset's JPEGs are often RGB, but with channels equal to
  within JPEG noise, so the measure is the mean chroma (max - min channel, 0-255) of the
  pixels that are not background, on a 64-pixel thumbnail; small coloured annotations
  barely move it. Training: 5.9 at the most; colour photographs: 37-144 (a faintly
  tinted astronomy picture: 12, let through to the distances).
* structure: neighbouring pixels of a scan are strongly correlated, those of noise are not.
  The smaller of the horizontal and vertical lag-one autocorrelations of the grey picture
  box-averaged to about 112 pixels (whole blocks, so noise stays uncorrelated whatever its
  size, while a large scan's own noise is averaged away); Training: 0.44 at the least
  (0.53 for 99.9% of it); white noise: within 0.05 of 0; textures such as grass: 0.37-0.49.
* aspect ratio: a slice is roughly square; a strip three times longer than it is wide is
  a banner, a screenshot or a text line. Training is all 224x224, so the limit (3:1) is a
  judgement, not a measurement, and leaves 2:1 pictures alone.
* modality: a DICOM file says what it is (``decoded.dicom.modality``); a modality other
  than MR is refused. An image that is not DICOM, or a file that states none, is not
  checked.
* body part: a DICOM file may say what was scanned (Body Part Examined); an MR of the
  abdomen, a knee or the spine is an MR and passes every other input check, so a stated
  body part that is not the head or brain is refused. Files that state none are left to
  the distances.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

#: Grey-level standard deviation below which an image counts as blank.
BLANK_STD = 8.0
#: Mean chroma of the non-background pixels above which an image counts as coloured.
COLOUR_CHROMA = 16.0
#: A pixel whose brightest channel is at most this is background for the colour measure.
BACKGROUND_LEVEL = 24
#: Lag-one autocorrelation below which an image counts as noise.
MIN_AUTOCORRELATION = 0.25
#: Side (about) of the box-averaged picture the autocorrelation is measured on.
STRUCTURE_SIDE = 112
#: Longest side of the subsample the grey-level spread is measured on.
SPREAD_SIDE = 128
#: Longest side over shortest side above which an image counts as not a slice.
MAX_ASPECT_RATIO = 3.0
#: Side of the thumbnail the colour measure is taken on.
THUMBNAIL = 64


@dataclass(frozen=True)
class InputMeasures:
    """The measured values the checks compare with their limits (also for reports)."""

    std: float
    chroma: float
    autocorrelation: float
    aspect_ratio: float
    modality: str | None
    body_part: str | None = None

    def failures(self) -> dict[str, str]:
        """{check name: sentence} for each check that fails, in the order above."""
        found: dict[str, str] = {}
        if self.std < BLANK_STD:
            found["blank"] = (f"the image is blank or nearly uniform (grey-level spread "
                              f"{self.std:.1f}, a scan has at least {BLANK_STD:g})")
        if self.chroma > COLOUR_CHROMA:
            found["colour"] = (f"the image is in colour (mean chroma {self.chroma:.0f} of 255); "
                               "MRI slices are grayscale")
        if self.std >= BLANK_STD and self.autocorrelation < MIN_AUTOCORRELATION:
            found["structure"] = (f"the image has no spatial structure, like noise (neighbour "
                                  f"correlation {self.autocorrelation:.2f}, a scan has at least "
                                  f"{MIN_AUTOCORRELATION:g})")
        if self.aspect_ratio > MAX_ASPECT_RATIO:
            found["aspect"] = (f"the image is {self.aspect_ratio:.1f} times longer than it is "
                               "wide; an MRI slice is roughly square")
        if self.modality and self.modality.upper() != "MR":
            found["modality"] = f"the DICOM file is a {self.modality} image, not MR"
        if self.body_part and not is_head(self.body_part):
            found["body_part"] = (f"the DICOM file says it shows the {self.body_part.lower()}"
                                  ", not the head")
        return found

    def reasons(self) -> list[str]:
        """One sentence for each check that fails; empty when all pass."""
        return list(self.failures().values())

    def to_json(self) -> dict[str, object]:
        return {"std": round(self.std, 3), "chroma": round(self.chroma, 3),
                "autocorrelation": round(self.autocorrelation, 4),
                "aspect_ratio": round(self.aspect_ratio, 3), "modality": self.modality,
                "body_part": self.body_part}


def chroma(rgb: Image.Image) -> float:
    """Mean (max - min channel) over the non-background pixels of a ~64-pixel thumbnail.

    The thumbnail is a box average over whole blocks (``Image.reduce``), the cheapest
    resampling Pillow has; averaging also damps JPEG's chroma noise.
    """
    factor = max(1, max(rgb.size) // THUMBNAIL)
    small = rgb.reduce(factor) if factor > 1 else rgb
    pixels = np.asarray(small if small.mode == "RGB" else small.convert("RGB"))
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    high = np.maximum(np.maximum(red, green), blue)  # element-wise: far faster than max(-1)
    spread = high - np.minimum(np.minimum(red, green), blue)  # uint8, max >= min
    foreground = high > BACKGROUND_LEVEL
    count = int(np.count_nonzero(foreground))
    return float(spread[foreground].sum()) / count if count else 0.0


def autocorrelation(pixels: np.ndarray) -> float:
    """The smaller of the horizontal and vertical lag-one autocorrelations (1 for a flat image)."""
    p = np.asarray(pixels, dtype=np.float32)
    centred = p - p.mean()
    variance = float((centred**2).mean())
    if variance <= 1e-6:
        return 1.0
    horizontal = float((centred[:, 1:] * centred[:, :-1]).mean()) / variance
    vertical = float((centred[1:, :] * centred[:-1, :]).mean()) / variance
    return min(horizontal, vertical)


#: Words of DICOM Body Part Examined values that name the head or the brain
#: (HEAD, BRAIN, SKULL, HEADNECK, CEREBRUM, ... and their local spellings).
HEAD_PARTS = ("HEAD", "BRAIN", "SKULL", "CEREB", "CRANI", "NEURO", "PITUIT", "SELLA")


def is_head(body_part: str) -> bool:
    """Does a Body Part Examined value name the head or the brain?"""
    value = body_part.upper()
    return any(word in value for word in HEAD_PARTS)


def dicom_body_part(decoded: object) -> str | None:
    """The DICOM Body Part Examined of a decoded DICOM file, else None."""
    part = getattr(getattr(decoded, "dicom", None), "body_part", None)
    return str(part).strip() or None if part else None


def dicom_modality(decoded: object) -> str | None:
    """The DICOM Modality (``"MR"``, ``"CT"``...) of a decoded DICOM file, else None."""
    dicom = getattr(decoded, "dicom", None)  # braintumor.decoding.DecodedImage.dicom
    modality = getattr(dicom, "modality", None)
    return str(modality).strip() or None if modality else None


def grey_spread(grey: Image.Image) -> float:
    """Grey-level standard deviation of at most 128 x 128 pixels picked without averaging."""
    width, height = grey.size
    if max(width, height) > SPREAD_SIDE:
        grey = grey.resize((min(width, SPREAD_SIDE), min(height, SPREAD_SIDE)),
                           Image.Resampling.NEAREST)
    return float(np.asarray(grey, dtype=np.float32).std())


def structure(grey: Image.Image) -> float:
    """:func:`autocorrelation` of the grey picture averaged over whole blocks to ~112 pixels."""
    factor = max(1, min(grey.size) // STRUCTURE_SIDE)
    small = grey.reduce(factor) if factor > 1 else grey
    return autocorrelation(np.asarray(small))


def measure(decoded: object) -> InputMeasures:
    """Measure a decoded image: its ``grey`` and ``rgb`` pictures and its ``size``."""
    width, height = decoded.size  # type: ignore[attr-defined]
    grey = decoded.grey  # type: ignore[attr-defined]
    return InputMeasures(
        std=grey_spread(grey),
        chroma=chroma(decoded.rgb),  # type: ignore[attr-defined]
        autocorrelation=structure(grey),
        aspect_ratio=max(width, height) / max(min(width, height), 1),
        modality=dicom_modality(decoded),
        body_part=dicom_body_part(decoded),
    )


def input_reasons(decoded: object) -> list[str]:
    """Why the image is not a brain MRI by its pixels alone; empty when every check passes."""
    return measure(decoded).reasons()
