"""Cost-aware routing, APGR / CPT and AIQ on hand-computed tiny cases."""

from __future__ import annotations

import numpy as np
import pytest

from lm_routing.deciding.cost import aiq, cost_aware_choices, gap_recovery, pareto_front, sweep
from lm_routing.data import RoutingInputError
from tables import make_data


def test_willingness_to_pay_trades_accuracy_for_cost():
    scores = np.array([[0.9, 0.6], [0.8, 0.1]])
    cost = np.array([[10.0, 1.0], [10.0, 1.0]])
    assert cost_aware_choices(scores, cost, 0.0).tolist() == [0, 0]
    assert cost_aware_choices(scores, cost, 0.05).tolist() == [1, 0]  # 0.9-0.5 < 0.6-0.05; 0.8-0.5 > 0.1-0.05
    assert cost_aware_choices(scores, cost, 1.0).tolist() == [1, 1]


def test_sweep_and_operating_point():
    data = make_data([[1, 1], [1, 0]], latency=[10.0, 1.0])
    scores = np.array([[0.9, 0.6], [0.8, 0.1]])
    points = sweep(data, scores, lambdas=np.array([0.0, 0.05, 1.0]))
    assert [(p.accuracy, p.cost) for p in points] == [(1.0, 10.0), (1.0, 5.5), (0.5, 1.0)]
    with pytest.raises(RoutingInputError, match="needs every model's latency"):
        sweep(make_data([[1, 0]]), scores[:1])


def test_pareto_front_and_aiq():
    points = [(1.0, 0.5), (2.0, 0.4), (3.0, 0.8), (5.0, 0.9), (4.0, 0.6)]
    assert pareto_front(points) == [(1.0, 0.5), (3.0, 0.8), (5.0, 0.9)]
    # hull (1,.5)-(3,.8)-(5,.9): area = 2*(.5+.8)/2 + 2*(.8+.9)/2 = 3.0 over range 4
    assert aiq(points) == pytest.approx(0.75)
    # a point under the chord is dropped by the convex hull: (2, 0.55) lies below (1,.5)-(3,.8)
    assert aiq(points + [(2.0, 0.55)]) == pytest.approx(0.75)
    assert aiq([(2.0, 0.7)]) == 0.7


def test_gap_recovery_apgr_and_cpt():
    # strong solves all 4, weak solves the first 2; a perfect router sends the last two to strong first
    data = make_data([[1, 1], [1, 1], [1, 0], [1, 0]])
    perfect = np.array([[0.5, 0.9], [0.5, 0.9], [0.9, 0.1], [0.9, 0.1]])
    result = gap_recovery(data, perfect, strong="m0", weak="m1", steps=5)
    assert result.strong_share.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert result.pgr.tolist() == [0.0, 0.5, 1.0, 1.0, 1.0]
    assert result.apgr == pytest.approx(0.75)  # trapezoid: 0.25 * (0.25 + 0.75 + 1 + 1)
    assert (result.cpt50, result.cpt80) == (0.25, 0.5)
    worst = gap_recovery(data, perfect[:, ::-1], strong="m0", weak="m1", steps=5)
    assert worst.pgr.tolist() == [0.0, 0.0, 0.0, 0.5, 1.0]
    with pytest.raises(RoutingInputError, match="not stronger"):
        gap_recovery(data, perfect, strong="m1", weak="m0")


def test_lambda_for_budget_uses_no_labels():
    from lm_routing.deciding.cost import lambda_for_budget

    scores = np.array([[0.9, 0.6], [0.8, 0.1]])
    cost = np.array([[10.0, 1.0], [10.0, 1.0]])
    lam = lambda_for_budget(scores, cost, 6.0)
    assert cost_aware_choices(scores, cost, lam).tolist() == [1, 0]  # the one affordable mix with most expected accuracy
    assert lambda_for_budget(scores, cost, 100.0) == 0.0
    with pytest.raises(RoutingInputError, match="below the cheapest"):
        lambda_for_budget(scores, cost, 0.5)


def test_price_matrix_needs_one_known_price_per_model():
    from lm_routing.deciding.cost import price_matrix

    data = make_data([[1, 0], [0, 1], [1, 1]])
    assert price_matrix(data, {"m0": 0.5, "m1": 2.0}).tolist() == [[0.5, 2.0]] * 3
    with pytest.raises(RoutingInputError, match="missing: m1"):
        price_matrix(data, {"m0": 0.5})
    with pytest.raises(RoutingInputError, match="unknown model"):
        price_matrix(data, {"m0": 0.5, "m1": 1.0, "m9": 1.0})
