"""`auto` (router.select): picks the best single model when routers only fit noise, a router when
queries carry a signal, the per-dataset single on a mixed stream, and never reads test labels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from router.data import RoutingData
from router.evaluate import evaluate
from router.routers import load_router, save_router
from router.select import PER_DATASET, ROUTED, SINGLE, deploy, light_routers, select

WORDS = ("apple", "river", "cloud", "stone", "green", "music", "table", "light", "sugar", "north", "paper", "tiger")


def synthetic(n: int, seed: int, signal: bool, datasets: tuple[str, ...] = ("toy",), test_share: float = 0.5) -> RoutingData:
    """3 models. Without signal each solves at its own rate whatever the query; with signal, queries
    about 'alpha' are solved by model 1 only and those about 'beta' by model 2 only (model 0: 60% of all)."""
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, 2, n)
    dataset = rng.integers(0, len(datasets), n)
    queries = [f"{datasets[d]} {'alpha' if t else 'beta'} " + " ".join(rng.choice(WORDS, 6)) + f" #{i}"
               for i, (t, d) in enumerate(zip(topic, dataset))]
    if signal:
        labels = np.stack([rng.random(n) < 0.6, topic == 1, topic == 0], axis=1).astype(float)
    else:
        labels = (rng.random((n, 3)) < [0.7, 0.5, 0.4]).astype(float)
    if len(datasets) > 1:  # per dataset, a different best model; the text names the dataset
        labels = np.where((dataset == 1)[:, None], labels[:, ::-1], labels)
    splits = np.where(rng.random(n) < test_share, "test", "train")
    return RoutingData(
        query_ids=tuple(f"q{i}" for i in range(n)), queries=tuple(queries),
        datasets=tuple(datasets[d] for d in dataset), splits=tuple(splits), models=("m0", "m1", "m2"),
        labels=labels, solve_rates=labels.copy(), answers=np.full((n, 3), None, dtype=object),
        latency=np.full((n, 3), np.nan), latency_source=("unknown",) * 3,
    )


FAST = {"routers": ["knn", "lr"], "features": ["tfidf"]}


def test_light_routers_come_from_the_registry():
    assert {"knn", "lr", "rf", "cluster"} <= set(light_routers())
    assert "mlc" not in light_routers() and "sc" not in light_routers()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noise_scores_pick_the_best_single_model(seed):
    train = synthetic(400, seed, signal=False).split("train")
    selection = select(train, seed=seed, **FAST)
    assert selection.pick.candidate.kind == SINGLE
    assert len(selection.ranked) == 1 + 2 * 6  # best single + 2 routers x 6 policies (one dataset)


def test_planted_signal_picks_a_router():
    train = synthetic(400, 0, signal=True).split("train")
    selection = select(train, **FAST)
    assert selection.pick.candidate.kind == ROUTED
    assert selection.pick.accuracy > 0.95 and "auto picked" in selection.note()


def test_mixed_stream_of_noise_picks_the_per_dataset_single_and_serves_it(tmp_path):
    data = synthetic(600, 0, signal=False, datasets=("gsm8k", "mmlu"))
    train, test = data.split("train"), data.split("test")
    selection = select(train, **FAST)
    assert selection.pick.candidate.kind == PER_DATASET
    deployed = deploy(selection, train, folds=5, seed=0)
    chosen = deployed.predict_proba(list(test.queries)).argmax(axis=1)
    assert list(chosen) == [0 if d == "gsm8k" else 2 for d in test.datasets]  # each dataset's best model
    loaded, models = load_router(save_router(deployed, tmp_path / "auto", data.models))
    assert models == data.models
    np.testing.assert_array_equal(loaded.predict_proba(list(test.queries)), deployed.predict_proba(list(test.queries)))


@pytest.mark.parametrize("signal", [False, True])
def test_shuffled_test_labels_leave_the_pick_unchanged(signal):
    data = synthetic(400, 3, signal=signal)
    test = np.array([s == "test" for s in data.splits])
    labels = data.labels.copy()
    labels[test] = np.random.default_rng(9).permutation(labels[test])
    shuffled = dataclasses.replace(data, labels=labels)
    first, second = (evaluate(d, ["auto"], ["argmax"], auto_features=["tfidf"]) for d in (data, shuffled))
    pick = lambda e: [(s.candidate, s.accuracy) for s in e.selections[0].ranked]  # noqa: E731
    assert pick(first) == pick(second)
    assert first.rows[0].method == "router:auto"


def test_without_training_queries_auto_is_nested_in_the_outer_folds():
    data = synthetic(300, 4, signal=True, test_share=1.0)
    evaluation = evaluate(data, ["auto"], ["argmax"], folds=3, auto_features=["tfidf"])
    assert len(evaluation.selections) == 3
    assert all(s.n_queries < data.n_queries for s in evaluation.selections)  # each chosen on its outer fit only
    assert evaluation.rows[0].accuracy > 0.9
