"""RouterDC-style dual-contrastive router (Chen et al., NeurIPS 2024), on any Hugging Face encoder.

A fine-tuned encoder maps a query to a vector; each model has a learned vector of the same width;
their cosine similarity / `temperature` scores the model for the query. Training minimises two
contrastive losses: sample-LLM (pull a query towards each model that solves it, away from the
models that do not) and sample-sample (pull a query towards the other queries of its k-means
cluster, away from the rest of the batch). A per-model logistic map of the similarity turns
scores into P(solve) 0-1. torch, transformers and accelerate are imported inside functions.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from lm_routing.data import validation_split
from lm_routing.learning.encoders import QUIET_BELOW, TextEncoder, accelerator, map_batches, quiet_transformers
from lm_routing.learning.features import encoder_source
from lm_routing.learning.routers.base import Router
from lm_routing.learning.routers.neural import constant_scores

def sample_llm_loss(similarity, solved):
    """RouterDC's sample-LLM loss: mean over (query, solving model) pairs of
    -log(exp(s_pos) / (exp(s_pos) + sum over non-solving models of exp(s_neg))).

    similarity: (batch, n_models) scaled scores; solved: (batch, n_models) bool. Queries that all or
    no models solve contribute nothing (None when no pair in the batch has both sides).
    """
    import torch

    negatives = torch.logsumexp(similarity.masked_fill(solved, float("-inf")), dim=1, keepdim=True)
    pairs = solved & torch.isfinite(negatives)
    if not pairs.any():
        return None
    return (torch.logaddexp(similarity, negatives) - similarity)[pairs].mean()


def sample_sample_loss(vectors, clusters, temperature: float):
    """RouterDC's sample-sample loss: each query against the batch, its cluster-mates as positives
    (None when no query in the batch has a cluster-mate). vectors: (batch, width) unit rows."""
    import torch

    similarity = vectors @ vectors.T / temperature
    self_mask = torch.eye(len(clusters), dtype=torch.bool, device=vectors.device)
    similarity = similarity.masked_fill(self_mask, float("-inf"))
    mates = (clusters[:, None] == clusters[None, :]) & ~self_mask
    if not mates.any():
        return None
    log_share = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
    return -log_share[mates].mean()


class ContrastiveRouter(Router):
    """RouterDC's dual contrastive training of `encoder` ('minilm', 'hf:<hub id>' or a local folder).

    Scores are cos(query vector, model vector) / `temperature`. Each step's loss is the sample-LLM
    loss plus `sample_weight` x the sample-sample loss over `n_clusters` seeded k-means clusters of
    the untrained encoder's query vectors. AdamW at `lr` (model vectors at `lr` x `model_lr_scale`),
    `batch_size` queries per step, queries cut at `max_length` tokens, at most `epochs` epochs; keeps
    the epoch whose argmax routing is most accurate on a seeded `validation_fraction` (0-1) and
    stops after `patience` epochs without a new best. Runs on the GPU through accelerate when there
    is one. Deterministic on CPU under `seed`. A model with one label for every training query gets
    that label as its score; the others' P(solve) is a logistic regression of the label on the score.
    """

    name = "contrastive"  # registered by lm_routing.learning.routers.builtin

    heavy = True  # fine-tunes a transformer: not in auto's light candidate set

    def __init__(self, encoder: str = "minilm", epochs: int = 5, lr: float = 5e-5, model_lr_scale: float = 100.0,
                 batch_size: int = 32, max_length: int = 128, temperature: float = 0.1, sample_weight: float = 1.0,
                 n_clusters: int = 5, validation_fraction: float = 0.1, patience: int = 2, seed: int = 0):
        self.encoder = encoder
        self.epochs = epochs
        self.lr = lr
        self.model_lr_scale = model_lr_scale
        self.batch_size = batch_size
        self.max_length = max_length
        self.temperature = temperature
        self.sample_weight = sample_weight
        self.n_clusters = n_clusters
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.seed = seed

    def _load_encoder(self) -> TextEncoder:
        with quiet_transformers():
            return TextEncoder(encoder_source(self.encoder), "mean", self.max_length)

    def _fit(self, queries, labels):
        import torch

        torch.manual_seed(self.seed)
        self.encoder_ = self._load_encoder()
        solved = labels >= 0.5
        self.constant_ = constant_scores(solved.astype(float))
        device = accelerator().device
        models = torch.nn.Parameter(torch.randn(labels.shape[1], self.encoder_.width, device=device))
        clusters = torch.as_tensor(self._clusters(queries), device=device)
        training, validation = validation_split(len(queries), self.validation_fraction, self.seed)
        optimizer = torch.optim.AdamW([
            {"params": list(self.encoder_.model.parameters()), "lr": self.lr},
            {"params": [models], "lr": self.lr * self.model_lr_scale},
        ])
        solved_tensor = torch.as_tensor(solved, device=device)
        batch_order = np.random.default_rng(self.seed + 1)  # a stream apart from the split's
        self.history_: list[float] = []  # validation argmax-routing accuracy (0-1) after each epoch
        self.best_epoch_, best = self.epochs - 1, None
        for epoch in tqdm(range(self.epochs), desc="contrastive epochs", disable=len(queries) < QUIET_BELOW):
            self.encoder_.model.train()
            order = batch_order.permutation(training)
            steps = range(0, len(order), self.batch_size)
            for start in tqdm(steps, desc="batches", disable=len(queries) < QUIET_BELOW, leave=False):
                index = order[start: start + self.batch_size]
                vectors = torch.nn.functional.normalize(self.encoder_.pool([queries[i] for i in index]), dim=-1)
                similarity = vectors @ torch.nn.functional.normalize(models, dim=-1).T / self.temperature
                terms = [sample_llm_loss(similarity, solved_tensor[index])]
                query_term = sample_sample_loss(vectors, clusters[index], self.temperature)
                terms.append(None if query_term is None else self.sample_weight * query_term)
                terms = [t for t in terms if t is not None]
                if not terms:
                    continue
                optimizer.zero_grad()
                accelerator().backward(sum(terms))
                optimizer.step()
            if len(validation) == 0:
                continue
            self.models_ = models.detach().float().cpu().numpy().copy()
            chosen = self._similarity([queries[i] for i in validation]).argmax(axis=1)
            self.history_.append(float(solved[validation, chosen].mean()))
            if self.history_[-1] > max(self.history_[:-1], default=-1.0):
                self.best_epoch_, best = epoch, (self._encoder_weights(), self.models_)
            elif epoch - self.best_epoch_ >= self.patience:
                break
        self.models_ = models.detach().float().cpu().numpy().copy()
        if best is not None:
            self._load_encoder_weights(best[0])
            self.models_ = best[1]
        self.calibration_ = self._calibrate(self._similarity(queries), solved)

    def _clusters(self, queries: list[str]) -> np.ndarray:
        """Seeded k-means cluster of each query's untrained encoder vector (the sample-sample positives)."""
        vectors = self.encoder_.embed(queries, self.batch_size)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
        from sklearn.cluster import KMeans  # imported when fitted: keeps the CLI's start-up light
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):  # small matrices: extra BLAS threads only wait on each other
            return KMeans(min(self.n_clusters, len(queries)), n_init=4, random_state=self.seed).fit_predict(vectors)

    def _similarity(self, queries: list[str]) -> np.ndarray:
        """(n_queries, n_models) cosine similarity / temperature of query and model vectors."""
        self.encoder_.model.eval()
        vectors = map_batches(queries, self.batch_size, self.encoder_.pool, "contrastive")
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
        models = self.models_ / np.linalg.norm(self.models_, axis=1, keepdims=True).clip(min=1e-12)
        return vectors @ models.T / self.temperature

    @staticmethod
    def _calibrate(similarity: np.ndarray, solved: np.ndarray) -> np.ndarray:
        """(n_models, 2) slope and intercept of each model's logistic P(solve | score); zeros when constant."""
        from sklearn.linear_model import LogisticRegression  # imported when fitted: keeps the CLI's start-up light

        rows = []
        for j in range(solved.shape[1]):
            if solved[:, j].min() == solved[:, j].max():
                rows.append((0.0, 0.0))  # constant_ holds its score
                continue
            fit = LogisticRegression(max_iter=1000).fit(similarity[:, [j]], solved[:, j])
            rows.append((float(fit.coef_[0, 0]), float(fit.intercept_[0])))
        return np.array(rows)

    def _predict(self, queries):
        from scipy.special import expit

        probability = expit(self._similarity(queries) * self.calibration_[:, 0] + self.calibration_[:, 1])
        return np.where(np.isnan(self.constant_), probability, self.constant_)

    def _encoder_weights(self) -> dict[str, np.ndarray]:
        """The fine-tuned encoder's weights (an early-stopping checkpoint)."""
        return {k: v.detach().float().cpu().numpy().copy() for k, v in self.encoder_.model.state_dict().items()}

    def _load_encoder_weights(self, weights: dict[str, np.ndarray]) -> None:
        import torch

        self.encoder_.model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()})

    def _state(self) -> dict[str, np.ndarray]:
        """Learned state beside the fine-tuned encoder (`encoder_`, which the save format writes and
        restores itself, as for mlc): `models` (vectors), `calibration`, `constant`, and the
        early-stopping record (`history`, `best_epoch`)."""
        return {"models": self.models_, "calibration": self.calibration_, "constant": self.constant_,
                "history": np.asarray(self.history_, dtype=float), "best_epoch": np.asarray(self.best_epoch_)}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Rebuild the fitted router from `_state()`'s arrays; `encoder_` must already be restored."""
        if not hasattr(self, "encoder_"):
            raise RuntimeError("restore the fine-tuned encoder_ before _restore: _state does not hold it")
        self.models_ = np.asarray(arrays["models"])
        self.calibration_ = np.asarray(arrays["calibration"])
        self.constant_ = np.asarray(arrays["constant"], dtype=float)
        self.history_, self.best_epoch_ = list(arrays["history"]), int(arrays["best_epoch"])
        self.n_models_ = len(self.constant_)
