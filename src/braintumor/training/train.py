"""The training loop: split, augment, class-balanced loss, schedule, early stopping,
checkpoint and resume, then temperature calibration and a model saved with metadata.

A run writes everything to its run folder (checkpoints, history and its learning curve,
split); only the final model, without optimizer state, is written to ``--out``.
Re-running the same command with the same run folder resumes from the last completed
epoch.

Slices known only to hold a tumour (``extra_tumour``, :mod:`braintumor.training.partial`)
join the training with a partial label, their near-duplicate groups split between train
and a held-out "extra tumour validation" that early stopping watches together with the
ordinary validation split. With ``sources`` the sampling weights balance the public
collections inside each class (:mod:`braintumor.training.sources`).

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
    #: How pictures are fitted to the input (InputSpec.framing): "stretch" or "head".
    framing: str = "stretch"
    #: Channels of the compact network's first stage (doubling at each later stage).
    width: int = 32
    #: A folder of tumour slices of unknown type with groups.tsv, trained on with a
    #: partial label; ``extra_val_fraction`` of its groups are held out for validation.
    extra_tumour: str = ""
    extra_val_fraction: float = 0.25
    #: sources.tsv of the dataset: when set, collection-balanced sample weights.
    sources: str = ""
    #: "basic" (geometry, contrast) or "source-robust" (+ resolution, blur, noise, gamma, bias).
    augment: str = "basic"
    label_smoothing: float = 0.0
    #: Exponential moving average of the weights (validated and kept instead of the raw ones).
    ema: float = 0.0
    #: Give the model the nearest-neighbour memory vote (braintumor.model.memory).
    memory: bool = True

    @property
    def spec(self) -> InputSpec:
        return InputSpec((self.size, self.size), self.channels, self.scaling, self.framing)


def _class_weights(labels: np.ndarray, classes: int) -> np.ndarray:
    """Per-image weights that make every label id count alike (mean weight 1)."""
    counts = np.bincount(labels, minlength=classes).astype(float)
    per_label = len(labels) / (np.count_nonzero(counts) * np.maximum(counts, 1))
    return per_label[labels].astype(np.float32)


def _compile(model, config: TrainConfig, steps_per_epoch: int, epochs: int, lr: float) -> None:
    import keras

    from braintumor.training.partial import PartialAccuracy, partial_label_loss

    total = max(steps_per_epoch * epochs, 2)
    warmup = min(steps_per_epoch, total // 2)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr / 10, decay_steps=total - warmup, alpha=0.01,
        warmup_target=lr, warmup_steps=warmup,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule,
                                         weight_decay=config.weight_decay,
                                         use_ema=config.ema > 0,
                                         ema_momentum=config.ema or 0.99),
        loss=partial_label_loss(config.class_names, config.label_smoothing),
        metrics=[PartialAccuracy(config.class_names)],
    )


def _fit(train_model, stage: str, config: TrainConfig, data: tuple, epochs: int, lr: float,
         run_dir: Path):
    import keras

    x_train, y_train, x_val, y_val, weights = data
    steps = int(np.ceil(len(x_train) / config.batch_size))
    _compile(train_model, config, steps, epochs, lr)
    best = run_dir / f"{stage}.best.weights.h5"
    # with EMA, validation, the checkpoint and early stopping all see the averaged weights
    swap = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.ema > 0 else []
    callbacks = [
        *swap,
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
        sample_weight=weights,
    )
    if best.is_file():
        train_model.load_weights(str(best))
    plot_learning_curve(run_dir / f"{stage}.history.csv", run_dir / f"{stage}.learning_curve.png",
                        f"{config.architecture} {config.size}px, {stage}")
    return history


def load_training_images(config: TrainConfig) -> ImageSet:
    if config.parquet:
        from braintumor.spark.dataset import load_parquet

        if config.framing != "stretch":
            raise ValueError("--parquet holds stretched pixels: train it with framing 'stretch'"
                             " or preprocess with the same --framing and train from folders")
        return load_parquet(config.parquet, config.class_names, (config.size, config.size))
    return load_folder(Path(config.data), config.class_names, (config.size, config.size),
                       cache_dir=Path(config.cache_dir) if config.cache_dir else None,
                       framing=config.framing)


@dataclass
class TrainingData:
    """Every image a run uses, and which of them train and which validate.

    ``images`` holds the class-folder images first, then any extra tumour slices (label
    ``tumour_any``); ``train``/``val`` index into it. ``full`` marks the images with a
    full (four-class) label, the only ones temperature and metrics are computed on.
    """

    images: ImageSet
    train: np.ndarray
    val: np.ndarray
    full: np.ndarray
    collections: list[str]

    @property
    def extra_val(self) -> np.ndarray:
        return self.val[~self.full[self.val]]


def assemble(config: TrainConfig) -> TrainingData:
    """Load, group and split the run's images (near-duplicates on one side)."""
    from braintumor.training.dataset import ImageSet, load_tumour_slices
    from braintumor.training.partial import tumour_any
    from braintumor.training.sources import UNKNOWN, read_sources
    from braintumor.training.split import (
        duplicate_groups,
        grouped_stratified_split,
        held_out_groups,
    )

    images = load_training_images(config)
    groups = duplicate_groups(images.pixels)
    train_idx, val_idx = grouped_stratified_split(images.labels, groups, config.val_fraction,
                                                  config.seed)
    where = read_sources(Path(config.sources), Path(config.data).name) if config.sources else {}
    collections = [where.get(p, UNKNOWN) for p in images.paths]
    full = np.ones(len(images), dtype=bool)
    if config.extra_tumour:
        extra, extra_groups = load_tumour_slices(
            Path(config.extra_tumour), tumour_any(config.class_names),
            (config.size, config.size),
            Path(config.cache_dir) if config.cache_dir else None, framing=config.framing)
        held = held_out_groups(extra_groups, config.extra_val_fraction, config.seed)
        in_val = np.array([g in held for g in extra_groups])
        offset = len(images)
        train_idx = np.concatenate([train_idx, offset + np.flatnonzero(~in_val)])
        val_idx = np.concatenate([val_idx, offset + np.flatnonzero(in_val)])
        images = ImageSet(np.concatenate([images.pixels, extra.pixels]),
                          np.concatenate([images.labels, extra.labels]),
                          images.paths + extra.paths,
                          f"{images.fingerprint}+{extra.fingerprint}")
        collections += [f"extra:{Path(config.extra_tumour).name}"] * len(extra)
        full = np.concatenate([full, np.zeros(len(extra), dtype=bool)])
    return TrainingData(images, train_idx, val_idx, full, collections)


def train(config: TrainConfig) -> dict:
    """Run the whole recipe; returns the metadata written with the model."""
    import keras

    from braintumor.model.loaded import LoadedModel
    from braintumor.model.memory import MEMORY_ARCHIVE_ENTRY
    from braintumor.model.metadata import OOD_ARCHIVE_ENTRY, ModelMetadata, replace_metadata
    from braintumor.ood.fit import fit_statistics
    from braintumor.ood.mahalanobis import pack
    from braintumor.training import architectures
    from braintumor.training.augment import mri_augmentation, source_robust_augmentation
    from braintumor.training.calibration import (
        expected_calibration_error,
        fit_temperature,
        nll,
        softmax,
    )
    from braintumor.training.fit_memory import fit_memory
    from braintumor.training.partial import is_correct
    from braintumor.training.sources import balanced_weights

    started = time.time()
    keras.utils.set_random_seed(config.seed)
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(asdict(config), indent=2))
    spec = config.spec

    run = assemble(config)
    images, train_idx, val_idx = run.images, run.train, run.val
    (run_dir / "split.json").write_text(json.dumps(
        {"train": [images.paths[i] for i in train_idx],
         "val": [images.paths[i] for i in val_idx]}, indent=0))
    log.info("%d images: %d train, %d validation (%d of them extra tumour slices)",
             len(images), len(train_idx), len(val_idx), len(run.extra_val))
    x_train, y_train = to_model_input(images.pixels[train_idx], spec), images.labels[train_idx]
    x_val, y_val = to_model_input(images.pixels[val_idx], spec), images.labels[val_idx]
    if config.sources:
        sample_weights = balanced_weights(y_train, [run.collections[i] for i in train_idx])
    else:
        sample_weights = _class_weights(y_train, len(config.class_names) + 1)
    data = (x_train, y_train, x_val, y_val, sample_weights)

    classes = len(config.class_names)
    weights = None if config.weights == "none" else config.weights
    classifier, backbone = architectures.build_with_backbone(
        config.architecture, spec, classes, config.width, weights)
    inputs = keras.Input(shape=(*spec.size, spec.channels))
    augmentation = (source_robust_augmentation if config.augment == "source-robust"
                    else mri_augmentation)(spec, config.seed)
    train_model = keras.Model(inputs, classifier(augmentation(inputs)))

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
    all_val_logits = served.outputs_of_pixels(images.pixels[val_idx])[0]
    full_val = run.full[val_idx]
    val_logits, y_val = all_val_logits[full_val], y_val[full_val]
    temperature = fit_temperature(val_logits, y_val)
    val_acc = float(np.mean(val_logits.argmax(1) == y_val))
    extra_val = ~full_val
    extra_metrics = {}
    if extra_val.any():
        extra_metrics["extra_tumour_validation_called_tumour"] = round(float(np.mean(
            is_correct(all_val_logits[extra_val], images.labels[val_idx][extra_val],
                       config.class_names))), 5)
        extra_metrics["extra_tumour_validation_slices"] = int(extra_val.sum())
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
            **extra_metrics,
        },
        "train_seconds": round(time.time() - started, 1),
    }
    out = Path(config.out)
    calibrated = LoadedModel(clean, metadata, out)
    labels = resolve_partial_labels(calibrated, images.pixels, images.labels, config.class_names)
    fits, metadata.ood = fit_statistics(calibrated, images.pixels[train_idx],
                                        labels[train_idx], images.pixels[val_idx])
    metadata.ood.update(split=str(run_dir / "split.json"), data_fingerprint=images.fingerprint)
    if config.memory:
        memory, metadata.memory = fit_memory(calibrated, images.pixels, labels, train_idx,
                                             val_idx)
        metadata.memory["data_fingerprint"] = images.fingerprint
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    clean.save(out)
    entries = {OOD_ARCHIVE_ENTRY: pack(fits)}
    if config.memory:
        entries[MEMORY_ARCHIVE_ENTRY] = memory.to_npz()
    replace_metadata(out, metadata, entries=entries)
    log.info("saved %s: validation accuracy %.4f, temperature %.3f", out, val_acc, temperature)
    return metadata.to_dict()


def resolve_partial_labels(model, pixels: np.ndarray, labels: np.ndarray,
                           class_names: list[str]) -> np.ndarray:
    """Labels with every partial one replaced by the model's likeliest allowed class.

    The class-conditional statistics (not-a-brain-MRI, memory) need one class per image;
    a slice known only to hold a tumour is counted under the tumour class the trained
    model finds likeliest for it.
    """
    from braintumor.training.partial import allowed_matrix

    labels = np.asarray(labels).copy()
    partial = labels >= len(class_names)
    if partial.any():
        probs = model.outputs_of_pixels(pixels[partial], head_only=True)[1]
        allowed = allowed_matrix(class_names)[labels[partial]]
        labels[partial] = np.argmax(probs * allowed, axis=1)
    return labels


def _save(classifier, config: TrainConfig, path: Path | None):
    """A fresh, uncompiled copy of ``classifier`` (no optimizer state), saved if ``path``."""
    from braintumor.training import architectures

    clean = architectures.build(config.architecture, config.spec, len(config.class_names),
                                config.width)
    clean.set_weights(classifier.get_weights())
    if path is not None:
        clean.save(path)
    return clean
