"""The canonical preprocessing: uint8 grey pixels, then the scaling a model expects."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from braintumor.decoding import decode_image
from braintumor.errors import InvalidImageError
from braintumor.preprocessing import (
    InputSpec,
    canonical_pixels,
    preprocess,
    preprocess_bytes,
    to_model_input,
)
from conftest import encode, scan_like

SCALINGS = ["unit", "raw", "symmetric", "caffe", "torch"]
TORCH_MEAN = np.array([0.485, 0.456, 0.406])
TORCH_STD = np.array([0.229, 0.224, 0.225])
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])

#: A few pixel values with easy expected results: black, white and two in between.
PIXELS = np.array([[0, 255], [51, 102]], dtype=np.uint8)


def _grey_and_rgb_png(size: tuple[int, int] = (80, 64)) -> tuple[bytes, bytes]:
    picture = scan_like(size, seed=4)
    return encode(picture), encode(picture.convert("RGB"))


# --- canonical_pixels ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [(224, 224), (30, 50), (50, 30)])
def test_canonical_pixels_is_uint8_height_by_width(size):
    decoded = decode_image(encode(scan_like((96, 80))))
    pixels = canonical_pixels(decoded, size)
    assert pixels.dtype == np.uint8
    assert pixels.shape == size  # (height, width), not PIL's (width, height)


def test_canonical_pixels_keeps_an_image_already_at_size():
    picture = scan_like((40, 30))
    pixels = canonical_pixels(decode_image(encode(picture)), (30, 40))
    np.testing.assert_array_equal(pixels, np.asarray(picture))


def test_canonical_pixels_resizes_by_stretching():
    image = Image.new("L", (100, 20), 0)
    image.paste(255, (0, 0, 50, 20))  # left half white
    pixels = canonical_pixels(decode_image(encode(image)), (32, 32))
    assert (pixels[:, :14] == 255).all()
    assert (pixels[:, 18:] == 0).all()


def test_canonical_pixels_takes_a_pil_image_like_its_decoded_bytes():
    picture = scan_like((64, 48))
    np.testing.assert_array_equal(
        canonical_pixels(picture, (32, 32)),
        canonical_pixels(decode_image(encode(picture)), (32, 32)),
    )


@pytest.mark.parametrize("kind", ["rgba", "16-bit"])
def test_canonical_pixels_of_a_pil_image_follows_the_decoding_rules(kind):
    """Transparency reads as black and 16-bit keeps its contrast, Image or bytes alike."""
    if kind == "rgba":
        pixels = np.full((20, 30, 4), 255, dtype=np.uint8)
        pixels[:, :15, 3] = 0
        image = Image.fromarray(pixels)
    else:
        image = Image.fromarray(np.linspace(0, 4000, 600).reshape(20, 30).astype(np.uint16))
    from_image = canonical_pixels(image, (20, 30))
    np.testing.assert_array_equal(
        from_image, canonical_pixels(decode_image(encode(image)), (20, 30))
    )
    assert from_image.min() == 0
    assert (from_image < 255).mean() > 0.4


def test_grey_and_rgb_files_of_one_picture_give_identical_pixels():
    """The colour-mode shortcut guard: a file's colour mode must not reach the model."""
    grey_png, rgb_png = _grey_and_rgb_png()
    grey, rgb = decode_image(grey_png), decode_image(rgb_png)
    assert grey.rgb.mode == rgb.rgb.mode == "RGB"
    np.testing.assert_array_equal(canonical_pixels(grey, (48, 48)), canonical_pixels(rgb, (48, 48)))
    for channels in (1, 3):
        for scaling in SCALINGS:
            spec = InputSpec((48, 48), channels, scaling)
            np.testing.assert_array_equal(preprocess(grey, spec), preprocess(rgb, spec))
            np.testing.assert_array_equal(
                preprocess_bytes(grey_png, spec), preprocess_bytes(rgb_png, spec)
            )


# --- to_model_input -----------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("scaling", SCALINGS)
def test_shapes_and_dtype(channels, scaling):
    spec = InputSpec((7, 5), channels, scaling)
    single = np.zeros((7, 5), dtype=np.uint8)
    batch = np.zeros((4, 7, 5), dtype=np.uint8)
    assert to_model_input(single, spec).shape == (1, 7, 5, channels)
    out = to_model_input(batch, spec)
    assert out.shape == (4, 7, 5, channels)
    assert out.dtype == np.float32
    assert out.flags["C_CONTIGUOUS"]


def test_batch_keeps_the_order_of_its_images():
    batch = np.stack([np.full((3, 3), v, dtype=np.uint8) for v in (0, 51, 255)])
    out = to_model_input(batch, InputSpec((3, 3), 1, "unit"))
    np.testing.assert_allclose(out[:, 0, 0, 0], [0.0, 0.2, 1.0], rtol=1e-6)


def test_three_channels_replicate_the_grey_image():
    pixels = np.asarray(scan_like((12, 10)))
    out = to_model_input(pixels, InputSpec((10, 12), 3, "raw"))
    for channel in range(3):
        np.testing.assert_array_equal(out[0, ..., channel], pixels)


@pytest.mark.parametrize(
    ("scaling", "expected"),
    [
        ("unit", [[0.0, 1.0], [0.2, 0.4]]),
        ("raw", [[0.0, 255.0], [51.0, 102.0]]),
        ("symmetric", [[-1.0, 1.0], [-0.6, -0.2]]),
    ],
)
@pytest.mark.parametrize("channels", [1, 3])
def test_simple_scalings(scaling, expected, channels):
    out = to_model_input(PIXELS, InputSpec((2, 2), channels, scaling))
    for channel in range(channels):
        np.testing.assert_allclose(out[0, ..., channel], expected, rtol=1e-6, atol=1e-6)


def test_unit_scaling_spans_zero_to_one():
    out = to_model_input(np.arange(256, dtype=np.uint8).reshape(16, 16), InputSpec((16, 16)))
    assert out.min() == 0.0
    assert out.max() == 1.0


def test_caffe_matches_keras_resnet50_preprocess_input():
    import keras

    pixels = np.asarray(scan_like((20, 16)))
    ours = to_model_input(pixels, InputSpec((16, 20), 3, "caffe"))
    rgb = np.repeat(pixels[None, ..., None].astype(np.float32), 3, axis=-1)
    theirs = keras.applications.resnet50.preprocess_input(rgb.copy())
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)


def test_caffe_known_values():
    out = to_model_input(PIXELS, InputSpec((2, 2), 3, "caffe"))
    np.testing.assert_allclose(out[0, 0, 1], 255 - CAFFE_MEAN_BGR, atol=1e-4)
    one = to_model_input(PIXELS, InputSpec((2, 2), 1, "caffe"))
    np.testing.assert_allclose(one[0, 0, 1, 0], 255 - CAFFE_MEAN_BGR.mean(), atol=1e-4)


def test_torch_known_values():
    out = to_model_input(PIXELS, InputSpec((2, 2), 3, "torch"))
    np.testing.assert_allclose(out[0, 0, 0], (0 - TORCH_MEAN) / TORCH_STD, atol=1e-5)
    np.testing.assert_allclose(out[0, 1, 0], (0.2 - TORCH_MEAN) / TORCH_STD, atol=1e-5)
    one = to_model_input(PIXELS, InputSpec((2, 2), 1, "torch"))
    expected = (1.0 - TORCH_MEAN.mean()) / TORCH_STD.mean()
    np.testing.assert_allclose(one[0, 0, 1, 0], expected, atol=1e-5)


@pytest.mark.parametrize("scaling", ["", "imagenet", "UNIT", "tf"])
def test_unknown_scaling_is_refused(scaling):
    with pytest.raises(ValueError, match="unknown input scaling"):
        to_model_input(PIXELS, InputSpec((2, 2), 1, scaling))


@pytest.mark.parametrize("scaling", SCALINGS)
def test_input_pixels_are_not_modified(scaling):
    pixels = np.asarray(scan_like((8, 8))).copy()
    before = pixels.copy()
    to_model_input(pixels, InputSpec((8, 8), 3, scaling))
    np.testing.assert_array_equal(pixels, before)


def test_input_spec_to_dict():
    assert InputSpec((224, 192), 3, "caffe").to_dict() == {
        "size": [224, 192],
        "channels": 3,
        "scaling": "caffe",
        "framing": "stretch",
    }
    assert InputSpec((32, 32)).to_dict() == {"size": [32, 32], "channels": 1, "scaling": "unit",
                                             "framing": "stretch"}


# --- the whole path -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [InputSpec((32, 32)), InputSpec((40, 24), 3, "caffe"), InputSpec((24, 40), 3, "torch")],
)
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_preprocess_bytes_equals_decode_then_preprocess(spec, fmt):
    data = encode(scan_like((70, 50), seed=2).convert("RGB"), fmt)
    expected = to_model_input(canonical_pixels(decode_image(data), spec.size), spec)
    out = preprocess_bytes(data, spec)
    assert out.shape == (1, *spec.size, spec.channels)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out, preprocess(decode_image(data), spec))


def test_preprocess_bytes_applies_the_decoding_rules():
    data = encode(scan_like((100, 100)))
    with pytest.raises(InvalidImageError, match="exceeds the limit"):
        preprocess_bytes(data, InputSpec((32, 32)), max_pixels=5_000)
    with pytest.raises(InvalidImageError):
        preprocess_bytes(b"not an image", InputSpec((32, 32)))


# --- head framing ---------------------------------------------------------------------------


def _head_on_canvas(canvas: tuple[int, int], box: tuple[int, int, int, int],
                    level: int = 120) -> np.ndarray:
    """A black canvas (W, H) with a bright noisy rectangle at box (left, top, right, bottom)."""
    rng = np.random.default_rng(3)
    pixels = np.zeros((canvas[1], canvas[0]), dtype=np.uint8)
    left, top, right, bottom = box
    pixels[top:bottom, left:right] = np.clip(
        rng.normal(level, 20, (bottom - top, right - left)), 1, 255).astype(np.uint8)
    return pixels


def test_head_box_finds_the_foreground_and_ignores_a_speck() -> None:
    from braintumor.preprocessing import head_box

    pixels = _head_on_canvas((200, 160), (40, 30, 150, 120))
    pixels[2, 195] = 255  # a burnt-in dot in a corner
    top, bottom, left, right = head_box(pixels)
    assert abs(top - 30) <= 2 and abs(bottom - 120) <= 2
    assert abs(left - 40) <= 2 and abs(right - 150) <= 2


def test_head_box_of_a_black_picture_is_the_whole_frame() -> None:
    from braintumor.preprocessing import head_box

    assert head_box(np.zeros((30, 40), np.uint8)) == (0, 30, 0, 40)


def test_head_framing_is_independent_of_the_border_and_the_exposure() -> None:
    """The same head with a wide black border, or darker, frames to nearly the same pixels:
    the cues that told the collections apart are gone."""
    head = _head_on_canvas((120, 120), (10, 10, 110, 110))
    bordered = np.zeros((300, 260), np.uint8)
    bordered[90:210, 70:190] = head
    darker = (head.astype(np.float32) * 0.5).astype(np.uint8)
    base = canonical_pixels(Image.fromarray(head), (64, 64), "head").astype(float)
    for other in (bordered, darker):
        framed = canonical_pixels(Image.fromarray(other), (64, 64), "head").astype(float)
        assert np.abs(framed - base).mean() < 6


def test_head_framing_keeps_the_aspect_ratio() -> None:
    """A head twice as wide as tall fills the width and half the height, centred."""
    pixels = _head_on_canvas((400, 300), (50, 100, 350, 250))
    framed = canonical_pixels(Image.fromarray(pixels), (64, 64), "head")
    rows = np.flatnonzero(framed.mean(axis=1) > 30)
    cols = np.flatnonzero(framed.mean(axis=0) > 30)
    assert 56 <= cols.size <= 64 and 26 <= rows.size <= 34
    assert abs((rows[0] + rows[-1]) / 2 - 31.5) <= 2


def test_head_framing_stretches_the_head_percentiles_over_the_range() -> None:
    framed = canonical_pixels(scan_like((160, 120), seed=2), (64, 64), "head")
    inside = framed[framed > 0]
    assert np.percentile(inside, 99) >= 240 and framed.dtype == np.uint8


def test_an_unknown_framing_is_refused() -> None:
    with pytest.raises(ValueError, match="framing"):
        InputSpec((8, 8), framing="letterbox")
    with pytest.raises(ValueError, match="framing"):
        canonical_pixels(scan_like(), (8, 8), "letterbox")


def test_preprocess_applies_the_models_framing() -> None:
    picture = scan_like((200, 100), seed=5)
    spec = InputSpec((32, 32), framing="head")
    np.testing.assert_array_equal(
        preprocess(picture, spec)[0, ..., 0],
        canonical_pixels(picture, (32, 32), "head").astype(np.float32) / 255.0)
