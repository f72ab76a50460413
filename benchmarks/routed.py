"""What `lm_eval --model routed` costs: live dispatch against the member alone, and replay.

Two tiny random GPT-2 members (built here, no weights needed) answer GSM8K with
gsm8k_cot_maj10 (10 samples per question). A saved knn router sends every
question to member A, so live routing does the member's work plus the router's;
their ratio is the routing overhead. Replay answers the same questions from the
members' logs with no model at all. All runs go through lm-eval's own
`simple_evaluate`, in this process; figures are medians over --runs repeats.

Prints the figures and writes results/routed.md and results/routed.png.
Run: python benchmarks/routed.py [--docs 20] [--runs 3]; --replot redraws the figure from results/routed.md.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lm_routing.learning.routers import make_router

from lm_routing.saved import save_router

from common import REPO, RESULTS, markdown_tables, pyplot, save_figure

SHARED = Path(os.environ.get("LM_ROUTING_SHARED_DATA", REPO.parent / "shared" / "data"))
TASK = "gsm8k_cot_maj10"
GEN = "max_gen_toks=16"


def tiny_members(root: Path) -> list[Path]:
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import build_tiny_lm  # the test suite's tiny random GPT-2: one recipe for both

    questions = [json.loads(line)["question"] for line in (SHARED / "gsm8k" / "train.jsonl").open()][:200]
    return [build_tiny_lm(root / name, questions, seed=seed) for seed, name in enumerate(("member-a", "member-b"))]


def all_to_first(root: Path, members: list[Path]) -> Path:
    """A saved knn router whose every score favours member A."""
    questions = [json.loads(line)["question"] for line in (SHARED / "gsm8k" / "train.jsonl").open()][:100]
    labels = np.tile([1.0, 0.0], (len(questions), 1))
    router = make_router("knn").fit(questions, labels)
    return save_router(router, root / "router", tuple(str(m) for m in members))


def logs_of(members: list[Path], root: Path, docs: int) -> Path:
    out = root / "logs"
    for member in members:
        subprocess.run([sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={member}",
                        "--tasks", TASK, "--limit", str(docs), "--gen_kwargs", GEN, "--log_samples",
                        "--output_path", str(out)], check=True, capture_output=True)
    return out


def timed(model: str, model_args: dict, docs: int) -> float:
    from lm_eval import simple_evaluate

    start = time.perf_counter()
    simple_evaluate(model=model, model_args=model_args, tasks=[TASK], limit=docs, gen_kwargs=GEN,
                    log_samples=True, verbosity="ERROR", device="cpu")
    return time.perf_counter() - start


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--replot", action="store_true", help="Only redraw results/routed.png from results/routed.md.")
    args = parser.parse_args()
    if args.replot:
        return replot()
    os.environ.update({"LM_ROUTING_DATA": str(SHARED), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                       "TOKENIZERS_PARALLELISM": "false"})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        members = tiny_members(root)
        router = all_to_first(root, members)
        logs = logs_of(members, root, args.docs)
        settings = {
            "member A alone (hf)": ("hf", {"pretrained": str(members[0])}),
            "routed, live": ("routed", {"router": str(router)}),
            "routed, replay": ("routed", {"router": str(router), "replay": str(logs)}),
        }
        runs = {name: [] for name in settings}
        for repeat in range(args.runs + 1):  # interleaved, so drift hits every setting alike; the first warms caches
            for name, (model, model_args) in settings.items():
                seconds = timed(model, model_args, args.docs)
                if repeat:
                    runs[name].append(seconds)
    median = {name: statistics.median(values) for name, values in runs.items()}
    alone = median["member A alone (hf)"]
    md = ["# The routed model's cost", "",
          f"`python benchmarks/routed.py --docs {args.docs} --runs {args.runs}`: lm-eval's `simple_evaluate` on "
          f"{TASK} ({args.docs} GSM8K questions x 10 samples, {GEN}), two tiny random GPT-2 members, a knn router "
          "that sends every question to member A; medians of interleaved runs after one warm-up each, whole evaluation (task set-up included), "
          "this machine's CPU.", "",
          "| run | median s | vs member A alone | questions/s |", "| --- | ---: | ---: | ---: |"]
    for name, seconds in median.items():
        md.append(f"| {name} | {seconds:.2f} | x{seconds / alone:.2f} | {args.docs / seconds:.1f} |")
    md += ["", "Live routing costs the member's own work plus loading the router and scoring each question once; "
           "replay runs no model, so its time is lm-eval's task set-up, filters and metrics.", "",
           "![routed](routed.png)"]
    RESULTS.mkdir(exist_ok=True)
    plot(median, args.docs, RESULTS / "routed.png")
    (RESULTS / "routed.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def plot(median: dict[str, float], docs: int, path: Path) -> None:
    """Bars of median seconds per run, each labelled with its ratio to the member alone."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    names, seconds = list(median), list(median.values())
    ax.barh(names, seconds, color=["grey", "tab:blue", "tab:green"][: len(names)])
    for y, value in enumerate(seconds):
        ax.annotate(f"{value:.2f} s (x{value / seconds[0]:.2f})", (value, y), textcoords="offset points",
                    xytext=(4, 0), va="center", fontsize=8)
    ax.set_xlim(0, max(seconds) * 1.35)
    ax.set_xlabel(f"median seconds for {docs} GSM8K questions x 10 samples (CPU)")
    ax.set_title("lm_eval --model routed: live and replay vs the member alone", fontsize=10)
    ax.invert_yaxis()
    save_figure(fig, path)


def replot(path: Path = RESULTS / "routed.md") -> None:
    """Redraw results/routed.png from the figures saved in results/routed.md (no rerun)."""
    (rows,) = markdown_tables(path).values()
    docs = int(re.search(r"--docs (\d+)", path.read_text()).group(1))
    plot({row["run"]: float(row["median s"]) for row in rows}, docs, RESULTS / "routed.png")


if __name__ == "__main__":
    main()
