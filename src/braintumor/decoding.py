"""Bytes -> a decoded image, recognised by content and never trusted by name.

Uploads are decoded in memory. The file's own format decides how it is read; the client's
file name is only used to refuse extensions the spec does not allow. DICOM files (``DICM``
at bytes 128-132) go to :mod:`braintumor.dicom`, everything else to Pillow. Whatever a
file does wrong (empty, truncated, corrupt, a decompression bomb, a format we do not take)
ends as an :class:`~braintumor.errors.InvalidImageError` with a sentence a person can act on.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from braintumor.dicom import DICOM_EXTENSIONS, DicomFrames, is_dicom
from braintumor.errors import InvalidFileTypeError, InvalidImageError
from braintumor.imaging import DEFAULT_MAX_PIXELS, DecodedImage, normalise_mode

#: Extensions the spec allows, as it lists them in its error message.
ALLOWED_EXTENSIONS: tuple[str, ...] = ("png", "jpg", "jpeg", "gif", "bmp", "webp",
                                       *DICOM_EXTENSIONS)

#: Pillow format names we decode. The JPEG opener also reads MPO, the multi-picture
#: JPEG that cameras write, and reports it as format "MPO".
ALLOWED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "GIF", "BMP", "WEBP")


class DicomFrameDecoder:
    """The frames of one DICOM file as decoded images, the file parsed on first use only
    (:class:`braintumor.dicom.DicomFrames`): an enhanced multi-frame series decodes its
    frames one by one without reading the whole file again for each."""

    def __init__(self, data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self._data, self._max_pixels = data, max_pixels
        self._frames: DicomFrames | None = None

    def decode(self, frame: int | None = None) -> DecodedImage:
        """Frame ``frame`` (0-based; None: the middle one) as a decoded image."""
        if self._frames is None:
            self._frames = DicomFrames(self._data, self._max_pixels)
        grey, rgb, info = self._frames.decode(frame)
        return DecodedImage(grey=grey, rgb=rgb, format="DICOM", dicom=info)


def file_extension(filename: str) -> str:
    """Lower-case extension without the dot ('' when there is none)."""
    name = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def allowed_types_message() -> str:
    return f"File type not allowed. Allowed: {', '.join(ALLOWED_EXTENSIONS)}"


def check_extension(filename: str) -> None:
    """Refuse a name whose extension the spec does not allow.

    A name without any extension is let through: its content decides.
    """
    ext = file_extension(filename)
    if ext and ext not in ALLOWED_EXTENSIONS:
        raise InvalidFileTypeError(allowed_types_message())


def parse_frame(value: str | None) -> int | None:
    """The API's ``frame`` form field -> a 0-based frame number, or None when absent."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise InvalidImageError(
            "Image validation failed: frame must be a whole number from 0 (the first frame)")
    return int(text)


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
                 frame: int | None = None) -> DecodedImage:
    """Decode an upload held in memory.

    The first frame of an animation is used, EXIF orientation is applied, and the pixel
    count is checked from the header before any pixel is decoded, so a small file that
    claims to be enormous costs nothing. A DICOM file is decoded by
    :class:`braintumor.dicom.DicomFrames`: ``frame`` picks one of its frames (0-based; the
    middle one when None). Other formats have no frame to choose: only None or 0 is taken.
    """
    if not data:
        raise InvalidImageError("Image validation failed: the file is empty")
    if is_dicom(data):
        return DicomFrameDecoder(data, max_pixels).decode(frame)
    if frame:
        raise InvalidImageError(
            f"Image validation failed: frame {frame} was asked for, but only DICOM files "
            "have frames to choose from")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            width, height = image.size
            if width <= 0 or height <= 0:
                raise InvalidImageError("Image validation failed: the image has no pixels")
            if width * height > max_pixels:
                raise InvalidImageError(
                    f"Image validation failed: {width}x{height} pixels exceeds the limit "
                    f"of {max_pixels} pixels"
                )
            image_format = "JPEG" if image.format == "MPO" else str(image.format)
            image.seek(0)
            image.load()
            upright = ImageOps.exif_transpose(image)
            if upright is not None:
                image = upright
            grey, rgb = normalise_mode(image)
    except InvalidImageError:
        raise
    except UnidentifiedImageError:
        raise InvalidImageError(
            "Image validation failed: the content is not a PNG, JPEG, GIF, BMP, WebP or "
            "DICOM image"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImageError(
            "Image validation failed: the image is too large in pixels (decompression bomb)"
        ) from None
    except MemoryError:
        raise InvalidImageError(
            "Image validation failed: the image is too large to decode"
        ) from None
    except Exception as exc:  # Pillow raises many types for broken files
        raise InvalidImageError(
            f"Image validation failed: the file is truncated or corrupt ({type(exc).__name__})"
        ) from None
    return DecodedImage(grey=grey, rgb=rgb, format=image_format)


def decode_file(path: str, max_pixels: int = DEFAULT_MAX_PIXELS,
                frame: int | None = None) -> DecodedImage:
    """Decode an image on disk (CLI, training); same rules as an upload."""
    with open(path, "rb") as handle:
        return decode_image(handle.read(), max_pixels=max_pixels, frame=frame)
