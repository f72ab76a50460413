"""TF-IDF + one logistic regression per model (the paper's separate-classifier idea, light)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lm_routing.learning.estimator_arrays import logistic_arrays, logistic_from_arrays, prefixed, unprefixed
from lm_routing.learning.features import make_features
from lm_routing.learning.routers.base import Router


def fit_per_model(x, labels: np.ndarray, make_classifier: Callable[[], object]) -> list:
    """One binary classifier per label column of `labels` (n_queries, n_models) on features `x`.

    A model that always (or never) solves gets its constant score (a float) instead.
    """
    classifiers = []
    for column in labels.T:
        if column.min() == column.max():
            classifiers.append(float(column[0]))
        else:
            classifiers.append(make_classifier().fit(x, column.astype(int)))
    return classifiers


def predict_per_model(classifiers: list, x) -> np.ndarray:
    """(n_queries, n_models) P(solve) from `fit_per_model`'s classifiers on features `x`."""
    n = x.shape[0]
    columns = [np.full(n, c) if isinstance(c, float) else c.predict_proba(x)[:, 1] for c in classifiers]
    return np.stack(columns, axis=1)


def per_model_arrays(classifiers: list) -> dict[str, np.ndarray]:
    """`fit_per_model`'s classifiers as arrays: `constant` (NaN where a classifier was fit) and each one's parameters."""
    arrays = {"constant": np.array([c if isinstance(c, float) else np.nan for c in classifiers])}
    for j, classifier in enumerate(classifiers):
        if not isinstance(classifier, float):
            arrays.update(prefixed(f"model{j}", logistic_arrays(classifier)))
    return arrays


def per_model_from_arrays(arrays: dict[str, np.ndarray], make_classifier: Callable[[], object]) -> list:
    """The inverse of `per_model_arrays`, given the fit-time classifier factory."""
    return [float(c) if not np.isnan(c) else logistic_from_arrays(unprefixed(f"model{j}", arrays), make_classifier)
            for j, c in enumerate(arrays["constant"])]


class LogisticRouter(Router):

    name = "lr"  # registered by lm_routing.learning.routers.builtin

    light = True

    def __init__(self, C: float = 1.0, features: str = "tfidf"):
        self.C = C
        self.features = features

    def _fit(self, queries, labels):
        self.featurizer_ = make_features(self.features).fit(queries)
        x = self.featurizer_.transform(queries)
        self.classifiers_ = fit_per_model(x, labels, self._classifier)

    def _classifier(self):
        from sklearn.linear_model import LogisticRegression  # imported when fitted: keeps the CLI's start-up light

        return LogisticRegression(C=self.C, max_iter=2000)

    def _predict(self, queries):
        return predict_per_model(self.classifiers_, self.featurizer_.transform(queries))

    def _state(self):
        return per_model_arrays(self.classifiers_)

    def _restore(self, arrays):
        self.classifiers_ = per_model_from_arrays(arrays, self._classifier)
