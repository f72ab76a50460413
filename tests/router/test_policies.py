from __future__ import annotations

import numpy as np
import pytest

from router.data import RoutingInputError
from router.policies import POLICIES, make_policy


def test_argmax_ties_go_to_pool_order():
    scores = np.array([[0.2, 0.9, 0.9], [0.5, 0.1, 0.4]])
    assert make_policy("argmax").choose(scores).tolist() == [1, 0]


def test_random_only_when_unsure_and_among_top_three():
    sure = np.array([[0.1, 0.95, 0.2, 0.3]] * 50)
    assert (make_policy("random").choose(sure) == 1).all()
    unsure = np.array([[0.5, 0.6, 0.1, 0.55]] * 200)
    chosen = make_policy("random", seed=3).choose(unsure)
    assert set(chosen.tolist()) == {0, 1, 3}
    assert (chosen == make_policy("random", seed=3).choose(unsure)).all()


@pytest.mark.parametrize("name", ["prediction", "sorted-prediction"])
def test_prediction_policies_learn_from_training_scores(name):
    rng = np.random.default_rng(0)
    labels = np.zeros((300, 3))
    labels[:, 0] = rng.integers(0, 2, size=300)
    labels[:, 2] = 1.0 - labels[:, 0]  # model 2 solves exactly what model 0 does not; model 1 nothing
    scores = np.full((300, 3), 0.5)
    scores[:, 0] = np.clip(labels[:, 0] + rng.normal(0, 0.2, 300), 0, 1)
    scores[:, 1] = 0.55  # an over-confident router score for a useless model
    policy = make_policy(name).fit(scores, labels)
    chosen = policy.choose(scores)
    assert labels[np.arange(300), chosen].mean() > 0.9
    assert labels[np.arange(300), make_policy("argmax").choose(scores)].mean() < 0.9


def test_unfitted_prediction_policy_says_so():
    with pytest.raises(RuntimeError, match="fit"):
        make_policy("prediction").choose(np.zeros((2, 2)))


def test_unknown_policy():
    with pytest.raises(RoutingInputError, match="unknown policy 'best'"):
        make_policy("best")
    assert list(POLICIES) == ["argmax", "random", "prediction", "sorted-prediction"]
