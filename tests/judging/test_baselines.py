"""The paper's baselines on hand-computed tiny cases."""

from __future__ import annotations

import numpy as np
import pytest
from tables import make_data

from lm_routing.cli.notes import say
from lm_routing.data import RoutingInputError
from lm_routing.judging.evaluate import all_models_row, baseline_rows, choice_row, oracle_choices, random_row, upper_bound_row


LABELS = [[0, 1, 1], [1, 0, 0], [0, 0, 0], [0, 0, 1]]
LATENCY = [3.0, 1.0, 2.0]


def test_oracle_picks_first_correct_in_pool_order():
    data = make_data(LABELS, LATENCY)
    assert oracle_choices(data).tolist() == [1, 0, 0, 2]
    row = choice_row("oracle", data, oracle_choices(data))
    assert row.accuracy == 0.75
    assert row.latency_s == pytest.approx((1 + 3 + 3 + 2) / 4)


def test_cheapest_correct_oracle():
    data = make_data(LABELS, LATENCY)
    # q0: m1 (1s) beats m2 (2s); q2 unsolved -> cheapest model m1
    assert oracle_choices(data, cheapest=True).tolist() == [1, 0, 1, 2]
    with pytest.raises(RoutingInputError):
        oracle_choices(make_data(LABELS), cheapest=True)


def test_random_is_mean_over_seeded_draws():
    data = make_data(LABELS, LATENCY)
    row = random_row(data, seed=0, draws=1000)
    assert row.accuracy == pytest.approx(np.mean(LABELS), abs=0.02)
    assert row.latency_s == pytest.approx(2.0, abs=0.05)
    assert random_row(data, seed=0).accuracy == random_row(data, seed=0).accuracy


def test_all_models_vote_over_answers():
    answers = [["7", "7", "8"], ["1", "2", "2"], [None, "5", "5"], ["3", "4", None]]
    labels = [[0, 0, 1], [1, 0, 0], [0, 1, 1], [0, 1, 0]]
    data = make_data(labels, LATENCY, answers)
    row = all_models_row(data)
    # q0: '7' wins, wrong. q1: '2' wins, wrong. q2: '5' wins, right. q3: 3-4 tie -> first ('3'), wrong.
    assert row.accuracy == 0.25
    assert row.latency_s == pytest.approx(6.0)


def test_all_models_vote_over_labels_without_answers():
    data = make_data([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 0]])
    assert all_models_row(data).accuracy == 0.5
    assert all_models_row(data).latency_s is None


def test_upper_bound_first_predicted_solvable_that_is():
    data = make_data(LABELS, LATENCY)
    scores = np.array([[0.9, 0.2, 0.7], [0.1, 0.8, 0.3], [0.6, 0.6, 0.6], [0.4, 0.3, 0.2]])
    row = upper_bound_row(data, scores, "r")
    # q0: m2 predicted & right; q1: only m1 predicted, wrong -> top score m1, wrong; q2: none right; q3: nothing predicted -> m0 wrong
    assert row.accuracy == 0.25
    assert row.router == "r"


def test_single_models_and_row_order():
    rows = baseline_rows(make_data(LABELS, LATENCY), seed=0)
    assert [r.method for r in rows] == ["oracle", "oracle-cheapest", "random", "all", "model:m0", "model:m1", "model:m2"]
    assert [r.accuracy for r in rows[-3:]] == [0.25, 0.25, 0.5]
    assert [r.latency_s for r in rows[-3:]] == [3.0, 1.0, 2.0]


def test_a_table_no_model_scores_on_says_so():
    from lm_routing.judging.evaluate import evaluate
    from lm_routing.judging.spec import EvalSpec

    zero = evaluate(make_data(np.zeros((12, 2))), EvalSpec(routers=("knn",), policies=("argmax",), folds=2))
    assert all(row.accuracy == 0 for row in zero.rows)
    (note,) = [n for n in zero.notes if n.code == "no-solver"]
    assert note.fields["test_queries"] == 12 and note.settings == ("metric", "filter")
    assert say(note).startswith("note: no model solves any of the 12 test queries") and "metric" in say(note)
    some = evaluate(make_data(np.eye(12, 2)), EvalSpec(routers=("knn",), policies=("argmax",), folds=2))
    assert not any(n.code == "no-solver" for n in some.notes)
