from __future__ import annotations

import numpy as np
import pytest

from lm_routing.cli.notes import say
from lm_routing.data import RoutingInputError
from lm_routing.deciding.policies import POLICIES, make_policy, policies_to_run


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


def test_stacked_policy_learns_from_training_scores():
    name = "stacked"
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


def test_prediction_routes_to_the_confidence_level_of_correct_models():
    rng = np.random.default_rng(1)
    scores = rng.uniform(0.0, 1.0, size=(200, 3))
    labels = np.zeros((200, 3))
    scores[:, 1] = 0.7  # the router gives every correct model 0.7 ...
    labels[:, 1] = 1.0  # ... and model 1 (first correct in pool order) always solves
    policy = make_policy("prediction").fit(scores, labels)
    assert policy.regression_.predict(scores) == pytest.approx(np.full(200, 0.7))
    assert policy.choose(np.array([[0.95, 0.69, 0.1], [0.72, 0.2, 0.3]])).tolist() == [1, 0]


def test_sorted_prediction_targets_the_rarest_correct_model():
    scores = np.tile([0.9, 0.5, 0.3], (40, 1)) + np.linspace(0, 0.01, 40)[:, None]
    labels = np.zeros((40, 3))
    labels[:, 0] = 1.0  # model 0 solves everything
    labels[::2, 2] = 1.0  # model 2 solves half: rarer, so it sets the target when correct
    sorted_policy = make_policy("sorted-prediction").fit(scores, labels)
    plain = make_policy("prediction").fit(scores, labels)
    assert sorted_policy.order_.tolist() == [1, 2, 0]
    assert plain.regression_.predict(scores).mean() == pytest.approx(0.905, abs=0.01)
    assert sorted_policy.regression_.predict(scores).mean() == pytest.approx((0.3 + 0.9) / 2 + 0.005, abs=0.01)


def test_fallback_keeps_the_best_model_unless_the_router_earns_its_margin():
    rng = np.random.default_rng(2)
    labels = np.zeros((400, 3))
    labels[:, 1] = rng.random(400) < 0.7  # model 1: best on average
    helpful = rng.random(400) < 0.3
    labels[helpful, 2] = 1.0  # model 2 solves a known 30% ...
    labels[helpful, 1] = 0.0  # ... that model 1 misses
    scores = np.tile([0.2, 0.6, 0.3], (400, 1))
    scores[helpful, 2] = 0.75  # the router spots them, by a margin of 0.15
    policy = make_policy("fallback").fit(scores, labels)
    assert policy.default_ == 1 and 0.1 <= policy.margin_ < 0.15  # the largest margin that keeps every win
    assert policy.choose(np.array([[0.2, 0.6, 0.7], [0.2, 0.6, 0.9], [0.9, 0.1, 0.1]])).tolist() == [1, 2, 0]
    # a router whose scores say nothing: the margin grows until the default model is always kept
    noise = make_policy("fallback").fit(rng.random((400, 3)), labels)
    assert noise.margin_ >= 0.5
    assert (noise.choose(rng.random((50, 3))) == 1).all()


@pytest.mark.parametrize("name", ["prediction", "sorted-prediction", "stacked", "fallback"])
def test_unfitted_policies_say_so(name):
    with pytest.raises(RuntimeError, match="fit"):
        make_policy(name).choose(np.zeros((2, 2)))


def test_unknown_policy():
    with pytest.raises(RoutingInputError, match="unknown policy 'best'"):
        make_policy("best")
    assert list(POLICIES) == ["argmax", "random", "prediction", "sorted-prediction", "stacked", "fallback"]


@pytest.mark.parametrize("heavy, named, runs, noted", [
    (False, False, list(POLICIES), False),  # light routers: every policy, as asked
    (True, True, list(POLICIES), False),  # heavy, but the user named the policies
    (True, False, [p for p in POLICIES if not POLICIES[p].needs_fit], True),
])
def test_heavy_routers_run_only_unfitted_policies_unless_named(heavy, named, runs, noted):
    chosen, note = policies_to_run("mlc", heavy, list(POLICIES), named)
    assert chosen == runs and chosen[:2] == ["argmax", "random"]
    assert (note is not None) == noted
    if noted:
        assert note.settings == ("policies",) and note.fields["ran"] == ["argmax", "random"]
        assert say(note).startswith("router mlc: ran policies argmax, random only; prediction")
    assert policies_to_run("mlc", True, ["argmax"], False) == (["argmax"], None)  # nothing left out: no note


def test_policy_properties_come_from_the_registry_not_from_lists_beside_it():
    """What a saved router can run alone (routed_lm, `predict --policy`) and what the memory estimate counts are
    read from each registered policy's class: a new policy is counted without editing any list."""
    from lm_routing.deciding.policies import Policy, register_policy, unfitted_policies
    from lm_routing.judging.limits import estimated_bytes

    assert unfitted_policies() == [name for name in POLICIES if not POLICIES[name].needs_fit]
    assert {"argmax", "random"} <= set(unfitted_policies()) and "stacked" not in unfitted_policies()
    base = estimated_bytes(1000, 50, 1, ["argmax"])
    assert estimated_bytes(1000, 50, 1, ["argmax", "stacked"]) - base == 8 * 3 * 50 * 50

    @register_policy("test-square-and-unfitted")
    class Squares(Policy):
        square_matrices = 2

    try:
        assert "test-square-and-unfitted" in unfitted_policies()
        assert estimated_bytes(1000, 50, 1, ["argmax", "test-square-and-unfitted"]) - base == 8 * 2 * 50 * 50
    finally:
        POLICIES._entries.pop("test-square-and-unfitted", None)
