"""The series rule (README "Series"), on probabilities chosen by hand."""

from __future__ import annotations

import numpy as np
import pytest

from braintumor.series.aggregate import (
    MAX_RUN,
    NO_SUPPORT_CAP,
    RULE,
    RULE_WITHOUT_NO_TUMOUR,
    SLICE_THRESHOLD,
    SUPPORT_MM,
    VOLUME_MIN_ASSESSED,
    VOLUME_SLICE_THRESHOLD,
    aggregate,
    no_tumour_index,
    required_run,
)

NAMES = ["Glioma", "Meningioma", "No Tumor", "Pituitary"]
HEALTHY = np.array([0.02, 0.03, 0.93, 0.02])


def p(g: float, m: float, n: float, pit: float) -> np.ndarray:
    return np.array([g, m, n, pit])


def glioma(tumour: float = 0.99) -> np.ndarray:
    return p(tumour, 0.0, 1.0 - tumour, 0.0)


def volume(length: int, calls: dict[int, np.ndarray]) -> list[np.ndarray]:
    """``length`` healthy slices with the slices of ``calls`` replaced."""
    return [calls.get(i, HEALTHY) for i in range(length)]


def test_constants_are_the_documented_defaults():
    assert SLICE_THRESHOLD == 0.5 and SUPPORT_MM == 6.0 and MAX_RUN == 5
    assert VOLUME_MIN_ASSESSED == 8 and NO_SUPPORT_CAP < SLICE_THRESHOLD
    assert SLICE_THRESHOLD < VOLUME_SLICE_THRESHOLD == 0.95
    assert "run of neighbouring counted slices" in RULE and "6 mm" in RULE
    assert "0.95 in a volume" in RULE


def test_a_volume_slice_needs_the_firmer_threshold_a_short_series_slice_does_not():
    run = {i: glioma(0.9) for i in range(10, 16)}  # six neighbours at 90%: no call
    summary = aggregate(volume(40, run), NAMES, spacing_mm=2.0)
    assert summary.class_id == 2 and summary.supporting == []
    firm = {i: glioma(0.96) for i in range(10, 16)}
    assert aggregate(volume(40, firm), NAMES, spacing_mm=2.0).supporting == list(range(10, 16))
    # two slices at 90% of a short series are support
    assert aggregate([glioma(0.9), glioma(0.9), HEALTHY], NAMES).class_id == 0


@pytest.mark.parametrize(("spacing", "run"), [(0.5, 5), (1.0, 5), (1.5, 4), (2.0, 3),
                                               (3.0, 2), (5.0, 2), (6.0, 2), (10.0, 2)])
def test_the_run_a_volume_needs_spans_six_mm_between_two_and_five_slices(spacing, run):
    assert required_run(spacing) == run


def test_all_no_tumour_slices_make_a_no_tumour_series():
    slices = [p(0.1, 0.1, 0.7, 0.1), p(0.05, 0.05, 0.85, 0.05), p(0.2, 0.1, 0.6, 0.1)]
    summary = aggregate(slices, NAMES)
    assert summary.class_id == 2 and summary.supporting == []
    np.testing.assert_allclose(summary.probabilities, np.mean(slices, axis=0))
    # key: the highest tumour probability (1 - 0.6), the third slice
    assert summary.key_index == 2
    assert summary.tumour_probability == pytest.approx(0.4)
    assert (summary.answered, summary.refused) == (3, 0)
    assert summary.assessed == [0, 1, 2] and summary.not_assessed == []


def test_one_tumour_slice_of_a_short_series_is_not_enough():
    """Was "one tumour slice makes a tumour series" under the any-slice rule."""
    slices = [p(0.0, 0.1, 0.9, 0.0)] * 5 + [p(0.1, 0.6, 0.3, 0.0)] + [p(0.0, 0.0, 1.0, 0.0)]
    summary = aggregate(slices, NAMES)
    assert summary.class_id == 2 and summary.supporting == []
    assert summary.key_index == 5  # still the slice to look at first
    assert summary.tumour_probability == pytest.approx(NO_SUPPORT_CAP)  # 0.7, capped
    np.testing.assert_allclose(summary.probabilities, np.mean(slices, axis=0))
    assert list(summary.class_counts) == [0, 1, 6, 0]  # top classes, as before


def test_two_tumour_slices_of_a_short_series_make_a_tumour_series():
    slices = [HEALTHY, p(0.1, 0.6, 0.3, 0.0), HEALTHY, p(0.0, 0.8, 0.2, 0.0), HEALTHY]
    summary = aggregate(slices, NAMES)
    assert summary.class_id == 1 and summary.supporting == [1, 3]
    assert summary.key_index == 3 and summary.tumour_probability == pytest.approx(0.8)
    np.testing.assert_allclose(summary.probabilities, np.mean([slices[1], slices[3]], axis=0))


def test_a_single_slice_series_needs_its_one_slice():
    summary = aggregate([p(0.0, 0.0, 0.3, 0.7)], NAMES)
    assert summary.class_id == 3 and summary.supporting == [0]
    assert aggregate([HEALTHY], NAMES).class_id == 2


def test_a_slice_calls_a_tumour_by_its_tumour_probability_not_its_top_class():
    split = p(0.3, 0.25, 0.45, 0.0)  # top class No Tumor, tumour probability 0.55
    summary = aggregate([split, split, HEALTHY], NAMES)
    assert summary.class_id == 0 and summary.supporting == [0, 1]  # its top tumour class
    assert summary.tumour_probability == pytest.approx(0.55)
    below = p(0.25, 0.24, 0.51, 0.0)
    assert aggregate([below, below], NAMES).class_id == 2


def test_the_tumour_class_of_most_supporting_slices_wins_not_the_most_confident_slice():
    slices = [p(0.95, 0.0, 0.05, 0.0),  # the key slice: most tumour
              p(0.0, 0.6, 0.4, 0.0), p(0.0, 0.55, 0.45, 0.0), p(0.0, 0.7, 0.3, 0.0)]
    summary = aggregate(slices, NAMES)
    assert summary.class_id == 1  # three Meningioma slices against one Glioma
    assert summary.key_index == 0  # but the slice to look at is the Glioma one
    np.testing.assert_allclose(summary.probabilities, np.mean(slices, axis=0))


def test_a_tie_in_supporting_slices_goes_to_the_larger_probability_sum():
    slices = [p(0.51, 0.0, 0.49, 0.0), p(0.0, 0.9, 0.1, 0.0)]
    assert aggregate(slices, NAMES).class_id == 1  # 0.9 summed beats 0.51


def test_a_volume_needs_a_run_spanning_six_mm():
    # 1 mm slices: five neighbouring slices calling a tumour (the cap), not four
    four = aggregate(volume(40, {i: glioma() for i in range(10, 14)}), NAMES, spacing_mm=1.0)
    assert four.class_id == 2 and four.supporting == []
    five = aggregate(volume(40, {i: glioma() for i in range(10, 15)}), NAMES, spacing_mm=1.0)
    assert five.class_id == 0 and five.supporting == [10, 11, 12, 13, 14]
    # 2 mm: three slices; 5 mm: two
    three = volume(40, {i: glioma() for i in (20, 21, 22)})
    assert aggregate(three, NAMES, spacing_mm=2.0).supporting == [20, 21, 22]
    assert aggregate(three[:22] + [HEALTHY] * 18, NAMES, spacing_mm=2.0).supporting == []
    assert aggregate(volume(20, {3: glioma(), 4: glioma()}), NAMES,
                     spacing_mm=5.0).supporting == [3, 4]


def test_scattered_tumour_slices_of_a_volume_are_no_support():
    """Ten isolated false alarms among 100 slices: a healthy head under the old rule."""
    calls = {i: glioma(0.99) for i in range(5, 100, 10)}
    summary = aggregate(volume(100, calls), NAMES, spacing_mm=2.0)
    assert summary.class_id == 2 and summary.supporting == []
    assert summary.key_index == 5  # the first of the equal highest
    assert summary.tumour_probability == pytest.approx(NO_SUPPORT_CAP)
    # the same slices without a spacing: the short-series rule finds two and more
    assert aggregate(volume(100, calls), NAMES).class_id == 0


def test_every_run_that_passes_supports_and_the_class_comes_from_all():
    calls = {i: glioma(0.97) for i in (10, 11, 12)}
    calls.update({i: p(0.0, 0.98, 0.02, 0.0) for i in (30, 31, 32, 33)})
    calls.update({50: p(0.0, 0.0, 0.01, 0.99)})  # alone: no support, never the key
    summary = aggregate(volume(60, calls), NAMES, spacing_mm=2.0)
    assert summary.supporting == [10, 11, 12, 30, 31, 32, 33]
    assert summary.class_id == 1 and summary.key_index == 30
    np.testing.assert_allclose(summary.probabilities,
                               np.mean([calls[i] for i in summary.supporting], axis=0))


def test_slices_not_assessed_never_call_and_break_a_run():
    calls = {i: glioma() for i in range(10, 16)}
    flags = [i != 13 for i in range(40)]  # a run of six cut by a slice not assessed
    summary = aggregate(volume(40, calls), NAMES, assessed=flags, spacing_mm=2.0)
    assert summary.supporting == [10, 11, 12]  # 10-12 pass (three), 14-15 are two
    assert summary.not_assessed == [13] and 13 not in summary.assessed
    # a vertex cap calling a tumour at 0.999 is neither support nor the key slice
    cap = volume(40, {39: glioma(0.999), 38: glioma(0.999), 37: glioma(0.999)})
    flags = [i < 37 for i in range(40)]
    summary = aggregate(cap, NAMES, assessed=flags, spacing_mm=2.0)
    assert summary.class_id == 2 and summary.key_index < 37
    assert summary.not_assessed == [37, 38, 39]
    np.testing.assert_allclose(summary.probabilities, HEALTHY)


def test_a_volume_with_few_assessed_slices_follows_the_short_series_rule():
    flags = [5 <= i < 5 + VOLUME_MIN_ASSESSED - 1 for i in range(30)]  # seven assessed
    calls = {6: glioma(), 9: glioma()}  # not neighbours
    summary = aggregate(volume(30, calls), NAMES, assessed=flags, spacing_mm=1.0)
    assert summary.class_id == 0 and summary.supporting == [6, 9]


def test_refused_and_unassessed_slices_are_left_out_and_counted():
    slices = [None, p(0.0, 0.0, 0.2, 0.8), None, p(0.0, 0.0, 0.3, 0.7)]
    summary = aggregate(slices, NAMES)
    assert summary.key_index == 1 and summary.class_id == 3
    assert (summary.answered, summary.refused) == (2, 2)
    assert aggregate([None, None], NAMES) is None
    # answered, but none shows enough brain: nothing to judge (the caller refuses)
    assert aggregate([HEALTHY, HEALTHY], NAMES, assessed=[False, False]) is None
    with pytest.raises(ValueError, match="one flag per slice"):
        aggregate([HEALTHY], NAMES, assessed=[True, True])


def test_first_slice_wins_a_tie_for_key_slice():
    slices = [p(0.0, 0.0, 0.9, 0.1), p(0.0, 0.0, 0.9, 0.1)]
    assert aggregate(slices, NAMES).key_index == 0
    assert aggregate([glioma(), glioma()], NAMES).key_index == 0


def test_without_a_no_tumour_class_the_earlier_rule_stands():
    names = ["a", "b", "c"]
    assert no_tumour_index(names) is None
    assert no_tumour_index(["x", "no_tumour"]) == 1
    assert no_tumour_index(["Healthy", "x"]) == 0
    slices = [np.array([0.5, 0.3, 0.2]), np.array([0.1, 0.85, 0.05]),
              np.array([0.6, 0.2, 0.2])]
    summary = aggregate(slices, names, assessed=[True, False, True], spacing_mm=1.0)
    assert summary.key_index == 1 and summary.tumour_probability is None
    assert summary.class_id == 0  # two slices of "a"
    np.testing.assert_allclose(summary.probabilities, np.mean([slices[0], slices[2]], axis=0))
    assert summary.rule == RULE_WITHOUT_NO_TUMOUR
    assert summary.assessed == [0, 2] and summary.not_assessed == [1]


def test_a_model_may_carry_its_own_volume_threshold():
    """A run at tumour probability 0.8 calls a tumour under a model's threshold of 0.7, not
    under the default 0.95; the summary says which threshold it used, the rule too."""
    run = volume(40, {i: glioma(0.8) for i in range(10, 14)})
    default = aggregate(run, NAMES, spacing_mm=2.0)
    own = aggregate(run, NAMES, spacing_mm=2.0, volume_threshold=0.7)
    assert NAMES[default.class_id] == "No Tumor" and default.threshold == VOLUME_SLICE_THRESHOLD
    assert NAMES[own.class_id] == "Glioma" and own.supporting == [10, 11, 12, 13]
    assert own.threshold == 0.7 and ">= 0.7 in a volume" in own.rule
    assert default.rule == RULE
    short = aggregate(run[:6], NAMES, volume_threshold=0.99)  # no spacing: a short series
    assert short.threshold == SLICE_THRESHOLD
