"""Accuracy on the RouterDC GSM8K split is pinned: every router x policy row, seed 0, within 1e-9.

The figures were produced by the code at the branch point (before out-of-fold scores were
shared across policies and `auto` was added); any change to evaluation that moves them must
be explained, not absorbed.
"""

from __future__ import annotations

import pytest

from lm_routing.judging.evaluate import evaluate
from lm_routing.judging.spec import EvalSpec
from lm_routing.data import concat
from lm_routing.reading.logs import read_score_table

POLICIES = ["argmax", "random", "prediction", "sorted-prediction", "stacked", "fallback"]  # as of the pin

PINNED = {
    ("train-test", "knn"): {
        'upper-bound': 0.8483699772554966,
        'router:knn:argmax': 0.7194844579226687,
        'router:knn:random': 0.7202426080363912,
        'router:knn:prediction': 0.5496588324488249,
        'router:knn:sorted-prediction': 0.47081122062168307,
        'router:knn:stacked': 0.7073540561031084,
        'router:knn:fallback': 0.7119029567854435,
    },
    ("train-test", "lr"): {
        'upper-bound': 0.8407884761182715,
        'router:lr:argmax': 0.714177407126611,
        'router:lr:random': 0.714177407126611,
        'router:lr:prediction': 0.5504169825625473,
        'router:lr:sorted-prediction': 0.47536012130401817,
        'router:lr:stacked': 0.7119029567854435,
        'router:lr:fallback': 0.714177407126611,
    },
    ("train-test", "rf"): {
        'upper-bound': 0.8514025777103866,
        'router:rf:argmax': 0.7278241091736164,
        'router:rf:random': 0.7278241091736164,
        'router:rf:prediction': 0.5443517816527672,
        'router:rf:sorted-prediction': 0.45261561789234267,
        'router:rf:stacked': 0.7126611068991661,
        'router:rf:fallback': 0.7119029567854435,
    },
    ("train-test", "cluster"): {
        'upper-bound': 0.8423047763457164,
        'router:cluster:argmax': 0.7179681576952237,
        'router:cluster:random': 0.7179681576952237,
        'router:cluster:prediction': 0.5519332827899924,
        'router:cluster:sorted-prediction': 0.4624715693707354,
        'router:cluster:stacked': 0.7119029567854435,
        'router:cluster:fallback': 0.7179681576952237,
    },
    ("test-kfold", "knn"): {
        'upper-bound': 0.8400303260045489,
        'router:knn:argmax': 0.7020470053070508,
        'router:knn:random': 0.7012888551933283,
        'router:knn:prediction': 0.5041698256254739,
        'router:knn:sorted-prediction': 0.41015921152388174,
        'router:knn:stacked': 0.7156937073540561,
        'router:knn:fallback': 0.7119029567854435,
    },
    ("test-kfold", "cluster"): {
        'upper-bound': 0.8400303260045489,
        'router:cluster:argmax': 0.7103866565579985,
        'router:cluster:random': 0.7058377558756633,
        'router:cluster:prediction': 0.5360121304018196,
        'router:cluster:sorted-prediction': 0.4450341167551175,
        'router:cluster:stacked': 0.7103866565579985,
        'router:cluster:fallback': 0.709628506444276,
    },
}


@pytest.fixture(scope="module")
def gsm8k(shared_data):
    folder = shared_data / "routing" / "routerdc-7llm"
    return concat([read_score_table(folder / f"gsm8k_{split}.json", split, 0.5) for split in ("train", "test")])


@pytest.mark.parametrize("protocol,router", list(PINNED))
def test_accuracy_unchanged(gsm8k, protocol, router):
    evaluation = evaluate(gsm8k, EvalSpec(routers=(router,), policies=tuple(POLICIES), seed=0, protocol=protocol))
    got = {row.method: row.accuracy for row in evaluation.rows if row.router}
    assert got.keys() == PINNED[protocol, router].keys()
    for method, accuracy in PINNED[protocol, router].items():
        assert got[method] == pytest.approx(accuracy, abs=1e-9), method
