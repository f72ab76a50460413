"""Every registered router through the same contract checks (like sklearn's check_estimator)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import build_tiny_encoder
from lm_routing.data import RoutingInputError
from lm_routing.learning.routers import ROUTERS, NotFittedError, make_router
from lm_routing.saved import load_router, save_router

WORDS = "apple train money percent cell law court history price rate speed tax area garden ticket".split()


def corpus(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, 3, size=n)
    queries = [" ".join(rng.choice(WORDS[5 * t: 5 * t + 5], size=6)) + f" q{i}" for i, t in enumerate(topic)]
    labels = np.stack([topic == 0, topic == 1, topic != 1, np.ones(n, bool)], axis=1).astype(float)
    return queries, labels


# Per-router hyper-parameters for tests: small, offline (tiny local encoders), fast.
TEST_PARAMS: dict[str, dict] = {
    "mlc": {"epochs": 30, "lr": 5e-3, "batch_size": 32, "max_length": 32},
    "sc": {"batch_size": 256, "max_length": 32},
    "mf": {"epochs": 40, "lr": 1e-2, "dim": 16, "svd_dims": 16},
    "mlp": {"epochs": 40, "lr": 1e-2, "hidden": 16, "svd_dims": 16},
    "contrastive": {"epochs": 8, "lr": 3e-3, "batch_size": 32, "max_length": 32, "n_clusters": 3},
}
NEEDS_ENCODER = ("mlc", "sc", "contrastive")  # their `encoder` is the session's tiny random BERT, added by `name`


def build(name: str):
    return make_router(name, **TEST_PARAMS.get(name, {}))


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory, one_torch_thread):
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny_encoder"), corpus(300)[0])


@pytest.fixture(params=sorted(ROUTERS))
def name(request):
    if request.param in NEEDS_ENCODER:  # built only when an encoder router is tested
        TEST_PARAMS[request.param]["encoder"] = str(request.getfixturevalue("tiny_encoder"))
    return request.param


def test_shape_range_and_signal(name):
    queries, labels = corpus(200)
    router = build(name).fit(queries[:150], labels[:150])
    scores = router.predict_proba(queries[150:])
    assert scores.shape == (50, 4)
    assert np.all((scores >= 0) & (scores <= 1))
    decided = labels[150:, :2].sum(axis=1) == 1  # topic 0 or 1: exactly one of models 0, 1 solves
    hits = np.argmax(scores[decided, :2], axis=1) == np.argmax(labels[150:][decided, :2], axis=1)
    if not ROUTERS[name].selects:  # auto deploys a router only when its gain survives the choice among candidates
        assert hits.mean() > 0.8
    assert np.allclose(scores[:, 3], 1.0)  # a model that always solves


def test_deterministic(name):
    queries, labels = corpus(120)
    a = build(name).fit(queries, labels).predict_proba(queries[:30])
    b = build(name).fit(queries, labels).predict_proba(queries[:30])
    assert np.array_equal(a, b)


def test_save_load_round_trip(name, tmp_path):
    queries, labels = corpus(120)
    router = build(name).fit(queries, labels)
    models = ("a", "b", "c", "d")
    save_router(router, tmp_path / "saved", models)
    loaded, loaded_models = load_router(tmp_path / "saved")
    assert loaded_models == models
    assert np.array_equal(loaded.predict_proba(queries), router.predict_proba(queries))
    with pytest.raises(RoutingInputError, match="already exists"):
        save_router(router, tmp_path / "saved", models)


def test_unfitted_error(name):
    with pytest.raises(NotFittedError, match="not fitted"):
        build(name).predict_proba(["a query"])


def test_one_query_and_ten_thousand(name):
    queries, labels = corpus(300)
    router = build(name).fit(queries, labels)
    assert router.predict_proba(["apple train"]).shape == (1, 4)
    many, _ = corpus(10_000, seed=1)
    assert router.predict_proba(many).shape == (10_000, 4)
    assert router.predict_proba([]).shape == (0, 4)


def test_init_only_stores_hyper_parameters(name):
    router = build(name)
    assert not any(k.endswith("_") for k in vars(router))
    assert router.get_params() == vars(router)


def test_unknown_router_and_bad_saved_folder(tmp_path):
    with pytest.raises(RoutingInputError, match="unknown router 'gpt'; choose one of"):
        make_router("gpt")
    with pytest.raises(RoutingInputError, match="not a router saved"):
        load_router(tmp_path)
