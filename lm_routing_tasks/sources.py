"""Where the tasks' documents come from: the Hugging Face hub, or local files.

By default the tasks load `openai/gsm8k` (config `main`) and `cais/mmlu` (one
config per subject) with `datasets.load_dataset`, as lm-eval's own tasks do.

On an air-gapped machine, point the tasks at a local copy instead, either with
the environment variable `LM_ROUTING_DATA=/path/to/data` or with lm-eval's own
flag `--metadata '{"data_dir": "/path/to/data"}'`. The folder holds one JSONL
file per split in the hub schema:

    data/gsm8k/{train,test}.jsonl        question, answer
    data/mmlu/{dev,test,validation}.jsonl  question, subject, choices, answer

The task YAMLs name these loaders with `custom_dataset: !function ...`; lm-eval
calls them with the task's metadata and `dataset_kwargs` as keyword arguments.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

DATA_ENV = "LM_ROUTING_DATA"
GSM8K_HUB = ("openai/gsm8k", "main")
MMLU_HUB = "cais/mmlu"


class LocalDataError(FileNotFoundError):
    """A local data folder was requested but does not hold what a task needs."""


def local_data_dir(data_dir: str | None = None) -> Path | None:
    """The local data folder asked for by `data_dir` or $LM_ROUTING_DATA, if any."""
    chosen = data_dir or os.environ.get(DATA_ENV)
    return Path(chosen).expanduser() if chosen else None


@functools.lru_cache(maxsize=8)
def _read_jsonl(path: Path) -> tuple[dict, ...]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise LocalDataError(f"{path}:{number}: not valid JSON ({error.msg}); fix or re-export the file") from None
    return tuple(rows)


def _local_splits(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise LocalDataError(
            f"{folder}: no such folder; ${DATA_ENV} / --metadata data_dir must hold "
            f"{folder.name}/<split>.jsonl files"
        )
    splits = {p.stem: p for p in sorted(folder.glob("*.jsonl"))}
    if not splits:
        raise LocalDataError(f"{folder}: no <split>.jsonl files found")
    return splits


def _dataset_dict(rows_by_split: dict[str, list[dict]]):
    import datasets

    return datasets.DatasetDict({split: datasets.Dataset.from_list(rows) for split, rows in rows_by_split.items()})


def load_gsm8k(data_dir: str | None = None, **_: Any):
    """GSM8K as a `datasets.DatasetDict` with 'train' and 'test' splits."""
    local = local_data_dir(data_dir)
    if local is None:
        import datasets

        return datasets.load_dataset(*GSM8K_HUB)
    splits = _local_splits(local / "gsm8k")
    return _dataset_dict({split: list(_read_jsonl(path)) for split, path in splits.items()})


def load_mmlu(subject: str, data_dir: str | None = None, **_: Any):
    """One MMLU subject as a `datasets.DatasetDict` (test, dev, validation, ...)."""
    local = local_data_dir(data_dir)
    if local is None:
        import datasets

        return datasets.load_dataset(MMLU_HUB, subject)
    splits = _local_splits(local / "mmlu")
    by_split = {split: [r for r in _read_jsonl(path) if r.get("subject") == subject] for split, path in splits.items()}
    if not any(by_split.values()):
        raise LocalDataError(f"{local / 'mmlu'}: no rows with subject {subject!r}")
    return _dataset_dict(by_split)
