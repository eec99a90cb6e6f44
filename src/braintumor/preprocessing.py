"""The one canonical preprocessing function.

The API, the CLI, training and the Spark jobs all call :func:`canonical_pixels` and
:func:`to_model_input`, so training and serving cannot drift apart. The split into two
steps is deliberate: :func:`canonical_pixels` yields compact uint8 pixels (what Spark
stores in Parquet and training caches), and :func:`to_model_input` applies the input
scaling a particular model expects at the last moment.

Why grayscale: MRI is grayscale, but in the public dataset the "No Tumor" files are mostly
RGB JPEGs while the other classes are mostly grayscale. A model that could see the colour
mode would learn that shortcut, so every image is reduced to one luminance channel before
anything else and only replicated to three channels when a model asks for three.

How an image is framed travels with the model (``InputSpec.framing``):

- ``stretch`` (the default, and what a user's model without metadata gets): a plain resize
  of the whole picture to the model's size, aspect ratio not kept.
- ``head``: the picture is cropped to the head (the box around the bright foreground),
  padded with black to a square so the aspect ratio is kept, resized, and its intensities
  stretched so that the 1st..99th percentiles inside the head span 0..255. This removes
  the cues that tell the public collections apart rather than the tumours: how much black
  border a collection leaves, whether it stretched non-square scans, and its overall
  brightness and contrast (see the model card's "Confound").

Whatever the model produces in its own input space (the Grad-CAM map, a tumour outline)
goes back onto the upload through the same framing's inverse: :func:`framed_pixels`
returns the pixels with the :data:`Frame` they were framed by, and :func:`to_picture`
draws a model-space map over the upload through it, so a heatmap lands where the model
looked, not stretched over a black border the model never saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from braintumor.decoding import DecodedImage, decode_image, normalise_mode
from braintumor.imaging import DEFAULT_MAX_PIXELS

#: Per-channel statistics of the ImageNet-style scalings, in RGB order.
_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
_TORCH_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_TORCH_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass(frozen=True)
class InputSpec:
    """What a model's input looks like.

    ``scaling`` names how uint8 pixels become model input:
    ``unit`` x/255, ``raw`` x as float, ``symmetric`` x/127.5-1,
    ``caffe`` Keras' ResNet50 ``preprocess_input`` (BGR mean subtraction),
    ``torch`` ImageNet mean/std after x/255.
    """

    size: tuple[int, int]  # (height, width)
    channels: int = 1
    scaling: str = "unit"
    framing: str = "stretch"

    def __post_init__(self) -> None:
        if self.framing not in FRAMINGS:
            raise ValueError(f"unknown framing {self.framing!r} ({', '.join(FRAMINGS)})")

    def to_dict(self) -> dict[str, object]:
        return {"size": list(self.size), "channels": self.channels, "scaling": self.scaling,
                "framing": self.framing}


#: How a picture is fitted to the model's input size (module docstring).
FRAMINGS = ("stretch", "head")
#: A pixel belongs to the head when brighter than this share of the picture's 99th percentile.
HEAD_THRESHOLD = 0.12
#: Share of the foreground's mass left outside the head box on each side (stray text, noise).
HEAD_TRIM = 0.005
#: Black margin around the head box, as a share of its longer side.
HEAD_MARGIN = 0.04
#: Percentiles inside the head that become 0 and 255.
HEAD_PERCENTILES = (1.0, 99.0)


def head_box(grey: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the head in a grey picture (H, W), bottom/right exclusive.

    The head is what is brighter than ``HEAD_THRESHOLD`` of the 99th percentile; the box
    leaves out ``HEAD_TRIM`` of that foreground's mass on every side, so that a burnt-in
    label or a speck of noise in a corner does not stretch it. A picture with no
    foreground keeps its whole frame.
    """
    height, width = grey.shape
    level = float(np.percentile(grey, 99)) * HEAD_THRESHOLD
    mask = grey > max(level, 1.0)
    if mask.sum() < 16:
        return 0, height, 0, width

    def span(profile: np.ndarray) -> tuple[int, int]:
        cumulative = np.cumsum(profile) / profile.sum()
        start = int(np.searchsorted(cumulative, HEAD_TRIM))
        stop = int(np.searchsorted(cumulative, 1.0 - HEAD_TRIM)) + 1
        return start, max(stop, start + 1)

    top, bottom = span(mask.sum(axis=1).astype(np.float64))
    left, right = span(mask.sum(axis=0).astype(np.float64))
    return top, bottom, left, right


@dataclass(frozen=True)
class HeadFrame:
    """The head framing of one picture, and its inverse.

    ``box`` is the head (top, bottom, left, right) in the upload's pixels; ``side`` the
    square it is padded into (``offset``: where the box's corner lands in it), which is
    then resized to the model's input. :meth:`apply` maps any array of the upload's
    shape (the picture, a tumour mask) into the model's input space;
    :meth:`to_upload` maps a map of the model's space (a Grad-CAM map, a predicted
    outline) back onto the upload, so heatmaps are drawn where the model looked.
    """

    shape: tuple[int, int]  # the upload's (height, width)
    box: tuple[int, int, int, int]
    side: int
    offset: tuple[int, int]  # (y0, x0) of the box inside the padded square

    @classmethod
    def of(cls, grey: np.ndarray) -> HeadFrame:
        top, bottom, left, right = head_box(grey)
        height, width = bottom - top, right - left
        side = round(max(height, width) * (1 + 2 * HEAD_MARGIN))
        return cls(shape=(int(grey.shape[0]), int(grey.shape[1])),
                   box=(top, bottom, left, right), side=side,
                   offset=((side - height) // 2, (side - width) // 2))

    def apply(self, values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """float32 (H, W) of the upload's shape -> (size) in the model's space (bilinear)."""
        top, bottom, left, right = self.box
        crop = np.asarray(values, dtype=np.float32)[top:bottom, left:right]
        canvas = np.zeros((self.side, self.side), dtype=np.float32)
        y0, x0 = self.offset
        canvas[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]] = crop
        height, width = size
        square = Image.fromarray(canvas, mode="F").resize((width, height),
                                                          Image.Resampling.BILINEAR)
        return np.asarray(square, dtype=np.float32)

    def to_upload(self, values: np.ndarray) -> np.ndarray:
        """float32 map (h, w) of the model's space -> (H, W) of the upload, zero outside
        the head box (bilinear; any map resolution, e.g. Grad-CAM's feature grid)."""
        square = Image.fromarray(np.asarray(values, dtype=np.float32), mode="F").resize(
            (self.side, self.side), Image.Resampling.BILINEAR)
        top, bottom, left, right = self.box
        y0, x0 = self.offset
        out = np.zeros(self.shape, dtype=np.float32)
        out[top:bottom, left:right] = np.asarray(square)[y0:y0 + bottom - top,
                                                         x0:x0 + right - left]
        return out


@dataclass(frozen=True)
class StretchFrame:
    """The ``stretch`` framing of one picture: the whole upload resized to the model's
    input, so its inverse is a plain resize back to the upload's shape."""

    shape: tuple[int, int]  # the upload's (height, width)

    def apply(self, values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """float32 (H, W) of the upload's shape -> (size) in the model's space (bilinear)."""
        height, width = size
        return np.asarray(Image.fromarray(np.asarray(values, dtype=np.float32), mode="F")
                          .resize((width, height), Image.Resampling.BILINEAR))

    def to_upload(self, values: np.ndarray) -> np.ndarray:
        """float32 map (h, w) of the model's space -> (H, W) of the upload (bilinear)."""
        height, width = self.shape
        return np.asarray(Image.fromarray(np.asarray(values, dtype=np.float32), mode="F")
                          .resize((width, height), Image.Resampling.BILINEAR))


#: How one upload was fitted to a model's input: what maps a model-space map back onto it.
Frame = HeadFrame | StretchFrame


def to_picture(values: np.ndarray, frame: Frame, size: tuple[int, int]) -> np.ndarray:
    """A model-space map (h, w) -> float32 (height, width) over the upload shown at
    ``size`` (width, height), through ``frame``'s inverse.

    Under ``stretch`` that is one plain resize to ``size``; under ``head`` the map goes
    back into the head box of the upload (zero outside it), which is then resized to
    ``size`` when the picture is shown at another resolution than the upload's.
    """
    width, height = size
    if isinstance(frame, StretchFrame):
        return StretchFrame((height, width)).to_upload(values)
    upload = frame.to_upload(values)
    if upload.shape == (height, width):
        return upload
    return np.asarray(Image.fromarray(upload, mode="F").resize(
        (width, height), Image.Resampling.BILINEAR))


def frame_head(grey: np.ndarray, size: tuple[int, int],
               frame: HeadFrame | None = None) -> np.ndarray:
    """uint8 grey (H, W) -> the head, square and intensity-normalised, at ``size``."""
    frame = frame or HeadFrame.of(grey)
    top, bottom, left, right = frame.box
    crop = grey[top:bottom, left:right]
    inside = crop[crop > max(float(np.percentile(grey, 99)) * HEAD_THRESHOLD, 1.0)]
    low, high = (np.percentile(inside, HEAD_PERCENTILES) if inside.size >= 16
                 else (float(crop.min()), float(crop.max())))
    scaled = np.zeros(grey.shape, dtype=np.float32)
    scaled[top:bottom, left:right] = np.clip(
        (crop.astype(np.float32) - low) * (255.0 / max(high - low, 1.0)), 0, 255)
    return np.clip(np.rint(frame.apply(scaled, size)), 0, 255).astype(np.uint8)


def framed_pixels(image: Image.Image | DecodedImage, size: tuple[int, int],
                  framing: str = "stretch") -> tuple[np.ndarray, Frame]:
    """Decoded image -> (uint8 grey pixels (height, width) framed as ``framing``, the
    :data:`Frame` that maps the model's maps back onto the image).

    The one place the framing is chosen: the model's input and the inverse that every
    heatmap and outline is drawn through come from the same call.
    """
    grey = image.grey if isinstance(image, DecodedImage) else normalise_mode(image)[0]
    if framing == "head":
        array = np.asarray(grey, dtype=np.uint8)
        frame = HeadFrame.of(array)
        return frame_head(array, size, frame), frame
    if framing != "stretch":
        raise ValueError(f"unknown framing {framing!r} ({', '.join(FRAMINGS)})")
    stretch = StretchFrame((grey.size[1], grey.size[0]))
    height, width = size
    if grey.size != (width, height):
        grey = grey.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(grey, dtype=np.uint8), stretch


def canonical_pixels(image: Image.Image | DecodedImage, size: tuple[int, int],
                     framing: str = "stretch") -> np.ndarray:
    """Decoded image -> uint8 grey pixels of shape (height, width), framed as ``framing``.

    A PIL image is reduced to grey by the same rules as an upload (transparency over
    black, 16-bit and float stretched over their range), not by Pillow's ``convert("L")``.
    """
    return framed_pixels(image, size, framing)[0]


def to_model_input(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 pixels (H, W) or (N, H, W) -> float32 model input (N, H, W, C)."""
    batch = np.asarray(pixels)
    if batch.ndim == 2:
        batch = batch[None]
    x = batch.astype(np.float32)[..., None]
    if spec.channels != 1:
        x = np.repeat(x, spec.channels, axis=-1)
    scaling = spec.scaling
    if scaling == "unit":
        x /= 255.0
    elif scaling == "symmetric":
        x = x / 127.5 - 1.0
    elif scaling == "caffe":
        mean = _CAFFE_MEAN_BGR if spec.channels == 3 else _CAFFE_MEAN_BGR.mean(keepdims=True)
        x -= mean
    elif scaling == "torch":
        mean, std = (_TORCH_MEAN, _TORCH_STD) if spec.channels == 3 else (
            _TORCH_MEAN.mean(keepdims=True),
            _TORCH_STD.mean(keepdims=True),
        )
        x = ((x / 255.0 - mean) / std).astype(np.float32)
    elif scaling != "raw":
        raise ValueError(f"unknown input scaling {scaling!r}")
    return np.ascontiguousarray(x, dtype=np.float32)


def preprocess(image: Image.Image | DecodedImage, spec: InputSpec) -> np.ndarray:
    """The canonical path from a decoded image to a batch of one model input."""
    return to_model_input(canonical_pixels(image, spec.size, spec.framing), spec)


def preprocess_bytes(data: bytes, spec: InputSpec,
                     max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Encoded bytes -> model input; the same rules as an API upload."""
    return preprocess(decode_image(data, max_pixels=max_pixels), spec)
