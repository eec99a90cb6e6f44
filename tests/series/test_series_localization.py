"""A series' key slice is drawn as /api/classify draws an upload: its heatmap back through
the model's framing, and the outline of a segmenting model as a ``localization`` block."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from seg_helpers import clean_scan, jet_levels, pasted, save_seg_model
from series_helpers import series_files

URL = "/api/classify-series"
#: The scans' size, the larger black frame and where they go in it: all at most 512 px,
#: so the key slice's pictures are drawn at the slices' own size.
SIZE, CANVAS, AT = (240, 232), (480, 400), (200, 120)


@pytest.fixture(scope="module")
def seg_client(tmp_path_factory):
    from braintumor.api import create_app
    from braintumor.config import Settings
    from braintumor.model import load_model

    path = save_seg_model(tmp_path_factory.mktemp("seg") / "seg.keras")
    settings = Settings(MODEL_PATH=path, OOD_POLICY="warn")
    return create_app(settings, model=load_model(settings)).test_client()


def _classify(client, files: list[bytes]) -> dict:
    """The answer, held to the OpenAPI document (the key slice's block included)."""
    from openapi_check import check_response

    form = {"file": [(io.BytesIO(data), f"slice{i}.dcm") for i, data in enumerate(files)]}
    response = client.post(URL, data=form, content_type="multipart/form-data")
    assert response.status_code == 200, response.get_json()
    check_response(URL, "POST", 200, response.headers, response.get_data())
    return response.get_json()


def _png(text: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))))


def test_a_series_off_centre_in_larger_frames_gets_the_same_key_slice_heatmap_moved(
        seg_client):
    """Every slice pasted off centre into black: same answers, same key slice, its heatmap
    the lone series' moved by the offset (within one jet level), cold outside the head
    box, and its outline moved the same way, with its area in mm² (Pixel Spacing 0.9)."""
    from braintumor.preprocessing import HeadFrame

    scans = [clean_scan(SIZE, seed=20 + i) for i in range(5)]
    framed = [pasted(scan, CANVAS, AT) for scan in scans]
    alone = _classify(seg_client, series_files(scans))
    moved = _classify(seg_client, series_files(framed))
    assert moved["summary"] == alone["summary"]
    key, near = moved["key_slice"], alone["key_slice"]
    x, y = AT
    width, height = SIZE
    big = jet_levels(np.asarray(Image.open(io.BytesIO(base64.b64decode(
        key["visualization"]["heatmap_only"]))).convert("RGB")))
    small = jet_levels(np.asarray(Image.open(io.BytesIO(base64.b64decode(
        near["visualization"]["heatmap_only"]))).convert("RGB")))
    assert small.max() > 200 and len(np.unique(small)) > 20
    assert np.abs(big[y:y + height, x:x + width].astype(int) - small).max() <= 1
    top, bottom, left, right = HeadFrame.of(np.asarray(framed[key["index"]])).box
    outside = np.ones(big.shape, bool)
    outside[top:bottom, left:right] = False
    assert (big[outside] == 0).all()

    block, lone = key["localization"], near["localization"]
    assert set(block) == {"found", "box", "area_px", "area_mm2", "mask_png"}
    assert block["found"] and block["area_px"] == lone["area_px"] > 0
    assert block["box"] == {**lone["box"], "x": lone["box"]["x"] + x,
                            "y": lone["box"]["y"] + y}
    assert block["area_mm2"] == pytest.approx(block["area_px"] * 0.81, abs=0.01)
    mask = _png(block["mask_png"])
    assert mask.shape == (CANVAS[1], CANVAS[0])
    np.testing.assert_array_equal(mask[y:y + height, x:x + width], _png(lone["mask_png"]))
    assert all("localization" not in answer for answer in moved["slices"])


def test_a_series_under_a_model_without_an_outline_has_no_block(client):
    """The suite's tiny classifier has no segmentation layer: the key slice is as before."""
    from series_helpers import synthetic_pictures

    body = _classify(client, series_files(synthetic_pictures(3, seed=60)))
    assert "localization" not in body["key_slice"]
