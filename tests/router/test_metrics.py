from __future__ import annotations

import numpy as np
import pytest

from router.evaluate import contamination_notes
from router.metrics import bootstrap_ci, expected_calibration_error, paired_test, proportions_differ
from test_baselines import make_data


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
    assert len(notes) == 1 and notes[0].startswith("warning: m0 solves 90.0% of training queries but 60.0% of test")
