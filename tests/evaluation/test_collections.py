"""Figures by collection: per-cell accuracy, tumour sensitivity/specificity, the probe."""

from __future__ import annotations

import numpy as np
import pytest

from braintumor.evaluation.collections import (
    collection_probe,
    per_collection,
    render_markdown,
    tumour_detection,
)

CLASSES = ["Glioma", "Meningioma", "No Tumor", "Pituitary"]


def test_per_collection_counts_a_refusal_as_an_error() -> None:
    labels = np.array([0, 0, 2, 2])
    predicted = np.array([0, 0, 2, 1])
    sources = ["figshare", "figshare", "br35h-no", "sartaj"]
    answered = np.array([True, False, True, True])
    rows = {(r["collection"], r["class"]): r for r in per_collection(
        predicted, labels, sources, CLASSES, answered)}
    assert rows[("figshare", "Glioma")]["accuracy"] == 0.5  # one refused
    assert rows[("br35h-no", "No Tumor")]["accuracy"] == 1.0
    assert rows[("sartaj", "all")]["accuracy"] == 0.0
    assert ("sartaj", "Glioma") not in rows  # empty cells are left out


def test_tumour_detection_ignores_the_type_and_counts_refusals_as_misses() -> None:
    labels = np.array([0, 1, 3, 2, 2])
    predicted = np.array([1, 1, 2, 2, 0])  # a glioma called meningioma is still found
    found = tumour_detection(predicted, labels, CLASSES)
    assert found["sensitivity"] == pytest.approx(2 / 3)
    assert found["specificity"] == pytest.approx(1 / 2)
    refused = tumour_detection(predicted, labels, CLASSES,
                               np.array([False, True, True, True, True]))
    assert refused["sensitivity"] == pytest.approx(1 / 3)


def test_the_probe_finds_a_collection_written_into_the_features() -> None:
    """Features that carry the collection in one dimension are probed near 100% within
    the class; features without it stay near the majority rate."""
    rng = np.random.default_rng(0)
    n = 200
    labels = np.full(n, 2)
    sources = ["br35h-no"] * 120 + ["sartaj"] * 80
    marked = rng.normal(size=(n, 8))
    marked[:120, 0] += 4.0
    plain = rng.normal(size=(n, 8))
    found = {r["class"]: r for r in collection_probe(marked, labels, sources, CLASSES)}
    blind = {r["class"]: r for r in collection_probe(plain, labels, sources, CLASSES)}
    assert found["No Tumor"]["probe_accuracy"] > 0.95
    assert blind["No Tumor"]["probe_accuracy"] < 0.7
    assert found["No Tumor"]["majority_rate"] == pytest.approx(0.6)
    assert "Glioma" not in found  # no images: no probe


def test_the_markdown_names_every_section() -> None:
    section = {"per_collection": [{"collection": "figshare", "class": "all", "n": 3,
                                   "accuracy": 1.0}],
               "tumour_detection": {"sensitivity": 1.0, "specificity": 0.5,
                                    "tumour_scans": 3, "no_tumour_scans": 2},
               "probe": [{"class": "all", "n": 5, "collections": {"a": 3, "b": 2},
                          "probe_accuracy": 0.8, "majority_rate": 0.6}]}
    text = "\n".join(render_markdown(section))
    assert "## By collection" in text and "Sensitivity 100.00%" in text
    assert "## Collection probe" in text and "80.00%" in text
