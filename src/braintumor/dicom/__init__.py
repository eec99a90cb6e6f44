"""DICOM (Part 10) files -> the same grey/RGB pair as any other upload.

:func:`braintumor.decoding.decode_image` sends a file here when it carries the ``DICM``
marker at bytes 128-132, whatever its name; the API, the CLI, training and the Spark jobs
therefore all read DICOM the same way. One frame is decoded (the middle one unless asked),
and its stored values are turned into display grey in the order DICOM prescribes:

1. modality LUT: Rescale Slope/Intercept or a Modality LUT Sequence
   (:func:`pydicom.pixels.apply_modality_lut`), in 16-bit or float, full range kept;
2. VOI: the file's VOI LUT Sequence or its first Window Center/Width
   (:func:`pydicom.pixels.apply_voi_lut`); a file without either (or with an unusable
   one) is windowed from its own values, 0.5th to 99.5th percentile, so one hot pixel
   does not turn the slice black and an empty background does not turn it white;
3. MONOCHROME1 is inverted (its minimum is white);
4. 8-bit grey, handed to the canonical preprocessing like any decoded image.

Enhanced (multi-frame) files keep rescale and window per frame in their functional groups;
the chosen frame's values are used. Colour files (RGB, YBR, palette) are scaled to 8 bits
and reduced to grey by the same luminance rule as colour PNG or JPEG uploads. Overlay
planes and presentation states are not applied: the pictures come from pixels alone.

Patient data never leaves this module. The file is parsed with pydicom's
``specific_tags``, so only the image-description tags below are kept (no name, ID, date,
institution... is even decoded), error messages are our own sentences (never pydicom's
text, which may quote values), and the facts exposed on :class:`DicomInfo` are
non-identifying.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import re
import warnings
from collections.abc import Iterator

import numpy as np
import pydicom
from PIL import Image
from pydicom import config as pydicom_config
from pydicom.datadict import DicomDictionary, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.pixels import as_pixel_options, get_decoder
from pydicom.pixels.utils import get_expected_length, get_nr_frames
from pydicom.uid import UID

from braintumor.dicom.pixels import colour_rgb, fail, grey_image
from braintumor.errors import InvalidImageError
from braintumor.imaging import DEFAULT_MAX_PIXELS, DicomInfo, Window, normalise_mode

log = logging.getLogger(__name__)

#: File name extensions DICOM files are commonly saved under.
DICOM_EXTENSIONS: tuple[str, ...] = ("dcm", "dicom")

_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_REQUIRED = ("Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation",
             "BitsAllocated")
#: A Code String (CS) value: what Modality and Photometric Interpretation must look like.
_CODE_STRING = re.compile(r"^[A-Z0-9_ ]{1,16}$")
_UID = re.compile(r"^[0-9.]{1,64}$")


def is_dicom(data: bytes) -> bool:
    """True when ``data`` is a DICOM Part 10 file: 128-byte preamble, then ``DICM``."""
    return len(data) >= 132 and data[128:132] == b"DICM"


@functools.cache
def _tags_to_read() -> tuple[int, ...]:
    """Every tag the decoding needs, and nothing else (see the module docstring).

    Group 0028 is the image description (size, depth, photometric interpretation,
    rescale, window, LUTs, palettes); the functional groups hold an enhanced file's
    per-frame rescale and window. Specific Character Set is always read by pydicom.
    """
    group_0028 = [tag for tag in DicomDictionary if tag >> 16 == 0x0028]
    keywords = ("Modality", "BodyPartExamined", "SOPClassUID",
                "SharedFunctionalGroupsSequence",
                "PerFrameFunctionalGroupsSequence", "ExtendedOffsetTable",
                "ExtendedOffsetTableLengths", *_PIXEL_KEYWORDS)
    named = [tag_for_keyword(k) for k in keywords]
    return tuple(sorted({*group_0028, *(tag for tag in named if tag is not None)}))


def _code_string(value: object) -> str | None:
    """A CS value as text when it looks like one (so a file cannot smuggle text out)."""
    text = str(value).strip().upper() if value is not None else ""
    return text if _CODE_STRING.match(text) else None


def _uid_name(uid: object) -> str | None:
    """The registered name of a UID (e.g. 'JPEG 2000 Image Compression'), else the UID."""
    text = str(uid).strip()
    if not _UID.match(text):
        return None
    name = UID(text).name
    return name if name != text else text


def _kind(exc: BaseException) -> str:
    """An exception's type for a message (never its text, which may quote tag values)."""
    name = type(exc).__name__
    return f"{type(exc).__module__}.{name}" if name.islower() else name


@functools.cache
def quiet_pydicom() -> None:
    """Never let pydicom validate values aloud.

    pydicom can validate a value when it is converted and, in its default mode, logs a
    failure *with the value* (``Invalid value for VR DA: '...'``) to a logger that
    propagates to ours. Only the tags above are ever read, but a file may put anything in
    them. A process-wide pydicom setting: every module that parses DICOM calls this.
    """
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE


def _read(data: bytes) -> Dataset:
    """Parse the image-description tags; a file cut short is refused, not half-read.

    pydicom reads a truncated file without complaint: it stops at the end, skipping an
    element whose declared length runs past it, or warns when an undefined-length value
    has no delimiter. Both are caught here, before "no pixel data" could be claimed.
    """
    quiet_pydicom()
    buffer = io.BytesIO(data)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(buffer, specific_tags=list(_tags_to_read()))
    except Exception as exc:
        raise fail(f"the DICOM file is truncated or corrupt ({_kind(exc)})") from None
    if buffer.tell() > len(data) or any("end of file" in str(w.message).lower()
                                        for w in caught):
        raise fail("the DICOM file is truncated (it ends inside a data element)")
    return ds


def _frame_functional_groups(ds: Dataset, frame: int) -> None:
    """Copy an enhanced file's rescale and window for ``frame`` onto ``ds``'s top level.

    Enhanced MR/CT files keep them in the Shared or Per-frame Functional Groups
    (Pixel Value Transformation, Frame VOI LUT); pydicom's LUT functions read the top
    level. Per-frame values win over shared ones. ``ds`` is this module's private copy.
    """
    groups = []
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and frame < len(per_frame):
        groups.append(per_frame[frame])
    for group in groups:
        transform = group.get("PixelValueTransformationSequence")
        if transform and "RescaleSlope" in transform[0] and "RescaleIntercept" in transform[0]:
            ds.RescaleSlope = transform[0].RescaleSlope
            ds.RescaleIntercept = transform[0].RescaleIntercept
        voi = group.get("FrameVOILUTSequence")
        if voi and "WindowCenter" in voi[0] and "WindowWidth" in voi[0]:
            ds.WindowCenter = voi[0].WindowCenter
            ds.WindowWidth = voi[0].WindowWidth
            if "VOILUTFunction" in voi[0]:
                ds.VOILUTFunction = voi[0].VOILUTFunction


def _pixel_spacing(ds: Dataset, frame: int) -> tuple[float, float] | None:
    """(row, column) Pixel Spacing in mm of ``frame``: the per-frame Pixel Measures, else
    the shared ones, else the top-level tag; None when absent or not two positive numbers."""
    candidates = []
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and frame < len(per_frame):
        candidates.append(per_frame[frame])
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        candidates.append(shared[0])
    values = None
    for group in candidates:
        measures = group.get("PixelMeasuresSequence")
        if measures and "PixelSpacing" in measures[0]:
            values = measures[0].PixelSpacing
            break
    if values is None:
        values = ds.get("PixelSpacing")
    try:
        row, column = (float(v) for v in values)
    except (TypeError, ValueError):
        return None
    if not all(np.isfinite(v) and 0 < v < 1000 for v in (row, column)):
        return None
    return row, column

@contextlib.contextmanager
def _guarded() -> Iterator[None]:
    """pydicom's warnings silenced (they may quote tag values) and its many exception
    types turned into our own sentence."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        except InvalidImageError:
            raise
        except MemoryError:
            raise fail("the DICOM image is too large to decode") from None
        except Exception as exc:  # pydicom raises many types; its text may quote values
            raise fail(f"the DICOM file is truncated or corrupt ({_kind(exc)})") from None


def decode_dicom(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
                 frame: int | None = None) -> tuple[Image.Image, Image.Image, DicomInfo]:
    """DICOM bytes -> (grey 'L', display 'RGB', facts), or :class:`InvalidImageError`.

    ``frame`` is 0-based; None picks the middle frame (``frames // 2``).
    """
    return DicomFrames(data, max_pixels).decode(frame)


#: The top-level tags a frame's functional groups overwrite (_frame_functional_groups).
_FRAME_TAGS = ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth",
               "VOILUTFunction")


class DicomFrames:
    """A DICOM file parsed and checked once, its frames decoded one at a time.

    An enhanced MR file holds a whole series as frames; parsing it again for every frame
    (its pixel data and per-frame groups included) made a 400-frame 512 x 512 file cost
    about 150 ms a frame. The top-level values a frame's functional groups overwrite are
    put back before each frame, so frames decode as if each were read alone.
    """

    def __init__(self, data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        with _guarded():
            self._open(data, max_pixels)

    def _open(self, data: bytes, max_pixels: int) -> None:
        ds = _read(data)
        modality = _code_string(ds.get("Modality"))
        if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
            kind = _uid_name(ds.get("SOPClassUID", ""))
            known = bool(kind) and not _UID.match(kind or "")
            what = (f" (a '{kind}' object)" if known
                    else f" (modality {modality})" if modality else "")
            # An image class without pixels: stripped, or cut short between two elements.
            why = ("its pixels are missing or the file is cut short"
                   if known and "Image" in str(kind) else "it is not an image")
            raise fail(f"the DICOM file has no pixel data{what}: {why}")
        missing = [keyword for keyword in _REQUIRED if ds.get(keyword) is None]
        if missing:
            raise fail(f"the DICOM image description is incomplete (no {', '.join(missing)})")
        rows, columns = int(ds.Rows), int(ds.Columns)
        if rows <= 0 or columns <= 0:
            raise fail("the DICOM image has no pixels")
        if rows * columns > max_pixels:
            raise fail(f"{columns}x{rows} pixels exceeds the limit of {max_pixels} pixels")
        photometric = _code_string(ds.PhotometricInterpretation)
        if photometric is None:
            raise fail("the DICOM photometric interpretation is not valid")

        frames = get_nr_frames(ds, warn=False)
        tsyntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
        if not tsyntax:
            raise fail("the DICOM file does not state its transfer syntax")
        syntax = _uid_name(tsyntax) or "(invalid UID)"
        try:
            decoder = get_decoder(tsyntax)
        except NotImplementedError:
            raise fail(f"the DICOM transfer syntax {syntax} is not supported") from None
        if not decoder.is_available:
            log.warning("DICOM transfer syntax %s cannot be decoded here: %s", syntax,
                        "; ".join(decoder.missing_dependencies) or "no plugin")
            raise fail(f"the DICOM transfer syntax {syntax} cannot be decoded: no decoder "
                        "for it is installed on this server")
        if decoder.is_native and "PixelData" in ds:
            expected = get_expected_length(ds, "bytes")
            if len(ds.PixelData) < expected:
                raise fail(f"the DICOM pixel data is truncated ({len(ds.PixelData)} of "
                            f"{expected} bytes)")
        self.ds, self.decoder, self.syntax = ds, decoder, syntax
        self.frames, self.modality, self.photometric = frames, modality, photometric
        self.rows, self.columns = rows, columns
        self._top = {k: ds[k].value for k in _FRAME_TAGS if k in ds}  # the file's own

    def decode(self, frame: int | None = None) -> tuple[Image.Image, Image.Image, DicomInfo]:
        """Frame ``frame`` (0-based; None: the middle one) -> (grey, RGB, facts)."""
        with _guarded():
            return self._decode(frame)

    def _decode(self, frame: int | None) -> tuple[Image.Image, Image.Image, DicomInfo]:
        ds, decoder, syntax, frames = self.ds, self.decoder, self.syntax, self.frames
        modality, photometric = self.modality, self.photometric
        if frame is None:
            frame = frames // 2
        if not 0 <= frame < frames:
            count = "1 frame (0)" if frames == 1 else f"{frames} frames (0-{frames - 1})"
            raise fail(f"frame {frame} is out of range: the DICOM file has {count}")
        try:
            arr, properties = decoder.as_array(ds, index=frame, **as_pixel_options(ds))
        except MemoryError:
            raise
        except Exception as exc:
            raise fail(f"the DICOM pixel data cannot be decoded: it is corrupt or does not "
                        f"match the file's header ({syntax}, {_kind(exc)})") from None
        decoded_as = _code_string(properties.get("photometric_interpretation")) or photometric

        window: Window | None = None
        if decoded_as in _MONOCHROME:
            if arr.ndim != 2:
                raise fail("the DICOM grey image has more than one sample per pixel")
            for keyword in _FRAME_TAGS:  # the previous frame's values out
                if keyword in self._top:
                    setattr(ds, keyword, self._top[keyword])
                elif keyword in ds:
                    delattr(ds, keyword)
            _frame_functional_groups(ds, frame)
            grey, window = grey_image(arr, ds, decoded_as)
            rgb = grey.convert("RGB")
        else:
            grey, rgb = normalise_mode(Image.fromarray(colour_rgb(arr, ds, decoded_as), mode="RGB"))

        bits_stored = ds.get("BitsStored")
        info = DicomInfo(
            modality=modality, body_part=_code_string(ds.get("BodyPartExamined")),
            rows=self.rows, columns=self.columns,
            bits_stored=int(bits_stored) if bits_stored is not None else None,
            photometric_interpretation=photometric, number_of_frames=frames, frame=frame,
            window=window, transfer_syntax=syntax, pixel_spacing=_pixel_spacing(ds, frame),
        )
        return grey, rgb, info
