"""Policies: from router scores (n_queries x n_models, P(solve)) to one model per query.

Each policy has `fit(train_scores, train_labels)` (a no-op for most) and
`choose(scores) -> (n_queries,) model indices`. Ties go to the model earlier
in pool order, so a policy's choice depends only on its inputs and seed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.linear_model import Ridge

from router.data import RoutingInputError

POLICIES: dict[str, Callable[..., Policy]] = {}


def register_policy(name: str):
    def add(cls):
        cls.name = name
        POLICIES[name] = cls
        return cls

    return add


def make_policy(name: str, seed: int = 0) -> Policy:
    """A policy by registry name; unknown names raise RoutingInputError."""
    if name not in POLICIES:
        raise RoutingInputError(f"unknown policy {name!r}; choose from: {', '.join(POLICIES)}")
    return POLICIES[name](seed=seed)


class Policy:
    name = "policy"
    needs_fit = False

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> Policy:
        return self

    def choose(self, scores: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@register_policy("argmax")
class ArgMax(Policy):
    """The model with the highest P(solve)."""

    def choose(self, scores):
        return np.argmax(scores, axis=1)


@register_policy("random")
class RandomTopK(Policy):
    """ArgMax, except when the top P(solve) is <= 0.6: then a seeded uniform pick among the top 3."""

    threshold = 0.6
    top_k = 3

    def choose(self, scores):
        rng = np.random.default_rng(self.seed)
        chosen = np.argmax(scores, axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")[:, : self.top_k]
        unsure = scores.max(axis=1) <= self.threshold
        picks = rng.integers(0, order.shape[1], size=len(scores))
        chosen[unsure] = order[unsure, picks[unsure]]
        return chosen


@register_policy("prediction")
class Prediction(Policy):
    """A regression over the whole confidence vector predicts each model's correctness.

    Fit on the training queries' (out-of-fold) router scores and true labels,
    one ridge output per model, so a model's choice can use what the router
    says about every other model. Picks the highest prediction.
    """

    needs_fit = True

    def fit(self, scores, labels):
        self.regression_ = Ridge(alpha=1.0).fit(self._inputs(scores), labels)
        return self

    def _inputs(self, scores):
        return scores

    def predicted(self, scores):
        if not hasattr(self, "regression_"):
            raise RuntimeError(f"policy {self.name} must be fit on training scores first")
        return self.regression_.predict(self._inputs(scores))

    def choose(self, scores):
        return np.argmax(self.predicted(scores), axis=1)


@register_policy("sorted-prediction")
class SortedPrediction(Prediction):
    """Prediction, with models ordered by how often they solve training queries.

    Near-ties (within 0.02 of the best prediction) go to the model that solves
    most training queries: the reliable model wins when the router cannot tell.
    """

    margin = 0.02

    def fit(self, scores, labels):
        super().fit(scores, labels)
        self.order_ = np.argsort(-labels.mean(axis=0), kind="stable")
        return self

    def choose(self, scores):
        predicted = self.predicted(scores)
        close = predicted >= predicted.max(axis=1, keepdims=True) - self.margin
        ranked = close[:, self.order_]
        return self.order_[np.argmax(ranked, axis=1)]
