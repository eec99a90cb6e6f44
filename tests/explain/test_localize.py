"""The tumour outline in the upload's pixels: box, areas, mask PNG, through the framing."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from braintumor.explain.localize import OUTLINE_THRESHOLD, localize
from braintumor.preprocessing import HeadFrame, StretchFrame
from seg_helpers import clean_scan, pasted


def _square_outline(size: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    outline = np.zeros((size, size), np.float32)
    outline[y0:y1, x0:x1] = 1.0
    return outline


def test_an_outline_in_the_head_square_lands_in_the_head_box_of_the_upload():
    """The model sees the head box padded to a square; an outline over the square's
    centre quarter is the centre of the head's square in the upload, wherever the head
    sits in the picture."""
    picture = pasted(clean_scan(), (500, 360), (220, 90))
    frame = HeadFrame.of(np.asarray(picture))
    outline = _square_outline(64, 16, 48, 16, 48)  # the centre half, each way
    found = localize(outline, frame)
    top, bottom, left, right = frame.box
    box = found.box()
    assert found.found and box is not None
    centre = (top + bottom) / 2, (left + right) / 2
    assert abs(box["y"] + box["height"] / 2 - centre[0]) <= 1.5
    assert abs(box["x"] + box["width"] / 2 - centre[1]) <= 1.5
    assert abs(box["width"] - frame.side / 2) <= 2 and abs(box["height"] - frame.side / 2) <= 2
    assert found.area_px == int(found.mask.sum()) and found.area_mm2 is None
    assert found.mask.shape == (360, 500)
    assert not found.mask[:top].any() and not found.mask[:, :left].any()


def test_the_outline_never_leaves_the_head_box():
    picture = pasted(clean_scan(), (480, 400), (30, 150))
    frame = HeadFrame.of(np.asarray(picture))
    found = localize(np.ones((64, 64), np.float32), frame)  # everything, padding included
    top, bottom, left, right = frame.box
    expected = np.zeros((400, 480), bool)
    expected[top:bottom, left:right] = True
    np.testing.assert_array_equal(found.mask, expected)
    assert found.box() == {"x": left, "y": top, "width": right - left, "height": bottom - top}
    assert found.area_px == (bottom - top) * (right - left)


def test_a_stretching_model_s_outline_is_resized_over_the_whole_upload():
    frame = StretchFrame((100, 200))
    found = localize(_square_outline(32, 0, 16, 16, 32), frame)  # the top-right quarter
    assert found.box() == {"x": 100, "y": 0, "width": 100, "height": 50}
    assert abs(found.area_px - 5000) <= 150  # a boundary pixel sits at 0.5


def test_an_empty_outline_says_nothing_was_found():
    frame = StretchFrame((120, 90))
    outline = np.full((32, 32), OUTLINE_THRESHOLD - 0.01, np.float32)
    body = localize(outline, frame, pixel_spacing=(0.5, 0.5)).to_json()
    assert body["found"] is False and body["box"] is None
    assert body["area_px"] == 0 and body["area_mm2"] == 0.0
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["mask_png"]))))
    assert mask.shape == (120, 90) and not mask.any()
    assert localize(outline, frame).to_json()["area_mm2"] is None


def test_the_block_gives_mm2_from_the_pixel_spacing_and_a_0_255_mask_of_the_upload_size():
    frame = StretchFrame((64, 80))
    outline = np.zeros((32, 32), np.float32)
    outline[8:16, 4:12] = 0.9
    body = localize(outline, frame, pixel_spacing=(0.9, 0.8)).to_json()
    assert set(body) == {"found", "box", "area_px", "area_mm2", "mask_png"}
    assert body["found"] is True
    assert set(body["box"]) == {"x", "y", "width", "height"}
    assert body["area_mm2"] == round(body["area_px"] * 0.9 * 0.8, 2)
    png = Image.open(io.BytesIO(base64.b64decode(body["mask_png"])))
    assert png.format == "PNG" and png.mode == "L" and png.size == (80, 64)
    mask = np.asarray(png)
    assert set(np.unique(mask)) == {0, 255} and int((mask == 255).sum()) == body["area_px"]
    rows, columns = np.nonzero(mask)
    box = body["box"]
    assert (box["x"], box["y"]) == (columns.min(), rows.min())
    assert (box["width"], box["height"]) == (columns.max() - columns.min() + 1,
                                             rows.max() - rows.min() + 1)


def test_the_pixel_spacing_is_read_from_the_file_or_its_functional_groups():
    """Top-level Pixel Spacing, or an enhanced file's Pixel Measures (per-frame over
    shared); nothing usable (absent, one value, zero) is None."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from braintumor.decoding import decode_image
    from dicom_helpers import make_dicom

    pixels = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 3)

    def spacing(**extra):
        return decode_image(make_dicom(pixels, extra=extra)).dicom.pixel_spacing

    def measures(values):
        group = Dataset()
        inner = Dataset()
        inner.PixelSpacing = values
        group.PixelMeasuresSequence = Sequence([inner])
        return Sequence([group])

    assert spacing(PixelSpacing=[0.9, 0.8]) == (0.9, 0.8)
    assert spacing() is None
    assert spacing(PixelSpacing=[0.0, 0.8]) is None
    assert spacing(SharedFunctionalGroupsSequence=measures([0.5, 0.6]),
                   PixelSpacing=[0.9, 0.8]) == (0.5, 0.6)
    assert spacing(SharedFunctionalGroupsSequence=measures([0.5, 0.6]),
                   PerFrameFunctionalGroupsSequence=measures([0.4, 0.4])) == (0.4, 0.4)
