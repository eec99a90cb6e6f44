"""The training loop: split, augment, class-balanced loss, schedule, early stopping,
checkpoint and resume, then temperature calibration and a model saved with metadata.

A run writes everything to its run folder (checkpoints, history and its learning curve,
split); only the final model, without optimizer state, is written to ``--out``.
Re-running the same command with the same run folder resumes from the last completed
epoch.

Last, the not-a-brain-MRI statistics are fitted on the same train split (threshold on the
validation split, :mod:`braintumor.ood.fit`) and stored with the model, so the model that
training writes already refuses what is not a brain MRI.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from braintumor.preprocessing import InputSpec, to_model_input
from braintumor.training.curves import plot_learning_curve
from braintumor.training.dataset import ImageSet, load_folder

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """One training recipe; saved with the model so the model says how it was made."""

    data: str
    out: str
    run_dir: str = "runs/default"
    architecture: str = "compact"
    size: int = 160
    channels: int = 1
    scaling: str = "unit"
    weights: str = "none"
    epochs: int = 30
    fine_tune_epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.15
    patience: int = 8
    seed: int = 42
    class_names: list[str] = field(
        default_factory=lambda: ["Glioma", "Meningioma", "No Tumor", "Pituitary"]
    )
    cache_dir: str = ".cache"
    #: Parquet written by `braintumor spark preprocess`; when set, used instead of ``data``.
    parquet: str = ""

    @property
    def spec(self) -> InputSpec:
        return InputSpec((self.size, self.size), self.channels, self.scaling)


def _class_weights(labels: np.ndarray, classes: int) -> dict[int, float]:
    counts = np.bincount(labels, minlength=classes).astype(float)
    return {i: float(len(labels) / (classes * max(c, 1))) for i, c in enumerate(counts)}


def _compile(model, config: TrainConfig, steps_per_epoch: int, epochs: int, lr: float) -> None:
    import keras

    total = max(steps_per_epoch * epochs, 2)
    warmup = min(steps_per_epoch, total // 2)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr / 10, decay_steps=total - warmup, alpha=0.01,
        warmup_target=lr, warmup_steps=warmup,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule,
                                         weight_decay=config.weight_decay),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def _fit(train_model, stage: str, config: TrainConfig, data: tuple, epochs: int, lr: float,
         run_dir: Path):
    import keras

    x_train, y_train, x_val, y_val = data
    steps = int(np.ceil(len(x_train) / config.batch_size))
    _compile(train_model, config, steps, epochs, lr)
    best = run_dir / f"{stage}.best.weights.h5"
    callbacks = [
        keras.callbacks.BackupAndRestore(str(run_dir / f"{stage}.backup")),
        keras.callbacks.ModelCheckpoint(str(best), monitor="val_loss", save_best_only=True,
                                        save_weights_only=True),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                      restore_best_weights=False),
        keras.callbacks.CSVLogger(str(run_dir / f"{stage}.history.csv"), append=True),
    ]
    history = train_model.fit(
        x_train, y_train, validation_data=(x_val, y_val), epochs=epochs,
        batch_size=config.batch_size, shuffle=True, verbose=2, callbacks=callbacks,
        class_weight=_class_weights(y_train, len(config.class_names)),
    )
    if best.is_file():
        train_model.load_weights(str(best))
    plot_learning_curve(run_dir / f"{stage}.history.csv", run_dir / f"{stage}.learning_curve.png",
                        f"{config.architecture} {config.size}px, {stage}")
    return history


def load_training_images(config: TrainConfig) -> ImageSet:
    if config.parquet:
        from braintumor.spark.dataset import load_parquet

        return load_parquet(config.parquet, config.class_names, (config.size, config.size))
    return load_folder(Path(config.data), config.class_names, (config.size, config.size),
                       cache_dir=Path(config.cache_dir) if config.cache_dir else None)


def train(config: TrainConfig) -> dict:
    """Run the whole recipe; returns the metadata written with the model."""
    import keras

    from braintumor.model.loaded import LoadedModel
    from braintumor.model.memory import MEMORY_ARCHIVE_ENTRY
    from braintumor.model.metadata import OOD_ARCHIVE_ENTRY, ModelMetadata, replace_metadata
    from braintumor.ood.fit import fit_statistics
    from braintumor.ood.mahalanobis import pack
    from braintumor.training import architectures
    from braintumor.training.augment import mri_augmentation
    from braintumor.training.calibration import (
        expected_calibration_error,
        fit_temperature,
        nll,
        softmax,
    )
    from braintumor.training.fit_memory import fit_memory
    from braintumor.training.split import duplicate_groups, grouped_stratified_split

    started = time.time()
    keras.utils.set_random_seed(config.seed)
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(asdict(config), indent=2))
    spec = config.spec

    images = load_training_images(config)
    groups = duplicate_groups(images.pixels)
    train_idx, val_idx = grouped_stratified_split(images.labels, groups, config.val_fraction,
                                                  config.seed)
    (run_dir / "split.json").write_text(json.dumps(
        {"train": [images.paths[i] for i in train_idx],
         "val": [images.paths[i] for i in val_idx]}, indent=0))
    log.info("%d images: %d train, %d validation, %d near-duplicate groups of 2+",
             len(images), len(train_idx), len(val_idx),
             int(np.sum(np.bincount(groups) > 1)))
    x_train, y_train = to_model_input(images.pixels[train_idx], spec), images.labels[train_idx]
    x_val, y_val = to_model_input(images.pixels[val_idx], spec), images.labels[val_idx]
    data = (x_train, y_train, x_val, y_val)

    classes = len(config.class_names)
    weights = None if config.weights == "none" else config.weights
    if config.architecture == "resnet50":
        classifier, backbone = architectures.resnet50(spec, classes, weights=weights)
    else:
        classifier, backbone = architectures.build(config.architecture, spec, classes), None
    inputs = keras.Input(shape=(*spec.size, spec.channels))
    train_model = keras.Model(inputs, classifier(mri_augmentation(spec, config.seed)(inputs)))

    if weights is not None and backbone is not None:
        # The seed's two stages: train the new head on a frozen backbone, then fine-tune.
        backbone.trainable = False
        _fit(train_model, "stage1", config, data, config.epochs, config.learning_rate, run_dir)
        _save(classifier, config, run_dir / "best_model_stage1.keras")
        backbone.trainable = True
        _fit(train_model, "stage2", config, data, config.fine_tune_epochs,
             config.learning_rate / 10, run_dir)
        _save(classifier, config, run_dir / "best_model_stage2.keras")
    else:
        _fit(train_model, "train", config, data, config.epochs, config.learning_rate, run_dir)

    clean = _save(classifier, config, None)
    metadata = ModelMetadata(
        class_names=list(config.class_names), input=spec,
        gradcam_layer=architectures.GRADCAM_LAYERS.get(config.architecture, ""),
        architecture=config.architecture,
    )
    served = LoadedModel(clean, metadata, Path(config.out))
    val_logits = served.outputs_of_pixels(images.pixels[val_idx])[0]
    temperature = fit_temperature(val_logits, y_val)
    val_acc = float(np.mean(val_logits.argmax(1) == y_val))
    metadata.temperature = temperature
    metadata.version = f"{config.architecture}-{config.size}px-{time.strftime('%Y%m%d')}"
    metadata.training = {
        "data_fingerprint": images.fingerprint,
        "images": {"train": len(train_idx), "validation": len(val_idx)},
        "recipe": {k: v for k, v in asdict(config).items() if k not in ("cache_dir",)},
        "metrics": {
            "validation_accuracy": round(val_acc, 5),
            "validation_nll": round(nll(val_logits, y_val), 5),
            "validation_nll_calibrated": round(nll(val_logits, y_val, temperature), 5),
            "validation_ece": round(expected_calibration_error(softmax(val_logits), y_val), 5),
            "validation_ece_calibrated": round(
                expected_calibration_error(softmax(val_logits, temperature), y_val), 5),
        },
        "train_seconds": round(time.time() - started, 1),
    }
    out = Path(config.out)
    calibrated = LoadedModel(clean, metadata, out)
    fits, metadata.ood = fit_statistics(calibrated, images.pixels[train_idx],
                                        images.labels[train_idx], images.pixels[val_idx])
    metadata.ood.update(split=str(run_dir / "split.json"), data_fingerprint=images.fingerprint)
    memory, metadata.memory = fit_memory(calibrated, images.pixels, images.labels, train_idx,
                                         val_idx)
    metadata.memory["data_fingerprint"] = images.fingerprint
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    clean.save(out)
    replace_metadata(out, metadata, entries={OOD_ARCHIVE_ENTRY: pack(fits),
                                             MEMORY_ARCHIVE_ENTRY: memory.to_npz()})
    log.info("saved %s: validation accuracy %.4f, temperature %.3f", out, val_acc, temperature)
    return metadata.to_dict()


def _save(classifier, config: TrainConfig, path: Path | None):
    """A fresh, uncompiled copy of ``classifier`` (no optimizer state), saved if ``path``."""
    from braintumor.training import architectures

    spec = config.spec
    if config.architecture == "resnet50":
        clean = architectures.resnet50(spec, len(config.class_names))[0]
    else:
        clean = architectures.build(config.architecture, spec, len(config.class_names))
    clean.set_weights(classifier.get_weights())
    if path is not None:
        clean.save(path)
    return clean
