"""TF-IDF + one logistic regression per model (the paper's separate-classifier idea, light)."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from router.features import make_features
from router.routers import Router, register_router


@register_router("lr")
class LogisticRouter(Router):
    def __init__(self, C: float = 1.0, features: str = "tfidf"):
        self.C = C
        self.features = features

    def _fit(self, queries, labels):
        self.featurizer_ = make_features(self.features).fit(queries)
        x = self.featurizer_.transform(queries)
        self.classifiers_ = []
        for column in labels.T:
            if column.min() == column.max():  # a model that always (or never) solves: constant score
                self.classifiers_.append(float(column[0]))
            else:
                self.classifiers_.append(LogisticRegression(C=self.C, max_iter=2000).fit(x, column.astype(int)))

    def _predict(self, queries):
        x = self.featurizer_.transform(queries)
        columns = [
            np.full(x.shape[0], c) if isinstance(c, float) else c.predict_proba(x)[:, 1] for c in self.classifiers_
        ]
        return np.stack(columns, axis=1)
