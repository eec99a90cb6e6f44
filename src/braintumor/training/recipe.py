"""A training recipe: every choice that makes a model, saved with the model and in its
run folder so that both say how the model was made."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from braintumor.classes import DEFAULT_CLASS_NAMES
from braintumor.preprocessing import InputSpec


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
    class_names: list[str] = field(default_factory=lambda: list(DEFAULT_CLASS_NAMES))
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
    #: "all": the vote decides every class; "tumour-type": the head keeps "No Tumor"'s
    #: probability and the vote only shares the rest out among the tumour types.
    memory_scope: str = "all"
    #: Expert tumour outlines (``figshare-masks/training``): trained on by an architecture
    #: with an outline (``compact-seg``), Dice + BCE; slices without one skip that loss.
    masks: str = ""
    #: Real 3D volumes (``volumes/`` with its manifest): their train cases' slices join
    #: training, their validation cases' slices the validation split (training.volumes).
    volumes: str = ""
    #: Weight of the outline loss against the classification loss.
    outline_weight: float = 1.0
    #: Weights of an earlier run of the same architecture (its ``*.best.weights.h5``) to
    #: start from instead of a random initialisation (a warm restart of the schedule).
    init_weights: str = ""
    #: How the volumes' slices count in the collection-balanced weights: "one" collection,
    #: or "per-variant" (whole heads, skull-stripped heads and tumour volumes apart: three
    #: collections, which outweigh the dataset's own healthy slices).
    volume_collections: str = "one"
    #: A trained classifier (``.keras``) whose backbone (stem and four stages, same layer
    #: names) is copied in and frozen, and whose head starts the new one: the outline
    #: decoder then learns to read features that already classify, and the decisions move
    #: only as far as the head does (training.outline_fit.start_from_classifier).
    backbone_from: str = ""
    #: Also train on each tumour volume's hemispheres mirrored into whole brains, their
    #: slices clear of any label as No Tumor (training.volumes.mirrored_halves): healthy
    #: brains of the gliomas' own look.
    mirror_hemispheres: bool = False

    @property
    def spec(self) -> InputSpec:
        return InputSpec((self.size, self.size), self.channels, self.scaling, self.framing)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """A recipe read back from ``config.json``; keys it does not know are ignored, so
        an older run folder still loads."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
