"""The simulated demo pool (lm_routing.reading.simulate) labels queries by the tasks' own majority rule."""

from __future__ import annotations

import numpy as np

from lm_routing_tasks.scoring import majority_vote
from lm_routing.reading.simulate import _right_above


def test_simulated_threshold_is_the_majority_rule():
    """The demo's calibration: maj@K is right exactly above the threshold, by majority_vote over the drawn answers."""
    uniforms = np.random.default_rng(0).random((400, 10, 2))
    thresholds = _right_above(uniforms)
    for p in np.random.default_rng(1).random(5):
        right = uniforms[..., 0] < p
        distractor = np.floor(uniforms[..., 1] * 3).astype(int)
        voted = [majority_vote(["right" if r else str(d) for r, d in zip(rs, ds)]) == "right"
                 for rs, ds in zip(right, distractor)]
        assert voted == list(p > thresholds)
