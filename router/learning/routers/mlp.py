"""MLP router: one hidden layer on query features, one sigmoid output per model (multi-label)."""

from __future__ import annotations

from lm_routing.learning.routers.base import Router, store_hyper_parameters
from lm_routing.learning.routers.neural import FeatureNetRouterMixin


def perceptron(n_features: int, n_models: int, hidden: int, dropout: float):
    """features -> ReLU(hidden) -> dropout -> one logit per model, as a torch module with a `bias` per model."""
    import torch

    class Perceptron(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = torch.nn.Linear(n_features, hidden)
            self.dropout = torch.nn.Dropout(dropout)
            self.out = torch.nn.Linear(hidden, n_models, bias=False)
            self.bias = torch.nn.Parameter(torch.zeros(n_models))

        def forward(self, x):
            return self.out(self.dropout(torch.relu(self.hidden(x)))) + self.bias

    return Perceptron()


class PerceptronRouter(FeatureNetRouterMixin, Router):
    """A `hidden`-unit MLP with `dropout` over `features` ('tfidf', cut to `svd_dims` LSA dimensions, or
    'minilm'), trained with BCE on every model's label by AdamW at `lr` with `weight_decay`,
    `batch_size` queries per step, at most `epochs` epochs, early-stopped on validation BCE (a seeded
    `validation_fraction` 0-1, `patience` epochs). Deterministic under `seed`. A model with one label
    for every training query gets that label.
    """

    name = "mlp"  # registered by lm_routing.learning.routers.builtin

    light = True  # cheap enough for auto's candidate set

    def __init__(self, hidden: int = 128, dropout: float = 0.2, features: str = "tfidf", svd_dims: int = 128,
                 epochs: int = 100, lr: float = 1e-3, batch_size: int = 64, weight_decay: float = 1e-4,
                 validation_fraction: float = 0.1, patience: int = 5, seed: int = 0):
        store_hyper_parameters(self, locals())

    def _module(self, n_features: int, n_models: int):
        return perceptron(n_features, n_models, self.hidden, self.dropout)
