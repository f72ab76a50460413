"""One entry point from what a user points at (harness logs, or score tables) to RoutingData."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lm_routing.data import RoutingData, RoutingInputError, concat
from lm_routing.reading.logs import ReadOptions, read_harness_logs, read_score_table


def load_routing_data(logs: Path | str, scores: Sequence[Path | str] = (), test_scores: Sequence[Path | str] = (),
                      threshold: float = 0.5, options: ReadOptions = ReadOptions()) -> RoutingData:
    """RoutingData from harness logs under `logs`, or from score tables when `scores` are given.

    Several tables form one stream, each table's dataset named by its file stem without a
    trailing `_train`/`_test` (gsm8k_train.json + mmlu_train.json: datasets gsm8k and mmlu).
    With `test_scores`, the `scores` tables are the training queries; without, they are all test.
    A query counts as solved when its score >= `threshold` (0-1).
    """
    if not scores and test_scores:
        raise RoutingInputError("«test_scores» needs «scores» (the training table)")
    if not scores:
        return read_harness_logs(logs, options)
    tables = [(path, "train" if test_scores else "test") for path in scores] + [(path, "test") for path in test_scores]
    parts = [read_score_table(path, split, threshold, options.on_missing, options.skip_bad_lines) for path, split in tables]
    return parts[0] if len(parts) == 1 else concat(parts, sources=[str(path) for path, _ in tables])
