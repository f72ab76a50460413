"""Policies: from router scores (n_queries x n_models, P(solve)) to one model per query.

Each policy has `fit(train_scores, train_labels)` (a no-op for most) and
`choose(scores) -> (n_queries,) model indices`. Ties go to the model earlier
in pool order, so a policy's choice depends only on its inputs and seed.
"""

from __future__ import annotations

import numpy as np

from lm_routing.errors import Note, NotFittedError
from lm_routing.learning.estimator_arrays import linear_arrays, linear_from_arrays, prefixed, unprefixed
from lm_routing.registry import Registry


class Policy:
    name = "policy"
    needs_fit = False  # fit on training scores and labels (a saved router alone cannot run it)
    square_matrices = 0  # models x models float64 matrices its fit holds (the up-front memory estimate counts them)

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> Policy:
        return self

    def _require_fit(self) -> None:
        if self.needs_fit and not any(k.endswith("_") for k in vars(self)):  # learned state ends in _
            raise NotFittedError(f"policy {self.name} must be fit on training scores first")

    def choose(self, scores: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _state(self) -> dict[str, np.ndarray]:
        """What `fit` learned, as plain arrays (a saved router keeps its fitted policy without pickle)."""
        return {}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        """The fitted policy back from `_state()`'s arrays."""


POLICIES: Registry[type[Policy]] = Registry("policy", Policy)  # in registration order: the CLI's default order
register_policy = POLICIES.register


def unfitted_policies() -> list[str]:
    """The registered policies that need no labels: what a saved router can run on its own."""
    return [name for name in POLICIES if not POLICIES[name].needs_fit]


def make_policy(name: str, seed: int = 0) -> Policy:
    """A policy by registry name; unknown names raise RoutingInputError."""
    return POLICIES.lookup(name)(seed=seed)


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


class _ConfidenceRegression(Policy):
    """The paper's Prediction policies: regress, from the confidence vector, the
    confidence the router gives a model that is correct, then route to the model
    whose confidence is nearest that prediction.

    Training target: the confidence of the first correct model in `_order`
    (0.5 when none is correct), fit by least squares on training queries'
    out-of-fold scores. The paper writes the choice as argmax(confidence -
    prediction); with one prediction per query that is plain argmax, so we take
    the model whose confidence is closest to the predicted level.
    """

    needs_fit = True

    def _order(self, labels: np.ndarray) -> np.ndarray:
        return np.arange(labels.shape[1])

    def fit(self, scores, labels):
        from sklearn.linear_model import LinearRegression  # imported when fitted: keeps the CLI's start-up light

        self.order_ = order = self._order(labels)
        solved = labels[:, order] > 0
        first = order[np.argmax(solved, axis=1)]
        target = np.where(solved.any(axis=1), scores[np.arange(len(scores)), first], 0.5)
        self.regression_ = LinearRegression().fit(scores, target)
        return self

    def choose(self, scores):
        self._require_fit()
        predicted = self.regression_.predict(scores)[:, None]
        return np.argmin(np.abs(scores - predicted), axis=1)

    def _state(self):
        return {"order": self.order_, **prefixed("regression", linear_arrays(self.regression_))}

    def _restore(self, arrays):
        from sklearn.linear_model import LinearRegression

        self.order_ = arrays["order"]
        self.regression_ = linear_from_arrays(unprefixed("regression", arrays), LinearRegression())


@register_policy("prediction")
class Prediction(_ConfidenceRegression):
    """Target: confidence of the first correct model in pool order."""


@register_policy("sorted-prediction")
class SortedPrediction(_ConfidenceRegression):
    """Target: confidence of the correct model that solves fewest training queries (specialists first)."""

    def _order(self, labels):
        return np.argsort(labels.mean(axis=0), kind="stable")


@register_policy("stacked")
class Stacked(Policy):
    """Not in the paper: a ridge regression from the whole confidence vector to every
    model's label (fit on out-of-fold training scores), then argmax. Lets one model's
    choice use what the router says about the others."""

    needs_fit = True
    square_matrices = 3  # ridge coefficients and their solve

    def fit(self, scores, labels):
        from sklearn.linear_model import Ridge

        self.regression_ = Ridge(alpha=1.0).fit(scores, labels)
        return self

    def choose(self, scores):
        self._require_fit()
        # reshape: with one model in the pool the regression returns a flat vector
        return np.argmax(self.regression_.predict(scores).reshape(len(scores), -1), axis=1)

    def _state(self):
        return linear_arrays(self.regression_)

    def _restore(self, arrays):
        from sklearn.linear_model import Ridge

        self.regression_ = linear_from_arrays(arrays, Ridge(alpha=1.0))


@register_policy("fallback")
class Fallback(Policy):
    """Not in the paper: no-regret routing. The model that solves most fitting queries,
    unless another model's P(solve) beats its P by more than a margin; the margin is
    chosen on out-of-fold training scores (the largest among equally accurate ones,
    1.0 meaning 'always the default'), so a router that does not help is not used."""

    needs_fit = True
    margins = (*np.round(np.arange(0.0, 0.5001, 0.02), 2), 1.0)

    def fit(self, scores, labels):
        self.default_ = int(np.argmax(labels.mean(axis=0)))
        rows = np.arange(len(labels))
        accuracy = [labels[rows, self._pick(scores, margin)].mean() for margin in self.margins]
        top = max(accuracy)
        self.margin_ = max(m for m, a in zip(self.margins, accuracy) if a >= top - 1e-12)
        return self

    def _pick(self, scores: np.ndarray, margin: float) -> np.ndarray:
        top = np.argmax(scores, axis=1)
        gain = scores[np.arange(len(scores)), top] - scores[:, self.default_]
        return np.where(gain > margin, top, self.default_)

    def choose(self, scores):
        self._require_fit()
        return self._pick(scores, self.margin_)

    def _state(self):
        return {"default": np.asarray(self.default_), "margin": np.asarray(self.margin_)}

    def _restore(self, arrays):
        self.default_, self.margin_ = int(arrays["default"]), float(arrays["margin"])


def policies_to_run(router: str, heavy: bool, policies: list[str], named: bool) -> tuple[list[str], Note | None]:
    """(policies to run for `router`, a note or None).

    Policies that need fitting are fit on out-of-fold scores: k more trainings of the router.
    For a `heavy` router (an expensive fit: a fine-tuned encoder) whose policies the user did not
    `named` explicitly, only the policies needing no extra fit run, and the note says which were
    left out and how to ask for them. Otherwise every policy runs and there is no note.
    """
    if not heavy or named:
        return list(policies), None
    cheap = [p for p in policies if not POLICIES[p].needs_fit]
    fitted = [p for p in policies if POLICIES[p].needs_fit]
    if not fitted:
        return cheap, None
    return cheap, Note("heavy-policies-left-out", ("policies",), router=router, ran=cheap, left_out=fitted)
