"""mf, mlp and contrastive beyond the contract battery: the no-code save format's `_state`/`_restore`,
their auto-candidate flags, the losses' arithmetic, and early stopping."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from lm_routing.learning.routers import ROUTERS, make_router
from lm_routing.learning.routers.contrastive import sample_llm_loss, sample_sample_loss
from test_router_contract import TEST_PARAMS, build, corpus, name, tiny_encoder  # noqa: F401  (fixtures)

STATEFUL = ("mf", "mlp", "contrastive")


@pytest.mark.parametrize("router_name", STATEFUL)
def test_state_restore_round_trip(router_name, request):
    if router_name == "contrastive":
        TEST_PARAMS["contrastive"]["encoder"] = str(request.getfixturevalue("tiny_encoder"))
    queries, labels = corpus(120)
    router = build(router_name).fit(queries, labels)
    state = router._state()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in state.values())
    params = json.loads(json.dumps(router.get_params()))  # the format keeps hyper-parameters as JSON
    fresh = make_router(router_name, **params)
    if hasattr(router, "featurizer_"):  # saved and restored apart from _state by the format
        fresh.featurizer_ = router.featurizer_
    if hasattr(router, "encoder_"):  # so is a fine-tuned encoder: here a copy through its saved files
        fresh.encoder_ = pickle.loads(pickle.dumps(router.encoder_))
    fresh._restore({k: v.copy() for k, v in state.items()})
    assert np.array_equal(fresh.predict_proba(queries), router.predict_proba(queries))


def test_auto_candidate_flags():
    assert ROUTERS["mf"].light and ROUTERS["mlp"].light
    assert ROUTERS["contrastive"].heavy and not getattr(ROUTERS["contrastive"], "light", False)


def test_sample_llm_loss_matches_the_formula():
    similarity = torch.tensor([[2.0, 0.0, -1.0], [1.0, 1.0, 1.0]])
    solved = torch.tensor([[True, False, False], [True, True, True]])  # the second query has no negative
    expected = -np.log(np.exp(2) / (np.exp(2) + np.exp(0) + np.exp(-1)))
    assert float(sample_llm_loss(similarity, solved)) == pytest.approx(expected, rel=1e-6)
    assert sample_llm_loss(similarity, torch.ones(2, 3, dtype=torch.bool)) is None


def test_sample_sample_loss_prefers_close_cluster_mates():
    vectors = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]), dim=-1)
    together = sample_sample_loss(vectors, torch.tensor([0, 0, 1, 1]), 0.1)
    apart = sample_sample_loss(vectors, torch.tensor([0, 1, 0, 1]), 0.1)
    assert together < apart
    assert sample_sample_loss(vectors, torch.arange(4), 0.1) is None


@pytest.mark.parametrize("router_name", ("mf", "mlp"))
def test_early_stopping_keeps_the_best_validation_epoch(router_name):
    queries, labels = corpus(200)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 2, size=labels.shape).astype(float)  # nothing to learn: validation loss soon rises
    router = make_router(router_name, **{**TEST_PARAMS[router_name], "epochs": 60, "patience": 3}).fit(queries, noise)
    assert len(router.history_) < 60
    assert router.best_epoch_ == int(np.argmin(router.history_))
    assert len(router.history_) == router.best_epoch_ + 1 + 3
