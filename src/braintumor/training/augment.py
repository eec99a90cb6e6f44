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


class CollectionShift(layers.Layer):
    """What differs between the public collections, drawn afresh for every slice.

    The collections differ less in anatomy than in how the picture was made and kept:
    resolution (a 512 px figshare slice against a 200 px web JPEG), blur, noise, the
    sequence's contrast curve and the coil's uneven brightness. Each slice in a training
    batch gets, each with probability ``p``: a down- then up-sampling to 30-100% of its
    size, a Gaussian blur, Rician-like noise, a gamma curve and a smooth multiplicative
    bias field. The pixels are assumed in [0, 1] (``unit`` scaling) and stay there.
    Active only in training; identity otherwise.
    """

    def __init__(self, p: float = 0.5, seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.p = p
        self.seed = seed
        self._seed = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        import tensorflow as tf

        x = tf.convert_to_tensor(images)
        shape = tf.shape(x)
        batch, height, width = shape[0], shape[1], shape[2]

        def uniform(size, low=0.0, high=1.0):
            return keras.random.uniform(size, low, high, seed=self._seed)

        def chosen():
            return tf.cast(uniform((batch, 1, 1, 1)) < self.p, x.dtype)

        # resolution: one scale per batch, applied to the chosen slices
        scale = uniform((), 0.4, 1.0)
        small = tf.cast(tf.cast(height, tf.float32) * scale, tf.int32)
        small_w = tf.cast(tf.cast(width, tf.float32) * scale, tf.int32)
        degraded = tf.image.resize(tf.image.resize(x, (small, small_w), antialias=True),
                                   (height, width))
        pick = chosen()
        x = pick * degraded + (1.0 - pick) * x
        # blur: a separable Gaussian of one sigma per batch
        sigma = uniform((), 0.3, 1.2)
        taps = tf.range(-3, 4, dtype=tf.float32)
        kernel = tf.exp(-0.5 * (taps / sigma) ** 2)
        kernel = kernel / tf.reduce_sum(kernel)
        blurred = tf.nn.conv2d(x, tf.reshape(kernel, (7, 1, 1, 1)), 1, "SAME")
        blurred = tf.nn.conv2d(blurred, tf.reshape(kernel, (1, 7, 1, 1)), 1, "SAME")
        pick = chosen()
        x = pick * blurred + (1.0 - pick) * x
        # Rician-like noise: magnitude of the signal plus complex Gaussian noise
        level = uniform((batch, 1, 1, 1), 0.0, 0.06) * chosen()
        real = x + level * keras.random.normal(shape, seed=self._seed)
        imaginary = level * keras.random.normal(shape, seed=self._seed)
        x = tf.sqrt(real**2 + imaginary**2)
        # gamma
        gamma = tf.exp(keras.random.normal((batch, 1, 1, 1), stddev=0.3, seed=self._seed))
        pick = chosen()
        x = tf.clip_by_value(x, 0.0, 1.0)
        x = pick * tf.pow(x + 1e-6, gamma) + (1.0 - pick) * x
        # bias field: a 4x4 grid of log-normal gains, smoothly interpolated
        grid = tf.exp(keras.random.normal((batch, 4, 4, 1), stddev=0.25, seed=self._seed))
        field = tf.image.resize(grid, (height, width), method="bicubic")
        pick = chosen()
        x = pick * x * field + (1.0 - pick) * x
        return tf.clip_by_value(x, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "p": self.p, "seed": self.seed}


def source_robust_augmentation(spec: InputSpec, seed: int = 0) -> keras.Sequential:
    """:func:`mri_augmentation`'s geometry and exposure, then :class:`CollectionShift`.

    Needs ``unit`` scaling (pixels in [0, 1]).
    """
    if spec.scaling != "unit":
        raise ValueError("the source-robust augmentation needs 'unit' input scaling")
    return keras.Sequential(
        [*mri_augmentation(spec, seed).layers,
         CollectionShift(0.4, seed=seed + 10, name="collection_shift")],
        name="augmentation",
    )
