"""Tumour slices from outside the dataset, answered as uploads are."""

from __future__ import annotations

import pytest

from braintumor.evaluation.external import (
    evaluate_tumour_folder,
    read_groups,
    recipe_held_out,
)
from braintumor.training.split import held_out_groups
from conftest import scan_like


@pytest.fixture
def tumour_folder(tmp_path):
    folder = tmp_path / "extra"
    (folder / "tumour").mkdir(parents=True)
    rows = ["file\tgroup"]
    for i in range(9):
        name = f"tumour/s{i}.png"
        scan_like((80 + 4 * i, 90), seed=i).save(folder / name)
        rows.append(f"{name}\tg{i // 3}")
    (folder / "groups.tsv").write_text("\n".join(rows) + "\n")
    return folder


def test_held_out_groups_are_seeded_and_sized() -> None:
    groups = [f"g{i:03d}" for i in range(40)] * 2
    first = held_out_groups(groups, 0.25, 7)
    assert len(first) == 10 and first == held_out_groups(list(reversed(groups)), 0.25, 7)
    assert first != held_out_groups(groups, 0.25, 8)


def test_recipe_held_out_uses_all_groups_of_a_folder_the_model_never_saw(tumour_folder):
    groups, note = recipe_held_out({"recipe": {"extra_tumour": ""}}, tumour_folder)
    assert groups is None and "all groups" in note
    groups, note = recipe_held_out(
        {"recipe": {"extra_tumour": "/data/extra", "extra_val_fraction": 0.34, "seed": 1}},
        tumour_folder)
    assert groups == held_out_groups(sorted(read_groups(tumour_folder).values()), 0.34, 1)
    assert len(groups) == 1 and "held out" in note


def test_every_slice_is_answered_or_refused_and_counted_per_group(tumour_folder,
                                                                 tiny_model, tiny_settings):
    from braintumor.classify import Classifier

    classifier = Classifier(tiny_model, tiny_settings)
    section = evaluate_tumour_folder(classifier, tumour_folder, batch_size=4)
    assert section["slices"] == 9 and section["groups"] == 3
    assert section["answered"] + section["refused"] == 9
    assert sum(section["answers_by_class"].values()) == section["answered"]
    # the slice figures agree with the answers by class
    tumour = sum(v for k, v in section["answers_by_class"].items() if k != "No Tumor")
    assert section["slices_called_tumour_of_answered"] == pytest.approx(
        tumour / max(section["answered"], 1))
    assert 0 <= section["groups_called_tumour"] <= 1
    only = evaluate_tumour_folder(classifier, tumour_folder, groups={"g1"})
    assert only["slices"] == 3 and only["groups"] == 1
