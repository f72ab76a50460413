"""Uncertainty and calibration: bootstrap intervals, paired tests, reliability (ECE).

Inputs are per-query arrays: `correct` holds each query's accuracy contribution
(0/1, or an expectation such as the random baseline's per-query mean).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOOTSTRAP_ITERS = 1000
BOOTSTRAP_CHUNK_CELLS = 1 << 22  # resampled indices held at once: 4 Mi int64 plus their gathered values = 64 MiB


def bootstrap_bytes(n_queries: int, iters: int = BOOTSTRAP_ITERS) -> int:
    """Peak working bytes of `bootstrap_ci` on `n_queries` queries: one chunk of indices and values, and the means."""
    return 16 * min(n_queries * iters, max(BOOTSTRAP_CHUNK_CELLS, n_queries)) + 8 * iters


def bootstrap_ci(correct: np.ndarray, seed: int = 0, iters: int = BOOTSTRAP_ITERS, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `correct` (fractions 0-1), resampling queries.

    Resamples are drawn a chunk of rows at a time (memory: `bootstrap_bytes`), from the same random stream
    as one (iters, n) draw: the interval is the same for the same seed whatever the chunk size.
    """
    correct = np.asarray(correct, dtype=float)
    if len(correct) < 2:
        return float(correct.mean()) if len(correct) else float("nan"), float(correct.mean()) if len(correct) else float("nan")
    rng = np.random.default_rng(seed)
    rows = max(1, BOOTSTRAP_CHUNK_CELLS // len(correct))
    means = np.concatenate([correct[rng.integers(0, len(correct), size=(min(rows, iters - start), len(correct)))].mean(axis=1)
                            for start in range(0, iters, rows)])
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


@dataclass(frozen=True)
class PairedTest:
    """a vs b on the same queries: accuracy difference (a - b, fraction) and McNemar's exact p-value."""

    difference: float
    a_only: int  # queries a gets right and b wrong
    b_only: int
    p_value: float


def paired_test(a: np.ndarray, b: np.ndarray) -> PairedTest:
    """McNemar's exact test on the discordant queries of two 0/1 correctness vectors."""
    a, b = np.asarray(a) > 0.5, np.asarray(b) > 0.5
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    from scipy.stats import binomtest  # here, not at import: scipy.stats alone costs ~1 s of start-up

    p = 1.0 if a_only + b_only == 0 else float(binomtest(a_only, a_only + b_only, 0.5).pvalue)
    return PairedTest(float(a.mean() - b.mean()), a_only, b_only, p)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """ECE of P(solve) against 0/1 outcomes, equal-width bins, weighted by bin size (fraction 0-1)."""
    p = np.asarray(probabilities, dtype=float).ravel()
    y = np.asarray(labels, dtype=float).ravel()
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() * abs(p[mask].mean() - y[mask].mean())
    return total / len(p) if len(p) else float("nan")


def proportions_differ(p1: float, n1: int, p2: float, n2: int, z: float = 1.96) -> bool:
    """True when two accuracies differ by more than their 95% normal-approximation interval."""
    spread = np.sqrt(p1 * (1 - p1) / max(n1, 1) + p2 * (1 - p2) / max(n2, 1))
    return abs(p1 - p2) > z * spread
