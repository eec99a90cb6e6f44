"""Where the tumour is: a model's outline, back in the upload's pixels, as the API shows it.

A model with a segmentation output (``ModelMetadata.segmentation_layer``) gives, in the
same pass as its answer, the tumour outline as probabilities in its own input space. The
outline goes back onto the upload through the inverse of the framing that made the
model's input (:func:`braintumor.preprocessing.to_picture`, the one the heatmap is drawn
through), bilinear, and is then cut at :data:`OUTLINE_THRESHOLD`. The ``localization``
block of the answer gives its bounding box in upload pixels, its area in pixels and, when
the pixel spacing is known (a DICOM file's Pixel Spacing), in mm², and the mask itself as
a PNG of the upload's size (0 outside, 255 inside). An empty outline (a healthy slice)
says so: ``found`` false, no box, area 0.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from braintumor.explain.render import encode_png
from braintumor.preprocessing import Frame, to_picture

#: An upload pixel belongs to the outline when its probability is above this.
OUTLINE_THRESHOLD = 0.5


@dataclass(frozen=True)
class Localization:
    """The outline of one upload in its own pixels, and what the answer says about it."""

    mask: np.ndarray  # bool (height, width), the upload's pixels
    #: (row, column) spacing in mm of the upload's pixels; None when not known.
    pixel_spacing: tuple[float, float] | None = None

    @property
    def found(self) -> bool:
        return bool(self.mask.any())

    @property
    def area_px(self) -> int:
        return int(np.count_nonzero(self.mask))

    @property
    def area_mm2(self) -> float | None:
        if self.pixel_spacing is None:
            return None
        row, column = self.pixel_spacing
        return round(self.area_px * row * column, 2)

    def box(self) -> dict[str, int] | None:
        """{x, y, width, height} of the outline in upload pixels; None when empty."""
        if not self.found:
            return None
        rows = np.flatnonzero(self.mask.any(axis=1))
        columns = np.flatnonzero(self.mask.any(axis=0))
        top, left = int(rows[0]), int(columns[0])
        return {"x": left, "y": top, "width": int(columns[-1]) - left + 1,
                "height": int(rows[-1]) - top + 1}

    def mask_png(self) -> bytes:
        """The mask as an 8-bit grey PNG of the upload's size: 0 outside, 255 inside."""
        return encode_png(Image.fromarray(self.mask.astype(np.uint8) * 255, mode="L"))

    def to_json(self) -> dict[str, Any]:
        return {
            "found": self.found,
            "box": self.box(),
            "area_px": self.area_px,
            "area_mm2": self.area_mm2,
            "mask_png": base64.b64encode(self.mask_png()).decode("ascii"),
        }


def localize(outline: np.ndarray, frame: Frame,
             pixel_spacing: tuple[float, float] | None = None) -> Localization:
    """A model-space outline (h, w) of probabilities -> its :class:`Localization` in the
    pixels of the upload ``frame`` was taken from."""
    height, width = frame.shape
    upload = to_picture(np.asarray(outline, dtype=np.float32), frame, (width, height))
    return Localization(upload > OUTLINE_THRESHOLD, pixel_spacing)
