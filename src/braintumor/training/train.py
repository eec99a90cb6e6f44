"""The training recipe as steps over one run folder.

``train()`` runs them in order; each is a function of its own so that a step can be run
again on a saved run (``braintumor fit-ood``, ``braintumor fit-memory``):

1. **split** (:func:`braintumor.training.run.assemble`): load the images, keep
   near-duplicates on one side, record ``split.json``;
2. **fit** (:func:`fit_network`): augmentation, loss, schedule, checkpoint and resume;
3. **calibrate** (:func:`calibrate`): the temperature and the validation figures;
4. **fit-OOD** (:func:`fit_ood`): the not-a-brain-MRI statistics on the train split,
   threshold on validation (:mod:`braintumor.training.ood_fit`);
5. **fit-memory** (:func:`fit_memory_step`): the nearest-neighbour vote, when the recipe
   asks for one;
6. **save** (:func:`save`): the model without optimizer state, with its metadata.

A run writes everything to its run folder (checkpoints, history and its learning curve,
split); only the final model is written to ``--out``. Re-running the same command with
the same run folder resumes from the last completed epoch.

Slices known only to hold a tumour (``extra_tumour``, :mod:`braintumor.training.partial`)
join the training with a partial label, their near-duplicate groups split between train
and a held-out "extra tumour validation" that the checkpoint watches together with the
ordinary validation split. With ``sources`` the sampling weights balance the public
collections inside each class (:mod:`braintumor.training.sources`).
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from braintumor.classes import no_tumour_index
from braintumor.model.loaded import LoadedModel, load_model
from braintumor.model.memory import MEMORY_ARCHIVE_ENTRY, FeatureMemory
from braintumor.model.metadata import OOD_ARCHIVE_ENTRY, ModelMetadata, replace_metadata
from braintumor.model.onnx_export import export_model_file
from braintumor.ood.mahalanobis import pack
from braintumor.preprocessing import to_model_input
from braintumor.training import architectures
from braintumor.training.augment import mri_augmentation, source_robust_augmentation
from braintumor.training.calibration import (
    expected_calibration_error,
    fit_temperature,
    nll,
    softmax,
)
from braintumor.training.curves import plot_learning_curve
from braintumor.training.fit_memory import fit_memory
from braintumor.training.ood_fit import DEFAULT_QUANTILE, fit_statistics
from braintumor.training.outline_fit import fit_with_outline
from braintumor.training.partial import (
    PartialAccuracy,
    allowed_matrix,
    is_correct,
    partial_label_loss,
)
from braintumor.training.recipe import TrainConfig
from braintumor.training.run import (
    RunFolder,
    TrainingData,
    assemble,
    load_training_images,
    stretched_pixels,
)
from braintumor.training.schedule import make_optimizer
from braintumor.training.sources import balanced_weights

log = logging.getLogger(__name__)

__all__ = ["TrainConfig", "assemble", "load_training_images", "train"]


def _class_weights(labels: np.ndarray, classes: int) -> np.ndarray:
    """Per-image weights that make every label id count alike (mean weight 1)."""
    counts = np.bincount(labels, minlength=classes).astype(float)
    per_label = len(labels) / (np.count_nonzero(counts) * np.maximum(counts, 1))
    return per_label[labels].astype(np.float32)


def _compile(model, config: TrainConfig, steps_per_epoch: int, epochs: int, lr: float) -> None:
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch, epochs, lr),
        loss=partial_label_loss(config.class_names, config.label_smoothing),
        metrics=[PartialAccuracy(config.class_names)],
    )


def _fit(train_model, stage: str, config: TrainConfig, data: tuple, epochs: int, lr: float,
         run_dir: Path):
    # TensorFlow is heavy: imported only by the commands that train
    import keras

    x_train, y_train, x_val, y_val, weights = data
    steps = int(np.ceil(len(x_train) / config.batch_size))
    _compile(train_model, config, steps, epochs, lr)
    if config.init_weights:  # a resumed run's backup, restored at fit's start, wins
        train_model.load_weights(config.init_weights)
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


def fit_network(config: TrainConfig, run: RunFolder, data: TrainingData):
    """Step 2: train the network on the split; returns a clean copy (no optimizer state)."""
    # TensorFlow is heavy: imported only by the commands that train
    import keras

    spec = config.spec
    images = data.images
    x_train = to_model_input(images.pixels[data.train], spec)
    y_train = images.labels[data.train]
    x_val, y_val = to_model_input(images.pixels[data.val], spec), images.labels[data.val]
    if config.sources:
        sample_weights = balanced_weights(y_train, [data.collections[i] for i in data.train])
    else:
        sample_weights = _class_weights(y_train, len(config.class_names) + 1)
    fit_data = (x_train, y_train, x_val, y_val, sample_weights)

    weights = None if config.weights == "none" else config.weights
    classifier, backbone = architectures.build_with_backbone(
        config.architecture, spec, len(config.class_names), config.width, weights)
    if config.architecture in architectures.SEGMENTATION_LAYERS:
        if data.outlines is None:
            raise ValueError(f"{config.architecture} trains an outline: give --masks")
        fit_with_outline(classifier, config, fit_data, data.outlines[data.train],
                         data.outlines[data.val], run.path)
        return _clean_copy(classifier, config, None)
    inputs = keras.Input(shape=(*spec.size, spec.channels))
    augmentation = (source_robust_augmentation if config.augment == "source-robust"
                    else mri_augmentation)(spec, config.seed)
    train_model = keras.Model(inputs, classifier(augmentation(inputs)))

    if weights is not None and backbone is not None:
        # The seed's two stages: train the new head on a frozen backbone, then fine-tune.
        backbone.trainable = False
        _fit(train_model, "stage1", config, fit_data, config.epochs, config.learning_rate,
             run.path)
        _clean_copy(classifier, config, run.path / "best_model_stage1.keras")
        backbone.trainable = True
        _fit(train_model, "stage2", config, fit_data, config.fine_tune_epochs,
             config.learning_rate / 10, run.path)
        _clean_copy(classifier, config, run.path / "best_model_stage2.keras")
    else:
        _fit(train_model, "train", config, fit_data, config.epochs, config.learning_rate,
             run.path)
    return _clean_copy(classifier, config, None)


def calibrate(network, config: TrainConfig, data: TrainingData) -> ModelMetadata:
    """Step 3: the temperature on the fully labelled validation images, and the figures.

    The extra tumour slices held out for validation are reported apart: the share the
    network (before any memory vote) calls a tumour.
    """
    metadata = ModelMetadata(
        class_names=list(config.class_names), input=config.spec,
        gradcam_layer=architectures.GRADCAM_LAYERS.get(config.architecture, ""),
        segmentation_layer=architectures.SEGMENTATION_LAYERS.get(config.architecture, ""),
        architecture=config.architecture,
    )
    images = data.images
    all_logits = LoadedModel(network, metadata, Path(config.out)).outputs_of_pixels(
        images.pixels[data.val]).logits
    full = data.full[data.val]
    logits, labels = all_logits[full], images.labels[data.val][full]
    temperature = fit_temperature(logits, labels)
    metrics = {
        "validation_accuracy": round(float(np.mean(logits.argmax(1) == labels)), 5),
        "validation_nll": round(nll(logits, labels), 5),
        "validation_nll_calibrated": round(nll(logits, labels, temperature), 5),
        "validation_ece": round(expected_calibration_error(softmax(logits), labels), 5),
        "validation_ece_calibrated": round(
            expected_calibration_error(softmax(logits, temperature), labels), 5),
    }
    if (~full).any():
        metrics["extra_tumour_validation_called_tumour"] = round(float(np.mean(is_correct(
            all_logits[~full], images.labels[data.val][~full], config.class_names))), 5)
        metrics["extra_tumour_validation_slices"] = int((~full).sum())
    metadata.temperature = temperature
    metadata.version = f"{config.architecture}-{config.size}px-{time.strftime('%Y%m%d')}"
    metadata.training = {
        "data_fingerprint": images.fingerprint,
        "images": {"train": len(data.train), "validation": len(data.val)},
        "recipe": {k: v for k, v in asdict(config).items() if k not in ("cache_dir",)},
        "metrics": metrics,
    }
    return metadata


def resolve_partial_labels(model, pixels: np.ndarray, labels: np.ndarray,
                           class_names: list[str]) -> np.ndarray:
    """Labels with every partial one replaced by the model's likeliest allowed class.

    The class-conditional statistics (not-a-brain-MRI, memory) need one class per image;
    a slice known only to hold a tumour is counted under the tumour class the trained
    model finds likeliest for it.
    """
    labels = np.asarray(labels).copy()
    partial = labels >= len(class_names)
    if partial.any():
        probs = model.outputs_of_pixels(pixels[partial], head_only=True).probabilities
        allowed = allowed_matrix(class_names)[labels[partial]]
        labels[partial] = np.argmax(probs * allowed, axis=1)
    return labels


def fit_ood(model: LoadedModel, data: TrainingData, run: RunFolder | None = None,
            quantile: float | None = None, config: TrainConfig | None = None,
            labels: np.ndarray | None = None) -> tuple[dict, dict]:
    """Step 4: the not-a-brain-MRI statistics (fits, description) of a calibrated model.

    A head-framing model's layout distance is fitted on the stretched whole pictures
    (``config`` says where they are; without it, on the model's own pixels). ``labels``:
    the partial labels already resolved (:func:`resolve_partial_labels`), when the caller
    has them.
    """
    images = data.images
    if labels is None:
        labels = resolve_partial_labels(model, images.pixels, images.labels,
                                        list(model.class_names))
    # Without the volumes' slices: a volume holds every level of the head, the vertex's
    # cap and the neck among them, and the threshold is a quantile of the validation
    # scores, so those slices would widen what counts as a brain MRI until other
    # pictures pass. Which slices of a volume count is the series' brain check
    # (series.assess), not this one.
    train, val = data.without_volumes(data.train), data.without_volumes(data.val)
    whole = None
    if model.input_spec.framing != "stretch" and config is not None:
        stretched = stretched_pixels(config)
        whole = (stretched[train], stretched[val])
    fits, description = fit_statistics(model, images.pixels[train], labels[train],
                                       images.pixels[val], quantile or DEFAULT_QUANTILE,
                                       layout_pixels=whole)
    left_out = len(data.train) + len(data.val) - len(train) - len(val)
    if left_out:
        description["left_out"] = f"{left_out} slices of the volumes"
    if run is not None:
        description["split"] = str(run.split_file)
    description["data_fingerprint"] = images.fingerprint
    return fits, description


def fit_memory_step(model: LoadedModel, data: TrainingData, scope: str = "all",
                    labels: np.ndarray | None = None) -> tuple[FeatureMemory, dict]:
    """Step 5: the nearest-neighbour memory (memory, description) of a calibrated model.

    The vote's settings are chosen on the whole validation split, the held-out extra
    tumour slices included (right when answered with any tumour class), with a memory of
    the training split; the fully labelled validation images and the extra tumour slices
    weigh alike in that choice, whatever their numbers (a vote that gains on the
    collections it knows while losing the other collection's tumours must not win). The
    memory that ships holds every image of the run but those held-out slices: a memory
    that held them would find each of them itself, and the extra tumour validation, the
    run's one measure on another collection's tumours, would measure a lookup.
    ``scope`` is the recipe's ``memory_scope``; ``labels`` as for :func:`fit_ood`.
    """
    images = data.images
    names = list(model.class_names)
    if labels is None:
        labels = resolve_partial_labels(model, images.pixels, images.labels, names)
    bank = np.ones(len(images), dtype=bool)
    bank[data.extra_val] = False
    head_class = no_tumour_index(names) if scope == "tumour-type" else -1
    if head_class is None:
        raise ValueError(f"memory_scope tumour-type needs a No Tumor class among {names}")
    memory, description = fit_memory(
        model, images.pixels, labels, data.train, data.val, head_class,
        val_allowed=allowed_matrix(names)[images.labels[data.val]],
        bank_idx=np.flatnonzero(bank), val_weights=_part_weights(data.full[data.val]))
    description["data_fingerprint"] = images.fingerprint
    if len(data.extra_val):
        description["chosen_on"] = ("validation split and held-out extra tumour slices, "
                                    "memory of the training split")
        description["left_out"] = (f"{len(data.extra_val)} held-out extra tumour slices "
                                   "(validation)")
    return memory, description


def _part_weights(full: np.ndarray) -> np.ndarray:
    """Weights under which the fully labelled images and the others count alike."""
    full = np.asarray(full, dtype=bool)
    weights = np.where(full, 1.0 / max(full.sum(), 1), 1.0 / max((~full).sum(), 1))
    return weights / weights.sum()


def save(network, metadata: ModelMetadata, out: Path, ood_fits: dict,
         memory: FeatureMemory | None = None) -> None:
    """Step 6: the model file, its metadata, OOD arrays and (optional) memory inside."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    network.save(out)
    entries = {OOD_ARCHIVE_ENTRY: pack(ood_fits)}
    if memory is not None:
        entries[MEMORY_ARCHIVE_ENTRY] = memory.to_npz()
    replace_metadata(out, metadata, entries=entries)


def export_onnx_graph(out: Path) -> None:
    """The saved model's ONNX graph, stored in it: what the service runs (ONNX Runtime,
    braintumor.model.runtime). A failed export costs only the graph, not the run: the
    model is served by TensorFlow, and `braintumor export-onnx --model` tries again."""
    try:
        export_model_file(out)
    except Exception:
        log.exception("exporting %s to ONNX failed; it is served by TensorFlow until "
                      "`braintumor export-onnx --model %s` exports it", out, out)
    else:
        log.info("stored the ONNX graph in %s", out)


def train(config: TrainConfig) -> dict:
    """Run the whole recipe; returns the metadata written with the model."""
    # TensorFlow is heavy: imported only by the commands that train
    import keras

    started = time.time()
    keras.utils.set_random_seed(config.seed)
    run = RunFolder(config.run_dir)
    run.save_config(config)

    data = assemble(config)
    run.save_split(data)
    log.info("%d images: %d train, %d validation (%d of them extra tumour slices)",
             len(data.images), len(data.train), len(data.val), len(data.extra_val))
    network = fit_network(config, run, data)
    metadata = calibrate(network, config, data)
    metadata.training["train_seconds"] = round(time.time() - started, 1)
    out = Path(config.out)
    calibrated = LoadedModel(network, metadata, out)
    # one model pass names the likeliest tumour type of each partially labelled slice
    labels = resolve_partial_labels(calibrated, data.images.pixels, data.images.labels,
                                    list(config.class_names))
    fits, metadata.ood = fit_ood(calibrated, data, run, config=config, labels=labels)
    memory = None
    if config.memory:
        memory, metadata.memory = fit_memory_step(calibrated, data, config.memory_scope,
                                                  labels)
    save(network, metadata, out, fits, memory)
    log.info("saved %s: validation accuracy %.4f, temperature %.3f", out,
             metadata.training["metrics"]["validation_accuracy"], metadata.temperature)
    export_onnx_graph(out)
    return metadata.to_dict()


def _clean_copy(classifier, config: TrainConfig, path: Path | None):
    """A fresh, uncompiled copy of ``classifier`` (no optimizer state), saved if ``path``."""
    clean = architectures.build(config.architecture, config.spec, len(config.class_names),
                                config.width)
    clean.set_weights(classifier.get_weights())
    if path is not None:
        clean.save(path)
    return clean


#: The steps ``refit`` can run again on a saved run.
REFIT_STEPS = ("fit-ood", "fit-memory")


def refit(step: str, model_path: Path, run_dir: Path, settings, data_dir: Path | None = None,
          out: Path | None = None, cache_dir: Path | None = None,
          quantile: float | None = None) -> dict:
    """Run one step again on a saved run whose folder holds its recipe (``config.json``).

    The run's own recipe assembles the data (extra tumour slices and framing included) and
    its ``split.json`` fixes which images train and which validate, so a refit sees exactly
    what training saw. ``settings`` are the model settings to load with. Returns the
    description the step wrote into the model's metadata.
    """
    if step not in REFIT_STEPS:
        raise ValueError(f"unknown step {step!r} ({', '.join(REFIT_STEPS)})")
    run = RunFolder(run_dir)
    config = run.recipe(data_dir, cache_dir)
    data = run.data(config=config)
    model = load_model(settings, path=Path(model_path))
    metadata = copy.deepcopy(model.metadata)
    if step == "fit-ood":
        fits, metadata.ood = fit_ood(model, data, run, quantile, config)
        replace_metadata(Path(model_path), metadata, out,
                         entries={OOD_ARCHIVE_ENTRY: pack(fits)})
        return metadata.ood
    memory, metadata.memory = fit_memory_step(model, data, config.memory_scope)
    replace_metadata(Path(model_path), metadata, out,
                     entries={MEMORY_ARCHIVE_ENTRY: memory.to_npz()})
    return metadata.memory
