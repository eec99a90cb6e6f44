"""The nearest-neighbour vote: what it answers, how it is stored, how it is chosen."""

from __future__ import annotations

import numpy as np
import pytest

from braintumor.model.memory import FeatureMemory, choose_settings


def clusters(per_class: int = 30, classes: int = 4, dims: int = 16, spread: float = 0.3,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dims)) * 3
    labels = np.repeat(np.arange(classes), per_class)
    return centres[labels] + rng.normal(scale=spread, size=(len(labels), dims)), labels


def test_a_point_among_one_class_gets_that_class():
    features, labels = clusters()
    memory = FeatureMemory.build(features, labels, 4, k=5, tau=0.02, mix=0.1)
    head = np.full((len(features), 4), 0.25, np.float32)
    probs = memory.vote_numpy(features, head)
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert (probs.argmax(1) == labels).all()
    # the head keeps its share: no class is ever exactly zero
    assert probs.min() >= 0.1 * 0.25 - 1e-6


def test_the_vote_overrules_a_wrong_head_and_the_mix_bounds_it():
    features, labels = clusters()
    memory = FeatureMemory.build(features, labels, 4, k=5, tau=0.02, mix=0.2)
    wrong = np.eye(4, dtype=np.float32)[(labels + 1) % 4]
    probs = memory.vote_numpy(features, wrong)
    assert (probs.argmax(1) == labels).all()
    assert np.allclose(probs[np.arange(len(labels)), (labels + 1) % 4], 0.2, atol=1e-5)


def test_scale_of_the_features_does_not_matter():
    features, labels = clusters()
    memory = FeatureMemory.build(features, labels, 4)
    head = np.full((5, 4), 0.25, np.float32)
    np.testing.assert_allclose(memory.vote_numpy(features[:5] * 7.5, head),
                               memory.vote_numpy(features[:5], head), atol=1e-5)


def test_round_trip_through_npz_keeps_the_answers():
    features, labels = clusters()
    memory = FeatureMemory.build(features, labels, 4, k=7, tau=0.05, mix=0.05)
    again = FeatureMemory.from_npz(memory.to_npz())
    assert (again.k, again.tau, again.mix, again.classes) == (7, 0.05, 0.05, 4)
    head = np.full((len(features), 4), 0.25, np.float32)
    np.testing.assert_allclose(again.vote_numpy(features, head),
                               memory.vote_numpy(features, head), atol=2e-3)  # float16 bank


def test_k_never_exceeds_the_memory():
    features, labels = clusters(per_class=1)
    assert FeatureMemory.build(features, labels, 4, k=20).k == 4


def test_vote_runs_inside_a_compiled_function():
    tf = pytest.importorskip("tensorflow")
    features, labels = clusters()
    memory = FeatureMemory.build(features, labels, 4)
    compiled = tf.function(lambda f, p: memory.vote(f, p))
    head = np.full((6, 4), 0.25, np.float32)
    np.testing.assert_allclose(compiled(tf.constant(features[:6], tf.float32), head).numpy(),
                               memory.vote_numpy(features[:6], head), atol=1e-6)


def test_settings_are_chosen_on_validation_accuracy():
    features, labels = clusters(per_class=40, spread=1.5, seed=3)
    rng = np.random.default_rng(1)
    val = rng.random(len(labels)) < 0.25
    head = np.full((int(val.sum()), 4), 0.25, np.float32)
    best, grid = choose_settings(features[~val], labels[~val], features[val], labels[val],
                                 head, 4)
    assert len(grid) == 27
    assert best["accuracy"] == max(row["accuracy"] for row in grid)
    assert best["accuracy"] > 0.8
