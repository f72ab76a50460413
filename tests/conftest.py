"""Shared fixtures: real data from ../shared/data and tiny random HF models.

No weights are downloaded: each model is a randomly initialised 2-layer GPT-2
with a byte-level BPE tokenizer trained here on a few GSM8K questions, saved
with `save_pretrained` so the real `lm_eval --model hf` loads it offline.
Routers' encoders are a random 2-layer BERT (or T5) with a WordPiece tokenizer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LM_ROUTING_SHARED_DATA", REPO.parent / "shared" / "data"))


def require_shared_data() -> Path:
    if not (SHARED_DATA / "gsm8k" / "test.jsonl").exists():
        pytest.skip(f"real data not found at {SHARED_DATA} (set LM_ROUTING_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require_shared_data()


def build_tiny_lm(directory: Path, questions: list[str], seed: int = 0) -> Path:
    """Save a random 2-layer GPT-2 and a BPE tokenizer trained on `questions`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(questions, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|endoftext|>", bos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=fast.vocab_size, n_positions=4096, n_embd=32, n_layer=2, n_head=2,
        bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
    )
    GPT2LMHeadModel(config).save_pretrained(directory)
    fast.save_pretrained(directory)
    return directory


def build_answer_lm(directory: Path, questions: list[str], answer: int, seed: int = 0, steps: int = 50) -> Path:
    """A tiny GPT-2 trained here (seconds) to end GSM8K's few-shot prompt with " The answer is ANSWER."

    Random models never solve a question, so every label would be 0; two of these,
    with different answers, solve different questions, which routing tests need.
    """
    import random

    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel

    build_tiny_lm(directory, questions + [f"The answer is {answer}."] * 20, seed=seed)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = GPT2LMHeadModel.from_pretrained(directory)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    completion = tokenizer(f" The answer is {answer}.\n\n")["input_ids"]

    def packed(length: int = 600) -> tuple[list[int], list[int]]:
        ids: list[int] = []
        labels: list[int] = []
        while len(ids) < length:  # long sequences: the few-shot prompt puts the question ~800 tokens in
            prompt = tokenizer(f"Q: {rng.choice(questions)}\nA:")["input_ids"]
            ids += prompt + completion
            labels += [-100] * len(prompt) + completion  # learn the answer, not the questions
        return ids[:length], labels[:length]

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        batch = [packed() for _ in range(8)]
        loss = model(torch.tensor([b[0] for b in batch]), labels=torch.tensor([b[1] for b in batch])).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(directory)
    return directory


def build_tiny_encoder(directory: Path, texts: list[str], architecture: str = "bert", seed: int = 0) -> Path:
    """Save a random 2-layer BERT (or T5 encoder-decoder) and a WordPiece tokenizer trained on `texts`."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import (
        BertConfig, BertModel, PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration,
    )

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", specials.index("[CLS]")), ("[SEP]", specials.index("[SEP]"))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(seed)
    if architecture == "t5":
        config = T5Config(
            vocab_size=len(fast), d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2,
            pad_token_id=fast.pad_token_id, decoder_start_token_id=fast.pad_token_id,
        )
        model = T5ForConditionalGeneration(config)  # a whole encoder-decoder, as T5 checkpoints ship
    else:
        config = BertConfig(
            vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=128, pad_token_id=fast.pad_token_id,
        )
        model = BertModel(config)
    model.save_pretrained(directory)
    fast.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def one_torch_thread():
    """Torch on one CPU thread for the session: tiny models gain nothing from a second, which
    only adds synchronisation waits (seconds per fit when the other core is busy)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory, shared_data) -> Path:
    questions = [json.loads(line)["question"] for line in (shared_data / "gsm8k" / "train.jsonl").open()][:200]
    return build_tiny_lm(tmp_path_factory.mktemp("tiny_lm"), questions)


_ROUTING_EVAL_SCRIPT = Path(sys.executable).with_name("routing-eval")  # the installed console script, as users run it


def run_routing_eval(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `routing-eval ARGS` in a subprocess, as a user does; stdout and stderr captured as text."""
    command = [str(_ROUTING_EVAL_SCRIPT)] if _ROUTING_EVAL_SCRIPT.exists() else [sys.executable, "-m", "lm_routing.cli.main"]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600, env=env)


@pytest.fixture(scope="session")
def routing_eval():
    """`routing_eval(*args, cwd=None)`: the CLI run in a subprocess (see run_routing_eval)."""
    return run_routing_eval


def run_lm_eval(args: list[str], data_dir: Path, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the real `lm_eval` CLI offline, as a user would, reading local data."""
    env = {
        **os.environ,
        "LM_ROUTING_DATA": str(data_dir),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    lm_eval = Path(sys.executable).with_name("lm_eval")
    result = subprocess.run(
        [str(lm_eval), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise AssertionError(f"lm_eval {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


@pytest.fixture(scope="session")
def harness_logs(tmp_path_factory, shared_data) -> Path:
    """Real lm-eval output for two tiny models, as `--log_samples --output_path` writes it.

    Model A runs the few-shot task, model B the zero-shot variant (the paper's
    split between base and chat models), on the same 4 GSM8K test questions.
    """
    questions = [json.loads(line)["question"] for line in (shared_data / "gsm8k" / "train.jsonl").open()][:200]
    root = tmp_path_factory.mktemp("harness")
    out = root / "results"
    for seed, task in ((0, "gsm8k_cot_maj10"), (1, "gsm8k_cot_zeroshot_maj10")):
        model = build_tiny_lm(root / f"tiny{seed}", questions, seed=seed)
        run_lm_eval(
            ["--model", "hf", "--model_args", f"pretrained={model}", "--tasks", task, "--limit", "4",
             "--gen_kwargs", "max_gen_toks=16", "--log_samples", "--output_path", str(out)],
            data_dir=shared_data, cwd=root,
        )
    return out
