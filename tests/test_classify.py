"""The answer's numbers: percentages, confidence and timestamps."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np
import pytest

from braintumor.classify import Prediction, percentages, utc_timestamp


@pytest.mark.parametrize("seed", range(50))
def test_percentages_add_up_to_exactly_100(seed):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(4, rng.uniform(0.05, 2.0)))
    pct = percentages(probs)
    assert round(sum(pct), 6) == 100.0
    assert all(round(p, 2) == p for p in pct)
    assert np.allclose(pct, probs * 100, atol=0.011)


def test_percentages_of_a_certain_answer():
    assert percentages(np.array([1.0, 0.0, 0.0, 0.0])) == [100.0, 0.0, 0.0, 0.0]


def test_prediction_json_is_consistent():
    names = ["Glioma", "Meningioma", "No Tumor", "Pituitary"]
    body = Prediction(names, np.array([0.1, 0.2, 0.6, 0.1])).to_json()
    assert body == {"class": "No Tumor", "class_id": 2, "confidence": 60.0,
                    "probabilities": {"Glioma": 10.0, "Meningioma": 20.0, "No Tumor": 60.0,
                                      "Pituitary": 10.0}}


def test_timestamp_is_iso_utc_with_z():
    moment = datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)
    assert utc_timestamp(moment) == "2024-01-15T10:30:00.123Z"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", utc_timestamp())


def test_the_layout_reads_the_whole_picture_whatever_the_models_framing():
    """A head-framing model's pixels crop the border away; the layout distance gets the
    stretched whole picture instead, and a stretching model's own pixels as they are."""
    from braintumor.classify import layout_pixels
    from braintumor.decoding import decode_image
    from braintumor.preprocessing import InputSpec, canonical_pixels
    from conftest import encode, scan_like

    decoded = [decode_image(encode(scan_like((160, 120), seed=s))) for s in range(2)]
    head = InputSpec((32, 32), framing="head")
    framed = np.stack([canonical_pixels(d, head.size, "head") for d in decoded])
    whole = layout_pixels(decoded, framed, head)
    np.testing.assert_array_equal(
        whole, np.stack([canonical_pixels(d, head.size, "stretch") for d in decoded]))
    assert not np.array_equal(whole, framed)
    stretch = InputSpec((32, 32))
    assert layout_pixels(decoded, framed, stretch) is framed


def test_one_picture_that_breaks_the_checks_fails_alone_not_its_batch(tiny_model,
                                                                       tiny_settings):
    """A batch (the Spark job's, the series endpoint's) keeps its other answers when one
    decoded picture breaks the input checks or the preprocessing: that one carries its
    error, the others are classified as on their own."""
    from dataclasses import replace

    from PIL import Image

    from braintumor.classify import Classifier
    from braintumor.decoding import decode_image
    from braintumor.imaging import DecodedImage
    from conftest import encode, scan_like

    classifier = Classifier(tiny_model, replace(tiny_settings, OOD_POLICY="warn"))
    good = [decode_image(encode(scan_like(seed=s))) for s in (1, 2)]
    # a picture no decoder makes: a four-channel "grey" that passes the input checks
    picture = scan_like(seed=3)
    broken = DecodedImage(grey=Image.merge("CMYK", [picture] * 4), rgb=picture.convert("RGB"),
                          format="PNG")
    alone = classifier.assess(good)
    mixed = classifier.assess([good[0], broken, good[1]])
    assert mixed[1].error is not None and mixed[1].probabilities is None
    assert "failed" in mixed[1].error.message
    for together, single in zip((mixed[0], mixed[2]), alone, strict=True):
        assert together.error is None
        np.testing.assert_allclose(together.probabilities, single.probabilities, atol=1e-5)
