"""An outline model started from a trained classifier (``--backbone-from``)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from braintumor.preprocessing import InputSpec
from braintumor.training.architectures import compact_cnn, compact_seg_cnn
from braintumor.training.outline_fit import BACKBONE_PREFIXES, start_from_classifier

SPEC = InputSpec((32, 32), 1, "unit", "head")


@pytest.fixture()
def classifier_file(tmp_path):
    import keras

    keras.utils.set_random_seed(1)
    model = compact_cnn(SPEC, 4, width=8)
    # a head that is not the initial one, so that copying it is seen
    kernel, bias = model.get_layer("predictions").get_weights()
    model.get_layer("predictions").set_weights([kernel * 3.0, bias + 0.5])
    path = tmp_path / "compact.keras"
    model.save(path)
    return path, model


def test_the_outline_model_starts_with_the_classifiers_answers(classifier_file) -> None:
    import keras

    path, source = classifier_file
    keras.utils.set_random_seed(2)
    model = compact_seg_cnn(SPEC, 4, width=8)
    x = np.random.default_rng(0).random((5, 32, 32, 1), dtype=np.float32)
    before = model.predict(x, verbose=0)
    copied = start_from_classifier(model, str(path))

    expected = source.predict(x, verbose=0)
    assert copied == sum(layer.name.startswith(BACKBONE_PREFIXES) for layer in source.layers)
    assert np.abs(before - expected).max() > 1e-3  # a random start answers otherwise
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)


def test_the_copied_backbone_is_frozen_and_the_decoder_is_not(classifier_file) -> None:
    path, _ = classifier_file
    model = compact_seg_cnn(SPEC, 4, width=8)
    start_from_classifier(model, str(path))

    frozen = {layer.name for layer in model.layers if not layer.trainable}
    assert frozen and all(name.startswith(BACKBONE_PREFIXES) for name in frozen)
    assert model.get_layer("seg_logits").trainable
    assert model.get_layer("predictions").trainable
    # the head's rows for the gated outline features start at zero
    kernel = model.get_layer("predictions").get_weights()[0]
    assert not kernel[8 * 8:].any()


def test_a_backbone_of_another_width_is_refused(classifier_file) -> None:
    path, _ = classifier_file
    with pytest.raises(ValueError, match="another width"):
        start_from_classifier(compact_seg_cnn(SPEC, 4, width=16), str(path))


def test_the_not_a_brain_mri_statistics_leave_the_volumes_slices_out() -> None:
    from braintumor.datasets.folders import ImageSet
    from braintumor.training.run import TrainingData

    collections = ["figshare", "volumes", "extra:br35h-tumour", "volumes:head", "br35h"]
    images = ImageSet(np.zeros((5, 4, 4), np.uint8), np.zeros(5, np.int64),
                      [str(i) for i in range(5)], "x")
    data = TrainingData(images, np.array([0, 1, 2]), np.array([3, 4]),
                        np.ones(5, dtype=bool), collections)
    assert data.without_volumes(data.train).tolist() == [0, 2]
    assert data.without_volumes(data.val).tolist() == [4]
