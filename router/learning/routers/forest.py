"""Random-forest router: one multi-output forest over query features predicts every model's P(solve)."""

from __future__ import annotations

import numpy as np

from lm_routing.learning.estimator_arrays import forest_arrays, forest_from_arrays
from lm_routing.learning.features import make_features
from lm_routing.learning.routers.base import Router


class ForestRouter(Router):
    """`n_estimators` seeded trees shared by all models (one output per model), on `features`.

    A model's score is the forest's P(solved); a model with one label for every training query
    gets that label. Fitting uses `n_jobs` workers (trees are seeded, so any count gives the same forest).
    """

    name = "rf"  # registered by lm_routing.learning.routers.builtin

    light = True

    def __init__(self, n_estimators: int = 200, min_samples_leaf: int = 1, features: str = "tfidf",
                 seed: int = 0, n_jobs: int = -1):
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.features = features
        self.seed = seed
        self.n_jobs = n_jobs

    def _fit(self, queries, labels):
        self.featurizer_ = make_features(self.features).fit(queries)
        forest = self._forest()
        solved = labels >= 0.5
        solved = solved[:, 0] if self.n_models_ == 1 else solved  # sklearn wants a 1-D target for one output
        # threaded prediction adds up trees in varying order: not bit-reproducible, so it runs on one worker
        self.forest_ = forest.fit(self.featurizer_.transform(queries), solved).set_params(n_jobs=1)

    def _forest(self):
        from sklearn.ensemble import RandomForestClassifier  # imported when fitted: keeps the CLI's start-up light

        return RandomForestClassifier(n_estimators=self.n_estimators, min_samples_leaf=self.min_samples_leaf,
                                      random_state=self.seed, n_jobs=self.n_jobs)

    def _state(self):
        return forest_arrays(self.forest_)

    def _restore(self, arrays):
        self.forest_ = forest_from_arrays(arrays, self._forest()).set_params(n_jobs=1)

    def _predict(self, queries):
        x = self.featurizer_.transform(queries)
        probabilities = self.forest_.predict_proba(x)
        if self.n_models_ == 1:  # sklearn drops the per-output list for a single output
            probabilities, classes = [probabilities], [self.forest_.classes_]
        else:
            classes = self.forest_.classes_
        # P(solved) = sum over the classes seen in training (False/True) of P(class) * class
        return np.stack([p @ c.astype(float) for p, c in zip(probabilities, classes)], axis=1)
