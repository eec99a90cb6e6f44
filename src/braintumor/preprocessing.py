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

Why a plain resize (not letterboxing): the training images were themselves resized to a
square without keeping the aspect ratio, so stretching matches what the model was taught.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from braintumor.decoding import DecodedImage, decode_image, normalise_mode

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

    def to_dict(self) -> dict[str, object]:
        return {"size": list(self.size), "channels": self.channels, "scaling": self.scaling}


def canonical_pixels(image: Image.Image | DecodedImage, size: tuple[int, int]) -> np.ndarray:
    """Decoded image -> uint8 grey pixels of shape (height, width).

    A PIL image is reduced to grey by the same rules as an upload (transparency over
    black, 16-bit and float stretched over their range), not by Pillow's ``convert("L")``.
    """
    grey = image.grey if isinstance(image, DecodedImage) else normalise_mode(image)[0]
    height, width = size
    if grey.size != (width, height):
        grey = grey.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(grey, dtype=np.uint8)


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
        x = (x / 255.0 - mean) / std
    elif scaling != "raw":
        raise ValueError(f"unknown input scaling {scaling!r}")
    return np.ascontiguousarray(x, dtype=np.float32)


def preprocess(image: Image.Image | DecodedImage, spec: InputSpec) -> np.ndarray:
    """The canonical path from a decoded image to a batch of one model input."""
    return to_model_input(canonical_pixels(image, spec.size), spec)


def preprocess_bytes(data: bytes, spec: InputSpec, max_pixels: int = 64_000_000) -> np.ndarray:
    """Encoded bytes -> model input; the same rules as an API upload."""
    return preprocess(decode_image(data, max_pixels=max_pixels), spec)
