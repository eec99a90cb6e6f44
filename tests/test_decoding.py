"""Upload decoding: formats recognised by content, refusals, colour modes, orientation."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from braintumor.decoding import (
    ALLOWED_EXTENSIONS,
    DecodedImage,
    check_extension,
    decode_file,
    decode_image,
    file_extension,
    normalise_mode,
)
from braintumor.errors import InvalidFileTypeError, InvalidImageError
from conftest import encode, scan_like


def _grey(decoded: DecodedImage) -> np.ndarray:
    return np.asarray(decoded.grey, dtype=np.int16)


def _blank_png(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG of any size, written row by row (no big allocation)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed pixels
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


# --- formats ------------------------------------------------------------------------------

LOSSLESS = [
    ("PNG", {}),
    ("GIF", {}),
    ("BMP", {}),
    ("WEBP", {"lossless": True}),
]


@pytest.mark.parametrize(("fmt", "params"), LOSSLESS, ids=[f for f, _ in LOSSLESS])
def test_lossless_formats_decode_exactly(fmt, params):
    picture = scan_like((40, 30))
    decoded = decode_image(encode(picture, fmt, **params))
    assert decoded.format == fmt
    assert decoded.size == (40, 30)
    np.testing.assert_array_equal(np.asarray(decoded.grey), np.asarray(picture))


def test_jpeg_decodes_close_to_source():
    picture = scan_like((40, 30))
    decoded = decode_image(encode(picture, "JPEG", quality=95))
    assert decoded.format == "JPEG"
    assert decoded.size == (40, 30)
    diff = np.abs(_grey(decoded) - np.asarray(picture, dtype=np.int16))
    assert diff.mean() < 3


@pytest.mark.parametrize(
    ("fmt", "params"), [*LOSSLESS, ("JPEG", {})], ids=[*(f for f, _ in LOSSLESS), "JPEG"]
)
def test_grey_is_L_and_rgb_is_RGB_with_same_size(fmt, params):
    colour = Image.merge("RGB", [scan_like((33, 21), seed=s) for s in range(3)])
    decoded = decode_image(encode(colour, fmt, **params))
    assert decoded.grey.mode == "L"
    assert decoded.rgb.mode == "RGB"
    assert decoded.grey.size == decoded.rgb.size == decoded.size == (33, 21)


def test_content_decides_not_the_name():
    jpeg = encode(scan_like((24, 24)), "JPEG")
    check_extension("x.png")  # the name is allowed ...
    assert decode_image(jpeg).format == "JPEG"  # ... and the bytes are read as what they are
    png = encode(scan_like((24, 24)), "PNG")
    check_extension("x.jpg")
    assert decode_image(png).format == "PNG"


def test_decode_file_reads_from_disk(tmp_path):
    data = encode(scan_like((20, 10)), "PNG")
    path = tmp_path / "scan.bin"
    path.write_bytes(data)
    decoded = decode_file(str(path))
    assert decoded.format == "PNG"
    np.testing.assert_array_equal(np.asarray(decoded.grey), np.asarray(decode_image(data).grey))


# --- extensions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["notes.txt", "setup.exe", "scan.tiff", "scan.tif", "scan.png.exe", "C:\\dir\\x.EXE"],
)
def test_check_extension_refuses(name):
    with pytest.raises(InvalidFileTypeError) as info:
        check_extension(name)
    assert info.value.code == "INVALID_FILE_TYPE"
    assert info.value.status == 415
    assert info.value.message == (
        "File type not allowed. Allowed: png, jpg, jpeg, gif, bmp, webp, dcm, dicom")


@pytest.mark.parametrize(
    "name",
    [
        "scan.png",
        "scan.JPG",
        "scan.JpEg",
        "scan.gif",
        "scan.BMP",
        "scan.webp",
        "scan",  # no extension: the content decides
        "a.b/c.png",
        "a.b/c",  # a dot in a folder is not an extension
        "a.b\\c.webp",
    ],
)
def test_check_extension_accepts(name):
    check_extension(name)  # must not raise


@pytest.mark.parametrize(
    ("name", "ext"),
    [("x.JPG", "jpg"), ("a.b/c", ""), ("dir\\y.WebP", "webp"), ("plain", ""), ("t.tar.gz", "gz")],
)
def test_file_extension(name, ext):
    assert file_extension(name) == ext


def test_allowed_extensions_are_the_specs():
    assert set(ALLOWED_EXTENSIONS) == {"png", "jpg", "jpeg", "gif", "bmp", "webp", "dcm",
                                       "dicom"}


# --- refusals -----------------------------------------------------------------------------


def _truncated(fmt: str) -> bytes:
    rng = np.random.default_rng(3)
    noisy = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = encode(noisy, fmt)
    return data[: len(data) // 2]


BAD_CONTENT = {
    "empty": b"",
    "text": b"Hello, this is a plain text file, not an image.\n" * 20,
    "garbage": np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    "png-signature-only": b"\x89PNG\r\n\x1a\n",
    "truncated-png": _truncated("PNG"),
    "truncated-jpeg": _truncated("JPEG"),
    "tiff": encode(scan_like((32, 32)), "TIFF"),
}


@pytest.mark.parametrize("data", BAD_CONTENT.values(), ids=BAD_CONTENT.keys())
def test_bad_content_is_invalid_image(data):
    with pytest.raises(InvalidImageError) as info:
        decode_image(data)
    assert info.value.code == "INVALID_IMAGE"
    assert info.value.status == 400
    assert info.value.message.startswith("Image validation failed")


def test_tiff_is_a_real_image_that_is_refused_by_format():
    data = BAD_CONTENT["tiff"]
    assert Image.open(io.BytesIO(data)).format == "TIFF"  # Pillow could read it
    with pytest.raises(InvalidImageError, match="not a PNG, JPEG, GIF, BMP, WebP or DICOM"):
        decode_image(data)


def test_blank_png_helper_writes_valid_pngs():
    decoded = decode_image(_blank_png(70, 30))
    assert decoded.size == (70, 30)
    assert decoded.format == "PNG"
    assert not np.asarray(decoded.grey).any()


@pytest.mark.parametrize(
    ("width", "height", "max_pixels", "message"),
    [
        # Far past Pillow's own bomb limit: refused while reading the header.
        (20000, 20000, 64_000_000, "decompression bomb"),
        # Past Pillow's warning threshold: the warning is escalated even with a high limit.
        (10000, 10000, 10**9, "decompression bomb"),
        # Under Pillow's threshold but over ours: our header check refuses it.
        (9000, 9000, 64_000_000, "9000x9000 pixels exceeds the limit of 64000000"),
    ],
)
def test_decompression_bomb_is_refused(width, height, max_pixels, message):
    data = _blank_png(width, height)
    assert len(data) < 1_000_000  # a small file that claims to be enormous
    with pytest.raises(InvalidImageError, match=message):
        decode_image(data, max_pixels=max_pixels)


def test_max_pixels_limit_is_inclusive():
    data = encode(scan_like((100, 100)))
    assert decode_image(data, max_pixels=10_000).size == (100, 100)
    with pytest.raises(InvalidImageError, match="exceeds the limit of 9999"):
        decode_image(data, max_pixels=9_999)


# --- colour modes -------------------------------------------------------------------------


def test_mode_L():
    picture = scan_like((30, 20))
    decoded = decode_image(encode(picture))
    np.testing.assert_array_equal(np.asarray(decoded.grey), np.asarray(picture))
    rgb = np.asarray(decoded.rgb)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], np.asarray(picture))


def test_mode_RGB_uses_luminance():
    pixels = np.zeros((4, 3, 3), dtype=np.uint8)
    pixels[:, 0] = (255, 0, 0)
    pixels[:, 1] = (0, 255, 0)
    pixels[:, 2] = (0, 0, 255)
    decoded = decode_image(encode(Image.fromarray(pixels)))
    # ITU-R 601-2 luma: 0.299 R + 0.587 G + 0.114 B
    np.testing.assert_array_equal(_grey(decoded)[0], [76, 150, 29])
    np.testing.assert_array_equal(np.asarray(decoded.rgb), pixels)


def test_mode_RGBA_transparent_pixels_become_black():
    pixels = np.full((6, 9, 4), 255, dtype=np.uint8)
    pixels[:, :3, 3] = 0  # fully transparent white
    pixels[:, 3:6, 3] = 128  # half transparent white
    decoded = decode_image(encode(Image.fromarray(pixels)))
    grey = _grey(decoded)
    assert (grey[:, :3] == 0).all()
    assert (np.abs(grey[:, 3:6] - 128) <= 1).all()
    assert (grey[:, 6:] == 255).all()
    assert (np.asarray(decoded.rgb)[:, :3] == 0).all()


def test_mode_LA_transparent_pixels_become_black():
    pixels = np.full((5, 8, 2), 200, dtype=np.uint8)
    pixels[:, :4, 1] = 0
    pixels[:, 4:, 1] = 255
    image = Image.fromarray(pixels)
    assert image.mode == "LA"
    grey = _grey(decode_image(encode(image)))
    assert (grey[:, :4] == 0).all()
    assert (grey[:, 4:] == 200).all()


def _palette_image() -> Image.Image:
    image = Image.new("P", (8, 4), 0)
    image.putpalette([255, 255, 255, 255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    image.paste(1, (0, 0, 4, 4))  # left half red
    image.paste(2, (4, 0, 6, 4))  # then blue, right two columns stay index 0 (white)
    return image


def test_mode_P_without_transparency():
    decoded = decode_image(encode(_palette_image()))
    grey = _grey(decoded)
    assert (grey[:, :4] == 76).all()  # red
    assert (grey[:, 4:6] == 29).all()  # blue
    assert (grey[:, 6:] == 255).all()  # white
    assert tuple(np.asarray(decoded.rgb)[0, 0]) == (255, 0, 0)


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_mode_P_with_transparency_becomes_black(fmt):
    data = encode(_palette_image(), fmt, transparency=0)  # index 0 (white) is transparent
    grey = _grey(decode_image(data))
    assert (grey[:, 6:] == 0).all()
    assert (grey[:, :4] == 76).all()


@pytest.mark.parametrize(("cmyk", "expected"), [((0, 0, 0, 255), 0), ((0, 0, 0, 0), 255)])
def test_mode_CMYK_jpeg(cmyk, expected):
    image = Image.new("CMYK", (16, 8), cmyk)
    data = encode(image, "JPEG")
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    decoded = decode_image(data)
    assert decoded.format == "JPEG"
    assert decoded.rgb.mode == "RGB"
    assert (np.abs(_grey(decoded) - expected) <= 2).all()


@pytest.mark.parametrize("fmt", ["PNG", "BMP"])
def test_mode_1_bit(fmt):
    image = Image.new("1", (10, 4), 0)
    image.paste(1, (0, 0, 5, 4))
    grey = _grey(decode_image(encode(image, fmt)))
    assert (grey[:, :5] == 255).all()
    assert (grey[:, 5:] == 0).all()


def test_16_bit_png_keeps_contrast():
    """A 12-bit scan in a 16-bit PNG must not turn into a white silhouette."""
    values = np.linspace(0, 4000, 64 * 48).reshape(48, 64).astype(np.uint16)
    data = encode(Image.fromarray(values))
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    decoded = decode_image(data)
    grey = _grey(decoded)
    assert decoded.grey.mode == "L"
    assert grey.min() == 0
    assert grey.max() == 255
    assert (grey < 255).mean() > 0.9  # not all white
    np.testing.assert_allclose(grey, np.round(values / 4000 * 255), atol=1)
    np.testing.assert_array_equal(np.asarray(decoded.rgb)[..., 1], grey)


def test_32_bit_integer_mode_keeps_contrast():
    values = (np.arange(32 * 16).reshape(16, 32) * 2000).astype(np.int32)
    image = Image.fromarray(values)
    assert image.mode == "I"
    grey, rgb = normalise_mode(image)
    arr = np.asarray(grey, dtype=np.int16)
    assert grey.mode == "L" and rgb.mode == "RGB"
    assert arr.min() == 0 and arr.max() == 255
    np.testing.assert_allclose(arr, np.round(values / values.max() * 255), atol=1)


def test_float_mode_keeps_contrast_and_maps_nan_to_the_minimum():
    values = np.linspace(-1.0, 1.0, 20 * 10, dtype=np.float32).reshape(10, 20)
    values[0, 5] = np.nan
    image = Image.fromarray(values)
    assert image.mode == "F"
    grey, rgb = normalise_mode(image)
    arr = np.asarray(grey, dtype=np.int16)
    assert arr.min() == 0 and arr.max() == 255
    assert arr[0, 5] == 0
    assert arr[5, 10] == round((values[5, 10] + 1) / 2 * 255)
    assert rgb.size == grey.size == (20, 10)


def test_float_mode_without_finite_values_is_invalid():
    image = Image.fromarray(np.full((4, 4), np.nan, dtype=np.float32))
    with pytest.raises(InvalidImageError, match="no finite pixel values"):
        normalise_mode(image)


# --- orientation and animation ------------------------------------------------------------


def test_exif_orientation_is_applied():
    image = Image.new("L", (40, 20), 0)
    image.paste(255, (0, 0, 20, 20))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90 degrees clockwise to view
    decoded = decode_image(encode(image, "JPEG", exif=exif, quality=95))
    assert decoded.size == (20, 40)
    assert decoded.grey.size == decoded.rgb.size == (20, 40)
    grey = _grey(decoded)
    assert grey[:18].mean() > 240  # the left edge is now the top
    assert grey[22:].mean() < 15


def test_jpeg_without_exif_keeps_its_size():
    decoded = decode_image(encode(Image.new("L", (40, 20), 0), "JPEG"))
    assert decoded.size == (40, 20)


@pytest.mark.parametrize(("fmt", "params"), [("GIF", {}), ("WEBP", {"lossless": True})])
@pytest.mark.parametrize(("first", "second"), [(0, 255), (255, 0)])
def test_animation_uses_first_frame(fmt, params, first, second):
    frames = [Image.new("RGB", (20, 12), (v, v, v)) for v in (first, second)]
    data = encode(
        frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **params
    )
    assert Image.open(io.BytesIO(data)).n_frames == 2
    decoded = decode_image(data)
    assert decoded.format == fmt
    assert np.abs(_grey(decoded) - first).max() <= 2


def test_multi_picture_jpeg_is_reported_as_jpeg():
    frames = [Image.new("L", (32, 24), v) for v in (0, 255)]
    data = encode(frames[0], "MPO", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    decoded = decode_image(data)
    assert decoded.format == "JPEG"
    assert _grey(decoded).max() <= 2  # the first picture (black), not the second
