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
LAYOUTS = {  # the expected local files, in the hub schema
    "gsm8k": "gsm8k/{train,test}.jsonl (fields: question, answer)",
    "mmlu": "mmlu/{dev,test,validation}.jsonl (fields: question, subject, choices, answer)",
}


class LocalDataError(FileNotFoundError):
    """A local data folder was requested but does not hold what a task needs."""


class HubUnreachableError(ConnectionError):
    """No local data was asked for and the Hugging Face hub cannot be reached (offline, air-gapped)."""


def _from_hub(path: str, name: str, dataset: str):
    """`datasets.load_dataset(path, name)`; an unreachable hub raises one line naming the local-data options."""
    import datasets

    try:
        return datasets.load_dataset(path, name)
    except (ConnectionError, OSError) as error:  # offline mode, no network, or a hub outage
        raise HubUnreachableError(
            f"cannot load {path} ({name}) from the Hugging Face hub ({str(error).splitlines()[0]}); use a local copy: "
            f"set {DATA_ENV}=/path/to/data or pass --metadata '{{\"data_dir\": \"/path/to/data\"}}', where the folder "
            f"holds {LAYOUTS[dataset]}"
        ) from None


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
        return _from_hub(*GSM8K_HUB, dataset="gsm8k")
    splits = _local_splits(local / "gsm8k")
    return _dataset_dict({split: list(_read_jsonl(path)) for split, path in splits.items()})


def load_mmlu(subject: str, data_dir: str | None = None, **_: Any):
    """One MMLU subject as a `datasets.DatasetDict` (test, dev, validation, ...)."""
    local = local_data_dir(data_dir)
    if local is None:
        return _from_hub(MMLU_HUB, subject, dataset="mmlu")
    splits = _local_splits(local / "mmlu")
    by_split = {split: [r for r in _read_jsonl(path) if r.get("subject") == subject] for split, path in splits.items()}
    if not any(by_split.values()):
        raise LocalDataError(f"{local / 'mmlu'}: no rows with subject {subject!r}")
    return _dataset_dict(by_split)
