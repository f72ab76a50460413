"""Row names are made from typed fields in one place (lm_routing.judging.rows), as the table and JSON print them."""

from __future__ import annotations

import numpy as np

from lm_routing.judging.rows import CASCADE, MODEL, ROUTER, UPPER_BOUND, make_row


def test_names_from_fields():
    correct = np.array([1.0, 0.0, 1.0])
    assert make_row(MODEL, correct, None, model="org/m").method == "model:org/m"
    assert make_row(ROUTER, correct, None, router="knn", policy="argmax").method == "router:knn:argmax"
    assert make_row(ROUTER, correct, None, router="auto").method == "router:auto"
    assert make_row(CASCADE, correct, None, chain=("a", "b"), threshold=0.75).method == "cascade:a>b@0.75"
    bound = make_row(UPPER_BOUND, correct, None, router="lr")
    assert (bound.method, bound.label) == ("upper-bound", "upper-bound:lr")
    assert make_row("oracle", correct, 1.5).label == "oracle"


def test_loaded_router_policy_stays_a_field():
    row = make_row(ROUTER, np.ones(2), None, router="loaded:saved", policy="stacked")
    assert (row.method, row.router, row.policy) == ("router:loaded:saved:stacked", "loaded:saved", "stacked")
