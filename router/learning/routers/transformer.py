"""The routing paper's transformer routers: a fine-tuned multi-label classifier (mlc) and separate classifiers (sc).

torch, transformers and accelerate are imported inside functions so that `import router` stays cheap.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from tqdm.auto import tqdm

from lm_routing.data import validation_split
from lm_routing.learning.encoders import (QUIET_BELOW, TextEncoder, accelerator, data_parallel, map_batches, resolve_encoder,
                                          summed_across_processes)
from lm_routing.learning.estimator_arrays import unprefixed
from lm_routing.learning.routers.base import Router
from lm_routing.learning.routers.linear import fit_per_model, per_model_arrays, per_model_from_arrays, predict_per_model

ETA_AFTER_BATCHES = 5  # training batches timed before the ETA is said


class _EncoderRouter(Router):
    """A router on a Hugging Face encoder (`self.encoder`: hub id, local folder or 'minilm')."""

    heavy = True  # every fit runs the encoder over all training queries (mlc: for several epochs, with gradients)

    def check_ready(self):
        resolve_encoder(self.encoder)  # offline and not cached: one line now, not ~30 s of hub retries later


class MultiLabelRouter(_EncoderRouter):
    """The paper's multi-label classifier: a fine-tuned encoder with one sigmoid output per model (BCE loss).

    Keeps the epoch with the lowest BCE on a seeded `validation_fraction` (0-1; 0 trains on
    every query and keeps the last epoch) and stops after `patience` epochs without a new best.
    Labels count as solved at >= 0.5, unless `soft_targets`: then solve rates 0-1 are fit as given.
    A model with one label for every training query gets that label as its score.
    Deterministic on CPU under `seed`; `batch_size` queries per step, for training and inference.
    """

    name = "mlc"  # registered by lm_routing.learning.routers.builtin

    eta_above_s = 10.0  # fits estimated to take at least this long (s) say so after their first batches

    def __init__(
        self, encoder: str = "roberta-base", pooling: str = "mean", epochs: int = 5, lr: float = 2e-5,
        batch_size: int = 16, max_length: int = 128, dropout: float = 0.1, validation_fraction: float = 0.1,
        patience: int = 2, seed: int = 0, soft_targets: bool = False,
    ):
        self.encoder = encoder
        self.pooling = pooling
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.max_length = max_length
        self.dropout = dropout
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.seed = seed
        self.soft_targets = soft_targets

    def _fit(self, queries, labels):
        import torch

        torch.manual_seed(self.seed)
        self.encoder_ = TextEncoder(self.encoder, self.pooling, self.max_length)
        head = torch.nn.Sequential(torch.nn.Dropout(self.dropout), torch.nn.Linear(self.encoder_.width, labels.shape[1]))
        self.head_ = head.to(accelerator().device)
        rank, world = data_parallel()
        if world > 1:  # the same start everywhere (above); then each process its own dropout
            torch.manual_seed(self.seed + rank)
        targets = labels if self.soft_targets else (labels >= 0.5).astype(float)
        # a model whose every training label is the same has nothing to learn: it keeps that score
        self.constant_ = np.where(targets.min(axis=0) == targets.max(axis=0), targets[0], np.nan)
        training, validation = validation_split(len(queries), self.validation_fraction, self.seed)
        optimizer = torch.optim.AdamW([*self.encoder_.model.parameters(), *self.head_.parameters()], lr=self.lr)
        batch_order = np.random.default_rng(self.seed + 1)  # a stream apart from the split's
        self.history_: list[float] = []  # validation BCE after each epoch
        self.best_epoch_, best_state = self.epochs - 1, None
        for epoch in tqdm(range(self.epochs), desc="mlc epochs", disable=len(queries) < QUIET_BELOW or rank > 0):
            self._train_epoch(queries, targets, batch_order.permutation(training), optimizer, timed=epoch == 0)
            if len(validation) == 0:
                continue
            self.history_.append(self._loss([queries[i] for i in validation], targets[validation], world > 1))
            if self.history_[-1] < min(self.history_[:-1], default=np.inf):
                self.best_epoch_, best_state = epoch, self._checkpoint()
            elif epoch - self.best_epoch_ >= self.patience:
                break
        if best_state is not None:
            self.encoder_.model.load_state_dict(best_state[0])
            self.head_.load_state_dict(best_state[1])

    def _train_epoch(self, queries, targets, order, optimizer, timed: bool = False):
        """One pass over `order`; when `timed`, say the device and the fit's ETA after the first batches.

        Data parallel (`data_parallel()`: several processes launched): each process takes every world-th query of
        each batch, and the gradients of the batch's mean loss are summed across processes before the step: the
        same update as one process on the whole batch, the batch split over the devices."""
        import torch

        self.encoder_.model.train()
        self.head_.train()
        rank, world = data_parallel()
        parameters = [*self.encoder_.model.parameters(), *self.head_.parameters()]
        starts = range(0, len(order), self.batch_size)
        began = time.perf_counter()
        for done, start in enumerate(tqdm(starts, desc="batches", disable=len(queries) < QUIET_BELOW or rank > 0,
                                          leave=False), 1):
            batch = order[start: start + self.batch_size]
            # a process whose share of a short last batch is empty runs one query at weight 0: every process then
            # has gradients for the same parameters (those the loss reaches), zeros where its share is empty
            index, weight = (batch[rank::world], 1.0) if len(batch) > rank else (batch[:1], 0.0)
            logits = self.head_(self.encoder_.pool([queries[i] for i in index]))
            batch_targets = torch.as_tensor(targets[index], dtype=torch.float32, device=logits.device)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch_targets, reduction="sum")
            optimizer.zero_grad()
            accelerator().backward(loss * (weight / batch_targets.shape[1] / len(batch)))  # its share of the batch's mean
            if world > 1:
                summed_across_processes([p.grad for p in parameters if p.grad is not None])
            optimizer.step()
            if timed and done == min(ETA_AFTER_BATCHES, len(starts)) and rank == 0:
                float(loss.detach())  # waits for the device, so the clock measures the batches, not their launch
                seconds = (time.perf_counter() - began) / done * len(starts) * self.epochs
                if seconds >= self.eta_above_s:
                    tqdm.write(self._eta_line(seconds, len(order)), file=sys.stderr)

    def _eta_line(self, seconds: float, n_training: int) -> str:
        """'mlc: training <encoder> on <device> ...: about N min for this fit' (N from the first batches)."""
        precision = accelerator().mixed_precision
        return (f"mlc: training {self.encoder} on {accelerator().device} ({'fp32' if precision == 'no' else precision}), "
                f"{n_training} queries x {self.epochs} epochs at batch {self.batch_size}: about "
                f"{seconds / 60:.1f} min for this fit (from its first batches; early stopping may cut it; "
                "README: mlc on CPU vs GPU)")

    def _checkpoint(self) -> tuple[dict, dict]:
        """Copies of the encoder's and the head's weights (an early-stopping checkpoint)."""
        return tuple({k: v.detach().clone() for k, v in m.state_dict().items()} for m in (self.encoder_.model, self.head_))

    def _logits(self, queries: list[str]) -> np.ndarray:
        self.encoder_.model.eval()
        self.head_.eval()
        return map_batches(queries, self.batch_size, lambda batch: self.head_(self.encoder_.pool(batch)), "mlc")

    def _loss(self, queries: list[str], targets: np.ndarray, shared: bool = False) -> float:
        """Mean BCE on `queries`; `shared` (data parallel): the first process's value, so that every process stops
        at the same epoch even where two devices' float sums differ."""
        import torch

        logits = torch.from_numpy(self._logits(queries))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.from_numpy(targets)).reshape(1)
        if shared:
            import torch.distributed as dist

            loss = loss.to(accelerator().device)
            dist.broadcast(loss, src=0)
        return float(loss)

    def _predict(self, queries):
        from scipy.special import expit  # imported when used: keeps the CLI's start-up light

        return np.where(np.isnan(self.constant_), expit(self._logits(queries)), self.constant_)

    def _state(self):
        state = {f"head.{key}": value.detach().cpu().numpy() for key, value in self.head_.state_dict().items()}
        return {**state, "constant": self.constant_, "history": np.asarray(self.history_, dtype=float),
                "best_epoch": np.asarray(self.best_epoch_)}

    def _restore(self, arrays):
        import torch

        self.constant_, self.history_, self.best_epoch_ = arrays["constant"], arrays["history"].tolist(), int(arrays["best_epoch"])
        head = torch.nn.Sequential(torch.nn.Dropout(self.dropout), torch.nn.Linear(self.encoder_.width, len(self.constant_)))
        head.load_state_dict({key: torch.from_numpy(value) for key, value in unprefixed("head", arrays).items()})
        self.head_ = head.to(accelerator().device)


class SeparateClassifierRouter(_EncoderRouter):
    """The paper's separate classifiers, cheaply: a frozen encoder embeds each query once, then one
    logistic regression per model (a model with constant labels gets a constant score)."""

    name = "sc"  # registered by lm_routing.learning.routers.builtin

    def __init__(
        self, encoder: str = "roberta-base", pooling: str = "mean", max_length: int = 128, batch_size: int = 64,
        C: float = 1.0,
    ):
        self.encoder = encoder
        self.pooling = pooling
        self.max_length = max_length
        self.batch_size = batch_size
        self.C = C

    def _fit(self, queries, labels):
        self.encoder_ = TextEncoder(self.encoder, self.pooling, self.max_length)
        x = self.encoder_.embed(queries, self.batch_size)
        self.classifiers_ = fit_per_model(x, labels, self._classifier)

    def _classifier(self):
        from sklearn.linear_model import LogisticRegression  # imported when fitted: keeps the CLI's start-up light
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        # standardised: a few hidden dimensions of some encoders (RoBERTa) are far larger than the rest
        return make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=2000))

    def _state(self):
        return per_model_arrays(self.classifiers_)

    def _restore(self, arrays):
        self.classifiers_ = per_model_from_arrays(arrays, self._classifier)

    def _predict(self, queries):
        return predict_per_model(self.classifiers_, self.encoder_.embed(queries, self.batch_size))
