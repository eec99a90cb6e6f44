"""Augmentation that fits MRI slices.

Brains are roughly left-right symmetric, so horizontal flips are safe; vertical flips are
not (they turn anatomy upside down). Scans differ in position, scale, tilt and exposure
between sites, so small rotations, zooms, shifts and contrast/brightness changes are
applied. Regions moved in from outside the image are filled with black, the background
of an MRI slice. The layers are active only in training, so they cost nothing at serving
time and the shipped model does not contain them.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from braintumor.preprocessing import InputSpec, to_model_input


def mri_augmentation(spec: InputSpec, seed: int = 0) -> keras.Sequential:
    black = float(to_model_input(np.zeros((1, 1), np.uint8), spec).mean())
    white = float(to_model_input(np.full((1, 1), 255, np.uint8), spec).mean())
    value_range = (min(black, white), max(black, white))
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(0.03, fill_mode="constant", fill_value=black, seed=seed + 1),
            layers.RandomZoom((-0.12, 0.12), fill_mode="constant", fill_value=black,
                              seed=seed + 2),
            layers.RandomTranslation(0.06, 0.06, fill_mode="constant", fill_value=black,
                                     seed=seed + 3),
            layers.RandomContrast(0.2, value_range=value_range, seed=seed + 4),
            layers.RandomBrightness(0.1, value_range=value_range, seed=seed + 5),
        ],
        name="augmentation",
    )
