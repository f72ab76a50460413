"""The routing paper's transformer routers: a fine-tuned multi-label classifier (mlc) and separate classifiers (sc).

torch, transformers and accelerate are imported inside functions so that `import router` stays cheap.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from router.routers import Router, register_router
from router.routers.linear import fit_per_model, predict_per_model

POOLINGS = ("mean", "first")
QUIET_BELOW = 1000  # queries: smaller inputs get no progress bars


@functools.cache
def accelerator():
    """This process's Accelerator: bf16 autocast on a GPU that supports it, plain fp32 on CPU."""
    import torch
    from accelerate import Accelerator

    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return Accelerator(mixed_precision="bf16" if bf16 else "no")


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' progress bars and load reports (pickling writes and reads model files)."""
    from transformers.utils import logging

    bars, verbosity = logging.is_progress_bar_enabled(), logging.get_verbosity()
    logging.disable_progress_bar()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        if bars:
            logging.enable_progress_bar()
        logging.set_verbosity(verbosity)


def load_encoder(source: str):
    """(model, tokenizer) in fp32 from a hub id or local folder; T5-style models load their encoder only."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForTextEncoding, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_TEXT_ENCODING_MAPPING_NAMES

    config = AutoConfig.from_pretrained(source)
    # the text-encoding mapping picks T5EncoderModel for T5; encoders it does not list load as themselves
    auto = AutoModelForTextEncoding if config.model_type in MODEL_FOR_TEXT_ENCODING_MAPPING_NAMES else AutoModel
    return auto.from_pretrained(source, dtype=torch.float32), AutoTokenizer.from_pretrained(source)


def map_batches(queries: list[str], batch_size: int, fn: Callable, desc: str) -> np.ndarray:
    """Rows of `fn(batch of queries) -> tensor`, without gradients, in query order, as float64.

    Batches go shortest query first, so each pads to similar lengths.
    """
    import torch

    order = np.argsort([len(q) for q in queries], kind="stable")
    starts = range(0, len(order), batch_size)
    with torch.no_grad():
        parts = [
            fn([queries[i] for i in order[start: start + batch_size]]).float().cpu().numpy()
            for start in tqdm(starts, desc=desc, disable=len(queries) < QUIET_BELOW, leave=False)
        ]
    rows = np.empty((len(queries), parts[0].shape[1]))
    rows[order] = np.concatenate(parts)
    return rows


def validation_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) indices of n queries: a seeded `fraction` (0-1) held out, none if it rounds to 0 or all."""
    order = np.random.default_rng(seed).permutation(n)
    held_out = int(round(fraction * n))
    if held_out == 0 or held_out == n:
        return np.sort(order), order[:0]
    return np.sort(order[held_out:]), np.sort(order[:held_out])


class TextEncoder:
    """A Hugging Face encoder and its tokenizer: each query text -> one pooled vector of `width` floats.

    `pooling`: 'mean' over real tokens or 'first' token; queries are cut at `max_length` tokens.
    Pickles as the files `save_pretrained` writes, so loading needs no hub access.
    """

    def __init__(self, source: str, pooling: str = "mean", max_length: int = 128):
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of: {', '.join(POOLINGS)}")
        self.pooling, self.max_length = pooling, max_length
        self.model, self.tokenizer = load_encoder(source)
        self.model.to(accelerator().device)

    @property
    def width(self) -> int:
        return self.model.config.hidden_size

    def pool(self, queries: list[str]):
        """(len(queries), width) fp32 tensor on the accelerator's device; gradients flow unless disabled."""
        batch = self.tokenizer(
            queries, padding=True, truncation=True, max_length=self.max_length,
            return_token_type_ids=False, return_tensors="pt",  # T5 encoders take no token types
        ).to(self.model.device)
        with accelerator().autocast():
            hidden = self.model(**batch).last_hidden_state.float()
        if self.pooling == "first":
            return hidden[:, 0]
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def embed(self, queries: list[str], batch_size: int) -> np.ndarray:
        """(len(queries), width) float64 pooled vectors, encoder in eval mode."""
        self.model.eval()
        return map_batches(queries, batch_size, self.pool, "embedding")

    def __getstate__(self) -> dict:
        with tempfile.TemporaryDirectory() as folder, quiet_transformers():
            self.model.save_pretrained(folder)
            self.tokenizer.save_pretrained(folder)
            files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}
        return {"pooling": self.pooling, "max_length": self.max_length, "files": files}

    def __setstate__(self, state: dict) -> None:
        with tempfile.TemporaryDirectory() as folder, quiet_transformers():
            for name, content in state["files"].items():
                (Path(folder) / name).parent.mkdir(parents=True, exist_ok=True)
                (Path(folder) / name).write_bytes(content)
            self.__init__(folder, state["pooling"], state["max_length"])


@register_router("mlc")
class MultiLabelRouter(Router):
    """The paper's multi-label classifier: a fine-tuned encoder with one sigmoid output per model (BCE loss).

    Keeps the epoch with the lowest BCE on a seeded `validation_fraction` (0-1; 0 trains on
    every query and keeps the last epoch) and stops after `patience` epochs without a new best.
    Labels count as solved at >= 0.5, unless `soft_targets`: then solve rates 0-1 are fit as given.
    A model with one label for every training query gets that label as its score.
    Deterministic on CPU under `seed`; `batch_size` queries per step, for training and inference.
    """

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
        targets = labels if self.soft_targets else (labels >= 0.5).astype(float)
        # a model whose every training label is the same has nothing to learn: it keeps that score
        self.constant_ = np.where(targets.min(axis=0) == targets.max(axis=0), targets[0], np.nan)
        training, validation = validation_split(len(queries), self.validation_fraction, self.seed)
        optimizer = torch.optim.AdamW([*self.encoder_.model.parameters(), *self.head_.parameters()], lr=self.lr)
        batch_order = np.random.default_rng(self.seed + 1)  # a stream apart from the split's
        self.history_: list[float] = []  # validation BCE after each epoch
        self.best_epoch_, best_state = self.epochs - 1, None
        for epoch in tqdm(range(self.epochs), desc="mlc epochs", disable=len(queries) < QUIET_BELOW):
            self._train_epoch(queries, targets, batch_order.permutation(training), optimizer)
            if len(validation) == 0:
                continue
            self.history_.append(self._loss([queries[i] for i in validation], targets[validation]))
            if self.history_[-1] < min(self.history_[:-1], default=np.inf):
                self.best_epoch_, best_state = epoch, self._state()
            elif epoch - self.best_epoch_ >= self.patience:
                break
        if best_state is not None:
            self.encoder_.model.load_state_dict(best_state[0])
            self.head_.load_state_dict(best_state[1])

    def _train_epoch(self, queries, targets, order, optimizer):
        import torch

        self.encoder_.model.train()
        self.head_.train()
        starts = range(0, len(order), self.batch_size)
        for start in tqdm(starts, desc="batches", disable=len(queries) < QUIET_BELOW, leave=False):
            index = order[start: start + self.batch_size]
            logits = self.head_(self.encoder_.pool([queries[i] for i in index]))
            batch_targets = torch.as_tensor(targets[index], dtype=torch.float32, device=logits.device)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch_targets)
            optimizer.zero_grad()
            accelerator().backward(loss)
            optimizer.step()

    def _state(self) -> tuple[dict, dict]:
        """Copies of the encoder's and the head's weights (an early-stopping checkpoint)."""
        return tuple({k: v.detach().clone() for k, v in m.state_dict().items()} for m in (self.encoder_.model, self.head_))

    def _logits(self, queries: list[str]) -> np.ndarray:
        self.encoder_.model.eval()
        self.head_.eval()
        return map_batches(queries, self.batch_size, lambda batch: self.head_(self.encoder_.pool(batch)), "mlc")

    def _loss(self, queries: list[str], targets: np.ndarray) -> float:
        import torch

        logits = torch.from_numpy(self._logits(queries))
        return float(torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.from_numpy(targets)))

    def _predict(self, queries):
        return np.where(np.isnan(self.constant_), expit(self._logits(queries)), self.constant_)

    def __getstate__(self) -> dict:
        state = dict(vars(self))
        if "head_" in state:
            state["head_"] = copy.deepcopy(self.head_).cpu()  # loadable on a machine without this GPU
        return state

    def __setstate__(self, state: dict) -> None:
        vars(self).update(state)
        if "head_" in state:
            self.head_.to(accelerator().device)


@register_router("sc")
class SeparateClassifierRouter(Router):
    """The paper's separate classifiers, cheaply: a frozen encoder embeds each query once, then one
    logistic regression per model (a model with constant labels gets a constant score)."""

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
        # standardised: a few hidden dimensions of some encoders (RoBERTa) are far larger than the rest
        make = lambda: make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=2000))  # noqa: E731
        self.classifiers_ = fit_per_model(x, labels, make)

    def _predict(self, queries):
        return predict_per_model(self.classifiers_, self.encoder_.embed(queries, self.batch_size))
