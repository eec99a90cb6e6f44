"""Training a classifier that also draws the tumour's outline (``compact-seg``).

The network learns two things at once from one forward pass: the class (the partial
label loss every run uses) and the outline (soft Dice + binary cross-entropy against the
expert masks; a healthy slice's empty outline is a target too, which is how healthy
anatomy at every level is taught not to look like a tumour pixel by pixel). A slice
whose tumour nobody outlined (``training.masks.UNKNOWN``) adds nothing to the outline
loss.

Augmentation runs in the input pipeline rather than inside the model, because the
geometry must move the image and its mask together: flips, rotations, zooms and shifts
act on both stacked as two channels, then exposure and the collection shifts on the
image alone.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from braintumor.training.architectures import BACKBONE_PREFIXES, HEAD_LAYER, with_outline
from braintumor.training.augment import mri_augmentation, source_robust_augmentation
from braintumor.training.curves import plot_learning_curve
from braintumor.training.partial import PartialAccuracy, partial_label_loss
from braintumor.training.recipe import TrainConfig
from braintumor.training.schedule import make_optimizer

log = logging.getLogger(__name__)

#: How many of the augmentation's layers move pixels (flip, rotation, zoom, shift).
GEOMETRIC_LAYERS = 4


def start_from_classifier(classifier, source_path: str) -> int:
    """Copy a trained classifier's backbone into ``classifier`` and freeze it; start the
    head from the source's head. Returns how many layers were copied.

    Why: a classifier trained for 40 epochs on labels already decides well; what it
    lacks is an outline. Frozen (its batch normalisation in inference mode too), its
    features stay exactly what they were, so the decoder learns the outline from them
    and the head's decisions move only as far as its own weights do. The head's input
    is the source's pooled features followed by the gated outline features: the rows
    the source has are copied, the rest start at zero, so training starts from the
    source's answers.
    """
    import keras

    source = keras.models.load_model(source_path, compile=False)
    copied = 0
    for layer in source.layers:
        if not layer.name.startswith(BACKBONE_PREFIXES):
            continue
        target = classifier.get_layer(layer.name)
        weights = layer.get_weights()
        if [w.shape for w in weights] != [w.shape for w in target.get_weights()]:
            raise ValueError(f"{source_path}: layer {layer.name!r} does not fit the "
                             f"{classifier.name} backbone (another width?)")
        target.set_weights(weights)
        target.trainable = False
        copied += 1
    if not copied:
        raise ValueError(f"{source_path} has no backbone layers of the compact network")
    kernel, bias = source.get_layer(HEAD_LAYER).get_weights()
    head = classifier.get_layer(HEAD_LAYER)
    new_kernel = np.zeros_like(head.get_weights()[0])
    rows = min(len(kernel), len(new_kernel))
    new_kernel[:rows] = kernel[:rows]
    head.set_weights([new_kernel, bias])
    log.info("backbone of %s: %d layers copied and frozen; head started from its head",
             source_path, copied)
    return copied


def outline_loss(y_true, y_pred):
    """Per slice: BCE + soft Dice of the outline; 0 for a slice without an outline."""
    from keras import ops

    known = ops.cast(ops.min(y_true, axis=(1, 2, 3)) >= 0, "float32")
    target = ops.clip(ops.cast(y_true, "float32"), 0.0, 1.0)
    pred = ops.clip(y_pred, 1e-6, 1.0 - 1e-6)
    bce = -ops.mean(target * ops.log(pred) + (1.0 - target) * ops.log(1.0 - pred),
                    axis=(1, 2, 3))
    overlap = ops.sum(target * pred, axis=(1, 2, 3))
    dice = 1.0 - (2.0 * overlap + 1.0) / (ops.sum(target, axis=(1, 2, 3))
                                          + ops.sum(pred, axis=(1, 2, 3)) + 1.0)
    return known * (bce + dice)


def _pipeline(config: TrainConfig, x, y, outlines, weights, training: bool):
    import tensorflow as tf

    spec = config.spec
    layers = (source_robust_augmentation if config.augment == "source-robust"
              else mri_augmentation)(spec, config.seed).layers
    geometric, exposure = layers[:GEOMETRIC_LAYERS], layers[GEOMETRIC_LAYERS:]
    data = tf.data.Dataset.from_tensor_slices(
        (x, y.astype(np.int32), outlines[..., None], weights.astype(np.float32)))
    if training:
        data = data.shuffle(len(x), seed=config.seed, reshuffle_each_iteration=True)
    data = data.batch(config.batch_size)

    def augment(image, label, outline, weight):
        known = tf.reduce_min(outline, axis=(1, 2, 3), keepdims=True) >= 0
        stacked = tf.concat([image, tf.cast(tf.maximum(outline, 0), tf.float32)], axis=-1)
        for layer in geometric:
            stacked = layer(stacked, training=True)
        image, moved = stacked[..., :1], stacked[..., 1:]
        for layer in exposure:
            image = layer(image, training=True)
        outline = tf.where(known, tf.round(moved), -1.0)
        return image, (label, outline), (weight, tf.ones_like(weight))

    def plain(image, label, outline, weight):
        return image, (label, tf.cast(outline, tf.float32)), (weight, tf.ones_like(weight))

    data = data.map(augment if training else plain, num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(2)


def fit_with_outline(classifier, config: TrainConfig, fit_data: tuple,
                     train_outlines: np.ndarray, val_outlines: np.ndarray,
                     run_dir: Path) -> None:
    """Train ``classifier`` (its ``segmentation`` layer too) in place, resumable."""
    import keras

    x_train, y_train, x_val, y_val, weights = fit_data
    if config.backbone_from:  # before compiling: frozen layers are left out of training
        start_from_classifier(classifier, config.backbone_from)
    model = with_outline(classifier)
    steps = int(np.ceil(len(x_train) / config.batch_size))
    model.compile(
        optimizer=make_optimizer(config, steps, config.epochs, config.learning_rate),
        # in the model's output order: (probabilities, outline)
        loss=[partial_label_loss(config.class_names, config.label_smoothing), outline_loss],
        loss_weights=[1.0, config.outline_weight],
        metrics=[[PartialAccuracy(config.class_names)], []],
    )
    if config.init_weights:  # a resumed run's backup, restored at fit's start, wins
        model.load_weights(config.init_weights)
        log.info("starting from the weights of %s", config.init_weights)
    best = run_dir / "train.best.weights.h5"
    swap = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.ema > 0 else []
    callbacks = [
        *swap,
        keras.callbacks.BackupAndRestore(str(run_dir / "train.backup")),
        keras.callbacks.ModelCheckpoint(str(best), monitor="val_loss", save_best_only=True,
                                        save_weights_only=True),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience),
        keras.callbacks.CSVLogger(str(run_dir / "train.history.csv"), append=True),
    ]
    model.fit(_pipeline(config, x_train, y_train, train_outlines, weights, True),
              validation_data=_pipeline(config, x_val, y_val, val_outlines,
                                        np.ones(len(x_val)), False),
              epochs=config.epochs, verbose=2, callbacks=callbacks)
    if best.is_file():
        model.load_weights(str(best))
    plot_learning_curve(run_dir / "train.history.csv", run_dir / "train.learning_curve.png",
                        f"{config.architecture} {config.size}px")
