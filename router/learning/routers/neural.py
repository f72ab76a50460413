"""What the small torch routers (mf, mlp) share: multi-label training with early stopping, batched
scoring, constant-label models, and weights as plain numpy arrays (their whole learned state).

torch is imported inside functions so that `import router` stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tqdm.auto import tqdm

from lm_routing.data import validation_split
from lm_routing.learning.encoders import QUIET_BELOW
from lm_routing.learning.features import make_features

QUIET_BELOW_ROWS = 20 * QUIET_BELOW  # queries: smaller fits take seconds (~50 epochs/s at 2,400 queries), so no bar
PREDICT_BATCH = 256  # queries per scoring step: a TF-IDF batch is densified, 256 x 50k floats = 51 MB


def rows(x, index: np.ndarray | slice):
    """Rows of a feature matrix (scipy sparse or numpy) as a dense float32 torch tensor."""
    import scipy.sparse  # imported when used: keeps the CLI's start-up light
    import torch

    part = x[index]
    part = part.toarray() if scipy.sparse.issparse(part) else np.asarray(part)
    return torch.from_numpy(part.astype(np.float32, copy=False))


def constant_scores(targets: np.ndarray) -> np.ndarray:
    """Per model: its label when every training query has that label (nothing to learn), else NaN."""
    return np.where(targets.min(axis=0) == targets.max(axis=0), targets[0], np.nan)


def base_rate_logits(targets: np.ndarray) -> np.ndarray:
    """Each model's training solve rate as a logit (a starting bias: training begins at the base rate)."""
    rate = targets.mean(axis=0).clip(0.01, 0.99)
    return np.log(rate / (1 - rate)).astype(np.float32)


def weights_of(module) -> dict[str, np.ndarray]:
    """A torch module's parameters as float32 numpy arrays (state_dict names)."""
    return {k: v.detach().float().cpu().numpy().copy() for k, v in module.state_dict().items()}


def load_weights(module, weights: dict[str, np.ndarray]):
    """`module` with `weights` (from `weights_of`) loaded, in eval mode."""
    import torch

    module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()})
    return module.eval()


def fit_multilabel(
    module, x, targets: np.ndarray, *, epochs: int, lr: float, batch_size: int, weight_decay: float,
    validation_fraction: float, patience: int, seed: int, desc: str,
) -> tuple[list[float], int]:
    """Train `module` (features -> one logit per model) with binary cross-entropy and AdamW.

    x: (n_queries, n_features) scipy sparse or numpy; targets: (n_queries, n_models) 0/1.
    Keeps the epoch with the lowest BCE on a seeded `validation_fraction` (0-1; 0 trains on all
    queries and keeps the last epoch) and stops after `patience` epochs without a new best.
    Returns (validation BCE per epoch, kept epoch); `module` ends with the kept epoch's weights.
    """
    import torch

    torch.manual_seed(seed)
    training, validation = validation_split(x.shape[0], validation_fraction, seed)
    optimizer = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    target_tensor = torch.from_numpy(targets.astype(np.float32))
    batch_order = np.random.default_rng(seed + 1)  # a stream apart from the split's
    history: list[float] = []
    best_epoch, best = epochs - 1, None
    for epoch in tqdm(range(epochs), desc=f"{desc} epochs", disable=x.shape[0] < QUIET_BELOW_ROWS):
        module.train()
        order = batch_order.permutation(training)
        for start in range(0, len(order), batch_size):
            index = order[start: start + batch_size]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(module(rows(x, index)), target_tensor[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if len(validation) == 0:
            continue
        logits = torch.from_numpy(logits_of(module, x[validation]))
        history.append(float(torch.nn.functional.binary_cross_entropy_with_logits(logits, target_tensor[validation])))
        if history[-1] < min(history[:-1], default=np.inf):
            best_epoch, best = epoch, weights_of(module)
        elif epoch - best_epoch >= patience:
            break
    if best is not None:
        load_weights(module, best)
    return history, best_epoch


def logits_of(module, x) -> np.ndarray:
    """(n_queries, n_models) float32 logits of `module` on features `x`, in batches, without gradients."""
    import torch

    module.eval()
    with torch.no_grad():
        parts = [module(rows(x, slice(s, s + PREDICT_BATCH))).numpy() for s in range(0, x.shape[0], PREDICT_BATCH)]
    return np.concatenate(parts)


class FeatureNetRouterMixin:
    """fit/predict/_state/_restore for a router whose learned state is one torch module on `features`.

    The class provides `_module(n_features, n_models)` (a fresh module with a per-model `bias`) and the
    hyper-parameters features, svd_dims, epochs, lr, batch_size, weight_decay, validation_fraction,
    patience and seed.
    Sparse features (TF-IDF) are first cut to `svd_dims` LSA dimensions (`projection_`, seeded
    TruncatedSVD): a 50k-wide first layer costs an optimizer step over millions of weights per batch.
    Learned state: `projection_` (None for dense features), `weights_` (numpy arrays of the module)
    and `constant_` (per model, a fixed score or NaN); the featurizer (`featurizer_`) is kept apart,
    as for every light router.
    """

    _module: Callable

    def _fit(self, queries, labels):
        import scipy.sparse  # imported when fitted: keeps the CLI's start-up light
        from sklearn.decomposition import TruncatedSVD
        from threadpoolctl import threadpool_limits
        import torch

        self.featurizer_ = make_features(self.features).fit(queries)
        x = self.featurizer_.transform(queries)
        self.projection_ = None
        if scipy.sparse.issparse(x):
            dims = max(1, min(self.svd_dims, x.shape[1] - 1, x.shape[0] - 1))
            with threadpool_limits(1):  # a small SVD: extra BLAS threads only wait on each other (3x slower when busy)
                svd = TruncatedSVD(dims, random_state=self.seed).fit(x)
            self.projection_ = svd.components_.T.astype(np.float32)
        x = self._project(x)
        targets = (labels >= 0.5).astype(float)
        torch.manual_seed(self.seed)
        module = self._module(x.shape[1], targets.shape[1])
        module.bias.data = torch.from_numpy(base_rate_logits(targets))
        self.history_, self.best_epoch_ = fit_multilabel(
            module, x, targets, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
            weight_decay=self.weight_decay, validation_fraction=self.validation_fraction,
            patience=self.patience, seed=self.seed, desc=self.name,
        )
        self.weights_ = weights_of(module)
        self.constant_ = constant_scores(targets)

    def _project(self, x) -> np.ndarray:
        """Features as the module reads them: LSA-projected when sparse, float32."""
        return np.asarray(x if self.projection_ is None else x @ self.projection_, dtype=np.float32)

    def _predict(self, queries):
        from scipy.special import expit

        x = self._project(self.featurizer_.transform(queries))
        module = load_weights(self._module(x.shape[1], len(self.constant_)), self.weights_)
        return np.where(np.isnan(self.constant_), expit(logits_of(module, x)), self.constant_)

    def _state(self) -> dict[str, np.ndarray]:
        """All learned state as numpy arrays: the module's weights ('weight.<name>'), `constant`,
        `projection` (sparse features only)
        and the early-stopping record (`history`, `best_epoch`)."""
        weights = {f"weight.{k}": v for k, v in self.weights_.items()}
        projection = {} if self.projection_ is None else {"projection": self.projection_}
        return {**weights, **projection, "constant": self.constant_, "history": np.asarray(self.history_, dtype=float),
                "best_epoch": np.asarray(self.best_epoch_)}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Rebuild the fitted router from `_state()`'s arrays (the featurizer is restored apart)."""
        self.weights_ = {k.removeprefix("weight."): np.asarray(v) for k, v in arrays.items() if k.startswith("weight.")}
        self.constant_ = np.asarray(arrays["constant"], dtype=float)
        self.projection_ = np.asarray(arrays["projection"], dtype=np.float32) if "projection" in arrays else None
        self.history_, self.best_epoch_ = list(arrays["history"]), int(arrays["best_epoch"])
        self.n_models_ = len(self.constant_)
