"""Label generation scaled out on lm-eval's own engine: `accelerate launch` on CPU, offline.

Two facts of accelerate 1.x / lm-eval 0.4.13 shape these tests (see cpu_data_parallel.py):
`accelerate launch --cpu --num_processes 2` starts one process, and lm-eval's `hf`
back-end shards requests only over GPUs. The first test runs the issue's command as
given and pins that outcome; the second runs lm-eval's data-parallel path on two CPU
processes (torchrun via `accelerate launch --multi_gpu`, gloo), the most faithful
substitute for a GPU node. Both must find our tasks through the discovery hook in
every process and leave one merged sample log that routing-eval reads.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_routing_eval
from lm_routing.reading.logs import read_harness_logs

pytestmark = pytest.mark.slow
ACCELERATE = str(Path(sys.executable).with_name("accelerate"))
HERE = Path(__file__).parent


def _free_port() -> int:
    """A free TCP port for torch.distributed's rendezvous (29500 may be taken by a parallel run)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _launch(launcher: list[str], model: str, tiny_lm: Path, data: Path, out: Path, extra_env: dict) -> str:
    env = {**os.environ, **extra_env, "LM_ROUTING_DATA": str(data), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    args = ["--model", model, "--model_args", f"pretrained={tiny_lm}", "--tasks", "gsm8k_cot_maj10", "--limit", "4",
            "--gen_kwargs", "max_gen_toks=16", "--log_samples", "--output_path", str(out)]
    result = subprocess.run([ACCELERATE, "launch", *launcher, *args], cwd=out.parent, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stderr


def _one_merged_log(out: Path) -> list[dict]:
    (samples,) = out.glob("*/samples_gsm8k_cot_maj10_*.jsonl")  # one log, not one per process
    assert len(list(out.glob("*/results_*.json"))) == 1
    rows = [json.loads(line) for line in samples.open()]
    assert sorted(r["doc_id"] for r in rows) == [0, 1, 2, 3]  # every document once
    data = read_harness_logs(out)
    assert len(data.queries) == 4
    audit = run_routing_eval("audit", "--logs", out)
    assert audit.returncode == 0, audit.stderr
    assert "gsm8k_cot_maj10" in audit.stdout and " 40 " in audit.stdout  # 4 documents x 10 samples
    return rows


def test_accelerate_launch_cpu_runs_our_task_in_one_process(tmp_path, tiny_lm, shared_data):
    out = tmp_path / "results"
    stderr = _launch(["--num_processes", "2", "--cpu", "-m", "lm_eval"], "hf", tiny_lm, shared_data, out, {})
    # accelerate's --cpu launcher starts a single process whatever --num_processes says
    assert stderr.count("Building contexts for gsm8k_cot_maj10 on rank 0") == 1
    assert "on rank 1" not in stderr
    _one_merged_log(out)


def test_lm_eval_data_parallel_on_two_cpu_processes_merges_one_log(tmp_path, tiny_lm, shared_data):
    out = tmp_path / "results"
    launcher = ["--multi_gpu", "--num_processes", "2", "--main_process_port", str(_free_port())]
    stderr = _launch([*launcher, str(HERE / "cpu_data_parallel.py")], "hf-cpu-dp",
                     tiny_lm, shared_data, out, {"ACCELERATE_USE_CPU": "true"})
    for rank in (0, 1):  # both processes found our task through the hook and built their shard
        assert stderr.count(f"Building contexts for gsm8k_cot_maj10 on rank {rank}") == 1
    rows = _one_merged_log(out)
    assert all(len(r["resps"][0]) == 10 for r in rows)
