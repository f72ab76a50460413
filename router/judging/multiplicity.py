"""Choosing among many candidates without paying for luck: simultaneous bounds on paired gains.

The most accurate of dozens of candidates on a few hundred queries is partly the
luckiest. Given each candidate's per-query gain over a reference (correct minus
the reference's correct, -1/0/+1 per query), `simultaneous_bounds` returns one
lower bound per candidate that holds for all of them at once: the max-t paired
bootstrap (White's reality check, studentised as in Romano and Wolf). The
critical value is the `level` quantile over bootstrap draws of the largest
studentised deviation among all candidates, so it grows with the number of
(unlike) candidates and a gain must clear it to count; the standard errors grow
as queries get fewer. Candidates that are copies of one another (one router under
policies that agree) cost nothing extra: the maximum over correlated candidates is
what is bootstrapped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEVEL = 0.95  # one-sided, simultaneous over every candidate
DRAWS = 1000
_CELLS_PER_CHUNK = 1 << 22  # bootstrap weights drawn per chunk (32 MiB of float64): bounded memory at any size


@dataclass(frozen=True)
class Bounds:
    """Per candidate: mean paired gain over the reference and its standard error (fractions 0-1), and the
    simultaneous critical value (in standard errors) that every candidate's bound shares."""

    gain: np.ndarray
    se: np.ndarray
    critical: float
    floor: float = 0.0  # the standard error given to a candidate that never differs from the reference

    @property
    def lower(self) -> np.ndarray:
        """Simultaneous lower bounds of the gains (fractions): all hold at once with probability `LEVEL`."""
        return self.gain - self.critical * self.se

    @property
    def required_gain(self) -> float:
        """The gain a typical candidate (median standard error among those that differ from the reference at all)
        needs for its bound to clear 0 (fraction)."""
        differing = self.se[self.se > self.floor * (1 + 1e-9)]
        return float(self.critical * np.median(differing if differing.size else self.se))


def simultaneous_bounds(gains: np.ndarray, seed: int = 0, level: float = LEVEL, draws: int = DRAWS) -> Bounds:
    """Max-t paired bootstrap over the rows (queries) of `gains` (n_queries, n_candidates).

    Poisson(1) weights per query (the bootstrap of a mean, without a multinomial draw), drawn only for the
    queries where some candidate differs from the reference: the others add 0 to every gain. Deterministic
    for a seed. Standard errors are floored at 1/n so that a candidate that never differs has a finite t."""
    gains = np.asarray(gains, dtype=float)
    n, c = gains.shape
    if n < 2 or c == 0:
        return Bounds(gains.mean(axis=0) if n else np.zeros(c), np.full(c, np.inf), float("inf"))
    mean = gains.mean(axis=0)
    se = np.maximum(gains.std(axis=0, ddof=1) / np.sqrt(n), 1.0 / n)
    active = gains[np.any(gains != 0, axis=1)]
    rng = np.random.default_rng(seed)
    maxima = np.empty(draws)
    chunk = max(1, min(draws, _CELLS_PER_CHUNK // max(len(active), 1)))
    for start in range(0, draws, chunk):
        size = min(chunk, draws - start)
        weights = rng.poisson(1.0, size=(size, len(active))).astype(float)
        maxima[start:start + size] = ((weights @ active / n - mean) / se).max(axis=1)
    return Bounds(mean, se, max(float(np.quantile(maxima, level)), 0.0), 1.0 / n)
