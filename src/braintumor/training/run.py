"""A run folder and the data of a run.

A run folder (``--run-dir``) holds everything a training run leaves besides the model:
its recipe (``config.json``), its split (``split.json``: the train and validation paths),
checkpoints and history. :class:`RunFolder` is the one owner of those two files, so that
training, ``fit-ood`` and ``fit-memory`` read the split the same way: refitting a step on a
saved run loads the run's recipe, assembles the same images (extra tumour slices
included) and checks them against the recorded split.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from braintumor.datasets.folders import ImageSet, load_folder, load_tumour_slices
from braintumor.datasets.parquet import load_parquet
from braintumor.training.masks import UNKNOWN as NO_OUTLINE
from braintumor.training.masks import outline_targets
from braintumor.training.partial import tumour_any
from braintumor.training.recipe import TrainConfig
from braintumor.training.sources import UNKNOWN, read_sources
from braintumor.training.split import (
    duplicate_groups,
    grouped_stratified_split,
    held_out_groups,
)
from braintumor.training.volumes import load_volume_slices

log = logging.getLogger(__name__)


#: The sampling collection of every volume slice (training.sources.balanced_weights).
VOLUMES_COLLECTION = "volumes"


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
    #: int8 (N, H, W) outline targets (training.masks: -1 where none was drawn), when the
    #: recipe trains an outline.
    outlines: np.ndarray | None = None

    @property
    def extra_val(self) -> np.ndarray:
        return self.val[~self.full[self.val]]

    def without_volumes(self, index: np.ndarray) -> np.ndarray:
        """``index`` without the volumes' slices (their collections are
        ``VOLUMES_COLLECTION``, or it with the variant after a colon)."""
        return np.array([i for i in index
                         if self.collections[i].split(":")[0] != VOLUMES_COLLECTION],
                        dtype=np.int64)


def load_training_images(config: TrainConfig) -> ImageSet:
    """The recipe's class-folder images (or its Parquet), framed as the recipe says."""
    if config.parquet:
        if config.framing != "stretch":
            raise ValueError("--parquet holds stretched pixels: train it with framing 'stretch'"
                             " or preprocess with the same --framing and train from folders")
        return load_parquet(config.parquet, config.class_names, (config.size, config.size))
    return load_folder(Path(config.data), config.class_names, (config.size, config.size),
                       cache_dir=Path(config.cache_dir) if config.cache_dir else None,
                       framing=config.framing)


def assemble(config: TrainConfig) -> TrainingData:
    """Load, group and split the run's images (near-duplicates on one side)."""
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
    outlines = None
    if config.masks:
        outlines = outline_targets(Path(config.data), Path(config.masks), images.paths,
                                   images.labels, config.class_names,
                                   (config.size, config.size), config.framing, _cache(config))
    if config.volumes:
        images, train_idx, val_idx, full, outlines = _with_volume_slices(
            config, images, train_idx, val_idx, full, outlines, collections)
    return TrainingData(images, train_idx, val_idx, full, collections, outlines)



def _variant(path: str) -> str:
    """"head", "brain" (skull-stripped), "mirrored-<side>" or "tumour": the variant a
    volume slice's path names."""
    return path.split("#")[1].split(":")[0] if "#" in path else "tumour"


def _cache(config: TrainConfig) -> Path | None:
    return Path(config.cache_dir) if config.cache_dir else None


def _with_volume_slices(config: TrainConfig, images: ImageSet, train_idx: np.ndarray,
                        val_idx: np.ndarray, full: np.ndarray, outlines: np.ndarray | None,
                        collections: list[str]):
    """The images with the volumes' train and validation cases' slices appended."""
    size = (config.size, config.size)
    parts = [load_volume_slices(Path(config.volumes), config.class_names, size,
                                config.framing, (split,), _cache(config),
                                mirrored=config.mirror_hemispheres)
             for split in ("train", "val")]
    pixels, labels, paths = [images.pixels], [images.labels], list(images.paths)
    masks = [outlines if outlines is not None
             else np.full((len(images), *size), NO_OUTLINE, dtype=np.int8)]
    for part, split in zip(parts, ("train", "val"), strict=True):
        index = len(paths) + np.arange(len(part.paths))
        if split == "train":
            train_idx = np.concatenate([train_idx, index])
        else:
            val_idx = np.concatenate([val_idx, index])
        pixels.append(part.pixels)
        labels.append(part.labels)
        masks.append(part.outlines)
        paths += part.paths
        # one collection: inside a class the volumes weigh as much as each of the
        # dataset's collections, not once per variant (whole head, skull-stripped, tumour)
        collections += ([VOLUMES_COLLECTION] * len(part.paths)
                        if config.volume_collections == "one" else
                        [f"{VOLUMES_COLLECTION}:{_variant(p)}" for p in part.paths])
        full = np.concatenate([full, np.ones(len(part.paths), dtype=bool)])
    fingerprint = f"{images.fingerprint}+volumes:{len(paths) - len(images.paths)}"
    return (ImageSet(np.concatenate(pixels), np.concatenate(labels), paths, fingerprint),
            train_idx, val_idx, full, np.concatenate(masks))


def stretched_pixels(config: TrainConfig) -> np.ndarray:
    """The run's images in :func:`assemble`'s order, stretched whole to the model's size.

    What the not-a-brain-MRI layout distance is fitted on for a model that frames the
    head (:func:`braintumor.classify.layout_pixels`); decoded once and cached like the
    framed pixels.
    """
    size = (config.size, config.size)
    cache = Path(config.cache_dir) if config.cache_dir else None
    if config.parquet:  # a Parquet run is stretched already
        return load_training_images(config).pixels
    pixels = [load_folder(Path(config.data), config.class_names, size, cache_dir=cache).pixels]
    if config.extra_tumour:
        pixels.append(load_tumour_slices(Path(config.extra_tumour),
                                         tumour_any(config.class_names), size, cache)[0].pixels)
    if config.volumes:
        pixels += [load_volume_slices(Path(config.volumes), config.class_names, size,
                                      "stretch", (split,), cache,
                                      mirrored=config.mirror_hemispheres).pixels
                   for split in ("train", "val")]
    return np.concatenate(pixels)


class RunFolder:
    """A training run's folder: its recipe and its split."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def split_file(self) -> Path:
        return self.path / "split.json"

    def has_recipe(self) -> bool:
        return self.config_file.is_file()

    def save_config(self, config: TrainConfig) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(json.dumps(asdict(config), indent=2))

    def load_config(self) -> TrainConfig:
        if not self.has_recipe():
            raise FileNotFoundError(f"{self.config_file} not found: not a training run folder")
        return TrainConfig.from_dict(json.loads(self.config_file.read_text()))

    def save_split(self, data: TrainingData) -> None:
        paths = data.images.paths
        self.split_file.write_text(json.dumps(
            {"train": [paths[i] for i in data.train], "val": [paths[i] for i in data.val]},
            indent=0))

    def read_split(self, paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the recorded train and validation images among ``paths``.

        Every recorded image must be there: a refit on other data than the run's would
        describe a split that was never trained on.
        """
        split = json.loads(self.split_file.read_text())
        where = {path: i for i, path in enumerate(paths)}
        missing = [p for p in split["train"] + split["val"] if p not in where]
        if missing:
            raise ValueError(f"{self.split_file} names {len(missing)} scans that are not in "
                             f"the data (first: {missing[0]}); use the data the run was "
                             "trained on")
        return (np.array([where[p] for p in split["train"]], dtype=np.int64),
                np.array([where[p] for p in split["val"]], dtype=np.int64))

    def recipe(self, data_dir: Path | None = None, cache_dir: Path | None = None
               ) -> TrainConfig:
        """The run's recipe; ``data_dir`` and ``cache_dir`` override where its class
        folders and cache are (a run made on another machine)."""
        config = self.load_config()
        if data_dir is not None:
            config.data = str(data_dir)
        if cache_dir is not None:
            config.cache_dir = str(cache_dir)
        return config

    def data(self, data_dir: Path | None = None, cache_dir: Path | None = None,
             config: TrainConfig | None = None) -> TrainingData:
        """The run's images assembled by its own recipe (:meth:`recipe`, or ``config``
        when the caller has it already), with the recorded split."""
        data = assemble(config or self.recipe(data_dir, cache_dir))
        data.train, data.val = self.read_split(data.images.paths)
        return data
