"""Without local data and without the hub, lm_eval ends with our one-line fix, not a bare ConnectionError."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_lm_eval_offline_without_local_data_names_both_ways_to_local_files(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LM_ROUTING_DATA"}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_DATASETS_CACHE=str(tmp_path / "cache"),
               TOKENIZERS_PARALLELISM="false")
    lm_eval = Path(sys.executable).with_name("lm_eval")
    result = subprocess.run(
        [str(lm_eval), "--model", "dummy", "--tasks", "gsm8k_cot_maj10", "--limit", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "LM_ROUTING_DATA" in last and "data_dir" in last and "gsm8k/{train,test}.jsonl" in last, last


def test_unreachable_hub_raises_our_error_for_mmlu_too(monkeypatch, tmp_path):
    from lm_routing_tasks.sources import HubUnreachableError, load_mmlu

    monkeypatch.delenv("LM_ROUTING_DATA", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path))
    with pytest.raises(HubUnreachableError, match=r"LM_ROUTING_DATA=.*data_dir.*mmlu/\{dev,test,validation\}\.jsonl"):
        load_mmlu("anatomy")
