"""A tiny head-framing model with a tumour-outline output, and scans to place in a frame.

The model is :func:`braintumor.training.architectures.compact_seg_cnn` at 64 x 64, width
8, with random weights, saved with metadata naming its Grad-CAM and segmentation layers,
as the shipped ``compact-seg`` models are. ``outline_bias`` replaces the outline's last
layer by a constant (its kernel zeroed, its bias set): +8 gives an outline that covers
the whole model input (so, mapped back, exactly the head box), -8 an empty one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from conftest import scan_like

CLASS_NAMES = ["Glioma", "Meningioma", "No Tumor", "Pituitary"]
SEG_SIZE = 64


def save_seg_model(path: Path, seed: int = 3, outline_bias: float | None = None) -> Path:
    import keras

    from braintumor.model.metadata import ModelMetadata, write_metadata
    from braintumor.preprocessing import InputSpec
    from braintumor.training.architectures import compact_seg_cnn

    keras.utils.set_random_seed(seed)
    spec = InputSpec((SEG_SIZE, SEG_SIZE), 1, "unit", "head")
    model = compact_seg_cnn(spec, len(CLASS_NAMES), width=8)
    if outline_bias is not None:
        layer = model.get_layer("seg_logits")
        kernel, bias = layer.get_weights()
        layer.set_weights([np.zeros_like(kernel), np.full_like(bias, outline_bias)])
    model.save(path)
    write_metadata(path, ModelMetadata(
        class_names=CLASS_NAMES, input=spec, gradcam_layer="gated",
        segmentation_layer="segmentation", architecture="compact-seg",
        version=f"seg-test-{seed}",
    ))
    return path


def clean_scan(size: tuple[int, int] = (240, 232), seed: int = 5) -> Image.Image:
    """A scan-like slice on an exactly black background (the head's edge is sharp, so the
    head box does not depend on the brightness of the frame around it)."""
    pixels = np.asarray(scan_like(size, seed=seed))
    return Image.fromarray(np.where(pixels < 50, 0, pixels).astype(np.uint8), mode="L")


def pasted(scan: Image.Image, canvas: tuple[int, int], at: tuple[int, int]) -> Image.Image:
    """``scan`` pasted at ``at`` (x, y) into a black canvas of ``canvas`` (width, height)."""
    frame = Image.new("L", canvas, 0)
    frame.paste(scan, at)
    return frame


def jet_levels(rgb: np.ndarray) -> np.ndarray:
    """A jet-coloured picture (H, W, 3) -> the 0..255 levels it was coloured from (a
    colour that is no entry of the table raises)."""
    from braintumor.explain.render import jet_lut

    def packed(colours: np.ndarray) -> np.ndarray:
        c = colours.astype(np.int64)
        return (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]

    table = packed(jet_lut())
    order = np.argsort(table, kind="stable")
    keys = packed(np.asarray(rgb))
    found = np.clip(np.searchsorted(table[order], keys), 0, len(table) - 1)
    assert (table[order][found] == keys).all(), "not a jet-coloured picture"
    return order[found]
