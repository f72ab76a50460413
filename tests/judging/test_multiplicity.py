"""lm_routing.judging.multiplicity: simultaneous lower bounds that widen with the number of unlike candidates, not with copies."""

from __future__ import annotations

import numpy as np

from lm_routing.judging.multiplicity import simultaneous_bounds


def noise_gains(n: int, candidates: int, seed: int) -> np.ndarray:
    """Per-query paired gains (-1, 0, +1) of candidates that differ from the reference on 30% of queries at random."""
    rng = np.random.default_rng(seed)
    differs = rng.random((n, candidates)) < 0.3
    return np.where(differs, rng.choice([-1.0, 1.0], size=(n, candidates)), 0.0)


def test_the_critical_value_grows_with_unlike_candidates_but_not_with_copies():
    one = simultaneous_bounds(noise_gains(500, 1, 0)).critical
    many = simultaneous_bounds(noise_gains(500, 40, 0)).critical
    copies = simultaneous_bounds(np.repeat(noise_gains(500, 1, 0), 40, axis=1)).critical
    assert 1.3 < one < 2.0  # one-sided 95%: about 1.645
    assert many > one + 0.6  # 40 independent chances to look lucky
    assert abs(copies - one) < 1e-9  # the same candidate 40 times is one chance


def test_pure_noise_rarely_clears_the_bound_and_a_real_gain_does():
    cleared = sum((simultaneous_bounds(noise_gains(300, 30, seed), seed=seed).lower > 0).any() for seed in range(40))
    assert cleared <= 5  # family-wise 5%: about 2 of 40
    rng = np.random.default_rng(1)
    real = noise_gains(2000, 5, 1)
    real[:, 0] = np.where(rng.random(2000) < 0.2, np.where(rng.random(2000) < 0.8, 1.0, -1.0), 0.0)  # +12 points
    assert simultaneous_bounds(real).lower[0] > 0


def test_fewer_queries_need_a_larger_gain():
    assert simultaneous_bounds(noise_gains(100, 20, 0)).required_gain > 2 * simultaneous_bounds(noise_gains(2000, 20, 0)).required_gain


def test_deterministic_for_a_seed_and_memory_bounded_in_chunks(monkeypatch):
    gains = noise_gains(400, 10, 3)
    first, second = simultaneous_bounds(gains, seed=5), simultaneous_bounds(gains, seed=5)
    assert first.critical == second.critical
    import lm_routing.judging.multiplicity as multiplicity

    monkeypatch.setattr(multiplicity, "_CELLS_PER_CHUNK", 1000)  # many small chunks draw the same weights in order
    assert simultaneous_bounds(gains, seed=5).critical == first.critical


def test_a_candidate_that_never_differs_has_a_finite_bound_and_no_gain():
    bounds = simultaneous_bounds(np.zeros((50, 2)))
    assert np.isfinite(bounds.critical) and (bounds.lower <= 0).all()
