"""Tumour slices from outside the four-class dataset, through the served path.

The four-class dataset confounds the class with the collection (see the model card), so
its Testing split cannot show whether a model sees the tumour or the collection. A
folder of tumour slices of unknown type from another collection (``br35h-tumour/``,
with ``groups.tsv``) can: a model that learned "this collection looks like No Tumor"
calls them "No Tumor". Each file is decoded and answered exactly as an upload to
``/api/classify`` is (:meth:`braintumor.classify.Classifier.assess`, with the model's
not-a-brain-MRI policy), and the figures are given per slice and per near-duplicate
group (a group is one picture and its augmented copies, so groups are the honest count).

A model trained with that folder holds some of its groups out for validation; only
those are counted (:func:`held_out_groups` recomputes them from the model's recipe).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

from braintumor.classes import is_no_tumour
from braintumor.classify import Classifier
from braintumor.datasets.folders import read_groups
from braintumor.decoding import decode_file
from braintumor.training.split import held_out_groups

log = logging.getLogger(__name__)


def recipe_held_out(metadata_training: dict, folder: Path) -> tuple[set[str] | None, str]:
    """The held-out groups of ``folder`` for a model, and a note saying which were used.

    A model whose recipe did not train on this folder never saw any of it: every group
    counts (None). One that did: only the groups its run held out.
    """
    recipe = metadata_training.get("recipe") or {}
    if not recipe.get("extra_tumour"):
        return None, "all groups (the model was not trained on this folder)"
    if Path(recipe["extra_tumour"]).name != folder.name:
        return None, f"all groups (the model was trained on {recipe['extra_tumour']})"
    groups = list(read_groups(folder).values())
    held = held_out_groups(sorted(groups), float(recipe.get("extra_val_fraction", 0.25)),
                           int(recipe.get("seed", 42)))
    return held, (f"the {len(held)} groups the training run held out "
                  f"(fraction {recipe.get('extra_val_fraction')}, seed {recipe.get('seed')})")


def evaluate_tumour_folder(classifier: Classifier, folder: Path,
                           groups: set[str] | None = None, batch_size: int = 32) -> dict:
    """Slice and group figures for tumour slices answered as the API answers them.

    A slice is "called a tumour" when it is answered with a tumour class; refused slices
    (not a brain MRI) are counted apart. A group is called a tumour when most of its
    answered slices are; ``groups_called_tumour_refusals_as_misses`` counts a group only
    when most of all its slices are answered with a tumour class.
    """
    folder = Path(folder)
    table = read_groups(folder)
    names = sorted(n for n, g in table.items() if groups is None or g in groups)
    tumour_ids = [i for i, c in enumerate(classifier.class_names) if not is_no_tumour(c)]
    per_group: dict[str, list[str]] = defaultdict(list)
    outcome: dict[str, int] = defaultdict(int)
    confidences = []
    for start in range(0, len(names), batch_size):
        chunk = names[start:start + batch_size]
        assessed = classifier.assess([decode_file(str(folder / n)) for n in chunk],
                                     explain=False)
        for name, assessment in zip(chunk, assessed, strict=True):
            if assessment.error is not None:
                raise assessment.error
            if assessment.refused or assessment.probabilities is None:
                result = "refused"
            else:
                top = int(np.argmax(assessment.probabilities))
                result = "tumour" if top in tumour_ids else "no_tumour"
                confidences.append(float(np.max(assessment.probabilities)))
                outcome[classifier.class_names[top]] += 1
            per_group[table[name]].append(result)
    results = [r for rs in per_group.values() for r in rs]
    answered = [r for r in results if r != "refused"]

    def majority(rs: list[str], of_answered: bool) -> bool:
        pool = [r for r in rs if r != "refused"] if of_answered else rs
        return bool(pool) and sum(r == "tumour" for r in pool) * 2 > len(pool)

    count = len(per_group)
    return {
        "slices": len(results),
        "groups": count,
        "answered": len(answered),
        "refused": len(results) - len(answered),
        "answered_share": len(answered) / max(len(results), 1),
        "slices_called_tumour_of_answered": (sum(r == "tumour" for r in answered)
                                             / max(len(answered), 1)),
        "slices_called_tumour_refusals_as_misses": (sum(r == "tumour" for r in results)
                                                    / max(len(results), 1)),
        "groups_called_tumour": sum(majority(rs, True) for rs in per_group.values())
        / max(count, 1),
        "groups_called_tumour_refusals_as_misses":
            sum(majority(rs, False) for rs in per_group.values()) / max(count, 1),
        "answers_by_class": dict(sorted(outcome.items())),
        "median_confidence": float(np.median(confidences)) if confidences else None,
    }


def render_markdown(section: dict) -> list[str]:
    def pct(v: float) -> str:
        return f"{100 * v:.2f}%"

    return [
        "## Tumour slices from outside the dataset",
        "",
        f"`{section['folder']}`: {section['used']}. Each slice answered as an upload to "
        "`/api/classify` is (not-a-brain-MRI policy included).",
        "",
        "| | slices | groups |",
        "|---|---:|---:|",
        f"| count | {section['slices']} | {section['groups']} |",
        f"| called a tumour (of answered) | {pct(section['slices_called_tumour_of_answered'])}"
        f" | {pct(section['groups_called_tumour'])} |",
        f"| called a tumour (refusals as misses) | "
        f"{pct(section['slices_called_tumour_refusals_as_misses'])} | "
        f"{pct(section['groups_called_tumour_refusals_as_misses'])} |",
        f"| answered rather than refused | {pct(section['answered_share'])} | |",
        "",
        f"Answers by class: {section['answers_by_class']}; median confidence "
        f"{section['median_confidence']}.",
        "",
    ]
