"""The answer's numbers: percentages, confidence and timestamps."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np
import pytest

from braintumor.classify import Prediction, percentages, utc_timestamp


@pytest.mark.parametrize("seed", range(50))
def test_percentages_add_up_to_exactly_100(seed):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(4, rng.uniform(0.05, 2.0)))
    pct = percentages(probs)
    assert round(sum(pct), 6) == 100.0
    assert all(round(p, 2) == p for p in pct)
    assert np.allclose(pct, probs * 100, atol=0.011)


def test_percentages_of_a_certain_answer():
    assert percentages(np.array([1.0, 0.0, 0.0, 0.0])) == [100.0, 0.0, 0.0, 0.0]


def test_prediction_json_is_consistent():
    names = ["Glioma", "Meningioma", "No Tumor", "Pituitary"]
    body = Prediction(names, np.array([0.1, 0.2, 0.6, 0.1])).to_json()
    assert body == {"class": "No Tumor", "class_id": 2, "confidence": 60.0,
                    "probabilities": {"Glioma": 10.0, "Meningioma": 20.0, "No Tumor": 60.0,
                                      "Pituitary": 10.0}}


def test_timestamp_is_iso_utc_with_z():
    moment = datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)
    assert utc_timestamp(moment) == "2024-01-15T10:30:00.123Z"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", utc_timestamp())


def test_the_layout_reads_the_whole_picture_whatever_the_models_framing():
    """A head-framing model's pixels crop the border away; the layout distance gets the
    stretched whole picture instead, and a stretching model's own pixels as they are."""
    from braintumor.classify import layout_pixels
    from braintumor.decoding import decode_image
    from braintumor.preprocessing import InputSpec, canonical_pixels
    from conftest import encode, scan_like

    decoded = [decode_image(encode(scan_like((160, 120), seed=s))) for s in range(2)]
    head = InputSpec((32, 32), framing="head")
    framed = np.stack([canonical_pixels(d, head.size, "head") for d in decoded])
    whole = layout_pixels(decoded, framed, head)
    np.testing.assert_array_equal(
        whole, np.stack([canonical_pixels(d, head.size, "stretch") for d in decoded]))
    assert not np.array_equal(whole, framed)
    stretch = InputSpec((32, 32))
    assert layout_pixels(decoded, framed, stretch) is framed


def test_one_picture_that_breaks_the_checks_fails_alone_not_its_batch(tiny_model,
                                                                       tiny_settings):
    """A batch (the Spark job's, the series endpoint's) keeps its other answers when one
    decoded picture breaks the input checks or the preprocessing: that one carries its
    error, the others are classified as on their own."""
    from dataclasses import replace

    from PIL import Image

    from braintumor.classify import Classifier
    from braintumor.decoding import decode_image
    from braintumor.imaging import DecodedImage
    from conftest import encode, scan_like

    classifier = Classifier(tiny_model, replace(tiny_settings, OOD_POLICY="warn"))
    good = [decode_image(encode(scan_like(seed=s))) for s in (1, 2)]
    # a picture no decoder makes: a four-channel "grey" that passes the input checks
    picture = scan_like(seed=3)
    broken = DecodedImage(grey=Image.merge("CMYK", [picture] * 4), rgb=picture.convert("RGB"),
                          format="PNG")
    alone = classifier.assess(good)
    mixed = classifier.assess([good[0], broken, good[1]])
    assert mixed[1].error is not None and mixed[1].probabilities is None
    assert "failed" in mixed[1].error.message
    for together, single in zip((mixed[0], mixed[2]), alone, strict=True):
        assert together.error is None
        np.testing.assert_allclose(together.probabilities, single.probabilities, atol=1e-5)


# --- heatmaps and outlines drawn back through the model's framing ----------------------

def _classifier(path):
    from braintumor.classify import Classifier
    from braintumor.config import Settings
    from braintumor.model import load_model

    settings = Settings(MODEL_PATH=path, OOD_POLICY="warn")
    return Classifier(load_model(settings), settings)


@pytest.fixture(scope="module")
def seg_classifier(tmp_path_factory):
    """The tiny head-framing, segmenting model (random weights)."""
    from seg_helpers import save_seg_model

    return _classifier(save_seg_model(tmp_path_factory.mktemp("seg") / "seg.keras"))


def _pictures(body: dict) -> dict[str, np.ndarray]:
    import base64
    import io

    from PIL import Image

    return {name: np.asarray(Image.open(io.BytesIO(base64.b64decode(png))).convert("RGB"))
            for name, png in body["visualization"].items()}


def _mask(body: dict) -> np.ndarray:
    import base64
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(body["localization"]["mask_png"]))))


def _head_box(picture) -> tuple[int, int, int, int]:
    from braintumor.preprocessing import HeadFrame

    return HeadFrame.of(np.asarray(picture.convert("L"))).box


#: Where the scan goes in the larger black frame, and the frame's size: both at most 512
#: px, so the pictures are drawn at the upload's own size and compare pixel for pixel.
CANVAS, AT = (480, 400), (212, 130)


def _check_moved(alone: dict, moved: dict, picture, at: tuple[int, int],
                 size: tuple[int, int]) -> None:
    """The off-centre upload's heatmap is the lone scan's, moved by ``at``, within one jet
    level; cold outside the head box; the outline (mask and box) moved the same way."""
    from seg_helpers import jet_levels

    x, y = at
    width, height = size
    big = jet_levels(_pictures(moved)["heatmap_only"])
    small = jet_levels(_pictures(alone)["heatmap_only"])
    assert small.max() > 200 and len(np.unique(small)) > 20  # a map with some structure
    assert np.abs(big[y:y + height, x:x + width].astype(int) - small).max() <= 1
    top, bottom, left, right = _head_box(picture)
    outside = np.ones(big.shape, bool)
    outside[top:bottom, left:right] = False
    assert (big[outside] == 0).all()
    assert moved["prediction"] == alone["prediction"]
    near, far = alone["localization"], moved["localization"]
    assert near["found"] and far["found"] and near["area_px"] == far["area_px"]
    assert far["box"] == {**near["box"], "x": near["box"]["x"] + x, "y": near["box"]["y"] + y}
    big_mask, small_mask = _mask(moved), _mask(alone)
    assert big_mask.shape == (picture.size[1], picture.size[0])
    np.testing.assert_array_equal(big_mask[y:y + height, x:x + width], small_mask)
    assert big_mask.sum() == small_mask.sum()


def test_a_scan_off_centre_in_a_larger_frame_gets_the_same_heatmap_and_outline_moved(
        seg_classifier):
    """The model sees the head box in both uploads, so its map and outline are the same;
    drawn back through the framing's inverse they sit on the head, not stretched over the
    black frame (which put the old heatmaps beside the head)."""
    from conftest import encode
    from seg_helpers import clean_scan, pasted

    scan = clean_scan()
    picture = pasted(scan, CANVAS, AT)
    alone = seg_classifier.classify_upload(encode(scan), "scan.png").to_json()
    moved = seg_classifier.classify_upload(encode(picture), "framed.png").to_json()
    _check_moved(alone, moved, picture, AT, scan.size)
    assert moved["localization"]["area_mm2"] is None  # a PNG has no pixel spacing


def test_a_dicom_upload_off_centre_gets_the_same_heatmap_moved_and_its_area_in_mm2(
        seg_classifier):
    from dicom_helpers import make_dicom
    from seg_helpers import clean_scan, pasted
    from series_helpers import to_12_bit

    scan = clean_scan(seed=8)
    picture = pasted(scan, CANVAS, AT)

    def dicom(image) -> bytes:
        return make_dicom(to_12_bit(image), bits_stored=12, window=(2048.0, 4096.0),
                          extra={"PixelSpacing": [0.9, 0.8]})

    alone = seg_classifier.classify_upload(dicom(scan), "scan.dcm").to_json()
    moved = seg_classifier.classify_upload(dicom(picture), "framed.dcm").to_json()
    _check_moved(alone, moved, picture, AT, scan.size)
    area = moved["localization"]["area_px"]
    assert moved["localization"]["area_mm2"] == pytest.approx(area * 0.72, abs=0.01)
    assert "pixel_spacing" not in moved["dicom"]  # the dicom block is as it was


@pytest.mark.parametrize(("bias", "found"), [(8.0, True), (-8.0, False)])
def test_the_localization_block_of_a_full_and_an_empty_outline(tmp_path, bias, found):
    """An outline over the model's whole input is the head box of the upload, exactly; an
    empty one (a healthy slice) says nothing was found."""
    from conftest import encode
    from seg_helpers import clean_scan, pasted, save_seg_model

    classifier = _classifier(save_seg_model(tmp_path / "seg.keras", outline_bias=bias))
    picture = pasted(clean_scan(), CANVAS, AT)
    body = classifier.classify_upload(encode(picture), "framed.png").to_json()
    block = body["localization"]
    assert set(block) == {"found", "box", "area_px", "area_mm2", "mask_png"}
    assert block["found"] is found
    top, bottom, left, right = _head_box(picture)
    if found:
        assert block["box"] == {"x": left, "y": top, "width": right - left,
                                "height": bottom - top}
        assert block["area_px"] == (bottom - top) * (right - left)
    else:
        assert block["box"] is None and block["area_px"] == 0 and not _mask(body).any()
    assert set(body["visualization"]) == {"heatmap_overlay", "original_image", "heatmap_only"}


def test_the_api_answers_with_the_block_the_openapi_document_describes(tmp_path):
    import io

    from braintumor.api import create_app
    from braintumor.config import Settings
    from braintumor.model import load_model
    from conftest import encode
    from openapi_check import DOCUMENT, check_response
    from seg_helpers import clean_scan, save_seg_model

    settings = Settings(MODEL_PATH=save_seg_model(tmp_path / "seg.keras"), OOD_POLICY="warn")
    client = create_app(settings, model=load_model(settings)).test_client()
    response = client.post("/api/classify", data={"file": (io.BytesIO(encode(clean_scan())),
                                                          "scan.png")},
                           content_type="multipart/form-data")
    assert response.status_code == 200, response.get_json()
    check_response("/api/classify", "POST", 200, response.headers, response.get_data())
    assert response.get_json()["localization"]["found"] is True
    schemas = DOCUMENT["components"]["schemas"]
    assert "localization" in schemas["ClassifyResponse"]["properties"]
    assert "localization" not in schemas["ClassifyResponse"]["required"]  # optional


def test_a_model_without_an_outline_answers_without_localization_and_stretches(tiny_model,
                                                                               tiny_settings):
    """A user's classifier (``stretch`` framing, no segmentation layer): no block, and the
    heatmap is the Grad-CAM map resized over the whole upload, as before."""
    from dataclasses import replace

    from braintumor.classify import Classifier
    from braintumor.decoding import decode_image
    from braintumor.explain.render import jet_lut, upsample_cam
    from conftest import encode, scan_like

    classifier = Classifier(tiny_model, replace(tiny_settings, OOD_POLICY="warn"))
    data = encode(scan_like((300, 240), seed=4))
    result = classifier.classify_upload(data, "scan.png")
    assert result.localization is None and "localization" not in result.to_json()
    cam = classifier.assess([decode_image(data)])[0].cam
    expected = jet_lut()[np.round(upsample_cam(cam, (300, 240)) * 255.0).astype(np.uint8)]
    np.testing.assert_array_equal(np.asarray(result.visualization.heatmap_only), expected)
