"""Collection-balanced sampling weights and the sources table."""

from __future__ import annotations

import numpy as np
import pytest

from braintumor.training.sources import UNKNOWN, balanced_weights, read_sources


def test_weights_make_each_collection_count_alike_inside_its_class() -> None:
    labels = np.array([0] * 90 + [0] * 10 + [1] * 50)
    sources = ["figshare"] * 90 + ["br35h"] * 10 + ["sartaj"] * 50
    weights = balanced_weights(labels, sources, cap=100)
    assert weights[:90].sum() == pytest.approx(weights[90:100].sum(), rel=1e-5)
    # and each class as much as the other
    assert weights[:100].sum() == pytest.approx(weights[100:].sum(), rel=1e-5)
    assert weights.mean() == pytest.approx(1.0, rel=1e-5)


def test_the_cap_limits_how_much_a_small_cell_is_repeated() -> None:
    labels = np.zeros(100, dtype=int)
    sources = ["figshare"] * 98 + ["br35h"] * 2
    weights = balanced_weights(labels, sources, cap=4.0)
    ratio = weights[99] / weights[0]
    # uncapped a br35h slice would weigh 49x a figshare one; capped, 4 / (50/98)
    assert ratio == pytest.approx(4.0 / (1.0 / (2 * 0.98)), rel=1e-4)


def test_read_sources_keeps_one_split_relative_to_its_folder(tmp_path) -> None:
    table = tmp_path / "sources.tsv"
    table.write_text("file\tsource\tfigshare_index\tfigshare_patient\n"
                     "Training/glioma/a.jpg\tfigshare\t1\t\n"
                     "Testing/glioma/b.jpg\tfigshare\t2\t\n"
                     "Training/notumor/c.jpg\tbr35h-no\t\t\n")
    assert read_sources(table, "Training") == {"glioma/a.jpg": "figshare",
                                               "notumor/c.jpg": "br35h-no"}
    assert read_sources(tmp_path / "missing.tsv", "Training") == {}
    assert UNKNOWN == "unknown"
