"""Rendering of the Grad-CAM map."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from braintumor.explain.render import jet_lut, output_size, render


@pytest.mark.parametrize(("size", "limit", "expected"), [
    ((224, 224), 512, (224, 224)),
    ((100, 50), 512, (224, 112)),
    ((2000, 1000), 512, (512, 256)),
    ((50, 4000), 512, (6, 512)),
    ((600, 300), 1024, (600, 300)),
])
def test_output_size(size, limit, expected):
    assert output_size(*size, limit) == expected


def test_jet_runs_from_blue_to_red():
    lut = jet_lut()
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    blue, red = lut[0], lut[255]
    assert blue[2] > 100 and blue[0] == 0
    assert red[0] > 100 and red[2] == 0


def test_overlay_blends_the_heatmap_at_alpha_04():
    original = Image.new("RGB", (224, 224), (200, 200, 200))
    cam = np.zeros((7, 7), np.float32)
    cam[0, 0] = 1.0
    pictures = render(cam, original)
    heat = np.asarray(pictures.heatmap_only, dtype=np.float32)
    overlay = np.asarray(pictures.heatmap_overlay, dtype=np.float32)
    np.testing.assert_allclose(overlay, 0.6 * 200 + 0.4 * heat, atol=0.51)
    assert tuple(heat[0, 0]) == tuple(jet_lut()[255])      # hot corner is red
    assert tuple(heat[-1, -1]) == tuple(jet_lut()[0])      # cold elsewhere is blue
    assert pictures.original_image.tobytes() == original.tobytes()


# --- the map drawn back through the model's framing ------------------------------------

def _head_frame(scan: Image.Image):
    from braintumor.preprocessing import HeadFrame

    return HeadFrame.of(np.asarray(scan, dtype=np.uint8))


def test_without_a_frame_and_with_a_stretch_frame_the_map_is_a_plain_resize():
    from braintumor.explain.render import upsample_cam
    from braintumor.preprocessing import StretchFrame

    rng = np.random.default_rng(0)
    cam = rng.uniform(0, 1, (9, 9)).astype(np.float32)
    original = Image.new("RGB", (300, 240), (90, 90, 90))
    plain = render(cam, original)
    stretched = render(cam, original, frame=StretchFrame((240, 300)))
    assert plain.heatmap_only.tobytes() == stretched.heatmap_only.tobytes()
    expected = np.round(upsample_cam(cam, (300, 240)) * 255.0).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(plain.heatmap_only), jet_lut()[expected])


def test_under_head_framing_the_map_covers_the_head_box_and_is_cold_outside():
    """A uniform map in the model's space lands on the head box exactly, nowhere else."""
    from seg_helpers import clean_scan, pasted

    scan = clean_scan()
    picture = pasted(scan, (460, 320), (200, 60))
    frame = _head_frame(picture)
    top, bottom, left, right = frame.box
    width, height = scan.size
    assert top >= 60 and bottom <= 60 + height and left >= 200 and right <= 200 + width
    pictures = render(np.ones((9, 9), np.float32), picture.convert("RGB"), frame=frame)
    heat = np.asarray(pictures.heatmap_only)
    inside = np.zeros(heat.shape[:2], bool)
    inside[top:bottom, left:right] = True
    assert (heat[inside] == jet_lut()[255]).all()
    assert (heat[~inside] == jet_lut()[0]).all()


def test_a_hot_spot_lands_where_the_model_saw_it_in_the_head_not_in_the_stretched_frame():
    """The model's input is the head box padded to a square: a hot cell at the centre of
    the map is the centre of that square, i.e. the centre of the head box."""
    from seg_helpers import clean_scan, jet_levels, pasted

    picture = pasted(clean_scan(), (480, 320), (40, 100))
    frame = _head_frame(picture)
    top, bottom, left, right = frame.box
    cam = np.zeros((9, 9), np.float32)
    cam[4, 4] = 1.0

    def centre_of_heat(pictures) -> np.ndarray:
        levels = jet_levels(np.asarray(pictures.heatmap_only)).astype(np.float64)
        rows, columns = np.indices(levels.shape)
        return np.array([(rows * levels).sum(), (columns * levels).sum()]) / levels.sum()

    hot = centre_of_heat(render(cam, picture.convert("RGB"), 512, frame))
    np.testing.assert_allclose(hot, [(top + bottom) / 2, (left + right) / 2], atol=1.5)
    old = centre_of_heat(render(cam, picture.convert("RGB"), 512))
    assert abs(old[1] - (left + right) / 2) > 50  # what drawing over the whole upload did


@pytest.mark.parametrize(("canvas", "at"), [((420, 380), (170, 140)), ((300, 512), (10, 270))])
def test_the_same_scan_off_centre_in_a_larger_frame_gets_the_same_map_moved(canvas, at):
    """Same map in the model's space, two uploads: the scan alone and the scan pasted off
    centre into black. Both head boxes hold the same head, so the drawn maps agree within
    one jet level (float rounding of the resampling) once the offset is taken off; the
    map is cold everywhere outside the head box."""
    from seg_helpers import clean_scan, jet_levels, pasted

    scan = clean_scan()
    rng = np.random.default_rng(1)
    cam = rng.uniform(0, 1, (9, 9)).astype(np.float32)
    alone = render(cam, scan.convert("RGB"), 512, _head_frame(scan))
    framed_picture = pasted(scan, canvas, at)
    frame = _head_frame(framed_picture)
    moved = render(cam, framed_picture.convert("RGB"), 512, frame)
    width, height = scan.size
    x, y = at
    big = jet_levels(np.asarray(moved.heatmap_only))
    small = jet_levels(np.asarray(alone.heatmap_only))
    assert np.abs(big[y:y + height, x:x + width] - small).max() <= 1
    top, bottom, left, right = frame.box
    outside = np.ones(big.shape, bool)
    outside[top:bottom, left:right] = False
    assert (big[outside] == 0).all() and big.max() > 200
