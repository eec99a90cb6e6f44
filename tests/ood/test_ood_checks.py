"""Input checks: blank, colour, noise-like and strip-shaped pictures are refused by pixels alone."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from braintumor.decoding import decode_image
from braintumor.ood import checks
from conftest import encode, scan_like


def decoded(image: Image.Image, fmt: str = "PNG", **params):
    return decode_image(encode(image, fmt, **params))


def failures(image: Image.Image, fmt: str = "PNG", **params) -> dict[str, str]:
    return checks.measure(decoded(image, fmt, **params)).failures()


@pytest.mark.parametrize("picture", [
    Image.new("L", (224, 224), 0),
    Image.new("L", (224, 224), 255),
    Image.new("RGB", (640, 480), (128, 128, 128)),
    Image.fromarray(np.random.default_rng(0).normal(128, 2, (224, 224)).astype(np.uint8)),
], ids=["black", "white", "grey-rgb", "near-uniform"])
def test_blank_pictures_are_refused(picture):
    found = failures(picture)
    assert "blank" in found and "blank or nearly uniform" in found["blank"]


@pytest.mark.parametrize("size", [32, 224, 1400])
def test_white_noise_is_refused_at_any_size(size):
    rng = np.random.default_rng(size)
    noise = Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8))
    found = failures(noise)
    assert list(found) == ["structure"], found  # not "blank": the spread is measured unaveraged
    assert "like noise" in found["structure"]


def test_colour_photo_is_refused():
    y, x = np.mgrid[0:200, 0:300]
    photo = np.stack([x * 255 / 299, y * 255 / 199, 255 - x * 255 / 299], -1)
    found = failures(Image.fromarray(photo.astype(np.uint8), "RGB"))
    assert list(found) == ["colour"]
    assert "grayscale" in found["colour"]


def test_scan_like_pictures_pass_in_every_encoding():
    scan = scan_like((200, 180))
    assert failures(scan) == {}
    assert failures(scan.convert("RGB"), "JPEG", quality=75) == {}  # RGB, near-equal channels
    assert failures(scan.convert("RGBA")) == {}


def test_small_coloured_annotation_is_tolerated():
    scan = np.asarray(scan_like((224, 224)).convert("RGB")).copy()
    scan[10:30, 10:60] = (255, 0, 0)  # a red label in a corner
    assert failures(Image.fromarray(scan)) == {}


def test_strongly_tinted_scan_is_refused():
    grey = np.asarray(scan_like((224, 224)), dtype=np.float32)
    tinted = np.stack([grey, grey * 0.3, grey * 0.1], -1).astype(np.uint8)
    assert "colour" in failures(Image.fromarray(tinted))


def test_aspect_ratio_limit():
    assert failures(scan_like((300, 150))) == {}  # 2:1 is left alone
    found = failures(scan_like((400, 100)))
    assert list(found) == ["aspect"] and "4.0 times longer" in found["aspect"]


def fake(modality, body_part=None):
    image = scan_like((96, 96))
    dicom = (None if modality is None
             else SimpleNamespace(modality=modality, body_part=body_part))
    return SimpleNamespace(grey=image, rgb=image.convert("RGB"), size=image.size, dicom=dicom)


def test_dicom_modality_other_than_mr_is_refused():
    assert checks.measure(fake("CT")).failures() == {
        "modality": "the DICOM file is a CT image, not MR"}
    assert checks.measure(fake("MR")).failures() == {}
    assert checks.measure(fake(None)).failures() == {}  # not DICOM (or no modality stated)
    no_attribute = SimpleNamespace(grey=fake(None).grey, rgb=fake(None).rgb, size=(96, 96))
    assert checks.dicom_modality(no_attribute) is None


@pytest.mark.parametrize("part", ["ABDOMEN", "KNEE", "LSPINE", "HEART", "PELVIS"])
def test_a_dicom_of_another_body_part_is_refused(part):
    assert checks.measure(fake("MR", part)).failures() == {
        "body_part": f"the DICOM file says it shows the {part.lower()}, not the head"}


@pytest.mark.parametrize("part", ["HEAD", "BRAIN", "Skull", "HEADNECK", "CEREBRUM", None, ""])
def test_a_dicom_of_the_head_or_of_no_stated_part_passes(part):
    assert checks.measure(fake("MR", part)).failures() == {}


def test_autocorrelation_of_flat_and_smooth_pictures():
    assert checks.autocorrelation(np.full((16, 16), 7)) == 1.0
    ramp = np.tile(np.arange(64, dtype=np.float32), (64, 1))
    assert checks.autocorrelation(ramp + ramp.T) > 0.9


def test_measures_are_json_ready():
    values = checks.measure(decoded(scan_like())).to_json()
    assert set(values) == {"std", "chroma", "autocorrelation", "aspect_ratio", "modality",
                           "body_part"}
