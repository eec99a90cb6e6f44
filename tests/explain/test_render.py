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
