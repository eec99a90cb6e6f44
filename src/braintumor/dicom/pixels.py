"""A DICOM frame's stored values -> display pixels: modality LUT, VOI (the file's LUT or
window, else the percentile fallback), MONOCHROME1 inverted, 8-bit grey; colour files
scaled to 8-bit RGB (:mod:`braintumor.dicom`, whose docstring gives the order)."""

from __future__ import annotations

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi,
    apply_voi_lut,
    convert_color_space,
)

from braintumor.errors import InvalidImageError
from braintumor.imaging import Window, percentile_window

#: Percentiles of the fallback window, for files that carry no window of their own.
FALLBACK_PERCENTILES: tuple[float, float] = (0.5, 99.5)

_PREFIX = "Image validation failed: "
_YBR_TO_RGB = ("YBR_FULL", "YBR_FULL_422")


def fail(reason: str) -> InvalidImageError:
    return InvalidImageError(_PREFIX + reason)


def _first(value: object) -> float:
    """The first of a multi-valued DS (several windows may be offered; the first is primary)."""
    if not isinstance(value, (int, float, str)):
        value = next(iter(value))  # type: ignore[call-overload]
    return float(value)  # type: ignore[arg-type]


def _voi(values: np.ndarray, ds: Dataset) -> tuple[np.ndarray, Window]:
    """Modality values -> [0, 1] through the file's VOI, or the percentile fallback."""
    lut_items = ds.get("VOILUTSequence")
    has_lut = bool(lut_items) and all(
        lut_items[0].get(k) is not None for k in ("LUTDescriptor", "LUTData"))
    has_window = ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None
    try:
        with np.errstate(all="ignore"):
            if has_lut:
                descriptor = lut_items[0].LUTDescriptor
                entries, first = int(descriptor[0]) or 2**16, int(descriptor[1])
                table = apply_voi(np.arange(first, first + entries, dtype=np.int64), ds)
                low, high = float(table.min()), float(table.max())
                shown = apply_voi_lut(np.rint(values).astype(np.int64), ds)
                window = Window(None, None, "voi_lut")
            elif has_window:
                # The ends of pydicom's output range: what "below" and "above" map to.
                low, high = (float(v) for v in apply_voi_lut(np.array([-1e300, 1e300]), ds))
                shown = apply_voi_lut(values, ds)
                window = Window(_first(ds.WindowCenter), _first(ds.WindowWidth), "file")
            else:
                raise LookupError("no VOI in the file")
            if not np.isfinite([low, high]).all() or high == low:
                raise ValueError("degenerate VOI")
            return (np.asarray(shown, dtype=np.float64) - low) / (high - low), window
    except Exception:  # absent, malformed or degenerate: the documented fallback
        pass
    window_values = percentile_window(values, FALLBACK_PERCENTILES)
    if window_values is None:
        raise fail("the DICOM image has no finite pixel values")
    low, high = window_values
    scale = 1.0 / (high - low) if high > low else 0.0
    window = Window(round((low + high) / 2, 3), round(high - low, 3), "fallback")
    return (np.nan_to_num(values, nan=low) - low) * scale, window


def grey_image(arr: np.ndarray, ds: Dataset, photometric: str) -> tuple[Image.Image, Window]:
    values = np.asarray(apply_modality_lut(arr, ds), dtype=np.float64)
    unit, window = _voi(values, ds)
    unit = np.clip(np.nan_to_num(unit, nan=0.0), 0.0, 1.0)
    if photometric == "MONOCHROME1":  # the minimum is white
        unit = 1.0 - unit
    return Image.fromarray(np.round(unit * 255.0).astype(np.uint8), mode="L"), window


def _to_8_bit(arr: np.ndarray, bits: int) -> np.ndarray:
    if arr.dtype == np.uint8 and bits == 8:
        return arr
    top = float(2**bits - 1)
    return np.round(np.clip(arr.astype(np.float64), 0, top) * (255.0 / top)).astype(np.uint8)


def colour_rgb(arr: np.ndarray, ds: Dataset, photometric: str) -> np.ndarray:
    """Colour pixels -> (rows, columns, 3) uint8 RGB."""
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)[..., :3]
        bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
        return _to_8_bit(rgb, 16 if bits > 8 else 8)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise fail(f"the DICOM colour image has {arr.shape[-1] if arr.ndim == 3 else 1} "
                    "samples per pixel, not 3")
    if photometric in _YBR_TO_RGB:  # normally already converted by the decoder
        arr = convert_color_space(arr, photometric, "RGB")
    elif photometric != "RGB":
        raise fail(f"the DICOM photometric interpretation {photometric} is not supported")
    return _to_8_bit(arr, int(ds.get("BitsStored") or ds.BitsAllocated))
