from __future__ import annotations

import numpy as np
import pytest

from lm_routing.cli.notes import say
from lm_routing.judging.evaluate import contamination_notes
from lm_routing.judging.metrics import bootstrap_ci, expected_calibration_error, paired_test, proportions_differ
from tables import make_data


def test_bootstrap_interval_brackets_the_mean_and_shrinks_with_n():
    small = np.array([1, 0] * 50, dtype=float)
    large = np.array([1, 0] * 5000, dtype=float)
    low, high = bootstrap_ci(small, seed=0)
    assert low < 0.5 < high
    assert high - low == pytest.approx(2 * 1.96 * 0.05, abs=0.03)
    low_l, high_l = bootstrap_ci(large, seed=0)
    assert high_l - low_l < (high - low) / 5
    assert bootstrap_ci(small, seed=1) == bootstrap_ci(small, seed=1)


def test_paired_test_counts_discordant_queries():
    a = np.array([1, 1, 1, 0, 0, 1, 1, 1, 1, 1])
    b = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    test = paired_test(a, b)
    assert (test.a_only, test.b_only) == (3, 1)
    assert test.difference == pytest.approx(0.2)
    assert test.p_value == pytest.approx(0.625)  # exact binomial, 4 discordant, 3 vs 1
    assert paired_test(a, a).p_value == 1.0


def test_expected_calibration_error():
    assert expected_calibration_error(np.array([0.95, 0.95, 0.05, 0.05]), np.array([1, 1, 0, 0])) == pytest.approx(0.05)
    assert expected_calibration_error(np.array([0.9] * 10), np.array([1] * 5 + [0] * 5)) == pytest.approx(0.4)


def test_contamination_warning_only_beyond_the_interval():
    assert proportions_differ(0.827, 1000, 0.712, 1319)
    assert not proportions_differ(0.72, 1000, 0.71, 1319)
    train = make_data([[1, 1]] * 90 + [[0, 1]] * 10)
    test = make_data([[1, 1]] * 60 + [[0, 1]] * 40)
    notes = contamination_notes(train, test)
    assert len(notes) == 1 and (notes[0].code, notes[0].fields["model"]) == ("train-test-gap", "m0")
    assert say(notes[0]).startswith("warning: m0 solves 90.0% of training queries but 60.0% of test")


def test_bootstrap_is_chunked_in_bounded_memory_with_the_one_draw_result():
    """The interval equals the one (iters, n) draw's for the same seed, and its peak stays one chunk, not iters x n."""
    import tracemalloc

    import lm_routing.judging.metrics

    correct = (np.random.default_rng(3).random(50_000) > 0.4).astype(float)
    rng = np.random.default_rng(7)
    means = correct[rng.integers(0, len(correct), size=(1000, len(correct)))].mean(axis=1)  # the unchunked draw
    expected = (float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975)))
    del means
    tracemalloc.start()
    try:
        assert bootstrap_ci(correct, seed=7) == expected
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * lm_routing.judging.metrics.bootstrap_bytes(len(correct)) < 1000 * len(correct) * 8  # one draw: 400 MB


def test_memory_estimate_counts_the_bootstrap():
    from lm_routing.judging.limits import estimated_bytes
    from lm_routing.judging.metrics import bootstrap_bytes

    assert estimated_bytes(1_120_000, 1, 0, []) >= 8 * 1_120_000 * 12 + bootstrap_bytes(1_120_000)
