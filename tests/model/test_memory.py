"""The nearest-neighbour vote: what it answers, how it is stored, how it is chosen."""

from __future__ import annotations

import numpy as np
import pytest

from braintumor.model.memory import FeatureMemory, choose_settings, with_mirror


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
    assert len(grid) == 27 and not any(row["flip"] for row in grid)
    assert best["accuracy"] == max(row["accuracy"] for row in grid)
    assert best["accuracy"] > 0.8


def test_flip_setting_round_trips_and_older_memories_read_as_no_flip():
    features, labels = clusters()
    memory = FeatureMemory.build(features, labels, 4, k=5, tau=0.02, mix=0.1, flip=True)
    assert FeatureMemory.from_npz(memory.to_npz()).flip is True
    assert memory.describe()["flip"] is True
    # a memory written before the flip setting existed: four settings, no flip
    import io

    buffer = io.BytesIO()
    np.savez(buffer, features=memory.features.astype(np.float16), labels=memory.labels,
             settings=np.array([5, 0.02, 0.1, 4], np.float64))
    older = FeatureMemory.from_npz(buffer.getvalue())
    assert older.flip is False and (older.k, older.classes) == (5, 4)


def test_with_mirror_sums_unit_vectors_and_averages_the_heads():
    features, _ = clusters()
    mirrored = features[::-1] * 3.0
    head = np.full((len(features), 4), 0.25, np.float32)
    other = np.eye(4, dtype=np.float32)[np.arange(len(features)) % 4]
    query, mixed = (np.asarray(t) for t in with_mirror(features, head, mirrored, other))
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    unit_mirrored = mirrored / np.linalg.norm(mirrored, axis=1, keepdims=True)
    np.testing.assert_allclose(query, unit + unit_mirrored, atol=1e-5)
    np.testing.assert_allclose(mixed, (head + other) / 2, atol=1e-6)


def test_a_flip_memory_is_served_with_the_mirror_images(tiny_model):
    """The compiled function answers with the vote over (image, mirror image) queries,
    exactly as fitting made the stored vectors; the head and features stay the image's."""
    from braintumor.model.loaded import LoadedModel
    from conftest import scan_like_pixels

    pixels = scan_like_pixels(12)
    x = (pixels[..., None] / 255.0).astype(np.float32)
    image = tiny_model.outputs(x, head_only=True)
    mirror = tiny_model.outputs(x[:, :, ::-1].copy(), head_only=True)
    query, mixed = (np.asarray(t) for t in with_mirror(image.features, image.probabilities,
                                                       mirror.features, mirror.probabilities))
    labels = np.arange(len(pixels)) % 4
    memory = FeatureMemory.build(query, labels, 4, k=3, tau=0.05, mix=0.1, flip=True)
    served = LoadedModel(tiny_model.keras_model, tiny_model.metadata, tiny_model.path,
                         memory=memory)
    answer = served.outputs(x)
    probs = answer.probabilities
    np.testing.assert_allclose(probs, memory.vote_numpy(query, mixed), atol=1e-5)
    np.testing.assert_allclose(answer.features, image.features, atol=1e-6)  # what OOD measures
    # the flip is not a no-op: the same bank looked up without it answers differently
    plain = FeatureMemory.build(query, labels, 4, k=3, tau=0.05, mix=0.1)
    unflipped = LoadedModel(tiny_model.keras_model, tiny_model.metadata, tiny_model.path,
                            memory=plain)
    assert not np.allclose(unflipped.outputs(x).probabilities, probs, atol=1e-3)
    explanation = served.explain(x)
    np.testing.assert_allclose(explanation.probabilities, probs, atol=1e-5)
    assert explanation.cam.shape[0] == len(pixels)


def test_a_head_class_keeps_the_heads_probability_and_the_vote_shares_the_rest():
    """With head_class, the vote may move mass between the other classes only: a scan
    whose neighbours all say class 2 keeps the head's probability of class 2."""
    from braintumor.model.memory import FeatureMemory

    rng = np.random.default_rng(5)
    bank = rng.normal(size=(30, 8)).astype(np.float32)
    labels = np.full(30, 2)
    labels[:10] = 0
    memory = FeatureMemory.build(bank, labels, 4, k=5, tau=0.05, mix=0.1, head_class=2)
    head = np.array([[0.1, 0.3, 0.4, 0.2]], np.float32)
    query = bank[15:16]  # a class-2 neighbourhood
    probs = memory.vote_numpy(query, head)[0]
    assert probs[2] == pytest.approx(0.4, abs=1e-6)
    assert probs.sum() == pytest.approx(1.0, abs=1e-6)
    plain = FeatureMemory.build(bank, labels, 4, k=5, tau=0.05, mix=0.1).vote_numpy(query, head)
    assert plain[0][2] > 0.9  # without it, the neighbours decide
    again = FeatureMemory.from_npz(memory.to_npz())
    assert again.head_class == 2 and again.describe()["head_class"] == 2
    assert "head_class" not in FeatureMemory.from_npz(FeatureMemory.build(
        bank, labels, 4).to_npz()).describe()
