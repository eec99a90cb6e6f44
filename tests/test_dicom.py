"""DICOM decoding: the display pipeline DICOM prescribes, frames, colour, errors, privacy."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from pydicom.pixels import pixel_array
from pydicom.uid import SecondaryCaptureImageStorage

from braintumor.decoding import check_extension, decode_image, parse_frame
from braintumor.dicom import DicomFrames, decode_dicom, is_dicom
from braintumor.dicom.pixels import FALLBACK_PERCENTILES
from braintumor.errors import InvalidImageError
from braintumor.preprocessing import canonical_pixels
from conftest import encode, scan_like
from dicom_helpers import (
    PATIENT_VALUES,
    example_file,
    example_path,
    make_dicom,
    patient_tags,
    ramp,
)


def grey(decoded) -> np.ndarray:
    return np.asarray(decoded.grey, dtype=np.int16)


def linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 (LINEAR) to 0..255, written out independently of pydicom."""
    unit = np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)
    return np.round(unit * 255).astype(np.int16)


def percentile_window(values: np.ndarray) -> np.ndarray:
    low, high = np.percentile(values, FALLBACK_PERCENTILES)
    return np.round(np.clip((values - low) / (high - low), 0, 1) * 255).astype(np.int16)


def invalid(data: bytes, match: str, **kwargs) -> str:
    with pytest.raises(InvalidImageError, match=match) as info:
        decode_image(data, **kwargs)
    assert info.value.code == "INVALID_IMAGE" and info.value.status == 400
    assert info.value.message.startswith("Image validation failed: ")
    return info.value.message


# --- recognition --------------------------------------------------------------------------


def test_recognised_by_the_dicm_marker():
    assert is_dicom(example_file("MR_small.dcm"))
    assert not is_dicom(encode(scan_like()))
    assert not is_dicom(b"\x00" * 128 + b"DIC")  # too short
    assert not is_dicom(b"DICM" + b"\x00" * 200)  # marker in the wrong place


@pytest.mark.parametrize("name", ["scan.dcm", "SCAN.DCM", "scan.dicom", "a.b/scan.Dicom"])
def test_dicom_extensions_are_allowed(name):
    check_extension(name)  # must not raise


def test_png_named_dcm_decodes_as_png():
    check_extension("scan.dcm")
    decoded = decode_image(encode(scan_like((40, 30))))
    assert decoded.format == "PNG"
    assert decoded.dicom is None


def test_dicom_named_png_decodes_as_dicom():
    check_extension("scan.png")
    decoded = decode_image(example_file("MR_small.dcm"))
    assert decoded.format == "DICOM"
    assert decoded.dicom is not None and decoded.dicom.modality == "MR"


# --- the display pipeline -----------------------------------------------------------------


def test_mr_small_uses_its_own_window():
    data = example_file("MR_small.dcm")
    decoded = decode_image(data)
    assert decoded.format == "DICOM"
    assert decoded.size == (64, 64)
    assert decoded.grey.mode == "L" and decoded.rgb.mode == "RGB"
    raw = pixel_array(example_path("MR_small.dcm")).astype(np.float64)
    np.testing.assert_allclose(grey(decoded), linear_window(raw, 600, 1600), atol=1)
    np.testing.assert_array_equal(np.asarray(decoded.rgb)[..., 0], np.asarray(decoded.grey))
    info = decoded.dicom
    assert info.to_json() == {
        "modality": "MR", "rows": 64, "columns": 64, "bits_stored": 16,
        "photometric_interpretation": "MONOCHROME2", "number_of_frames": 1, "frame": 0,
        "window": {"center": 600.0, "width": 1600.0, "source": "file"},
        "transfer_syntax": "Explicit VR Little Endian", "body_part": None,
    }
    assert info.warning is None and info.is_mr


def test_ct_small_is_rescaled_then_windowed_by_the_fallback_and_warned():
    decoded = decode_image(example_file("CT_small.dcm"))
    raw = pixel_array(example_path("CT_small.dcm")).astype(np.float64)
    hounsfield = raw * 1.0 - 1024.0  # the file's Rescale Slope/Intercept
    np.testing.assert_allclose(grey(decoded), percentile_window(hounsfield), atol=1)
    info = decoded.dicom
    assert info.modality == "CT"
    assert info.window.source == "fallback"
    low, high = np.percentile(hounsfield, FALLBACK_PERCENTILES)
    assert info.window.center == pytest.approx((low + high) / 2, abs=1e-3)
    assert info.window.width == pytest.approx(high - low, abs=1e-3)
    assert info.warning == "modality CT is not MR: this model was trained on MRI only"
    assert info.to_json()["warning"] == info.warning


def test_16_bit_values_keep_their_range_until_the_window():
    """Values 1000-1200 of 16: clipped to 8 bits first they would all be white."""
    values = ramp(1000, 1200)
    assert (np.clip(values, 0, 255) == 255).all()  # what a naive conversion gives
    decoded = decode_image(make_dicom(values, window=(1100, 200)))
    g = grey(decoded)
    assert g.min() <= 1 and g.max() >= 254
    assert len(np.unique(g)) == 64  # one grey level per column of the ramp
    assert (np.diff(g[0]) >= 0).all()  # the gradient survives, in order
    np.testing.assert_allclose(g, linear_window(values.astype(np.float64), 1100, 200), atol=1)
    assert decoded.dicom.window.to_json() == {"center": 1100.0, "width": 200.0,
                                              "source": "file"}


def test_the_window_decides_what_is_shown():
    values = ramp(0, 4000)
    narrow = grey(decode_image(make_dicom(values, bits_stored=12, window=(2000, 400))))
    wide = grey(decode_image(make_dicom(values, bits_stored=12, window=(2000, 4000))))
    assert (narrow == 0).mean() > 0.4 and (narrow == 255).mean() > 0.4  # saturated outside
    assert (wide == 0).mean() < 0.05 and (wide == 255).mean() < 0.05
    np.testing.assert_allclose(narrow, linear_window(values.astype(float), 2000, 400), atol=1)
    np.testing.assert_allclose(wide, linear_window(values.astype(float), 2000, 4000), atol=1)


def test_without_a_window_the_percentile_fallback_is_used():
    values = ramp(1000, 1200)
    values[0, 0] = 60000  # one hot pixel must not squash the rest to black
    decoded = decode_image(make_dicom(values))
    g = grey(decoded)
    assert decoded.dicom.window.source == "fallback"
    assert np.median(g) == pytest.approx(128, abs=4)
    assert len(np.unique(g)) == 64
    np.testing.assert_allclose(g, percentile_window(values.astype(np.float64)), atol=1)


def test_rescale_comes_before_the_window():
    """Stored 0..1000 with slope 2, intercept -1000 is -1000..1000; the window is in those units."""
    stored = ramp(0, 1000)
    decoded = decode_image(make_dicom(stored, rescale=(2.0, -1000.0), window=(0, 2000)))
    modality = stored.astype(np.float64) * 2.0 - 1000.0
    np.testing.assert_allclose(grey(decoded), linear_window(modality, 0, 2000), atol=1)
    assert abs(int(grey(decoded)[0, 32]) - 128) <= 3  # stored 500 is 0 after rescaling


def test_an_unusable_window_falls_back():
    decoded = decode_image(make_dicom(ramp(0, 1000), window=(500, 0)))  # width 0 is invalid
    assert decoded.dicom.window.source == "fallback"
    assert grey(decoded).min() == 0 and grey(decoded).max() == 255


def test_several_windows_use_the_first():
    decoded = decode_image(make_dicom(ramp(0, 1000), extra={
        "WindowCenter": [500, 100], "WindowWidth": [1000, 50]}))
    assert decoded.dicom.window.to_json() == {"center": 500.0, "width": 1000.0,
                                              "source": "file"}


def test_voi_lut_sequence_is_applied():
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    item = Dataset()
    item.LUTDescriptor = [256, 0, 8]
    item.add_new("LUTData", "US", list(range(255, -1, -1)))  # inverting 0..255
    values = ramp(0, 255, dtype=np.uint16)
    decoded = decode_image(make_dicom(values, bits_stored=8,
                                      extra={"VOILUTSequence": Sequence([item])}))
    assert decoded.dicom.window.to_json() == {"center": None, "width": None,
                                              "source": "voi_lut"}
    np.testing.assert_array_equal(grey(decoded), 255 - values)


def test_monochrome1_is_inverted():
    values = ramp(0, 1000)
    m2 = grey(decode_image(make_dicom(values, window=(500, 1000))))
    decoded = decode_image(make_dicom(values, photometric="MONOCHROME1", window=(500, 1000)))
    m1 = grey(decoded)
    assert decoded.dicom.photometric_interpretation == "MONOCHROME1"
    assert m1[0, 0] >= 254 and m1[0, -1] <= 1  # the lowest value is white
    np.testing.assert_allclose(m1, 255 - m2, atol=1)


def test_signed_values():
    values = ramp(-1000, 1000, dtype=np.int16)
    decoded = decode_image(make_dicom(values, window=(0, 2000)))
    np.testing.assert_allclose(grey(decoded), linear_window(values.astype(float), 0, 2000),
                               atol=1)


# --- compressed transfer syntaxes ---------------------------------------------------------


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm",
                                  "MR_small_jp2klossless.dcm", "MR_small_bigendian.dcm",
                                  "MR_small_implicit.dcm"])
def test_lossless_encodings_decode_exactly_like_the_original(name):
    reference = grey(decode_image(example_file("MR_small.dcm")))
    decoded = decode_image(example_file(name))
    np.testing.assert_array_equal(grey(decoded), reference)
    assert decoded.dicom.window.source == "file"


@pytest.mark.parametrize(("name", "syntax"), [
    ("JPEG2000.dcm", "JPEG 2000 Image Compression"),
    ("JPGExtended.dcm", "JPEG Extended (Process 2 and 4)"),
    ("693_J2KI.dcm", "JPEG 2000 Image Compression"),
])
def test_compressed_grey_files_decode_with_contrast(name, syntax):
    decoded = decode_image(example_file(name))
    assert decoded.dicom.transfer_syntax == syntax
    g = grey(decoded)
    assert g.min() < 20 and g.max() > 235 and g.std() > 20


def test_jpeg_colour_dicom_becomes_grey_like_any_colour_image():
    decoded = decode_image(example_file("SC_rgb_jpeg_dcmtk.dcm"))
    info = decoded.dicom
    assert info.photometric_interpretation == "YBR_FULL"  # as the file says it
    assert info.transfer_syntax == "JPEG Baseline (Process 1)"
    assert info.window is None
    rgb = np.asarray(decoded.rgb, dtype=np.int16)
    assert np.abs(rgb[..., 0] - rgb[..., 1]).max() > 100  # really in colour
    # the same luminance rule as a colour PNG or JPEG upload (Pillow's ITU-R 601-2 luma)
    np.testing.assert_array_equal(np.asarray(decoded.rgb.convert("L")), np.asarray(decoded.grey))
    # ... and close to the losslessly stored original
    lossless = grey(decode_image(example_file("SC_rgb_rle.dcm")))
    assert np.abs(grey(decoded) - lossless).mean() < 3


@pytest.mark.parametrize("name", ["SC_rgb_rle_16bit.dcm", "SC_ybr_full_422_uncompressed.dcm",
                                  "examples_palette.dcm"])
def test_other_colour_files(name):
    decoded = decode_image(example_file(name))
    assert decoded.rgb.mode == "RGB" and decoded.grey.mode == "L"
    np.testing.assert_array_equal(np.asarray(decoded.rgb.convert("L")), np.asarray(decoded.grey))
    assert grey(decoded).max() > 100


def test_16_bit_colour_is_scaled_not_clipped():
    eight = grey(decode_image(example_file("SC_rgb_rle.dcm")))
    sixteen = grey(decode_image(example_file("SC_rgb_rle_16bit.dcm")))
    assert np.abs(eight - sixteen).max() <= 1


def test_synthetic_rgb_dicom():
    picture = np.asarray(scan_like((40, 30)).convert("RGB")).copy()
    picture[..., 0] = 255 - picture[..., 0]
    decoded = decode_image(make_dicom(picture, photometric="RGB", bits_stored=8,
                                      sop_class=SecondaryCaptureImageStorage))
    np.testing.assert_array_equal(np.asarray(decoded.rgb), picture)


# --- frames -------------------------------------------------------------------------------


def frames_file(count: int = 5) -> bytes:
    """Frame i is flat at 200 i + 100; the window maps 0..1000 onto 0..255."""
    stack = np.stack([np.full((12, 16), 200 * i + 100, np.uint16) for i in range(count)])
    return make_dicom(stack, window=(500, 1000))


def frame_grey(count: int, index: int) -> int:
    return int(linear_window(np.array([200.0 * index + 100]), 500, 1000)[0])


def test_multi_frame_uses_the_middle_frame_by_default():
    decoded = decode_image(frames_file(5))
    assert decoded.dicom.number_of_frames == 5
    assert decoded.dicom.frame == 2
    assert (grey(decoded) == frame_grey(5, 2)).all()
    assert decode_image(frames_file(4)).dicom.frame == 2  # frames // 2


@pytest.mark.parametrize("index", [0, 1, 4])
def test_a_frame_can_be_chosen(index):
    decoded = decode_image(frames_file(5), frame=index)
    assert decoded.dicom.frame == index
    assert (grey(decoded) == frame_grey(5, index)).all()


@pytest.mark.parametrize("index", [5, 99, -1])
def test_a_frame_out_of_range_is_invalid(index):
    message = invalid(frames_file(5), "out of range", frame=index)
    assert message == (f"Image validation failed: frame {index} is out of range: "
                       "the DICOM file has 5 frames (0-4)")


def test_single_frame_file_has_frame_0_only():
    data = example_file("MR_small.dcm")
    assert decode_image(data, frame=0).dicom.frame == 0
    assert invalid(data, "out of range", frame=1).endswith("the DICOM file has 1 frame (0)")


@pytest.mark.parametrize(("name", "frames", "middle"), [
    ("SC_rgb_rle_2frame.dcm", 2, 1),
    ("examples_ybr_color.dcm", 30, 15),  # JPEG baseline, 30 frames
    ("rtdose.dcm", 15, 7),
])
def test_bundled_multi_frame_files(name, frames, middle):
    data = example_file(name)
    decoded = decode_image(data)
    assert (decoded.dicom.number_of_frames, decoded.dicom.frame) == (frames, middle)
    first, last = decode_image(data, frame=0), decode_image(data, frame=frames - 1)
    assert first.dicom.frame == 0 and last.dicom.frame == frames - 1


def test_enhanced_files_use_the_chosen_frames_own_window():
    """Enhanced MR keeps rescale and window per frame, in the functional groups."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    def group(center: float, width: float) -> Dataset:
        voi = Dataset()
        voi.WindowCenter, voi.WindowWidth = center, width
        item = Dataset()
        item.FrameVOILUTSequence = Sequence([voi])
        return item

    shared_transform = Dataset()
    shared_transform.RescaleSlope, shared_transform.RescaleIntercept = 1.0, -100.0
    shared_transform.RescaleType = "US"
    shared = Dataset()
    shared.PixelValueTransformationSequence = Sequence([shared_transform])
    stack = np.stack([ramp(100, 1100, (8, 32)) for _ in range(3)])
    data = make_dicom(stack, extra={
        "SharedFunctionalGroupsSequence": Sequence([shared]),
        "PerFrameFunctionalGroupsSequence": Sequence(
            [group(200, 400), group(500, 1000), group(800, 400)]),
    })
    modality = stack[0].astype(np.float64) - 100.0
    for index, (center, width) in enumerate([(200, 400), (500, 1000), (800, 400)]):
        decoded = decode_image(data, frame=index)
        assert decoded.dicom.window.to_json() == {"center": float(center),
                                                  "width": float(width), "source": "file"}
        np.testing.assert_allclose(grey(decoded), linear_window(modality, center, width),
                                   atol=1)


def test_frames_of_one_parse_decode_as_each_file_read_alone():
    """DicomFrames parses once for every frame (enhanced series): a frame's own window
    and rescale must not stay behind for the next frame, which has none of its own."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    def own(center: float, width: float, intercept: float) -> Dataset:
        voi, transform = Dataset(), Dataset()
        voi.WindowCenter, voi.WindowWidth = center, width
        transform.RescaleSlope, transform.RescaleIntercept = 1.0, intercept
        transform.RescaleType = "US"
        item = Dataset()
        item.FrameVOILUTSequence = Sequence([voi])
        item.PixelValueTransformationSequence = Sequence([transform])
        return item

    stack = np.stack([ramp(100, 1100, (8, 32)) for _ in range(4)])
    # frames 0 and 2 carry their own window and rescale; 1 and 3 fall back to the file's
    data = make_dicom(stack, window=(600.0, 1000.0), extra={
        "PerFrameFunctionalGroupsSequence": Sequence(
            [own(200, 400, -100.0), Dataset(), own(900, 300, 50.0), Dataset()]),
    })
    frames = DicomFrames(data)
    for index in (0, 1, 2, 3, 1, 0):  # out of order and again: no state carried over
        alone = decode_dicom(data, frame=index)
        shared = frames.decode(index)
        assert shared[2] == alone[2], index
        np.testing.assert_array_equal(np.asarray(shared[0]), np.asarray(alone[0]))
    assert alone[2].window.to_json()["center"] == 200.0
    assert frames.decode(1)[2].window.to_json()["center"] == 600.0
    with pytest.raises(InvalidImageError, match="frame 4 is out of range"):
        frames.decode(4)


def test_frame_is_refused_for_other_formats():
    png = encode(scan_like((20, 20)))
    assert decode_image(png, frame=0).format == "PNG"
    invalid(png, "only DICOM files have frames", frame=1)


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), ("", None), ("  ", None), ("0", 0), ("7", 7), (" 12 ", 12),
])
def test_parse_frame(value, expected):
    assert parse_frame(value) == expected


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "1e3", "\u0663", "9" * 12])
def test_parse_frame_refuses(value):
    with pytest.raises(InvalidImageError, match="frame must be a whole number from 0"):
        parse_frame(value)


# --- refusals -----------------------------------------------------------------------------


def test_truncated_file_is_invalid():
    data = example_file("MR_small.dcm")
    invalid(data[: len(data) * 3 // 5], "pixel data is truncated")
    invalid(example_file("MR_truncated.dcm"), "pixel data is truncated")


@pytest.mark.parametrize("keep", [140, 300, 700, 1200, 2000])
def test_file_cut_anywhere_is_invalid_never_a_crash(keep):
    for name in ("MR_small.dcm", "JPEG2000.dcm", "SC_rgb_rle_2frame.dcm"):
        data = example_file(name)
        with pytest.raises(InvalidImageError):
            decode_image(data[:keep])


def test_cut_inside_encapsulated_pixel_data_is_truncated():
    data = example_file("JPEG2000.dcm")
    invalid(data[:-200], "truncated")


def test_no_pixel_data_is_invalid():
    message = invalid(make_dicom(ramp(0, 10), pixel_data=False), "no pixel data")
    assert "MR Image Storage" in message
    assert invalid(example_file("reportsi.dcm"), "no pixel data").endswith(
        "(a 'Basic Text SR Storage' object): it is not an image")


def test_unknown_transfer_syntax_is_invalid():
    invalid(make_dicom(ramp(0, 10), transfer_syntax="1.2.3.4.5.6"),
            "transfer syntax 1.2.3.4.5.6 is not supported")
    invalid(make_dicom(ramp(0, 10), transfer_syntax="1.2.840.10008.1.2.4.100"),
            "transfer syntax MPEG2 Main Profile / Main Level is not supported")


def test_missing_decoder_plugin_is_invalid(monkeypatch, caplog):
    from pydicom.pixels.decoders.base import Decoder

    monkeypatch.setattr(Decoder, "is_available", property(lambda self: self.is_native))
    with caplog.at_level(logging.WARNING, logger="braintumor.dicom"):
        invalid(example_file("JPEG2000.dcm"), "JPEG 2000 Image Compression cannot be decoded: "
                                          "no decoder for it is installed")
    assert "cannot be decoded here" in caplog.text  # the operator learns what to install
    assert decode_image(example_file("MR_small.dcm")).format == "DICOM"  # native still works


def test_corrupt_compressed_data_is_invalid():
    invalid(example_file("JPEG-lossy.dcm"), "pixel data cannot be decoded")


def test_pixel_limit_is_checked_before_decoding():
    data = example_file("MR_small.dcm")
    assert decode_image(data, max_pixels=4096).size == (64, 64)
    invalid(data, "64x64 pixels exceeds the limit of 4095 pixels", max_pixels=4095)


def test_incomplete_image_description_is_invalid():
    invalid(make_dicom(ramp(0, 10), extra={"Rows": None}), "incomplete")


def test_unknown_text_in_photometric_interpretation_is_invalid():
    message = invalid(make_dicom(ramp(0, 10), extra={
        "PhotometricInterpretation": "Zyxwhimsy is here"}), "photometric interpretation")
    assert "Zyxwhimsy" not in message


# --- the rest of the pipeline -------------------------------------------------------------


def test_canonical_pixels_take_a_dicom_like_any_image():
    decoded = decode_image(example_file("MR_small.dcm"))
    pixels = canonical_pixels(decoded, (32, 32))
    assert pixels.shape == (32, 32) and pixels.dtype == np.uint8 and pixels.std() > 10


def test_overlay_planes_are_not_burned_in():
    """examples_overlay.dcm has an overlay plane: the picture is the pixels alone."""
    data = example_file("examples_overlay.dcm")
    raw = pixel_array(example_path("examples_overlay.dcm")).astype(np.float64)
    decoded = decode_image(data)
    np.testing.assert_allclose(grey(decoded), linear_window(raw, 450, 790), atol=1)


def test_spark_jobs_read_dicom_files():
    import pandas as pd

    from braintumor.spark.images import extension_glob
    from braintumor.spark.preprocess import preprocess_batches

    glob = extension_glob()
    assert "[dD][cC][mM]" in glob and "[dD][iI][cC][oO][mM]" in glob
    batch = pd.DataFrame({"path": ["file:/x/glioma/a.dcm", "file:/x/glioma/b.dcm"],
                          "content": [example_file("MR_small.dcm"), example_file("reportsi.dcm")]})
    rows = next(preprocess_batches(iter([batch]), (16, 16), ["Glioma"], 10**6))
    ok, bad = rows.iloc[0], rows.iloc[1]
    assert ok["error"] is None and len(ok["pixels"]) == 256 and ok["source_width"] == 64
    assert "no pixel data" in bad["error"]


# --- privacy ------------------------------------------------------------------------------


def stuffed(**kwargs) -> bytes:
    tags = patient_tags()
    tags["PatientBirthDate"] = "NOT-A-DATE-" + PATIENT_VALUES["PatientBirthDate"]  # invalid DA
    return make_dicom(ramp(0, 1000), extra={**tags, "SpecificCharacterSet": "ISO_IR 192"},
                      **kwargs)


def assert_no_patient_data(text: str) -> None:
    for keyword, value in PATIENT_VALUES.items():
        for part in {value, *value.replace("^", " ").split()}:
            if len(part) >= 6:
                assert part not in text, f"{keyword} leaked: {part!r}"


def test_patient_tags_are_never_read(caplog, recwarn, capfd):
    data = stuffed()
    assert PATIENT_VALUES["PatientID"].encode() in data  # they are in the file ...
    caplog.clear()  # (pydicom itself logs the odd values while writing the test file)
    recwarn.clear()
    capfd.readouterr()
    with caplog.at_level(logging.DEBUG):
        decoded = decode_image(data)
    info = decoded.dicom
    # ... and nowhere in what the decoding exposes, says or logs
    assert_no_patient_data(repr(info) + json.dumps(info.to_json()))
    assert_no_patient_data(caplog.text)
    assert_no_patient_data(" ".join(str(w.message) for w in recwarn))
    out, err = capfd.readouterr()
    assert_no_patient_data(out + err)


def test_only_image_description_tags_are_parsed():
    from braintumor.dicom import _read

    ds = _read(stuffed())
    for keyword in PATIENT_VALUES:
        assert keyword not in ds
    assert "Rows" in ds and "PixelData" in ds and "Modality" in ds


@pytest.mark.parametrize("variant", ["no-pixels", "truncated", "bad-frame", "bad-syntax"])
def test_errors_carry_no_patient_data(variant, caplog):
    data = {
        "no-pixels": lambda: stuffed(pixel_data=False),
        "truncated": lambda: stuffed()[:-500],
        "bad-frame": stuffed,
        "bad-syntax": lambda: stuffed(transfer_syntax="1.2.3.4.5.6"),
    }[variant]()
    caplog.clear()  # what writing the test file logged
    with caplog.at_level(logging.DEBUG), pytest.raises(InvalidImageError) as info:
        decode_dicom(data, frame=3 if variant == "bad-frame" else None)
    assert_no_patient_data(info.value.message)
    assert_no_patient_data(caplog.text)
    # no chained pydicom exception (its text may quote values) rides along into a log
    error = info.value
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def test_modality_text_cannot_smuggle_data(caplog, recwarn):
    data = make_dicom(ramp(0, 10), modality="Zyxwhimsy^Quentinella")
    caplog.clear()
    recwarn.clear()
    with caplog.at_level(logging.DEBUG):
        decoded = decode_image(data)
    assert "Zyxwhimsy" not in caplog.text  # pydicom would log it while validating it
    assert not [w for w in recwarn if "Zyxwhimsy" in str(w.message)]
    assert decoded.dicom.modality is None
    assert decoded.dicom.warning == "modality is not stated: this model was trained on MRI only"
