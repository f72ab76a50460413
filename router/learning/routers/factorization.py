"""Matrix-factorisation router (RouteLLM's and LLMRouter's `mf`), generalised from a pair of models to n.

A query's features are projected to `dim` latent dimensions; each model has a learned unit
vector there. logit(model m solves q) = w . (v_m * W x_q) + b_m, trained with binary
cross-entropy on every (query, model) label instead of RouteLLM's pairwise win/loss.
"""

from __future__ import annotations

from lm_routing.learning.routers.base import Router, store_hyper_parameters
from lm_routing.learning.routers.neural import FeatureNetRouterMixin


def bilinear(n_features: int, n_models: int, dim: int):
    """The factorisation as a torch module: (batch, n_features) -> (batch, n_models) logits."""
    import torch

    class Bilinear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.text_proj = torch.nn.Linear(n_features, dim, bias=False)
            self.models = torch.nn.Parameter(torch.randn(n_models, dim))
            self.classifier = torch.nn.Parameter(torch.ones(dim))
            self.bias = torch.nn.Parameter(torch.zeros(n_models))

        def forward(self, x):
            models = torch.nn.functional.normalize(self.models, dim=-1)  # unit model vectors, as RouteLLM's
            return (self.text_proj(x) * self.classifier) @ models.T + self.bias

    return Bilinear()


class FactorizationRouter(FeatureNetRouterMixin, Router):
    """Matrix factorisation over `features` ('tfidf', cut to `svd_dims` LSA dimensions, or 'minilm'):
    `dim` latent dimensions, AdamW at `lr` with `weight_decay`, `batch_size` queries per step, at most
    `epochs` epochs, early-stopped on validation BCE (a seeded `validation_fraction` 0-1, `patience`
    epochs). Deterministic under `seed`.
    A model with one label for every training query gets that label as its score.
    """

    name = "mf"  # registered by lm_routing.learning.routers.builtin

    light = True  # cheap enough for auto's candidate set

    def __init__(self, dim: int = 64, features: str = "tfidf", svd_dims: int = 128, epochs: int = 100, lr: float = 3e-3,
                 batch_size: int = 64, weight_decay: float = 1e-4, validation_fraction: float = 0.1,
                 patience: int = 5, seed: int = 0):
        store_hyper_parameters(self, locals())

    def _module(self, n_features: int, n_models: int):
        return bilinear(n_features, n_models, self.dim)
