"""Logs written in shards (N data-parallel ranks or N jobs, each on part of the documents) join into one table.

The shards are cut from one real-layout run per model (`write_simulated_logs`): each shard is a run
of its own (results file + samples files with its own time stamp) holding every N-th document and
its share of the evaluation time. Layouts: one folder per shard (`shard0/<model>/...`), and per-rank
runs side by side in the model's folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lm_routing.data import RoutingInputError
from lm_routing.reading.logs import read_harness_logs
from lm_routing.reading.simulate import PAPER_POOL, write_simulated_logs

POOL = tuple(m for m in PAPER_POOL if m.name in ("gemma-7b", "mistral-7b", "llama-2-7b"))
SIZES = {"train": {"gsm8k": 30, "mmlu": 10}, "test": {"gsm8k": 21, "mmlu": 10}}


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    return write_simulated_logs(tmp_path_factory.mktemp("whole"), seed=3, pool=POOL, splits=SIZES) / "gsm8k"


def write_shards(whole: Path, out: Path, shards: int, per_folder: bool) -> None:
    """Cut each model's run in `whole` into `shards` runs (every shards-th sample line), under `out`."""
    for model_dir in sorted(p for p in whole.iterdir() if p.is_dir()):
        (results_path,) = model_dir.glob("results_*.json")
        stamp = results_path.stem[len("results_"):]
        results = json.loads(results_path.read_text())
        samples = {path: path.read_text().splitlines() for path in model_dir.glob(f"samples_*_{stamp}.jsonl")}
        total = sum(len(lines) for lines in samples.values())
        for rank in range(shards):
            folder = out / f"shard{rank}" / model_dir.name if per_folder else out / model_dir.name
            folder.mkdir(parents=True, exist_ok=True)
            rank_stamp = stamp if per_folder else f"{stamp[:-1]}{rank}"
            kept = 0
            for path, lines in samples.items():
                part = lines[rank::shards]
                kept += len(part)
                name = path.name.replace(stamp, rank_stamp)
                (folder / name).write_text("".join(line + "\n" for line in part))
            share = dict(results, total_evaluation_time_seconds=results["total_evaluation_time_seconds"] * kept / total)
            (folder / f"results_{rank_stamp}.json").write_text(json.dumps(share, indent=2))


@pytest.mark.parametrize("shards", [2, 5])
@pytest.mark.parametrize("per_folder", [True, False], ids=["folder-per-shard", "runs-per-rank"])
def test_shards_join_into_the_whole_table(whole, tmp_path, shards, per_folder):
    write_shards(whole, tmp_path, shards, per_folder)
    expected, joined = read_harness_logs(whole), read_harness_logs(tmp_path)
    assert joined.models == expected.models
    assert joined.query_ids == expected.query_ids and joined.queries == expected.queries
    assert joined.splits == expected.splits
    np.testing.assert_array_equal(joined.labels, expected.labels)
    np.testing.assert_array_equal(joined.solve_rates, expected.solve_rates)
    np.testing.assert_allclose(joined.latency, expected.latency, rtol=1e-12)  # each shard's time over its documents
    assert joined.report.joined == expected.report.joined


def test_a_missing_shard_is_reported_not_dropped(whole, tmp_path):
    write_shards(whole, tmp_path, 3, per_folder=True)
    for path in (tmp_path / "shard1" / "gemma-7b").iterdir():
        path.unlink()
    with pytest.raises(RoutingInputError, match="gemma-7b lacks .* documents the other models have"):
        read_harness_logs(tmp_path)
