"""Shared fixtures: the suite makes its own tiny models and synthetic images.

Nothing here needs ``../shared``; tests that read real scans take the dataset path from
BRAINTUMOR_DATA and are marked ``dataset``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BRAINTUMOR_DATA", REPO.parent / "shared/datasets/brain-tumor-mri"))
TINY_SIZE = 32


def scan_like(size: tuple[int, int] = (96, 96), seed: int = 0) -> Image.Image:
    """A grey picture shaped like an axial slice: a bright oval with a few blobs."""
    rng = np.random.default_rng(seed)
    width, height = size
    image = Image.new("L", size, 0)
    draw = ImageDraw.Draw(image)
    draw.ellipse([width * 0.15, height * 0.1, width * 0.85, height * 0.9], fill=110)
    for _ in range(3):
        cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
        r = rng.uniform(0.04, 0.1) * min(size)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=int(rng.integers(150, 250)))
    noise = rng.normal(0, 6, (height, width))
    return Image.fromarray(np.clip(np.asarray(image) + noise, 0, 255).astype(np.uint8), "L")


def encode(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A small random CNN (32x32 grey -> 4 classes) saved with metadata, like ours."""
    import keras

    from braintumor.model.metadata import ModelMetadata, write_metadata
    from braintumor.preprocessing import InputSpec

    keras.utils.set_random_seed(1)
    inputs = keras.Input((TINY_SIZE, TINY_SIZE, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="features")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs)
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    model.save(path)
    write_metadata(path, ModelMetadata(
        class_names=["Glioma", "Meningioma", "No Tumor", "Pituitary"],
        input=InputSpec((TINY_SIZE, TINY_SIZE), 1, "unit"),
        temperature=1.5, gradcam_layer="features", architecture="tiny", version="tiny-test",
    ))
    return path


def scan_like_pixels(count: int, size: int = TINY_SIZE, seed: int = 100) -> np.ndarray:
    """Canonical pixels of ``count`` scan-like pictures of assorted shapes (uint8, N x H x W)."""
    from braintumor.preprocessing import canonical_pixels

    shapes = [(96, 96), (120, 90), (64, 80), (300, 150), (256, 256), (100, 50)]
    return np.stack([canonical_pixels(scan_like(shapes[i % len(shapes)], seed=seed + i),
                                      (size, size)) for i in range(count)])


@pytest.fixture(scope="session")
def tiny_ood_model_path(tiny_model_path, tmp_path_factory) -> Path:
    """The tiny model with OOD statistics fitted on scan-like pictures (braintumor.ood).

    The threshold is three times the largest validation score: the tests want every
    scan-like picture accepted, not the 0.5% of real scans the fitted quantile refuses
    (other pictures score in the hundreds).
    """
    import shutil

    from braintumor.config import Settings
    from braintumor.model import load_model
    from braintumor.training.ood_fit import fit_statistics, store

    path = tmp_path_factory.mktemp("ood-models") / "tiny-ood.keras"
    shutil.copy(tiny_model_path, path)
    model = load_model(Settings(MODEL_PATH=path))
    pixels = scan_like_pixels(320)
    labels = np.arange(240) % 4
    fits, description = fit_statistics(model, pixels[:240], labels, pixels[240:], quantile=1.0)
    description["threshold"] = round(3 * description["threshold"], 6)
    store(path, model.metadata, fits, description)
    return path


@pytest.fixture(scope="session")
def tiny_settings(tiny_model_path):
    from braintumor.config import Settings

    return Settings(MODEL_PATH=tiny_model_path)


@pytest.fixture(scope="session")
def tiny_model(tiny_settings):
    from braintumor.model import load_model

    return load_model(tiny_settings)


@pytest.fixture(scope="session")
def app(tiny_settings, tiny_model):
    from braintumor.api import create_app

    return create_app(tiny_settings, model=tiny_model)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def scan_png() -> bytes:
    return encode(scan_like())


def dataset_dir() -> Path:
    """The real dataset, or skip the test when it is absent (fresh clone without ../shared).

    CI has ../shared, so these tests run there.
    """
    if not (DATA / "Testing").is_dir():
        message = f"dataset not found at {DATA} (set BRAINTUMOR_DATA)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI has the dataset: a skip there would hide a gap
        pytest.skip(message)
    return DATA
