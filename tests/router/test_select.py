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


def test_a_known_dataset_is_served_by_its_rates_not_guessed_from_the_text(tmp_path):
    """Where the caller knows each query's dataset (its table, its lm-eval task), the per-dataset pick
    uses it, as its inner-CV score assumed; unknown or unseen names still go to the text classifier."""
    data = synthetic(600, 0, signal=False, datasets=("gsm8k", "mmlu"))
    data = dataclasses.replace(data, queries=tuple(q.split(" ", 1)[1] for q in data.queries))  # text names no dataset
    train, test = data.split("train"), data.split("test")
    deployed = deploy(select(train, **FAST), train, folds=5, seed=0)
    assert deployed.uses_datasets and deployed.datasets == ["gsm8k", "mmlu"]
    best = {"gsm8k": 0, "mmlu": 2}
    chosen = deployed.predict_proba(list(test.queries), list(test.datasets)).argmax(axis=1)
    assert list(chosen) == [best[d] for d in test.datasets]
    guessed = deployed.predict_proba(list(test.queries)).argmax(axis=1)
    assert (guessed != chosen).any()  # the text alone cannot tell these datasets apart
    unseen = deployed.predict_proba(list(test.queries), ["arc"] * test.n_queries)
    np.testing.assert_array_equal(unseen, deployed.predict_proba(list(test.queries)))
    loaded, _ = load_router(save_router(deployed, tmp_path / "auto", data.models))
    np.testing.assert_array_equal(loaded.predict_proba(list(test.queries), list(test.datasets)),
                                  deployed.predict_proba(list(test.queries), list(test.datasets)))
    with pytest.raises(ValueError, match="dataset names for"):
        deployed.predict_proba(list(test.queries), ["gsm8k"])
    evaluation = evaluate(data, ["auto"], ["argmax"], auto_features=["tfidf"])
    assert list(evaluation.routed[0].choices) == [best[d] for d in evaluation.data.datasets]


def test_routers_that_ignore_datasets_accept_them():
    train = synthetic(200, 1, signal=True).split("train")
    deployed = deploy(select(train, **FAST), train, folds=5, seed=0)
    assert not deployed.uses_datasets
    np.testing.assert_array_equal(deployed.predict_proba(["alpha x"], ["toy"]), deployed.predict_proba(["alpha x"]))


def test_lm_eval_routed_serves_a_per_dataset_pick_by_each_task_dataset(tmp_path):
    """`lm_eval --model routed`: a document's dataset comes from its task's dataset_path in lm-eval's
    task index (as routing-eval names it from the logs), so the text need not name it."""
    from types import SimpleNamespace

    from router.routed_lm import RoutedLM

    data = synthetic(400, 0, signal=False, datasets=("gsm8k", "mmlu"))
    data = dataclasses.replace(data, queries=tuple(q.split(" ", 1)[1] for q in data.queries))
    train = data.split("train")
    folder = save_router(deploy(select(train, **FAST), train, folds=5, seed=0), tmp_path / "auto", data.models)
    lm = RoutedLM(router=str(folder))
    assert lm._dataset_of("gsm8k_cot_maj10") == "gsm8k" and lm._dataset_of("mmlu_cot_maj10_anatomy") == "mmlu"
    assert lm._dataset_of("no_such_task") is None
    requests = [SimpleNamespace(task_name=task, doc_id=0, doc={"question": "alpha apple river"})
                for task in ("gsm8k_cot_maj10", "mmlu_cot_maj10_anatomy")]
    assert lm._route(requests) == [0, 2]  # each dataset's best model, whatever the text
