"""The out-of-distribution evaluation set: pictures that are not brain MRI slices.

Why these: the detector is measured on what a service like this actually receives by
mistake or on purpose, built only from what the project may ship or install, so anyone
can rebuild the same set:

* generated: white noise (grey and colour, several sizes), smooth (low-pass) noise,
  blank pictures, gradients, checkerboards and stripes;
* photographs: the sample images bundled with scikit-image (``skimage.data``, the
  optional ``eval`` extra), in colour and in grey (the grey ones cannot be refused for
  their colour), whole and as crops, and its small grey face crops (LFW subset);
* medical images that are not brain MRI: the non-MR test files bundled with pydicom
  (CT, ultrasound, nuclear medicine, secondary captures, a segmentation, dose grids),
  their pixels windowed to 8 bits by their own minimum and maximum;
* brain MRIs transformed beyond recognition: the pixels shuffled, the picture cut into
  patches and shuffled (4 x 4 and 8 x 8), and false-coloured (a jet colour map, a strong
  tint). These come from the scans given to :func:`build`, normally a seeded sample of the
  evaluated Testing images: being held out, they carry no trace of the fitted statistics.

Everything is seeded: the same call builds the same pictures. Every item is a PIL image;
the evaluation encodes it as PNG and decodes it like an upload.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pydicom
import pydicom.data
from PIL import Image, ImageFilter
from pydicom.pixels import apply_color_lut

log = logging.getLogger(__name__)

#: Bundled scikit-image samples used as photographs (the others are duplicates or tiny).
SKIMAGE_PHOTOS = (
    "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png",
    "coffee.png", "coins.png", "color.png", "grass.png", "gravel.png", "horse.png",
    "hubble_deep_field.jpg", "ihc.png", "logo.png", "microaneurysms.png", "moon.png",
    "motorcycle_left.png", "page.png", "phantom.png", "retina.jpg", "rocket.jpg", "text.png",
)

#: Non-MR DICOM test files bundled with pydicom, and the frames taken from multi-frame ones.
PYDICOM_FILES = {
    "CT_small.dcm": None, "693_J2KI.dcm": None, "J2K_pixelrep_mismatch.dcm": None,
    "JPEG2000.dcm": None, "JPGExtended.dcm": None, "examples_jpeg2k.dcm": None,
    "examples_palette.dcm": None, "examples_rgb_color.dcm": None,
    "examples_ybr_color.dcm": (0, 10, 20), "image_dfl.dcm": None, "liver_1frame.dcm": None,
    "rtdose.dcm": (0, 7, 14), "SC_rgb_jpeg.dcm": None, "GDCMJ2K_TextGBR.dcm": None,
}


@dataclass(frozen=True)
class OodItem:
    source: str
    name: str
    image: Image.Image


def _grey(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "L")


def _rgb(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "RGB")


def noise(rng: np.random.Generator) -> Iterable[OodItem]:
    for size in (64, 160, 224, 512):
        yield OodItem("noise", f"uniform-{size}", _grey(rng.uniform(0, 256, (size, size))))
        yield OodItem("noise", f"gaussian-{size}", _grey(rng.normal(128, 50, (size, size))))
        yield OodItem("noise", f"dark-gaussian-{size}", _grey(rng.normal(40, 30, (size, size))))
        yield OodItem("noise", f"rgb-uniform-{size}", _rgb(rng.uniform(0, 256, (size, size, 3))))
    for size in (224, 512):
        sparse = (rng.uniform(size=(size, size)) < 0.05) * 255.0
        yield OodItem("noise", f"salt-{size}", _grey(sparse))


def smooth_noise(rng: np.random.Generator) -> Iterable[OodItem]:
    """Low-pass noise: blobs with the neighbour correlation of a scan and nothing else."""
    for radius in (1, 2, 4, 8):
        for size in (224, 512):
            base = _grey(rng.uniform(0, 256, (size, size)))
            blurred = np.asarray(base.filter(ImageFilter.GaussianBlur(radius)), np.float32)
            stretched = (blurred - blurred.min()) / max(float(np.ptp(blurred)), 1e-6) * 255
            yield OodItem("smooth noise", f"blur{radius}-{size}", _grey(stretched))


def blank() -> Iterable[OodItem]:
    for level in (0, 1, 30, 128, 200, 255):
        yield OodItem("blank", f"level-{level}", _grey(np.full((224, 224), float(level))))
    yield OodItem("blank", "black-rgb-640x480", Image.new("RGB", (640, 480)))
    yield OodItem("blank", "white-rgb-512", Image.new("RGB", (512, 512), (255, 255, 255)))
    rng = np.random.default_rng(7)
    for level in (10, 128, 245):
        yield OodItem("blank", f"near-uniform-{level}",
                      _grey(rng.normal(level, 2.0, (224, 224))))


def patterns() -> Iterable[OodItem]:
    y, x = np.mgrid[0:224, 0:224].astype(np.float32)
    yield OodItem("patterns", "gradient-horizontal", _grey(x / 223 * 255))
    yield OodItem("patterns", "gradient-vertical", _grey(y / 223 * 255))
    yield OodItem("patterns", "gradient-diagonal", _grey((x + y) / 446 * 255))
    radius = np.hypot(x - 112, y - 112)
    yield OodItem("patterns", "gradient-radial", _grey(255 - radius / radius.max() * 255))
    yield OodItem("patterns", "disc", _grey((radius < 80) * 200.0))
    yield OodItem("patterns", "ring", _grey(((radius > 60) & (radius < 90)) * 220.0))
    for square in (4, 8, 16, 28, 56, 112):
        board = ((x // square + y // square) % 2) * 255
        yield OodItem("patterns", f"checkerboard-{square}", _grey(board))
    for period in (6, 16, 40):
        yield OodItem("patterns", f"stripes-{period}", _grey((np.sin(x / period * 2 * np.pi)
                                                              + 1) * 127.5))
    yield OodItem("patterns", "sine-grid", _grey((np.sin(x / 9) * np.sin(y / 9) + 1) * 127.5))
    yield OodItem("patterns", "banner-3.5to1", _grey(x[:64] / 223 * 255))  # 224 x 64


def _skimage_folder() -> str | None:
    try:
        import skimage  # optional (the `eval` extra): the photographs are skipped without it
    except ImportError:
        return None
    return os.path.join(os.path.dirname(skimage.__file__), "data")


def photographs(rng: np.random.Generator) -> Iterable[OodItem]:
    """scikit-image's samples: whole and two crops each, in colour (when they are) and grey."""
    folder = _skimage_folder()
    if folder is None:
        log.warning("scikit-image is not installed (pip install '.[eval]'): no photographs")
        return
    for name in SKIMAGE_PHOTOS:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        with Image.open(path) as opened:
            photo = opened.convert("RGB")
        width, height = photo.size
        views = [("whole", photo)]
        for i in range(2):
            side = int(min(width, height) * rng.uniform(0.45, 0.8))
            left = int(rng.integers(0, width - side + 1))
            top = int(rng.integers(0, height - side + 1))
            views.append((f"crop{i}", photo.crop((left, top, left + side, top + side))))
        stem = os.path.splitext(name)[0]
        coloured = _chroma_mean(photo) > 4
        for view, picture in views:
            if coloured:
                yield OodItem("photos (colour)", f"{stem}-{view}", picture)
            yield OodItem("photos (grey)", f"{stem}-{view}", picture.convert("L"))
    faces = os.path.join(folder, "lfw_subset.npy")
    if os.path.isfile(faces):
        stack = np.load(faces)
        for i in range(0, len(stack), 4):  # 50 of the 200 grey 25x25 crops
            yield OodItem("photos (grey)", f"lfw-{i}", _grey(stack[i] * 255 if stack.max() <= 1
                                                              else stack[i]))


def _chroma_mean(image: Image.Image) -> float:
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    return float((pixels.max(-1) - pixels.min(-1)).mean())


def _to_8bit(array: np.ndarray) -> Image.Image:
    """A DICOM pixel array -> an 8-bit picture, windowed by its own minimum and maximum."""
    a = np.asarray(array, dtype=np.float64)
    low, high = float(a.min()), float(a.max())
    scaled = (a - low) / (high - low) * 255 if high > low else np.zeros_like(a)
    return _rgb(scaled) if scaled.ndim == 3 else _grey(scaled)


def medical() -> Iterable[OodItem]:
    """pydicom's bundled non-MR test images, converted to 8-bit pictures."""
    folder = os.path.join(os.path.dirname(pydicom.data.__file__), "test_files")
    for name, frames in PYDICOM_FILES.items():
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        try:
            with warnings.catch_warnings():  # some test files are deliberately irregular
                warnings.simplefilter("ignore")
                dataset = pydicom.dcmread(path)
                pixels = dataset.pixel_array
            photometric = str(dataset.get("PhotometricInterpretation", ""))
            # pydicom 3 already returns YBR colour as RGB; a palette needs its lookup table
            if photometric == "PALETTE COLOR":
                pixels = apply_color_lut(pixels, dataset)
        except Exception as exc:  # a decoder plug-in may be missing: skip that file
            log.warning("cannot decode %s for the OOD set: %s", name, exc)
            continue
        modality = str(dataset.get("Modality", "") or "OT")
        stem = os.path.splitext(name)[0]
        for frame in frames or (None,):
            picture = pixels if frame is None else pixels[frame]
            yield OodItem("medical, not MRI", f"{modality}-{stem}"
                          + ("" if frame is None else f"-f{frame}"), _to_8bit(picture))


def _jet(grey: np.ndarray) -> np.ndarray:
    """The jet colour map, without matplotlib: (H, W) in [0, 1] -> (H, W, 3) in [0, 255]."""
    v = np.clip(grey, 0, 1)[..., None]
    centres = np.array([3.0, 2.0, 1.0])  # red, green and blue peak at 3/4, 1/2 and 1/4
    return np.clip(1.5 - np.abs(4 * v - centres), 0, 1) * 255


def scrambled(scans: list[Image.Image], rng: np.random.Generator) -> Iterable[OodItem]:
    """Each scan shuffled, patch-scrambled and false-coloured beyond recognition."""
    for index, scan in enumerate(scans):
        grey = np.asarray(scan.convert("L").resize((224, 224)), dtype=np.float32)
        shuffled = rng.permutation(grey.ravel()).reshape(grey.shape)
        yield OodItem("scrambled MRI", f"pixel-shuffle-{index}", _grey(shuffled))
        for grid in (4, 8):
            step = 224 // grid
            tiles = [grey[r:r + step, c:c + step] for r in range(0, 224, step)
                     for c in range(0, 224, step)]
            order = rng.permutation(len(tiles))
            rows = [np.hstack([tiles[order[r * grid + c]] for c in range(grid)])
                    for r in range(grid)]
            yield OodItem("scrambled MRI", f"patches{grid}x{grid}-{index}", _grey(np.vstack(rows)))
        yield OodItem("scrambled MRI", f"jet-{index}", _rgb(_jet(grey / 255.0)))
        tint = np.array([1.0, 0.35, 0.1]) if index % 2 else np.array([0.2, 0.9, 0.3])
        yield OodItem("scrambled MRI", f"tint-{index}", _rgb(grey[..., None] * tint))


def build(scans: list[Image.Image] | None = None, seed: int = 0) -> list[OodItem]:
    """The whole OOD set; ``scans`` (brain MRIs) feed the scrambled-MRI source."""
    rng = np.random.default_rng(seed)
    items: list[OodItem] = []
    items += noise(rng)
    items += smooth_noise(rng)
    items += blank()
    items += patterns()
    items += photographs(rng)
    items += medical()
    if scans:
        items += scrambled(scans, rng)
    return items
